"""Weights security: no code runs from a file, tampering and truncation are refused clearly."""

from __future__ import annotations

import ast
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _reliability_util import FAST, assert_one_error_line, run_cli, write_pair

import ndstyle
from ndstyle.errors import InputFileError, WeightsIntegrityError
from ndstyle.extractors import ConvNdExtractor
from ndstyle.modalities.array import read_npy
from ndstyle.weights import WeightsInfo, download_weights, load_torch_checkpoint, load_weights

PACKAGE = Path(ndstyle.__file__).parent
UNPICKLERS = ("pickle", "dill", "joblib", "cloudpickle", "marshal", "shelve")


class _Touch:
    """Unpickling this object creates a file: proof that code ran."""

    target = ""

    def __reduce__(self):  # pragma: no cover - must never run
        return (Path.touch, (Path(_Touch.target),))


@pytest.fixture
def canary(tmp_path):
    _Touch.target = str(tmp_path / "code-ran")
    yield Path(_Touch.target)
    assert not Path(_Touch.target).exists(), "a pickle payload was executed"


def test_plain_pickle_posing_as_checkpoint_is_refused(tmp_path, canary):
    path = tmp_path / "legacy.pth"
    path.write_bytes(pickle.dumps({"weight": _Touch()}))
    with pytest.raises(WeightsIntegrityError, match="legacy.pth.*safely"):
        load_torch_checkpoint(path)


def test_torch_zip_checkpoint_with_payload_is_refused(tmp_path, canary):
    path = tmp_path / "evil.pth"
    torch.save({"conv.weight": torch.zeros(2), "hook": _Touch()}, path)
    with pytest.raises(WeightsIntegrityError, match="safely"):
        load_torch_checkpoint(path)


def test_npy_with_pickled_objects_is_refused(tmp_path, canary):
    path = tmp_path / "evil.npy"
    np.save(path, np.array([_Touch()], dtype=object), allow_pickle=True)
    with pytest.raises(InputFileError, match="evil.npy"):
        read_npy(path)


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def test_package_source_never_unpickles():
    """Static guard over every module (also the ones merged later)."""
    offences = []
    for file in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(file.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in UNPICKLERS for n in names):
                    offences.append(f"{file.name}:{node.lineno} imports an unpickler")
        for name, call in _calls(tree):
            keywords = {k.arg: ast.unparse(k.value) for k in call.keywords}
            if name.endswith("torch.load") and keywords.get("weights_only") != "True":
                offences.append(f"{file.name}:{call.lineno} torch.load without weights_only=True")
            if name.endswith(("np.load", "numpy.load")) and keywords.get("allow_pickle", "False") != "False":
                offences.append(f"{file.name}:{call.lineno} np.load with allow_pickle")
            if name in ("eval", "exec"):
                offences.append(f"{file.name}:{call.lineno} {name}()")
    assert offences == []


@pytest.fixture
def weights_file(tmp_path) -> tuple[Path, str]:
    net = ConvNdExtractor.random(2, 1, widths=(4, 8))
    path = tmp_path / "net.safetensors"
    return path, net.save(path)


def test_tampered_weights_are_refused_showing_both_hashes(weights_file):
    path, digest = weights_file
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # flip bits in the last tensor's values
    path.write_bytes(bytes(data))
    actual = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(WeightsIntegrityError) as error:
        ConvNdExtractor.from_file(path, expected_sha256=digest)
    message = str(error.value)
    assert digest in message and actual in message and str(path) in message and "\n" not in message


@pytest.mark.parametrize("keep", [0, 7, 8, 40, -1])
def test_truncated_weights_are_refused(weights_file, keep):
    path, _ = weights_file
    data = path.read_bytes()
    path.write_bytes(data[: keep if keep >= 0 else len(data) - 1])
    with pytest.raises(WeightsIntegrityError, match="net.safetensors.*not a readable safetensors"):
        load_weights(path)


def test_tampered_header_is_refused(weights_file):
    path, _ = weights_file
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    header = data[8 : 8 + header_len].decode()
    # claim a larger tensor than the file holds
    data[8 : 8 + header_len] = header.replace('"shape":[4,1,3,3]', '"shape":[9,1,3,3]', 1).encode()
    assert bytes(data) != path.read_bytes()
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="not a readable safetensors"):
        load_weights(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_extractor_file_through_the_cli(tmp_path, capsys, weights_file, damage):
    path, _ = weights_file
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x07" * 100)
    content, style = write_pair(tmp_path)
    rc, _, err = run_cli(capsys, "run", content, style, "-o", tmp_path / "o.npy", "-e", path, *FAST)
    assert rc == 1
    assert_one_error_line(err, str(path), "WeightsIntegrityError")
    assert not (tmp_path / "o.npy").exists()


def test_download_with_wrong_hash_leaves_nothing_in_the_cache(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"not the weights you are looking for")
    actual = hashlib.sha256(source.read_bytes()).hexdigest()
    expected = "ab" * 32
    info = WeightsInfo(name="demo", file_name="demo.bin", sha256=expected, url=source.as_uri())
    with pytest.raises(WeightsIntegrityError) as error:
        download_weights(info, progress=False)
    assert expected in str(error.value) and actual in str(error.value)
    assert not info.cache_path.exists()
    assert list(info.cache_path.parent.iterdir()) == []
