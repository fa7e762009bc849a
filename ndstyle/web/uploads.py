"""Uploaded files: only their extension is kept, checked against the modalities' readers.

A browser-given file name is never used as a path. An upload is stored as ``<role><extension>``
(``content.png``, ``style2.nii.gz``, ``mask.nii``) inside a job folder of the server's private
temporary folder (created with :func:`tempfile.mkdtemp`, mode 0700, removed when the server stops).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ..errors import InputFileError

#: Formats that are more than one file (a WFDB record is ``.hea`` + ``.dat``): the CLI reads them.
MULTI_FILE_EXTENSIONS = {".hea": "a WFDB record is two files (.hea + .dat); convert it to CSV or use the CLI"}

_EXTENSION = re.compile(r"^(\.[a-z0-9]{1,8}){1,2}$")
_ROLE = re.compile(r"^[a-z]+[0-9]*$")


def make_private_folder(prefix: str = "ndstyle-web-") -> Path:
    """A new folder only this user can enter (``mkdtemp`` creates it with mode 0700)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(folder, 0o700)
    return folder


def remove_folder(folder: Path) -> None:
    """Remove ``folder`` and everything in it (no error if it is gone)."""
    shutil.rmtree(folder, ignore_errors=True)


def extension_of(filename: str | None, allowed: Iterable[str], what: str) -> str:
    """The lower-case extension of an upload's name, if a reader accepts it.

    Args:
        filename: the name the browser sent (only its ending is looked at; ``None`` or empty: refused).
        allowed: accepted extensions with their dot (``.nii.gz`` counts as one).
        what: how the error names the upload (``content``, ``style 2``, ``mask``).

    Raises:
        InputFileError: no name, or an extension that no reader accepts.

    """
    allowed = tuple(sorted(set(allowed) - set(MULTI_FILE_EXTENSIONS), key=len, reverse=True))
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip().lower()
    if not name:
        raise InputFileError(f"{what}: no file was given")
    for ext, why in MULTI_FILE_EXTENSIONS.items():
        if name.endswith(ext):
            raise InputFileError(f"{what}: {why}")
    for ext in allowed:
        if name.endswith(ext) and len(name) > len(ext) and _EXTENSION.match(ext):
            return ext
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else "(none)"
    shown = suffix if len(suffix) <= 12 and _EXTENSION.match(suffix) else "(unsupported)"
    raise InputFileError(
        f"{what}: unsupported file extension {shown!r}; expected one of {', '.join(sorted(allowed))}"
    )


def store(source: BinaryIO, folder: Path, role: str, extension: str, *, limit: int) -> Path:
    """Copy an upload's bytes to ``folder/<role><extension>`` (mode 0600) and return that path.

    Raises:
        InputFileError: the upload is empty or larger than ``limit`` bytes (nothing is left behind).

    """
    if not _ROLE.match(role) or not _EXTENSION.match(extension):
        raise ValueError(f"bad upload role {role!r} or extension {extension!r}")
    target = folder / f"{role}{extension}"
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise InputFileError(f"{role}: larger than the upload limit ({limit >> 20} MB)")
                out.write(chunk)
        if size == 0:
            raise InputFileError(f"{role}: the file is empty (0 bytes)")
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
