"""One style-transfer job at a time, run by :func:`ndstyle.transfer` in a worker thread.

The web layer only reads a :class:`Job`'s :meth:`~Job.snapshot` (under a lock) and asks for
:meth:`JobManager.cancel`; the callback that :func:`ndstyle.transfer` calls after every step
records the progress, renders an intermediate preview every few steps, and returns ``True`` once a
cancel was asked for, which stops the optimiser early with the best result so far.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import NdstyleError
from ..metrics import advice as check_advice
from ..metrics import check_values
from ..metrics import checks as field_checks
from .uploads import make_private_folder, remove_folder
from .views import SliceView, image_png, snapshot_png

logger = logging.getLogger(__name__)


class BusyError(NdstyleError):
    """A job is already running (one per server)."""


@dataclasses.dataclass
class Backend:
    """What the server calls; the default is the real library, tests may inject a stand-in.

    Attributes:
        transfer: :func:`ndstyle.transfer`.
        options: :class:`ndstyle.TransferOptions` (a dataclass with help/group metadata).
        load: :func:`ndstyle.load` (used to draw the inputs and the result file).
        modalities: name -> modality object with ``extensions``, ``spatial_dims``, ``style_modalities``.
        extractors: registered extractor names.

    """

    transfer: Callable[..., Any]
    options: type
    load: Callable[..., Any]
    modalities: Callable[[], dict[str, Any]]
    extractors: Callable[[], list[str]]


def default_backend() -> Backend:
    """The real library (``ndstyle.transfer``, ``ndstyle.TransferOptions``, ``ndstyle.load``)."""
    import ndstyle

    from ..extractors import available_extractors
    from ..modalities import all_modalities

    lib: Any = ndstyle
    return Backend(
        transfer=lib.transfer,
        options=lib.TransferOptions,
        load=lib.load,
        modalities=all_modalities,
        extractors=available_extractors,
    )


def one_line(error: BaseException) -> str:
    """The command line's one-line message for ``error``."""
    from ..cli import _one_line

    return _one_line(error)


@dataclasses.dataclass
class Job:
    """A transfer's inputs, state and results (mutated by the worker under :attr:`lock`)."""

    id: str
    folder: Path
    modality: str
    content: Path
    styles: list[Path]
    options: dict[str, Any]
    output: Path
    download_name: str
    state: str = "running"  # running | done | cancelled | error
    error: str | None = None
    progress: dict[str, Any] | None = None
    costs: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    preview: bytes | None = None
    preview_step: int = 0
    preview_path: Path | None = None
    result_ready: bool = False
    version: int = 0
    started: float = dataclasses.field(default_factory=time.monotonic)
    finished: float | None = None
    cancel: threading.Event = dataclasses.field(default_factory=threading.Event)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    checks: dict[str, bool] | None = None  # the field judge's passes (``ndstyle.metrics``), if any
    check_values: dict[str, str] = dataclasses.field(default_factory=dict)  # "0.672 (target >= 0.8)"
    check_advice: str | None = None  # the judge's hint when checks failed

    def snapshot(self) -> dict[str, Any]:
        """The job as JSON for the page (no host paths)."""
        with self.lock:
            return {
                "id": self.id,
                "version": self.version,
                "state": self.state,
                "modality": self.modality,
                "styles": len(self.styles),
                "error": self.error,
                "progress": self.progress,
                "costs": list(self.costs),
                "preview_step": self.preview_step if self.preview is not None else None,
                "result": self.result_ready,
                "cancel_requested": self.cancel.is_set(),
                "download_name": self.download_name if self.result_ready else None,
                "elapsed": round((self.finished or time.monotonic()) - self.started, 2),
                "checks": dict(self.checks) if self.checks is not None else None,
                "check_values": dict(self.check_values),
                "check_advice": self.check_advice,
            }

    def _bump(self) -> None:
        self.version += 1


