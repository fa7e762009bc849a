"""The one memory policy: estimate a run's peak *before* allocating it, then fit or refuse.

Every modality goes through the same three functions:

- :func:`estimate_memory` -- peak bytes of one optimiser step at a spatial shape, from the
  extractor's own activation sizes (:func:`activation_sizes`, measured on a ``meta`` tensor that
  allocates nothing), plus the input-sized buffers the optimiser keeps (the L-BFGS history of
  ``2 x history_size`` vectors, Adam's two moments) and the parameters;
- :func:`memory_limit` -- the one limit: ``max_memory`` bytes (``"8G"``...), or with ``"auto"`` the
  device's memory (physical RAM on the CPU);
- :func:`plan_memory` -- the one fit-or-refuse rule: keep the run as asked if it fits; else
  shorten the L-BFGS history (down to :data:`MIN_LBFGS_HISTORY`), then switch to tiled steps when
  the extractor can tile (:mod:`ndstyle.tiling`), then refuse with the numbers. It never makes the
  working grid smaller; what it changes it says in one logged line.

All sizes are bytes and are printed with :func:`format_size` (binary units: KiB, MiB, GiB).
The estimate was checked against the measured peak RSS growth of real runs
(``tests/test_volume_extractors.py``); CPU convolution workspaces are transient and not counted.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .errors import OptionError

log = logging.getLogger(__name__)

#: Bytes per value of the optimised input and the input-sized buffers (fp32).
BYTES_PER_VALUE = 4
#: L-BFGS history size the engine uses when memory allows (torch's ``history_size``).
LBFGS_HISTORY = 50
#: Shortest L-BFGS history the policy falls back to before tiling or refusing.
MIN_LBFGS_HISTORY = 5
#: Input-sized fp32 buffers besides the optimiser state: the iterate, its gradient, the content,
#: the best iterate, the composite and the clamping copy.
INPUT_BUFFERS = 6
#: Extra input-sized float32 buffers of a tiled step: the summed gradient and one tile's copy.
TILED_INPUT_BUFFERS = 2
#: float32-sized values a sorted style statistic (histogram, sliced-wasserstein) holds per value of
#: the layer it sorts: a float32 copy, the projections, the int64 sort order (2), the matched
#: quantiles, the squared difference and the gradient.
SORT_WORKSPACE = 7
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
    """Bytes -> ``"1.2 GiB"`` (the one format every memory message uses)."""
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


def memory_limit(max_memory: int | float | str | None, device: torch.device) -> int | None:
    """The one limit in bytes: ``max_memory`` parsed, or the device's memory for ``"auto"``."""
    if isinstance(max_memory, str) and max_memory.strip().lower() == "auto":
        return device_memory(device)
    return parse_size(max_memory)


def _probe_shape(shape: Sequence[int], min_size: int) -> tuple[int, ...]:
    base = {1: 2048, 2: 64, 3: 16}.get(len(shape), 16)
    return tuple(min(n, max(base, 2 * min_size)) for n in shape)


def _deepest_first(extractor: nn.Module, layers: Sequence[str] | None) -> list[str]:
    names = list(getattr(extractor, "layer_names", ()))
    if layers is None:
        return names
    wanted = list(layers)
    if names and set(wanted) <= set(names):
        return names[: 1 + max(names.index(n) for n in wanted)]
    return wanted


