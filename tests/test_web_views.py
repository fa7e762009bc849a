"""The pictures of ``ndstyle serve``: slice orientation, windowing and image sizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from ndstyle.web.schema import Field, parse_value
from ndstyle.web.views import SliceView, image_png, snapshot_png


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def marked_volume(code: str) -> torch.Tensor:
    """A (1, 8, 10, 12) volume stored in ``code`` order with bright voxels at patient R, A and S ends."""
    ras = np.zeros((8, 10, 12), np.float32)
    ras[-1, 5, 6] = 1.0  # far right
    ras[4, -1, 6] = 2.0  # far anterior
    ras[4, 5, -1] = 3.0  # far superior
    volume = ras
    axes = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
    volume = np.transpose(volume, [axes[c] for c in code])
    for axis, letter in enumerate(code):
        if letter in "LPI":
            volume = np.flip(volume, axis)
    return torch.from_numpy(volume.copy())[None]


@pytest.mark.parametrize("code", ["RAS", "LPS", "ASL", "PIR"])
def test_slices_are_drawn_radiologically_whatever_the_storage_order(code):
    view = SliceView(marked_volume(code), code)
    assert view.shape == (8, 10, 12) and [view.plane(a) for a in range(3)] == ["sagittal", "coronal", "axial"]
    axial = pixels(view.slice_png(2, 6))  # rows: anterior at the top; columns: patient's right on the left
    assert axial.shape == (10, 8)
    assert sorted(zip(*np.nonzero(axial))) == [(0, 3), (4, 0)]  # anterior on top, right on the left
    sagittal = pixels(view.slice_png(0, 4))  # superior up, the face to the left
    assert sagittal.shape == (12, 10)
    assert sorted(zip(*np.nonzero(sagittal))) == [(0, 4), (5, 0)]


def test_slices_without_orientation_are_named_by_axis_and_clamped():
    view = SliceView(torch.rand(1, 4, 5, 6), None)
    assert view.plane(0) == "axis 0" and not view.anatomical
    assert pixels(view.slice_png(1, 99)).shape == (6, 4)
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        view.slice_png(3, 0)


def test_windowing_keeps_images_and_spreads_intensities():
    image = torch.zeros(3, 40, 80)
    image[0] = 1.0
    out = pixels(image_png(image, max_side=20))
    assert out.shape == (10, 20, 3) and (out[..., 0] == 255).all() and (out[..., 1] == 0).all()
    ct = torch.linspace(-1000, 3000, 64 * 64).reshape(1, 64, 64)
    grey = pixels(image_png(ct))
    assert grey.ndim == 2 and grey.min() == 0 and grey.max() == 255


@pytest.mark.parametrize("shape", [(2, 300), (3, 16, 20), (1, 6, 7, 8)])
def test_snapshot_for_each_number_of_spatial_axes(shape):
    png = snapshot_png(torch.rand(shape))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("kind", "raw", "value"),
    [
        ("int", "12", 12),
        ("float", "0.5", 0.5),
        ("bool", "on", True),
        ("floats", "1, 0.5", [1.0, 0.5]),
        ("names", "conv1_1,conv2_1", ["conv1_1", "conv2_1"]),
        ("text", "auto", "auto"),
        ("text", "3", 3),
        ("text", "0.5,1", [0.5, 1.0]),
        ("int", "", None),
    ],
)
def test_parse_value_by_kind(kind, raw, value):
    field = Field(name="x", kind=kind, default=None, help="", group="g", optional=True)
    assert parse_value(field, raw) == value
