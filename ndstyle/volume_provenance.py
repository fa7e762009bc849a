"""Provenance of a stylised volume: it must never pass for an acquired scan.

- :func:`mark_header`: the NIfTI header's ``descrip`` (80 bytes) says ``ndstyle <version>
  STYLISED - not an acquisition``; ``intent_name`` stays as it was; geometry (affine, sform/qform,
  zooms, units) and dtype are not touched.
- :func:`sidecar_path` / :func:`write_sidecar`: a JSON file next to the result (``out.nii.gz`` ->
  ``out.json``, the BIDS convention) with the content and style files (path, size, SHA-256), every
  option, the ndstyle version, the time and, when given, the judges' measures.
- :func:`fit_dtype`: values clipped to the range the on-disk dtype can hold (integers) and to finite
  numbers (floats), so a writer never wraps around or emits NaN.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

DESCRIP = "ndstyle {version} STYLISED - not an acquisition"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("ndstyle")
    except Exception:  # not installed (source checkout)
        return "dev"


def mark_header(header: Any) -> Any:
    """Set ``descrip`` of a NIfTI header (in place) to mark the data as stylised; returns it."""
    text = DESCRIP.format(version=_version())
    header["descrip"] = text.encode("ascii")[:80]
    return header


def sidecar_path(result: str | os.PathLike[str]) -> Path:
    """``out.nii.gz`` / ``out.nii`` -> ``out.json``."""
    path = Path(result)
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_name(name + ".json")


def _describe_file(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    if path is None:
        return None
    p = Path(path)
    if not p.is_file():
        return {"path": str(p)}
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    return {"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": digest}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def write_sidecar(
    result: str | os.PathLike[str],
    content: str | os.PathLike[str] | None,
    styles: Sequence[str | os.PathLike[str]],
    options: Mapping[str, Any],
    *,
    metrics: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the JSON sidecar of ``result`` (atomically); returns its path.

    Raises:
        FileExistsError: the sidecar exists and ``overwrite`` is false.

    """
    path = sidecar_path(result)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    record = sidecar_record(result, content, styles, options, metrics=metrics)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def sidecar_record(
    result: str | os.PathLike[str],
    content: str | os.PathLike[str] | None,
    styles: Sequence[str | os.PathLike[str]],
    options: Mapping[str, Any],
    *,
    metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What the sidecar of ``result`` says: generator, content and styles (with hashes), options."""
    record = {
        "generated_by": {"name": "ndstyle", "version": _version()},
        "stylised": True,
        "note": "synthetic: neural style transfer of the content; not an acquired scan",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "result": str(Path(result).name),
        "content": _describe_file(content),
        "styles": [_describe_file(s) for s in styles],
        "options": _jsonable(options),
    }
    if metrics is not None:
        record["metrics"] = _jsonable(metrics)
    return record


def fit_dtype(values: np.ndarray, dtype: np.dtype[Any] | type) -> np.ndarray:
    """``values`` rounded and clipped to what ``dtype`` holds (integers); floats made finite."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.rint(values), info.min, info.max).astype(dt)
    finfo = np.finfo(dt)
    return np.nan_to_num(values, nan=0.0, posinf=finfo.max, neginf=finfo.min).astype(dt)


__all__ = ["DESCRIP", "fit_dtype", "mark_header", "sidecar_path", "write_sidecar"]
