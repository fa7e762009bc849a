"""The light frame inside the border of VGG results, per padding of the convolutions.

``python benchmarks/vgg_border.py [--size 128] [--transfer]`` prints, for each padding mode:

- the border anomaly of the first step the style cost asks for (the negative gradient at the
  content, averaged over colour channels): mean over distances d = 0..4 px from the border of
  |ring(d) - interior| (interior: d >= 8), divided by the mean |step|; 0 = the border is asked to
  change like the interior. Four pairs of real pictures.
- with ``--transfer``: 100-step transfers (style_weight 1e-4, seed 0) of chelsea + Starry Night and
  rocket + gravel, with their ring brightness by distance and the corner chroma (mean max-min over
  RGB in the 6x6 corner, 0..255; a grey style should give grey corners), PNGs written to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ndstyle
from ndstyle.demo import CONTENT, STYLE
from ndstyle.extractors import build_extractor
from ndstyle.extractors.vgg import PADDING_MODES
from ndstyle.losses import PerceptualLoss
from ndstyle.metrics.image import distance_to_border


def skimage_file(name: str) -> Path:
    import skimage

    return Path(skimage.__file__).parent / "data" / name


PAIRS = {
    "rocket-gravel": ("rocket.jpg", "gravel.png"),
    "chelsea-starry": (CONTENT, STYLE),
    "coffee-brick": ("coffee.png", "brick.png"),
    "astronaut-grass": ("astronaut.png", "grass.png"),
}


def square(path: str | Path, size: int) -> torch.Tensor:
    """Centre square crop resized to ``size``: ``(3, size, size)`` in [0, 1]."""
    file = Path(path) if Path(path).is_absolute() else skimage_file(str(path))
    with Image.open(file) as opened:
        im = opened.convert("RGB")
    w, h = im.size
    s = min(w, h)
    im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    im = im.resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255


def ring(x: torch.Tensor, lo: int, hi: int) -> float:
    """Mean over channels and over pixels at distance lo..hi-1 from the border."""
    d = distance_to_border(x.shape[-2:])
    return float(x.mean(0)[(d >= lo) & (d < hi)].mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--transfer", action="store_true")
    parser.add_argument("--out", type=Path, default=None, help="folder for the transfer PNGs")
    args = parser.parse_args()
    size = args.size
    for mode in PADDING_MODES:
        net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3, padding=mode)
        row = {}
        for name, (c, s) in PAIRS.items():
            content, style = square(c, size)[None], square(s, size)[None]
            loss = PerceptualLoss(net, content_layers=[], style_layers=net.default_style_layers)
            loss.set_styles([style])
            x = content.clone().requires_grad_(True)
            loss(x).style.backward()
            step = -x.grad[0] / x.grad.abs().mean()
            row[name] = float(np.mean([abs(ring(step, d, d + 1) - ring(step, 8, size)) for d in range(5)]))
        cells = " ".join(f"{k} {v:.3f}" for k, v in row.items())
        print(f"{mode:16s} step border anomaly: {cells} | mean {np.mean(list(row.values())):.3f}", flush=True)
        if not args.transfer:
            continue
        for name in ("chelsea-starry", "rocket-gravel"):
            c, s = PAIRS[name]
            content, style = square(c, size), square(s, size)
            out = ndstyle.stylize(
                content, style, extractor=net, steps=100, style_weight=1e-4, progress=False
            ).output
            profile = " ".join(f"{255 * ring(out, d, d + 1):4.0f}" for d in range(6))
            corner = out[:, :6, :6].reshape(3, -1)
            chroma = float((corner.max(0).values - corner.min(0).values).mean() * 255)
            print(
                f"    {name}: ring d=0..5 {profile} interior {255 * ring(out, 8, size):4.0f}; "
                f"corner chroma {chroma:.1f}",
                flush=True,
            )
            if args.out is not None:
                args.out.mkdir(parents=True, exist_ok=True)
                array = (out.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
                Image.fromarray(array).save(args.out / f"{name}_{mode}.png")


if __name__ == "__main__":
    main()
