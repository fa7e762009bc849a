"""How many workers and threads a local batch uses: cores and memory decide.

``workers x threads <= cores`` (so workers never fight for cores), and ``workers x peak`` fits in
the memory available now, where ``peak`` is the estimated memory of the largest item plus what a
worker process holds anyway (Python, torch, the extractor's weights).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from ..errors import OptionError
from ..memory import format_size

log = logging.getLogger(__name__)

#: Memory of a worker process besides its item (Python, torch, ndstyle, an extractor's weights):
#: VmHWM 338 MiB after importing ndstyle.batching.worker and building the offline VGG-16 with the
#: CPU build of torch 2.13 (VmRSS 282 MiB afterwards); the estimate of an item counts the weights too.
WORKER_BASE_BYTES = 350 * 1024**2


def cpu_count() -> int:
    """Cores this process may use (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def available_memory() -> int | None:
    """Bytes of memory available now (``MemAvailable`` on Linux), or ``None`` if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


@dataclass(frozen=True)
class Plan:
    """Workers and threads chosen, and the one line saying why when a request was lowered."""

    workers: int
    threads: int
    note: str | None = None


def choose(
    items: int,
    workers: int | None = None,
    threads: int | None = None,
    *,
    cores: int | None = None,
    item_bytes: int | None = None,
    memory: int | None = None,
) -> Plan:
    """Workers and threads per worker for ``items`` items.

    Args:
        items: number of items to run (never more workers than items).
        workers: requested workers (default: as many as cores allow at ``threads``).
        threads: requested torch threads per worker (default: ``cores // workers``, at least 1).
        cores: cores to use (default: :func:`cpu_count`).
        item_bytes: estimated peak memory of one item (without the worker's base).
        memory: memory available (default: :func:`available_memory`).

    Raises:
        OptionError: ``workers`` or ``threads`` below 1, or ``threads`` above the cores.

    """
    cores = cores or cpu_count()
    for name, value in (("--workers", workers), ("--threads", threads)):
        if value is not None and value < 1:
            raise OptionError(f"{name} must be at least 1, got {value}")
    if threads is not None and threads > cores:
        raise OptionError(f"--threads {threads}: this machine has {cores} core(s)")
    notes = []
    given_threads = threads
    if workers is None:
        workers = max(1, cores // (threads or 1))
    elif workers * (threads or 1) > cores:
        fit = max(1, cores // (threads or 1))
        notes.append(f"{workers} workers x {threads or 1} thread(s) exceed the {cores} core(s)")
        workers = fit
    workers = max(1, min(workers, items))
    threads = threads or max(1, cores // workers)
    memory = available_memory() if memory is None else memory
    if item_bytes is not None and memory is not None:
        per_worker = item_bytes + WORKER_BASE_BYTES
        fit = max(1, memory // per_worker)
        if workers > fit:
            notes.append(
                f"each item needs about {format_size(per_worker)} and {format_size(memory)} are available"
            )
            workers = int(fit)
            threads = given_threads or max(1, cores // workers)
    note = f"using {workers} worker(s): " + "; ".join(notes) if notes else None
    return Plan(workers, threads, note)
