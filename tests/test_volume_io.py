"""NIfTI reading/writing of the volume modality: geometry, header, dtype, scaling and mask."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from ndstyle.errors import InputFileError, ShapeError
from ndstyle.modalities.volume import MODALITY, Normalization, working_shape, write_like
from ndstyle.options import TransferOptions

NIB_DATA = Path(nib.__file__).parent / "tests" / "data"


def _args(**kw: object) -> TransferOptions:
    base: dict[str, object] = {
        "size": None,
        "vol_normalize": "percentile",
        "vol_window": (0.5, 99.5),
        "float32": False,
    }
    base.update(kw)
    return TransferOptions(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "name", ["anatomical.nii", "standard.nii.gz", "functional.nii", "example_nifti2.nii.gz"]
)
def test_round_trip_of_nibabel_test_files_is_exact(name: str, tmp_path: Path) -> None:
    """Writing back the content itself reproduces header bytes, affine, dtype, scaling and voxels."""
    path = NIB_DATA / name
    loaded = MODALITY.load(path, _args())
    out = tmp_path / f"out{''.join(path.suffixes)}"
    # the content's own values, unresampled: the exact inverse must give the raw voxels back
    img = loaded.meta["image"]
    data = np.asarray(img.dataobj, dtype=np.float64)
    data = data[None] if data.ndim == 3 else np.moveaxis(data, 3, 0)
    norm = loaded.meta["normalization"]
    write_like(out, torch.from_numpy(norm.forward(data)), loaded)
    back = nib.load(out)
    assert type(back) is type(img)
    # every header byte is kept except ``descrip``, which marks the result as stylised
    assert _disk_header(out, blank_descrip=True) == _disk_header(path, blank_descrip=True)
    assert b"STYLISED" in back.header["descrip"].item()
    assert np.array_equal(back.affine, img.affine)
    assert back.get_data_dtype() == img.get_data_dtype()
    assert np.array_equal(
        np.asanyarray(back.dataobj.get_unscaled()), np.asanyarray(img.dataobj.get_unscaled())
    )
    assert np.array_equal(back.get_fdata(), img.get_fdata())


def _disk_header(path: Path, blank_descrip: bool = False) -> bytes:
    """The header bytes as stored in the file (nibabel's loaded header has scaling moved out)."""
    from nibabel.openers import ImageOpener

    klass = type(nib.load(path).header)
    with ImageOpener(str(path)) as handle:
        header = klass.from_fileobj(handle)
    if blank_descrip:
        header["descrip"] = b""
    return header.binaryblock


def test_four_d_is_channels() -> None:
    loaded = MODALITY.load(NIB_DATA / "example4d.nii.gz", _args(size=16))
    assert loaded.tensor.shape[0] == 2 and loaded.tensor.ndim == 4
    assert max(loaded.tensor.shape[1:]) == 16


def test_normalization_inverse_is_exact() -> None:
    x = np.random.default_rng(0).normal(300, 50, (2, 5, 6, 7))
    for method in ("percentile", "zscore"):
        norm = Normalization.fit(x, method)
        np.testing.assert_allclose(norm.inverse(norm.forward(x)), x, rtol=0, atol=1e-9)
    y = Normalization.fit(x, "percentile", (0.0, 100.0)).forward(x)
    assert y.min() == pytest.approx(0) and y.max() == pytest.approx(1)


def test_working_grid_is_near_isotropic() -> None:
    assert working_shape((100, 100, 20), (1.0, 1.0, 5.0), 50) == (50, 50, 50)
    assert working_shape((33, 41, 25), (2.0, 2.0, 2.0), None) == (33, 41, 25)


def _synthetic(tmp_path: Path, dtype: type = np.int16) -> tuple[Path, np.ndarray]:
    affine = np.array([[0, 0, 2.5, -30], [-1.0, 0, 0, 20], [0, 1.0, 0, -5], [0, 0, 0, 1]])
    data = (np.arange(12 * 10 * 8).reshape(12, 10, 8) % 97 * 13 - 200).astype(dtype)
    img = nib.Nifti1Image(data, affine)
    img.header.set_sform(affine, code=4)
    img.header.set_qform(affine, code=2)
    img.header["descrip"] = b"ndstyle test"
    path = tmp_path / "content.nii.gz"
    img.to_filename(path)
    return path, data


def test_result_keeps_geometry_and_mask_outside_is_bit_identical(tmp_path: Path) -> None:
    path, data = _synthetic(tmp_path)
    loaded = MODALITY.load(path, _args())
    mask = np.zeros(data.shape, bool)
    mask[3:9, 2:8, 2:6] = True
    mask_path = tmp_path / "mask.nii.gz"
    nib.Nifti1Image(mask.astype(np.uint8), nib.load(path).affine).to_filename(mask_path)
    loaded.meta["mask"] = MODALITY.read_mask(mask_path, loaded)
    result = torch.rand_like(loaded.tensor)
    out = tmp_path / "out.nii.gz"
    MODALITY.save(out, result, loaded, _args())
    back, img = nib.load(out), nib.load(path)
    assert np.array_equal(back.affine, img.affine)
    assert (int(back.header["sform_code"]), int(back.header["qform_code"])) == (4, 2)
    assert back.header.get_zooms() == img.header.get_zooms()
    assert nib.aff2axcodes(back.affine) == nib.aff2axcodes(img.affine)
    assert (
        back.header["descrip"].item().startswith(b"ndstyle ") and b"STYLISED" in back.header["descrip"].item()
    )
    assert back.get_data_dtype() == np.int16
    values = np.asanyarray(back.dataobj)
    assert np.array_equal(values[~mask], data[~mask])
    assert not np.array_equal(values[mask], data[mask])
    out32 = tmp_path / "out32.nii"
    MODALITY.save(out32, result, loaded, _args(float32=True))
    assert nib.load(out32).get_data_dtype() == np.float32
    assert np.array_equal(np.asanyarray(nib.load(out32).dataobj)[~mask], data[~mask].astype(np.float32))


def test_errors_name_the_file(tmp_path: Path) -> None:
    path, _ = _synthetic(tmp_path)
    loaded = MODALITY.load(path, _args())
    bad = tmp_path / "mask.nii"
    nib.Nifti1Image(np.ones((3, 3, 3), np.uint8), np.eye(4)).to_filename(bad)
    with pytest.raises(ShapeError, match="mask.nii"):
        MODALITY.read_mask(bad, loaded)
    junk = tmp_path / "junk.nii"
    junk.write_bytes(b"not a nifti")
    with pytest.raises(InputFileError, match="junk.nii"):
        MODALITY.load(junk, _args())


def test_png_style_is_a_depth_one_volume(tmp_path: Path) -> None:
    from PIL import Image

    path, _ = _synthetic(tmp_path)
    content = MODALITY.load(path, _args())
    png = tmp_path / "style.png"
    Image.fromarray((np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8)).save(png)
    style = MODALITY.load_style(png, content, _args())
    assert style.meta["image2d"] and style.tensor.shape[:2] == (1, 1) and style.tensor.ndim == 4


def test_a_huge_declared_volume_is_refused_before_reading(tmp_path: Path) -> None:
    """The header's shape is checked first: nothing is decoded for a volume that cannot fit."""
    path = tmp_path / "huge.nii"
    nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)).to_filename(path)
    raw = bytearray(path.read_bytes())
    raw[40:48] = np.array([3, 20000, 20000, 20000], dtype="<i2").tobytes()  # dim[0..3]
    path.write_bytes(bytes(raw))
    before = path.read_bytes()
    with pytest.raises(InputFileError, match=r"huge.nii.*declares a volume of shape \(20000, 20000, 20000\)"):
        MODALITY.load(path, _args(max_memory=1.0))
    assert path.read_bytes() == before


