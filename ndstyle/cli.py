"""The ``ndstyle`` command line: ``run``, ``demo``, ``info`` and ``weights``.

Defaults of the transfer options are read from :func:`ndstyle.stylize`'s signature, so the
command line and the library cannot drift apart. Errors print as one line on stderr with a
nonzero exit; ``-v`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .cli_options import add_option_arguments, from_namespace
from .errors import InterruptedRun, NdstyleError, OptionError


class UsageError(OptionError):
    """An invalid option value on the command line: exit status 2, as argparse uses."""


#: Subcommands of other modules: name -> (module with ``add_parser(subparsers, name)``, one-line help).
#: A module is imported only when its command runs, so ``ndstyle --help`` stays instant.
EXTRA_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("ndstyle.training.cli", "train a ConvNd feature extractor on a folder of your files"),
    "batch": ("ndstyle.batching.cli", "style many files (folders, a manifest) on local workers or Ray"),
    "serve": ("ndstyle.web.cli", "open a local web page to style your own files"),
}

logger = logging.getLogger("ndstyle")


def _build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:

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
        "--preview", type=Path, default=None, help="also write a PNG comparing content, style(s) and result"
    )
    run.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="JSON",
        help="also write the field measures of the result (ndstyle.metrics) to this JSON file",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing output")
    _add_verbosity(run)
    add_option_arguments(run)

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
    info.add_argument("--json", action="store_true", help="print one JSON object")
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

    requested = next((a for a in (argv or ()) if not a.startswith("-")), None)
    for name, (module_name, summary) in EXTRA_COMMANDS.items():
        if name != requested:  # listed in --help; its module is imported only when it runs
            sub.add_parser(name, help=summary, add_help=False)
            continue
        module = importlib.import_module(module_name)
        module.add_parser(sub, name)
    return parser


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")


def cmd_run(args: argparse.Namespace) -> int:
    """``ndstyle run``: the options from the flags, then one :func:`ndstyle.transfer` call."""
    try:
        options = from_namespace(args)
    except OptionError as error:
        raise UsageError(str(error)) from error
    from .api import transfer

    if len(args.styles) > 1:
        names = ", ".join(str(p) for p in args.styles)
        logger.info(
            "content %s with %d styles blended (%s); one content per run, see 'ndstyle batch' for many",
            args.content,
            len(args.styles),
            names,
        )
    result = transfer(
        args.content,
        list(args.styles),
        args.output,
        overwrite=args.overwrite,
        preview=args.preview,
        report=args.report,
        progress=not args.quiet,
        modality=args.modality,
        **options.changed(),
    )
    last = result.history[-1] if result.history else None
    if last is not None:
        logger.info(
            "steps: %d, J=%.4g (content %.4g, style %.4g), %.1f s",
            len(result.history),
            result.best_cost,
            last.content,
            last.style,
            last.seconds,
        )
    print(str(args.output))
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """``ndstyle info FILE``: the same keys for every modality (or a weights file's metadata)."""
    from .api import describe

    facts = describe(args.file, args.modality)
    if args.json:
        print(json.dumps(facts, default=str))
        return 0
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
            found = info.find()
            present = "present" if found is not None else "absent"
            print(f"{info.name}\t{present}\t{found or info.cache_path}\t{info.source}")
        return 0
    from ._checks import look_up_option

    info = KNOWN_WEIGHTS[look_up_option("weights", args.name, KNOWN_WEIGHTS)]
    if args.weights_command == "path":
        print(info.find() or info.cache_path)
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
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C while starting up (parsing, importing torch)
        print("ndstyle: interrupted", file=sys.stderr)
        return 130


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = _build_parser(sys.argv[1:] if argv is None else argv)
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
    restore_logging = _log_to_terminal(quiet=getattr(args, "quiet", False), verbose=verbose)
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
        return 2 if isinstance(error, UsageError) else 1
    finally:
        restore_logging()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _log_to_terminal(*, quiet: bool, verbose: bool) -> Callable[[], None]:
    """Show ndstyle's log messages on stderr as ``ndstyle: ...`` lines while a command runs.

    Third-party warnings are routed to logging and shown only with ``-v``. Returns a function
    that restores the previous state.
    """
    package = logging.getLogger("ndstyle")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ndstyle: %(message)s"))
    saved = (package.level, package.propagate)
    package.addHandler(handler)
    package.setLevel(logging.WARNING if quiet else logging.INFO)
    package.propagate = False
    py_warnings = logging.getLogger("py.warnings")
    warnings_saved = (py_warnings.level, py_warnings.propagate)
    warning_handler = logging.StreamHandler(sys.stderr)
    warning_handler.setFormatter(logging.Formatter("ndstyle: warning from a library: %(message)s"))
    py_warnings.addHandler(warning_handler)
    py_warnings.setLevel(logging.WARNING if verbose else logging.CRITICAL)
    py_warnings.propagate = False
    logging.captureWarnings(True)

    def restore() -> None:
        logging.captureWarnings(False)
        package.removeHandler(handler)
        package.setLevel(saved[0])
        package.propagate = saved[1]
        py_warnings.removeHandler(warning_handler)
        py_warnings.setLevel(warnings_saved[0])
        py_warnings.propagate = warnings_saved[1]

    return restore


def _one_line(error: BaseException) -> str:
    """``Type: first line of the message`` (internal errors say how to see the traceback)."""
    lines = str(error).strip().splitlines()
    message = lines[0] if lines else ""
    name = "OptionError" if isinstance(error, UsageError) else type(error).__name__
    if isinstance(error, MemoryError) or name == "OutOfMemoryError":
        return (
            f"{name}: out of memory ({message.split('.')[0]}); use a smaller --size, fewer or "
            f"shallower layers, --optimizer adam, or another --device"
        )
    if isinstance(error, (NdstyleError, OSError, ValueError)):
        return f"{name}: {message}" if message else name
    return f"internal error {name}: {message} (run with -v for the traceback)"
