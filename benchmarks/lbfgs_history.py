"""Does a longer L-BFGS history converge faster? One time-to-quality run per history length.

Usage::

    python benchmarks/lbfgs_history.py --pair coffee-ihc --size 512 --histories 50 100 \\
        --options '{"steps": 150, "style_weight": 0.0001}' --out OUT.json

Each run is ``workers.time_to_quality("ndstyle", ...)`` (the evaluator's J every 10 steps, peak
memory) with :data:`ndstyle.memory.LBFGS_HISTORY` set to the length, in a fresh process, one at a
time. docs/benchmarks.md ("What each default costs and buys") quotes the result.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(history: str, pair: str, size: int, options: dict) -> dict:
    """Run one history length in this process (called in a fresh child by :func:`main`)."""
    import torch

    import ndstyle.memory

    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    ndstyle.memory.LBFGS_HISTORY = int(history)
    sys.path.insert(0, str(HERE))
    from workers import time_to_quality

    return {"history": int(history), **time_to_quality("ndstyle", pair, size, options=options)}


def main() -> None:
    sys.path.insert(0, str(HERE))
    from workers import run_variants, variant_parser

    parser = variant_parser(__doc__.splitlines()[0], '{"steps": 150, "style_weight": 0.0001}')
    parser.add_argument("--histories", type=int, nargs="+", default=[50, 100])
    args = parser.parse_args()

    def show(run: dict) -> None:
        print(
            f"history {run['history']}: J {run['objective']:.1f} in {run['seconds']:.1f} s, "
            f"peak {run['peak_mb']:.0f} MB",
            flush=True,
        )

    runs = run_variants(__file__, args, one, [str(h) for h in args.histories], show=show)
    if runs is not None:
        args.out.write_text(json.dumps({"pair": args.pair, "size": args.size, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
