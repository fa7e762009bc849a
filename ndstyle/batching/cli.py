"""``ndstyle batch``: the command line of :func:`ndstyle.batching.batch`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .options import add_run_options, given_options


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    """Add the ``batch`` subcommand to ``subparsers`` (called by :mod:`ndstyle.cli`)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help="style many files: folders, several styles or a manifest, on local workers or Ray",
        description=(
            "Style every content file of INPUTs (files or folders, searched recursively by extension) "
            "with the --style file(s), or every row of a --manifest. Results mirror the input tree "
            "under -o OUTDIR, with a summary OUTDIR/ndstyle-batch.jsonl (one line per item). Rerunning "
            "the same command skips finished items. Exit status 0 only if no item failed."
        ),
    )
    parser.add_argument("inputs", type=Path, nargs="*", metavar="INPUT", help="content files or folders")
    parser.add_argument(
        "--style", dest="style_files", type=Path, action="append", default=[], metavar="FILE",
        help="style file for every content (repeat for several styles)",
    )  # fmt: skip
    parser.add_argument(
        "-o", "--output-dir", type=Path, required=True, metavar="OUTDIR", help="result folder"
    )
    parser.add_argument(
        "--manifest", type=Path, default=None, metavar="FILE",
        help="CSV or JSONL: content, style (several: a.jpg;b.jpg), optional output and per-row options",
    )  # fmt: skip
    parser.add_argument(
        "--ext", dest="extensions", action="append", default=None, metavar=".EXT",
        help="only these extensions from folders (repeat; default: every readable one)",
    )  # fmt: skip
    parser.add_argument("--redo", action="store_true", help="run every item again, replacing outputs")
    parser.add_argument("--overwrite", action="store_true", help="same as --redo (as in ndstyle run)")
    parser.add_argument("--preview", action="store_true", help="also write <output>.preview.png per item")
    parser.add_argument("--report", action="store_true", help="also write <output>.report.json per item")
    where = parser.add_argument_group("where items run")
    where.add_argument("--workers", type=int, default=None, help="local worker processes (default: cores)")
    where.add_argument(
        "--threads", type=int, default=None,
        help="torch threads per item (default: cores // workers locally, 1 on Ray); results are "
        "bit-identical to `ndstyle run` with the same thread count",
    )  # fmt: skip
    where.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="run on Ray: a new local instance, or $RAY_ADDRESS if set, or the cluster at ADDRESS "
        "(pip install 'ndstyle[ray]')",
    )  # fmt: skip
    where.add_argument("--gpus-per-item", type=float, default=0.0, metavar="N", help="GPUs per Ray task")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    add_run_options(parser)
    parser.set_defaults(handler=cmd_batch)
    return parser


def cmd_batch(args: argparse.Namespace) -> int:
    """Run the batch; print the closing line; 0 only if no item failed."""
    from . import batch
    from .runner import BatchInterrupted

    if args.ray and Path(args.ray).exists():  # `--ray photos/ ...`: the folder is an input, not an address
        args.inputs.insert(0, Path(args.ray))
        args.ray = ""

    try:
        result = batch(
            args.inputs,
            args.style_files,
            args.output_dir,
            manifest=args.manifest,
            extensions=args.extensions,
            workers=args.workers,
            threads=args.threads,
            ray=args.ray,
            gpus_per_item=args.gpus_per_item,
            redo=args.redo or args.overwrite,
            preview=args.preview,
            report=args.report,
            progress=not args.quiet,
            **given_options(args),
        )
    except BatchInterrupted as interrupted:
        print(interrupted.result.line(), file=sys.stderr)
        raise
    print(result.line())
    return 1 if result.failed else 0
