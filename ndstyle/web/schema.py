"""The page's form, read from :class:`ndstyle.TransferOptions`, and the submitted values checked.

There is no second copy of the options here: every field of the options dataclass (its type,
default, help text, group and choices, from the field's metadata) becomes one JSON description
that the page turns into a form control. What a page may set is narrowed for safety: options that
name host files (checkpoints, weights files) are left out, a path-typed option listed in
:data:`UPLOAD_OPTIONS` becomes a file upload, and text values may not look like paths.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any, Literal

from ..errors import OptionError

#: Path-typed options the page fills with an uploaded file instead of a host path.
UPLOAD_OPTIONS = ("mask", "style_mask")

#: Shown above the fold; every other field sits under "more options", grouped by its metadata group.
MAIN_OPTIONS = (
    "size",
    "steps",
    "style_weight",
    "content_weight",
    "style_blend",
    "extractor",
    "preserve_color",
    "mask",
    "seed",
)

#: Options that only make sense for a run on a host (files, resuming, terminal output).
HOST_ONLY_OPTIONS = frozenset(
    {"checkpoint", "checkpoint_every", "resume", "keep_checkpoint", "save_every", "download", "init_file"}
)

_SAFE_TEXT = re.compile(r"^[A-Za-z0-9_.,:+ -]{0,64}$")
_FILE_LIKE = re.compile(r"\.(safetensors|pth|pt|ckpt|onnx|bin|npy|npz|pkl|pickle|json|nii|gz)$", re.I)


@dataclasses.dataclass(frozen=True)
class Field:
    """One form control: what the page shows and how a submitted value is parsed."""

    name: str
    kind: str  # bool | int | float | text | choice | floats | names | file
    default: Any
    help: str
    group: str
    optional: bool
    choices: tuple[Any, ...] | None = None
    main: bool = False
    parse: Callable[[str], Any] | None = None
    modalities: tuple[str, ...] | None = None
    default_text: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON the page builds its control from (defaults exactly as the dataclass has them)."""
        return {
            "name": self.name,
            "label": self.name.replace("_", " "),
            "kind": self.kind,
            "default": _jsonable(self.default),
            "help": self.help,
            "group": self.group,
            "optional": self.optional,
            "choices": None if self.choices is None else [_jsonable(c) for c in self.choices],
            "main": self.main,
            "modalities": None if self.modalities is None else list(self.modalities),
            "default_text": self.default_text,
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _is_pathlike(tp: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    return isinstance(origin, type) and issubclass(origin, (PurePath, os.PathLike))


def _kind(tp: Any) -> tuple[str | None, bool, tuple[Any, ...] | None, bool]:
    """(kind, optional, choices, path_like) of a type hint; kind None: not settable from a page."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        optional = len(members) < len(args)
        path_like = any(_is_pathlike(m) for m in members)
        members = [m for m in members if not _is_pathlike(m)]
        settable = [m for m in members if _kind(m)[0] is not None]  # tensors, callables: not from a page
        members = settable or members
        if len(members) == 1:
            kind, _, choices, inner_path = _kind(members[0])
            return kind, optional, choices, path_like or inner_path
        kinds = {_kind(m)[0] for m in members}
        if kinds <= {"int", "float", "text", "choice", "floats", "names"} and kinds:
            literal = [c for m in members for c in (_kind(m)[2] or ())]
            if kinds <= {"choice"}:
                return "choice", optional, tuple(literal), path_like
            return "text", optional, None, path_like
        return None, optional, None, path_like
    if origin is Literal:
        return "choice", False, tuple(args), False
    if tp is bool:
        return "bool", False, None, False
    if tp is int:
        return "int", False, None, False
    if tp is float:
        return "float", False, None, False
    if tp is str:
        return "text", False, None, False
    if _is_pathlike(tp):
        return None, False, None, True
    if origin in (list, tuple, Sequence, typing.Sequence) or (
        isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
    ):
        inner = [a for a in args if a is not Ellipsis]
        if inner and all(a in (float, int) for a in inner):
            return "floats", False, None, False
        if inner and all(a is str for a in inner):
            return "names", False, None, False
    return None, False, None, False


def _hints(cls: type) -> dict[str, Any]:
    """Resolved type hints; a field whose annotation cannot be resolved gets its default's type."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):
        pass
    hints: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        annotation = f.type
        if isinstance(annotation, str):  # unresolvable text: the default's type (never evaluated)
            default = f.default if f.default is not dataclasses.MISSING else None
            annotation = type(default) if isinstance(default, (bool, int, float, str)) else Any
        hints[f.name] = annotation
    return hints


def _metadata(f: dataclasses.Field[Any]) -> dict[str, Any]:
    """A field's help/group/choices/parse/default_text, from an ``OptionSpec`` under ``spec`` or flat."""
    meta = dict(f.metadata or {})
    spec = meta.get("spec")
    if spec is not None:
        for key in ("help", "group", "choices", "parse", "default_text", "web"):
            if getattr(spec, key, None) is not None:
                meta.setdefault(key, getattr(spec, key))
    if "parse" not in meta and callable(meta.get("type")):
        meta["parse"] = meta["type"]
    return meta


def form_fields(
    options_cls: type, extractor_names: Sequence[str] = (), modality_names: Sequence[str] = ()
) -> list[Field]:
    """The settable fields of ``options_cls`` (a dataclass), in declaration order.

    Args:
        options_cls: :class:`ndstyle.TransferOptions` (or a dataclass shaped like it): each field's
            ``metadata`` may hold ``help``, ``group``, ``choices`` and a ``parse`` (or ``type``)
            callable turning command-line text into a value.
        extractor_names: registered extractor names; the ``extractor`` field becomes a choice of
            these (a weights file is a host path and cannot be named from a page).
        modality_names: a field whose metadata ``modalities`` lists modalities, or whose group is
            a modality's name, is shown only for content files of those modalities.

    """
    if not dataclasses.is_dataclass(options_cls):
        raise TypeError(f"{options_cls!r} is not a dataclass")
    hints = _hints(options_cls)
    fields: list[Field] = []
    for f in dataclasses.fields(options_cls):
        if f.name.startswith("_") or f.name in HOST_ONLY_OPTIONS or not f.init:
            continue
        meta = _metadata(f)
        if meta.get("web") is False:
            continue
        hint = hints.get(f.name, Any)
        parse = meta.get("parse")
        if hint is Any:  # typed loosely (paths, tensors, objects): what the command line parses it as
            hint = Path if isinstance(parse, type) and issubclass(parse, PurePath) else str
        kind, optional, choices, path_like = _kind(hint)
        optional = optional or f.default is None
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        if path_like and f.name in UPLOAD_OPTIONS:
            kind, optional = "file", True
        elif path_like and kind is None:
            continue  # a host path only: never from a page
        if meta.get("choices"):
            kind, choices = "choice", tuple(meta["choices"])
        if f.name == "extractor":
            names = [n for n in extractor_names if n]
            if names:
                kind = "choice"
                choices = tuple(dict.fromkeys([*(["auto"] if default == "auto" else []), *names]))
        if kind is None:
            continue
        if kind == "choice" and optional and choices is not None and None not in choices:
            choices = (None, *choices)
        if kind == "choice" and choices is not None and default not in choices:
            choices = (default, *choices)
        group = str(meta.get("group") or "transfer")
        only = meta.get("modalities") or ((group,) if group in modality_names else None)
        fields.append(
            Field(
                name=f.name,
                kind=kind,
                default=default,
                help=str(meta.get("help") or "").replace("%(default)s", str(default)),
                default_text=str(meta["default_text"]) if meta.get("default_text") else None,
                group=group,
                optional=optional,
                choices=choices,
                main=f.name in MAIN_OPTIONS,
                parse=parse if callable(parse) and not isinstance(parse, type) else None,
                modalities=None if only is None else tuple(only),
            )
        )
    return fields


def _safe_text(name: str, text: str) -> str:
    if not _SAFE_TEXT.match(text) or text.startswith((".", "~")) or _FILE_LIKE.search(text):
        raise OptionError(
            f"option {name}: {text!r} is not allowed from the page (letters, digits and _.,:+- only; "
            f"files cannot be named, upload them instead)"
        )
    return text


def _number(name: str, text: str, kind: str) -> int | float:
    try:
        value: int | float = int(text) if kind == "int" else float(text)
    except ValueError:
        what = "an integer" if kind == "int" else "a number"
        raise OptionError(f"option {name}: expected {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"option {name}: expected a finite number, got {text!r}")
    return value


def parse_value(field: Field, raw: Any) -> Any:
    """A submitted value (JSON: string, number, bool, list or null) as the option's type."""
    name, kind = field.name, field.kind
    if raw is None or (isinstance(raw, str) and raw.strip() == "" and kind != "text"):
        if field.optional:
            return None
        raise OptionError(f"option {name}: a value is required")
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("true", "1", "on", "yes"):
            return True
        if str(raw).lower() in ("false", "0", "off", "no"):
            return False
        raise OptionError(f"option {name}: expected true or false, got {raw!r}")
    if kind in ("int", "float"):
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise OptionError(f"option {name}: expected a number, got {raw!r}")
        return _number(name, str(raw).strip(), kind)
    if kind == "choice":
        for choice in field.choices or ():
            if raw == choice or (choice is not None and str(raw) == str(choice)):
                return choice
        shown = ", ".join("default" if c is None else str(c) for c in field.choices or ())
        raise OptionError(f"option {name}: expected one of {shown}, got {raw!r}")
    if kind in ("floats", "names"):
        items = raw if isinstance(raw, list) else [v for v in str(raw).split(",") if v.strip()]
        if kind == "floats":
            return [_number(name, str(v).strip(), "float") for v in items]
        return [_safe_text(name, str(v).strip()) for v in items]
    if kind == "text":
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise OptionError(f"option {name}: expected text, got {raw!r}")
        text = _safe_text(name, str(raw).strip())
        if text == "" and field.optional:
            return None
        if field.parse is not None:
            try:
                return field.parse(text)
            except (ValueError, TypeError) as error:
                raise OptionError(f"option {name}: {error}") from None
        return _guess(text)
    raise OptionError(f"option {name} cannot be set from the page")


def _guess(text: str) -> Any:
    """Text of a mixed-type option (e.g. ``scales``: 'auto', a count, or factors 0.5,1)."""
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if "," in text:
        try:
            return [float(v) for v in text.split(",") if v.strip()]
        except ValueError:
            return text
    return text


def parse_options(fields: Sequence[Field], submitted: Mapping[str, Any]) -> dict[str, Any]:
    """Submitted ``{name: value}`` as keyword arguments of :func:`ndstyle.transfer`.

    Values equal to the field's default are left out, so the library's own defaults (which may
    depend on the modality) apply. Unknown or page-forbidden names raise :class:`OptionError`.
    """
    by_name = {f.name: f for f in fields}
    options: dict[str, Any] = {}
    for name, raw in submitted.items():
        field = by_name.get(name)
        if field is None or field.kind == "file":
            raise OptionError(f"option {name!r} is unknown or cannot be set from the page")
        value = parse_value(field, raw)
        if _jsonable(value) != _jsonable(field.default):
            options[name] = value
    return options
