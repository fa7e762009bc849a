"""Weights files: safetensors + metadata, hashes, the cache folder, safe checkpoint reading."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from ndstyle._home import home, weights_dir
from ndstyle.errors import OutputFileError, WeightsIntegrityError, WeightsNotFoundError
from ndstyle.weights import (
    WeightsInfo,
    load_torch_checkpoint,
    load_weights,
    missing_weights_error,
    save_weights,
    verify_sha256,
)

META = {"architecture": "convnd", "spatial_dims": 1, "in_channels": 1, "layers": ["conv1_1"]}


def test_home_follows_the_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NDSTYLE_HOME", str(tmp_path / "h"))
    assert home() == tmp_path / "h" and weights_dir() == tmp_path / "h" / "weights"
    assert not (tmp_path / "h").exists()  # nothing is created just by asking
    monkeypatch.delenv("NDSTYLE_HOME")
    assert home() == Path.home() / ".cache" / "ndstyle"
    info = WeightsInfo(name="x", file_name="x-1234.safetensors")
    monkeypatch.setenv("NDSTYLE_HOME", str(tmp_path))
    assert info.cache_path == tmp_path / "weights" / "x-1234.safetensors"


def test_save_load_with_metadata_and_hash(tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    digest = save_weights(path, {"a": torch.arange(6.0).reshape(2, 3)}, META)
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    tensors, meta = load_weights(path, expected_sha256=digest)
    assert torch.equal(tensors["a"], torch.arange(6.0).reshape(2, 3)) and meta == META
    with pytest.raises(OutputFileError, match="already exists"):
        save_weights(path, {"a": torch.zeros(1)}, META)


def test_hash_mismatch_reports_both_hashes(tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    digest = save_weights(path, {"a": torch.zeros(3)}, META)
    wrong = "0" * 64
    with pytest.raises(WeightsIntegrityError) as error:
        verify_sha256(path, wrong, "demo")
    assert wrong in str(error.value) and digest in str(error.value)


def test_truncated_or_foreign_files_are_refused(tmp_path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights(path, {"a": torch.zeros(100)}, META)
    truncated = tmp_path / "t.safetensors"
    truncated.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(WeightsIntegrityError, match="not a readable safetensors"):
        load_weights(truncated)
    from safetensors.torch import save_file

    foreign = tmp_path / "f.safetensors"
    save_file({"a": torch.zeros(2)}, str(foreign))
    with pytest.raises(WeightsIntegrityError, match="no ndstyle metadata"):
        load_weights(foreign)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        load_weights(tmp_path / "missing.safetensors")


def test_missing_weights_error_names_paths_and_remedies(tmp_path) -> None:
    error = missing_weights_error(
        "vgg19",
        [tmp_path / "a.pth", tmp_path / "b.pth"],
        ["run 'ndstyle weights download vgg19'", "set NDSTYLE_HOME"],
    )
    text = str(error)
    assert "'vgg19'" in text and str(tmp_path / "a.pth") in text and str(tmp_path / "b.pth") in text
    assert "ndstyle weights download vgg19" in text and isinstance(error, FileNotFoundError)


class _Payload:
    def __reduce__(self):  # pragma: no cover - must never run
        return (Path.touch, (Path(_Payload.target),))


def test_pickled_code_in_a_checkpoint_never_runs(tmp_path) -> None:
    _Payload.target = str(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(1), "x": _Payload()}, path)
    with pytest.raises(WeightsIntegrityError, match="safely"):
        load_torch_checkpoint(path)
    assert not (tmp_path / "pwned").exists()
    good = tmp_path / "good.pth"
    torch.save({"weight": torch.ones(2)}, good)
    assert torch.equal(load_torch_checkpoint(good)["weight"], torch.ones(2))
