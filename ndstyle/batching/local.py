"""The local backend: long-lived worker processes, one item at a time each, fed through pipes.

Why not :class:`concurrent.futures.ProcessPoolExecutor` (or loky/joblib): when one of their
workers dies (killed, out of memory), the whole pool is declared broken and every queued and
running item fails with it (``BrokenProcessPool`` / ``TerminatedWorkerError``), with no way to
tell which item killed it. Here each worker has its own pipe, so the parent always knows which
item a worker holds: a dead worker fails exactly that item and a fresh worker takes its place.
Workers are long-lived, so the extractors they build stay cached across items
(:func:`ndstyle.batching.worker.cached`). Processes are started with ``spawn`` (no forked torch
state, same start on every platform).

Ctrl-C (or SIGTERM) in the parent: workers ignore SIGINT themselves; the parent stops handing
out items and sends SIGTERM to busy workers, which turn it into ``KeyboardInterrupt`` so that
the atomic writer removes its temporary file; finished outputs are kept.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import multiprocessing.connection
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .worker import DEFAULT_TRANSFER, run_item

log = logging.getLogger(__name__)

#: Seconds a worker gets to clean up after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _worker_main(conn: multiprocessing.connection.Connection, threads: int, transfer: str) -> None:
    """Body of a worker process: run the items the parent sends until it sends ``None``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while True:
            task = conn.recv()
            if task is None:
                break
            conn.send(run_item(task, threads, transfer))
    except (KeyboardInterrupt, EOFError, OSError):  # stopped by the parent, or the parent is gone
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # no KeyboardInterrupt during interpreter exit
        conn.close()


@dataclass
class _Worker:
    process: Any
    conn: multiprocessing.connection.Connection
    task: dict[str, Any] | None = None


def died_message(exitcode: int | None) -> str:
    """One line for a worker that died while running an item."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"WorkerDied: the worker process running this item was killed by {name}{hint}"
    return f"WorkerDied: the worker process running this item exited with code {exitcode}"


class LocalPool:
    """``workers`` processes of ``threads`` torch threads each, running ``transfer`` on items."""

    def __init__(self, workers: int, threads: int, transfer: str = DEFAULT_TRANSFER) -> None:
        self.workers = max(1, int(workers))
        self.threads = max(1, int(threads))
        self.transfer = transfer
        self._ctx = multiprocessing.get_context("spawn")

    def _start(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main, args=(child, self.threads, self.transfer), daemon=True, name="ndstyle-batch"
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def run(self, tasks: Sequence[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None:
        """Run every task; call ``on_result`` with each result as it arrives (in the parent).

        Raises:
            KeyboardInterrupt: after stopping the workers, if interrupted.

        """
        pending = collections.deque(tasks)
        pool = [self._start() for _ in range(min(self.workers, len(pending)))]
        try:
            for worker in pool:
                self._assign(worker, pending)
            while any(w.task is not None for w in pool):
                busy = [w for w in pool if w.task is not None]
                multiprocessing.connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
                for index, worker in enumerate(pool):
                    if worker.task is None:
                        continue
                    result = self._collect(worker)
                    if result is None:
                        continue
                    on_result(result)
                    if result.get("died") and pending:
                        worker.conn.close()
                        worker = pool[index] = self._start()
                    self._assign(worker, pending)
        except BaseException:
            self._stop(pool, force=True)
            raise
        self._stop(pool, force=False)

    def _collect(self, worker: _Worker) -> dict[str, Any] | None:
        """The worker's result if it has one, a failure if it died, else ``None`` (still running)."""
        assert worker.task is not None
        try:
            if worker.conn.poll():
                result: dict[str, Any] = worker.conn.recv()
                worker.task = None
                return result
        except (EOFError, OSError):
            pass
        if worker.process.is_alive():
            return None
        worker.process.join()
        task = worker.task or {}
        worker.task = None
        log.warning("worker %s died on %s", worker.process.pid, task["content"])
        return {
            "index": task["index"],
            "status": "failed",
            "error": died_message(worker.process.exitcode),
            "seconds": None,
            "costs": None,
            "worker": worker.process.pid,
            "died": True,
        }

    @staticmethod
    def _assign(worker: _Worker, pending: collections.deque[dict[str, Any]]) -> None:
        if worker.task is None and pending and worker.process.is_alive():
            worker.task = pending.popleft()
            worker.conn.send(worker.task)

    @staticmethod
    def _stop(pool: Sequence[_Worker], force: bool) -> None:
        for worker in pool:
            if not worker.process.is_alive():
                continue
            if worker.task is not None and force:
                worker.process.terminate()  # SIGTERM -> KeyboardInterrupt -> temporary files removed
            else:
                try:
                    worker.conn.send(None)
                except (OSError, ValueError):
                    worker.process.terminate()
        for worker in pool:
            worker.process.join(STOP_TIMEOUT)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
