"""Volume recipe helpers, provenance and radiological previews (small real crops, fast)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from ndstyle import stylize
from ndstyle.metrics.volume import judge
from ndstyle.volume_preview import PreviewRow, _views, canonical, robust_window, save_volume_preview
from ndstyle.volume_provenance import fit_dtype, mark_header, sidecar_path, write_sidecar
from ndstyle.volume_quality import VOLUME_RECIPE, plan_volume_transfer, recipe_extractor

DATA = Path(__file__).parent / "data"


def _load(name: str) -> np.ndarray:
    return np.asarray(nib.load(DATA / f"{name}_crop32.nii.gz").dataobj, dtype=np.float64)


def test_recipe_keeps_anatomy_and_range_on_real_crops() -> None:
    content, style = _load("mni_t1")[None], _load("colin_t1")[None]
    mask, style_mask = _load("mni_brain") > 0, _load("colin_brain") > 0
    plan = plan_volume_transfer(content, style, mask, style_mask)
    lo, hi = plan.bounds
    assert lo <= float(plan.content.min()) and float(plan.style[:, style_mask].max()) <= hi
    options = {**VOLUME_RECIPE, "steps": 3}
    result = stylize(
        plan.content,
        plan.style,
        extractor=recipe_extractor("conv3d", seed=0),
        mask=plan.mask,
        style_masks=[plan.style_mask],
        value_range=plan.bounds,
        scales=1,
        progress=False,
        **options,
    )
    raw = plan.normalization.inverse(result.output.double().numpy())
    scores = judge(content, [style], raw, mask, style_masks=[style_mask])
    assert scores["in_range_fraction"] == 1.0 and scores["negative_fraction"] == 0.0
    assert scores["class_dice"] > 0.8 and scores["rank_corr"] > 0.85
    assert scores["hist_ratio"] < 0.5


def test_recipe_moves_the_texture_toward_the_style_beyond_its_histogram_matched_start() -> None:
    """On real crops (MNI152 -> Colin27), judged in a network the run never saw: the optimisation
    brings the texture closer to the style's than the histogram-matched start is, anatomy kept."""
    content, style = _load("mni_t1")[None], _load("colin_t1")[None]
    mask, style_mask = _load("mni_brain") > 0, _load("colin_brain") > 0
    plan = plan_volume_transfer(content, style, mask, style_mask)
    result = stylize(plan.content, plan.style, extractor=recipe_extractor("conv3d", seed=0), mask=plan.mask,
                     style_masks=[plan.style_mask], value_range=plan.bounds, scales=1, progress=False,
                     **{**VOLUME_RECIPE, "steps": 30})  # fmt: skip

    def scores(x: torch.Tensor) -> dict:
        raw = plan.normalization.inverse(x.double().numpy())
        return judge(content, [style], raw, mask, style_masks=[style_mask])

    start, end = scores(plan.content), scores(result.output)
    assert end["texture_result"] < start["texture_result"]
    assert end["class_dice"] > 0.8 and end["rank_corr"] > 0.85 and end["in_range_fraction"] == 1.0


def test_recipe_falls_back_to_the_gram_where_only_the_gram_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sliced Wasserstein keeps whole style layers and cannot tile them; with a memory limit between
    its estimate and the Gram's, the recipe runs the Gram (which fits) instead of refusing."""
    import ndstyle
    from ndstyle.errors import OptionError
    from ndstyle.memory import plan_memory

    net = recipe_extractor("conv3d", seed=0)
    style_layers = list(VOLUME_RECIPE["style_layers"])  # type: ignore[call-overload]
    content_layers = list(VOLUME_RECIPE["content_layers"])  # type: ignore[call-overload]
    layers = list(dict.fromkeys([*content_layers, *style_layers]))
    shape = tuple(_load("mni_t1").shape)

    def smallest_limit(sorted_layers: list[str]) -> int:
        """The least memory the planner accepts (shorter history, tiles) for this statistic."""
        low, high = 1, 1 << 40
        while high - low > 1 << 16:
            mid = (low + high) // 2
            try:
                plan_memory(net, shape, layers, limit=mid, style_shapes=[shape], can_tile=True,
                            content_layers=content_layers, sorted_layers=sorted_layers)  # fmt: skip
                high = mid
            except OptionError:
                low = mid
        return high

    gram, sliced = smallest_limit([]), smallest_limit(style_layers)
    assert sliced > gram
    caplog.set_level(logging.WARNING, logger="ndstyle")
    res = ndstyle.transfer(
        DATA / "mni_t1_crop32.nii.gz",
        DATA / "colin_t1_crop32.nii.gz",
        tmp_path / "o.nii.gz",
        mask=DATA / "mni_brain_crop32.nii.gz",
        style_mask=DATA / "colin_brain_crop32.nii.gz",
        max_memory=(gram + sliced) / 2 / 1024**3,
        steps=2,
        scales=1,
        progress=False,
    )
    assert "using the gram" in caplog.text
    assert res.path is not None and res.path.exists() and len(res.history) == 2


