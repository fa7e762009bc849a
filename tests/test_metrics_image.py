"""The image judge: a frame inside the border, coloured corners, colours taken (1/2/3-D where it applies)."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ndstyle
from ndstyle import metrics
from ndstyle.metrics import report
from ndstyle.metrics.image import (
    FRAME_LIMIT,
    border_frame,
    colour_distance,
    corner_chroma,
    distance_to_border,
    frame_depth,
    image_report,
    ring_profile,
    structure_similarity,
)

DATA = Path(ndstyle.__file__).parent / "data"
SHAPES = {1: (400,), 2: (64, 96), 3: (40, 44, 48)}


def smooth_field(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """``(3, *shape)`` random values in [0.2, 0.8] that vary slowly against the frame depth (noise
    blurred by repeated averaging over ``frame_depth`` positions)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((1, 3, *shape), generator=g, dtype=torch.float64)
    nn = torch.nn.functional
    pool = (None, nn.avg_pool1d, nn.avg_pool2d, nn.avg_pool3d)
    half = frame_depth(shape)
    for _ in range(3):
        x = pool[len(shape)](x, 2 * half + 1, stride=1, padding=half, count_include_pad=False)
    x = (x - x.min()) / (x.max() - x.min())
    return 0.2 + 0.6 * x[0]


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_distance_to_border_counts_in_from_every_face(dims):
    shape = SHAPES[dims]
    d = distance_to_border(shape)
    assert d.shape == shape
    assert int(d.flatten()[0]) == 0 and int(d.flatten()[-1]) == 0
    centre = tuple(n // 2 for n in shape)
    assert int(d[centre]) == min(min(c, n - 1 - c) for c, n in zip(centre, shape))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_border_frame_finds_a_drawn_ring_and_not_a_smooth_picture(dims):
    shape = SHAPES[dims]
    picture = smooth_field(shape)
    plain = border_frame(picture)
    profile, spread = ring_profile(picture)
    assert profile.shape == (frame_depth(shape) + 1,)
    framed = picture.clone()
    framed[:, distance_to_border(shape) == 2] += spread  # one ring one inside-spread lighter
    assert border_frame(framed) == pytest.approx(plain + 1.0, abs=0.35)
    assert plain < FRAME_LIMIT < border_frame(framed)


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_corner_chroma_sees_coloured_corners_on_a_grey_picture(dims):
    shape = SHAPES[dims]
    grey = smooth_field(shape)[:1].expand(3, *shape).clone()
    assert corner_chroma(grey) == pytest.approx(0.0, abs=1e-12)
    speckled = grey.clone()
    speckled[(0, *[slice(0, 3)] * dims)] = 1.0  # a magenta-ish corner
    assert corner_chroma(speckled) > 0.01
    assert corner_chroma(grey[:1]) is None


def test_colour_distance_is_zero_to_itself_and_ignores_the_size():
    x = smooth_field((40, 60))
    assert colour_distance(x, x) == pytest.approx(0.0, abs=1e-12)
    big = torch.nn.functional.interpolate(x[None], scale_factor=2, mode="nearest")[0]
    assert colour_distance(x, big) < 0.01
    assert colour_distance(x, x + 0.2) == pytest.approx(0.2)


def _rgb(path: Path, long_side: int | None = None) -> torch.Tensor:
    with Image.open(path) as image:
        image = image.convert("RGB")
        if long_side is not None:
            scale = long_side / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).double() / 255


def test_the_bundled_style_has_no_frame():
    """The opencv-doc file had a black surround and the canvas's unpainted edge (border_frame 2.66);
    the bundled file is cropped to the painted surface (ndstyle/data/README.md)."""
    assert border_frame(_rgb(DATA / "starry_night.jpg")) < FRAME_LIMIT


def test_a_framed_style_is_warned_of_once(tmp_path, caplog):
    from ndstyle.modalities.image import _warn_of_framed_styles

    style = _rgb(DATA / "starry_night.jpg", 96)
    framed = style.clone()
    framed[:, distance_to_border(style.shape[1:]) < 3] = 0.0  # a black surround, as the old file's
    content = ndstyle.Loaded(_rgb(DATA / "chelsea.png", 96), {}, None)
    with caplog.at_level(logging.WARNING, logger="ndstyle"):
        _warn_of_framed_styles(content, [ndstyle.Loaded(style, {}, None)])
        assert not caplog.records
        _warn_of_framed_styles(content, [ndstyle.Loaded(framed, {}, tmp_path / "framed.jpg")])
    assert len(caplog.records) == 1
    assert "framed.jpg" in caplog.records[0].getMessage() and "crop" in caplog.records[0].getMessage()


