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

import inspect
import json
import os
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
    sys.path.insert(0, str(HERE))
    from workers import run_variants, variant_parser

    parser = variant_parser(__doc__.splitlines()[0], '{"steps": [37, 37, 150], "style_weight": 0.0001}')
    args = parser.parse_args()
    runs = run_variants(__file__, args, one, ["upsampled", "detail"], show=lambda run: print(run, flush=True))
    if runs is not None:
        record = {"pair": args.pair, "size": args.size, "options": json.loads(args.options), "runs": runs}
        args.out.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