class JobManager:
    """Runs at most one :class:`Job`; keeps the latest one (and its files) until the next starts.

    Args:
        backend: the library functions to call.
        root: private folder for the jobs' files (created with mode 0700 if ``None``).
        preview_every: render an intermediate preview every this many steps (and at the last).

    """

    def __init__(self, backend: Backend, root: Path | None = None, preview_every: int = 5) -> None:
        self.backend = backend
        self.root = root if root is not None else make_private_folder()
        self.preview_every = max(1, int(preview_every))
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._thread: threading.Thread | None = None

    # -- queries -----------------------------------------------------------------------------
    @property
    def current(self) -> Job | None:
        """The latest job (running or finished), if any."""
        return self._job

    def get(self, job_id: str) -> Job:
        """The job called ``job_id`` (only the latest one is kept)."""
        job = self._job
        if job is None or not secrets.compare_digest(job.id, str(job_id)):
            raise KeyError(job_id)
        return job

    def busy(self) -> bool:
        """Whether a job is running."""
        return self._thread is not None and self._thread.is_alive()

    # -- commands ----------------------------------------------------------------------------
    def new_folder(self) -> tuple[str, Path]:
        """A fresh job id and its private folder (refused while a job runs)."""
        with self._lock:
            if self.busy():
                raise BusyError("busy: a transfer is running; wait for it or cancel it first")
            if self._job is not None:  # only the latest job's files are kept
                remove_folder(self._job.folder)
                self._job = None
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            folder.mkdir(mode=0o700)
            return job_id, folder

    def start(self, job: Job) -> Job:
        """Run ``job`` in a worker thread (refused while another runs)."""
        with self._lock:
            if self.busy():
                raise BusyError("busy: a transfer is running; wait for it or cancel it first")
            self._job = job
            self._thread = threading.Thread(target=self._run, args=(job,), name=f"ndstyle-job-{job.id}")
            self._thread.daemon = True
            self._thread.start()
        return job

    def cancel(self, job_id: str) -> Job:
        """Ask the job to stop after its current step (it keeps the best result so far)."""
        job = self.get(job_id)
        job.cancel.set()
        self._notify(job)
        return job

    def close(self, timeout: float = 30.0) -> None:
        """Cancel a running job, wait for it, and remove every file the server stored."""
        job, thread = self._job, self._thread
        if job is not None:
            job.cancel.set()
        if thread is not None:
            thread.join(timeout)
        remove_folder(self.root)

    # -- the worker --------------------------------------------------------------------------
    def _notify(self, job: Job) -> None:
        with job.lock:
            job._bump()

    def _callback(self, job: Job) -> Callable[[Any], bool]:
        every = self.preview_every

        def on_step(info: Any) -> bool:
            rec = info.record
            total = int(getattr(info, "total_steps", 0) or 0)
            eta = rec.seconds / rec.step * (total - rec.step) if total and rec.step else None
            progress = {
                "step": int(rec.step),
                "total_steps": total,
                "scale": int(rec.scale),
                "shape": [int(s) for s in rec.shape],
                "content": float(rec.content),
                "style": float(rec.style),
                "tv": float(rec.tv),
                "total": float(rec.total),
                "seconds": round(float(rec.seconds), 3),
                "eta": None if eta is None else round(max(0.0, eta), 1),
            }
            picture = None
            if rec.step % every == 0 or rec.step == total:
                try:
                    best = info.best[0] if info.best.ndim >= 3 else info.best
                    picture = snapshot_png(best, job.extras.get("orientation"))
                except Exception as error:  # a preview must never stop the run
                    logger.warning("intermediate preview failed: %s", error)
            with job.lock:
                job.progress = progress
                job.costs.append(
                    {k: progress[k] for k in ("step", "scale", "content", "style", "tv", "total")}
                )
                if picture is not None:
                    job.preview, job.preview_step = picture, rec.step
            self._notify(job)
            return job.cancel.is_set()

        return on_step

    def _run(self, job: Job) -> None:
        state, error, preview_path = "done", None, job.folder / "preview.png"
        content, checks, report = None, None, None
        try:
            content = self.backend.load(job.content)
            job.extras["orientation"] = _orientation(content)
            result = self.backend.transfer(
                job.content,
                job.styles if len(job.styles) > 1 else job.styles[0],
                output=job.output,
                preview=preview_path,
                report=True,
                callback=self._callback(job),
                progress=False,
                **job.options,
            )
            report = getattr(result, "report", None)
            checks = field_checks(report)
            if job.cancel.is_set():
                state = "cancelled"
        except NdstyleError as exc:
            state, error = ("cancelled" if job.cancel.is_set() else "error"), one_line(exc)
        except Exception as exc:  # shown on the page as the CLI would print it
            logger.exception("transfer failed")
            state, error = "error", one_line(exc)
        views: dict[str, Any] = {}
        if content is not None and job.output.is_file():
            try:
                views = self._views(job, content)
            except Exception as exc:  # the result file is still there to download
                logger.warning("drawing the result failed: %s", exc)
        with job.lock:
            job.extras.update(views)
            job.state, job.error = state, error
            job.checks = checks
            job.check_values = check_values(report)
            job.check_advice = check_advice(report)
            job.result_ready = job.output.is_file()
            job.preview_path = preview_path if preview_path.is_file() else None
            job.finished = time.monotonic()
        self._notify(job)

    def _views(self, job: Job, content: Any) -> dict[str, Any]:
        """Pictures of inputs and result: PNGs for images, slice viewers for volumes."""
        result = self.backend.load(job.output)
        orientation = _orientation(result) or _orientation(content)
        views: dict[str, Any] = {"pictures": {}, "slices": {}}
        dims = content.tensor.ndim - 1
        inputs = [("content", content), *[(f"style{i + 1}", None) for i in range(len(job.styles))]]
        inputs.append(("result", result))
        for index, (name, loaded) in enumerate(inputs):
            if loaded is None:
                loaded = self.backend.load(job.styles[index - 1])
            tensor = loaded.tensor
            if dims == 3 and tensor.ndim == 4 and name in ("content", "result"):
                views["slices"][name] = SliceView(tensor, orientation)
            if tensor.ndim == 3:
                views["pictures"][name] = image_png(tensor)
            elif tensor.ndim == 4:
                views["pictures"][name] = SliceView(tensor, _orientation(loaded)).mid_slices_png()
        return views


def _orientation(loaded: Any) -> str | None:
    meta = getattr(loaded, "meta", None) or {}
    value = meta.get("orientation")
    return value if isinstance(value, str) else None
