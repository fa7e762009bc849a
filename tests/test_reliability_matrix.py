"""The adversarial matrix: hostile files, absurd options, name collisions, permissions (issue 17).

Every case of :data:`CLI_CASES` and :data:`API_CASES` is checked for the same invariants:

* a one-line error naming the file or option (no traceback),
* a nonzero exit (CLI) or an :class:`~ndstyle.errors.NdstyleError` (API),
* no output left behind (not even a hidden temporary),
* every file that was there before is byte-identical (same hash, mtime and mode).

Then the round trips that used to fail: WFDB output, audio containers, float TIFF, resume with an
explicit checkpoint, and the partial/interrupted files that only the run that created them removes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _reliability_util import FAST, VALID_FILES, run_cli, snapshot

import ndstyle
from ndstyle.errors import NdstyleError


@pytest.fixture
def one_thread():
    """One torch thread: the machine is shared, and results must not depend on threading."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- inputs ----------------------------------------------------------------------------------------


def _npy(path: Path, value: float | None = None) -> None:
    x = np.random.default_rng(len(path.name)).random((1, 16, 16)).astype(np.float32)
    if value is not None:
        x[0, 3, 3] = value
    np.save(path, x)


def _float_tiff(path: Path, nan: bool = False) -> None:
    from PIL import Image

    x = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    if nan:
        x[5, 5] = np.nan
    Image.fromarray(x, "F").save(path)


def _wav(path: Path, nan: bool = False) -> None:
    import soundfile

    x = (0.3 * np.sin(np.arange(4000) / 5)).astype(np.float32)
    if nan:
        x[100] = np.nan
    soundfile.write(path, x, 8000, subtype="FLOAT")


def _csv(path: Path, text: str) -> None:
    path.write_text(text)


