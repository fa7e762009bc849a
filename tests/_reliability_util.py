"""Helpers shared by the reliability tests: tiny input files, CLI runs, file fingerprints."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ndstyle import cli

#: Options that make a CLI run take well under a second.
FAST = ["-n", "2", "--scales", "1", "-q", "--seed", "0"]


def write_pair(folder: Path, shape: tuple[int, ...] = (1, 16, 16)) -> tuple[Path, Path]:
    """A content and a style ``.npy`` in ``folder``."""
    rng = np.random.default_rng(0)
    content, style = folder / "content.npy", folder / "style.npy"
    np.save(content, rng.random(shape).astype(np.float32))
    np.save(style, rng.random(shape).astype(np.float32))
    return content, style


def fingerprint(path: Path) -> tuple[str, int, int]:
    """SHA-256, mtime (ns) and mode of a file: equal before and after means untouched."""
    stat = os.stat(path)
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_mtime_ns, stat.st_mode


def snapshot(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Fingerprint of every file in ``folder`` (hidden temporaries included)."""
    return {p.name: fingerprint(p) for p in sorted(folder.iterdir()) if p.is_file()}


def run_cli(capsys, *argv: object) -> tuple[int, str, str]:
    """Run ``ndstyle`` in-process; return (exit code, stdout, stderr)."""
    rc = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def assert_one_error_line(err: str, *fragments: str) -> None:
    """stderr is exactly one ``ndstyle: error:`` line (no traceback) holding every fragment."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ndstyle: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def _npy(path: Path) -> None:
    np.save(path, np.random.default_rng(0).random((1, 16, 16)).astype(np.float32))


#: extension -> writer of a small valid file. ONE line per reader: the bad-input matrix
#: (test_reliability_inputs.py) and the fuzzing (test_reliability_fuzz.py) then cover it.
VALID_FILES: dict[str, Callable[[Path], None]] = {
    ".npy": _npy,
}
