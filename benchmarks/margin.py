"""What ``margin`` does to the edge, the balance and the result's own costs, per pair and margin.

Usage::

    python benchmarks/margin.py --size 128 --options '{"steps": 100, "strength": 0.75}' \\
        --margins 0 1 2 4 --pairs rocket-gravel chelsea-starry [--out OUT.json]

For each pair (``benchmarks/style_losses.py``'s) and margin: ``stylize`` with the offline VGG-16,
``seed=0``, then the image judge (:mod:`ndstyle.metrics.image`: ``border_frame``,
``structure_kept``, ``colour_ratio``) and the seeds' costs of the result alone
(:func:`ndstyle.evaluate_costs`). docs/style-losses.md ("Border frame") quotes the output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from style_losses import all_pairs, rgb  # noqa: E402

from ndstyle import evaluate_costs, stylize  # noqa: E402
from ndstyle.extractors import build_extractor  # noqa: E402
from ndstyle.metrics.image import image_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--options", default='{"steps": 100, "strength": 0.75}', help="stylize keywords")
    parser.add_argument("--margins", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--pairs", nargs="+", default=["rocket-gravel", "chelsea-starry"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    options = json.loads(args.options)
    vgg = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    rows = []
    for name in args.pairs:
        content, style = (rgb(p, args.size) for p in all_pairs()[name])
        for margin in args.margins:
            start = time.perf_counter()
            result = stylize(content, style, extractor=vgg, seed=0, progress=False, margin=margin, **options)
            seconds = time.perf_counter() - start
            judged = image_report(content, [style], result.output)
            costs = evaluate_costs(vgg, content, style, result.output)
            row = {
                "pair": name,
                "margin": margin,
                "border_frame": judged["border_frame"]["result"],
                "structure_kept": judged["structure_kept"],
                "colour_ratio": judged["colour_ratio"],
                "content_cost": costs["content"],
                "style_cost": costs["style"],
                "seconds": seconds,
            }
            rows.append(row)
            print(
                f"| {name} | {margin} | {row['border_frame']:.2f} | {row['structure_kept']:.2f} | "
                f"{row['colour_ratio']:.2f} | {row['content_cost']:.4g} | {row['style_cost']:.3g} | "
                f"{seconds:.0f} s |",
                flush=True,
            )
    if args.out is not None:
        setup = {"size": args.size, "options": options, "threads": torch.get_num_threads()}
        args.out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