def _hooked_sizes(extractor: nn.Module, x: torch.Tensor, layers: list[str]) -> list[int]:
    """Element counts of every leaf module's output while ``extractor(x, layers)`` runs."""
    sizes: list[int] = []

    def record(module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor) and not getattr(module, "inplace", False):
            sizes.append(int(output.numel()))

    leaves = [m for m in extractor.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    # an estimate must not change the run: keep the state of generators the extractor samples with
    generators = [
        g for m in extractor.modules() if isinstance(g := getattr(m, "generator", None), torch.Generator)
    ]
    states = [g.get_state() for g in generators]
    try:
        with torch.no_grad():
            extractor(x, layers)
    finally:
        for handle in handles:
            handle.remove()
        for g, state in zip(generators, states, strict=True):
            g.set_state(state)
    return sizes


def _counts_at(
    extractor: nn.Module,
    shape: Sequence[int],
    upto: list[str],
    count: Callable[[torch.Tensor], list[int]],
) -> list[int] | None:
    """``count(x)`` for an input of ``shape`` (``None`` if the extractor cannot be run).

    On a ``meta`` tensor (exact, allocates nothing), else on a small probe scaled by the number of
    positions (extractors with operations that have no meta kernel).
    """
    channels = int(getattr(extractor, "in_channels", 1))
    try:
        return count(torch.empty((1, channels, *shape), device="meta"))
    except Exception:  # no meta kernel for some operation: measure on a small probe instead
        pass
    try:
        probe = _probe_shape(shape, int(extractor.min_input_size(upto)))  # type: ignore[operator]
        param = next(extractor.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        counts = count(torch.zeros((1, channels, *probe), device=device))
    except Exception:  # never let the estimate itself break a run
        return None
    ratio = math.prod(shape) / math.prod(probe)
    return [int(c * ratio) for c in counts]


def activation_sizes(
    extractor: nn.Module, shape: Sequence[int], layers: Sequence[str] | None = None
) -> list[int]:
    """Element counts of every activation a forward pass to the deepest of ``layers`` keeps.

    Runs the extractor on a ``meta`` tensor (exact, allocates nothing); extractors whose
    operations have no meta kernel (e.g. an STFT) run on a small probe input instead and the sizes
    are scaled by the number of positions (exact when pooling divides the sizes, slightly high
    otherwise). In-place activations are not counted twice.
    """
    upto = _deepest_first(extractor, layers)
    sizes = _counts_at(extractor, shape, upto, lambda x: _hooked_sizes(extractor, x, upto))
    if sizes is None:  # a rough guess
        sizes = [64 * math.prod(shape)] * max(1, len(upto))
    return sizes


def _layer_values(extractor: nn.Module, shape: Sequence[int], layers: Sequence[str]) -> int:
    """Values of the named ``layers``' outputs at ``shape`` (0 if the extractor cannot be run)."""
    if not layers:
        return 0

    def count(x: torch.Tensor) -> list[int]:
        with torch.no_grad():
            return [sum(f.numel() for f in extractor(x, list(layers)).values())]

    counts = _counts_at(extractor, shape, _deepest_first(extractor, layers), count)
    return 0 if counts is None else counts[0]


def activation_values(extractor: nn.Module, shape: Sequence[int], layers: Sequence[str]) -> int:
    """Total number of activation values up to the deepest of ``layers`` at ``shape``."""
    return sum(activation_sizes(extractor, shape, layers))


def optimizer_values(optimizer: str, n_input: int, history_size: int = LBFGS_HISTORY) -> int:
    """Input-sized fp32 values the optimiser holds at its peak: L-BFGS ``2 x history_size + 6``, Adam 2.

    Besides the history pairs, torch's L-BFGS step holds at once the flat gradient (a new tensor),
    the previous one, the old direction ``d``, the two-loop's ``q`` and the new direction ``r``,
    and a temporary ``|g|`` or ``|t d|`` for its stopping tests: 6 vectors.
    """
    return (2 * history_size + 6) * n_input if optimizer == "lbfgs" else 2 * n_input


def estimate_memory(
    extractor: nn.Module,
    shape: Sequence[int],
    layers: Sequence[str] | None = None,
    *,
    optimizer: str = "lbfgs",
    history_size: int = LBFGS_HISTORY,
    style_shapes: Sequence[Sequence[int]] = (),
    precision: str = "fp32",
    tile: Sequence[int] | None = None,
    content_layers: Sequence[str] = (),
    sorted_layers: Sequence[str] = (),
) -> int:
    """Estimated peak bytes of one step of :func:`ndstyle.stylize` at spatial ``shape``.

    Args:
        extractor: the feature extractor (its parameters count too).
        shape: spatial shape of the content (the finest pyramid level).
        layers: every layer the costs use (default: all of the extractor's).
        optimizer: ``"lbfgs"`` (a history of ``2 x history_size`` input-sized vectors) or
            ``"adam"`` (two moments).
        history_size: the L-BFGS history length.
        style_shapes: spatial shapes of the styles (features computed once, without autograd).
        precision: ``"fp32"`` or ``"bf16"`` (activations take 2 bytes a value, plus a float32
            copy of every used layer's output, which the Gram and content costs compute in and keep
            for the backward pass; the input-sized buffers stay float32).
        tile: the spatial shape of one tile *with its halo* when the steps are tiled: the
            activations are then those of one tile, the input-sized buffers stay full size, plus
            :data:`TILED_INPUT_BUFFERS` more (the gradient being summed and a tile's copy) and the
            float32 content targets of every tile (``content_layers`` at the whole ``shape``).
        content_layers: the content cost's layers (counted for tiled steps).
        sorted_layers: the style layers of a sorted statistic (``histogram``,
            ``sliced-wasserstein``): its sort workspace (:data:`SORT_WORKSPACE` float32 values per
            value of the largest layer) and, for tiled steps, a float32 copy of every one of these
            layers for the whole ``shape`` (:class:`ndstyle.tiling.SortedStatistic`).

    Returns:
        Bytes: every activation kept for the backward pass plus a gradient buffer as large as the
        largest two, the input-sized buffers and the parameters (or the styles' no-grad forward
        pass, whichever is larger).

    """
    channels = int(getattr(extractor, "in_channels", 1))
    n_input = channels * math.prod(shape)
    sizes = activation_sizes(extractor, shape if tile is None else tile, layers)
    activation_bytes = 2 if precision == "bf16" else BYTES_PER_VALUE
    step = activation_bytes * (sum(sizes) + sum(sorted(sizes)[-2:]))
    if precision == "bf16":  # the costs take the used layers' features in float32, kept for backward
        step += BYTES_PER_VALUE * _layer_values(extractor, shape if tile is None else tile, layers or [])
    styles = max((sum(sorted(activation_sizes(extractor, s, layers))[-2:]) for s in style_shapes), default=0)
    buffers = (INPUT_BUFFERS * n_input + optimizer_values(optimizer, n_input, history_size)) * BYTES_PER_VALUE
    if tile is not None:
        targets = _layer_values(extractor, shape, content_layers)
        buffers += (TILED_INPUT_BUFFERS * n_input + targets) * BYTES_PER_VALUE
    if sorted_layers:
        per_layer = [_layer_values(extractor, shape, [layer]) for layer in sorted_layers]
        buffers += SORT_WORKSPACE * max(per_layer) * BYTES_PER_VALUE
        if tile is not None:
            buffers += sum(per_layer) * BYTES_PER_VALUE
    params = sum(p.numel() * p.element_size() for p in extractor.parameters())
    return int(max(step, activation_bytes * styles) + buffers + params)


@dataclass(frozen=True)
class MemoryPlan:
    """What :func:`plan_memory` decided for a run.

    Attributes:
        needed: estimated peak bytes of the run as planned.
        limit: the limit in bytes (``None``: unchecked).
        optimizer: ``"lbfgs"`` or ``"adam"``.
        history_size: the L-BFGS history length to use.
        tile: tile interior shape for tiled steps, or ``None`` for whole-input steps.
        note: the one line said when the plan differs from what was asked (else ``""``).

    """

    needed: int
    limit: int | None
    optimizer: str
    history_size: int = LBFGS_HISTORY
    tile: tuple[int, ...] | None = None
    note: str = ""


def plan_memory(
    extractor: nn.Module,
    shape: Sequence[int],
    layers: Sequence[str],
    *,
    limit: int | None,
    optimizer: str = "lbfgs",
    style_shapes: Sequence[Sequence[int]] = (),
    precision: str = "fp32",
    tile: Sequence[int] | None = None,
    can_tile: bool = False,
    content_layers: Sequence[str] = (),
    sorted_layers: Sequence[str] = (),
    what: str = "max_memory",
) -> MemoryPlan:
    """The one fit-or-refuse rule (never a smaller working grid).

    1. the run as asked fits ``limit`` (or there is no limit): keep it;
    2. L-BFGS: the longest history in ``[MIN_LBFGS_HISTORY, LBFGS_HISTORY)`` that fits;
    3. ``can_tile``: the largest tile (halving every axis) that fits, at the full history if
       possible, else at the shortest;
    4. refuse with an :class:`OptionError` giving the estimate and the limit.

    ``tile`` (asked explicitly) is kept and only checked. Steps 2-3 are logged in one line.
    """
    shape = tuple(int(n) for n in shape)

    def need(history: int, tile_shape: Sequence[int] | None) -> int:
        padded = None
        if tile_shape is not None:
            from .tiling import tile_with_halo

            padded = tile_with_halo(extractor, layers, shape, tile_shape)  # type: ignore[arg-type]
        return estimate_memory(
            extractor,
            shape,
            layers,
            optimizer=optimizer,
            history_size=history,
            style_shapes=style_shapes,
            precision=precision,
            tile=padded,
            content_layers=content_layers,
            sorted_layers=sorted_layers,
        )

    asked_tile = None if tile is None else tuple(int(n) for n in tile)
    needed = need(LBFGS_HISTORY, asked_tile)
    if limit is None or needed <= limit:
        return MemoryPlan(needed, limit, optimizer, LBFGS_HISTORY, asked_tile)
    if optimizer == "lbfgs":
        for history in (40, 30, 20, 10, MIN_LBFGS_HISTORY):
            n = need(history, asked_tile)
            if n <= limit:
                note = (
                    f"memory: {format_size(needed)} needed > {format_size(limit)} allowed; L-BFGS "
                    f"history shortened from {LBFGS_HISTORY} to {history} ({format_size(n)})"
                )
                return MemoryPlan(n, limit, optimizer, history, asked_tile, note)
    smallest = ""
    if can_tile and asked_tile is None:
        plan, smallest = _fit_tile(shape, limit, optimizer, need, extractor, layers)
        if plan is not None:
            return plan
    raise OptionError(
        f"this run needs about {format_size(needed)} of memory for a content of spatial shape "
        f"{shape} but {format_size(limit)} are allowed ({what}){smallest}; use a smaller size, "
        f"fewer/shallower layers, optimizer='adam'" + ("" if can_tile else " (this extractor cannot tile)")
    )


def tiled_work(
    extractor: nn.Module, layers: Sequence[str], shape: Sequence[int], tile: Sequence[int]
) -> float:
    """Positions the extractor processes per tiled pass over ``shape``, relative to one whole pass.

    Tiles of interior ``tile`` cover ``shape``; each runs with its halo
    (:func:`ndstyle.tiling.tile_with_halo`), so small tiles under a deep receptive field redo work.
    """
    from .tiling import tile_with_halo

    padded = tile_with_halo(extractor, layers, shape, tile)  # type: ignore[arg-type]
    count = math.prod(-(-int(n) // int(t)) for n, t in zip(shape, tile))
    return count * math.prod(padded) / math.prod(int(n) for n in shape)


def _fit_tile(
    shape: tuple[int, ...],
    limit: int,
    optimizer: str,
    need: object,
    extractor: nn.Module,
    layers: Sequence[str],
) -> tuple[MemoryPlan | None, str]:
    """The tile that fits with the least repeated work (halos), or ``None`` and the smallest tried.

    Candidates halve each axis independently (down to 8 positions); they are tried in order of
    :func:`tiled_work`, at the full L-BFGS history and then the shortest. A candidate whose
    padded tile is at least as large as one that did not fit is skipped without an estimate.
    """
    from .tiling import tile_with_halo

    estimate = need  # (history, tile) -> bytes
    histories = (LBFGS_HISTORY, MIN_LBFGS_HISTORY) if optimizer == "lbfgs" else (LBFGS_HISTORY,)
    whole = estimate(LBFGS_HISTORY, None)  # type: ignore[operator]
    per_axis = [sorted({max(min(n, 8), -(-n // 2**k)) for k in range(8)}, reverse=True) for n in shape]
    candidates = [t for t in itertools.product(*per_axis) if t != shape]
    padded = {t: math.prod(tile_with_halo(extractor, layers, shape, t)) for t in candidates}  # type: ignore[arg-type]
    work = {t: tiled_work(extractor, layers, shape, t) for t in candidates}
    candidates.sort(key=lambda t: (work[t], -math.prod(t)))
    too_big = math.inf
    smallest = ""
    for tile in candidates:
        if padded[tile] >= too_big:
            continue
        for history in histories:
            n = estimate(history, tile)  # type: ignore[operator]
            if n <= limit:
                note = (
                    f"memory: {format_size(whole)} needed > {format_size(limit)} allowed; tiled steps with "
                    f"tiles of {tile} (exact gradient; {work[tile]:.1f}x the positions of a whole pass), "
                    f"L-BFGS history {history}: {format_size(n)}"
                )
                return MemoryPlan(n, limit, optimizer, history, tile, note), ""
        too_big = padded[tile]
        smallest = f"; even tiles of {tile} need {format_size(n)}"
    return None, smallest
