"""Per-step time of each style statistic against the Gram's (target: at most 1.2x at 512 px).

One "step" is what an L-BFGS iteration costs: one forward pass of the offline VGG-16 at the content
and style layers and one backward pass, plus the statistic's own work (``PerceptualLoss`` with the
default layers). Statistics are timed round-robin (gram, mean-cov, sliced-wasserstein, histogram,
gram, ...) so that load from other processes falls on all of them alike; the median of
``--repeats`` rounds is reported. ``python benchmarks/style_loss_speed.py --size 512 --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inputs import load_pair  # noqa: E402

from ndstyle.engine import native_bf16, resolve_device  # noqa: E402
from ndstyle.extractors import build_extractor  # noqa: E402
from ndstyle.losses import STYLE_LOSSES, PerceptualLoss  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    parser.add_argument("--out", type=Path, default=None, help="write speed.json here")
    parser.add_argument(
        "--statistic-only",
        action="store_true",
        help="time only each statistic's own work (its cost and gradient on fixed features), "
        "less sensitive to other processes than the whole step",
    )
    parser.add_argument("--losses", nargs="*", default=list(STYLE_LOSSES), help="statistics to time")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and native_bf16(device))
    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3).to(device)
    content, style = load_pair("chelsea-starry", args.size)
    content, style = content[None].to(device), style[None].to(device)
    losses = {}
    for name in dict.fromkeys(["gram", *args.losses]):
        loss = PerceptualLoss(
            net,
            content_layers=list(net.default_content_layers),
            style_layers=net.default_style_layers,
            style_weight=1e-4,
            style_loss=name,
            autocast_dtype=torch.bfloat16 if bf16 else None,
        )
        loss.set_content(content)
        loss.set_styles([style])
        losses[name] = loss
    x = content.clone().requires_grad_(True)
    with torch.no_grad():
        features = losses["gram"].features(content)
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in features.items()}

    def step(loss: PerceptualLoss) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        if args.statistic_only:
            for v in leaves.values():
                v.grad = None
            loss.style_cost(leaves).backward()
        else:
            x.grad = None
            loss(x).total.backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for loss in losses.values():
        step(loss)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in losses}
    for _ in range(args.repeats):
        for name, loss in losses.items():
            times[name].append(step(loss))
    median = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "size": args.size,
        "device": str(device),
        "precision": "bf16" if bf16 else "fp32",
        "what": "statistic only" if args.statistic_only else "whole step",
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "seconds": times,
        "median_seconds": median,
        "ratio_to_gram": {name: median[name] / median["gram"] for name in median},
    }
    print(
        json.dumps(
            {
                k: result[k]
                for k in ("size", "device", "precision", "threads", "median_seconds", "ratio_to_gram")
            },
            indent=1,
        )
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        kind = "_statistic" if args.statistic_only else ""
        (args.out / f"speed_{args.size}_{device.type}{kind}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
