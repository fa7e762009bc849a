"""One engine for 1-D, 2-D and 3-D: style a smooth ramp with a periodic texture in every dims.

Uses seeded random ConvNd extractors (no weights needed), prints the measured costs and writes a
preview PNG per dims:

    python examples/engine_nd.py [--out docs/img/engine] [--steps 60]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ndstyle import ConvNdExtractor, evaluate_costs, stylize
from ndstyle.preview import save_preview

SHAPES = {1: (256,), 2: (48, 48), 3: (20, 20, 20)}


def pair(spatial_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    shape = SHAPES[spatial_dims]
    axes = torch.meshgrid(*[torch.linspace(0, 1, n) for n in shape], indexing="ij")
    ramp = (sum(axes) / spatial_dims)[None]
    texture = (0.5 + 0.5 * torch.sin(sum(a * 37.0 * (i + 1) for i, a in enumerate(axes))))[None]
    return ramp, texture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("engine-example"))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--style-weight", type=float, default=300.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print("dims  J_style(S,result)/J_style(S,content)  J_content(C,result)/J_content(C,style)  seconds")
    for dims in (1, 2, 3):
        content, style = pair(dims)
        net = ConvNdExtractor.random(dims, 1, seed=0, widths=(16, 32, 64))
        start = time.perf_counter()
        result = stylize(
            content,
            style,
            extractor=net,
            steps=args.steps,
            scales=1,
            style_weight=args.style_weight,
            progress=False,
        )
        seconds = time.perf_counter() - start
        before = evaluate_costs(net, content, style, content)
        after = evaluate_costs(net, content, style, result.output)
        reference = evaluate_costs(net, content, style, style)
        print(
            f"{dims:>4}  {after['style'] / before['style']:>36.4f}  "
            f"{after['content'] / reference['content']:>38.3f}  {seconds:>7.1f}"
        )
        save_preview(args.out / f"engine_{dims}d.png", content, [style], result.output)


if __name__ == "__main__":
    main()
