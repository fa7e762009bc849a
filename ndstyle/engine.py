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
from typing import Any, Literal

import torch

from . import functional as NF
from ._checks import check_positive, check_stylize_arguments, look_up_option, spatial_dims_of
from .checkpoint import RunState, check_fingerprint, fingerprint, load_run_state, save_run_state
from .errors import InterruptedRun, NonFiniteCostError, OptionError, ShapeError
from .extractors import FeatureExtractor, build_extractor
from .losses import DEFAULT_STRENGTH, CostTerms, PerceptualLoss, calibrate_weights, check_strength
from .memory import device_memory, estimate_memory, format_size, parse_size
from .pyramid import scale_factors, scaled_shape

logger = logging.getLogger(__name__)

InitKind = Literal["content", "noise", "style"]


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

    """

    output: torch.Tensor
    history: list[StepRecord] = field(default_factory=list)
    best_cost: float = math.inf
    extractor: str = ""
    scales: list[tuple[int, ...]] = field(default_factory=list)
    stopped_early: bool = False
    device: str = "cpu"
    precision: str = "fp32"


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
) -> StyleTransferResult:
    r"""Neural style transfer (Gatys et al. 2015) on 1-D, 2-D or 3-D inputs.

    Minimises :math:`J(G) = \alpha J_{content}(C, G) + \beta J_{style}(S, G) + \gamma TV(G)`
    over the values of :math:`G` itself (see ``docs/theory.md``).

    Args:
        content: the content input ``(C, *spatial)`` with 1, 2 or 3 spatial axes.
        style: one style input or a list; each ``(C, *spatial_s)`` with the content's channels and
            number of spatial axes, any size (style statistics are size independent).
        extractor: a :class:`~ndstyle.extractors.FeatureExtractor`, a registered name or a weights
            file; ``None`` builds a seeded random ConvNd for the content's dims and channels.
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
            ``steps // 4`` (at least 1): coarse levels only place the large structures, and the
            full-size level decides the result (docs/benchmarks.md measures the trade).
        scales: ``"auto"``, a number of levels, or factors in (0, 1] (see
            :func:`ndstyle.pyramid.scale_factors`); ``1`` disables coarse-to-fine.
        seed: seeds the random extractor and noise init; same seed + device -> same result.
        device: ``"auto"`` (cuda, mps, cpu) or a torch device.
        precision: ``"bf16"`` autocasts the extractor (Grams and sums stay fp32); ``"auto"``
            uses bf16 where the device computes it natively and the extractor was checked in bf16
            (:func:`resolve_precision`), else ``"fp32"``. ``result.precision`` says which ran.
        value_range: clamp the input to ``(low, high)`` after each step; ``"auto"`` uses the
            extractor's ``value_range``; ``None`` never clamps.
        callback: called after every step with a :class:`StepInfo`; returning ``True`` stops.
        progress: show a progress bar (tqdm) with step, cost terms and ETA.
        checkpoint: file (``.safetensors``) that ``checkpoint_every`` writes and ``resume`` reads.
        checkpoint_every: save the full optimiser state every N steps (0: never); see
            :mod:`ndstyle.checkpoint`.
        resume: continue from ``checkpoint``; with the same inputs, options, device and thread
            count the result is bit-identical to an uninterrupted run.
        max_memory: refuse, before allocating, a run whose estimated peak memory
            (:func:`ndstyle.memory.estimate_memory`) exceeds this many bytes (or ``"8G"``...);
            ``"auto"``: the device's memory; ``None``: no check.
        style_loss: the style statistic: ``"gram"`` (the seeds'), ``"mean-cov"``,
            ``"sliced-wasserstein"`` (random directions seeded by ``seed``) or ``"histogram"``
            (see :data:`ndstyle.losses.STYLE_LOSSES` and ``docs/style-losses.md``).
        strength: in [0, 1], used when ``style_weight`` is ``None``: 0 keeps the content, 1
            synthesises texture; default: the extractor's ``default_strength``
            (:data:`ndstyle.losses.DEFAULT_STRENGTH` for VGG and the random ConvNds; ``None`` for
            extractors whose ``default_style_weight`` was measured on their field's data). The weights are
            set from the two costs' gradient magnitudes at the start of each level, so the knob
            means the same for every extractor, statistic and pair.

    Returns:
        A :class:`StyleTransferResult` holding the lowest-cost iterate and the history.

    Raises:
        ShapeError: inputs of wrong or mismatching shapes.
        OptionError: invalid options (negative weights, zero steps, unknown names...), a run
            estimated to need more than ``max_memory``, or a checkpoint made for another run.
        NonFiniteCostError: the cost became NaN or infinite (the run stops; nothing is returned).
        InterruptedRun: Ctrl-C; its ``result`` holds the best iterate so far.

    """
    check_stylize_arguments(
        content, style, steps=steps, coarse_steps=coarse_steps, value_range=value_range, mask=mask, init=init
    )
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
    for name, value in (
        ("content_weight", content_weight),
        ("style_weight", style_weight or 0),
        ("tv_weight", tv_weight),
    ):
        check_positive(name, value)
    per_level = [steps] if isinstance(steps, int) else list(steps)
    if not per_level or any(int(s) < 1 for s in per_level):
        raise OptionError(f"steps must be >= 1 per level, got {steps!r}")
    if coarse_steps is not None and int(coarse_steps) < 1:
        raise OptionError(f"coarse_steps must be >= 1, got {coarse_steps!r}")
    look_up_option("optimizer", optimizer, ("lbfgs", "adam"))
    if lr is not None:
        check_positive("lr", lr, allow_zero=False)
    if style_blend is not None:
        for w in style_blend:
            check_positive("style_blend weight", w)
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) or checkpoint_every < 0:
        raise OptionError(f"checkpoint_every must be an integer >= 0, got {checkpoint_every!r}")
    if (checkpoint_every or resume) and checkpoint is None:
        raise OptionError("checkpoint_every and resume need checkpoint=<path of the checkpoint file>")
    auto_memory = isinstance(max_memory, str) and max_memory == "auto"
    memory_limit = None if auto_memory else parse_size(max_memory)

    if style_weight is not None and strength is not None:
        warnings.warn("strength is ignored because style_weight is given", stacklevel=2)

    dev = resolve_device(device)
    look_up_option("precision", precision, ("auto", "fp32", "bf16"))
    # build_extractor checks a given extractor against the input; the seed only applies to new ones
    seed_option = {} if isinstance(extractor, FeatureExtractor) else {"seed": seed}
    net = build_extractor(
        extractor, spatial_dims=spatial_dims, in_channels=content_b.shape[1], **seed_option
    ).to(dev)
    precision_used = resolve_precision(precision, dev, net)
    if style_weight is None and strength is None:  # the extractor's measured default balance
        strength = net.default_strength
    calibrated = style_weight is None and strength is not None
    strength_used = check_strength(DEFAULT_STRENGTH if strength is None else strength)
    c_layers = list(net.default_content_layers if content_layers is None else content_layers)
    s_layers = net.default_style_layers if style_layers is None else style_layers
    loss = PerceptualLoss(
        net,
        content_layers=c_layers if content_weight > 0 else [],
        style_layers=s_layers,
        content_weight=content_weight,
        style_weight=net.default_style_weight if style_weight is None else style_weight,
        tv_weight=tv_weight,
        autocast_dtype=torch.bfloat16 if precision_used == "bf16" else None,
        style_loss=style_loss,
        seed=seed,
    )
    bounds = net.value_range if isinstance(value_range, str) and value_range == "auto" else value_range
    if isinstance(value_range, str) and value_range != "auto":
        raise OptionError(f"value_range must be 'auto', None or (low, high), got {value_range!r}")

    full_shape = tuple(content_b.shape[2:])
    min_size = net.min_input_size(loss.layers)
    if min(full_shape) < min_size:
        raise ShapeError(
            f"content of spatial shape {full_shape} is too small for layers {loss.layers}: each "
            f"axis needs at least {min_size} positions"
        )
    factors = scale_factors(scales, full_shape, min_size)
    if isinstance(steps, int):
        coarse = max(1, steps // 4) if coarse_steps is None else int(coarse_steps)
        per_level = [coarse] * (len(factors) - 1) + [steps]
    elif len(per_level) == 1:
        per_level = per_level * len(factors)
    if len(per_level) != len(factors):
        raise OptionError(f"steps gives {len(per_level)} values for {len(factors)} pyramid levels")

    mask_b = _prepare_mask(mask, full_shape)
    if style_masks is not None and len(style_masks) != len(styles_b):
        raise OptionError(f"{len(style_masks)} style masks given for {len(styles_b)} styles")
    style_masks_b = [
        None if m is None else _prepare_mask(m, tuple(s.shape[2:]))
        for m, s in zip(style_masks or [None] * len(styles_b), styles_b, strict=True)
    ]
    if auto_memory or memory_limit is not None:
        needed = estimate_memory(
            net,
            full_shape,
            loss.layers,
            optimizer=optimizer,
            style_shapes=[s.shape[2:] for s in styles_b],
            precision=precision_used,
        )
        limit = device_memory(dev) if memory_limit is None else memory_limit
        if limit is not None and needed > limit:
            raise OptionError(
                f"this run needs about {format_size(needed)} of memory for a content of shape "
                f"{tuple(content_b.shape[1:])} but {format_size(limit)} are "
                f"{'allowed (max_memory)' if memory_limit is not None else 'available on ' + str(dev)}; "
                f"use a smaller size, fewer/shallower layers or optimizer='adam'"
            )
    generator = torch.Generator().manual_seed(seed)
    current = _initial(init, content_b, styles_b[0], generator).to(dev)
    run_print: dict[str, str] = {}
    saved: RunState | None = None
    if checkpoint is not None:
        run_print = fingerprint(
            {
                "options": [
                    c_layers if content_weight > 0 else [],
                    s_layers if isinstance(s_layers, Mapping) else list(s_layers),
                    content_weight,
                    loss.style_weight,
                    tv_weight,
                    list(style_blend) if style_blend is not None else None,
                    optimizer,
                    lr,
                    [int(v) for v in per_level],
                    factors,
                    seed,
                    init if isinstance(init, str) else "tensor",
                    precision_used,
                    list(bounds) if bounds is not None else None,
                    dev.type,
                    style_loss,
                    strength_used if calibrated else None,
                ],
                "extractor": net.describe(),
            },
            {
                "content": [content_b],
                "styles": styles_b,
                "mask": [mask_b, *(m for m in style_masks_b if m is not None)],
                "init": [init if isinstance(init, torch.Tensor) else None],
                "extractor weights": list(net.state_dict().values()),
            },
        )
        if resume:
            saved = load_run_state(checkpoint, dev)
            check_fingerprint(checkpoint, saved.fingerprint, run_print)
            if saved.generator_state is not None:
                generator.set_state(saved.generator_state)
    content_full = content_b.to(dev)
    mask_full = mask_b.to(dev) if mask_b is not None else None

    result = StyleTransferResult(
        output=content_b[0].clone(), extractor=net.describe(), device=str(dev), precision=precision_used
    )
    total_steps = sum(int(s) for s in per_level)
    bar = _progress_bar(total_steps, progress)
    start = time.perf_counter()
    step_counter = 0
    best_so_far = [current]  # updated inside the loop, read if the run is interrupted
    if saved is not None:
        result.history.extend(
            StepRecord(r[0], r[1], tuple(r[2]), *r[3:])
            for r in saved.history  # type: ignore[arg-type]
        )
        step_counter = saved.step
        bar.update(saved.step)

    def save_state(
        level: int, done: int, step: int, x: torch.Tensor, opt: Any, best: torch.Tensor, cost: float
    ) -> None:
        save_run_state(
            checkpoint,  # type: ignore[arg-type]
            RunState(
                fingerprint=run_print,
                level=level,
                level_steps_done=done,
                step=step,
                best_cost=cost,
                x=x,
                best=best,
                optimizer_state=dict(opt.state[x]),
                history=[_fields(r) for r in result.history],
                generator_state=generator.get_state(),
            ),
        )

    try:
        for level, (factor, level_steps) in enumerate(zip(factors, per_level, strict=True)):
            shape = scaled_shape(full_shape, factor, min_size)
            result.scales.append(shape)
            if saved is not None and level < saved.level:
                continue
            level_content = NF.resize(content_full, shape)
            loss.set_content(level_content)
            level_styles = [
                NF.resize(s.to(dev), scaled_shape(s.shape[2:], factor, min_size)) for s in styles_b
            ]
            loss.set_styles(
                level_styles,
                style_blend,
                [
                    None if m is None else NF.resize_mask(m.to(dev), s.shape[2:])
                    for m, s in zip(style_masks_b, level_styles, strict=True)
                ],
            )
            level_mask = NF.resize(mask_full, shape) if mask_full is not None else None
            loss.set_mask(level_mask)
            if calibrated:
                found = calibrate_weights(
                    loss, level_content, strength_used, content_weight=content_weight, seed=seed
                )
                logger.info("level %d: %s", level, found)
            x = NF.resize(current, shape).detach().clone().requires_grad_(True)
            restart = saved if saved is not None and level == saved.level else None
            if restart is not None:
                x = restart.x.detach().clone().requires_grad_(True)
            best, best_cost, step_counter, stopped = _optimise_level(
                loss,
                x,
                level_content,
                level_mask,
                optimizer=optimizer,
                lr=lr,
                steps=int(level_steps),
                bounds=bounds,
                level=level,
                shape=shape,
                step_offset=step_counter,
                total_steps=total_steps,
                start=start,
                history=result.history,
                bar=bar,
                callback=callback,
                best_so_far=best_so_far,
                restart=restart,
                checkpoint_every=checkpoint_every,
                save_state=(lambda *a, _level=level: save_state(_level, *a)) if checkpoint_every else None,
            )
            result.best_cost = best_cost
            current = best
            if stopped:
                result.stopped_early = True
                break
    except KeyboardInterrupt as interrupt:
        result.output = _restore_layout(NF.resize(best_so_far[0], full_shape), content)
        error = InterruptedRun(f"interrupted after {len(result.history)} of {total_steps} steps")
        error.result = result  # type: ignore[attr-defined]
        raise error from interrupt
    finally:
        bar.close()
    final = NF.resize(current, full_shape)
    if mask_full is not None:
        final = mask_full * final + (1 - mask_full) * content_full
    result.output = _restore_layout(final, content)
    return result


def _optimise_level(
    loss: PerceptualLoss,
    x: torch.Tensor,
    level_content: torch.Tensor,
    level_mask: torch.Tensor | None,
    *,
    optimizer: str,
    lr: float | None,
    steps: int,
    bounds: tuple[float, float] | None,
    level: int,
    shape: tuple[int, ...],
    step_offset: int,
    total_steps: int,
    start: float,
    history: list[StepRecord],
    bar: Any,
    callback: Callable[[StepInfo], bool | None] | None,
    best_so_far: list[torch.Tensor],
    restart: RunState | None = None,
    checkpoint_every: int = 0,
    save_state: Callable[..., None] | None = None,
) -> tuple[torch.Tensor, float, int, bool]:
    """Run ``steps`` optimiser steps at one pyramid level; return the best iterate and cost.

    With ``restart`` the level continues from a checkpoint (iterate, optimiser state, best so far);
    ``save_state(done, step, x, opt, best, best_cost)`` is called every ``checkpoint_every`` steps.
    """
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=lr or 1.0, max_iter=1, history_size=50)
    else:
        spread = (bounds[1] - bounds[0]) if bounds else float(level_content.std()) or 1.0
        opt = torch.optim.Adam([x], lr=lr or 0.02 * spread)
    best = x.detach().clone()
    best_cost = math.inf
    done = 0
    if restart is not None:
        opt.state[x] = restart.optimizer_state
        best = restart.best.detach().clone()
        best_cost = restart.best_cost
        done = restart.level_steps_done
    last: dict[str, CostTerms] = {}

    def composite(values: torch.Tensor) -> torch.Tensor:
        if level_mask is None:
            return values
        return level_mask * values + (1 - level_mask) * level_content

    def closure() -> torch.Tensor:
        nonlocal best, best_cost
        opt.zero_grad(set_to_none=True)
        terms = loss(composite(x))
        total = terms.total
        if not torch.isfinite(total):
            raise NonFiniteCostError(
                f"the cost became {float(total.detach())} at step {step + 1} "
                f"(content {float(terms.content.detach()):.4g}, style "
                f"{float(terms.style.detach()):.4g}); lower the "
                f"learning rate or the style weight, or use precision='fp32'"
            )
        total.backward()
        value = float(total.detach())
        if value < best_cost:
            best_cost = value
            best = x.detach().clone()
            best_so_far[0] = composite(best)
        last["terms"] = terms
        return total

    def composite_best() -> torch.Tensor:
        return composite(best)

    if restart is not None:
        best_so_far[0] = composite_best().detach()
    step = step_offset
    stopped = False
    project_secant = bounds is not None and optimizer == "lbfgs"
    for _ in range(done, steps):
        before = x.detach().clone() if project_secant else None
        opt.step(closure)  # type: ignore[arg-type]
        if bounds is not None:
            with torch.no_grad():
                x.clamp_(*bounds)
            if before is not None:
                _secant_from_projected_step(opt, x, before)
        step += 1
        values = last["terms"].as_floats()
        record = StepRecord(
            step=step,
            scale=level,
            shape=shape,
            content=values["content"],
            style=values["style"],
            tv=values["tv"],
            total=values["total"],
            seconds=time.perf_counter() - start,
        )
        history.append(record)
        done += 1
        if save_state is not None and step % checkpoint_every == 0:
            save_state(done, step, x, opt, best, best_cost)
        bar.update(1)
        bar.set_postfix_str(
            f"scale {level} J={values['total']:.4g} content={values['content']:.3g} "
            f"style={values['style']:.3g}",
            refresh=False,
        )
        if callback is not None and callback(StepInfo(record, x.detach(), composite(best), total_steps)):
            stopped = True
            break
    with torch.no_grad():  # the last update has not been evaluated yet
        final_cost = float(loss(composite(x)).total)
    if math.isfinite(final_cost) and final_cost < best_cost:
        best, best_cost = x.detach().clone(), final_cost
    return composite(best).detach(), best_cost, step, stopped


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
