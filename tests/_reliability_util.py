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


def _image(path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(path)


def _audio(path: Path) -> None:
    import soundfile

    t = np.arange(4000) / 8000
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)


def _nifti(path: Path) -> None:
    import nibabel

    data = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    nibabel.save(nibabel.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0])), str(path))


def _csv(path: Path) -> None:
    t = np.arange(512) / 256
    values = np.stack([np.sin(2 * np.pi * 3 * t), np.cos(2 * np.pi * 5 * t)], axis=1)
    np.savetxt(path, values, delimiter=",", header="# sample_rate=256\nlead_I,lead_II", comments="")


def _wfdb(path: Path) -> None:
    import wfdb

    t = np.arange(512) / 256
    signal = np.stack([np.sin(2 * np.pi * 3 * t), np.cos(2 * np.pi * 5 * t)], axis=1)
    wfdb.wrsamp(
        path.stem,
        fs=256,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        p_signal=signal,
        fmt=["16", "16"],
        write_dir=str(path.parent),
    )


#: extension -> writer of a small valid file. ONE line per reader: the bad-input matrix
#: (test_reliability_inputs.py) and the fuzzing (test_reliability_fuzz.py) then cover it. Rows for
#: extensions no modality reads are unused; a row the reader does not accept is skipped.
VALID_FILES: dict[str, Callable[[Path], None]] = {
    ".npy": _npy,
    ".png": _image,
    ".jpg": _image,
    ".jpeg": _image,
    ".tif": _image,
    ".tiff": _image,
    ".bmp": _image,
    ".wav": _audio,
    ".flac": _audio,
    ".ogg": _audio,
    ".nii": _nifti,
    ".nii.gz": _nifti,
    ".csv": _csv,
    ".hea": _wfdb,
}


def valid_file(modality: object, ext: str, path: Path) -> Path:
    """Write a valid ``ext`` file at ``path`` that ``modality`` reads, or skip the test."""
    import pytest

    from ndstyle.options import TransferOptions

    if ext not in VALID_FILES:
        pytest.skip(f"no valid-file factory for {ext} in VALID_FILES")
    VALID_FILES[ext](path)
    try:
        modality.load(path, TransferOptions())  # type: ignore[attr-defined]
    except Exception as error:  # noqa: BLE001 - the factory does not fit this reader
        pytest.skip(f"VALID_FILES[{ext!r}] is not accepted by the {ext} reader: {error}")
    return path
