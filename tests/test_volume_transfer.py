"""Short transfers on volumes: 3-D style, 2-D style (solid texture), mask, CLI."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

import ndstyle.extractors.volume as V
from ndstyle import evaluate_costs, stylize
from ndstyle.cli import main
from ndstyle.extractors import ConvNdExtractor, build_extractor


def _pair(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    axes = torch.meshgrid(*[torch.linspace(0, 1, n)] * 3, indexing="ij")
    content = (sum(axes) / 3)[None]
    style = (0.5 + 0.5 * torch.sin(axes[0] * 23) * torch.cos(axes[1] * 17 + axes[2] * 11))[None]
    return content, style


def _base2d() -> ConvNdExtractor:
    return ConvNdExtractor.random(2, 3, widths=(8, 16), pooling="max", seed=3)


def test_conv3d_transfer_reduces_style_cost_tenfold() -> None:
    content, style = _pair()
    net = build_extractor("conv3d", spatial_dims=3, in_channels=1, widths=(8, 16))
    result = stylize(content, style, extractor=net, steps=30, scales=1, progress=False)
    before = evaluate_costs(net, content, style, content)["style"]
    after = evaluate_costs(net, content, style, result.output)["style"]
    assert after <= before / 10


def test_2d_style_on_a_volume_with_slices() -> None:
    """A 2-D image (depth-1 volume) as the style of a volume: every slice orientation gets its style."""
    content, _ = _pair(12)
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    image = (0.5 + 0.5 * torch.sign(torch.sin(xx * 1.3) * torch.sin(yy * 1.3)))[None, None]  # (1, 1, H, W)
    net = V.SliceExtractor(_base2d(), in_channels=1)
    # strength 1: the style cost alone, so the test is about the extractor carrying a 2-D style
    result = stylize(content, image, extractor=net, steps=30, scales=1, progress=False, strength=1.0)
    before = evaluate_costs(net, content, image, content)["style"]
    after = evaluate_costs(net, content, image, result.output)["style"]
    assert after <= before / 10


def test_cli_mask_and_2d_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    monkeypatch.setattr(V, "default_2d_extractor", _base2d)
    content, style = _pair(16)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    data = (content[0].numpy() * 800 + 100).astype(np.int16)
    nib.Nifti1Image(data, affine).to_filename(tmp_path / "c.nii.gz")
    nib.Nifti1Image(style[0].numpy().astype(np.float32), affine).to_filename(tmp_path / "s.nii.gz")
    mask = np.zeros(data.shape, np.uint8)
    mask[2:10, 3:12, 4:14] = 1
    nib.Nifti1Image(mask, affine).to_filename(tmp_path / "m.nii.gz")
    Image.fromarray((style[0, :, :, 0].numpy() * 255).astype(np.uint8)).save(tmp_path / "s.png")
    common = ["-n", "3", "--scales", "1", "-q", "--size", "16"]
    code = main(
        [
            "run",
            str(tmp_path / "c.nii.gz"),
            str(tmp_path / "s.nii.gz"),
            "-o",
            str(tmp_path / "o.nii.gz"),
            "--mask",
            str(tmp_path / "m.nii.gz"),
            "--preview",
            str(tmp_path / "p.png"),
            *common,
        ]
    )
    assert code == 0 and (tmp_path / "p.png").stat().st_size > 0
    out = np.asanyarray(nib.load(tmp_path / "o.nii.gz").dataobj)
    assert out.dtype == np.int16 and np.array_equal(out[mask == 0], data[mask == 0])
    code = main(
        [
            "run",
            str(tmp_path / "c.nii.gz"),
            str(tmp_path / "s.png"),
            "-o",
            str(tmp_path / "o2.nii.gz"),
            *common,
        ]
    )
    assert code == 0 and nib.load(tmp_path / "o2.nii.gz").shape == data.shape
    # a 2-D style with --mask: the slices fold the mask; outside it the content is kept bit for bit
    out3 = str(tmp_path / "o3.nii.gz")
    code = main(["run", str(tmp_path / "c.nii.gz"), str(tmp_path / "s.png"), "-o", out3, "--mask",
                 str(tmp_path / "m.nii.gz"), "--float32", "-sw", "1e4", *common])  # fmt: skip
    out = np.asanyarray(nib.load(out3).dataobj)
    assert code == 0 and np.array_equal(out[mask == 0], data[mask == 0])
    assert not np.array_equal(out[mask == 1], data[mask == 1])


def test_inflated_extractor_with_mask_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(V, "default_2d_extractor", _base2d)
    content, style = _pair(16)
    data = (content[0].numpy() * 255).astype(np.uint8)
    nib.Nifti1Image(data, np.eye(4)).to_filename(tmp_path / "c.nii")
    nib.Nifti1Image(style[0].numpy(), np.eye(4)).to_filename(tmp_path / "s.nii")
    mask = np.zeros(data.shape, np.uint8)
    mask[4:12, 4:12, 4:12] = 1
    nib.Nifti1Image(mask, np.eye(4)).to_filename(tmp_path / "m.nii")
    c, s, m, o = (str(tmp_path / n) for n in ("c.nii", "s.nii", "m.nii", "o.nii"))
    assert (
        main(["run", c, s, "-o", o, "--mask", m, "-e", "inflated-vgg", "-n", "2", "--scales", "1", "-q"]) == 0
    )
    out = np.asanyarray(nib.load(o).dataobj)
    assert out.dtype == np.uint8 and np.array_equal(out[mask == 0], data[mask == 0])


def test_2d_style_result_lies_in_the_paintings_grey_levels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A painting's style: content histogram-matched to its greys, every step clamped to their range."""
    from PIL import Image

    import ndstyle

    monkeypatch.setattr(V, "default_2d_extractor", _base2d)
    content, style = _pair(16)
    data = (content[0].numpy() * 800 + 100).astype(np.int16)
    nib.Nifti1Image(data, np.eye(4)).to_filename(tmp_path / "c.nii.gz")
    mask = np.zeros(data.shape, np.uint8)
    mask[2:14, 3:13, 4:14] = 1
    nib.Nifti1Image(mask, np.eye(4)).to_filename(tmp_path / "m.nii.gz")
    grey = (60 + style[0, :, :, 0].numpy() * 120).astype(np.uint8)  # greys 60..180
    Image.fromarray(grey).save(tmp_path / "s.png")
    out = tmp_path / "o.nii.gz"
    ndstyle.transfer(tmp_path / "c.nii.gz", tmp_path / "s.png", out, mask=tmp_path / "m.nii.gz", steps=3,
                     scales=1, size=16, style_weight=1e4, float32=True, progress=False)  # fmt: skip
    result = np.asanyarray(nib.load(out).dataobj)
    inside = result[mask == 1]
    assert inside.min() >= grey.min() - 1e-3 and inside.max() <= grey.max() + 1e-3
    assert np.array_equal(result[mask == 0], data[mask == 0])


