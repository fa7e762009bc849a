"""Transfer options in a batch: the ``ndstyle run`` flags, manifest columns, checks, memory estimate."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import OptionError

#: ``ndstyle run`` options that make no sense per item of a batch (one path for every item).
NOT_PER_ITEM = {"content", "styles", "output", "preview", "report", "checkpoint", "quiet", "verbose"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Every transfer option of ``ndstyle run`` (the same builder, so they cannot drift)."""
    from ..cli_options import add_option_arguments

    parser.add_argument(
        "-m", "--modality", default=None, help="reader for every content (default: by extension)"
    )
    add_option_arguments(parser)


@functools.lru_cache(maxsize=1)
def _run_actions() -> dict[str, argparse.Action]:
    parser = argparse.ArgumentParser(add_help=False)
    add_run_options(parser)
    return {a.dest: a for a in parser._actions if a.dest not in ("help",)}


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The transfer options given on the command line, as ``ndstyle run`` passes them on."""
    from ..cli_options import from_namespace

    modality = {"modality": args.modality} if getattr(args, "modality", None) else {}
    return {**from_namespace(args).changed(), **modality}


def _convert(action: argparse.Action, column: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if action.nargs == 0:  # a flag
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise OptionError(f"manifest column {column!r}: expected true or false, got {value!r}")
    converter = action.type if callable(action.type) else None
    try:
        converted = converter(value) if converter else value
    except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
        raise OptionError(f"manifest column {column!r}: {error}") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise OptionError(f"manifest column {column!r}: {value!r} is not one of {choices}")
    return converted


def option_converter() -> Callable[[str, Any], tuple[str, Any]]:
    """``(column, value) -> (option, value)`` for manifest columns (``style-weight`` or ``style_weight``)."""
    actions = _run_actions()

    def convert(column: str, value: Any) -> tuple[str, Any]:
        name = column.strip().lstrip("-").replace("-", "_")
        if name not in actions or name in NOT_PER_ITEM:
            from .._checks import suggest

            raise OptionError(
                f"manifest column {column!r} is not an option of ndstyle run.{suggest(name, actions)}"
            )
        return name, _convert(actions[name], column, value)

    return convert


def check_options(options: Mapping[str, Any], where: str = "") -> None:
    """Refuse bad options before any item runs (they would fail every item the same way)."""
    from ..options import TransferOptions

    try:
        TransferOptions.from_kwargs(**{k: v for k, v in options.items() if k not in ("modality", "progress")})
    except OptionError as error:
        raise OptionError(f"{error} ({where})" if where else str(error)) from None


def estimate_item_bytes(items: Sequence[Any]) -> int | None:
    """Estimated peak memory of the largest item, or ``None`` when it cannot be estimated."""
    return None
