"""Property-based fuzzing of every reader: random bytes, truncations and bit flips of valid files.

Only ndstyle's own errors (:class:`~ndstyle.errors.NdstyleError`) may escape a reader; a reader
either returns a finite ``(C, *spatial)`` tensor or says in one line which file is bad. Readers are
found through :func:`ndstyle.modalities.all_modalities`, so new modalities are fuzzed as soon as
they are merged (add a valid-file factory to ``VALID_FILES`` for the truncation/bit-flip cases).
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from _reliability_util import valid_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ndstyle
from ndstyle.errors import NdstyleError
from ndstyle.modalities import all_modalities
from ndstyle.options import TransferOptions

FUZZ = settings(
    max_examples=100,
    deadline=2000,
    derandomize=True,  # deterministic: the same examples on every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
#: Seconds one read may take before it counts as a hang.
HANG_SECONDS = 20


def _readers() -> list[tuple[str, str]]:
    return [(name, ext) for name, m in all_modalities().items() for ext in m.extensions]


def _args() -> TransferOptions:
    return TransferOptions()


@contextlib.contextmanager
def _no_hang() -> Iterator[None]:
    def alarm(signum, frame):
        raise TimeoutError(f"reader took more than {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check_reader(modality_name: str, ext: str, data: bytes) -> None:
    modality = all_modalities()[modality_name]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{ext}"
        path.write_bytes(data)
        with _no_hang():
            for read in (
                lambda: modality.load(path, _args()),  # the API entry point: strict
                lambda: ndstyle.load(path, modality=modality_name),  # the file-level API's (and the CLI's)
            ):
                try:
                    loaded = read()
                except NdstyleError as error:
                    message = str(error)
                    assert str(path) in message and "\n" not in message, message
                else:
                    assert torch.isfinite(loaded.tensor).all()
                    assert 2 <= loaded.tensor.ndim <= 4


@pytest.mark.parametrize("modality,ext", _readers())
@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes(modality, ext, data):
    _check_reader(modality, ext, data)


def _valid_bytes(modality: str, ext: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        return valid_file(all_modalities()[modality], ext, Path(folder) / f"valid{ext}").read_bytes()


@pytest.mark.parametrize("modality,ext", _readers())
@FUZZ
@given(cut=st.floats(0, 1, exclude_max=True))
def test_truncated_valid_files(modality, ext, cut):
    data = _valid_bytes(modality, ext)
    _check_reader(modality, ext, data[: int(cut * len(data))])


@pytest.mark.parametrize("modality,ext", _readers())
@FUZZ
@given(
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
        min_size=1,
        max_size=8,
    )
)
def test_bit_flipped_valid_files(modality, ext, flips):
    data = bytearray(_valid_bytes(modality, ext))
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    _check_reader(modality, ext, bytes(data))
