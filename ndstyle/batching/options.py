"""Transfer options in a batch: the ``ndstyle run`` flags, manifest columns, checks, memory estimate."""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import OptionError

log = logging.getLogger(__name__)

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
    from .plan import RowError

    if not isinstance(value, str):
        return value
    if action.nargs == 0:  # a flag
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise RowError(f"manifest column {column!r}: expected true or false, got {value!r}")
    converter = action.type if callable(action.type) else None
    try:
        converted = converter(value) if converter else value
    except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
        raise RowError(f"manifest column {column!r}: {error}") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise RowError(f"manifest column {column!r}: {value!r} is not one of {choices}")
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
    """Estimated peak memory of the largest item (bytes), or ``None`` when it cannot be estimated.

    For each kind of content (extension and forced reader) the largest file stands for its items:
    it is read and prepared as :func:`ndstyle.transfer` would (working size, the modality's
    extractor), and :func:`ndstyle.memory.estimate_memory` sizes the finest pyramid level in fp32
    (an upper bound for bf16 runs). A file that cannot be read is left to fail as its item.
    """
    from ..api import _read, modality_of
    from ..memory import estimate_memory
    from ..options import TransferOptions
    from .plan import suffix_of

    largest: dict[tuple[str, str], Any] = {}
    for item in items:
        key = (suffix_of(item.content), str(item.options.get("modality") or ""))
        try:
            size = item.content.stat().st_size
        except OSError:
            continue
        if key not in largest or size > largest[key][0]:
            largest[key] = (size, item)
    peak: int | None = None
    for _, item in largest.values():
        try:
            modality = modality_of(item.content, item.options.get("modality"))
            given = {k: v for k, v in item.options.items() if k not in ("modality", "progress")}
            opts = TransferOptions.from_kwargs(**given).with_defaults(modality.defaults)
            content = _read(modality, item.content, opts)
            styles = [_read(modality, s, opts, content) for s in item.styles]
            prepared = modality.prepare(content, styles, opts)
            extractor = prepared.kwargs["extractor"]
            c_layers = list(opts.content_layers or extractor.default_content_layers)
            s_layers = list(opts.style_layers or extractor.default_style_layers)
            needed = estimate_memory(
                extractor,
                tuple(prepared.tensor.shape[1:]),
                list(dict.fromkeys([*c_layers, *s_layers])),
                optimizer=opts.optimizer or "lbfgs",
                style_shapes=[tuple(t.shape[1:]) for t in prepared.styles],
            )
        except Exception as error:  # the estimate never stops a batch; the item reports its own error
            log.debug("no memory estimate for %s: %s", item.content, error)
            continue
        peak = needed if peak is None else max(peak, needed)
    return peak
