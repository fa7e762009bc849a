"""What runs one batch item in a worker process (the local pool's and Ray's): one transfer.

A worker sets its torch thread count once per item (results depend on it, so it is fixed, never
left to the machine), keeps the feature extractors it built in a per-process cache (weights are
loaded once per worker, not once per file), and returns plain data: status, one-line error,
seconds and final costs. Nothing here raises for a bad item: the error goes into the result.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InterruptedRun
from ..metrics import CHECKS_LOGGER

log = logging.getLogger(__name__)

#: The transfer function a worker calls, as ``module:function``.
DEFAULT_TRANSFER = "ndstyle:transfer"
#: Extractors kept per worker process (least recently used ones are dropped beyond this).
CACHE_SIZE = 4


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


def _flagged(result: Any) -> list[str] | None:
    """The field checks the result failed (:func:`ndstyle.metrics.checks`), or ``None`` without any."""
    from ..metrics import checks

    passed = checks(getattr(result, "report", None))
    return None if passed is None else sorted(name for name, ok in passed.items() if not ok)


@contextlib.contextmanager
def _checks_reported_by_the_runner() -> Iterator[None]:
    """Silence ``transfer``'s own flagged-result line (logger ``ndstyle.checks``) while it runs here.

    The runner logs each flagged item once, from the summary it gets back; without this the
    worker's copy of the line reached the terminal too, interleaved with the runner's.
    """
    checks_log = logging.getLogger(CHECKS_LOGGER)
    before = checks_log.disabled
    checks_log.disabled = True
    try:
        yield
    finally:
        checks_log.disabled = before


def _failed_checks(result: Any) -> list[str]:
    """The failed checks with their values and targets, then the judge's hint if it has one.

    :func:`ndstyle.metrics.failures` and :func:`ndstyle.metrics.advice`.
    """
    from ..metrics import advice, failures

    report = getattr(result, "report", None)
    hint = advice(report)
    return [*failures(report), *([f"likely cause: {hint}"] if hint else [])]


def marked(path: Path, mark: str) -> Path:
    """``out.nii.gz`` -> ``out.<mark>.nii.gz`` (where ``ndstyle.transfer`` saves an interrupted run)."""
    name = path.name
    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else path.suffix
    stem = name[: len(name) - len(suffix)] if suffix else name
    return path.with_name(f"{stem}.{mark}{suffix}")


def sibling(path: Path, ending: str) -> Path:
    """``out.nii.gz`` -> ``out<ending>`` (``out.preview.png``)."""
    name = path.name
    suffix = ".nii.gz" if name.lower().endswith(".nii.gz") else path.suffix
    return path.with_name(name[: len(name) - len(suffix)] + ending)


def _transfer_function(target: str) -> Callable[..., Any]:
    return resolve(target)


def run_item(task: dict[str, Any], threads: int = 1, transfer: str = DEFAULT_TRANSFER) -> dict[str, Any]:
    """Run one item: ``transfer(content, styles, output, **options)``.

    Args:
        task: :meth:`ndstyle.batching.plan.Item.task` plus ``overwrite`` (bool).
        threads: torch threads for this item.
        transfer: ``module:function`` with :func:`ndstyle.transfer`'s signature.

    Returns:
        ``{"index", "status": "done"|"failed", "error", "seconds", "costs", "worker"}`` and, for a
        done item with a report, ``"flagged"``: the field checks it failed, and
        ``"checks_failed"``: the same with values and targets (``"class_dice 0.672 (target >= 0.8)"``).

    """
    start = time.perf_counter()
    out: dict[str, Any] = {"index": task["index"], "worker": os.getpid()}
    try:
        set_threads(threads)
        from ..extractors import _CACHE, cache_extractors

        if _CACHE is None:
            cache_extractors(CACHE_SIZE)
        function = _transfer_function(transfer)
        output = Path(task["output"])
        output.parent.mkdir(parents=True, exist_ok=True)
        options = dict(task["options"])
        options.setdefault("progress", False)
        interrupted = marked(output, "interrupted")
        existed = interrupted.exists()
        try:
            for extra, ending in (("preview", ".preview.png"), ("report", ".report.json")):
                if task.get(extra):
                    options[extra] = sibling(output, ending)
            with _checks_reported_by_the_runner():
                result = function(
                    Path(task["content"]),
                    [Path(s) for s in task["styles"]],
                    output,
                    overwrite=bool(task.get("overwrite", False)),
                    **options,
                )
        except (InterruptedRun, KeyboardInterrupt):
            # only a stopping batch interrupts a worker: no partial result, the rerun redoes the item
            if not existed:
                with contextlib.suppress(OSError):
                    interrupted.unlink()
            raise KeyboardInterrupt from None
        out.update(
            status="done",
            error=None,
            costs=_costs(result),
            flagged=_flagged(result),
            checks_failed=_failed_checks(result),
        )
    except Exception as error:  # a bad item fails alone, with one line
        log.debug("item %s failed", task.get("content"), exc_info=True)
        out.update(status="failed", error=one_line(error), costs=None)
    out["seconds"] = round(time.perf_counter() - start, 3)
    return out
