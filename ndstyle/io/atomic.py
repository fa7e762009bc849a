"""Safe output files: written to a temporary file in the target folder, then renamed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import OutputFileError


def check_output_path(
    path: str | os.PathLike[str], *, overwrite: bool = False, inputs: tuple[str | os.PathLike[str], ...] = ()
) -> Path:
    """Check that ``path`` may be written; return it as a :class:`Path`.

    Raises:
        OutputFileError: the file exists and ``overwrite`` is false, it is one of ``inputs``,
            it is a folder, or its folder does not exist.

    """
    out = Path(path)
    for given in inputs:
        try:
            same = Path(given).resolve() == out.resolve()
        except OSError:
            same = False
        if same:
            raise OutputFileError(f"output {str(out)!r} is also an input; choose another path")
    if out.is_dir():
        raise OutputFileError(f"output {str(out)!r} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise OutputFileError(f"output {str(out)!r} already exists; pass --overwrite to replace it")
    if not out.parent.exists():
        raise OutputFileError(f"output folder {str(out.parent)!r} does not exist")
    return out


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was, so a reader
    never sees a half-written file. The temporary name keeps the suffix(es) of ``path``, so
    libraries that choose the format from the extension still work.

    Example:
        >>> with atomic_output("out.png") as tmp:  # doctest: +SKIP
        ...     image.save(tmp)

    """
    out = check_output_path(path, overwrite=overwrite)
    suffix = "".join(out.suffixes) or ""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=f".part{suffix}", dir=out.parent)
    except OSError as error:
        raise OutputFileError(f"cannot write {str(out)!r}: {error.strerror or error}") from error
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not overwrite and out.exists():
            raise OutputFileError(f"output {str(out)!r} appeared while writing; not replaced")
        os.replace(tmp, out)
    except PermissionError as error:
        raise OutputFileError(f"cannot write {str(out)!r}: permission denied") from error
    except OSError as error:
        if isinstance(error, OutputFileError):
            raise
        raise OutputFileError(f"cannot write {str(out)!r}: {error.strerror or error}") from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
