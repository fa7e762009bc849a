"""Safe output files: written to a temporary file in the target folder, then renamed.

Guarantees (see ``docs/reliability.md``):

- a reader never sees a half-written file: data go to a hidden temporary file next to the target
  (same file system), which is flushed to disk and then renamed onto the target in one step;
- on any failure (an exception, a full disk, no permission, Ctrl-C) the temporary file is removed
  and the target is left exactly as it was;
- an existing file is never replaced unless ``overwrite`` is true, and even then never when it is
  one of the inputs (same file through symlinks, hard links or relative paths);
- a writer that must produce companion files (a WFDB record's ``.dat`` next to its ``.hea``)
  asks :func:`companion` for a temporary path: companions are checked like the main file and
  appear together with it, or not at all;
- the result gets ordinary permissions (``0o666`` minus the umask, or those of the file it
  replaces), not the private ``0o600`` of a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputFileError

PathLike = str | os.PathLike[str]


@dataclass
class _Pending:
    """A temporary file of an open :func:`atomic_outputs` and what it becomes on success."""

    final: Path
    overwrite: bool
    inputs: tuple[Path, ...]
    companions: list[tuple[Path, Path]] = field(default_factory=list)


#: temporary path -> its pending output, while :func:`atomic_outputs` is open.
_PENDING: dict[Path, _Pending] = {}


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` are the same file (symlinks, hard links, ``..``), or would be."""
    pa, pb = Path(a), Path(b)
    with contextlib.suppress(OSError):
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    with contextlib.suppress(OSError, RuntimeError):
        return pa.resolve() == pb.resolve()
    return os.path.abspath(pa) == os.path.abspath(pb)


