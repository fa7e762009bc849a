"""The bad-input matrix: every entry point refuses with one clear line and leaves nothing behind.

Table-driven. To cover a new reader, add ONE line to ``VALID_FILES`` in ``_reliability_util.py``
(extension -> a function that writes a small valid file); the generic corruptions (garbage
bytes, zero bytes, truncation) then run for it through the CLI and the API. Extensions without a
row still get garbage and empty files: the tables iterate over ``all_modalities()``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from _reliability_util import (
    FAST,
    VALID_FILES,
    assert_one_error_line,
    run_cli,
    snapshot,
    valid_file,
    write_pair,
)

from ndstyle import stylize
from ndstyle.errors import NdstyleError, OptionError, ShapeError
from ndstyle.modalities import all_modalities
from ndstyle.modalities.base import Modality
from ndstyle.options import TransferOptions


def _extensions() -> list[tuple[str, str]]:
    return [(name, ext) for name, m in all_modalities().items() for ext in m.extensions]


def _garbage(path: Path, ext: str) -> None:
    path.write_bytes(bytes(range(256)) * 4)


def _empty(path: Path, ext: str) -> None:
    path.write_bytes(b"")


def _truncated(path: Path, ext: str) -> None:
    if ext not in VALID_FILES:
        pytest.skip(f"no valid-file factory for {ext} in VALID_FILES")
    VALID_FILES[ext](path)
    data = path.read_bytes()
    path.write_bytes(data[: max(1, len(data) // 3)])


def _header_only(path: Path, ext: str) -> None:
    if ext not in VALID_FILES:
        pytest.skip(f"no valid-file factory for {ext} in VALID_FILES")
    VALID_FILES[ext](path)
    path.write_bytes(path.read_bytes()[:16])


#: (extension, corruption) that a reader accepts on purpose, with the reason (documented).
TOLERATED = {
    (".wav", "truncated"): "libsndfile reads the frames present: a cut WAV loads as shorter audio",
}

CORRUPTIONS = {"garbage": _garbage, "empty": _empty, "truncated": _truncated, "header only": _header_only}


def _array_file(values: np.ndarray) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        np.save(path, values, allow_pickle=True)

    return write


#: (modality-specific bad file name, extension, writer, fragment of the expected message)
BAD_CONTENT_FILES = [
    ("nan", ".npy", _array_file(np.full((1, 16, 16), np.nan, np.float32)), "NaN or infinite"),
    ("inf", ".npy", _array_file(np.full((1, 16, 16), np.inf, np.float32)), "NaN or infinite"),
    ("zero-size", ".npy", _array_file(np.zeros((1, 0, 16), np.float32)), "empty"),
    ("scalar", ".npy", _array_file(np.float32(1.0)), "expected an array shaped (C, *spatial)"),
    ("5-D", ".npy", _array_file(np.zeros((1, 2, 2, 2, 2), np.float32)), "1-3 spatial axes"),
    ("strings", ".npy", _array_file(np.array(["a", "b"])), "numeric array"),
    ("complex", ".npy", _array_file(np.zeros((1, 8), np.complex64)), "numeric array"),
    ("pickled objects", ".npy", _array_file(np.array([{"a": 1}], dtype=object)), "never unpickles"),
]


def _cases() -> list[tuple[str, str, str]]:
    return [(modality, ext, kind) for modality, ext in _extensions() for kind in CORRUPTIONS]


@pytest.mark.parametrize("modality,ext,kind", _cases())
@pytest.mark.parametrize("role", ["content", "style"])
def test_corrupt_files_are_refused_by_the_cli(tmp_path, capsys, modality, ext, kind, role):
    if (ext, kind) in TOLERATED:
        pytest.skip(TOLERATED[ext, kind])
    bad = tmp_path / f"bad{ext}"
    CORRUPTIONS[kind](bad, ext)
    good = tmp_path / f"good{ext}"
    if ext in VALID_FILES:
        valid_file(all_modalities()[modality], ext, good)
    else:
        good = bad
    content, style = (bad, good) if role == "content" else (good, bad)
    before = snapshot(tmp_path)
    out = tmp_path / f"out{ext}"
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, "--modality", modality, *FAST)
    assert rc == 1
    assert_one_error_line(err, str(bad))
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("modality,ext,kind", _cases())
def test_corrupt_files_are_refused_by_the_api(tmp_path, modality, ext, kind):
    if (ext, kind) in TOLERATED:
        pytest.skip(TOLERATED[ext, kind])

    bad = tmp_path / f"bad{ext}"
    CORRUPTIONS[kind](bad, ext)
    reader: Modality = all_modalities()[modality]
    with pytest.raises(NdstyleError) as error:
        reader.load(bad, TransferOptions())
    message = str(error.value)
    assert str(bad) in message and "\n" not in message


@pytest.mark.parametrize("name,ext,write,fragment", BAD_CONTENT_FILES, ids=[c[0] for c in BAD_CONTENT_FILES])
def test_bad_values_in_files_are_refused(tmp_path, capsys, name, ext, write, fragment):
    bad = tmp_path / f"bad{ext}"
    write(bad)
    good = tmp_path / f"good{ext}"
    VALID_FILES[ext](good)
    before = snapshot(tmp_path)
    for content, style in ((bad, good), (good, bad)):
        rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / f"o{ext}", *FAST)
        assert rc == 1
        assert_one_error_line(err, str(bad), fragment)
    assert snapshot(tmp_path) == before


def test_missing_unreadable_and_folder_inputs(tmp_path, capsys, monkeypatch):
    content, style = write_pair(tmp_path)
    out = tmp_path / "o.npy"
    cases = [
        ((tmp_path / "nope.npy", style), "does not exist"),
        ((content, tmp_path / "nope.npy"), "does not exist"),
        ((tmp_path, style), "is a folder"),
        ((tmp_path / "x.xyz", style), "unsupported file extension '.xyz'"),
    ]
    (tmp_path / "x.xyz").write_bytes(b"data")
    for (c, s), fragment in cases:
        rc, _, err = run_cli(capsys, "run", c, s, "-o", out, *FAST)
        assert rc == 1
        assert_one_error_line(err, fragment)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == content else real_access(p, mode))
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, *FAST)
    assert rc == 1
    assert_one_error_line(err, str(content), "not readable")
    assert not out.exists()


def test_dims_and_channel_mismatches_in_files(tmp_path, capsys):
    content, _ = write_pair(tmp_path)
    one_d = tmp_path / "one_d.npy"
    np.save(one_d, np.random.default_rng(0).random((1, 64)).astype(np.float32))
    rgb = tmp_path / "rgb.npy"
    np.save(rgb, np.random.default_rng(0).random((3, 16, 16)).astype(np.float32))
    for style, fragment in ((one_d, "spatial axes"), (rgb, "channel")):
        rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", *FAST)
        assert rc == 1
        assert_one_error_line(err, fragment)
    assert not (tmp_path / "o.npy").exists()


def test_style_of_another_modality_is_refused(tmp_path, capsys, monkeypatch):
    from ndstyle import modalities

    class Other(Modality):
        name = "other"
        extensions = (".oth",)

    real = modalities.all_modalities
    monkeypatch.setattr(modalities, "all_modalities", lambda: {**real(), "other": Other()})
    content, _ = write_pair(tmp_path)
    style = tmp_path / "s.oth"
    style.write_bytes(b"x")
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", *FAST)
    assert rc == 1
    assert_one_error_line(err, "is a other file but the content", "is a array file")


#: (argv, fragment of the one-line error, exit status): 2 for a value the options object refuses
#: before anything is read (as argparse does), 1 for what is found wrong once inputs are known.
CLI_OPTIONS = [
    (["-n", "0"], "--steps: expected a whole number from 1", 2),
    (["--coarse-steps", "0"], "--coarse-steps: expected a whole number from 1", 2),
    (["--size", "0"], "--size", 2),
    (["-sw", "-1"], "--style-weight", 2),
    (["-tw", "nan"], "--tv-weight", 2),
    (["-cw", "inf"], "--content-weight", 2),
    (["--lr", "0"], "--lr: expected a finite number > 0", 2),
    (["--scales", "0"], "--scales", 2),
    (
        ["--scales", "0.5,2"],
        "--scales: expected 'auto', a number of levels from 1 to 16, or factors in (0, 1]",
        2,
    ),
    (["--style-blend", "1,2"], "--style-blend gives 2 weight(s) for 1 style", 1),
    (["--style-blend", "-1"], "--style-blend: expected finite weights >= 0", 2),
    (["--save-every", "-1"], "--save-every", 2),
    (["--checkpoint-every", "-2"], "--checkpoint-every", 2),
    (["--style-layers", "relu1_9"], "Did you mean 'relu1_", 1),
    (["--content-layers", "conv9_1"], "conv9_1", 1),
    (["--extractor", "randm"], "Did you mean 'random'", 1),
    (["--init", "nosie"], "Did you mean 'noise'", 2),
    (["--max-memory", "-1"], "--max-memory", 2),
    (["--max-memory", "0.000001"], "needs about", 1),
    (["--device", "cuda:7"], "device 'cuda:7' is not usable", 1),
]


@pytest.mark.parametrize("argv,fragment,code", CLI_OPTIONS, ids=[" ".join(a) for a, _, _ in CLI_OPTIONS])
def test_invalid_options_are_refused_in_one_line(tmp_path, capsys, argv, fragment, code):
    content, style = write_pair(tmp_path)
    before = snapshot(tmp_path)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", *FAST, *argv)
    assert rc == code
    assert_one_error_line(err, fragment)
    assert snapshot(tmp_path) == before


def _t(*shape: int, value: float | None = None) -> torch.Tensor:
    if value is not None:
        return torch.full(shape, value)
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


X = _t(1, 16, 16)


#: (id, content, style, options, error type, fragment) for the library entry point.
API_CASES = [
    ("nan content", _t(1, 16, 16, value=math.nan), _t(1, 16, 16), {}, OptionError, "content contains NaN"),
    ("inf style", _t(1, 16, 16), _t(1, 16, 16, value=math.inf), {}, OptionError, "style 1 contains NaN"),
    ("empty", _t(1, 0, 16), _t(1, 16, 16), {}, ShapeError, "empty"),
    ("1-D style, 2-D content", _t(1, 16, 16), _t(1, 64), {}, ShapeError, "spatial axes"),
    ("channels", _t(1, 16, 16), _t(3, 16, 16), {}, ShapeError, "channel"),
    ("4 spatial axes", _t(1, 4, 4, 4, 4), _t(1, 4, 4, 4, 4), {}, ShapeError, "1, 2 or 3 spatial axes"),
    ("not a tensor", np.zeros((1, 16, 16)), _t(1, 16, 16), {}, OptionError, "torch.Tensor"),
    ("too small", _t(1, 4, 4), _t(1, 16, 16), {}, ShapeError, "too small"),
    ("negative style weight", X, X, {"style_weight": -1}, OptionError, "style_weight"),
    ("nan content weight", X, X, {"content_weight": math.nan}, OptionError, "content"),
    ("zero steps", X, X, {"steps": 0}, OptionError, "steps must be >= 1"),
    ("steps per level", X, X, {"steps": [1, 1, 1]}, OptionError, "pyramid levels"),
    ("bad scales", X, X, {"scales": [0, 1]}, OptionError, "(0, 1]"),
    ("scales text", X, X, {"scales": "many"}, OptionError, "scales must be"),
    ("zero lr", X, X, {"lr": 0.0}, OptionError, "lr must be"),
    ("unknown layer", X, X, {"style_layers": ["relu2_7"]}, OptionError, "Did you mean"),
    ("unknown optimizer", X, X, {"optimizer": "sgd"}, OptionError, "optimizer"),
    ("blend inf", X, X, {"style_blend": [math.inf]}, OptionError, "style_blend"),
    ("too much memory", X, X, {"max_memory": "100K"}, OptionError, "needs about"),
    ("memory text", X, X, {"max_memory": "x"}, OptionError, "max_memory"),
    ("no styles", _t(1, 16, 16), [], {}, OptionError, "at least one style"),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_stylize_refuses_bad_input(case):
    _, content, style, options, error, fragment = case
    with pytest.raises(error) as raised:
        options = {"steps": 1, "scales": 1, **options}
        stylize(content, style, progress=False, **options)
    assert fragment in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("which", ["content", "style"])
def test_constant_inputs_are_allowed(which):
    """Decision: a constant content or style is valid data (flat image, silence) and runs finitely."""
    flat, varied = _t(1, 16, 16, value=0.5), _t(1, 16, 16)
    content, style = (flat, varied) if which == "content" else (varied, flat)
    result = stylize(content, style, steps=2, scales=1, progress=False)
    assert torch.isfinite(result.output).all() and math.isfinite(result.best_cost)


def test_memory_estimate_is_refused_before_allocating(monkeypatch):
    """The estimate runs before targets or optimiser exist: no forward pass at full size happens."""
    from ndstyle import engine
    from ndstyle.extractors import build_extractor
    from ndstyle.memory import activation_values, estimate_memory

    net = build_extractor(None, spatial_dims=3, in_channels=1)
    layers = list(net.default_style_layers)
    # activations scale with the number of positions (measured on a probe, never at full size)
    big, small = activation_values(net, (512,) * 3, layers), activation_values(net, (16,) * 3, layers)
    assert big == 32**3 * small
    # relu1_1 alone: 32 channels at every position, counted twice (forward + backward) in the estimate
    assert estimate_memory(net, (512,) * 3, layers) > 2 * 4 * 32 * 512**3
    for off in (None, "none"):  # the check can be switched off
        assert stylize(X, X, steps=1, scales=1, progress=False, max_memory=off).history
    calls = []
    monkeypatch.setattr(engine, "_initial", lambda *a: calls.append(a))
    with pytest.raises(OptionError, match=r"needs about .* but 1 KiB are allowed"):
        stylize(_t(1, 16, 16), _t(1, 16, 16), steps=1, progress=False, max_memory=1024)
    assert calls == []


def test_huge_npy_header_is_refused_before_reading(tmp_path, capsys):
    """A 2 TB array announced by a 128-byte header: refused from the header, nothing allocated."""
    huge = tmp_path / "huge.npy"
    with open(huge, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": "<f4", "fortran_order": False, "shape": (1, 8192, 8192, 8192)}
        )
    content, _ = write_pair(tmp_path)
    rc, _, err = run_cli(capsys, "run", huge, content, "-o", tmp_path / "o.npy", *FAST)
    assert rc == 1
    assert_one_error_line(err, str(huge), "truncated", "2 TiB")
    with open(huge, "ab") as handle:  # now the data "exist" (a sparse file): too large for memory
        handle.truncate(huge.stat().st_size + 4 * 8192**3)
    rc, _, err = run_cli(capsys, "run", huge, content, "-o", tmp_path / "o.npy", *FAST)
    assert rc == 1
    assert_one_error_line(err, str(huge), "needs about", "more than the")