def test_2d_style_path_takes_shallow_style_layers_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The painting path: SOLID_TEXTURE_STYLE_LAYERS on every orientation; --style-layers wins."""
    import dataclasses

    from PIL import Image

    from ndstyle.modalities.volume import MODALITY, SOLID_TEXTURE_STYLE_LAYERS
    from ndstyle.options import TransferOptions

    three_blocks = ConvNdExtractor.random(2, 3, widths=(4, 8, 8), pooling="max", seed=3)
    monkeypatch.setattr(V, "default_2d_extractor", lambda: three_blocks)
    content, style = _pair(12)
    nib.Nifti1Image((content[0].numpy() * 200).astype(np.int16), np.eye(4)).to_filename(tmp_path / "c.nii.gz")
    Image.fromarray((style[0, :, :, 0].numpy() * 255).astype(np.uint8)).save(tmp_path / "s.png")
    options = TransferOptions(size=12)
    loaded = MODALITY.load(tmp_path / "c.nii.gz", options)
    painting = MODALITY.load_style(tmp_path / "s.png", loaded, options)
    prepared = MODALITY.prepare(loaded, [painting], options)
    axes = prepared.kwargs["extractor"].slice_axes
    assert set(axes) == {"axial", "coronal", "sagittal"}
    assert prepared.kwargs["style_layers"] == [f"{a}/{n}" for a in axes for n in SOLID_TEXTURE_STYLE_LAYERS]
    given = dataclasses.replace(options, style_layers=["axial/relu1_2"])
    assert "style_layers" not in MODALITY.prepare(loaded, [painting], given).kwargs
