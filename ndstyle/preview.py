"""Preview PNGs (matplotlib) of content, styles and result for any number of spatial axes.

1-D inputs are drawn as curves (one per channel), 2-D as images, 3-D as the three orthogonal
mid-slices. Modalities may draw richer previews (spectrograms, ECG leads) of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


def _as_image(x: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) or (H, W) scaled to [0, 1] for display."""
    lo, hi = float(x.min()), float(x.max())
    x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
    return np.moveaxis(x[:3], 0, -1) if x.shape[0] >= 3 else x[0]


def save_preview(
    path: str | Path,
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    result: torch.Tensor,
    titles: Sequence[str] | None = None,
) -> None:
    """Write a PNG with one column per input: content, each style, result.

    Args:
        path: PNG file to write (the caller makes the write atomic).
        content: ``(C, *spatial)``; styles: list of ``(C, *spatial_s)``; result: like content.
        titles: column titles (default: content, style 1..n, result).

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [content, *styles, result]
    names = (
        list(titles)
        if titles
        else [
            "content",
            *(f"style {i + 1}" if len(styles) > 1 else "style" for i in range(len(styles))),
            "result",
        ]
    )
    dims = content.ndim - 1
    rows = 3 if dims == 3 else 1
    fig, axes = plt.subplots(rows, len(columns), figsize=(3.2 * len(columns), 3.0 * rows), squeeze=False)
    for col, (tensor, name) in enumerate(zip(columns, names, strict=True)):
        x = tensor.detach().float().cpu().numpy()
        if dims == 1:
            ax = axes[0, col]
            for channel in x[: min(4, x.shape[0])]:
                ax.plot(channel, linewidth=0.6)
            ax.set_xlabel("sample")
        elif dims == 2:
            axes[0, col].imshow(_as_image(x), cmap="gray")
            axes[0, col].axis("off")
        else:
            for axis in range(3):
                mid = np.take(x, x.shape[axis + 1] // 2, axis=axis + 1)
                axes[axis, col].imshow(_as_image(mid), cmap="gray")
                axes[axis, col].axis("off")
        axes[0, col].set_title(name)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