@pytest.mark.parametrize(("style_voxels", "style_mm"), [(40, 1.0), (80, 0.5), (20, 2.0)])
def test_a_style_volume_is_resampled_to_the_contents_voxel_size(
    tmp_path: Path, style_voxels: int, style_mm: float
) -> None:
    """A 40 mm style cube lands on 20 voxels of the content's 2 mm working grid, whatever its own
    voxel size, so its texture is matched at its size in millimetres (not stretched to --size)."""
    rng = np.random.default_rng(0)
    content_path, style_path = tmp_path / "c.nii.gz", tmp_path / "s.nii.gz"
    nib.Nifti1Image(rng.random((32, 32, 24)).astype(np.float32), np.diag([2.0, 2.0, 2.0, 1.0])).to_filename(
        content_path
    )
    cube = rng.random((style_voxels,) * 3).astype(np.float32)
    nib.Nifti1Image(cube, np.diag([style_mm] * 3 + [1.0])).to_filename(style_path)
    content = MODALITY.load(content_path, _args())
    assert tuple(content.tensor.shape[1:]) == (32, 32, 24)
    style = MODALITY.load_style(style_path, content, _args())
    assert tuple(style.tensor.shape[1:]) == (20, 20, 20)
    coarser = MODALITY.load(content_path, _args(size=16))  # 4 mm voxels: the style follows
    assert tuple(MODALITY.load_style(style_path, coarser, _args(size=16)).tensor.shape[1:]) == (10, 10, 10)
