"""Stopping at convergence: final J and wall time of ndstyle's default run for several ``tol``.

    python benchmarks/tol.py --out benchmarks/results/tol.json --size 256 --tols 0 1e-3 3e-4

One process, the offline VGG-16 loaded once; per pair the variants run one after the other (side
by side in time). ``objective`` is the fixed fp32 evaluator of ``workers.objective`` at the working
size; ``level_steps`` where each pyramid level stopped; ``totals`` the engine's J per step.
Results are merged into ``--out`` after every run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tols", type=float, nargs="+", default=[0.0, 1e-3, 3e-4])
    parser.add_argument("--pairs", nargs="+", default=["chelsea-starry", "astronaut-hubble", "coffee-ihc"])
    args = parser.parse_args()
    from inputs import load_pair
    from workers import _vgg, objective

    from ndstyle import stylize

    net = _vgg(torch.device("cpu"))
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    for pair in args.pairs:
        content, style = load_pair(pair, args.size)
        for tol in args.tols:
            key = f"{pair}/{args.size}/{tol:g}"
            if key in results:
                continue
            start = time.perf_counter()
            result = stylize(content, style, extractor=net, progress=False, tol=tol)
            seconds = time.perf_counter() - start
            results[key] = {
                "pair": pair,
                "size": args.size,
                "tol": tol,
                "seconds": seconds,
                "objective": objective(net, content, style, result.output),
                "best_cost": result.best_cost,
                "level_steps": result.level_steps,
                "precision": result.precision,
                "totals": [r.total for r in result.history],
                "levels": [r.scale for r in result.history],
                "step_seconds": [r.seconds for r in result.history],
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))
            print(
                key, f"{seconds:.1f}s", f"J={results[key]['objective']:.6g}", result.level_steps, flush=True
            )


if __name__ == "__main__":
    main()
