"""The batch summary ``OUTDIR/ndstyle-batch.jsonl`` and the fingerprints that let a batch resume.

One JSON object a line, written as each item finishes (so an interrupted batch keeps what it
did): ``content``, ``styles``, ``output``, ``status`` (``done`` / ``failed`` / ``skipped``),
``error`` (one line or null), ``seconds``, ``costs`` (the final step's content/style/tv/total and
the best total), ``fingerprint`` (of the item's transfer options) and ``inputs`` (of the input
files' sizes and modification times); with ``--report``, ``flagged``: the field checks the result
failed (the report's ``passes`` that are false; ``[]`` when it passed them all).

An item is skipped on a rerun when its output exists and the previous summary holds a ``done``
(or ``skipped``) line for the same output with the same fingerprint and inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from ..errors import NdstyleError
from .plan import SUMMARY_NAME, Item

log = logging.getLogger(__name__)

STATUSES = ("done", "failed", "skipped")


def options_fingerprint(options: Mapping[str, Any]) -> str:
    """Hex fingerprint of an item's options (:meth:`ndstyle.TransferOptions.fingerprint`).

    Files among the options count by content; a forced reader (``modality``) counts too.
    """
    from ..options import TransferOptions

    given = {k: v for k, v in options.items() if k not in ("modality", "progress")}
    fingerprint = TransferOptions.from_kwargs(**given).fingerprint()
    if options.get("modality"):
        fingerprint = hashlib.sha256(f"{fingerprint}|{options['modality']}".encode()).hexdigest()
    return fingerprint


def _fingerprint_or_none(options: Mapping[str, Any]) -> str | None:
    try:
        return options_fingerprint(options)
    except NdstyleError:  # an item whose options are invalid (it is recorded as failed)
        return None


def inputs_stamp(item: Item) -> str:
    """Hex fingerprint of the input files' paths, sizes and modification times."""
    parts = []
    for path in (item.content, *item.styles):
        try:
            st = path.stat()
            parts.append(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}|missing")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def record(item: Item, status: str, **fields: Any) -> dict[str, Any]:
    """A summary line for ``item`` (``fields``: error, seconds, costs...)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    line: dict[str, Any] = {
        "index": item.index,
        "content": str(item.content),
        "styles": [str(s) for s in item.styles],
        "output": str(item.output),
        "status": status,
        "error": None,
        "seconds": None,
        "costs": None,
        "fingerprint": _fingerprint_or_none(item.options),
        "inputs": inputs_stamp(item),
    }
    line.update(fields)
    return line


def read_summary(path: Path) -> dict[str, dict[str, Any]]:
    """Previous summary lines by resolved output path (the last line of an output wins).

    A torn last line (the batch was killed while writing it) and foreign lines are ignored.
    """
    found: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return found
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("output"), str):
            found[str(Path(entry["output"]).resolve())] = entry
    return found


def finished_before(item: Item, previous: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The previous line of ``item`` if its result can be kept (output present, same fingerprints)."""
    old = previous.get(str(item.output.resolve()))
    if old is None or old.get("status") not in ("done", "skipped") or not item.output.is_file():
        return None
    if old.get("fingerprint") != options_fingerprint(item.options) or old.get("inputs") != inputs_stamp(item):
        return None
    return old


class SummaryWriter:
    """Writes summary lines as items finish, flushed at once (a killed batch keeps its lines).

    The previous summary is replaced atomically by the lines known at the start (the skipped
    items), so its information is never lost between reading and rewriting it.
    """

    def __init__(self, outdir: Path, first_lines: Iterable[Mapping[str, Any]] = ()) -> None:
        self.path = outdir / SUMMARY_NAME
        outdir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{SUMMARY_NAME}.tmp{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as handle:
            for line in first_lines:
                handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        self._handle: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def write(self, line: Mapping[str, Any]) -> None:
        """Append one line and flush it."""
        if self._handle is None:
            raise ValueError("summary already closed")
        self._handle.write(json.dumps(dict(line)) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Flush to disk and close."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
