"""The one optimisation loop for every modality: :func:`stylize`.

Gatys et al. (2015) optimise the input itself. :func:`stylize` does so for tensors shaped
``(C, *spatial)`` with 1, 2 or 3 spatial axes: targets are computed once per scale, a coarse-to-
fine pyramid runs over all spatial axes, L-BFGS (or Adam) updates the input, and the lowest-cost
iterate is returned.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch

from . import functional as NF
from ._checks import check_positive, check_stylize_arguments, look_up_option, spatial_dims_of
from .checkpoint import RunState, check_fingerprint, fingerprint, load_run_state, save_run_state
from .errors import InterruptedRun, NonFiniteCostError, OptionError, ShapeError
from .extractors import FeatureExtractor, build_extractor
from .losses import CostTerms, PerceptualLoss, calibrate_weights, check_strength
from .memory import MemoryPlan, memory_limit, parse_size, plan_memory
from .pyramid import scale_factors, scaled_shape
from .tiling import TiledCost

InitKind = Literal["content", "noise", "style"]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepRecord:
    """One optimiser step: where it ran and what each cost term was.

    Attributes:
        step: global step number (1-based, across scales).
        scale: index of the pyramid level (0 = coarsest).
        shape: spatial shape optimised at this level.
        content: :math:`J_{content}`; style: :math:`J_{style}`; tv: total variation;
        total: the weighted total :math:`J`.
        seconds: wall time since the start of the run.

    """

    step: int
    scale: int
    shape: tuple[int, ...]
    content: float
    style: float
    tv: float
    total: float
    seconds: float


@dataclass
class StyleTransferResult:
    """What :func:`stylize` returns.

    Attributes:
        output: the best iterate at full size, ``(C, *spatial)`` float32 on the CPU.
        history: one :class:`StepRecord` per step.
        best_cost: the total cost of ``output`` at the finest scale.
        extractor: one line describing the extractor used.
        scales: the spatial shape of each pyramid level.
        stopped_early: a callback asked to stop.
        device: the device the run used.
        precision: ``"fp32"`` or ``"bf16"``, the precision the extractor ran in.
        level_steps: steps each pyramid level ran (fewer than asked where ``tol`` stopped it).
        memory: the memory plan (:class:`~ndstyle.memory.MemoryPlan`) the run followed.

    """

    output: torch.Tensor
    history: list[StepRecord] = field(default_factory=list)
    best_cost: float = math.inf
    extractor: str = ""
    scales: list[tuple[int, ...]] = field(default_factory=list)
    stopped_early: bool = False
    device: str = "cpu"
    precision: str = "fp32"
    level_steps: list[int] = field(default_factory=list)
    memory: MemoryPlan | None = None


@dataclass(frozen=True)
class StepInfo:
    """Passed to a ``callback`` after every step: the record and the current best input."""

    record: StepRecord
    current: torch.Tensor
    best: torch.Tensor
    total_steps: int


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; other names are checked to work."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
        torch.zeros(1, device=resolved)
    except (RuntimeError, AssertionError) as error:
        raise OptionError(f"device {device!r} is not usable here ({error})") from error
    return resolved


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively.

    True for CUDA compute capability 8+ and for CPUs with AVX-512-BF16 or AMX-BF16; elsewhere bf16
    is emulated and slower than fp32.
    """
    try:
        if device.type == "cuda":
            return torch.cuda.get_device_capability(device)[0] >= 8 and torch.cuda.is_bf16_supported()
        if device.type == "cpu":
            capability = torch._C._cpu._get_cpu_capability()
            return bool(capability.get("avx512_bf16") or capability.get("amx_bf16"))
    except (AttributeError, RuntimeError, AssertionError):
        return False
    return False


def resolve_precision(
    precision: str, device: torch.device | None = None, extractor: FeatureExtractor | None = None
) -> str:
    """The precision a run uses: ``"fp32"`` or ``"bf16"``.

    ``"fp32"``/``"bf16"`` are taken as given; ``"auto"`` gives ``"bf16"`` where the ``device``
    computes it natively (:func:`native_bf16`) and the ``extractor``'s
    :attr:`~ndstyle.extractors.FeatureExtractor.default_precision` is bf16, else ``"fp32"``.
    """
    look_up_option("precision", precision, ("auto", "fp32", "bf16"))
    if precision != "auto":
        return precision
    wanted = getattr(extractor, "default_precision", "fp32")
    return "bf16" if wanted == "bf16" and device is not None and native_bf16(device) else "fp32"


