"""Validation helpers shared by every module: shapes, options and per-axis arguments."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TypeVar

import torch

from .errors import OptionError, ShapeError

T = TypeVar("T")

SUPPORTED_SPATIAL_DIMS = (1, 2, 3)


def suggest(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def look_up_option(what: str, value: str, choices: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a helpful :class:`OptionError`.

    Args:
        what: what the option is called in messages, e.g. ``"optimizer"``.
        value: the value given.
        choices: the accepted values.

    """
    options = list(choices)
    if value in options:
        return value
    raise OptionError(
        f"unknown {what} {value!r}.{suggest(str(value), options)} "
        f"Expected one of: {', '.join(map(repr, options))}."
    )


def ensure_tuple_rep(value: T | Sequence[T], n: int, what: str = "value") -> tuple[T, ...]:
    """Broadcast a scalar to an ``n``-tuple, or check that a sequence has length ``n``."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return (value,) * n  # type: ignore[return-value]
    if len(value) != n:
        raise OptionError(f"{what} must have {n} entries (one per spatial axis), got {len(value)}")
    return tuple(value)


def spatial_dims_of(x: torch.Tensor, name: str = "input", batched: bool = True) -> int:
    """Return the number of spatial axes of ``x`` and check that it is 1, 2 or 3.

    Args:
        x: a tensor shaped ``(B, C, *spatial)`` (``batched``) or ``(C, *spatial)``.
        name: what to call the tensor in the error message.
        batched: whether ``x`` has a leading batch axis.

    """
    lead = 2 if batched else 1
    dims = x.ndim - lead
    if dims not in SUPPORTED_SPATIAL_DIMS:
        layout = "(B, C, *spatial)" if batched else "(C, *spatial)"
        raise ShapeError(
            f"{name} must be shaped {layout} with 1, 2 or 3 spatial axes "
            f"(ndim {lead + 1}..{lead + 3}), got shape {tuple(x.shape)}"
        )
    return dims


def check_positive(name: str, value: float, allow_zero: bool = True) -> None:
    """Raise :class:`OptionError` if ``value`` is negative (or zero when not allowed) or not finite."""
    import math

    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise OptionError(f"{name} must be a finite number {bound}, got {value!r}")


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


def check_stylize_arguments(
    content: object,
    style: object,
    *,
    steps: object = 1,
    coarse_steps: object = None,
    value_range: object = None,
    mask: object = None,
    init: object = None,
) -> None:
    """Type and range checks of :func:`ndstyle.stylize`'s arguments, before anything is converted.

    Refuses (with :class:`OptionError`/:class:`ShapeError`, one line naming the argument): complex
    tensors (never cast to real), step counts that are not whole numbers, a ``value_range`` that is
    not ``"auto"``, ``None`` or two numbers ``low < high`` (an infinite bound is open).
    """
    import math
    import numbers

    named = [
        ("content", content),
        *((f"style {i + 1}", s) for i, s in enumerate(_tensors(style))),
        ("mask", mask),
    ]
    named += [("init", init)] if isinstance(init, torch.Tensor) else []
    for name, value in named:
        for tensor in _tensors(value) if name != "content" or isinstance(value, torch.Tensor) else []:
            if tensor.is_complex():
                raise ShapeError(f"{name} is a complex tensor ({tensor.dtype}); give real values")
    levels = steps if isinstance(steps, (list, tuple)) else [steps]
    for name, values in (("steps", levels), ("coarse_steps", [] if coarse_steps is None else [coarse_steps])):
        for value in values:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise OptionError(f"{name} must be a whole number, got {value!r} ({type(value).__name__})")
    if value_range is None or (isinstance(value_range, str) and value_range == "auto"):
        return
    if isinstance(value_range, str) or not isinstance(value_range, (list, tuple)) or len(value_range) != 2:
        raise OptionError(f"value_range must be 'auto', None or (low, high), got {value_range!r}")
    low, high = value_range
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise OptionError(f"value_range must hold two numbers, got {value_range!r}")
    if math.isnan(low) or math.isnan(high) or not low < high:
        raise OptionError(f"value_range must be two numbers with low < high (no NaN), got {value_range!r}")
