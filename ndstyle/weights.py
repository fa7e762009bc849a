"""Weights files: safetensors with metadata, hashes, the cache, and clear errors when missing.

ndstyle never unpickles a file it did not make: its own weights are safetensors (plain tensors
plus a JSON metadata header), and foreign PyTorch checkpoints are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ._home import weights_dir
from .errors import InputFileError, WeightsIntegrityError, WeightsNotFoundError
from .io.atomic import atomic_output

METADATA_KEY = "ndstyle"
REQUIRED_METADATA = ("spatial_dims", "in_channels", "layers", "architecture")


@dataclass(frozen=True)
class WeightsInfo:
    """What ndstyle knows about a named weights file it can use or fetch.

    Attributes:
        name: short name used by the CLI (``vgg19``...).
        file_name: file name in the cache (``<name>-<sha256 prefix>.<ext>`` for downloads).
        sha256: expected SHA-256 of the file as stored, or ``None`` when it is made locally.
        url: where to download it from, or ``None``.
        source: where the weights come from (paper, project).
        license: their licence.
        how_to_get: extra ways to obtain them, one sentence each, for error messages.
        meta: anything else (spatial_dims, in_channels, layers...).

    """

    name: str
    file_name: str
    sha256: str | None = None
    url: str | None = None
    source: str = ""
    license: str = ""
    how_to_get: tuple[str, ...] = ()
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def cache_path(self) -> Path:
        """Where the file lives in ndstyle's cache (``$NDSTYLE_HOME/weights/<file_name>``)."""
        return weights_dir() / self.file_name

    @property
    def search_paths(self) -> list[Path]:
        """Every place this file is looked for, in order: ndstyle's cache, then torch hub's if used."""
        paths = [self.cache_path]
        if self.meta.get("torch_hub"):
            paths.append(Path(torch.hub.get_dir()) / "checkpoints" / self.file_name)
        return paths

    def find(self) -> Path | None:
        """The first of :attr:`search_paths` that exists, or ``None``."""
        return next((p for p in self.search_paths if p.is_file()), None)


#: Named weights ndstyle knows about; modalities register theirs with :func:`register_weights`.
KNOWN_WEIGHTS: dict[str, WeightsInfo] = {}


def register_weights(info: WeightsInfo) -> WeightsInfo:
    """Add ``info`` to :data:`KNOWN_WEIGHTS` (idempotent) and return it."""
    KNOWN_WEIGHTS[info.name] = info
    return info


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str, name: str = "") -> None:
    """Raise :class:`WeightsIntegrityError` showing both hashes if ``path`` does not match."""
    actual = sha256_file(path)
    if not actual.startswith(expected.lower()):
        label = f" for {name}" if name else ""
        raise WeightsIntegrityError(
            f"weights file {str(path)!r}{label} failed its hash check: expected sha256 "
            f"{expected}, got {actual}; the file is corrupt, truncated or not the expected one "
            f"(delete it and fetch it again)"
        )


def missing_weights_error(name: str, looked_at: list[Path], ways: list[str]) -> WeightsNotFoundError:
    """Build the error for absent weights: name, every path looked at, every way to get them."""
    where = ", ".join(repr(str(p)) for p in looked_at)
    remedies = "; ".join(ways) if ways else "give the path of a weights file"
    return WeightsNotFoundError(f"weights {name!r} not found (looked at {where}). To get them: {remedies}")


def save_weights(
    path: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> str:
    """Write ``tensors`` and JSON ``metadata`` to a safetensors file atomically.

    Args:
        path: destination (``.safetensors``).
        tensors: name -> tensor (made contiguous and moved to CPU).
        metadata: JSON-serialisable description; :data:`REQUIRED_METADATA` keys are checked.
        overwrite: replace an existing file.

    Returns:
        The SHA-256 of the written file.

    """
    from safetensors.torch import save_file

    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(f"weights metadata lacks {missing}")
    header = {METADATA_KEY: json.dumps(dict(metadata), sort_keys=True)}
    with atomic_output(path, overwrite=overwrite) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp), header)
        digest = sha256_file(tmp)
    return digest


