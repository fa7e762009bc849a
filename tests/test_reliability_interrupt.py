"""Ctrl-C, checkpoints and --resume: a continued run equals an uninterrupted one, bit for bit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _reliability_util import FAST, assert_one_error_line, run_cli, snapshot, write_pair

from ndstyle import stylize
from ndstyle.errors import InputFileError, InterruptedRun, OptionError
from ndstyle.io.atomic import leftover_temporaries
from ndstyle.modalities.array import ArrayModality

from conftest import make_pair

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def one_thread():
    """Bit-identical comparisons need the same thread count in every run."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _small(spatial_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    size = {1: (64,), 2: (32, 32), 3: (16, 16, 16)}[spatial_dims]
    content, style = make_pair(spatial_dims)
    return torch.nn.functional.interpolate(content[None], size=size)[0], style[
        (slice(None),) + tuple(slice(0, n) for n in size)
    ]


def _interrupt_at(step: int):
    def callback(info):
        if info.record.step == step:
            raise KeyboardInterrupt  # what Ctrl-C raises, at a known step

    return callback


CASES = [
    # (dims, optimizer, interrupt at step): mid-level, right at the level boundary, in level 2
    (2, "lbfgs", 3),
    (2, "lbfgs", 4),
    (2, "lbfgs", 7),
    (2, "adam", 5),
    (1, "lbfgs", 5),
    (3, "adam", 3),
]


@pytest.mark.parametrize("dims,optimizer,stop", CASES)
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, one_thread, dims, optimizer, stop):
    content, style = _small(dims)
    options = dict(steps=[4, 4], scales=[0.5, 1], seed=3, optimizer=optimizer, progress=False)
    if dims == 3:
        options.update(scales=1, steps=6, extractor="random")
    reference = stylize(content, style, **options)
    checkpoint = tmp_path / "run.ckpt.safetensors"
    with pytest.raises(InterruptedRun) as interrupted:
        stylize(
            content, style, checkpoint=checkpoint, checkpoint_every=2, callback=_interrupt_at(stop), **options
        )
    partial = interrupted.value.result
    assert len(partial.history) == stop and torch.isfinite(partial.output).all()
    assert partial.output.shape == content.shape
    resumed = stylize(content, style, checkpoint=checkpoint, checkpoint_every=2, resume=True, **options)
    assert torch.equal(resumed.output, reference.output)
    assert resumed.best_cost == reference.best_cost
    assert [r.total for r in resumed.history] == [r.total for r in reference.history]
    assert [r.step for r in resumed.history] == list(range(1, len(reference.history) + 1))


def test_checkpointing_does_not_change_the_result(tmp_path, one_thread):
    content, style = _small(2)
    options = dict(steps=5, scales=1, seed=0, progress=False)
    plain = stylize(content, style, **options)
    saved = stylize(content, style, checkpoint=tmp_path / "c.safetensors", checkpoint_every=1, **options)
    assert torch.equal(plain.output, saved.output)


def test_checkpoint_of_another_run_is_refused(tmp_path):
    content, style = _small(2)
    checkpoint = tmp_path / "c.safetensors"
    options = dict(steps=3, scales=1, seed=0, progress=False, checkpoint=checkpoint, checkpoint_every=1)
    stylize(content, style, **options)
    with pytest.raises(OptionError, match=r"different run \(differs in: content\)"):
        stylize(content + 0.01, style, resume=True, **options)
    with pytest.raises(OptionError, match="differs in: options"):
        stylize(content, style, resume=True, **{**options, "steps": 4})
    with pytest.raises(OptionError, match="differs in: .*styles"):
        stylize(content, style.flip(-1), resume=True, **options)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "not ours"])
def test_damaged_checkpoint_is_refused_with_its_name(tmp_path, damage):
    from safetensors.torch import save_file

    content, style = _small(2)
    checkpoint = tmp_path / "c.safetensors"
    options = dict(steps=2, scales=1, progress=False, checkpoint=checkpoint, checkpoint_every=1)
    stylize(content, style, **options)
    data = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        checkpoint.write_bytes(b"\x00" * 64)
    else:
        save_file({"x": torch.zeros(2)}, str(checkpoint))
    with pytest.raises(InputFileError, match="c.safetensors.*not a readable ndstyle checkpoint"):
        stylize(content, style, resume=True, **options)


def test_checkpoint_options_are_checked():
    content, style = _small(2)
    with pytest.raises(OptionError, match="checkpoint=<path"):
        stylize(content, style, steps=1, checkpoint_every=2, progress=False)
    with pytest.raises(OptionError, match="checkpoint_every must be an integer >= 0"):
        stylize(content, style, steps=1, checkpoint="c.safetensors", checkpoint_every=-1, progress=False)
    with pytest.raises(InputFileError, match="does not exist"):
        stylize(content, style, steps=1, checkpoint="/nonexistent/c.safetensors", resume=True, progress=False)