@pytest.mark.parametrize(
    ("given", "statistic", "weight"),
    [
        ({}, "sliced-wasserstein", 0.3),
        ({"style_loss": "gram"}, "gram", 2.0),
        ({"style_weight": 5.0}, "sliced-wasserstein", 5.0),
    ],
)
def test_recipe_weights_each_statistic_with_its_measured_weight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: dict, statistic: str, weight: float
) -> None:
    """The recipe's statistic and its measured weight; ``--style-loss gram`` alone gets the Gram's 2."""
    import ndstyle
    import ndstyle.modalities.base as base

    seen: dict = {}
    real = base.stylize

    def spy(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(base, "stylize", spy)
    ndstyle.transfer(DATA / "mni_t1_crop32.nii.gz", DATA / "colin_t1_crop32.nii.gz", tmp_path / "o.nii.gz",
                     steps=1, scales=1, progress=False, **given)  # fmt: skip
    assert seen["style_loss"] == statistic
    assert seen["style_weight"] == weight


def test_recipe_runs_with_the_users_own_layers(tmp_path: Path) -> None:
    """``--style-layers``/``--content-layers`` given: the recipe's memory check reads them (it
    raised KeyError when only the recipe's own layers were looked up)."""
    import ndstyle

    content, style = DATA / "mni_t1_crop32.nii.gz", DATA / "colin_t1_crop32.nii.gz"
    res = ndstyle.transfer(content, style, tmp_path / "o.nii.gz",
                           style_layers=["relu1_1", "relu1_2"], content_layers=["input"], steps=1, scales=1,
                           progress=False)  # fmt: skip
    assert res.path is not None and res.path.exists()


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_far_out_voxels_inside_the_style_region_take_their_nearest_tissue_value(spatial_dims: int) -> None:
    from ndstyle.volume_quality import fill_outside

    rng = np.random.default_rng(0)
    shape = (12,) * spatial_dims
    volume = rng.normal(30.0, 3.0, size=(1, *shape))
    region = np.zeros(shape, dtype=bool)
    region[(slice(2, 10),) * spatial_dims] = True
    speck = (5,) * spatial_dims
    volume[(0, *speck)] = 1000.0  # bone inside a brain mask
    tissue = region.copy()
    tissue[speck] = False
    filled = fill_outside(volume, tissue, within=region)
    neighbour = (0, 6, *speck[1:])
    assert filled[(0, *speck)] in {volume[(0, *n)] for n in _neighbours(speck)}
    assert filled[neighbour] == volume[neighbour]  # tissue untouched
    assert (filled[0][~region] == volume[0][tissue].min()).all()  # outside: the darkest tissue
    assert np.array_equal(fill_outside(volume, tissue), np.where(tissue, volume, volume[0][tissue].min()))


def _neighbours(index: tuple[int, ...]) -> list[tuple[int, ...]]:
    out = []
    for axis in range(len(index)):
        for step in (-1, 1):
            n = list(index)
            n[axis] += step
            out.append(tuple(n))
    return out


def test_the_recipe_style_region_keeps_no_holes_where_far_out_voxels_were() -> None:
    """The CT-like case: bone specks inside the style's brain mask are replaced, not cut out, so
    the region a receptive field must lie in is the whole brain mask."""
    content, style = _load("mni_t1")[None], _load("colin_t1")[None].copy()
    mask, style_mask = _load("mni_brain") > 0, _load("colin_brain") > 0
    inside = np.argwhere(style_mask)
    specks = inside[:: max(1, len(inside) // 20)]
    style[(0, *specks.T)] = 10 * style.max()
    plan = plan_volume_transfer(content, style, mask, style_mask)
    assert torch.equal(plan.style_mask > 0.5, torch.from_numpy(style_mask))
    lo, hi = plan.bounds
    assert float(plan.style[0][torch.from_numpy(style_mask)].max()) <= hi


def test_provenance(tmp_path: Path) -> None:
    img = nib.load(DATA / "mni_t1_crop32.nii.gz")
    header = mark_header(img.header.copy())
    assert b"STYLISED" in header["descrip"].item()
    assert np.allclose(header.get_best_affine(), img.affine)
    out = tmp_path / "result.nii.gz"
    assert sidecar_path(out) == tmp_path / "result.json"
    path = write_sidecar(out, DATA / "mni_t1_crop32.nii.gz", [DATA / "colin_t1_crop32.nii.gz"], {"steps": 5})
    record = json.loads(path.read_text())
    assert record["stylised"] is True and record["options"] == {"steps": 5}
    assert len(record["content"]["sha256"]) == 64
    with pytest.raises(FileExistsError):
        write_sidecar(out, None, [], {})
    assert fit_dtype(np.array([-5.0, 3.4, 300.0]), np.uint8).tolist() == [0, 3, 255]
    assert np.isfinite(fit_dtype(np.array([np.nan, np.inf]), np.float32)).all()


def test_preview_is_radiological_whatever_the_storage_order(tmp_path: Path) -> None:
    volume = np.zeros((10, 12, 8))
    volume[8, 6, 4] = 1.0  # high x: the patient's right in RAS storage
    ras = np.diag([2.0, 2.0, 3.0, 1.0])
    las = np.diag([-2.0, 2.0, 3.0, 1.0])  # x stored right-to-left
    for data, affine in ((volume, ras), (volume[::-1], las)):
        canon, zooms = canonical(data, affine)
        assert zooms.tolist() == [2.0, 2.0, 3.0]
        axial = _views(canon, zooms, (8, 6, 4))[0][1]
        assert np.argwhere(axial)[0][1] < axial.shape[1] / 2  # right shown on the viewer's left
    assert robust_window(np.arange(1000.0)) == pytest.approx((5.99, 994.01), abs=0.01)
    rows = [PreviewRow("content", volume, ras), PreviewRow("painting", np.ones((1, 5, 5)), image2d=True)]
    png = save_volume_preview(tmp_path / "p.png", rows, "test")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_transfer_defaults_run_the_recipe_with_masks_and_report(tmp_path: Path) -> None:
    import ndstyle

    out = tmp_path / "out.nii.gz"
    res = ndstyle.transfer(
        DATA / "mni_t1_crop32.nii.gz",
        DATA / "colin_t1_crop32.nii.gz",
        out,
        mask=DATA / "mni_brain_crop32.nii.gz",
        style_mask=DATA / "colin_brain_crop32.nii.gz",
        report=True,
        steps=3,
        scales=1,
        progress=False,
    )
    report = res.report or {}
    assert report["in_range_fraction"] == 1.0 and report["class_dice"] > 0.8
    assert report["style_mask_voxels"] == int((_load("colin_brain") > 0).sum())  # the given style mask
    written = nib.load(out)
    assert b"STYLISED" in written.header["descrip"].item()
    assert written.get_data_dtype() == nib.load(DATA / "mni_t1_crop32.nii.gz").get_data_dtype()
    raw = np.asarray(written.dataobj)
    outside = _load("mni_brain") == 0
    assert np.array_equal(raw[outside], _load("mni_t1")[outside])  # untouched outside the mask
    small = tmp_path / "small_mask.nii.gz"
    nib.Nifti1Image(np.ones((16, 16, 16), np.uint8), np.eye(4)).to_filename(small)
    with pytest.raises(
        ndstyle.errors.NdstyleError, match="--style-mask .* expected one channel on the style's grid"
    ):
        ndstyle.transfer(
            DATA / "mni_t1_crop32.nii.gz",
            DATA / "colin_t1_crop32.nii.gz",
            style_mask=small,
            steps=1,
            progress=False,
        )


def test_the_previews_result_row_shows_what_is_written_outside_the_mask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The written volume keeps the content outside ``--mask``; so does the preview's result row
    (it showed the histogram-matched content there, a grey frame around a skull-stripped brain)."""
    import ndstyle
    import ndstyle.volume_preview as preview

    seen: list = []
    real = preview.save_volume_preview

    def capture(path: Path, rows: list, title: str | None = None) -> Path:
        seen.extend(rows)
        return real(path, rows, title)

    monkeypatch.setattr(preview, "save_volume_preview", capture)
    ndstyle.transfer(DATA / "mni_t1_crop32.nii.gz", DATA / "colin_t1_crop32.nii.gz", tmp_path / "o.nii.gz",
                     mask=DATA / "mni_brain_crop32.nii.gz", style_mask=DATA / "colin_brain_crop32.nii.gz",
                     preview=tmp_path / "o.png", steps=2, scales=1, progress=False)  # fmt: skip
    content, result = np.asarray(seen[0].data)[0], np.asarray(seen[-1].data)[0]
    outside = _load("mni_brain") == 0  # the crops are on their working grid already
    assert result.shape == outside.shape
    assert np.allclose(result[outside], content[outside])
    assert not np.allclose(result[~outside], content[~outside])
    assert (tmp_path / "o.png").is_file()


def test_outside_background_writes_the_styles_background_around_the_same_result(tmp_path: Path) -> None:
    """``--outside background``: outside the mask the style's 1st percentile (its air or background),
    inside exactly the default run's voxels; the report counts it in range."""
    import ndstyle

    content, style = DATA / "mni_t1_crop32.nii.gz", DATA / "colin_t1_crop32.nii.gz"
    masks = {"mask": DATA / "mni_brain_crop32.nii.gz", "style_mask": DATA / "colin_brain_crop32.nii.gz"}
    runs = {}
    for outside in ("content", "background"):
        out = tmp_path / f"{outside}.nii.gz"
        res = ndstyle.transfer(content, style, out, outside=outside, report=True, steps=2, scales=1,
                               progress=False, **masks)  # fmt: skip
        runs[outside] = (np.asarray(nib.load(out).dataobj), res.report or {})
    inside = _load("mni_brain") > 0
    kept, _ = runs["content"]
    filled, report = runs["background"]
    assert np.array_equal(filled[inside], kept[inside])
    background = np.rint(np.percentile(_load("colin_t1"), 1))
    assert np.all(filled[~inside] == background)
    assert np.array_equal(kept[~inside], _load("mni_t1")[~inside])
    assert report["in_range_fraction"] == 1.0


def test_outside_background_needs_a_style_volume(tmp_path: Path) -> None:
    import ndstyle
    from ndstyle.errors import OptionError

    painting = Path(ndstyle.__file__).parent / "data" / "starry_night.jpg"
    with pytest.raises(OptionError, match="--outside background needs one 3-D style volume"):
        ndstyle.transfer(DATA / "mni_t1_crop32.nii.gz", painting, tmp_path / "o.nii.gz", outside="background",
                         steps=1, scales=1, progress=False)  # fmt: skip
    assert not (tmp_path / "o.nii.gz").exists()


def test_a_brain_mask_given_as_the_style_is_refused_in_one_line_naming_it(tmp_path: Path) -> None:
    """A binary mask passed as STYLE (an easy slip with ``*_brain.nii.gz`` next to ``*_t1``): one value
    inside its region, no texture and no intensity range. Before, the run died deep in the engine
    with ``value_range ... got (0.0, 0.0)``; now the message names the file and the way out."""
    import ndstyle
    from ndstyle.errors import InputFileError

    mask_file = DATA / "colin_brain_crop32.nii.gz"
    before = mask_file.read_bytes()
    expected = r"colin_brain_crop32\.nii\.gz.*single value 1 .*--style-mask"
    with pytest.raises(InputFileError, match=expected) as caught:
        ndstyle.transfer(DATA / "mni_t1_crop32.nii.gz", mask_file, tmp_path / "o.nii.gz", steps=1, scales=1,
                         progress=False)  # fmt: skip
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "o.nii.gz").exists()
    assert mask_file.read_bytes() == before
    # as the content it is allowed: its region is textured like the style
    textured = tmp_path / "textured.nii.gz"
    ndstyle.transfer(mask_file, DATA / "mni_t1_crop32.nii.gz", textured, steps=1, scales=1, progress=False)
    assert textured.exists()


def test_outside_background_leaves_no_ramp_inside_the_mask_when_the_grid_is_resampled(tmp_path: Path) -> None:
    """Working grid != the file's grid (``--size``): the style's background (air, far below the
    brain's values) must not be interpolated into the mask's border voxels."""
    import ndstyle

    out = tmp_path / "o.nii.gz"
    content, style = DATA / "mni_t1_crop32.nii.gz", tmp_path / "style_in_air.nii.gz"
    colin = nib.load(DATA / "colin_t1_crop32.nii.gz")
    in_air = np.where(_load("colin_brain") > 0, _load("colin_t1"), -1000.0).astype(np.float32)
    nib.Nifti1Image(in_air, colin.affine).to_filename(style)
    ndstyle.transfer(content, style, out, outside="background",
                     mask=DATA / "mni_brain_crop32.nii.gz", style_mask=DATA / "colin_brain_crop32.nii.gz",
                     size=24, steps=2, scales=1, progress=False)  # fmt: skip
    written = np.asarray(nib.load(out).dataobj, dtype=np.float64)
    inside = _load("mni_brain") > 0
    style = _load("colin_t1")[_load("colin_brain") > 0]
    assert written[inside].min() >= np.percentile(style, 0) - 1  # no background values in the brain