def load_weights(
    path: str | os.PathLike[str], *, expected_sha256: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a safetensors weights file written by :func:`save_weights` (no unpickling).

    Returns:
        ``(tensors, metadata)``.

    Raises:
        WeightsNotFoundError: the file does not exist.
        WeightsIntegrityError: hash mismatch, unreadable/truncated file, or no ndstyle metadata.

    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    file = Path(path)
    if not file.is_file():
        raise WeightsNotFoundError(f"weights file {str(file)!r} does not exist")
    if expected_sha256:
        verify_sha256(file, expected_sha256)
    try:
        with safe_open(str(file), framework="pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise WeightsIntegrityError(
            f"weights file {str(file)!r} is not a readable safetensors file ({error})"
        ) from error
    if METADATA_KEY not in header:
        raise WeightsIntegrityError(
            f"weights file {str(file)!r} has no ndstyle metadata; it was not written by ndstyle"
        )
    try:
        metadata = json.loads(header[METADATA_KEY])
    except json.JSONDecodeError as error:
        raise WeightsIntegrityError(f"weights file {str(file)!r} has corrupt metadata") from error
    return tensors, metadata


#: torch hub's convention: ``name-<first hex digits of the SHA-256>.pth`` (``vgg19-dcbb9e9d.pth``).
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{8,64})\.[^.]+$")
_VERIFIED: dict[tuple[str, int, int], str] = {}


def verify_hash_in_name(path: str | os.PathLike[str], expected: str | None = None) -> None:
    """Refuse a checkpoint whose bytes do not match ``expected`` or the hash prefix its name carries.

    Torch hub names checkpoints after the first hex digits of their SHA-256 and checks them only
    when downloading; a file copied into the cache, truncated or replaced is caught here.
    ``expected`` (a registered file's hash) takes precedence over the name. A file verified once in
    this process (same size and modification time) is not hashed again.
    """
    if expected is None:
        match = _HASH_IN_NAME.search(Path(path).name)
        if match is None:
            return
        expected = match.group(1)
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if _VERIFIED.get(key) != expected:
        verify_sha256(path, expected)
        _VERIFIED[key] = expected


def load_torch_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Read a PyTorch ``.pth`` state dict safely (``weights_only=True``: no code runs)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # pickle errors come in many types
        raise WeightsIntegrityError(
            f"cannot read checkpoint {str(path)!r} safely ({type(error).__name__}: {error})"
        ) from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsIntegrityError(f"checkpoint {str(path)!r} is not a state dict of tensors")
    return state


def describe_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the metadata of an ndstyle weights file, for ``ndstyle info``."""
    try:
        return load_weights(path)[1]
    except WeightsNotFoundError as error:
        raise InputFileError(str(error)) from error


def download_weights(info: WeightsInfo, *, progress: bool = True) -> Path:
    """Download ``info.url`` into the cache, verify its SHA-256, and return the path.

    Only called when the user asks (``ndstyle weights download NAME`` or ``download=True``).
    The file is written atomically: a failed or interrupted download leaves nothing behind.
    """
    import urllib.request

    from tqdm.auto import tqdm

    if not info.url:
        raise WeightsNotFoundError(
            f"weights {info.name!r} cannot be downloaded; " + "; ".join(info.how_to_get)
        )
    target = info.cache_path
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, overwrite=True) as tmp:
        try:
            with urllib.request.urlopen(info.url) as response, open(tmp, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(
                    total=total, unit="B", unit_scale=True, disable=not progress, desc=info.file_name
                ) as bar:
                    while block := response.read(1 << 20):
                        out.write(block)
                        bar.update(len(block))
        except OSError as error:
            raise WeightsNotFoundError(
                f"downloading weights {info.name!r} from {info.url} failed ({error}); "
                + "; ".join(info.how_to_get)
            ) from error
        if info.sha256:
            verify_sha256(tmp, info.sha256, info.name)
    return target
