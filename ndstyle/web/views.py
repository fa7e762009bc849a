"""PNG pictures for the page: images as they are, volumes as slices, signals as curves.

Everything here turns a tensor ``(C, *spatial)`` into PNG bytes in memory (nothing is written to
disk). Richer, field-specific figures (spectrograms, ECG leads) come from the modalities' own
previews, which :func:`ndstyle.transfer` writes with ``preview=``.
"""

from __future__ import annotations

import io

import numpy as np
import torch

#: Anatomical plane that holds an axis fixed, by the axis' orientation letter (after RAS reorientation).
PLANES = ("sagittal", "coronal", "axial")
_POSITIVE = {"L": "R", "R": "R", "P": "A", "A": "A", "I": "S", "S": "S"}


def encode_png(pixels: np.ndarray) -> bytes:
    """``(H, W)`` or ``(H, W, 3)`` uint8 -> PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()


def window(values: np.ndarray) -> tuple[float, float]:
    """Display range: [0, 1] for data already in it (images), else the 1st-99th percentile."""
    lo, hi = float(values.min()), float(values.max())
    if lo >= -0.01 and hi <= 1.01:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, (1.0, 99.0)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Scale ``values`` from ``[lo, hi]`` to 0-255."""
    return np.rint(np.clip((values - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def image_png(tensor: torch.Tensor, max_side: int = 512) -> bytes:
    """A 2-D tensor ``(C, H, W)`` as a PNG (RGB from channels 0-2, else grey), long side <= max_side."""
    x = tensor.detach().float().cpu()
    if x.ndim != 3:
        raise ValueError(f"expected (C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[1:]
    if max(h, w) > max_side:
        factor = max_side / max(h, w)
        size = (max(1, round(h * factor)), max(1, round(w * factor)))
        x = torch.nn.functional.interpolate(x[None], size=size, mode="area")[0]
    values = x.numpy()
    pixels = to_uint8(values, *window(values))
    return encode_png(np.moveaxis(pixels[:3], 0, -1) if pixels.shape[0] >= 3 else pixels[0])


class SliceView:
    """Slices of a volume ``(C, X, Y, Z)`` through any voxel, in anatomical orientation where known.

    With an orientation code such as ``"LPS"`` the volume is flipped to RAS first, so that axis 0
    gives sagittal, 1 coronal and 2 axial slices, drawn as radiology viewers do: superior (or
    anterior) up, the patient's right on the picture's left, the face to the left in sagittal
    slices. Without a code the slices are named by axis and drawn without flips (first in-plane
    axis across, second up). Channel 0 is shown, windowed once for the whole volume.
    """

    def __init__(self, tensor: torch.Tensor, orientation: str | None = None) -> None:
        x = tensor.detach().float().cpu().numpy()
        if x.ndim != 4:
            raise ValueError(f"expected a volume (C, X, Y, Z), got shape {x.shape}")
        volume = x[0]
        code = (orientation or "").upper()
        self.anatomical = len(code) == 3 and {_POSITIVE.get(c) for c in code} == {"R", "A", "S"}
        if self.anatomical:
            order = [code.index(next(c for c in code if _POSITIVE[c] == t)) for t in "RAS"]
            for axis, letter in enumerate(code):
                if letter in "LPI":
                    volume = np.flip(volume, axis)
            volume = np.transpose(volume, order)
        self.volume = np.ascontiguousarray(volume)
        self.lo, self.hi = window(self.volume)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxels per displayed axis."""
        x, y, z = self.volume.shape
        return x, y, z

    def plane(self, axis: int) -> str:
        """The name of the slices that hold ``axis`` fixed."""
        return PLANES[axis] if self.anatomical else f"axis {axis}"

    def slice_png(self, axis: int, index: int) -> bytes:
        """The slice ``index`` across ``axis`` (clamped into range) as a grey PNG."""
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
        index = int(min(max(index, 0), self.volume.shape[axis] - 1))
        return encode_png(self._draw(np.take(self.volume, index, axis=axis)))

    def _draw(self, plane: np.ndarray) -> np.ndarray:
        """A 2-D slice (first axis across, second up) as display pixels."""
        pixels = np.rot90(to_uint8(plane, self.lo, self.hi))
        return np.ascontiguousarray(np.fliplr(pixels) if self.anatomical else pixels)

    def mid_slices_png(self) -> bytes:
        """The three orthogonal mid-slices side by side (an intermediate preview)."""
        tiles = [self._draw(np.take(self.volume, n // 2, axis=a)) for a, n in enumerate(self.volume.shape)]
        height = max(t.shape[0] for t in tiles)
        padded = [np.pad(t, ((0, height - t.shape[0]), (0, 4))) for t in tiles]
        return encode_png(np.concatenate(padded, axis=1))


def curves_png(tensor: torch.Tensor, width: float = 7.0, height: float = 2.2) -> bytes:
    """A 1-D tensor ``(C, T)`` as curves (up to 4 channels), for intermediate previews."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    x = tensor.detach().float().cpu().numpy()
    fig = Figure(figsize=(width, height), dpi=80)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for channel in x[:4]:
        ax.plot(channel, linewidth=0.5)
    ax.set_xlabel("sample")
    ax.margins(x=0)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def snapshot_png(tensor: torch.Tensor, orientation: str | None = None) -> bytes:
    """Any ``(C, *spatial)`` with 1-3 spatial axes as one PNG: curves, an image or mid-slices."""
    dims = tensor.ndim - 1
    if dims == 1:
        return curves_png(tensor)
    if dims == 2:
        return image_png(tensor)
    if dims == 3:
        return SliceView(tensor, orientation).mid_slices_png()
    raise ValueError(f"expected 1, 2 or 3 spatial axes, got shape {tuple(tensor.shape)}")
