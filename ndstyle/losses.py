r"""Loss modules: they hold configuration and targets and call :mod:`ndstyle.functional`.

:class:`PerceptualLoss` is the whole cost :math:`J = \\alpha J_{content} + \\beta J_{style} +
\\gamma TV` of one transfer: targets are computed once (:meth:`PerceptualLoss.set_content`,
:meth:`PerceptualLoss.set_styles`) and each call costs one forward pass of the extractor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from . import functional as NF
from ._checks import look_up_option
from .errors import OptionError, ShapeError
from .extractors.base import FeatureExtractor


@dataclass(frozen=True)
class CostTerms:
    r"""The terms of one evaluation of the cost (scalars as tensors, ``total`` differentiable).

    Attributes:
        content: :math:`J_{content}` (unweighted; 0 when there is no content term).
        style: :math:`J_{style} = \\sum_l \\lambda_l J^l_{style}` (unweighted).
        tv: total variation (unweighted).
        total: :math:`\\alpha J_{content} + \\beta J_{style} + \\gamma TV`.

    """

    content: torch.Tensor
    style: torch.Tensor
    tv: torch.Tensor
    total: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        """``{"content", "style", "tv", "total"}`` as Python floats."""
        return {k: float(getattr(self, k).detach()) for k in ("content", "style", "tv", "total")}


def normalize_layer_weights(layers: Sequence[str] | Mapping[str, float]) -> dict[str, float]:
    """Turn a list of layers (equal weights summing to 1) or a mapping into ``{layer: weight}``."""
    if isinstance(layers, Mapping):
        weights = {str(k): float(v) for k, v in layers.items()}
    else:
        names = list(layers)
        weights = {name: 1.0 / len(names) for name in names} if names else {}
    for name, weight in weights.items():
        if not weight >= 0:
            raise OptionError(f"style layer weight of {name!r} must be >= 0, got {weight}")
    return weights


class StyleStatistic(nn.Module):
    """One style statistic: how a style's target is computed, blended and compared (one layer).

    Subclasses wrap the pure functions of :mod:`ndstyle.functional`; every method takes
    activations ``(B, C, *spatial)`` with any number of spatial axes. Statistics are float32
    whatever the features' dtype (bf16 under autocast).
    """

    name: ClassVar[str] = ""
    #: whether :meth:`cost` is a function of additive moments (count, sum, second moment) that tiles
    #: can accumulate (see :func:`ndstyle.functional.moments`); sort-based statistics are not.
    additive: ClassVar[bool] = False

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> Any:
        """The target of one style's activations ``(1, C, *spatial)`` at one layer.

        ``mask`` ``(1, 1, *spatial')`` position weights (resized to the features' grid) restrict
        the target to a region of the style.
        """
        raise NotImplementedError

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> Any:
        """Combine several styles' targets with blend weights (the mixture of their features)."""
        raise NotImplementedError

    def cost(self, generated: torch.Tensor, target: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        """The style cost of one layer (a scalar), with optional position weights ``mask``."""
        raise NotImplementedError

    def cost_from_moments(self, moments: NF.Moments, target: Any) -> torch.Tensor:
        """The cost from accumulated :class:`~ndstyle.functional.Moments` (``additive`` statistics)."""
        raise NotImplementedError(
            f"the {self.name!r} statistic depends on every position's rank, not on additive moments"
        )

    def random_state(self) -> torch.Tensor | None:
        """The state of the statistic's random generator (``None``: deterministic), for checkpoints."""
        return None

    def set_random_state(self, state: torch.Tensor | None) -> None:
        """Restore a :meth:`random_state` (``None`` leaves the generator as it is)."""

    @contextlib.contextmanager
    def drawn_from(self, seed: int) -> Iterator[None]:
        """Draw from ``seed`` inside (sliced-wasserstein's directions), leave the own sequence as it was.

        Measurements made this way do not depend on the run's history, so a resumed run measures
        like an uninterrupted one.
        """
        running = self.random_state()
        if running is not None:
            self.set_random_state(torch.Generator().manual_seed(int(seed)).get_state())
        try:
            yield
        finally:
            self.set_random_state(running)

    def forward(self, generated: torch.Tensor, target: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Same as :meth:`cost`."""
        return self.cost(generated, target, mask)


class GramStyle(StyleStatistic):
    r"""The seeds' Gram cost :math:`\frac{1}{4C^2}\|\hat G^{(S)} - \hat G^{(G)}\|_F^2` (Gatys et al. 2015)."""

    name = "gram"
    additive = True

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return NF.gram_matrix(features, normalize=True, mask=mask)

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> torch.Tensor:
        return NF.blend_grams([{"t": t} for t in targets], weights)["t"]

    def cost(self, generated: torch.Tensor, target: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        return NF.style_cost_from_grams(NF.gram_matrix(generated, normalize=True, mask=mask), target)

    def cost_from_moments(self, moments: NF.Moments, target: Any) -> torch.Tensor:
        return NF.style_cost_from_grams(moments.second / moments.count.clamp_min(1e-8)[:, None, None], target)


class MeanCovStyle(StyleStatistic):
    """Gaussian Wasserstein-2 distance of the features' mean and covariance.

    See :func:`ndstyle.functional.gaussian_w2_cost`.
    """

    name = "mean-cov"
    additive = True

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> NF.GaussianTarget:
        return NF.GaussianTarget.from_moments(*NF.mean_covariance(features, mask=mask))

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> NF.GaussianTarget:
        return NF.blend_gaussians(targets, weights)

    def cost(self, generated: torch.Tensor, target: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        return NF.gaussian_w2_cost(generated, target, mask=mask)

    def cost_from_moments(self, moments: NF.Moments, target: Any) -> torch.Tensor:
        return NF.gaussian_w2_from_moments(*moments.mean_covariance(), target)


class HistogramStyle(StyleStatistic):
    """Per-channel histogram (exact quantile) matching, Risser et al. 2017.

    See :func:`ndstyle.functional.quantile_matching_cost` (no directions: the channel axes).
    """

    name = "histogram"

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> NF.SampleTarget:
        return NF.sample_target(features, presort=True, mask=mask)

    def blend(self, targets: Sequence[Any], weights: Sequence[float]) -> NF.SampleTarget:
        return NF.blend_samples(targets, weights)

    def cost(self, generated: torch.Tensor, target: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        return NF.quantile_matching_cost(generated, target, None, mask=mask)


class SlicedWassersteinStyle(HistogramStyle):
    """Sliced Wasserstein distance of the feature distributions (Heitz et al. 2021).

    Args:
        seed: seeds the generator of the random directions (same seed, same sequence of calls:
            same directions, so runs are deterministic).
        projections: directions per layer and evaluation; ``None``: as many as the layer has
            channels (Heitz et al.'s choice).

    The directions are redrawn at every evaluation of the cost (every optimiser step).

    """

    name = "sliced-wasserstein"

    def target(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> NF.SampleTarget:
        return NF.sample_target(features, mask=mask)

    def __init__(self, seed: int = 0, projections: int | None = None) -> None:
        super().__init__()
        self.seed = int(seed)
        self.projections = projections
        self.generator = torch.Generator().manual_seed(self.seed)

    def reseed(self, seed: int | None = None) -> None:
        """Restart the sequence of directions (from ``seed``, default the constructor's)."""
        self.generator.manual_seed(self.seed if seed is None else int(seed))

    def random_state(self) -> torch.Tensor | None:
        return self.generator.get_state()

    def set_random_state(self, state: torch.Tensor | None) -> None:
        if state is not None:
            self.generator.set_state(state.to(torch.uint8).cpu())

    def cost(self, generated: torch.Tensor, target: Any, mask: torch.Tensor | None = None) -> torch.Tensor:
        channels = generated.shape[1]
        directions = NF.random_directions(channels, self.projections or channels, self.generator)
        return NF.quantile_matching_cost(generated, target, directions, mask=mask)


#: The style statistics by name (``style_loss=`` / ``--style-loss``).
STYLE_LOSSES: dict[str, type[StyleStatistic]] = {
    cls.name: cls for cls in (GramStyle, MeanCovStyle, SlicedWassersteinStyle, HistogramStyle)
}


def build_style_statistic(style_loss: str | StyleStatistic = "gram", *, seed: int = 0) -> StyleStatistic:
    """The :class:`StyleStatistic` called ``style_loss`` (``seed`` seeds random projections)."""
    if isinstance(style_loss, StyleStatistic):
        return style_loss
    cls = STYLE_LOSSES[look_up_option("style_loss", style_loss, STYLE_LOSSES)]
    return cls(seed=seed) if cls is SlicedWassersteinStyle else cls()  # type: ignore[call-arg]


class PerceptualLoss(nn.Module):
    r""":math:`\\alpha J_{content} + \\beta J_{style} + \\gamma TV` for one extractor.

    Args:
        extractor: a frozen :class:`~ndstyle.extractors.FeatureExtractor`.
        content_layers: layers of the content cost (empty for pure texture synthesis).
        style_layers: layers of the style cost, as a list (equal :math:`\\lambda_l`) or a mapping
            ``{layer: lambda_l}``.
        content_weight: :math:`\\alpha`.
        style_weight: :math:`\\beta`.
        tv_weight: :math:`\\gamma`.
        autocast_dtype: run the extractor under autocast with this dtype (e.g. bfloat16); Grams
            and sums stay in float32.
        style_loss: the style statistic: ``"gram"`` (default), ``"mean-cov"``,
            ``"sliced-wasserstein"``, ``"histogram"`` (see :data:`STYLE_LOSSES`) or a
            :class:`StyleStatistic`.
        seed: seeds the random projections of ``"sliced-wasserstein"``.
        mask_interior: with masks, take each style layer's statistics only at the positions whose
            receptive field lies inside the mask (the content's and each style's): features that
            straddle the mask's edge see what lies outside it (the untouched voxels around the
            content, the filled background around the style), and matching them paints a rim
            inside the border. Needs an extractor whose geometry is known (convolutions, pooling
            and pointwise layers; :func:`ndstyle.tiling.geometry`). Where the interior would keep
            under 5 % of a mask's weight (small inputs, deep layers) that layer keeps the whole mask.

    """

    def __init__(
        self,
        extractor: FeatureExtractor,
        *,
        content_layers: Sequence[str],
        style_layers: Sequence[str] | Mapping[str, float],
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        tv_weight: float = 0.0,
        autocast_dtype: torch.dtype | None = None,
        style_loss: str | StyleStatistic = "gram",
        seed: int = 0,
        mask_interior: bool = False,
    ) -> None:
        super().__init__()
        self.statistic = build_style_statistic(style_loss, seed=seed)
        self.extractor = extractor
        self.content_layers = extractor.check_layers(content_layers)
        self.style_layer_weights = normalize_layer_weights(style_layers)
        extractor.check_layers(self.style_layer_weights)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.autocast_dtype = autocast_dtype
        self.layers = list(dict.fromkeys([*self.content_layers, *self.style_layer_weights]))
        self.content_targets: dict[str, torch.Tensor] = {}
        self.style_targets: dict[str, Any] = {}
        self.mask: torch.Tensor | None = None
        self.layer_masks: dict[str, torch.Tensor | None] = {}
        self.mask_interior = mask_interior
        self._reaches: Mapping[str, tuple[int, ...]] = {}
        if mask_interior:
            from .tiling import geometry, why_not_tileable  # tiling builds on this module

            reason = why_not_tileable(extractor)
            if reason is not None:
                raise OptionError(
                    f"mask_interior needs an extractor whose receptive fields are known: {reason}"
                )
            self._reaches = geometry(extractor, list(self.style_layer_weights)).reaches

    def region(self, mask: torch.Tensor | None, layer: str) -> torch.Tensor | None:
        """The position weights ``(B, 1, *spatial)`` of style layer ``layer`` for an input ``mask``.

        ``mask`` itself, or with :attr:`mask_interior` its positions whose receptive field at
        ``layer`` lies inside it (on the input's grid; resized to the layer's by the statistic).
        """
        if mask is None or not self.mask_interior:
            return mask
        inner = NF.erode_mask(mask, self._reaches[layer])
        return inner if float(inner.sum()) >= 0.05 * float(mask.sum()) else mask

    def layer_mask(self, layer: str) -> torch.Tensor | None:
        """The generated input's position weights at style layer ``layer`` (see :meth:`set_mask`)."""
        return self.layer_masks.get(layer, self.mask)

    @contextlib.contextmanager
    def _autocast(self, device: torch.device) -> Iterator[None]:
        if self.autocast_dtype is None:
            yield
        else:
            with torch.autocast(device_type=device.type, dtype=self.autocast_dtype):
                yield

    def features(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of ``x`` ``(B, C, *spatial)`` at ``layers`` (default: all used layers)."""
        with self._autocast(x.device):
            return self.extractor(x, self.layers if layers is None else layers)

    @torch.no_grad()
    def set_content(self, content: torch.Tensor) -> None:
        """Compute and keep the content targets of ``content`` ``(1, C, *spatial)``."""
        if not self.content_layers:
            self.content_targets = {}
            return
        feats = self.features(content, self.content_layers)
        self.content_targets = {k: v.float() for k, v in feats.items()}

    @torch.no_grad()
    def style_grams(self, style: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, Any]:
        """The style statistic's targets of ``style`` ``(1, C, *spatial)`` at the style layers.

        Per-position Gram matrices for ``"gram"`` (hence the name); :class:`~ndstyle.functional.
        GaussianTarget` or :class:`~ndstyle.functional.SampleTarget` for the other statistics.
        ``mask`` ``(1, 1, *spatial)`` in [0, 1] restricts the Gram to a region of the style (e.g. its
        brain, compared with the content's brain and not with air and skull); extractors that fold
        a style into several items (2.5-D slices) give one Gram per item, whose mean is the target.
        """
        feats = self.features(style, list(self.style_layer_weights))
        fold = getattr(self.extractor, "fold_mask", None)  # 2.5-D slices: a mask folded like them
        out: dict[str, Any] = {}
        for k, v in feats.items():
            region = self.region(mask, k)
            if region is None and v.shape[0] == 1:
                out[k] = self.statistic.target(v)
            elif isinstance(self.statistic, GramStyle):
                m = region if region is None or fold is None else fold(region, k)
                out[k] = NF.gram_matrix(v, normalize=True, mask=m).mean(0, keepdim=True)
            else:  # the items' positions pooled into one distribution, weighted by the mask
                m = region if region is None or fold is None else fold(region, k)
                weights = (
                    None if m is None else NF.resize_mask(m, v.shape[2:]).expand(v.shape[0], 1, *v.shape[2:])
                )
                pooled = v.transpose(0, 1).reshape(1, v.shape[1], -1)
                out[k] = self.statistic.target(pooled, None if weights is None else weights.reshape(1, 1, -1))
        return out

    @torch.no_grad()
    def set_styles(
        self,
        styles: Sequence[torch.Tensor],
        blend: Sequence[float] | None = None,
        masks: Sequence[torch.Tensor | None] | None = None,
    ) -> None:
        """Compute and keep the blended style targets of one or several styles (optional masks)."""
        if not styles:
            raise OptionError("at least one style input is needed")
        weights = list(blend) if blend is not None else [1.0] * len(styles)
        if len(weights) != len(styles):
            raise OptionError(f"style_blend has {len(weights)} weights for {len(styles)} styles")
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise OptionError(f"style_blend weights must be >= 0 and not all 0, got {weights}")
        region = list(masks) if masks is not None else [None] * len(styles)
        if len(region) != len(styles):
            raise OptionError(f"{len(region)} style masks given for {len(styles)} styles")
        per_style = [self.style_grams(s, m) for s, m in zip(styles, region, strict=True)]
        if len(per_style) == 1:
            self.style_targets = per_style[0]
        else:
            self.style_targets = {
                layer: self.statistic.blend([t[layer] for t in per_style], weights) for layer in per_style[0]
            }

    def set_mask(self, mask: torch.Tensor | None) -> None:
        """Restrict the style statistics of the generated input to a region ``(1, 1, *spatial)``."""
        self.mask = mask
        self.layer_masks = (
            {layer: self.region(mask, layer) for layer in self.style_layer_weights}
            if self.mask_interior and mask is not None
            else {}
        )

    def forward(self, x: torch.Tensor) -> CostTerms:
        """Evaluate the cost of ``x`` ``(1, C, *spatial)``."""
        feats = self.features(x)
        zero = torch.zeros((), device=x.device)
        content = zero
        for layer in self.content_layers:
            if layer not in self.content_targets:
                raise RuntimeError("set_content() must be called before evaluating the cost")
            target = self.content_targets[layer]
            if feats[layer].shape != target.shape:
                raise ShapeError(
                    f"content target at {layer!r} has shape {tuple(target.shape)} but the input "
                    f"gives {tuple(feats[layer].shape)}; call set_content() at this size"
                )
            content = content + NF.content_cost(feats[layer], target) / len(self.content_layers)
        style = zero
        if self.style_layer_weights:
            if not self.style_targets:
                raise RuntimeError("set_styles() must be called before evaluating the cost")
            style = self.style_cost(feats)
        tv = NF.total_variation(x) if self.tv_weight else zero
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return CostTerms(content=content, style=style, tv=tv, total=total)

    def style_cost(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        r""":math:`J_{style} = \sum_l \lambda_l J^l_{style}` of activations ``{layer: (B, C, *spatial)}``."""
        fold = getattr(self.extractor, "fold_mask", None)
        if self.mask is not None and fold is not None:  # 2.5-D slices: the mask folded per layer
            if not isinstance(self.statistic, GramStyle):
                raise OptionError("a mask with the slices extractor needs the Gram statistic")
            total = torch.zeros((), dtype=torch.float32, device=self.mask.device)
            for layer, weight in self.style_layer_weights.items():
                m = fold(self.mask, layer)
                total = total + weight * self.statistic.cost(feats[layer], self.style_targets[layer], m)
            return total
        if isinstance(self.statistic, GramStyle) and not self.layer_masks:  # the seeds' path, unchanged
            return NF.layered_style_cost(feats, self.style_targets, self.style_layer_weights, mask=self.mask)
        total = torch.zeros((), dtype=torch.float32, device=next(iter(feats.values())).device)
        for layer, weight in self.style_layer_weights.items():
            cost = self.statistic.cost(feats[layer], self.style_targets[layer], self.layer_mask(layer))
            total = total + weight * cost
        return total


#: The default :func:`calibrate_weights` strength (see docs/style-losses.md for its calibration).
DEFAULT_STRENGTH = 0.75


@dataclass(frozen=True)
class Calibration:
    r"""What :func:`calibrate_weights` measured and set.

    Attributes:
        strength: the strength used (1 when there is no content term).
        content_gradient: :math:`\|\nabla_x J_{content}\|` at a content-free input (noise).
        style_gradient: :math:`\|\nabla_x J_{style}\|` at the content.
        content_weight: :math:`\alpha` set on the loss.
        style_weight: :math:`\beta` set on the loss.

    """

    strength: float
    content_gradient: float
    style_gradient: float
    content_weight: float
    style_weight: float
    content_value: float = 0.0
    style_value: float = 0.0
    by: str = "gradient"


#: How :func:`calibrate_weights` balances the two costs.
CALIBRATIONS = ("gradient", "value")


def check_strength(strength: float) -> float:
    """Return ``strength`` as a float if it lies in [0, 1], else raise :class:`OptionError`."""
    try:
        value = float(strength)
    except (TypeError, ValueError) as error:
        raise OptionError(f"strength must be a number in [0, 1], got {strength!r}") from error
    if not 0.0 <= value <= 1.0:
        raise OptionError(f"strength must be a number in [0, 1], got {strength!r}")
    return value


def _gradient_norm(cost: torch.Tensor, x: torch.Tensor) -> float:
    if not cost.requires_grad:
        return 0.0
    (grad,) = torch.autograd.grad(cost, x)
    return float(grad.float().norm())


def _value_and_gradient(cost: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    return float(cost.detach()), _gradient_norm(cost, x)


def calibrate_weights(
    loss: PerceptualLoss,
    content: torch.Tensor,
    strength: float = DEFAULT_STRENGTH,
    *,
    content_weight: float = 1.0,
    seed: int = 0,
    by: str = "value",
    measure: Callable[[torch.Tensor, str], tuple[float, float]] | None = None,
) -> Calibration:
    r"""Set the loss's weights from one knob ``strength`` in [0, 1], from the costs' values and gradients.

    The two costs pull the input with forces of very different sizes, depending on the extractor,
    the statistic and the pair. Measured once per pyramid level (targets set):

    - :math:`g_S = \|\nabla_x J_{style}\|` at :math:`x = ` the content (how hard the style pulls
      away from it; at the noise below when there is no content term or the content already has
      the style);
    - :math:`g_C = \|\nabla_x J_{content}\|` at :math:`x = ` Gaussian noise with the content's
      per-channel mean and std (how hard the content pulls back once it is lost),

    then :math:`\alpha = k(1-s)/g_C` and :math:`\beta = k\,s/g_S` with :math:`k = `
    ``content_weight``: the weighted forces are in the ratio :math:`(1-s) : s`. At ``strength``
    :math:`s = 0` the result is the content, at 1/2 the two forces are equal at their extremes,
    at 1 there is no content term (texture synthesis). The weighted gradient has a size near
    :math:`k` whatever the extractor, so the optimiser's step sizes (Adam's epsilon, L-BFGS's first
    step) behave alike too. Both measures depend only on the inputs, not on the iterate, so a
    level's weights are the same however the run got there.

    Args:
        loss: a :class:`PerceptualLoss` whose content and style targets (and mask) are set.
        content: the content at this level ``(1, C, *spatial)`` (the targets' input).
        strength: :math:`s` in [0, 1].
        content_weight: :math:`k`, the size of the weighted gradient (0: texture synthesis
            whatever ``strength``, with :math:`k = 1`).
        seed: seeds the noise input.
        by: ``"value"`` (default): :math:`\alpha \propto (1-s)/J_{content}(noise)`,
            :math:`\beta \propto s/J_{style}(content)` (each cost divided by its range, the
            measures of content and style change), scaled so that the weighted gradients at those
            points add up to :math:`k`; one strength then changes six very different image pairs
            alike (coefficient of variation of the content/style change ratio 25-37 % against
            64-81 % ``by="gradient"``, docs/style-losses.md). ``"gradient"``: the force balance
            above.
        measure: ``(x, "content" | "style") -> (J_term(x), ||grad_x J_term||)`` computed another
            way (a tiled run's :meth:`ndstyle.tiling.TiledCost.measure`); default: on the whole input.

    Returns:
        The :class:`Calibration`; ``loss.content_weight``/``loss.style_weight`` are set.

    """
    s = check_strength(strength)
    look_up_option("by", by, CALIBRATIONS)
    generator = torch.Generator().manual_seed(int(seed))
    dims = tuple(range(2, content.ndim))
    mean = content.mean(dim=dims, keepdim=True)
    std = content.std(dim=dims, keepdim=True).clamp_min(1e-3)
    noise = (mean + std * torch.randn(content.shape, generator=generator).to(content.device)).detach()
    texture = content_weight <= 0 or not loss.content_layers

    def style_at(start: torch.Tensor) -> tuple[float, float]:
        with loss.statistic.drawn_from(seed):  # the weights do not depend on the run's history
            if measure is not None:
                return measure(start, "style")
            x = start.detach().clone().requires_grad_(True)
            return _value_and_gradient(loss.style_cost(loss.features(x, list(loss.style_layer_weights))), x)

    style_value, style_gradient = (0.0, 0.0) if texture else style_at(content)
    if style_gradient <= 1e-12:  # texture synthesis, or a content that already has the style
        style_value, style_gradient = style_at(noise)
    content_value = content_gradient = 0.0
    if not texture and measure is not None:
        with loss.statistic.drawn_from(seed):  # a tiled measure evaluates the statistic too
            content_value, content_gradient = measure(noise, "content")
    elif not texture:
        y = noise.requires_grad_(True)
        feats = loss.features(y, loss.content_layers)
        cost = sum(NF.content_cost(feats[k], loss.content_targets[k]) for k in loss.content_layers)
        content_value, content_gradient = _value_and_gradient(torch.as_tensor(cost), y)
        content_value /= len(loss.content_layers)
        content_gradient /= len(loss.content_layers)
    tiny = 1e-12
    scale = float(content_weight) if content_weight > 0 else 1.0
    if texture or content_gradient <= tiny:
        s = 1.0  # no content term: texture synthesis
    alpha = scale * (1.0 - s) / max(content_gradient, tiny) if s < 1.0 else 0.0
    beta = scale * s / max(style_gradient, tiny) if style_gradient > tiny else 0.0
    if by == "value" and 0.0 < s < 1.0 and content_value > tiny and style_value > tiny:
        # weights in the ratio of the normalised costs (content change, style gap), scaled so that
        # the weighted gradients still add up to about ``scale``
        a, b = (1.0 - s) / content_value, s / style_value
        c = scale / (a * content_gradient + b * style_gradient)
        alpha, beta = c * a, c * b
    loss.content_weight, loss.style_weight = alpha, beta
    return Calibration(s, content_gradient, style_gradient, alpha, beta, content_value, style_value, by)
