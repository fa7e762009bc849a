"""Safe outputs: never overwrite unasked, never write an input, nothing half-written on failure."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from _reliability_util import FAST, assert_one_error_line, fingerprint, run_cli, snapshot, write_pair

from ndstyle.errors import OutputFileError
from ndstyle.io import atomic
from ndstyle.io.atomic import atomic_output, atomic_outputs, leftover_temporaries
from ndstyle.modalities.array import ArrayModality


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return write_pair(tmp_path)


def test_successful_run_leaves_inputs_untouched_and_output_readable(pair, tmp_path, capsys):
    content, style = pair
    before = {p: fingerprint(p) for p in pair}
    out, preview = tmp_path / "out.npy", tmp_path / "out.png"
    rc, stdout, err = run_cli(capsys, "run", content, style, "-o", out, "--preview", preview, *FAST)
    assert rc == 0, err
    assert stdout.strip() == str(out)
    assert {p: fingerprint(p) for p in pair} == before
    assert np.load(out).shape == (1, 16, 16)
    assert preview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert leftover_temporaries(tmp_path) == []
    # ordinary permissions (0o666 minus umask), not the 0o600 of a temporary file
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask


def test_existing_output_is_never_overwritten_without_flag(pair, tmp_path, capsys):
    content, style = pair
    out = tmp_path / "out.npy"
    out.write_bytes(b"precious")
    before = snapshot(tmp_path)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, *FAST)
    assert rc == 1
    assert_one_error_line(err, str(out), "already exists", "--overwrite")
    assert snapshot(tmp_path) == before
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, "--overwrite", *FAST)
    assert rc == 0, err
    assert np.load(out).shape == (1, 16, 16)


def test_existing_preview_is_never_overwritten_without_flag(pair, tmp_path, capsys):
    content, style = pair
    preview = tmp_path / "p.png"
    preview.write_bytes(b"precious")
    before = snapshot(tmp_path)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", "--preview", preview, *FAST)
    assert rc == 1
    assert_one_error_line(err, str(preview), "already exists")
    assert snapshot(tmp_path) == before  # not even the result was written


def _aliases(content: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    link = tmp_path / "link.npy"
    link.symlink_to(content)
    hard = tmp_path / "hard.npy"
    os.link(content, hard)
    monkeypatch.chdir(tmp_path)
    sub = tmp_path / "sub"
    sub.mkdir()
    return [content, Path(content.name), sub / ".." / content.name, link, hard]


@pytest.mark.parametrize("role", ["output", "preview"])
def test_output_equal_to_an_input_is_refused_even_with_overwrite(pair, tmp_path, capsys, monkeypatch, role):
    content, style = pair
    for alias in _aliases(content, tmp_path, monkeypatch):
        before = snapshot(tmp_path)
        target = ["-o", alias] if role == "output" else ["-o", tmp_path / "o.npy", "--preview", alias]
        rc, _, err = run_cli(capsys, "run", content, style, *target, "--overwrite", *FAST)
        assert rc == 1, alias
        assert_one_error_line(err, "input", "never writes over")
        assert snapshot(tmp_path) == before


def test_style_file_as_output_is_refused(pair, tmp_path, capsys):
    content, style = pair
    before = snapshot(tmp_path)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", style, "--overwrite", *FAST)
    assert rc == 1
    assert_one_error_line(err, str(style))
    assert snapshot(tmp_path) == before


def test_preview_equal_to_output_is_refused(pair, tmp_path, capsys):
    content, style = pair
    out = tmp_path / "o.npy"
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, "--preview", out, *FAST)
    assert rc == 1
    assert_one_error_line(err, "--preview")
    assert not out.exists()


def _fail_save(error: BaseException, write_first: bool = True):
    def save(self, path, result, content, args):
        if write_first:  # a writer that dies half way: some bytes are already on disk
            with open(path, "wb") as handle:
                handle.write(b"\x93NUMPY" + b"\0" * 100)
        raise error

    return save


FAULTS = {
    "permission denied": (PermissionError(errno.EACCES, "Permission denied"), "permission denied"),
    "disk full": (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    "writer bug": (RuntimeError("writer exploded"), "writer exploded"),
}


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("existing", [False, True])
def test_write_faults_leave_no_partial_output(pair, tmp_path, capsys, monkeypatch, fault, existing):
    content, style = pair
    out = tmp_path / "out.npy"
    if existing:
        out.write_bytes(b"previous result")
    before = snapshot(tmp_path)
    error, message = FAULTS[fault]
    monkeypatch.setattr(ArrayModality, "save", _fail_save(error))
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, "--overwrite", *FAST)
    assert rc == 1
    assert_one_error_line(err, message)
    assert snapshot(tmp_path) == before  # old output intact (or still absent), no temporaries


@pytest.mark.parametrize("fault", ["disk full", "writer bug"])
def test_preview_fault_takes_back_the_result_too(pair, tmp_path, capsys, monkeypatch, fault):
    content, style = pair
    before = snapshot(tmp_path)
    error, message = FAULTS[fault]

    def preview(self, path, content, styles, result):
        Path(path).write_bytes(b"\x89PNG half")
        raise error

    monkeypatch.setattr(ArrayModality, "preview", preview)
    args = ["-o", tmp_path / "o.npy", "--preview", tmp_path / "p.png"]
    rc, _, err = run_cli(capsys, "run", content, style, *args, *FAST)
    assert rc == 1
    assert_one_error_line(err, message)
    assert snapshot(tmp_path) == before


def test_failure_while_moving_the_second_file_removes_the_first(tmp_path, monkeypatch):
    real_commit = atomic._commit

    def commit(tmp, out, overwrite):
        if out.suffix == ".png":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_commit(tmp, out, overwrite)

    monkeypatch.setattr(atomic, "_commit", commit)
    with pytest.raises(OutputFileError, match="No space left"):
        with atomic_outputs([tmp_path / "a.npy", tmp_path / "b.png"]) as (a, b):
            a.write_bytes(b"a")
            b.write_bytes(b"b")
    assert list(tmp_path.iterdir()) == []


def test_exception_during_the_run_writes_nothing(pair, tmp_path, capsys, monkeypatch):
    content, style = pair
    before = snapshot(tmp_path)

    def run(self, prepared, kwargs, options):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(ArrayModality, "run", run)
    args = ["-o", tmp_path / "o.npy", "--preview", tmp_path / "p.png"]
    rc, _, err = run_cli(capsys, "run", content, style, *args, *FAST)
    assert rc == 1
    assert_one_error_line(err, "internal error RuntimeError: engine bug", "-v")
    assert snapshot(tmp_path) == before
    rc, _, err = run_cli(capsys, "run", content, style, *args, *FAST, "-v")
    assert "Traceback" in err  # -v shows it


def test_keyboard_interrupt_inside_a_writer_cleans_up(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(tmp_path / "o.npy") as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_output_appearing_during_the_write_is_not_replaced(tmp_path):
    out = tmp_path / "o.npy"
    with pytest.raises(OutputFileError, match="appeared while writing"):
        with atomic_output(out) as tmp:
            tmp.write_bytes(b"ours")
            out.write_bytes(b"someone else's")
    assert out.read_bytes() == b"someone else's"
    assert leftover_temporaries(tmp_path) == []


def test_writer_that_leaves_no_file_is_an_error(tmp_path):
    with pytest.raises(OutputFileError, match="left no file"):
        with atomic_output(tmp_path / "o.npy") as tmp:
            tmp.unlink()
    assert list(tmp_path.iterdir()) == []


def test_bad_output_locations(pair, tmp_path, capsys):
    content, style = pair
    for target, fragment in (
        (tmp_path / "missing" / "o.npy", "does not exist"),
        (tmp_path, "is a folder"),
        (tmp_path / "o.png", "cannot be written as '.png'"),
    ):
        rc, _, err = run_cli(capsys, "run", content, style, "-o", target, *FAST)
        assert rc == 1
        assert_one_error_line(err, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.npy", "style.npy"]


def test_save_every_writes_a_marked_partial_file_removed_on_success(pair, tmp_path, capsys, monkeypatch):
    from ndstyle.engine import stylize
    from ndstyle.errors import NonFiniteCostError

    content, style = pair
    out = tmp_path / "o.npy"
    partial = tmp_path / "o.partial.npy"
    seen = []

    def run(self, prepared, options, transfer_options):
        saver = options["callback"]

        def callback(info):
            saver(info)
            seen.append(partial.exists())
            if fail and info.record.step == 4:
                raise NonFiniteCostError("the cost became nan at step 4")

        return stylize(prepared.tensor, prepared.styles, **{**options, "callback": callback})

    monkeypatch.setattr(ArrayModality, "run", run)
    argv = ["run", content, style, "-o", out, "-n", "5", "--scales", "1", "-q", "--save-every", "2"]
    fail = True
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 1
    assert_one_error_line(err, "nan at step 4", "best result so far", str(partial))
    assert not out.exists() and np.load(partial).shape == (1, 16, 16)  # the real name stays free
    assert seen == [False, True, True, True]
    partial.unlink()
    fail = False
    rc, _, err = run_cli(capsys, *argv)
    assert rc == 0, err
    assert out.exists() and not partial.exists()
    assert leftover_temporaries(tmp_path) == []