def test_ctrl_c_outside_the_optimisation_exits_130_without_output(tmp_path, capsys, monkeypatch):
    content, style = write_pair(tmp_path)
    before = snapshot(tmp_path)

    def load(self, path, args):
        raise KeyboardInterrupt

    monkeypatch.setattr(ArrayModality, "load", load)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", *FAST)
    assert rc == 130
    assert err.strip() == "ndstyle: interrupted"
    assert snapshot(tmp_path) == before


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    content, style = write_pair(tmp_path)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", "--resume", *FAST)
    assert rc == 1
    assert_one_error_line(err, "--resume", "o.npy.checkpoint.safetensors")


# A real process, a real SIGINT. The loss is slowed down (50 ms per evaluation) so that the signal
# surely arrives mid-run; the result of the run does not depend on the delay.
SLOW_CLI = textwrap.dedent(
    """
    import sys, time
    import ndstyle.losses as losses
    forward = losses.PerceptualLoss.forward
    def slow(self, x):  # the run lasts >= 10 s, so a starved test process still sees a checkpoint
        time.sleep(0.25)
        return forward(self, x)
    losses.PerceptualLoss.forward = slow
    from ndstyle.cli import main
    raise SystemExit(main(sys.argv[1:]))
    """
)


def test_sigint_saves_marked_result_and_resume_matches_uninterrupted_run(tmp_path, capsys, one_thread):
    content, style = write_pair(tmp_path)
    out = tmp_path / "out.npy"
    checkpoint = tmp_path / "out.npy.checkpoint.safetensors"
    argv = ["run", content, style, "-o", out, "-n", "40", "--scales", "1", "--seed", "0", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, *map(str, argv), "--checkpoint-every", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120  # a bound on waiting, not a timing assertion
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    marked = tmp_path / "out.interrupted.npy"
    assert_one_error_line(stderr, "interrupted after", str(marked), "--resume")
    assert not out.exists()  # the real name only ever holds a finished result
    assert np.isfinite(np.load(marked)).all() and np.load(marked).shape == (1, 16, 16)
    assert leftover_temporaries(tmp_path) == []
    assert checkpoint.exists()

    rc, _, err = run_cli(capsys, *argv, "--checkpoint-every", "3", "--resume")
    assert rc == 0, err
    assert not checkpoint.exists()  # removed after success
    reference = tmp_path / "reference.npy"
    rc, _, err = run_cli(capsys, *argv[:4], reference, *argv[5:])
    assert rc == 0, err
    assert np.array_equal(np.load(out), np.load(reference))


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """Job schedulers stop jobs with SIGTERM: same marked result, no partial files, exit 143."""
    content, style = write_pair(tmp_path)
    out = tmp_path / "out.npy"
    checkpoint = tmp_path / "out.npy.checkpoint.safetensors"
    argv = ["run", content, style, "-o", out, "-n", "40", "--scales", "1", "-q", "--checkpoint-every", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, *map(str, argv)], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert_one_error_line(stderr, "interrupted after", "out.interrupted.npy")
    assert not out.exists() and (tmp_path / "out.interrupted.npy").exists()
    assert leftover_temporaries(tmp_path) == []


def test_stale_checkpoint_is_not_overwritten_silently(tmp_path, capsys):
    content, style = write_pair(tmp_path)
    out = tmp_path / "o.npy"
    stale = tmp_path / "o.npy.checkpoint.safetensors"
    stale.write_bytes(b"an earlier run")
    rc, _, err = run_cli(capsys, "run", content, style, "-o", out, "--checkpoint-every", "1", *FAST)
    assert rc == 1
    assert_one_error_line(err, str(stale), "--resume", "--overwrite")
    assert stale.read_bytes() == b"an earlier run" and not out.exists()


def test_out_of_memory_is_one_line_with_advice(tmp_path, capsys, monkeypatch):
    content, style = write_pair(tmp_path)

    def run(self, prepared, kwargs, options):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(ArrayModality, "run", run)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", *FAST)
    assert rc == 1
    assert_one_error_line(err, "out of memory", "--size")


def test_checkpoint_tensors_load_aligned(tmp_path):
    """Loaded state is in fresh 64-byte aligned buffers: BLAS dot products round by alignment."""
    from ndstyle.checkpoint import RunState, load_run_state, save_run_state

    odd = {"old_dirs": [torch.rand(333), torch.rand(1000)], "ro": [torch.rand(7)], "n_iter": 2}
    state = RunState({}, 0, 1, 1, 0.5, torch.rand(1, 3, 5), torch.rand(1, 3, 5), odd)
    save_run_state(tmp_path / "c.safetensors", state)
    loaded = load_run_state(tmp_path / "c.safetensors")
    tensors = [loaded.x, loaded.best, *loaded.optimizer_state["old_dirs"], *loaded.optimizer_state["ro"]]
    assert all(t.data_ptr() % 64 == 0 for t in tensors)
    torch.testing.assert_close(loaded.optimizer_state["old_dirs"][0], odd["old_dirs"][0], rtol=0, atol=0)
