"""``ndstyle demo``: a complete transfer on data that ships with ndstyle, plus a preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .engine import stylize
from .io.atomic import atomic_output, check_output_path
from .preview import save_preview


def synthetic_pair(size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth shaded disc (content) and a diagonal-stripe texture (style), ``(3, size, size)``."""
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disc = (x**2 + y**2 < 0.5).float() * (0.6 + 0.3 * x)
    content = torch.stack([disc, 0.5 * disc + 0.2, 1 - disc]).clamp(0, 1)
    stripes = 0.5 + 0.5 * torch.sin(25 * (x + y))
    style = torch.stack([stripes, 0.3 * stripes + 0.3, 1 - stripes])
    return content, style


def run_demo(
    output_dir: str | Path,
    *,
    size: int | None = None,
    steps: int | None = None,
    device: str = "auto",
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Path]:
    """Stylise the bundled pair and write the result (``.npy``) and a preview PNG.

    Returns:
        ``{"result": path, "preview": path}``.

    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"result": out / "demo_result.npy", "preview": out / "demo_preview.png"}
    for path in paths.values():
        check_output_path(path, overwrite=overwrite)
    content, style = synthetic_pair(size or 96)
    result = stylize(content, style, steps=steps or 100, device=device, progress=progress)
    with atomic_output(paths["result"], overwrite=overwrite) as tmp, open(tmp, "wb") as handle:
        np.save(handle, result.output.numpy())
    with atomic_output(paths["preview"], overwrite=overwrite) as tmp:
        save_preview(tmp, content, [style], result.output)
    return paths