def _as_batched(x: torch.Tensor, name: str, spatial_dims: int | None = None) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise OptionError(f"{name} must be a torch.Tensor shaped (C, *spatial), got {type(x).__name__}")
    if spatial_dims is not None and x.ndim != spatial_dims + 1:
        raise ShapeError(
            f"{name} must be shaped (C, *spatial) with {spatial_dims} spatial axes like the "
            f"content, got shape {tuple(x.shape)}"
        )
    spatial_dims_of(x, name, batched=False)
    x = x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ShapeError(f"{name} must hold one item (batch size 1), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise OptionError(f"{name} contains NaN or infinite values")
    if x.numel() == 0:
        raise ShapeError(f"{name} is empty (shape {tuple(x.shape)})")
    return x.float().contiguous()  # L-BFGS flattens with view(): strided inputs must be copied


def stylize(
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    *,
    extractor: FeatureExtractor | str | None = None,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | Mapping[str, float] | None = None,
    content_weight: float = 1.0,
    style_weight: float | None = None,
    tv_weight: float = 0.0,
    style_blend: Sequence[float] | None = None,
    mask: torch.Tensor | None = None,
    style_masks: Sequence[torch.Tensor | None] | None = None,
    init: InitKind | torch.Tensor = "content",
    optimizer: Literal["lbfgs", "adam"] = "lbfgs",
    lr: float | None = None,
    steps: int | Sequence[int] = 300,
    coarse_steps: int | None = None,
    scales: str | int | Sequence[float] = "auto",
    seed: int = 0,
    device: str | torch.device = "auto",
    precision: Literal["auto", "fp32", "bf16"] = "auto",
    value_range: tuple[float, float] | None | Literal["auto"] = "auto",
    callback: Callable[[StepInfo], bool | None] | None = None,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 0,
    resume: bool = False,
    max_memory: int | str | None = "auto",
    style_loss: str = "gram",
    strength: float | None = None,
    tol: float | None = None,
    tile: int | Sequence[int] | None = None,
    mask_interior: bool = False,
    margin: int = 0,
) -> StyleTransferResult:
    r"""Neural style transfer (Gatys et al. 2015) on 1-D, 2-D or 3-D inputs.

    Minimises :math:`J(G) = \alpha J_{content}(C, G) + \beta J_{style}(S, G) + \gamma TV(G)`
    over the values of :math:`G` itself (see ``docs/theory.md``).

    Args:
        content: the content input ``(C, *spatial)`` with 1, 2 or 3 spatial axes.
        style: one style input or a list; each ``(C, *spatial_s)`` with the content's channels and
            number of spatial axes, any size (style statistics are size independent).
        extractor: a :class:`~ndstyle.extractors.FeatureExtractor`, a registered name or a weights
            file; ``None``: for 3-channel 2-D inputs the pretrained ``"auto"`` VGG when its weights
            are present (as ``ndstyle run`` uses for images), else a seeded random ConvNd for the
            content's dims and channels (logged in one line).
        content_layers: layers of the content cost (default: the extractor's).
        style_layers: layers of the style cost, a list (equal :math:`\lambda_l`) or
            ``{layer: lambda_l}`` (default: the extractor's).
        content_weight: :math:`\alpha` (0 synthesises texture only).
        style_weight: :math:`\beta`; given, it overrides ``strength``; default ``None``: set
            at each pyramid level from ``strength`` (:func:`ndstyle.losses.calibrate_weights`).
        tv_weight: :math:`\gamma`, total variation over every spatial axis.
        style_blend: one weight per style (default: equal).
        mask: optional ``(*spatial)`` or ``(1, *spatial)`` weights in [0, 1] on the content's grid:
            style applies where it is 1; where it is 0 the result equals the content exactly.
        style_masks: optional weights in [0, 1] per style, ``(*spatial_s)`` on that style's grid:
            its statistics are taken there only (like is compared with like).
        init: ``"content"``, ``"noise"`` (Gaussian with the content's per-channel mean and std),
            ``"style"`` (the first style resized) or a tensor shaped like the content.
        optimizer: ``"lbfgs"`` (default) or ``"adam"``.
        lr: step size; default 1 for L-BFGS, 2 % of the value range (or content std) for Adam.
        steps: optimiser steps at the full-size level (an int), or one count per level.
        coarse_steps: steps at each coarser level when ``steps`` is an int; default
            ``steps // 4`` (at least 1).
        scales: ``"auto"``, a number of levels, or factors in (0, 1] (see
            :func:`ndstyle.pyramid.scale_factors`); ``1`` disables coarse-to-fine.
        seed: seeds the random extractor and noise init; same seed + device -> same result.
        device: ``"auto"`` (cuda, mps, cpu) or a torch device.
        precision: ``"bf16"`` autocasts the extractor (Grams and sums stay fp32); ``"auto"``
            uses bf16 where it is native and checked for the extractor (:func:`resolve_precision`).
        value_range: clamp the input to ``(low, high)`` after each step; ``"auto"`` uses the
            extractor's ``value_range``; ``None`` never clamps.
        callback: called after every step with a :class:`StepInfo`; returning ``True`` stops.
        progress: show a progress bar (tqdm) with step, cost terms and ETA.
        checkpoint: file (``.safetensors``) that ``checkpoint_every`` writes and ``resume`` reads.
        checkpoint_every: save the full optimiser state every N steps (0: never).
        resume: continue from ``checkpoint``; with the same inputs, options, device and thread
            count the result is bit-identical to an uninterrupted run.
        max_memory: the memory limit of :func:`ndstyle.memory.plan_memory` in bytes (or ``"8G"``...);
            ``"auto"``: the device's memory; ``None``: no check. A run over the limit gets a
            shorter L-BFGS history (said in one logged line) or is refused before allocating.
        mask_interior: with ``mask`` or ``style_masks``, take each style layer's statistics only at
            positions whose receptive field lies inside the mask, so no feature that straddles a
            mask's edge (and sees the untouched or filled voxels beyond it) is matched; see
            :class:`~ndstyle.losses.PerceptualLoss` and docs/volumes.md.
        style_loss: the style statistic: ``"gram"`` (the seeds'), ``"mean-cov"``,
            ``"sliced-wasserstein"`` (random directions seeded by ``seed``) or ``"histogram"``
            (see :data:`ndstyle.losses.STYLE_LOSSES` and ``docs/style-losses.md``).
        strength: in [0, 1], used when ``style_weight`` is ``None``: 0 keeps the content, 1
            synthesises texture; default: the extractor's ``default_strength``
            (:data:`ndstyle.losses.DEFAULT_STRENGTH` for VGG and the random ConvNds; ``None``, i.e.
            its measured ``default_style_weight``, for the ECG and spectral front ends). The
            weights are set from the two costs' gradient magnitudes at the start of each level.
        tol: stop a level once the best cost fell by less than ``tol`` (relative) over the last
            :data:`TOL_WINDOW` steps; ``0`` runs every step; ``None``: the extractor's
            ``default_tol`` (``1e-3`` for VGG, which kept the final J within 0.6 % of running every
            step on the benchmark pairs at 128-512 px, docs/benchmarks.md; ``0`` for the other
            extractors). ``result.level_steps`` says where each level stopped.
        tile: run every step in tiles of this interior size (one int for every axis, or one per
            axis; rounded up to the extractor's total stride) with the exact two-pass gradient of
            :mod:`ndstyle.tiling`; ``None``: only when the whole input does not fit ``max_memory``
            (and the extractor can tile). Needs the Gram style statistic.
        margin: optimise the content mirrored by this many positions on every side of every
            spatial axis (mask and ``init`` too) and cut the margin off the result, so that the
            extractor's border handling (a convolution's padding sees a frame around every input)
            marks the margin, not the result's edge (rocket + gravel at 128 px: the image judge's
            ``border_frame`` 0.52 -> 0.07 with 4). The result is then optimal for the padded
            canvas, not for itself: evaluated alone its costs are higher (docs/style-losses.md), so
            the default is 0. The history's shapes and ``result.scales`` include the margin.

    Returns:
        A :class:`StyleTransferResult` holding the lowest-cost iterate and the history.

    Raises:
        ShapeError: inputs of wrong or mismatching shapes.
        OptionError: invalid options (negative weights, zero steps, unknown names...), a run
            estimated to need more than ``max_memory``, or a checkpoint made for another run.
        NonFiniteCostError: the cost became NaN or infinite (the run stops; nothing is returned).
        InterruptedRun: Ctrl-C; its ``result`` holds the best iterate so far.

    """
    arguments = dict(locals())
    problem = _Problem.build(arguments)
    tol = float(getattr(problem.net, "default_tol", 0.0)) if tol is None else tol
    run = _Run(problem, callback=callback, progress=progress, tol=tol)
    if checkpoint is not None:
        run.checkpointer = _Checkpointer(Path(checkpoint), checkpoint_every, problem.fingerprint(arguments))
    saved = run.checkpointer.restore(problem) if resume and run.checkpointer is not None else None
    return run.execute(saved)


#: Steps over which ``tol`` measures the relative decrease of the best cost.
TOL_WINDOW = 10
#: Arguments of :func:`stylize` that do not change its result (left out of the fingerprint).
_NOT_FINGERPRINTED = ("callback", "progress", "checkpoint", "checkpoint_every", "resume", "max_memory")


@dataclass
class _Problem:
    """One :func:`stylize` call, checked and resolved: inputs, extractor, loss and schedule.

    Tensors are batched ``(1, C, *spatial)`` on the CPU; ``init`` is the full-size start.
    """

    content: torch.Tensor
    styles: list[torch.Tensor]
    mask: torch.Tensor | None
    style_masks: list[torch.Tensor | None]
    init: torch.Tensor
    generator: torch.Generator
    net: FeatureExtractor
    loss: PerceptualLoss
    style_blend: Sequence[float] | None
    optimizer: str
    lr: float | None
    bounds: tuple[float, float] | None
    factors: list[float]
    per_level: list[int]
    min_size: int
    device: torch.device
    precision: str
    memory: MemoryPlan
    strength: float | None  # the calibrated strength, None when style_weight is given
    content_weight: float
    seed: int
    margin: int  # mirrored positions around the content on every side, cut off the result

    @property
    def full_shape(self) -> tuple[int, ...]:
        """The optimised grid at full size (the content's, plus the margin on every side)."""
        return tuple(self.content.shape[2:])

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(1, C, *level_shape)`` without the margin (scaled to the level's grid)."""
        if not self.margin:
            return x
        index: list[slice] = [slice(None), slice(None)]
        for n, full in zip(x.shape[2:], self.full_shape, strict=True):
            cut = round(self.margin * n / full)
            index.append(slice(cut, n - cut))
        return x[tuple(index)]

    @classmethod
    def build(cls, a: dict[str, Any]) -> _Problem:
        """Check every argument of :func:`stylize` (``a``: its bound arguments) and resolve them."""
        check_stylize_arguments(
            a["content"], a["style"], steps=a["steps"], coarse_steps=a["coarse_steps"],
            value_range=a["value_range"], mask=a["mask"], init=a["init"],
        )  # fmt: skip
        content_b, styles_b = _check_inputs(a["content"], a["style"])
        _check_options(a)
        dev = resolve_device(a["device"])
        look_up_option("precision", a["precision"], ("auto", "fp32", "bf16"))
        net = _resolve_extractor(a["extractor"], content_b, a["seed"]).to(dev)
        strength = _strength(a["style_weight"], a["strength"], net)
        precision_used = resolve_precision(a["precision"], dev, net)
        loss = _build_loss(a, net, precision_used)
        value_range = a["value_range"]
        bounds = net.value_range if isinstance(value_range, str) and value_range == "auto" else value_range
        if isinstance(value_range, str) and value_range != "auto":
            raise OptionError(f"value_range must be 'auto', None or (low, high), got {value_range!r}")
        content_shape = tuple(content_b.shape[2:])
        min_size = net.min_input_size(loss.layers)
        if min(content_shape) < min_size:
            raise ShapeError(
                f"content of spatial shape {content_shape} is too small for layers {loss.layers}: each "
                f"axis needs at least {min_size} positions"
            )
        margin = _margin(a["margin"], content_shape)
        full_shape = tuple(n + 2 * margin for n in content_shape)  # the optimised grid
        factors, per_level = _schedule(a["steps"], a["coarse_steps"], a["scales"], full_shape, min_size)
        mask_b = _prepare_mask(a["mask"], content_shape)
        style_masks_b = _prepare_style_masks(a["style_masks"], styles_b)
        memory = _plan(a, net, loss, full_shape, styles_b, precision_used, dev)  # before allocating
        generator = torch.Generator().manual_seed(a["seed"])
        start = _initial(a["init"], content_b, styles_b[0], generator)
        content_b, start = mirror_pad(content_b, margin), mirror_pad(start, margin)
        mask_b = None if mask_b is None else mirror_pad(mask_b, margin)
        return cls(
            content_b, styles_b, mask_b, style_masks_b, start, generator, net, loss, a["style_blend"],
            a["optimizer"], a["lr"], bounds, factors, per_level, min_size, dev, precision_used, memory,
            strength, a["content_weight"], a["seed"], margin,
        )  # fmt: skip

    def fingerprint(self, arguments: Mapping[str, Any]) -> dict[str, str]:
        """What a checkpoint must agree with: every result-changing argument, tensors hashed.

        Built from the bound arguments themselves, so a new keyword of :func:`stylize` is part of
        it unless it is listed in ``_NOT_FINGERPRINTED``. Resolved values (extractor, weights,
        precision, schedule, bounds, device type, history length) are added, since ``"auto"``
        may resolve differently elsewhere.
        """
        options = {
            k: _tensor_marker(v)
            for k, v in arguments.items()
            if k not in (*_NOT_FINGERPRINTED, "content", "style", "mask", "extractor")
        }
        options["resolved"] = {
            "style_weight": self.loss.style_weight,
            "precision": self.precision,
            "steps": self.per_level,
            "factors": self.factors,
            "bounds": list(self.bounds) if self.bounds is not None else None,
            "device": self.device.type,
            "history_size": self.memory.history_size,
            "tile": list(self.memory.tile) if self.memory.tile is not None else None,
            "strength": self.strength,
        }
        init = arguments["init"]
        return fingerprint(
            {"options": options, "extractor": self.net.describe()},
            {
                "content": [self.content],
                "styles": self.styles,
                "mask": [self.mask, *(m for m in self.style_masks if m is not None)],
                "init": [init if isinstance(init, torch.Tensor) else None],
                "extractor weights": list(self.net.state_dict().values()),
            },
        )


def _check_inputs(
    content: torch.Tensor, style: torch.Tensor | Sequence[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Batched ``(1, C, *spatial)`` content and styles, with matching dims and channels."""
    content_b = _as_batched(content, "content")
    spatial_dims = content_b.ndim - 2
    styles = [style] if isinstance(style, torch.Tensor) else list(style)
    if not styles:
        raise OptionError("at least one style input is needed")
    styles_b = [_as_batched(s, f"style {i + 1}", spatial_dims) for i, s in enumerate(styles)]
    for i, s in enumerate(styles_b):
        if s.ndim != content_b.ndim:
            raise ShapeError(
                f"style {i + 1} has {s.ndim - 2} spatial axes but the content has {spatial_dims} "
                f"(style shape {tuple(s.shape[1:])}, content shape {tuple(content_b.shape[1:])})"
            )
        if s.shape[1] != content_b.shape[1]:
            raise ShapeError(
                f"style {i + 1} has {s.shape[1]} channel(s) but the content has {content_b.shape[1]}"
            )
    return content_b, styles_b


def _check_options(a: Mapping[str, Any]) -> None:
    """Raise :class:`OptionError` for invalid scalar options (one line naming the option)."""
    for name in ("content_weight", "style_weight", "tv_weight"):
        check_positive(name, a[name] or 0)
    steps = a["steps"]
    per_level = [steps] if isinstance(steps, int) else list(steps)
    if not per_level or any(int(s) < 1 for s in per_level):
        raise OptionError(f"steps must be >= 1 per level, got {steps!r}")
    if a["coarse_steps"] is not None and int(a["coarse_steps"]) < 1:
        raise OptionError(f"coarse_steps must be >= 1, got {a['coarse_steps']!r}")
    look_up_option("optimizer", a["optimizer"], ("lbfgs", "adam"))
    if a["lr"] is not None:
        check_positive("lr", a["lr"], allow_zero=False)
    for w in a["style_blend"] or ():
        check_positive("style_blend weight", w)
    every = a["checkpoint_every"]
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise OptionError(f"checkpoint_every must be an integer >= 0, got {every!r}")
    if (every or a["resume"]) and a["checkpoint"] is None:
        raise OptionError("checkpoint_every and resume need checkpoint=<path of the checkpoint file>")
    tol = a["tol"]
    if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float)) or not 0 <= tol < 1):
        raise OptionError(f"tol must be a number in [0, 1) (0 runs every step), got {tol!r}")
    parse_size(None if a["max_memory"] == "auto" else a["max_memory"])
    margin = a["margin"]
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise OptionError(f"margin must be an integer >= 0 (positions on every side), got {margin!r}")


def _strength(style_weight: float | None, strength: float | None, net: FeatureExtractor) -> float | None:
    """The strength the weights are calibrated from, or ``None`` for a fixed style weight.

    ``style_weight`` given: that weight. Neither given: the extractor's ``default_strength``
    (``None`` for extractors whose ``default_style_weight`` was measured on their field's data).
    """
    if style_weight is not None:
        if strength is not None:
            check_strength(strength)
            warnings.warn("strength is ignored because style_weight is given", stacklevel=4)
        return None
    if strength is None:
        strength = net.default_strength
    return None if strength is None else check_strength(strength)


def _margin(margin: int, shape: tuple[int, ...]) -> int:
    """``margin``, checked against the content's spatial ``shape`` (mirroring needs ``margin < n``)."""
    if margin >= min(shape):
        raise OptionError(f"margin {margin} must be smaller than the content's shortest axis ({min(shape)})")
    return int(margin)


def mirror_pad(x: torch.Tensor, margin: int) -> torch.Tensor:
    """``x`` ``(1, C, *spatial)`` mirrored by ``margin`` positions on every side of every axis.

    The edge position is not repeated (``torch.nn.functional.pad``'s ``"reflect"``), so the margin
    continues the picture's shapes and textures across the border.
    """
    if not margin:
        return x
    return torch.nn.functional.pad(x, [margin] * 2 * (x.ndim - 2), mode="reflect")


def _tensor_marker(value: Any) -> Any:
    """Tensors (also inside lists) as ``"tensor"`` in a fingerprint; their values are hashed apart."""
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return [_tensor_marker(v) for v in value]
    return value


def _prepare_style_masks(
    masks: Sequence[torch.Tensor | None] | None, styles: list[torch.Tensor]
) -> list[torch.Tensor | None]:
    """Each style's mask batched on that style's grid (``None`` where a style has none)."""
    if masks is not None and len(masks) != len(styles):
        raise OptionError(f"{len(masks)} style masks given for {len(styles)} styles")
    return [
        None if m is None else _prepare_mask(m, tuple(s.shape[2:]))
        for m, s in zip(masks or [None] * len(styles), styles, strict=True)
    ]


def _resolve_extractor(
    spec: FeatureExtractor | str | None, content: torch.Tensor, seed: int
) -> FeatureExtractor:
    """The extractor of a run; ``None`` picks as ``ndstyle run`` does for images, else random."""
    spatial_dims, channels = content.ndim - 2, int(content.shape[1])
    if spec is None and spatial_dims == 2 and channels == 3:
        if _pretrained_vgg_present():
            return build_extractor("auto", spatial_dims=2, in_channels=3)
        log.info(
            "stylize: no pretrained VGG found, so extractor=None uses a seeded random ConvNd; pass "
            "extractor='auto' (after `ndstyle weights`) or another extractor to change it"
        )
    # build_extractor checks a given extractor against the input; the seed only applies to new ones
    seed_option = {} if isinstance(spec, FeatureExtractor) else {"seed": seed}
    return build_extractor(spec, spatial_dims=spatial_dims, in_channels=channels, **seed_option)


def _pretrained_vgg_present() -> bool:
    """Whether ``build_extractor("auto", ...)`` finds weights without downloading."""
    try:
        from .extractors import vgg
    except ImportError:
        return False
    candidates = [p for v in ("vgg19", "vgg16") for p in vgg.torchvision_candidates(v)]
    return (
        any(p.is_file() for p in candidates)
        or vgg.offline_weights_path(convert=False)[0] is not None
        or (vgg.find_offline_onnx() is not None)
    )


def _build_loss(a: Mapping[str, Any], net: FeatureExtractor, precision: str) -> PerceptualLoss:
    """The :class:`PerceptualLoss` of the run (layers and weights default to the extractor's)."""
    c_layers = list(net.default_content_layers if a["content_layers"] is None else a["content_layers"])
    s_layers = net.default_style_layers if a["style_layers"] is None else a["style_layers"]
    return PerceptualLoss(
        net,
        content_layers=c_layers if a["content_weight"] > 0 else [],
        style_layers=s_layers,
        content_weight=a["content_weight"],
        style_weight=net.default_style_weight if a["style_weight"] is None else a["style_weight"],
        tv_weight=a["tv_weight"],
        autocast_dtype=torch.bfloat16 if precision == "bf16" else None,
        style_loss=a["style_loss"],
        seed=a["seed"],
        mask_interior=a["mask_interior"],
    )


def _schedule(
    steps: int | Sequence[int],
    coarse_steps: int | None,
    scales: str | int | Sequence[float],
    full_shape: tuple[int, ...],
    min_size: int,
) -> tuple[list[float], list[int]]:
    """Pyramid factors and the steps of each level."""
    factors = scale_factors(scales, full_shape, min_size)
    per_level = [steps] if isinstance(steps, int) else list(steps)
    if isinstance(steps, int):
        coarse = max(1, steps // 4) if coarse_steps is None else int(coarse_steps)
        per_level = [coarse] * (len(factors) - 1) + [steps]
    elif len(per_level) == 1:
        per_level = per_level * len(factors)
    if len(per_level) != len(factors):
        raise OptionError(f"steps gives {len(per_level)} values for {len(factors)} pyramid levels")
    return factors, [int(s) for s in per_level]


def _plan(
    a: Mapping[str, Any],
    net: FeatureExtractor,
    loss: PerceptualLoss,
    shape: tuple[int, ...],
    styles: Sequence[torch.Tensor],
    precision: str,
    device: torch.device,
) -> MemoryPlan:
    """The memory plan of the finest level (:func:`ndstyle.memory.plan_memory`), logged if changed."""
    from . import tiling

    max_memory, tile = a["max_memory"], a["tile"]
    if tile is not None:
        tile = (int(tile),) * len(shape) if isinstance(tile, int) else tuple(int(t) for t in tile)
        tiling.geometry(net, loss.layers)  # refuses extractors that cannot tile
        tiling.statistic_of(loss)
    plan = plan_memory(
        net,
        shape,
        loss.layers,
        limit=memory_limit(max_memory, device),
        optimizer=a["optimizer"],
        style_shapes=[s.shape[2:] for s in styles],
        precision=precision,
        tile=tile,
        can_tile=tiling.can_tile(net) and tiling.can_tile_statistic(loss),
        content_layers=loss.content_layers,
        sorted_layers=list(loss.style_layer_weights)
        if tiling.statistic_name(loss) in tiling.SORTED_STATISTICS
        else (),
        what="max_memory" if max_memory != "auto" else f"available on {device}",
    )
    if plan.note:
        log.warning(plan.note)
    return plan


@dataclass
class Level:
    """One pyramid level: its index, shape, targets' inputs and how many steps it may take."""

    index: int
    shape: tuple[int, ...]
    content: torch.Tensor
    mask: torch.Tensor | None
    steps: int

    def composite(self, values: torch.Tensor) -> torch.Tensor:
        """The input as the cost sees it: ``values`` inside the mask, the content outside."""
        if self.mask is None:
            return values
        return self.mask * values + (1 - self.mask) * self.content


@dataclass
class _Checkpointer:
    """Writes and reads the run's checkpoint (:mod:`ndstyle.checkpoint`)."""

    path: Path
    every: int
    fingerprint: dict[str, str]

    def restore(self, problem: _Problem) -> RunState:
        """The saved state, after checking it belongs to this run; restores the generator."""
        saved = load_run_state(self.path, problem.device)
        check_fingerprint(self.path, saved.fingerprint, self.fingerprint)
        if saved.generator_state is not None:
            problem.generator.set_state(saved.generator_state)
        return saved

    def due(self, step: int) -> bool:
        return self.every > 0 and step % self.every == 0

    def save(self, run: _Run, level: int, state: _LevelState) -> None:
        save_run_state(
            self.path,
            RunState(
                fingerprint=self.fingerprint,
                level=level,
                level_steps_done=state.done,
                step=run.step,
                best_cost=state.best_cost,
                x=state.x,
                best=state.best,
                optimizer_state=dict(state.opt.state[state.x]),
                history=[_fields(r) for r in run.history],
                generator_state=run.problem.generator.get_state(),
                statistic_state=run.problem.loss.statistic.random_state(),
            ),
        )


@dataclass
class _LevelState:
    """The optimiser at one level: iterate, optimiser, best iterate and cost, steps done."""

    x: torch.Tensor
    opt: torch.optim.Optimizer
    best: torch.Tensor
    best_cost: float = math.inf
    done: int = 0
    last: CostTerms | None = None
    tiled: TiledCost | None = None
    #: what the optimiser minimises is ``scale`` x J (see :meth:`_Run._objective_scale`)
    scale: float = 1.0


class _Run:
    """The loop of one :func:`stylize` call over the pyramid levels of a :class:`_Problem`."""

    def __init__(
        self,
        problem: _Problem,
        *,
        callback: Callable[[StepInfo], bool | None] | None,
        progress: bool,
        tol: float,
    ) -> None:
        self.problem = problem
        self.callback = callback
        self.progress = progress
        self.tol = float(tol)
        self.checkpointer: _Checkpointer | None = None
        self.history: list[StepRecord] = []
        self.total_steps = sum(problem.per_level)
        self.step = 0
        self.start = 0.0
        self.bar: Any = None
        self.best_so_far = problem.init  # read if the run is interrupted
        self.tiled: TiledCost | None = None  # the current level's tiled cost, when it is tiled

    def execute(self, saved: RunState | None) -> StyleTransferResult:
        """Run every level (from ``saved`` on, if given) and return the result at full size."""
        p = self.problem
        result = StyleTransferResult(
            output=p.crop(p.content)[0].clone(),
            extractor=p.net.describe(),
            device=str(p.device),
            precision=p.precision,
        )
        result.history = self.history
        result.memory = p.memory
        self.bar = _progress_bar(self.total_steps, self.progress)
        self.start = time.perf_counter()
        if saved is not None:
            self.history.extend(StepRecord(r[0], r[1], tuple(r[2]), *r[3:]) for r in saved.history)  # type: ignore[arg-type]
            self.step = saved.step
            self.bar.update(saved.step)
        current = p.init.to(p.device)
        try:
            current = self._levels(current, saved, result)
        except KeyboardInterrupt as interrupt:
            result.output = _restore_layout(p.crop(NF.resize(self.best_so_far, p.full_shape)), p.content)
            error = InterruptedRun(f"interrupted after {len(self.history)} of {self.total_steps} steps")
            error.result = result  # type: ignore[attr-defined]
            raise error from interrupt
        finally:
            self.bar.close()
        final = NF.resize(current, p.full_shape)
        if p.mask is not None:
            mask_full = p.mask.to(p.device)
            final = mask_full * final + (1 - mask_full) * p.content.to(p.device)
        result.output = _restore_layout(p.crop(final), p.content)
        result.level_steps = [sum(1 for r in self.history if r.scale == i) for i in range(len(result.scales))]
        return result

    def _levels(
        self, current: torch.Tensor, saved: RunState | None, result: StyleTransferResult
    ) -> torch.Tensor:
        p = self.problem
        content_full = p.content.to(p.device)
        mask_full = p.mask.to(p.device) if p.mask is not None else None
        for index, (factor, steps) in enumerate(zip(p.factors, p.per_level, strict=True)):
            shape = scaled_shape(p.full_shape, factor, p.min_size)
            result.scales.append(shape)
            if saved is not None and index < saved.level:
                continue
            level = Level(
                index,
                shape,
                NF.resize(content_full, shape),
                NF.resize(mask_full, shape) if mask_full is not None else None,
                steps,
            )
            self._set_targets(level, factor)
            restart = saved if saved is not None and index == saved.level else None
            x = NF.resize(current, shape).detach().clone().requires_grad_(True)
            if restart is not None:
                x = restart.x.detach().clone().requires_grad_(True)
            current, result.best_cost, stopped = self._optimise(level, x, restart)
            if stopped:
                result.stopped_early = True
                break
        return current

    def _set_targets(self, level: Level, factor: float) -> None:
        p = self.problem
        tile = p.memory.tile
        self.tiled = None
        if tile is None or all(n <= t for n, t in zip(level.shape, tile, strict=True)):
            p.loss.set_content(level.content)  # a tiled level keeps its content targets per tile
        styles = [NF.resize(s.to(p.device), scaled_shape(s.shape[2:], factor, p.min_size)) for s in p.styles]
        masks = [
            None if m is None else NF.resize_mask(m.to(p.device), s.shape[2:])
            for m, s in zip(p.style_masks, styles, strict=True)
        ]
        p.loss.set_styles(styles, p.style_blend, masks)
        p.loss.set_mask(level.mask)
        if tile is not None and any(n > t for n, t in zip(level.shape, tile, strict=True)):
            self.tiled = TiledCost(p.loss, level.content, tile)
        if p.strength is not None:
            found = calibrate_weights(
                p.loss,
                level.content,
                p.strength,
                content_weight=p.content_weight,
                seed=p.seed,
                measure=None if self.tiled is None else self.tiled.measure,
            )
            log.info("level %d: %s", level.index, found)

    def _new_state(self, level: Level, x: torch.Tensor, restart: RunState | None) -> _LevelState:
        p = self.problem
        if p.optimizer == "lbfgs":
            opt: torch.optim.Optimizer = torch.optim.LBFGS(
                [x], lr=p.lr or 1.0, max_iter=1, history_size=p.memory.history_size
            )
        else:
            spread = (p.bounds[1] - p.bounds[0]) if p.bounds else float(level.content.std()) or 1.0
            opt = torch.optim.Adam([x], lr=p.lr or 0.02 * spread)
        state = _LevelState(x, opt, x.detach().clone())
        state.tiled = self.tiled
        if p.optimizer == "lbfgs":
            state.scale = self._objective_scale(level, state)
        if restart is not None:
            opt.state[x] = restart.optimizer_state
            state.best = restart.best.detach().clone()
            state.best_cost = restart.best_cost
            state.done = restart.level_steps_done
            p.loss.statistic.set_random_state(restart.statistic_state)  # after the level's calibration
            self.best_so_far = level.composite(state.best).detach()
        return state

    def _objective_scale(self, level: Level, state: _LevelState) -> float:
        """The factor L-BFGS's objective is multiplied by: ``1 / J(content)`` when that is below 1.

        torch's L-BFGS has absolute thresholds (it keeps a curvature pair only if ``y.s > 1e-10``
        and steps only along directions with ``g.d < -1e-9``) that assume an objective of order 1
        or more. Costs that are means over millions of positions (a 128^3 volume with the volume
        recipe's fixed weights: J about 1e-3, gradients about 1e-7 per voxel) fall below them:
        every curvature pair is dropped and the run creeps along ``-g`` with step 1, i.e. stalls.
        Lifting such an objective to 1 at the level's content keeps every threshold meaningful;
        an objective already of order 1 or more (images) is left as it is, so is the cost every
        record, tolerance and best iterate uses. It depends only on the level's inputs, so a
        resumed run uses the same factor.
        """
        with self.problem.loss.statistic.drawn_from(self.problem.seed), torch.no_grad():
            reference = float(self._cost(level, state, level.content, backward=False).total)
        if not math.isfinite(reference) or reference <= 0.0 or reference >= 1.0:
            return 1.0
        return 1.0 / reference

    def _optimise(
        self, level: Level, x: torch.Tensor, restart: RunState | None
    ) -> tuple[torch.Tensor, float, bool]:
        """Run the level's steps; return its best composite iterate, its cost, and whether to stop."""
        state = self._new_state(level, x, restart)
        stopped = False
        crop = self.problem.crop
        limit_steps = self.problem.optimizer == "lbfgs"
        bounds = self.problem.bounds
        span = (
            (bounds[1] - bounds[0])
            if bounds is not None
            else float(level.content.max() - level.content.min())
        )
        while state.done < level.steps:
            before = x.detach().clone() if limit_steps else None
            state.opt.step(partial(self._closure, level, state))  # type: ignore[arg-type]
            self._project(state, before, span)
            record = self._record(level, state)
            if self.callback is not None and self.callback(
                StepInfo(record, crop(x.detach()), crop(level.composite(state.best)), self.total_steps)
            ):
                stopped = True
                break
            if self._converged(level):
                break
        with torch.no_grad():  # the last update has not been evaluated yet
            final_cost = float(self._cost(level, state, x, backward=False).total)
        if math.isfinite(final_cost) and final_cost < state.best_cost:
            state.best, state.best_cost = x.detach().clone(), final_cost
        return level.composite(state.best).detach(), state.best_cost, stopped

    def _cost(self, level: Level, state: _LevelState, x: torch.Tensor, *, backward: bool) -> CostTerms:
        """The cost of ``x`` (and its gradient into ``x.grad`` if ``backward``), whole or tiled."""
        if state.tiled is None:
            terms = self.problem.loss(level.composite(x))
            if backward and torch.isfinite(terms.total):
                terms.total.backward()
            return terms
        if backward:
            return state.tiled.backward(level.composite(x))
        return state.tiled.value(level.composite(x))[0]

    def _closure(self, level: Level, state: _LevelState) -> torch.Tensor:
        state.opt.zero_grad(set_to_none=True)
        terms = self._cost(level, state, state.x, backward=True)
        total = terms.total
        if state.scale != 1.0 and state.x.grad is not None:
            state.x.grad.mul_(state.scale)
        if not torch.isfinite(total):
            raise NonFiniteCostError(
                f"the cost became {float(total.detach())} at step {self.step + 1} "
                f"(content {float(terms.content.detach()):.4g}, style "
                f"{float(terms.style.detach()):.4g}); lower the "
                f"learning rate or the style weight, or use precision='fp32'"
            )
        value = float(total.detach())
        if value < state.best_cost:
            state.best_cost = value
            state.best = state.x.detach().clone()
            self.best_so_far = level.composite(state.best)
        state.last = terms
        return total * state.scale if state.scale != 1.0 else total

    def _project(self, state: _LevelState, before: torch.Tensor | None, span: float) -> None:
        """Limit an L-BFGS step (``before`` given), then clamp the iterate to the value bounds.

        No value may move by more than :data:`MAX_STEP_FRACTION` of ``span`` in one step (the
        bounds' span, else the level content's): without a line search, an L-BFGS step from a poor
        early curvature pair can overshoot by orders of magnitude. Clamped at the bounds, the run
        may then never come back below its start (volume recipe, MNI152 -> Colin27 at 77 voxels:
        2 of 3 weights returned the start); unbounded, J jumps x1e3-1e6 and the run creeps (a
        trained ECG backbone: 3817 -> 3795 in 60 steps). A limited or clamped step is told to
        L-BFGS as the step it took (docs/theory.md).
        """
        bounds = self.problem.bounds
        moved = bounds is not None
        with torch.no_grad():
            if before is not None and span > 0:
                delta = state.x - before
                largest = float(delta.abs().max())
                cap = MAX_STEP_FRACTION * span
                if largest > cap:
                    state.x.copy_(before + delta * (cap / largest))
                    moved = True
            if bounds is not None:
                state.x.clamp_(*bounds)
        if before is not None and moved:
            _secant_from_projected_step(state.opt, state.x, before)

    def _record(self, level: Level, state: _LevelState) -> StepRecord:
        """Log the step (history, checkpoint, progress bar) and return its record."""
        self.step += 1
        assert state.last is not None
        values = state.last.as_floats()
        record = StepRecord(
            step=self.step,
            scale=level.index,
            shape=level.shape,
            content=values["content"],
            style=values["style"],
            tv=values["tv"],
            total=values["total"],
            seconds=time.perf_counter() - self.start,
        )
        self.history.append(record)
        state.done += 1
        if self.checkpointer is not None and self.checkpointer.due(self.step):
            self.checkpointer.save(self, level.index, state)
        self.bar.update(1)
        self.bar.set_postfix_str(
            f"scale {level.index} J={values['total']:.4g} content={values['content']:.3g} "
            f"style={values['style']:.3g}",
            refresh=False,
        )
        return record

    def _converged(self, level: Level) -> bool:
        """Whether the best cost fell by less than ``tol`` (relative) over the last window."""
        if self.tol <= 0:
            return False
        totals = [r.total for r in self.history if r.scale == level.index]
        if len(totals) <= TOL_WINDOW:
            return False
        best_now = min(totals)
        best_then = min(totals[:-TOL_WINDOW])
        return best_then - best_now <= self.tol * abs(best_then)


#: The largest change of any value in one L-BFGS step, as a fraction of the value bounds' span
#: (of the level content's span when there are no bounds).
MAX_STEP_FRACTION = 0.25


def _secant_from_projected_step(opt: torch.optim.Optimizer, x: torch.Tensor, before: torch.Tensor) -> None:
    """Tell L-BFGS the step it actually took once the iterate was clamped.

    torch's L-BFGS forms its next curvature pair from the step it proposed (``s = t d``); after
    clamping, the iterate moved by ``x - before`` instead, and pairing that gradient change with the
    unclamped step corrupts the inverse-Hessian model (the textbook loop then oscillates: J
    rises by 3x late in a run). Storing the projected displacement as ``d`` with ``t = 1`` keeps
    every pair ``(s, y)`` a true secant pair. Measured in docs/benchmarks.md.
    """
    state = opt.state[x]
    if "d" in state:
        state["d"] = (x.detach() - before).flatten()
        state["t"] = 1.0


def _fields(record: StepRecord) -> list[Any]:
    return [getattr(record, f) for f in record.__dataclass_fields__]


def _prepare_mask(mask: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor | None:
    if mask is None:
        return None
    m = mask.float()
    while m.ndim < len(shape) + 2:
        m = m.unsqueeze(0)
    if tuple(m.shape[2:]) != shape or m.shape[:2] != (1, 1):
        raise ShapeError(f"mask must match the content's grid {shape}, got shape {tuple(mask.shape)}")
    if m.min() < 0 or m.max() > 1 or not torch.isfinite(m).all():
        raise OptionError("mask values must lie in [0, 1]")
    return m


def _initial(
    init: InitKind | torch.Tensor, content: torch.Tensor, style: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    if isinstance(init, torch.Tensor):
        start = _as_batched(init, "init", content.ndim - 2)
        if start.shape != content.shape:
            raise ShapeError(
                f"init must be shaped like the content {tuple(content.shape[1:])}, got {tuple(init.shape)}"
            )
        return start.clone()
    look_up_option("init", init, ("content", "noise", "style"))
    if init == "content":
        return content.clone()
    if init == "style":
        return NF.resize(style, content.shape[2:])
    dims = tuple(range(2, content.ndim))
    mean = content.mean(dim=dims, keepdim=True)
    std = content.std(dim=dims, keepdim=True).clamp_min(1e-3)
    return mean + std * torch.randn(content.shape, generator=generator)


def _restore_layout(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.detach().float().cpu()[0]


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total, disable=not enabled, unit="step", desc="ndstyle", leave=False, dynamic_ncols=True
    )


def evaluate_costs(
    extractor: FeatureExtractor,
    content: torch.Tensor,
    style: torch.Tensor | Sequence[torch.Tensor],
    candidate: torch.Tensor,
    *,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | Mapping[str, float] | None = None,
    style_blend: Sequence[float] | None = None,
) -> dict[str, float]:
    """Unweighted :math:`J_{content}(C, G)` and :math:`J_{style}(S, G)` of ``candidate`` at full size.

    A fixed evaluator for tests and benchmarks: same extractor and layers for every method.
    Inputs are ``(C, *spatial)``; returns ``{"content": ..., "style": ...}``.
    """
    spatial_dims = extractor.spatial_dims
    c = _as_batched(content, "content", spatial_dims)
    styles = [style] if isinstance(style, torch.Tensor) else list(style)
    loss = PerceptualLoss(
        extractor,
        content_layers=list(extractor.default_content_layers if content_layers is None else content_layers),
        style_layers=extractor.default_style_layers if style_layers is None else style_layers,
    )
    loss.set_content(c)
    loss.set_styles([_as_batched(s, "style", spatial_dims) for s in styles], style_blend)
    with torch.no_grad():
        terms = loss(_as_batched(candidate, "candidate", spatial_dims))
    return {"content": float(terms.content), "style": float(terms.style)}