def _weights(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """A small ConvNd weights file whose metadata ``change`` edits (for malformed files)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from ndstyle.extractors.convnd import ConvNdExtractor

    good = path.with_name("good.tmp.safetensors")
    ConvNdExtractor.random(2, 1, widths=(4, 8)).save(good, overwrite=True)
    with safe_open(str(good), "pt") as handle:
        header = handle.metadata()
    tensors = load_file(str(good))
    good.unlink()
    key = next(iter(header))
    meta = json.loads(header[key])
    change(meta)
    save_file(tensors, str(path), metadata={key: json.dumps(meta)})


def _big_png(path: Path) -> None:
    from PIL import Image

    Image.new("L", (10_000, 10_000)).save(path)  # 100 megapixels in about 100 KB


@dataclass
class Case:
    """One hostile CLI run: files made in the folder, the arguments, what the error line names."""

    name: str
    argv: list[str]
    expect: list[str]
    files: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)  # name -> existing name (symlink)
    hardlinks: dict[str, str] = field(default_factory=dict)
    exit_code: int | None = None  # None: any nonzero
    setup: Callable[[Path, pytest.MonkeyPatch], None] | None = None


NPY = {"c.npy": _npy, "s.npy": _npy}
PNG = {"c.png": VALID_FILES[".png"], "s.png": VALID_FILES[".png"]}
WAV = {"c.wav": VALID_FILES[".wav"], "s.wav": VALID_FILES[".wav"]}
CSV = {"c.csv": VALID_FILES[".csv"], "s.csv": VALID_FILES[".csv"]}
HEA = {"rec.hea": VALID_FILES[".hea"], "srec.hea": VALID_FILES[".hea"]}
NII = {"c.nii.gz": VALID_FILES[".nii.gz"], "s.nii.gz": VALID_FILES[".nii.gz"]}
MASK = {"mask.png": VALID_FILES[".png"]}
WEIGHTS = {"w.safetensors": lambda p: _weights(p, lambda m: None)}


def _read_only_folder(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The output folder refuses new files (as root, chmod alone would not): the probe fails."""
    import tempfile

    import ndstyle.io.atomic as atomic
    from ndstyle.modalities.array import ArrayModality

    real = tempfile.mkstemp

    def mkstemp(*args: Any, **kwargs: Any) -> Any:
        if Path(kwargs.get("dir", ".")).resolve() == (folder / "ro").resolve():
            raise PermissionError(13, "Permission denied")
        return real(*args, **kwargs)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the optimisation ran before the output folder was checked")

    (folder / "ro").mkdir()
    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(ArrayModality, "run", never)


CLI_CASES = [
    # -- name collisions: nothing the run reads may be written ---------------------------------------
    Case(
        "output-is-mask",
        ["c.png", "s.png", "-o", "mask.png", "--mask", "mask.png", "--overwrite"],
        ["mask.png", "input"],
        {**PNG, **MASK},
    ),
    Case(
        "preview-is-mask",
        ["c.png", "s.png", "-o", "o.png", "--mask", "mask.png", "--preview", "mask.png", "--overwrite"],
        ["mask.png", "input"],
        {**PNG, **MASK},
    ),
    Case(
        "output-is-init-file",
        ["c.npy", "s.npy", "-o", "i.npy", "--init-file", "i.npy", "--overwrite"],
        ["i.npy", "input"],
        {**NPY, "i.npy": _npy},
    ),
    Case(
        "report-is-content",
        ["c.npy", "s.npy", "-o", "o.npy", "--report", "c.npy", "--overwrite"],
        ["c.npy", "input"],
        NPY,
    ),
    Case("output-is-style", ["c.npy", "s.npy", "-o", "s.npy", "--overwrite"], ["s.npy", "input"], NPY),
    Case(
        "output-is-weights",
        ["c.npy", "s.npy", "-e", "w.safetensors", "-o", "w.safetensors", "--overwrite"],
        ["w.safetensors", "input"],
        {**NPY, **WEIGHTS},
    ),
    Case(
        "preview-is-weights",
        ["c.npy", "s.npy", "-e", "w.safetensors", "-o", "o.npy", "--preview", "w.safetensors", "--overwrite"],
        ["w.safetensors", "input"],
        {**NPY, **WEIGHTS},
    ),
    Case(
        "checkpoint-is-content",
        ["c.npy", "s.npy", "-o", "o.npy", "--checkpoint", "c.npy", "--checkpoint-every", "1", "--overwrite"],
        ["c.npy", "input"],
        NPY,
    ),
    Case(
        "checkpoint-is-mask",
        [
            "c.png",
            "s.png",
            "-o",
            "o.png",
            "--mask",
            "mask.png",
            "--checkpoint",
            "mask.png",
            "--checkpoint-every",
            "1",
        ],
        ["mask.png", "input"],
        {**PNG, **MASK},
    ),
    Case(
        "checkpoint-is-output",
        ["c.npy", "s.npy", "-o", "o.npy", "--checkpoint", "o.npy", "--checkpoint-every", "1"],
        ["o.npy", "also"],
        NPY,
    ),
    Case(
        "resumed-checkpoint-is-preview",
        [
            "c.npy",
            "s.npy",
            "-o",
            "o.npy",
            "--checkpoint",
            "ck.safetensors",
            "--resume",
            "--preview",
            "ck.safetensors",
        ],
        ["ck.safetensors"],
        {**NPY, "ck.safetensors": lambda p: p.write_bytes(b"x" * 64)},
    ),
    Case(
        "partial-exists",
        ["c.npy", "s.npy", "-o", "o.npy", "--save-every", "1"],
        ["o.partial.npy", "exists"],
        {**NPY, "o.partial.npy": _npy},
    ),
    Case(
        "partial-is-content-even-with-overwrite",
        ["o.partial.npy", "s.npy", "-o", "o.npy", "--save-every", "1", "--overwrite"],
        ["o.partial.npy", "input"],
        {"o.partial.npy": _npy, "s.npy": _npy},
    ),
    Case(
        "partial-is-style",
        ["c.npy", "o.partial.npy", "-o", "o.npy", "--save-every", "1", "--overwrite"],
        ["o.partial.npy", "input"],
        {"c.npy": _npy, "o.partial.npy": _npy},
    ),
    Case(
        "partial-is-preview",
        ["c.png", "s.png", "-o", "o.png", "--save-every", "1", "--preview", "o.partial.png"],
        ["o.partial.png", "also"],
        PNG,
    ),
    Case(
        "interrupted-name-is-content",
        ["o.interrupted.npy", "s.npy", "-o", "o.npy", "--overwrite"],
        ["o.interrupted.npy", "input"],
        {"o.interrupted.npy": _npy, "s.npy": _npy},
    ),
    Case(
        "output-symlink-to-content",
        ["c.npy", "s.npy", "-o", "o.npy", "--overwrite"],
        ["o.npy", "input"],
        NPY,
        links={"o.npy": "c.npy"},
    ),
    Case(
        "output-hardlink-to-style",
        ["c.npy", "s.npy", "-o", "o.npy", "--overwrite"],
        ["o.npy", "input"],
        NPY,
        hardlinks={"o.npy": "s.npy"},
    ),
    Case("preview-is-output", ["c.png", "s.png", "-o", "o.png", "--preview", "o.png"], ["o.png"], PNG),
    Case(
        "output-exists", ["c.npy", "s.npy", "-o", "o.npy"], ["o.npy", "--overwrite"], {**NPY, "o.npy": _npy}
    ),
    Case(
        "wfdb-dat-exists",
        ["rec.hea", "srec.hea", "-o", "out.hea"],
        ["out.dat", "exists"],
        {**HEA, "out.dat": lambda p: p.write_bytes(b"\0" * 64)},
    ),
    Case(
        "wfdb-preview-is-record-data",
        ["rec.hea", "srec.hea", "-o", "out.hea", "--preview", "rec.dat", "--overwrite"],
        ["rec.dat", "input"],
        HEA,
    ),
    Case(
        "wfdb-record-name-with-dot", ["rec.hea", "srec.hea", "-o", "o.x.hea"], ["o.x.hea", "record name"], HEA
    ),
    # -- locations and permissions ---------------------------------------------------------------------
    Case(
        "output-folder-missing", ["c.npy", "s.npy", "-o", "nowhere/o.npy"], ["nowhere", "does not exist"], NPY
    ),
    Case(
        "output-is-a-folder",
        ["c.npy", "s.npy", "-o", "sub"],
        ["sub", "folder"],
        NPY,
        setup=lambda d, mp: (d / "sub").mkdir(),
    ),
    Case(
        "output-folder-read-only",
        ["c.npy", "s.npy", "-o", "ro/o.npy"],
        ["ro", "cannot write"],
        NPY,
        setup=_read_only_folder,
    ),
    Case("output-wrong-extension", ["c.npy", "s.npy", "-o", "o.png"], ["o.png", ".npy"], NPY),
    # -- hostile files -------------------------------------------------------------------------------
    Case(
        "image-100-megapixels",
        ["big.png", "s.png", "-o", "o.png", "--max-memory", "1"],
        ["big.png", "10000 x 10000"],
        {"big.png": _big_png, "s.png": VALID_FILES[".png"]},
    ),
    Case(
        "float-tiff-nan-content",
        ["nan.tif", "s.png", "-o", "o.png"],
        ["nan.tif", "NaN"],
        {"nan.tif": lambda p: _float_tiff(p, nan=True), "s.png": VALID_FILES[".png"]},
    ),
    Case(
        "float-tiff-nan-style",
        ["c.png", "nan.tif", "-o", "o.png"],
        ["nan.tif", "NaN"],
        {"c.png": VALID_FILES[".png"], "nan.tif": lambda p: _float_tiff(p, nan=True)},
    ),
    Case(
        "wav-nan-content",
        ["nan.wav", "s.wav", "-o", "o.wav"],
        ["nan.wav", "NaN"],
        {"nan.wav": lambda p: _wav(p, nan=True), "s.wav": VALID_FILES[".wav"]},
    ),
    Case(
        "wav-nan-style",
        ["c.wav", "nan.wav", "-o", "o.wav"],
        ["nan.wav", "NaN"],
        {"c.wav": VALID_FILES[".wav"], "nan.wav": lambda p: _wav(p, nan=True)},
    ),
    Case(
        "npy-inf-content",
        ["c.npy", "s.npy", "-o", "o.npy"],
        ["c.npy", "NaN or infinite"],
        {"c.npy": lambda p: _npy(p, np.inf), "s.npy": _npy},
    ),
    Case(
        "csv-constant-time-column",
        ["t.csv", "s.csv", "-o", "o.csv"],
        ["t.csv", "sample rate"],
        {"t.csv": lambda p: _csv(p, "time,I\n0,1\n0,2\n0,3\n"), "s.csv": VALID_FILES[".csv"]},
    ),
    Case(
        "csv-backwards-time-as-style",
        ["c.csv", "t.csv", "-o", "o.csv"],
        ["t.csv", "sample rate"],
        {"c.csv": VALID_FILES[".csv"], "t.csv": lambda p: _csv(p, "time,I\n2,1\n1,2\n0,3\n")},
    ),
    Case(
        "csv-rate-zero",
        ["z.csv", "s.csv", "-o", "o.csv"],
        ["z.csv", "sample rate 0"],
        {"z.csv": lambda p: _csv(p, "# sample_rate=0\nI\n1\n2\n3\n"), "s.csv": VALID_FILES[".csv"]},
    ),
    Case(
        "csv-no-rate-as-style",
        ["c.csv", "n.csv", "-o", "o.csv"],
        ["n.csv", "no sample rate"],
        {"c.csv": VALID_FILES[".csv"], "n.csv": lambda p: _csv(p, "I\n1\n2\n3\n")},
    ),
    # -- weights ---------------------------------------------------------------------------------------
    Case(
        "torchvision-hash-mismatch",
        ["c.png", "s.png", "-o", "o.png", "-e", "vgg19-dcbb9e9d.pth"],
        ["vgg19-dcbb9e9d.pth", "hash"],
        {**PNG, "vgg19-dcbb9e9d.pth": lambda p: p.write_bytes(b"\0" * 4096)},
    ),
    Case(
        "weights-without-config",
        ["c.npy", "s.npy", "-o", "o.npy", "-e", "w.safetensors"],
        ["w.safetensors", "config"],
        {**NPY, "w.safetensors": lambda p: _weights(p, lambda m: m.pop("config"))},
    ),
    Case(
        "weights-absurd-widths",
        ["c.npy", "s.npy", "-o", "o.npy", "-e", "w.safetensors"],
        ["w.safetensors", "architecture"],
        {**NPY, "w.safetensors": lambda p: _weights(p, lambda m: m["config"].update(widths=[10**12, 8]))},
    ),
    Case(
        "weights-widths-not-matching-tensors",
        ["c.npy", "s.npy", "-o", "o.npy", "-e", "w.safetensors"],
        ["w.safetensors", "does not match"],
        {**NPY, "w.safetensors": lambda p: _weights(p, lambda m: m["config"].update(widths=[5, 8]))},
    ),
    # -- options ---------------------------------------------------------------------------------------
    Case(
        "size-beyond-memory",
        ["c.png", "s.png", "-o", "o.png", "--size", "60000", "--max-memory", "1"],
        ["--size 60000"],
        PNG,
    ),
    Case("size-absurd", ["c.png", "s.png", "-o", "o.png", "--size", "1000000"], ["--size"], PNG, exit_code=2),
    Case(
        "volume-size-beyond-memory",
        ["c.nii.gz", "s.nii.gz", "-o", "o.nii.gz", "--size", "4000", "--max-memory", "1"],
        ["--size 4000"],
        NII,
    ),
    Case(
        "style-scale-inf",
        ["c.png", "s.png", "-o", "o.png", "--style-scale", "inf"],
        ["--style-scale"],
        PNG,
        exit_code=2,
    ),
    Case(
        "style-scale-beyond-memory",
        ["c.png", "s.png", "-o", "o.png", "--style-scale", "16", "--size", "4000", "--max-memory", "0.3"],
        ["--s"],
        PNG,
    ),
    Case(
        "sample-rate-negative",
        ["c.csv", "s.csv", "-o", "o.csv", "--sample-rate", "-5"],
        ["--sample-rate"],
        CSV,
        exit_code=2,
    ),
    Case(
        "sample-rate-zero",
        ["c.csv", "s.csv", "-o", "o.csv", "--sample-rate", "0"],
        ["--sample-rate"],
        CSV,
        exit_code=2,
    ),
    Case(
        "sample-rate-inf",
        ["c.csv", "s.csv", "-o", "o.csv", "--sample-rate", "inf"],
        ["--sample-rate"],
        CSV,
        exit_code=2,
    ),
    Case(
        "n-fft-absurd",
        ["c.wav", "s.wav", "-o", "o.wav", "--n-fft", "100000000"],
        ["--n-fft"],
        WAV,
        exit_code=2,
    ),
    Case(
        "working-rate-zero",
        ["c.wav", "s.wav", "-o", "o.wav", "--working-rate", "0"],
        ["--working-rate"],
        WAV,
        exit_code=2,
    ),
    Case(
        "vol-window-nan",
        ["c.nii.gz", "s.nii.gz", "-o", "o.nii.gz", "--vol-window", "nan", "nan"],
        ["--vol-window"],
        NII,
        exit_code=2,
    ),
    Case("steps-zero", ["c.npy", "s.npy", "-o", "o.npy", "--steps", "0"], ["--steps"], NPY, exit_code=2),
    Case(
        "max-memory-negative",
        ["c.npy", "s.npy", "-o", "o.npy", "--max-memory", "-1"],
        ["--max-memory"],
        NPY,
        exit_code=2,
    ),
    Case(
        "resume-without-checkpoint",
        ["c.npy", "s.npy", "-o", "o.npy", "--resume"],
        ["--resume", "checkpoint"],
        NPY,
    ),
]


def _prepare(folder: Path, case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, make in case.files.items():
        make(folder / name)
    for name, target in case.links.items():
        (folder / name).symlink_to(folder / target)
    for name, target in case.hardlinks.items():
        os.link(folder / target, folder / name)
    if case.setup is not None:
        case.setup(folder, monkeypatch)


def _assert_one_line(text: str, fragments: list[str]) -> None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_hostile_cli_run(case: Case, tmp_path: Path, capsys, monkeypatch, one_thread) -> None:
    monkeypatch.chdir(tmp_path)
    _prepare(tmp_path, case, monkeypatch)
    before = snapshot(tmp_path)
    rc, out, err = run_cli(capsys, "run", *FAST, *case.argv)  # the case's options win
    assert rc != 0 if case.exit_code is None else rc == case.exit_code, err
    assert err.startswith("ndstyle: error: "), err
    _assert_one_line(err, case.expect)
    assert out == ""
    assert snapshot(tmp_path) == before  # nothing written, nothing changed, no temporary left
    for sub in (p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()):
        assert list(sub.iterdir()) == [], sub


# -- the Python API ----------------------------------------------------------------------------------


def _stylize(**kwargs: Any) -> Callable[[Path], Any]:
    def call(folder: Path) -> Any:
        options = {"content": torch.rand(1, 16, 16), "steps": 1, **kwargs}
        content = options.pop("content")
        return ndstyle.stylize(content, torch.rand(1, 16, 16), extractor="random", progress=False, **options)

    return call


def _transfer(*args: str, **kwargs: Any) -> Callable[[Path], Any]:
    def call(folder: Path) -> Any:
        paths = [folder / a for a in args]
        extra = {k: (folder / v if isinstance(v, str) and "." in v else v) for k, v in kwargs.items()}
        return ndstyle.transfer(*paths, progress=False, steps=1, scales=1, **extra)

    return call


def _save_over_like(folder: Path) -> Any:
    loaded = ndstyle.load(folder / "c.npy")
    return ndstyle.save(folder / "c.npy", loaded.tensor, like=loaded, overwrite=True)


API_CASES: list[tuple[str, Callable[[Path], Any], list[str], dict[str, Callable[[Path], None]]]] = [
    ("stylize-value-range-reversed", _stylize(value_range=(1, 0)), ["value_range", "(1, 0)"], {}),
    ("stylize-value-range-nan", _stylize(value_range=(0, float("nan"))), ["value_range"], {}),
    ("stylize-value-range-text", _stylize(value_range="0..1"), ["value_range"], {}),
    (
        "stylize-complex-content",
        _stylize(content=torch.rand(1, 16, 16, dtype=torch.complex64)),
        ["content", "complex"],
        {},
    ),
    (
        "stylize-complex-mask",
        _stylize(mask=torch.rand(16, 16, dtype=torch.complex64)),
        ["mask", "complex"],
        {},
    ),
    ("stylize-float-steps", _stylize(steps=2.5), ["steps", "2.5"], {}),
    ("stylize-bool-steps", _stylize(steps=True), ["steps"], {}),
    (
        "transfer-float-steps",
        lambda d: ndstyle.transfer(d / "c.npy", d / "s.npy", steps=2.5, progress=False),
        ["steps", "2.5"],
        NPY,
    ),
    (
        "transfer-output-is-mask",
        _transfer("c.png", "s.png", output="mask.png", mask="mask.png", overwrite=True),
        ["mask.png", "input"],
        {**PNG, **MASK},
    ),
    (
        "transfer-output-is-init",
        _transfer("c.npy", "s.npy", output="c.npy", overwrite=True),
        ["c.npy", "input"],
        NPY,
    ),
    (
        "transfer-partial-exists",
        _transfer("c.npy", "s.npy", output="o.npy", save_every=1),
        ["o.partial.npy"],
        {**NPY, "o.partial.npy": _npy},
    ),
    (
        "transfer-complex-array",
        lambda d: ndstyle.transfer(
            np.ones((1, 8, 8), np.complex64), np.ones((1, 8, 8), np.float32), progress=False
        ),
        ["complex"],
        {},
    ),
    ("transfer-no-style", lambda d: ndstyle.transfer(d / "c.npy", [], progress=False), ["style"], NPY),
    ("save-over-its-own-input", _save_over_like, ["c.npy", "input"], NPY),
    ("load-missing", lambda d: ndstyle.load(d / "missing.png"), ["missing.png", "does not exist"], {}),
    (
        "load-float-tiff-nan",
        lambda d: ndstyle.load(d / "nan.tif"),
        ["nan.tif", "NaN"],
        {"nan.tif": lambda p: _float_tiff(p, nan=True)},
    ),
]


@pytest.mark.parametrize("name,call,expect,files", API_CASES, ids=[c[0] for c in API_CASES])
def test_hostile_api_call(name, call, expect, files, tmp_path: Path, one_thread) -> None:
    for file, make in files.items():
        make(tmp_path / file)
    before = snapshot(tmp_path)
    with pytest.raises(NdstyleError) as raised:
        call(tmp_path)
    _assert_one_line(str(raised.value), expect)
    assert snapshot(tmp_path) == before


def test_the_matrix_is_large_enough() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 50


# -- round trips that used to fail ------------------------------------------------------------------


def test_wfdb_output_round_trips_format_units_and_leads(tmp_path: Path, capsys, one_thread) -> None:
    import wfdb

    VALID_FILES[".hea"](tmp_path / "rec.hea")
    VALID_FILES[".hea"](tmp_path / "srec.hea")
    before = snapshot(tmp_path)
    rc, _, err = run_cli(
        capsys,
        "run",
        tmp_path / "rec.hea",
        tmp_path / "srec.hea",
        "-o",
        tmp_path / "out.hea",
        "--save-every",
        "1",
        *FAST,
    )
    assert rc == 0, err
    after = snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before
    assert sorted(set(after) - set(before)) == ["out.dat", "out.hea"]  # no partial, no temporary left
    original, result = wfdb.rdrecord(str(tmp_path / "rec")), wfdb.rdrecord(str(tmp_path / "out"))
    assert result.record_name == "out" and result.file_name == ["out.dat", "out.dat"]
    assert (result.fs, result.sig_name, result.units, result.fmt) == (
        original.fs,
        original.sig_name,
        original.units,
        original.fmt,
    )
    assert result.p_signal.shape == original.p_signal.shape and np.isfinite(result.p_signal).all()


CONTAINERS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}


@pytest.mark.parametrize("source", list(CONTAINERS))
@pytest.mark.parametrize("target", list(CONTAINERS))
def test_audio_container_follows_the_output_extension(source: str, target: str, tmp_path: Path) -> None:
    import soundfile

    VALID_FILES[source](tmp_path / f"c{source}")
    loaded = ndstyle.load(tmp_path / f"c{source}")
    out = ndstyle.save(tmp_path / f"o{target}", loaded.tensor, like=loaded)
    info = soundfile.info(str(out))
    assert info.format == CONTAINERS[target]
    assert info.samplerate == loaded.meta["sample_rate"] and info.channels == loaded.tensor.shape[0]
    back = ndstyle.load(out)
    assert back.tensor.shape == loaded.tensor.shape


def test_audio_cli_flac_to_wav_writes_riff(tmp_path: Path, capsys, one_thread) -> None:
    import soundfile

    VALID_FILES[".flac"](tmp_path / "c.flac")
    VALID_FILES[".wav"](tmp_path / "s.wav")
    rc, _, err = run_cli(
        capsys, "run", tmp_path / "c.flac", tmp_path / "s.wav", "-o", tmp_path / "o.wav", *FAST
    )
    assert rc == 0, err
    assert (tmp_path / "o.wav").read_bytes()[:4] == b"RIFF"
    assert soundfile.info(str(tmp_path / "o.wav")).format == "WAV"


def test_float_tiff_reads_its_values_and_writes_float_back(tmp_path: Path) -> None:
    from PIL import Image

    _float_tiff(tmp_path / "f.tif")
    stored = np.asarray(Image.open(tmp_path / "f.tif"))
    loaded = ndstyle.load(tmp_path / "f.tif")
    assert loaded.meta["bits"] == 32
    assert float(loaded.tensor.std()) > 0.1  # not all zeros
    assert np.allclose(loaded.tensor[0].numpy(), stored, atol=1e-6)
    out = ndstyle.save(tmp_path / "o.tif", loaded.tensor, like=loaded)
    with Image.open(out) as image:
        assert image.mode == "F"
        assert np.allclose(np.asarray(image), stored, atol=1e-6)


def test_big_image_warning_never_leaks(tmp_path: Path, recwarn) -> None:
    _big_png(tmp_path / "big.png")
    with pytest.raises(NdstyleError, match="10000 x 10000"):
        ndstyle.load(tmp_path / "big.png", max_memory=1)
    assert [str(w.message) for w in recwarn] == []


def test_resume_with_an_explicit_checkpoint(tmp_path: Path, capsys, one_thread) -> None:
    _npy(tmp_path / "c.npy")
    _npy(tmp_path / "s.npy")
    ck = tmp_path / "ck.safetensors"
    common = [
        "run",
        tmp_path / "c.npy",
        tmp_path / "s.npy",
        "--checkpoint",
        ck,
        "--checkpoint-every",
        "1",
        *FAST,
    ]
    rc, _, err = run_cli(capsys, *common, "-o", tmp_path / "a.npy", "--keep-checkpoint")
    assert rc == 0 and ck.is_file(), err
    rc, _, err = run_cli(capsys, *common, "-o", tmp_path / "b.npy", "--resume")
    assert rc == 0, err
    assert (tmp_path / "b.npy").is_file() and not ck.exists()  # removed after the successful resume


def test_existing_partial_is_kept_when_this_run_never_wrote_it(tmp_path: Path, capsys, one_thread) -> None:
    """--overwrite lets the run replace ``o.partial.npy``; if it never does, the file stays as it was."""
    _npy(tmp_path / "c.npy")
    _npy(tmp_path / "s.npy")
    _npy(tmp_path / "o.partial.npy")
    before = snapshot(tmp_path)["o.partial.npy"]
    rc, _, err = run_cli(
        capsys,
        "run",
        tmp_path / "c.npy",
        tmp_path / "s.npy",
        "-o",
        tmp_path / "o.npy",
        "--save-every",
        "50",
        "--overwrite",
        *FAST,
    )
    assert rc == 0, err
    assert snapshot(tmp_path)["o.partial.npy"] == before


def test_existing_checkpoint_is_kept_when_this_run_never_wrote_it(tmp_path: Path, capsys, one_thread) -> None:
    """--overwrite lets the run replace a stale checkpoint; if it never does, it is not deleted either."""
    _npy(tmp_path / "c.npy")
    _npy(tmp_path / "s.npy")
    (tmp_path / "ck.safetensors").write_bytes(b"a user's file")
    before = snapshot(tmp_path)["ck.safetensors"]
    rc, _, err = run_cli(
        capsys,
        "run",
        *FAST,
        tmp_path / "c.npy",
        tmp_path / "s.npy",
        "-o",
        tmp_path / "o.npy",
        "--checkpoint",
        tmp_path / "ck.safetensors",
        "--checkpoint-every",
        "50",
        "--overwrite",
    )
    assert rc == 0, err
    assert snapshot(tmp_path)["ck.safetensors"] == before


def test_interrupted_result_never_replaces_a_file(tmp_path: Path, one_thread) -> None:
    from ndstyle.errors import InterruptedRun

    _npy(tmp_path / "c.npy")
    _npy(tmp_path / "s.npy")
    _npy(tmp_path / "o.interrupted.npy")
    before = snapshot(tmp_path)

    def stop(info: Any) -> None:
        if info.record.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(InterruptedRun) as raised:
        ndstyle.transfer(
            tmp_path / "c.npy",
            tmp_path / "s.npy",
            tmp_path / "o.npy",
            steps=4,
            scales=1,
            progress=False,
            callback=stop,
        )
    assert "o.interrupted-2.npy" in str(raised.value)
    after = snapshot(tmp_path)
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == ["o.interrupted-2.npy"]
