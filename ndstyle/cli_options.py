"""The transfer options as command-line flags, generated from :class:`ndstyle.TransferOptions`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from .options import TransferOptions, default_text, flag_of, option_fields, option_names


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` with its ``ValueError`` shown by argparse as the message itself."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from error

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def add_option_arguments(parser: Any) -> None:
    """Add every option to an ``argparse`` parser, one group per :data:`GROUPS` entry.

    Every flag's default is ``None`` (or ``False`` for switches) so that :func:`from_namespace`
    knows what was given; the real defaults live in :class:`TransferOptions`.
    """
    groups: dict[str, Any] = {}
    for f, spec in option_fields():
        group = groups.get(spec.group)
        if group is None:
            group = groups[spec.group] = parser.add_argument_group(spec.group)
        flags = [flag_of(f.name)] + ([spec.short] if spec.short else [])
        help_text = f"{spec.help} (default: {default_text(f, spec)})".replace("%", "%%")
        if isinstance(f.default, bool):
            group.add_argument(*flags, action="store_true", default=None, help=spec.help.replace("%", "%%"))
            continue
        kind: Any = spec.parse
        if kind is None and spec.choices is None:
            kind = {int: int, float: float}.get(type(f.default)) or _guess_type(f.name)
        if kind is not None:
            kind = _argparse_type(kind)
        group.add_argument(
            *flags,
            dest=f.name,
            type=kind,
            choices=spec.choices,
            nargs=spec.nargs,
            metavar=spec.metavar,
            default=None,
            help=help_text,
        )


def _guess_type(name: str) -> Callable[[str], Any] | None:
    annotation = str(TransferOptions.__annotations__.get(name, ""))
    if annotation.startswith("int"):
        return int
    if annotation.startswith("float"):
        return float
    return None


def from_namespace(args: Any) -> TransferOptions:
    """The options given on a command line (``argparse.Namespace``) as :class:`TransferOptions`."""
    given: dict[str, Any] = {}
    for name in option_names():
        value = getattr(args, name, None)
        if value is not None:
            given[name] = tuple(value) if name == "vol_window" else value
    return TransferOptions(**given)


__all__ = ["add_option_arguments", "from_namespace"]
