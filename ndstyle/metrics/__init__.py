"""Field judges: what a radiologist, cardiologist, sound designer or photographer checks in a result.

Each modality module registers a function ``judge(content, styles, result, mask=None) -> dict`` in
:data:`JUDGES` (``content``/``styles`` are :class:`ndstyle.Loaded`-like objects with ``.tensor``
``(C, *spatial)`` and ``.meta``; ``result`` is the result tensor on the content's working grid).
:func:`report` picks the one for the content's modality; ``ndstyle run ... --report out.json``
writes its dictionary.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

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


__all__ = ["JUDGES", "checks", "report"]
