"""Compare the style statistics and the strength knob on the demo pair (chelsea, Starry Night).

    python examples/style_losses.py --out /tmp/style-losses [--size 128] [--steps 100]

Writes ``statistics.png`` (content, style, then one result per ``style_loss`` at the default
strength) and ``strength.png`` (the Gram result at strength 0.25, 0.5, 0.75 and 1) into ``--out``
(default: a new temporary folder), and prints each result's costs. Needs the offline VGG-16
(``pip install 'ndstyle[vgg16-offline]'``); about 3 minutes on 2 CPU cores at 128 px.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ndstyle
from ndstyle.demo import CONTENT, STYLE
from ndstyle.extractors import build_extractor
from ndstyle.losses import STYLE_LOSSES


def load(path: str | Path, size: int) -> torch.Tensor:
    """RGB ``(3, H, W)`` in [0, 1], long side ``size``."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    scale = size / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255


def strip(images: list[torch.Tensor], path: Path) -> None:
    """Save images side by side."""
    arrays = [(im.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8) for im in images]
    height = max(a.shape[0] for a in arrays)
    padded = [np.pad(a, ((0, height - a.shape[0]), (0, 2), (0, 0)), constant_values=255) for a in arrays]
    Image.fromarray(np.concatenate(padded, axis=1)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ndstyle-style-losses-"))
    out.mkdir(parents=True, exist_ok=True)
    content, style = load(CONTENT, args.size), load(STYLE, args.size)
    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    results = []
    for name in STYLE_LOSSES:
        res = ndstyle.stylize(
            content, style, extractor=net, style_loss=name, steps=args.steps, progress=False
        )
        costs = ndstyle.evaluate_costs(net, content, style, res.output)
        print(f"{name:20s} J_content {costs['content']:.4g}  J_style (Gram) {costs['style']:.4g}")
        results.append(res.output)
    strip([content, style, *results], out / "statistics.png")
    sweep = [
        ndstyle.stylize(content, style, extractor=net, strength=s, steps=args.steps, progress=False).output
        for s in (0.25, 0.5, 0.75, 1.0)
    ]
    strip([content, style, *sweep], out / "strength.png")
    print(f"wrote {out / 'statistics.png'} and {out / 'strength.png'}")


if __name__ == "__main__":
    main()