def check_output_path(path: PathLike, *, overwrite: bool = False, inputs: Sequence[PathLike] = ()) -> Path:
    """Check that ``path`` may be written; return it as a :class:`Path`.

    Raises:
        OutputFileError: the file is one of ``inputs`` (even with ``overwrite``), it exists and
            ``overwrite`` is false, it is a folder, or its folder does not exist.

    """
    out = Path(path)
    for given in inputs:
        if same_file(given, out):
            raise OutputFileError(
                f"output {str(out)!r} is the input file {str(given)!r}; ndstyle never writes over "
                f"an input: choose another output path"
            )
    if out.is_dir():
        raise OutputFileError(f"output {str(out)!r} is a folder; give a file name")
    if (out.exists() or out.is_symlink()) and not overwrite:
        raise OutputFileError(f"output {str(out)!r} already exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise OutputFileError(f"output folder {str(out.parent)!r} does not exist")
    check_folder_writable(out.parent, out)
    return out


def check_folder_writable(folder: Path, out: Path) -> None:
    """Create and remove a probe file in ``folder``: refuse now, not after hours of work."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".ndstyle-probe-", dir=folder)
    except OSError as error:
        why = "permission denied" if isinstance(error, PermissionError) else error.strerror or str(error)
        raise OutputFileError(
            f"output {str(out)!r}: cannot write in folder {str(folder)!r}: {why}"
        ) from error
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def final_path(tmp: PathLike) -> Path:
    """The file a temporary path of :func:`atomic_output` becomes (``tmp`` itself outside one)."""
    pending = _PENDING.get(Path(tmp))
    return pending.final if pending is not None else Path(tmp)


def companion(tmp: PathLike, final: PathLike) -> Path:
    """A temporary path for ``final``, a file that must appear together with ``tmp``'s target.

    ``final`` is checked like any output (never an input, never an existing file unless
    ``overwrite``); it is moved into place with the main file, and removed if that fails. Outside
    :func:`atomic_outputs` the writer writes ``final`` directly.
    """
    pending = _PENDING.get(Path(tmp))
    if pending is None:
        return Path(final)
    out = check_output_path(final, overwrite=pending.overwrite, inputs=pending.inputs)
    if same_file(out, pending.final) or any(same_file(out, o) for _, o in pending.companions):
        raise OutputFileError(f"output {str(out)!r} is given twice; choose distinct paths")
    part = _temporary(out)
    pending.companions.append((part, out))
    return part


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _temporary(out: Path) -> Path:
    suffix = "".join(out.suffixes) or ""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=f".part{suffix}", dir=out.parent)
    except OSError as error:
        raise OutputFileError(f"cannot write {str(out)!r}: {error.strerror or error}") from error
    os.close(fd)
    return Path(tmp_name)


def _commit(tmp: Path, out: Path, overwrite: bool) -> None:
    """Flush ``tmp`` to disk and move it onto ``out`` (never replacing ``out`` unless allowed)."""
    if not tmp.exists():
        raise OutputFileError(f"cannot write {str(out)!r}: the writer left no file")
    mode = 0o666 & ~_umask()
    with contextlib.suppress(OSError):
        if out.exists():
            mode = stat.S_IMODE(out.stat().st_mode)
    os.chmod(tmp, mode)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    if overwrite:
        os.replace(tmp, out)
    else:
        try:  # link(2) fails if ``out`` exists: no window in which another file could be replaced
            os.link(tmp, out)
        except FileExistsError as error:
            raise OutputFileError(f"output {str(out)!r} appeared while writing; not replaced") from error
        except OSError:  # file systems without hard links
            if out.exists():
                raise OutputFileError(f"output {str(out)!r} appeared while writing; not replaced") from None
            os.replace(tmp, out)
    _fsync_dir(out.parent)


def _as_output_error(outs: Sequence[Path], error: OSError) -> OutputFileError:
    if isinstance(error, OutputFileError):
        return error
    names = ", ".join(repr(str(o)) for o in outs)
    if isinstance(error, PermissionError):
        return OutputFileError(f"cannot write {names}: permission denied")
    return OutputFileError(f"cannot write {names}: {error.strerror or error}")


@contextlib.contextmanager
def atomic_output(
    path: PathLike, *, overwrite: bool = False, inputs: Sequence[PathLike] = ()
) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success move it onto ``path``.

    On any exception (including ``KeyboardInterrupt``) the temporary file is removed and ``path``
    is left as it was, so a reader never sees a half-written file. The temporary name keeps the
    suffix(es) of ``path``, so libraries that choose the format from the extension still work.

    Args:
        path: the file to write.
        overwrite: replace an existing file.
        inputs: files that must never be written (checked through links and relative paths).

    Raises:
        OutputFileError: the path may not be written, or writing failed (``OSError`` of the
            writer, e.g. no space left or permission denied, is turned into this one-line error).

    Example:
        >>> with atomic_output("out.png") as tmp:  # doctest: +SKIP
        ...     image.save(tmp)

    """
    with atomic_outputs([path], overwrite=overwrite, inputs=inputs) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_outputs(
    paths: Sequence[PathLike], *, overwrite: bool = False, inputs: Sequence[PathLike] = ()
) -> Iterator[tuple[Path, ...]]:
    """Like :func:`atomic_output` for several files that appear together or not at all.

    Every file is written to its temporary path first; only when all writers succeeded are they
    moved into place. If moving one fails, those already moved (and new) are removed again.
    """
    outs = [check_output_path(p, overwrite=overwrite, inputs=inputs) for p in paths]
    for i, a in enumerate(outs):
        for b in outs[i + 1 :]:
            if same_file(a, b):
                raise OutputFileError(f"output {str(a)!r} is given twice; choose distinct paths")
    tmps: list[Path] = []
    committed: list[Path] = []
    pending: list[_Pending] = []
    frozen = tuple(Path(i) for i in inputs)
    try:
        for out in outs:
            tmps.append(_temporary(out))
            pending.append(_Pending(out, overwrite, frozen))
            _PENDING[tmps[-1]] = pending[-1]
        try:
            yield tuple(tmps)
        except OSError as error:
            raise _as_output_error(outs, error) from error
        moves = [(t, o) for t, o in zip(tmps, outs, strict=True)]
        moves += [pair for p in pending for pair in p.companions]
        for tmp, out in moves:
            existed = out.exists()
            try:
                _commit(tmp, out, overwrite)
            except OSError as error:
                raise _as_output_error([out], error) from error
            if not existed:
                committed.append(out)
        committed.clear()
    finally:
        for tmp in tmps:
            _PENDING.pop(tmp, None)
        for tmp in [*tmps, *(t for p in pending for t, _ in p.companions)]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        for out in committed:  # a later file failed: take back the new ones
            with contextlib.suppress(OSError):
                out.unlink()


def leftover_temporaries(folder: PathLike) -> list[Path]:
    """Temporary files of :func:`atomic_output` in ``folder`` (there should be none after a run)."""
    return sorted(p for p in Path(folder).iterdir() if p.name.startswith(".") and ".part" in p.name)
