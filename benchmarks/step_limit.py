"""What the engine's L-BFGS step limit does to image results (``ndstyle.engine.MAX_STEP_FRACTION``).

Each benchmark pair at ``--size`` px with the defaults (offline VGG-16, strength, ``tol``), once
with the limit and once without it (``MAX_STEP_FRACTION = inf``); prints the best J of each and
their relative difference.

Run: ``OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/step_limit.py [--size 128] [--pairs ...]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inputs import load_pair  # noqa: E402

import ndstyle.engine as engine  # noqa: E402
from ndstyle import stylize  # noqa: E402
from ndstyle.extractors import build_extractor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pairs", nargs="+", default=["astronaut-hubble", "coffee-ihc", "chelsea-starry"])
    args = parser.parse_args()
    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    limit = engine.MAX_STEP_FRACTION
    for name in args.pairs:
        content, style = load_pair(name, args.size)
        best = {}
        for label, fraction in (("no limit", math.inf), ("limit", limit)):
            engine.MAX_STEP_FRACTION = fraction
            best[label] = stylize(content, style, extractor=net, progress=False).best_cost
        engine.MAX_STEP_FRACTION = limit
        change = best["limit"] / best["no limit"] - 1
        print(json.dumps({"pair": name, "size": args.size, **best, "relative_change": change}), flush=True)


if __name__ == "__main__":
    main()
