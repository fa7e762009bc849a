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


def figure(pictures: dict[str, list[tuple[int, torch.Tensor]]], rows: list[dict], path: Path) -> None:
    """Per pair a row: each margin's result, then the rings' brightness against the distance to the border."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ndstyle.metrics.image import ring_profile

    frame = {(r["pair"], r["margin"]): r["border_frame"] for r in rows}
    n = max(len(v) for v in pictures.values())
    fig, axes = plt.subplots(
        len(pictures), n + 1, figsize=(2.8 * (n + 1), 2.2 * len(pictures)), squeeze=False
    )
    for row, (name, results) in enumerate(pictures.items()):
        plot = axes[row, n]
        for col, (margin, x) in enumerate(results):
            axes[row, col].imshow(x.clamp(0, 1).permute(1, 2, 0).numpy())
            axes[row, col].set_title(
                f"{name}, margin {margin}\nborder_frame {frame[name, margin]:.2f}", fontsize=8
            )
            axes[row, col].axis("off")
            profile, _ = ring_profile(x, depth=12)
            plot.plot(
                range(len(profile)), profile.numpy(), marker="o", markersize=3, label=f"margin {margin}"
            )
        plot.set_xlabel("distance from the border (px)", fontsize=8)
        plot.set_ylabel("ring - inside (spreads)", fontsize=8)
        plot.tick_params(labelsize=7)
        plot.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--options", default='{"steps": 100, "strength": 0.75}', help="stylize keywords")
    parser.add_argument("--margins", type=int, nargs="+", default=[0, 4])
    parser.add_argument("--pairs", nargs="+", default=["rocket-gravel", "chelsea-starry"])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--png", type=Path, default=None, help="a figure: each pair's results, edges enlarged"
    )
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    options = json.loads(args.options)
    vgg = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    rows = []
    pictures: dict[str, list[tuple[int, torch.Tensor]]] = {}
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
            pictures.setdefault(name, []).append((margin, result.output))
            print(
                f"| {name} | {margin} | {row['border_frame']:.2f} | {row['structure_kept']:.2f} | "
                f"{row['colour_ratio']:.2f} | {row['content_cost']:.4g} | {row['style_cost']:.3g} | "
                f"{seconds:.0f} s |",
                flush=True,
            )
    if args.png is not None:
        figure(pictures, rows, args.png)
    if args.out is not None:
        setup = {"size": args.size, "options": options, "threads": torch.get_num_threads()}
        args.out.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
