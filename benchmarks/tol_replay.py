"""Replay the ``tol`` stopping rule on the per-step J of ``tol=0`` runs written by ``tol.py``.

    python benchmarks/tol_replay.py /tmp/tol128.json --tols 1e-4 3e-4 1e-3 3e-3 1e-2

Exact for single-level runs (stopping only truncates the run: the result is the best iterate so
far), an approximation for pyramids (a coarse level stopped earlier changes the next level's
start). Prints, per run and tol, the steps kept and the best J relative to running every step.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

WINDOW = 10  # ndstyle.engine.TOL_WINDOW


def stop_step(totals: list[float], tol: float) -> int:
    """Steps the engine runs on one level with ``tol`` (the rule of ``_Run._converged``)."""
    for k in range(WINDOW + 1, len(totals) + 1):
        then, now = min(totals[: k - WINDOW]), min(totals[:k])
        if then - now <= tol * abs(then):
            return k
    return len(totals)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path)
    parser.add_argument("--tols", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    args = parser.parse_args()
    runs = json.loads(args.results.read_text())
    print("| run | levels | tol | steps kept | best J / best J of every step |")
    print("|---|---|---|---|---|")
    for key, run in runs.items():
        if run["tol"] != 0:
            continue
        levels = sorted(set(run["levels"]))
        last = [t for t, lv in zip(run["totals"], run["levels"], strict=True) if lv == levels[-1]]
        for tol in args.tols:
            kept = stop_step(last, tol)
            ratio = min(last[:kept]) / min(last)
            print(f"| {key} | {len(levels)} | {tol:g} | {kept} of {len(last)} | {ratio:.4f} |")


if __name__ == "__main__":
    main()
