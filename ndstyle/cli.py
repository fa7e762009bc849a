"""The ``ndstyle`` command line: ``run``, ``demo``, ``info`` and ``weights``.

Defaults of the transfer options are read from :func:`ndstyle.stylize`'s signature, so the
command line and the library cannot drift apart. Errors print as one line on stderr with a
nonzero exit; ``-v`` shows the traceback.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .engine import stylize
from .errors import InterruptedRun, NdstyleError, OptionError

_DEFAULTS = {name: p.default for name, p in inspect.signature(stylize).parameters.items()}

#: Subcommands added by other modules: name -> (module, function adding the parser).
EXTRA_COMMANDS = {"train": "ndstyle.training.cli"}


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from error


def _name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _scales(text: str) -> str | int | list[float]:
    if text == "auto":
        return text
    if text.isdigit():
        return int(text)
    return _float_list(text)


def add_transfer_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every modality (defaults from :func:`ndstyle.stylize`)."""
    d = _DEFAULTS
    g = parser.add_argument_group("transfer")
    g.add_argument(
        "-n",
        "--steps",
        type=int,
        default=None,
        help=f"optimiser steps per pyramid level (default: {d['steps']}, or the modality's)",
    )
    g.add_argument(
        "-s",
        "--size",
        type=int,
        default=None,
        help="working size: long side in pixels/voxels (images, volumes)",
    )
    g.add_argument(
        "--scales",
        type=_scales,
        default=None,
        help=f"coarse-to-fine levels: 'auto', a count, or factors like 0.5,1 (default: {d['scales']})",
    )
    g.add_argument("--seed", type=int, default=d["seed"], help="random seed (default: %(default)s)")
    g.add_argument(
        "--device", default=d["device"], help="auto, cpu, cuda, cuda:1, mps (default: %(default)s)"
    )
    g.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=d["precision"],
        help="bf16 autocasts the network (default: %(default)s)",
    )
    g.add_argument(
        "-e",
        "--extractor",
        default=None,
        help="extractor name or .safetensors weights file (default: the modality's)",
    )
    g.add_argument(
        "-cw",
        "--content-weight",
        type=float,
        default=d["content_weight"],
        help="alpha (default: %(default)s)",
    )
    g.add_argument("-sw", "--style-weight", type=float, default=None, help="beta (default: the extractor's)")
    g.add_argument(
        "-tw",
        "--tv-weight",
        type=float,
        default=d["tv_weight"],
        help="gamma, total variation (default: %(default)s)",
    )
    g.add_argument(
        "--style-blend",
        type=_float_list,
        default=None,
        help="one weight per style, comma-separated (default: equal)",
    )
    g.add_argument(
        "--content-layers",
        type=_name_list,
        default=None,
        help="comma-separated layer names (default: the extractor's)",
    )
    g.add_argument(
        "--style-layers",
        type=_name_list,
        default=None,
        help="comma-separated layer names (default: the extractor's)",
    )
    g.add_argument(
        "--init", default=None, help=f"content, noise or style (default: {d['init']}, or the modality's)"
    )
    g.add_argument(
        "--optimizer", choices=("lbfgs", "adam"), default=d["optimizer"], help="(default: %(default)s)"
    )
    g.add_argument("--lr", type=float, default=d["lr"], help="step size (default: optimiser's)")