def test_report_has_the_image_judge():
    content = smooth_field((48, 64), seed=1)
    style = smooth_field((50, 50), seed=2) * 0.5
    out = report("image", ndstyle.Loaded(content, {}, None), [ndstyle.Loaded(style, {}, None)], content)
    keys = {"border_frame", "corner_chroma", "colour_distance", "colour_ratio", "in_range_fraction"}
    assert set(out) >= keys
    assert out["colour_ratio"] == pytest.approx(1.0)
    assert out["passes"] == {"border_frame": True, "in_range": True}
    assert image_report(content, [style], content + 0.5)["passes"]["in_range"] is False


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_structure_similarity_falls_as_the_shapes_are_replaced(dims):
    shape = SHAPES[dims]
    picture, other = smooth_field(shape, seed=3), smooth_field(shape, seed=4)
    assert structure_similarity(picture, picture) == pytest.approx(1.0)
    assert structure_similarity(picture, picture + 0.2) == pytest.approx(1.0)  # brightness is not shape
    scores = [structure_similarity(picture, (1 - t) * picture + t * other) for t in (0.0, 0.5, 0.8, 1.0)]
    # strictly falling; an unrelated smooth picture keeps a floor (SSIM's constant over small local
    # variances), which is why the report scales it by the style's own score (structure_kept)
    assert all(a > b for a, b in zip(scores, scores[1:])) and scores[-1] < 0.9


def test_structure_kept_is_one_for_the_content_and_zero_for_the_style():
    content, style = smooth_field((48, 64), seed=5), smooth_field((48, 64), seed=6)
    assert image_report(content, [style], content)["structure_kept"] == pytest.approx(1.0)
    assert image_report(content, [style], style)["structure_kept"] == pytest.approx(0.0, abs=1e-9)


def test_a_failing_judge_does_not_cost_the_result(tmp_path, monkeypatch, caplog):
    import ndstyle.metrics.image as judges

    def broken(*args, **kwargs):
        raise RuntimeError("the judge broke\nsecond line")

    monkeypatch.setattr(judges, "judge", broken)
    out = tmp_path / "out.png"
    with caplog.at_level(logging.WARNING, logger="ndstyle"):
        result = ndstyle.transfer(
            DATA / "chelsea.png", DATA / "starry_night.jpg", out, size=32, steps=2, report=tmp_path / "r.json"
        )
    assert out.is_file() and result.report == {"error": "RuntimeError: the judge broke"}
    assert any("image judge failed" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "r.json").is_file()


def test_a_result_that_fails_its_checks_is_flagged_in_one_warning_line(tmp_path, monkeypatch, caplog):
    """``ndstyle run ... --report`` says which checks failed, by how much, and then writes the result
    as usual (a long run is never thrown away for a failed check); a passing result logs nothing."""
    import ndstyle.metrics.image as judges

    real = judges.judge

    def framed(*args, **kwargs):
        out = real(*args, **kwargs)
        out["passes"]["border_frame"] = False
        out["targets"]["border_frame"]["value"] = 0.97
        return out

    out = tmp_path / "out.png"
    with caplog.at_level(logging.WARNING, logger="ndstyle"):
        ndstyle.transfer(DATA / "chelsea.png", DATA / "starry_night.jpg", out, size=32, steps=2, report=True)
    assert not [r for r in caplog.records if "flagged" in r.getMessage()]
    monkeypatch.setattr(judges, "judge", framed)
    flagged = tmp_path / "flagged.png"
    with caplog.at_level(logging.WARNING, logger="ndstyle"):
        result = ndstyle.transfer(
            DATA / "chelsea.png", DATA / "starry_night.jpg", flagged, size=32, steps=2, report=True
        )
    lines = [r.getMessage() for r in caplog.records if "flagged" in r.getMessage()]
    assert lines == [
        f"{flagged}: flagged by the image checks: border_frame 0.97 (target <= 0.5). "
        "Look at the result before using it."
    ]
    assert flagged.is_file() and metrics.failures(result.report) == ["border_frame 0.97 (target <= 0.5)"]


def test_failures_name_each_failed_check_with_its_value_and_target() -> None:
    report = {
        "passes": {"a": True, "b": False, "c": False},
        "targets": {"a": metrics.target(1, ">=", 0.5), "b": metrics.target(0.6723, ">=", 0.8)},
        "advice": "give masks",
    }
    assert metrics.failures(report) == ["b 0.672 (target >= 0.8)", "c"]  # c: a judge without targets
    assert metrics.advice(report) == "give masks"
    assert (
        metrics.failures({"passes": {"a": True}}) == []
        and metrics.advice({"passes": {"a": True}, "advice": "x"}) is None
    )
    assert metrics.failures(None) == [] and metrics.failures({"error": "broke"}) == []
    judged = metrics.verdicts(
        {"kept": (0.9, ">=", 0.8), "lost": (float("nan"), ">=", 0.8), "none": (None, "<=", 1)}
    )
    assert judged["passes"] == {
        "kept": True,
        "lost": False,
        "none": True,
    }  # NaN fails, nothing to check passes
    assert metrics.check_values(judged) == {
        "kept": "0.9 (target >= 0.8)",
        "lost": "nan (target >= 0.8)",
        "none": "n/a (target <= 1)",
    }
