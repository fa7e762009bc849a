"""Does the content's fine detail, added when a level is upsampled, speed up the finest level? (issue 19)

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/detail_injection.py --pair coffee-ihc --size 512 \\
        --options '{"steps": [37, 37, 150], "style_weight": 0.0001}' --out OUT.json

Each level starts from the previous level's result upsampled, which has none of the detail finer
than that level's grid. The variant adds the content's own detail at the new level,
``content - up(down(content))``, so the finest level starts with the content's edges instead of a
blurred picture. Both are ``workers.time_to_quality("ndstyle", ...)`` runs (the evaluator's J, the
seconds), each in a fresh process; the variant patches the one line of ``ndstyle.engine._Run._levels``
that upsamples the start, so it is an experiment, not an option.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
UPSAMPLE = "x = NF.resize(current, shape).detach().clone().requires_grad_(True)"
WITH_DETAIL = """x = NF.resize(current, shape)
if tuple(current.shape[2:]) != tuple(shape):
    x = x + (level.content - NF.resize(NF.resize(level.content, tuple(current.shape[2:])), shape))
x = x.detach().clone().requires_grad_(True)"""


def patch_levels() -> str:
    """Replace the upsampling line of ``_Run._levels`` by :data:`WITH_DETAIL`; return the new source."""
    import ndstyle.engine as engine

    source = textwrap.dedent(inspect.getsource(engine._Run._levels))
    line = next(line for line in source.splitlines() if UPSAMPLE in line)
    indent = line[: len(line) - len(line.lstrip())]
    source = source.replace(line, textwrap.indent(WITH_DETAIL, indent))
    namespace: dict = {}
    exec(compile(source, "detail_injection", "exec"), engine.__dict__, namespace)  # noqa: S102
    engine._Run._levels = namespace["_levels"]
    return source


def one(variant: str, pair: str, size: int, options: dict) -> dict:
    import torch

    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    if variant == "detail":
        patch_levels()
    sys.path.insert(0, str(HERE))
    from workers import time_to_quality

    run = time_to_quality("ndstyle", pair, size, options=options)
    return {"variant": variant, "objective": run["objective"], "seconds": run["seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="coffee-ihc")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--options", default='{"steps": [37, 37, 150], "style_weight": 0.0001}')
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    options = json.loads(args.options)
    if args.child is not None:
        print(json.dumps(one(args.child, args.pair, args.size, options)))
        return
    runs = []
    for variant in ("upsampled", "detail"):
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
            [*cmd, "--out", str(args.out), "--child", variant], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    args.out.write_text(
        json.dumps({"pair": args.pair, "size": args.size, "options": options, "runs": runs}, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
