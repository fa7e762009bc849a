"""The ``ndstyle`` command line: ``run``, ``demo``, ``info`` and ``weights``.

Defaults of the transfer options are read from :func:`ndstyle.stylize`'s signature, so the
command line and the library cannot drift apart. Errors print as one line on stderr with a
nonzero exit; ``-v`` shows the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import math
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .engine import stylize
from .errors import InterruptedRun, NdstyleError, OptionError

_DEFAULTS = {name: p.default for name, p in inspect.signature(stylize).parameters.items()}

#: Subcommands added by other modules: name -> (module, function adding the parser).
EXTRA_COMMANDS = {"train": "ndstyle.training.cli", "serve": "ndstyle.web.cli"}


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
        help=f"optimiser steps at full size (default: {d['steps']}, or the modality's)",
    )
    g.add_argument(
        "--coarse-steps",
        type=int,
        default=None,
        help="steps at each coarser pyramid level (default: a quarter of --steps)",
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
        choices=("auto", "fp32", "bf16"),
        default=d["precision"],
        help="bf16 autocasts the network; auto: bf16 where the hardware has it natively and the "
        "extractor was checked in bf16, else fp32 (default: %(default)s)",
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
        "coarse_steps": args.coarse_steps,
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
        help="write the best result so far every N steps to OUT's sibling <stem>.partial<suffix> "
        "(removed when the run succeeds)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    safety = run.add_argument_group("long runs")
    safety.add_argument(
        "--checkpoint-every",
        type=int,
        default=_DEFAULTS["checkpoint_every"],
        metavar="N",
        help="save the optimiser state every N steps so that --resume can continue the run",
    )
    safety.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        metavar="PATH",
        help="checkpoint file (default: OUT.checkpoint.safetensors; removed after success)",
    )
    safety.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint; gives the same result as an uninterrupted run",
    )
    safety.add_argument(
        "--keep-checkpoint", action="store_true", help="keep the checkpoint file after a successful run"
    )

    _add_verbosity(run)
    add_transfer_options(run)
    for modality in all_modalities().values():
        modality.add_arguments(run)
    if "--max-memory" not in run._option_string_actions:  # the volume modality defines it (in GB)
        safety.add_argument(
            "--max-memory",
            type=float,
            default=None,
            metavar="GB",
            help="refuse runs estimated to need more memory, in GB (default: the device's memory)",
        )

    demo = sub.add_parser("demo", help="run a style transfer on bundled data")
    demo.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("ndstyle-demo"),
        help="folder for the results (default: %(default)s)",
    )
    demo.add_argument("-s", "--size", type=int, default=None, help="working size")
    demo.add_argument("-n", "--steps", type=int, default=None, help="steps at full size")
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


def _marked(path: Path, mark: str) -> Path:
    """``out.nii.gz`` -> ``out.<mark>.nii.gz``: a clearly marked sibling of an output."""
    name = path.name
    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else path.suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    return path.with_name(f"{stem}.{mark}{suffix}")


def checkpoint_path(args: argparse.Namespace) -> Path:
    """Where ``ndstyle run`` keeps its checkpoint: ``--checkpoint`` or ``<output>.checkpoint.safetensors``."""
    if getattr(args, "checkpoint", None) is not None:
        return Path(args.checkpoint)
    return args.output.with_name(f"{args.output.name}.checkpoint.safetensors")


def _check_number(option: str, value: float | None, *, minimum: float, strict: bool = False) -> None:
    if value is None:
        return
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        name = option.lstrip("-").replace("-", "_")
        raise OptionError(f"{option}: {name} must be a finite number {bound}, got {value!r}")


def check_run_options(args: argparse.Namespace) -> None:
    """Refuse invalid numbers before any file is read, naming the option as typed."""
    _check_number("--steps", args.steps, minimum=1)
    _check_number("--coarse-steps", getattr(args, "coarse_steps", None), minimum=1)
    _check_number("--size", args.size, minimum=1)
    for option, value in (
        ("--content-weight", args.content_weight),
        ("--style-weight", args.style_weight),
        ("--tv-weight", args.tv_weight),
    ):
        _check_number(option, value, minimum=0)
    _check_number("--lr", args.lr, minimum=0, strict=True)
    _check_number("--save-every", args.save_every, minimum=0)
    _check_number("--checkpoint-every", args.checkpoint_every, minimum=0)
    if isinstance(args.scales, int):
        _check_number("--scales", args.scales, minimum=1)
    elif isinstance(args.scales, list):
        if not args.scales or any(not (math.isfinite(f) and 0 < f <= 1) for f in args.scales):
            raise OptionError(f"--scales factors must lie in (0, 1], got {args.scales}")
    if args.style_blend is not None:
        blend = args.style_blend
        if len(blend) != len(args.styles):
            raise OptionError(
                f"--style-blend gives {len(blend)} weight(s) for {len(args.styles)} style file(s)"
            )
        if any(not (math.isfinite(w) and w >= 0) for w in blend) or sum(blend) <= 0:
            raise OptionError(f"--style-blend weights must be finite, >= 0 and not all 0, got {blend}")


def check_input_file(path: Path) -> None:
    """One-line errors for inputs that cannot be read at all (before any reader sees them)."""
    from .errors import InputFileError

    if not path.exists():
        raise InputFileError(f"input {str(path)!r} does not exist")
    if path.is_dir():
        raise InputFileError(f"input {str(path)!r} is a folder; expected a file")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"input {str(path)!r} is not readable (permission denied)")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputFileError(f"input {str(path)!r} cannot be read: {error.strerror or error}") from error
    if size == 0 and path.is_file():
        raise InputFileError(f"input {str(path)!r} is empty (0 bytes)")


def read_input(modality: Any, path: Path, reader: Callable[[], Any]) -> Any:
    """Call a modality's reader; turn anything but ndstyle's own errors into one clear line."""
    from .errors import InputFileError

    check_input_file(path)
    try:
        return reader()
    except NdstyleError:
        raise
    except MemoryError as error:
        raise InputFileError(f"input {str(path)!r} is too large to read into memory") from error
    except Exception as error:  # a library error from a reader: name the file and what was expected
        detail = str(error).splitlines()[0] if str(error) else ""
        raise InputFileError(
            f"input {str(path)!r} is not a readable {modality.name} file "
            f"({', '.join(modality.extensions)}): {type(error).__name__}: {detail}"
        ) from error


def _check_output_suffix(modality: Any, output: Path) -> None:
    from .modalities import _suffix

    allowed = tuple(getattr(modality, "output_extensions", ()) or modality.extensions)
    if _suffix(output) not in allowed:
        raise OptionError(
            f"output {str(output)!r}: a {modality.name} result cannot be written as "
            f"{_suffix(output) or '(no extension)'!r}; expected one of {', '.join(allowed)}"
        )


def cmd_run(args: argparse.Namespace) -> int:
    """``ndstyle run``: check, read, transfer, write atomically (result and preview together)."""
    from .io.atomic import atomic_output, atomic_outputs, check_output_path, same_file
    from .modalities import modality_for_path

    check_run_options(args)
    inputs = (args.content, *args.styles)
    for path in inputs:
        check_input_file(path)
    modality = modality_for_path(args.content, args.modality)
    if not args.modality:
        for style in args.styles:
            other = modality_for_path(style)
            if other.name != modality.name and other.name not in modality.style_modalities:
                raise OptionError(
                    f"style {str(style)!r} is a {other.name} file but the content {str(args.content)!r} "
                    f"is a {modality.name} file; give a {modality.name} style "
                    f"({', '.join(modality.extensions)}) or choose one reader with --modality"
                )
    outputs = [args.output] + ([args.preview] if args.preview is not None else [])
    for out in outputs:
        check_output_path(out, overwrite=args.overwrite, inputs=inputs)
    if args.preview is not None and same_file(args.preview, args.output):
        raise OptionError(f"--preview {str(args.preview)!r} is the output file; choose another path")
    _check_output_suffix(modality, args.output)
    checkpoint = checkpoint_path(args)
    uses_checkpoint = bool(args.checkpoint_every) or args.resume
    if uses_checkpoint:
        check_output_path(checkpoint, overwrite=True, inputs=(*inputs, *outputs))
        if args.resume and not checkpoint.is_file():
            raise OptionError(f"--resume: no checkpoint {str(checkpoint)!r} to resume from")
        if not args.resume and checkpoint.exists() and not args.overwrite:
            raise OptionError(
                f"checkpoint {str(checkpoint)!r} exists from an earlier run; pass --resume to continue "
                f"it or --overwrite to start afresh"
            )
    partial_file = _marked(args.output, "partial")
    interrupted_file = _marked(args.output, "interrupted")
    _say(args, f"modality: {modality.name}")
    content = read_input(modality, args.content, lambda: modality.load(args.content, args))
    styles = [
        read_input(modality, p, functools.partial(modality.load_style, p, content, args)) for p in args.styles
    ]
    options = _stylize_options(args, modality.stylize_defaults(args))
    if uses_checkpoint:
        options.update(checkpoint=checkpoint, checkpoint_every=args.checkpoint_every, resume=args.resume)
    if getattr(args, "max_memory", None) is not None:
        _check_number("--max-memory", args.max_memory, minimum=0, strict=True)
        options["max_memory"] = int(args.max_memory * 1024**3)
    if args.save_every:
        options["callback"] = _periodic_saver(args, modality, content, partial_file, inputs)
    try:
        result = modality.transfer(content, styles, args, options)
    except InterruptedRun as interrupt:
        partial = getattr(interrupt, "result", None)
        if partial is None or not partial.history:
            raise
        with atomic_output(interrupted_file, overwrite=True, inputs=inputs) as tmp:
            modality.save(tmp, partial.output, content, args)
        _remove(partial_file, args.save_every)
        again = f"; continue with --resume (checkpoint {str(checkpoint)!r})" if args.checkpoint_every else ""
        raise InterruptedRun(
            f"{interrupt}; best result so far saved to {str(interrupted_file)!r}{again}"
        ) from None
    except NdstyleError as error:
        if args.save_every and partial_file.exists():
            raise type(error)(f"{error} (best result so far: {str(partial_file)!r})") from error
        raise
    _say(args, f"extractor: {result.extractor} [{result.precision}, {result.device}]")
    with atomic_outputs(outputs, overwrite=args.overwrite, inputs=inputs) as tmps:
        modality.save(tmps[0], result.output, content, args)
        if args.preview is not None:
            modality.preview(tmps[1], content, styles, result.output)
    _remove(partial_file, args.save_every)
    _remove(checkpoint, args.checkpoint_every and not args.keep_checkpoint)
    last = result.history[-1] if result.history else None
    if last is not None:
        _say(
            args,
            f"steps: {len(result.history)}, J={result.best_cost:.4g} "
            f"(content {last.content:.4g}, style {last.style:.4g}), {last.seconds:.1f} s",
        )
    print(str(args.output))
    return 0


def _remove(path: Path, when: Any) -> None:
    if when:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _periodic_saver(
    args: argparse.Namespace, modality: Any, content: Any, target: Path, inputs: Sequence[Path]
) -> Callable[..., None]:
    """Write the best result so far every ``--save-every`` steps to ``<stem>.partial<suffix>``."""
    from .functional import resize
    from .io.atomic import atomic_output

    shape = tuple(content.tensor.shape[1:])

    def save(info: Any) -> None:
        if info.record.step % args.save_every == 0:
            best = resize(info.best, shape)[0].float().cpu()
            with atomic_output(target, overwrite=True, inputs=inputs) as tmp:
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
        details = read_input(modality, args.file, lambda: modality.info(args.file))
        facts = {"modality": modality.name, **details}
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


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, ``kill``) handled like Ctrl-C: best result saved, no partial files."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ndstyle`` and ``python -m ndstyle``; returns the exit code.

    Exit codes: 0 success, 1 error (one line on stderr), 2 usage, 130 Ctrl-C, 143 SIGTERM.
    """
    try:
        parser = _build_parser()
    except Exception as error:  # a broken plugin module must not show a traceback either
        print(f"ndstyle: error: {_one_line(error)}", file=sys.stderr)
        return 1
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
    verbose = getattr(args, "verbose", False)
    terminated = False

    def on_sigterm(signum: int, frame: Any) -> None:
        nonlocal terminated
        terminated = True
        raise _Terminated

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return handler(args)
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print("ndstyle: terminated" if terminated else "ndstyle: interrupted", file=sys.stderr)
        return 143 if terminated else 130
    except Exception as error:  # never a library traceback without -v
        if verbose:
            traceback.print_exc()
        print(f"ndstyle: error: {_one_line(error)}", file=sys.stderr)
        if isinstance(error, InterruptedRun):
            return 143 if terminated else 130
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(error: BaseException) -> str:
    """``Type: first line of the message`` (internal errors say how to see the traceback)."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    name = type(error).__name__
    if isinstance(error, MemoryError) or name == "OutOfMemoryError":
        return (
            f"{name}: out of memory ({message.split('.')[0]}); use a smaller --size, fewer or "
            f"shallower layers, --optimizer adam, or another --device"
        )
    if isinstance(error, (NdstyleError, OSError, ValueError)):
        return f"{name}: {message}" if message else name
    return f"internal error {name}: {message} (run with -v for the traceback)"
