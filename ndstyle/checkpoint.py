"""The one checkpoint format (style transfer and extractor training), to resume a long run exactly.

A checkpoint is ONE safetensors file (written atomically, no pickles): the tensors (current
iterate, best iterate, optimiser state such as the L-BFGS history or Adam moments, the random
generator state) are safetensors tensors, and everything else (pyramid level, step counters, best
cost, the history of cost records, a fingerprint of the run) is JSON in the safetensors metadata
header. One file instead of a tensor file plus a JSON sidecar means a checkpoint is replaced in one
atomic rename: there is never a tensor file from one step next to a JSON file from another.

:func:`save_checkpoint` / :func:`load_checkpoint` write and read any nested state of tensors and
JSON values under a ``kind`` (``"transfer"`` for :func:`ndstyle.stylize`, ``"training"`` for
:func:`ndstyle.training.train_extractor`); a checkpoint of the other kind is refused by name.

Resuming recomputes the targets from the same inputs and continues with the restored state; the
floats are stored bit for bit (tensors raw, Python floats through ``repr``), so on the same device
and thread count the resumed run gives the same result, bit for bit, as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from .errors import InputFileError, OptionError
from .io.atomic import atomic_output

#: Key of the JSON state in the safetensors metadata header.
METADATA_KEY = "ndstyle_checkpoint"
#: Format version; a checkpoint of another version is refused.
VERSION = 2


def encode_state(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Turn nested dicts/lists/tuples of tensors and numbers into JSON, moving tensors to ``tensors``."""
    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": prefix}
    if isinstance(value, Mapping):
        items = list(value.items())
        if not all(isinstance(k, (str, int)) for k, _ in items):
            raise TypeError(f"cannot checkpoint mapping keys of {prefix!r}")
        return {
            "__dict__": [[k, encode_state(v, f"{prefix}.{k}", tensors)] for k, v in items],
        }
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {prefix!r}")


def decode_state(value: Any, tensors: Mapping[str, torch.Tensor], device: torch.device | None = None) -> Any:
    """Inverse of :func:`encode_state`."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            tensor = tensors[value["__tensor__"]]
            return tensor.to(device) if device is not None else tensor
        if "__tuple__" in value:
            return tuple(decode_state(v, tensors, device) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: decode_state(v, tensors, device) for k, v in value["__dict__"]}
        raise ValueError("unknown encoded value")
    if isinstance(value, list):
        return [decode_state(v, tensors, device) for v in value]
    return value


def tensor_digest(*tensors: torch.Tensor | None) -> str:
    """SHA-256 (first 16 hex digits) of the values, shapes and dtypes of ``tensors``."""
    digest = hashlib.sha256()
    for t in tensors:
        if t is None:
            digest.update(b"none")
            continue
        c = t.detach().cpu().contiguous()
        digest.update(f"{tuple(c.shape)}{c.dtype}".encode())
        digest.update(c.view(torch.uint8).numpy().tobytes() if c.numel() else b"")
    return digest.hexdigest()[:16]


def module_digest(module: torch.nn.Module) -> str:
    """Digest of a module's parameters and buffers (the extractor of a run)."""
    state = module.state_dict()
    return tensor_digest(*(state[k] for k in sorted(state)))


@dataclass
class RunState:
    """Everything needed to continue a run after the step it was saved at.

    Attributes:
        fingerprint: what the run was made of (input digests, options); must match on resume.
        level: pyramid level in progress.
        level_steps_done: steps finished at that level.
        step: steps finished over all levels.
        best_cost: lowest cost at this level so far.
        x: the current iterate ``(1, C, *level_shape)``.
        best: the best iterate at this level ``(1, C, *level_shape)``.
        optimizer_state: the optimiser's state for ``x`` (L-BFGS history, Adam moments...).
        history: the :class:`~ndstyle.engine.StepRecord` fields of every finished step.
        generator_state: state of the run's random generator.
        statistic_state: state of the style statistic's own generator (the random directions of
            ``sliced-wasserstein``), ``None`` for deterministic statistics.

    """

    fingerprint: dict[str, str]
    level: int
    level_steps_done: int
    step: int
    best_cost: float
    x: torch.Tensor
    best: torch.Tensor
    optimizer_state: dict[str, Any]
    history: list[list[Any]] = field(default_factory=list)
    generator_state: torch.Tensor | None = None
    statistic_state: torch.Tensor | None = None


