"""Runs planned items on a backend: resume, summary lines, progress bar, Ctrl-C, closing line."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..errors import InterruptedRun
from .plan import SUMMARY_NAME, Item
from .summary import SummaryWriter, finished_before, read_summary, record

log = logging.getLogger(__name__)


class Backend(Protocol):
    """Runs tasks and reports each result as it finishes."""

    def run(self, tasks: Sequence[dict[str, Any]], on_result: Any) -> None: ...


@dataclass
class BatchResult:
    """What a batch did.

    Attributes:
        summary: the summary file (``OUTDIR/ndstyle-batch.jsonl``).
        records: one summary line (dict) per item that got one, in the order they finished.
        seconds: wall time of the batch.
        items: number of items planned.
        interrupted: whether Ctrl-C stopped the batch (items without a line did not run).
        backend: ``"local: W workers x T threads"`` or ``"ray: ..."``.

    """

    summary: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    items: int = 0
    interrupted: bool = False
    backend: str = ""

    def count(self, status: str) -> int:
        """Items with ``status`` (``done``, ``failed`` or ``skipped``)."""
        return sum(1 for r in self.records if r["status"] == status)

    @property
    def failed(self) -> int:
        """Failed items (the command's exit status is 0 only when this is 0)."""
        return self.count("failed")

    @property
    def flagged(self) -> int:
        """Done items whose report failed one of their field's checks (``--report``)."""
        return sum(1 for r in self.records if r["status"] == "done" and r.get("flagged"))

    def line(self) -> str:
        """The closing line: counts and total time."""
        not_run = self.items - len(self.records)
        rest = f", {not_run} not run (interrupted)" if not_run else ""
        checks = f" ({self.flagged} flagged by their field's checks)" if self.flagged else ""
        return (
            f"ndstyle batch: {self.items} item(s): {self.count('done')} done{checks}, {self.failed} failed, "
            f"{self.count('skipped')} skipped{rest} in {self.seconds:.1f} s ({self.backend}); "
            f"summary {self.summary}"
        )


class BatchInterrupted(InterruptedRun):
    """Ctrl-C stopped a batch; finished outputs and their summary lines were kept."""

    def __init__(self, message: str, result: BatchResult) -> None:
        super().__init__(message)
        self.result = result


def _bar(total: int, initial: int, progress: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="item",
        desc="ndstyle batch",
        disable=not progress or None,  # None: shown only on a terminal
        file=sys.stderr,
        dynamic_ncols=True,
    )


def run_batch(
    items: Sequence[Item],
    outdir: Path,
    backend: Backend,
    *,
    redo: bool = False,
    progress: bool = True,
    label: str = "",
    extras: dict[str, Any] | None = None,
) -> BatchResult:
    """Run ``items`` on ``backend``, skipping finished ones unless ``redo``; write the summary.

    Raises:
        BatchInterrupted: Ctrl-C (or SIGTERM); its ``result`` holds what finished.

    """
    start = time.perf_counter()
    result = BatchResult(outdir / SUMMARY_NAME, items=len(items), backend=label)
    previous = {} if redo else read_summary(outdir / SUMMARY_NAME)
    first: list[dict[str, Any]] = []
    todo: list[Item] = []
    for item in items:
        old = None if redo else finished_before(item, previous)
        if item.error is not None:
            first.append(record(item, "failed", error=item.error))
        elif old is not None:
            first.append(record(item, "skipped", seconds=old.get("seconds"), costs=old.get("costs")))
        elif not redo and (item.output.exists() or item.output.is_symlink()):
            first.append(
                record(
                    item,
                    "failed",
                    error=f"OutputFileError: output {str(item.output)!r} already exists and this batch's "
                    f"summary does not show it was made from these inputs and options; pass --redo to "
                    f"replace it",
                )
            )
        else:
            todo.append(item)
    by_index = {item.index: item for item in items}
    result.records.extend(first)
    bar = _bar(len(items), len(first), progress)
    ours = {str(item.output.resolve()) for item in items}
    others = [line for key, line in previous.items() if key not in ours]  # other batches into OUTDIR
    writer = SummaryWriter(outdir, [*others, *first])

    def on_result(out: dict[str, Any]) -> None:
        item = by_index[out["index"]]
        line = record(
            item, out["status"], error=out.get("error"), seconds=out.get("seconds"), costs=out.get("costs")
        )
        if out.get("flagged") is not None:
            line["flagged"] = out["flagged"]
            if out["flagged"]:
                failed = out.get("checks_failed") or out["flagged"]
                log.warning("%s: result flagged by its field's checks: %s", item.output, "; ".join(failed))
        writer.write(line)
        result.records.append(line)
        if out["status"] == "failed":
            log.warning("%s: %s", item.content, out.get("error"))
        bar.update(1)
        bar.set_postfix(done=result.count("done"), failed=result.failed, refresh=False)

    tasks = [{**item.task(), **(extras or {}), "overwrite": redo} for item in todo]
    try:
        if tasks:
            backend.run(tasks, on_result)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        bar.close()
        writer.close()
        result.seconds = time.perf_counter() - start
    if result.interrupted:
        raise BatchInterrupted(
            f"batch interrupted after {len(result.records)} of {len(items)} item(s); finished outputs "
            f"kept, no partial file; run the same command again to resume",
            result,
        )
    return result
