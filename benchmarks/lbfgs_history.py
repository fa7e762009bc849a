"""Does a longer L-BFGS history converge faster? One time-to-quality run per history length.

Usage::

    python benchmarks/lbfgs_history.py --pair coffee-ihc --size 512 --histories 50 100 \\
        --options '{"steps": 150, "style_weight": 0.0001}' --out OUT.json

Each run is ``workers.time_to_quality("ndstyle", ...)`` (the evaluator's J every 10 steps, peak
memory) with :data:`ndstyle.memory.LBFGS_HISTORY` set to the length, in a fresh process, one at a
time. docs/benchmarks.md ("What each default costs and buys") quotes the result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(history: int, pair: str, size: int, options: dict) -> dict:
    """Run one history length in this process (called in a fresh child by :func:`main`)."""
    import torch

    import ndstyle.memory

    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    ndstyle.memory.LBFGS_HISTORY = history
    sys.path.insert(0, str(HERE))
    from workers import time_to_quality

    return {"history": history, **time_to_quality("ndstyle", pair, size, options=options)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="coffee-ihc")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--histories", type=int, nargs="+", default=[50, 100])
    parser.add_argument(
        "--options", default='{"steps": 150, "style_weight": 0.0001}', help="stylize keywords"
    )
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = json.loads(args.options)
    if args.child is not None:
        print(json.dumps(one(args.child, args.pair, args.size, options)))
        return
    runs = []
    for history in args.histories:
        cmd = [
            sys.executable,
            __file__,
            "--pair",
            args.pair,
            "--size",
            str(args.size),
            "--options",
            args.options,
        ]
        done = subprocess.run(
            [*cmd, "--out", str(args.out), "--child", str(history)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(
            f"history {history}: J {run['objective']:.1f} in {run['seconds']:.1f} s, "
            f"peak {run['peak_mb']:.0f} MB",
            flush=True,
        )
    args.out.write_text(json.dumps({"pair": args.pair, "size": args.size, "runs": runs}, indent=1) + "\n")


if __name__ == "__main__":
    main()