def save_checkpoint(path: str | os.PathLike[str], kind: str, state: Mapping[str, Any]) -> None:
    """Write ``state`` (nested dicts/lists of tensors and JSON values) to ``path`` atomically."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    meta = {"version": VERSION, "kind": kind, "state": encode_state(dict(state), "s", tensors)}
    with atomic_output(path, overwrite=True) as tmp:
        save_file(tensors, str(tmp), {METADATA_KEY: json.dumps(meta)})


def load_checkpoint(
    path: str | os.PathLike[str], kind: str, device: torch.device | None = None
) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` with the same ``kind`` (no unpickling).

    Raises:
        InputFileError: missing, damaged, of another version or of another kind.

    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    file = Path(path)
    if not file.is_file():
        raise InputFileError(f"checkpoint {str(file)!r} does not exist")
    try:
        with safe_open(str(file), framework="pt") as handle:
            header = handle.metadata() or {}
        # fresh, 64-byte aligned copies: BLAS reductions (L-BFGS's dot products) round differently
        # on the unaligned views safetensors returns, which would break bit-identical resumption
        tensors = {name: tensor.clone() for name, tensor in load_file(str(file)).items()}
        meta = json.loads(header[METADATA_KEY])
        if meta.get("version") != VERSION:
            raise ValueError(f"version {meta.get('version')!r}, expected {VERSION}")
        if meta.get("kind") != kind:
            raise ValueError(f"a {meta.get('kind')!r} checkpoint, expected {kind!r}")
        state = decode_state(meta["state"], tensors, device)
    except (SafetensorError, OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise InputFileError(
            f"checkpoint {str(file)!r} is not a readable ndstyle checkpoint of a {kind} "
            f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from error
    if not isinstance(state, dict):
        raise InputFileError(f"checkpoint {str(file)!r} is not a readable ndstyle checkpoint of a {kind}")
    return state


def save_run_state(path: str | os.PathLike[str], state: RunState) -> None:
    """Write a :func:`ndstyle.stylize` state to ``path`` atomically (replacing the previous one)."""
    save_checkpoint(path, "transfer", {f.name: getattr(state, f.name) for f in fields(state)})


def load_run_state(path: str | os.PathLike[str], device: torch.device | None = None) -> RunState:
    """Read a checkpoint written by :func:`save_run_state` (no unpickling)."""
    saved = load_checkpoint(path, "transfer", device)
    try:
        generator_state = saved["generator_state"]
        statistic_state = saved.get("statistic_state")  # absent in checkpoints of older versions
        return RunState(
            fingerprint=dict(saved["fingerprint"]),
            level=int(saved["level"]),
            level_steps_done=int(saved["level_steps_done"]),
            step=int(saved["step"]),
            best_cost=float(saved["best_cost"]),
            x=saved["x"],
            best=saved["best"],
            optimizer_state=saved["optimizer_state"],
            history=list(saved["history"]),
            generator_state=generator_state.cpu() if generator_state is not None else None,
            statistic_state=statistic_state.cpu() if statistic_state is not None else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise InputFileError(
            f"checkpoint {str(path)!r} is not a readable ndstyle checkpoint of a transfer (missing {error})"
        ) from error


def check_fingerprint(path: str | os.PathLike[str], saved: Mapping[str, str], now: Mapping[str, str]) -> None:
    """Refuse to resume a checkpoint made for other inputs or options, naming what differs."""
    differs = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if "options" in differs:  # name the options that differ
        try:
            old, new = json.loads(saved["options"]), json.loads(now["options"])
            names = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            differs[differs.index("options")] = f"options ({', '.join(names)})"
        except (KeyError, ValueError, TypeError, AttributeError):
            pass
    if differs:
        raise OptionError(
            f"checkpoint {str(path)!r} was made for a different run (differs in: {', '.join(differs)}); "
            f"use the same inputs and options, or delete it to start afresh"
        )


def fingerprint(
    parts: Mapping[str, Any], tensors: Mapping[str, Iterable[torch.Tensor | None]]
) -> dict[str, str]:
    """Fingerprint of a run: options as text, inputs as digests."""
    out = {k: json.dumps(v, sort_keys=True, default=repr) for k, v in parts.items()}
    out.update({k: tensor_digest(*v) for k, v in tensors.items()})
    return out
