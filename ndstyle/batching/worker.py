"""What runs one batch item in a worker process (the local pool's and Ray's): one transfer.

A worker sets its torch thread count once per item (results depend on it, so it is fixed, never
left to the machine), keeps the feature extractors it built in a per-process cache (weights are
loaded once per worker, not once per file), and returns plain data: status, one-line error,
seconds and final costs. Nothing here raises for a bad item: the error goes into the result.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The transfer function a worker calls, as ``module:function``.
DEFAULT_TRANSFER = "ndstyle:transfer"
#: Extractors kept per worker process (least recently used ones are dropped beyond this).
CACHE_SIZE = 4

_EXTRACTORS: OrderedDict[Hashable, Any] = OrderedDict()
_STATS = {"built": 0, "reused": 0}


def cached(key: Hashable, build: Callable[[], Any]) -> Any:
    """``build()`` once per worker process for ``key``; later calls return the same object."""
    if key in _EXTRACTORS:
        _EXTRACTORS.move_to_end(key)
        _STATS["reused"] += 1
        return _EXTRACTORS[key]
    value = build()
    _EXTRACTORS[key] = value
    _STATS["built"] += 1
    while len(_EXTRACTORS) > CACHE_SIZE:
        _EXTRACTORS.popitem(last=False)
    return value


def cache_stats() -> dict[str, int]:
    """How many extractors this process built and reused (and its pid), for tests and logs."""
    return {**_STATS, "pid": os.getpid()}


def resolve(target: str) -> Callable[..., Any]:
    """``"module:function"`` -> the function."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def one_line(error: BaseException) -> str:
    """The error as ``ndstyle run`` prints it: one line, type and message."""
    from ..cli import _one_line

    return " ".join(_one_line(error).split())


def set_threads(threads: int) -> None:
    """Fix torch's intra-op threads (results are bit-identical only for the same count)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _costs(result: Any) -> dict[str, float] | None:
    history = getattr(result, "history", None)
    if not history:
        return None
    last = history[-1]
    costs = {k: float(getattr(last, k)) for k in ("content", "style", "tv", "total") if hasattr(last, k)}
    best = getattr(result, "best_cost", None)
    if best is not None:
        costs["best"] = float(best)
    costs["steps"] = len(history)
    return costs


def run_item(task: dict[str, Any], threads: int = 1, transfer: str = DEFAULT_TRANSFER) -> dict[str, Any]:
    """Run one item: ``transfer(content, styles, output, **options)``.

    Args:
        task: :meth:`ndstyle.batching.plan.Item.task` plus ``overwrite`` (bool).
        threads: torch threads for this item.
        transfer: ``module:function`` with :func:`ndstyle.transfer`'s signature.

    Returns:
        ``{"index", "status": "done"|"failed", "error", "seconds", "costs", "worker"}``.

    """
    start = time.perf_counter()
    out: dict[str, Any] = {"index": task["index"], "worker": os.getpid()}
    try:
        set_threads(threads)
        function = resolve(transfer)
        output = Path(task["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        options = dict(task["options"])
        options.setdefault("progress", False)
        result = function(
            Path(task["content"]),
            [Path(s) for s in task["styles"]],
            output,
            overwrite=bool(task.get("overwrite", False)),
            **options,
        )
        out.update(status="done", error=None, costs=_costs(result))
    except Exception as error:  # a bad item fails alone, with one line
        log.debug("item %s failed", task.get("content"), exc_info=True)
        out.update(status="failed", error=one_line(error), costs=None)
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out
