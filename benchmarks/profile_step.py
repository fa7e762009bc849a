"""Where an engine step's time goes: torch.profiler over a few single-scale steps.

Usage::

    python benchmarks/profile_step.py --size 256 --precision bf16 --steps 24

Prints milliseconds per step for the operators that take the most time (self time), grouped
into the extractor's convolutions and pooling (what the bare forward+backward also does), the
Gram products (``aten::bmm``) and everything else. The run's setup (content targets, style Grams,
the last evaluation: about two extractor passes) is spread over the steps, so use 20 or more.
Companion to ``run.py --sections step``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Operators that the bare extractor forward+backward runs too.
EXTRACTOR_OPS = (
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::max_pool2d_with_indices",
    "aten::max_pool2d_with_indices_backward",
    "aten::threshold_backward",
    "aten::clamp_min",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="long side in pixels (default: %(default)s)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--pair", default="chelsea-starry")
    parser.add_argument("--rows", type=int, default=15, help="operators to list")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))

    from inputs import load_pair

    from ndstyle import stylize
    from ndstyle.extractors import build_extractor

    content, style = load_pair(args.pair, args.size)
    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    common = dict(extractor=net, scales=1, precision=args.precision, progress=False)
    stylize(content, style, steps=3, **common)  # warm-up outside the profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        stylize(content, style, steps=args.steps, **common)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    per_step = {e.key: e.self_cpu_time_total / 1000 / args.steps for e in events}
    total = sum(per_step.values())
    extractor = sum(v for k, v in per_step.items() if k in EXTRACTOR_OPS)
    gram = per_step.get("aten::bmm", 0.0)
    print(f"{args.size} px ({'x'.join(map(str, content.shape[1:]))}), {args.precision}, {args.steps} steps")
    print(
        f"  ms per step: total {total:.1f}, extractor ops {extractor:.1f}, Gram products {gram:.1f}, "
        f"other {total - extractor - gram:.1f}"
    )
    for event in events[: args.rows]:
        print(f"  {per_step[event.key]:8.2f} ms  {event.count / args.steps:6.1f} calls  {event.key}")


if __name__ == "__main__":
    main()
