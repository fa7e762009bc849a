"""Field judges: what a radiologist, cardiologist, sound designer or photographer checks in a result.

Each modality module registers a function ``judge(content, styles, result, mask=None) -> dict`` in
:data:`JUDGES` (``content``/``styles`` are :class:`ndstyle.Loaded`-like objects with ``.tensor``
``(C, *spatial)`` and ``.meta``; ``result`` is the result tensor on the content's working grid).
:func:`report` picks the one for the content's modality; ``ndstyle run ... --report out.json``
writes its dictionary.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Callable, Sequence
from typing import Any

import torch

#: The logger of the one warning line a result that failed its checks gets (``ndstyle.transfer``);
#: the batch runner silences it in its workers and logs the line itself.
CHECKS_LOGGER = "ndstyle.checks"

#: Modality name -> "module:function" of its judge (imported on first use).
JUDGES: dict[str, str] = {
    "image": "ndstyle.metrics.image:judge",
    "signal": "ndstyle.metrics.signal:judge",
    "audio": "ndstyle.metrics.audio:judge",
    "volume": "ndstyle.metrics.volume:judge",
}


def report(
    modality: str,
    content: Any,
    styles: Sequence[Any],
    result: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> dict[str, Any]:
    """The field measures of ``result`` for ``modality`` (an empty dict where none exist yet)."""
    target = JUDGES.get(modality)
    if target is None:
        return {}
    module_name, _, function_name = target.partition(":")
    judge: Callable[..., dict[str, Any]] = getattr(importlib.import_module(module_name), function_name)
    return judge(content, styles, result, mask=mask)


def checks(measures: Any) -> dict[str, bool] | None:
    """``{check: passed}`` of a report (its ``passes``), or ``None`` where it has none.

    ``None`` for no report, a judge without checks, or a judge that failed (``{"error": ...}``).
    The batch runner flags the checks that failed; the web page lists them all.
    """
    passes = measures.get("passes") if isinstance(measures, dict) else None
    return {str(k): bool(v) for k, v in passes.items()} if isinstance(passes, dict) else None


#: The comparisons a check may make between its measured value and its limit.
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
}


def target(value: float | None, op: str, limit: float) -> dict[str, Any]:
    """One check's measured value and its target, for a report's ``targets``.

    ``op`` is ``">="``, ``"<="`` or ``"=="``: ``target(0.672, ">=", 0.8)`` is
    ``{"value": 0.672, "target": ">= 0.8"}``. ``value`` ``None``: nothing to check (it passes).
    """
    return {"value": None if value is None else float(value), "target": f"{op} {limit:.3g}"}


def verdicts(table: dict[str, tuple[float | None, str, float]]) -> dict[str, Any]:
    """A judge's ``passes`` and ``targets`` from one table ``{check: (value, op, limit)}``.

    Both come from the same comparison, so a report's verdict and the value it shows cannot
    disagree. A value of ``None`` has nothing to check and passes; NaN fails every comparison.
    """
    return {
        "passes": {
            name: value is None or COMPARISONS[op](value, limit) for name, (value, op, limit) in table.items()
        },
        "targets": {name: target(value, op, limit) for name, (value, op, limit) in table.items()},
    }


def check_values(measures: Any) -> dict[str, str]:
    """``{check: "0.672 (target >= 0.8)"}`` for every check of a report that has a target."""
    targets = measures.get("targets") if isinstance(measures, dict) else None
    if not isinstance(targets, dict):
        return {}
    return {
        str(name): f"{'n/a' if t['value'] is None else format(t['value'], '.3g')} (target {t['target']})"
        for name, t in targets.items()
    }


def failures(measures: Any) -> list[str]:
    """The checks a report failed, each as ``"name value (target op limit)"``; ``[]`` if none failed.

    ``["class_dice 0.672 (target >= 0.8)", "texture_ratio 1.26 (target <= 0.8)"]``: what the
    command line logs, the batch runner logs per file and the web page shows next to each check.
    A report's ``advice`` (a judge's hint at the likely cause) is not included; see :func:`advice`.
    """
    passed = checks(measures)
    if not passed:
        return []
    values = check_values(measures)
    return [f"{name} {values[name]}" if name in values else name for name, ok in passed.items() if not ok]


def advice(measures: Any) -> str | None:
    """A judge's one-line hint at why checks failed (e.g. automatic masks), or ``None``."""
    hint = measures.get("advice") if isinstance(measures, dict) else None
    return str(hint) if hint and failures(measures) else None


__all__ = [
    "CHECKS_LOGGER",
    "COMPARISONS",
    "JUDGES",
    "advice",
    "check_values",
    "checks",
    "failures",
    "report",
    "target",
    "verdicts",
]
