"""The Ray backend: one Ray task per item, on a local Ray instance or an existing cluster.

Tasks receive file paths, never arrays (every node must see the same paths: a shared or
mirrored file system), request ``threads`` CPUs and ``gpus_per_item`` GPUs each, are never
retried (a failed item is recorded, not run twice), and their results are collected with
``ray.wait`` as they finish. Ray reuses its worker processes between tasks, so the extractor cache
of :mod:`ndstyle.batching.worker` keeps weights loaded per worker here too. Scheduling is Ray's.

Before anything is submitted the cluster is checked for a node that can run one item: asking for
GPUs a cluster lacks would otherwise leave the tasks pending forever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import OptionError
from .worker import DEFAULT_TRANSFER, run_item

log = logging.getLogger(__name__)

INSTALL_HINT = "--ray needs Ray, which is not installed: pip install 'ndstyle[ray]'"
#: Seconds cancelled tasks get to clean up on Ctrl-C.
CANCEL_TIMEOUT = 20.0


def import_ray() -> Any:
    """The ``ray`` module, or an :class:`OptionError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise OptionError(INSTALL_HINT) from None
    return ray


def connect(address: str | None) -> bool:
    """Connect to Ray; return whether this call started it (and so should shut it down).

    ``address``: ``None`` or ``""`` -> ``$RAY_ADDRESS`` if set, else a new local instance;
    ``"local"`` -> a new local instance; anything else -> that cluster (``ray://host:10001``,
    ``host:6379`` or ``auto``). An already initialised Ray (a notebook, tests) is used as is.
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS") or "local"
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
    if target == "local":
        kwargs["num_cpus"] = os.cpu_count() or 1
    try:
        ray.init(address=target, **kwargs)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OptionError(f"--ray {target}: cannot connect to Ray: {first}") from error
    return True


def check_resources(ray: Any, cpus: float, gpus: float) -> None:
    """Refuse, before submitting, items that no alive node of the cluster can run."""
    nodes = [n for n in ray.nodes() if n.get("Alive", n.get("alive", False))]
    offers = [(n.get("Resources", {}).get("CPU", 0.0), n.get("Resources", {}).get("GPU", 0.0)) for n in nodes]
    if any(c >= cpus and g >= gpus for c, g in offers):
        return
    have = ", ".join(f"{c:g} CPU/{g:g} GPU" for c, g in offers) or "no alive node"
    if gpus > 0 and not any(g >= gpus for _, g in offers):
        raise OptionError(
            f"--gpus-per-item {gpus:g}: no node of the Ray cluster has {gpus:g} GPU(s) ({have}); "
            f"start the nodes with GPUs, or drop --gpus-per-item to run on CPUs"
        )
    raise OptionError(
        f"each item asks for {cpus:g} CPU(s) and {gpus:g} GPU(s) but no node of the Ray cluster offers "
        f"that ({have}); use fewer --threads"
    )


def _failure(task: dict[str, Any], error: BaseException) -> dict[str, Any]:
    name = type(error).__name__
    if "WorkerCrashed" in name or "ActorDied" in name or "NodeDied" in name or "OutOfMemory" in name:
        text = f"WorkerDied: the Ray worker running this item died ({name})"
    else:
        cause = getattr(error, "cause", None)
        base = cause if isinstance(cause, BaseException) else error
        lines = str(base).strip().splitlines()
        text = f"{type(base).__name__}: {lines[0] if lines else ''}"
    return {"index": task["index"], "status": "failed", "error": text, "seconds": None, "costs": None}


class RayBackend:
    """Runs items as Ray tasks of ``threads`` CPUs and ``gpus`` GPUs each."""

    def __init__(
        self, address: str | None, threads: int = 1, gpus: float = 0.0, transfer: str = DEFAULT_TRANSFER
    ) -> None:
        self.address = address
        self.threads = max(1, int(threads))
        self.gpus = float(gpus)
        self.transfer = transfer

    def run(self, tasks: Sequence[dict[str, Any]], on_result: Callable[[dict[str, Any]], None]) -> None:
        """Submit every task; call ``on_result`` with each result as it finishes.

        Raises:
            OptionError: Ray missing, no connection, or no node can run an item.
            KeyboardInterrupt: after cancelling the tasks, if interrupted.

        """
        ray = import_ray()
        started = connect(self.address)
        try:
            check_resources(ray, self.threads, self.gpus)
            remote = ray.remote(run_item).options(
                num_cpus=self.threads, num_gpus=self.gpus, max_retries=0, name="ndstyle-batch-item"
            )
            refs = {remote.remote(task, self.threads, self.transfer): task for task in tasks}
            try:
                while refs:
                    done, _ = ray.wait(list(refs), num_returns=1)
                    for ref in done:
                        task = refs.pop(ref)
                        try:
                            result = ray.get(ref)
                        except Exception as error:  # the task or its worker failed
                            result = _failure(task, error)
                        on_result(result)
            except BaseException:
                for ref in refs:
                    ray.cancel(ref, force=False)  # KeyboardInterrupt in the task: temporary files removed
                ray.wait(list(refs), num_returns=len(refs), timeout=CANCEL_TIMEOUT)
                raise
        finally:
            if started:
                ray.shutdown()