def _stylize_options(args: argparse.Namespace, modality_defaults: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = dict(modality_defaults)
    given = {
        "steps": args.steps,
        "scales": args.scales,
        "extractor": args.extractor,
        "style_weight": args.style_weight,
        "style_blend": args.style_blend,
        "content_layers": args.content_layers,
        "style_layers": args.style_layers,
        "init": args.init,
        "lr": args.lr,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    options.update(
        seed=args.seed,
        device=args.device,
        precision=args.precision,
        content_weight=args.content_weight,
        tv_weight=args.tv_weight,
        optimizer=args.optimizer,
        progress=not args.quiet,
    )
    return options


def _build_parser() -> argparse.ArgumentParser:
    from .modalities import all_modalities

    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="ndstyle",
        formatter_class=fmt,
        description="Neural style transfer for 1-D signals, 2-D images and 3-D volumes.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"ndstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="style CONTENT with one or more STYLE files",
        description="Style CONTENT with STYLE(s); the modality comes from the extension.",
    )
    run.add_argument("content", type=Path, help="content file")
    run.add_argument("styles", type=Path, nargs="+", metavar="style", help="style file(s)")
    run.add_argument("-o", "--output", type=Path, required=True, help="result file")
    run.add_argument("-m", "--modality", default=None, help="override the modality chosen from the extension")
    run.add_argument(
        "--mask",
        type=Path,
        default=None,
        help="style only inside this mask, on the content's grid (a grayscale image for images, a NIfTI "
        "for volumes); outside it the result is the content",
    )
    run.add_argument(
        "--preview", type=Path, default=None, help="also write a PNG comparing content, style(s) and result"
    )
    run.add_argument(
        "--save-every",
        type=int,
        default=0,
        metavar="N",
        help="write the best result so far every N steps (to the output path)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_verbosity(run)
    add_transfer_options(run)
    for modality in all_modalities().values():
        modality.add_arguments(run)

    demo = sub.add_parser("demo", help="run a style transfer on bundled data")
    demo.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("ndstyle-demo"),
        help="folder for the results (default: %(default)s)",
    )
    demo.add_argument("-s", "--size", type=int, default=None, help="working size")
    demo.add_argument("-n", "--steps", type=int, default=None, help="steps per pyramid level")
    demo.add_argument("--overwrite", action="store_true", help="replace existing results")
    demo.add_argument("--device", default="auto", help="(default: %(default)s)")
    _add_verbosity(demo)

    info = sub.add_parser("info", help="describe a data or weights file")
    info.add_argument("file", type=Path)
    info.add_argument("-m", "--modality", default=None)
    _add_verbosity(info)

    weights = sub.add_parser("weights", help="list, locate or download pretrained weights")
    wsub = weights.add_subparsers(dest="weights_command", metavar="ACTION", required=True)
    wlist = wsub.add_parser("list", help="known weights and whether they are present")
    _add_verbosity(wlist)
    wpath = wsub.add_parser("path", help="where ndstyle looks for weights NAME")
    wpath.add_argument("name")
    _add_verbosity(wpath)
    wdl = wsub.add_parser("download", help="download weights NAME into the cache")
    wdl.add_argument("name")
    _add_verbosity(wdl)

    for name, module_name in EXTRA_COMMANDS.items():
        try:
            module = __import__(module_name, fromlist=["add_parser"])
        except ModuleNotFoundError as error:
            if error.name and module_name.startswith(error.name):
                continue
            raise
        module.add_parser(sub, name)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")


def _say(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    """``ndstyle run``: read, transfer, write atomically, optionally preview."""
    from .io.atomic import atomic_output, check_output_path
    from .modalities import modality_for_path

    modality = modality_for_path(args.content, args.modality)
    inputs = (args.content, *args.styles)
    check_output_path(args.output, overwrite=args.overwrite, inputs=inputs)
    if args.preview is not None:
        check_output_path(args.preview, overwrite=args.overwrite, inputs=inputs)
    if args.save_every < 0:
        raise OptionError(f"--save-every must be >= 0, got {args.save_every}")
    _say(args, f"modality: {modality.name}")
    content = modality.load(args.content, args)
    styles = [modality.load_style(p, content, args) for p in args.styles]
    options = _stylize_options(args, modality.stylize_defaults(args))
    if args.save_every:
        options["callback"] = _periodic_saver(args, modality, content)
    try:
        result = modality.transfer(content, styles, args, options)
    except InterruptedRun as interrupt:
        partial = getattr(interrupt, "result", None)
        if partial is not None:
            marked = args.output.with_name(f"{args.output.stem}.interrupted{args.output.suffix}")
            with atomic_output(marked, overwrite=True) as tmp:
                modality.save(tmp, partial.output, content, args)
            raise InterruptedRun(f"{interrupt}; best result so far saved to {str(marked)!r}") from None
        raise
    _say(args, f"extractor: {result.extractor}")
    with atomic_output(args.output, overwrite=args.overwrite or bool(args.save_every)) as tmp:
        modality.save(tmp, result.output, content, args)
    if args.preview is not None:
        with atomic_output(args.preview, overwrite=args.overwrite) as tmp:
            modality.preview(tmp, content, styles, result.output)
    last = result.history[-1] if result.history else None
    if last is not None:
        _say(
            args,
            f"steps: {len(result.history)}, J={result.best_cost:.4g} "
            f"(content {last.content:.4g}, style {last.style:.4g}), {last.seconds:.1f} s",
        )
    print(str(args.output))
    return 0


def _periodic_saver(args: argparse.Namespace, modality: Any, content: Any) -> Callable[..., None]:
    from .functional import resize
    from .io.atomic import atomic_output

    shape = tuple(content.tensor.shape[1:])

    def save(info: Any) -> None:
        if info.record.step % args.save_every == 0:
            best = resize(info.best, shape)[0].float().cpu()
            with atomic_output(args.output, overwrite=True) as tmp:
                modality.save(tmp, best, content, args)

    return save


def cmd_info(args: argparse.Namespace) -> int:
    """``ndstyle info FILE``: modality, shape and metadata (or a weights file's metadata)."""
    from .errors import InputFileError
    from .modalities import modality_for_path
    from .weights import describe_file

    if not args.file.exists():
        raise InputFileError(f"{str(args.file)!r} does not exist")
    if args.file.suffix == ".safetensors":
        facts = {"kind": "ndstyle weights", **describe_file(args.file)}
    else:
        modality = modality_for_path(args.file, args.modality)
        facts = {"modality": modality.name, **modality.info(args.file)}
    for key, value in facts.items():
        print(f"{key}: {value}")
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    """``ndstyle weights list|path|download``."""
    from .extractors import available_extractors
    from .weights import KNOWN_WEIGHTS

    available_extractors()  # registers the weights of every extractor module
    if args.weights_command == "list":
        if not KNOWN_WEIGHTS:
            print("no named weights are registered")
        for info in KNOWN_WEIGHTS.values():
            present = "present" if info.cache_path.exists() else "absent"
            print(f"{info.name}\t{present}\t{info.cache_path}\t{info.source}")
        return 0
    from ._checks import look_up_option

    info = KNOWN_WEIGHTS[look_up_option("weights", args.name, KNOWN_WEIGHTS)]
    if args.weights_command == "path":
        print(info.cache_path)
        return 0
    from .weights import download_weights

    print(download_weights(info, progress=not args.quiet))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``ndstyle demo``: a transfer on bundled data, with a preview."""
    from .demo import run_demo

    outputs = run_demo(
        args.output_dir,
        size=args.size,
        steps=args.steps,
        device=args.device,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    for label, path in outputs.items():
        print(f"{label}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ndstyle`` and ``python -m ndstyle``; returns the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "demo": cmd_demo,
        "info": cmd_info,
        "weights": cmd_weights,
    }
    handler = commands.get(args.command) or args.handler
    try:
        return handler(args)
    except (NdstyleError, OSError, ValueError) as error:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"ndstyle: error: {type(error).__name__}: {message}", file=sys.stderr)
        return 130 if isinstance(error, InterruptedRun) else 1
