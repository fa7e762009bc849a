"""Volume previews a radiologist reads: orthogonal slices in radiological orientation.

Each volume is reoriented to the closest canonical (RAS+) axes with nibabel for display only, and
drawn as one row of three views through a common point (by default the centre of the content's
mask or grid): axial and coronal in radiological convention (patient's right on the viewer's
left), sagittal with anterior on the left; every view labelled with its orientation letters and
drawn with the voxel aspect of the volume. Each row has one robust intensity window (its 0.5 and
99.5 percentiles inside the row's foreground), shared by its three views and printed beside it,
so a few outliers cannot flatten the picture. A 2-D image (a depth-1 volume, e.g. a painting
used as style) is drawn once in its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class PreviewRow:
    """One row: a title, a volume ``(X, Y, Z)`` (or ``(C, X, Y, Z)``, first channel shown), its affine.

    ``mask`` (optional, on the same grid) restricts the window's percentiles; ``image2d`` draws a
    2-D array ``(H, W)`` as it is (no reorientation).
    """

    title: str
    data: np.ndarray
    affine: np.ndarray | None = None
    mask: np.ndarray | None = None
    image2d: bool = False


def canonical(data: np.ndarray, affine: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """``data`` ``(X, Y, Z)`` reoriented to the closest RAS+ axes, and its voxel sizes."""
    import nibabel as nib

    if affine is None:
        return data, np.ones(3)
    ornt = nib.orientations.io_orientation(affine)
    out = nib.orientations.apply_orientation(data, ornt)
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    return out, zooms[np.asarray(ornt[:, 0], dtype=int)]


def robust_window(data: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """0.5 and 99.5 percentiles of ``data`` (inside ``mask`` or above the minimum)."""
    values = data[mask] if mask is not None and mask.any() else data[data > data.min()]
    if values.size == 0:
        values = data.ravel()
    lo, hi = (float(v) for v in np.percentile(values, (0.5, 99.5)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _views(
    volume: np.ndarray, zooms: np.ndarray, point: Sequence[int]
) -> list[tuple[str, np.ndarray, float, str]]:
    """``(name, 2-D picture with row 0 at the top, aspect, edge letters "top,bottom,left,right")``."""
    x, y, z = point
    axial = volume[:, :, z].T[::-1, ::-1]  # rows: A->P, columns: R->L (radiological)
    coronal = volume[:, y, :].T[::-1, ::-1]  # rows: S->I, columns: R->L
    sagittal = volume[x, :, :].T[::-1, ::-1]  # rows: S->I, columns: A->P
    return [
        ("axial", axial, zooms[1] / zooms[0], "A,P,R,L"),
        ("coronal", coronal, zooms[2] / zooms[0], "S,I,R,L"),
        ("sagittal", sagittal, zooms[2] / zooms[1], "S,I,A,P"),
    ]


def save_volume_preview(path: str | Path, rows: Sequence[PreviewRow], title: str | None = None) -> Path:
    """Write a PNG with one row per volume (see module docstring); returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(8.4, 2.9 * len(rows)), squeeze=False)
    for r, row in enumerate(rows):
        data = np.asarray(row.data, dtype=np.float64)
        data = data[0] if data.ndim == 4 else data
        if row.image2d:
            picture = np.squeeze(data)
            lo, hi = robust_window(picture)
            axes[r, 0].imshow(picture, cmap="gray", vmin=lo, vmax=hi)
            axes[r, 0].set_title("2-D style image", fontsize=8)
            for ax in axes[r]:
                ax.axis("off")
            axes[r, 0].text(-0.08, 0.5, row.title, transform=axes[r, 0].transAxes, rotation=90,
                            va="center", ha="right", fontsize=9)  # fmt: skip
            continue
        volume, zooms = canonical(data, row.affine)
        mask = None
        if row.mask is not None:
            mask, _ = canonical(np.asarray(row.mask, dtype=bool), row.affine)
        lo, hi = robust_window(volume, mask)
        if mask is not None and mask.any():
            point = [int(round(float(np.mean(np.nonzero(mask)[d])))) for d in range(3)]
        else:
            point = [n // 2 for n in volume.shape]
        for c, (name, picture, aspect, letters) in enumerate(_views(volume, zooms, point)):
            ax = axes[r, c]
            ax.imshow(picture, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            top, bottom, left, right = letters.split(",")
            style = {"color": "yellow", "fontsize": 8, "transform": ax.transAxes}
            ax.text(0.5, 0.98, top, ha="center", va="top", **style)
            ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)
            ax.text(0.02, 0.5, left, ha="left", va="center", **style)
            ax.text(0.98, 0.5, right, ha="right", va="center", **style)
            if r == 0:
                ax.set_title(name, fontsize=9)
        axes[r, 0].set_ylabel(f"{row.title}\nwindow {lo:.4g}..{hi:.4g}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


__all__ = ["PreviewRow", "canonical", "robust_window", "save_volume_preview"]
