"""Pre-flight memory estimate: refuse a run that cannot fit *before* allocating anything large.

The estimate is generic: it runs the extractor once on a small probe input (a few thousand
positions), measures the activations of every layer up to the deepest one used, and scales them
to the real spatial shape (activation sizes are proportional to the number of input positions).
It then adds what the optimiser keeps (L-BFGS history, Adam moments) and the input copies.
Modalities with better knowledge (e.g. slice-wise volume extractors) may estimate more precisely;
this one errs on the high side by counting every activation twice (forward and backward).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence

import torch

from .errors import OptionError

#: Bytes per value of the optimised input and activations (fp32).
BYTES_PER_VALUE = 4
#: L-BFGS history size used by the engine.
LBFGS_HISTORY = 50
_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(value: int | float | str | None, what: str = "max_memory") -> int | None:
    """``"8G"``, ``"500M"``, ``"1.5GB"``, ``"2GiB"`` or bytes -> bytes; ``None``/``"none"`` -> None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise OptionError(f"{what} must be a size like 8G or 500M, got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        text = value.strip()
        if text.lower() in ("none", "off", "unlimited"):
            return None
        match = re.fullmatch(r"([0-9]*\.?[0-9]+)\s*([KMGTkmgt]?)(?:i?[bB])?", text)
        if not match:
            raise OptionError(f"{what} must be a size like 8G, 500M or a number of bytes, got {value!r}")
        number, unit = float(match.group(1)), match.group(2).upper()
    if not math.isfinite(number) or number <= 0:
        raise OptionError(f"{what} must be a positive size, got {value!r}")
    return int(number * _UNITS[unit])


def format_size(n: float) -> str:
    """Bytes -> ``"1.2 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} TiB"


def device_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` in bytes (physical RAM for the CPU), or ``None`` if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        if device.type == "cpu":
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError, RuntimeError, AssertionError):
        return None
    return None


def _probe_shape(shape: Sequence[int], min_size: int) -> tuple[int, ...]:
    base = {1: 2048, 2: 64, 3: 16}.get(len(shape), 16)
    return tuple(min(n, max(base, 2 * min_size)) for n in shape)


def activation_values(extractor: torch.nn.Module, shape: Sequence[int], layers: Sequence[str]) -> int:
    """Number of activation values of every layer up to the deepest of ``layers`` at ``shape``.

    Measured on a small probe input and scaled by the number of positions (exact when pooling
    divides the sizes, slightly high otherwise).
    """
    names = list(getattr(extractor, "layer_names", ()))
    min_size = int(extractor.min_input_size(list(layers)))  # type: ignore[operator]
    probe = _probe_shape(shape, min_size)
    upto = names[: max(names.index(n) for n in layers) + 1] if names and set(layers) <= set(names) else []
    try:
        param = next(extractor.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        x = torch.zeros((1, int(extractor.in_channels), *probe), device=device)  # type: ignore[arg-type]
        with torch.no_grad():
            try:
                feats = extractor(x, upto or list(layers))
            except Exception:  # an extractor that only returns some layers
                feats = extractor(x, list(layers))
        measured = sum(int(f.numel()) for f in feats.values())
    except Exception:  # never let the estimate itself break a run: fall back to a rough guess
        measured = 64 * math.prod(probe) * max(1, len(layers))
    return int(measured * math.prod(shape) / math.prod(probe))


def estimate_memory(
    extractor: torch.nn.Module,
    shape: Sequence[int],
    layers: Sequence[str],
    *,
    optimizer: str = "lbfgs",
    style_shapes: Sequence[Sequence[int]] = (),
    precision: str = "fp32",
) -> int:
    """Estimated peak bytes of :func:`ndstyle.stylize` at its finest level.

    Args:
        extractor: the feature extractor (its parameters count too).
        shape: spatial shape of the content (the finest pyramid level).
        layers: every layer the costs use.
        optimizer: ``"lbfgs"`` (keeps a history of 2 x 50 input-sized vectors) or ``"adam"``.
        style_shapes: spatial shapes of the styles (their features are computed once, no grad).
        precision: ``"fp32"`` or ``"bf16"`` (activations take 2 bytes a value; the input-sized
            buffers stay float32).

    Returns:
        Bytes.

    """
    channels = int(getattr(extractor, "in_channels", 1))
    n_input = channels * math.prod(shape)
    acts = activation_values(extractor, shape, layers)
    style_acts = max((activation_values(extractor, s, layers) for s in style_shapes), default=0)
    optimiser_values = (2 * LBFGS_HISTORY + 4) * n_input if optimizer == "lbfgs" else 3 * n_input
    params = sum(p.numel() * p.element_size() for p in extractor.parameters())
    activation_bytes = 2 if precision == "bf16" else BYTES_PER_VALUE
    activations = (2 * acts + style_acts) * activation_bytes
    return int(activations + (optimiser_values + 8 * n_input) * BYTES_PER_VALUE + params)
