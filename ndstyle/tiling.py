r"""Exact tiled optimiser steps: the gradient of the whole-input cost, computed tile by tile.

A cost :math:`J = \alpha J_{content} + \beta J_{style} + \gamma TV` whose style term depends on the
input only through *global statistics* of the features (the per-position Gram
:math:`\hat G_l = \sum_p w_p a_p a_p^T / \sum_p w_p`) can be differentiated in two passes over tiles
of the input, each tile carrying a halo that covers the extractor's receptive field and starting
at a multiple of its total stride, so that the activations of a tile's *interior* equal those of
the whole input:

1. no autograd: every tile's interior features add to the statistics (and to the content cost,
   a sum over positions), which gives :math:`J` and :math:`D_l = \partial J / \partial \hat G_l`;
2. per tile: the content cost of its interior plus the style cost *linearised at the accumulated
   statistics*, :math:`\sum_l \langle D_l, \hat G_l^{tile} \rangle` (its gradient with respect to
   the tile's features is exactly that of :math:`J`), is back-propagated into the input.

The summed gradient is that of the whole-input objective (same :math:`J`, same optimum, no seams),
up to float rounding; memory is that of one tile. A style statistic takes part through the
:class:`TileableStatistic` interface (``accumulate`` / ``finish`` / ``linearised``); the Gram is
implemented. Extractors are tiled when they are a plain sequence of convolutions, pooling and
pointwise layers (ConvNd, VGG, inflated VGG); others (the spectral front end, the 2.5-D slices)
are refused with :class:`~ndstyle.errors.OptionError`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from . import functional as NF
from .errors import OptionError
from .extractors.base import FeatureExtractor
from .losses import CostTerms, PerceptualLoss

_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Identity)
_POOLS = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
)  # fmt: skip


def _per_axis(value: int | Sequence[int], dims: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * dims  # type: ignore[arg-type]


@dataclass(frozen=True)
class Geometry:
    """How an extractor maps input positions to the positions of its layers, per spatial axis.

    Attributes:
        halo: input positions each tile needs on every side (covers the receptive field, a
            multiple of ``stride``).
        stride: the total stride of the deepest layer (tile origins are multiples of it).
        strides: ``{layer: stride per axis}`` for every layer used.
        reaches: ``{layer: input positions per axis}`` that a position of the layer reads on
            either side (half its receptive field; not rounded to the stride).

    """

    halo: tuple[int, ...]
    stride: tuple[int, ...]
    strides: Mapping[str, tuple[int, ...]]
    reaches: Mapping[str, tuple[int, ...]] = dataclasses.field(default_factory=dict)


def why_not_tileable(extractor: FeatureExtractor) -> str | None:
    """``None`` if :func:`geometry` can tile ``extractor``, else the reason in a few words."""
    if type(extractor).forward is not FeatureExtractor.forward:
        return f"{type(extractor).__name__} computes its features with its own forward pass"
    for name, module in extractor.layers.items():
        if isinstance(module, nn.modules.conv._ConvNd):
            if isinstance(module.padding, str):
                return f"layer {name!r} has padding={module.padding!r}"
        elif isinstance(module, _POOLS):
            if getattr(module, "ceil_mode", False) or any(_per_axis(module.padding, 1)):
                return f"pooling layer {name!r} uses ceil_mode or padding"
        elif not isinstance(module, _POINTWISE):
            return (
                f"layer {name!r} is a {type(module).__name__}, not a convolution, pooling or pointwise layer"
            )
    return None


def can_tile(extractor: FeatureExtractor) -> bool:
    """Whether tiled steps are exact for ``extractor`` (see :func:`why_not_tileable`)."""
    return why_not_tileable(extractor) is None


def geometry(extractor: FeatureExtractor, layers: Sequence[str]) -> Geometry:
    """Receptive-field halo and strides of ``extractor`` up to the deepest of ``layers``.

    Raises:
        OptionError: the extractor cannot be tiled exactly (see :func:`why_not_tileable`).

    """
    reason = why_not_tileable(extractor)
    if reason is not None:
        raise OptionError(f"tiled steps need a convolutional extractor: {reason}; use tile=None")
    dims = extractor.spatial_dims
    names = extractor.layer_names
    deepest = max(names.index(n) for n in layers)
    reach, jump = [0] * dims, [1] * dims
    strides: dict[str, tuple[int, ...]] = {}
    reaches: dict[str, tuple[int, ...]] = {}
    for name in names[: deepest + 1]:
        module = extractor.layers[name]
        if isinstance(module, (nn.modules.conv._ConvNd, *_POOLS)):
            kernel = _per_axis(module.kernel_size, dims)  # type: ignore[arg-type]
            stride = _per_axis(module.stride or module.kernel_size, dims)  # type: ignore[arg-type]
            dilation = _per_axis(getattr(module, "dilation", 1), dims)  # type: ignore[arg-type]
            padding = _per_axis(module.padding, dims)  # type: ignore[arg-type]
            for d in range(dims):  # output o reads inputs o*s - p ... o*s - p + dilation*(k - 1)
                span = dilation[d] * (kernel[d] - 1)
                reach[d] += max(padding[d], span - padding[d]) * jump[d]
                jump[d] *= stride[d]
        strides[name] = tuple(jump)
        reaches[name] = tuple(reach)
    halo = tuple(math.ceil(r / j) * j for r, j in zip(reach, jump, strict=True))
    return Geometry(halo=halo, stride=tuple(jump), strides=strides, reaches=reaches)


def tile_with_halo(
    extractor: FeatureExtractor, layers: Sequence[str], shape: Sequence[int], tile: Sequence[int]
) -> tuple[int, ...]:
    """The spatial shape of the largest input a tile of interior ``tile`` runs the extractor on."""
    geo = geometry(extractor, layers)
    interior = _round_tile(tile, geo.stride, shape)
    return tuple(min(n, t + 2 * h) for n, t, h in zip(shape, interior, geo.halo, strict=True))


def _round_tile(tile: Sequence[int], stride: Sequence[int], shape: Sequence[int]) -> tuple[int, ...]:
    if len(tile) != len(shape) or any(int(t) < 1 for t in tile):
        raise OptionError(
            f"tile must give one size >= 1 per spatial axis of {tuple(shape)}, got {tuple(tile)}"
        )
    return tuple(min(n, math.ceil(int(t) / s) * s) for t, s, n in zip(tile, stride, shape, strict=True))


@dataclass(frozen=True)
class Tile:
    """One tile: the input window it reads and where its interior lies.

    Attributes:
        window: slices of the input (interior plus halo, clipped at the borders).
        interior: ``(start, stop)`` per axis of the interior in input positions.
        offset: ``start - window start`` per axis (a multiple of the total stride).

    """

    window: tuple[slice, ...]
    interior: tuple[tuple[int, int], ...]
    offset: tuple[int, ...]


def tiles(shape: Sequence[int], tile: Sequence[int], geo: Geometry) -> list[Tile]:
    """Tiles of interior ``tile`` (rounded up to the stride) covering ``shape``."""
    interior = _round_tile(tile, geo.stride, shape)
    starts = [range(0, n, t) for n, t in zip(shape, interior, strict=True)]
    out = []
    for origin in itertools.product(*starts):
        bounds = tuple((a, min(n, a + t)) for a, n, t in zip(origin, shape, interior, strict=True))
        window = tuple(
            slice(max(0, a - h), min(n, b + h)) for (a, b), h, n in zip(bounds, geo.halo, shape, strict=True)
        )
        offset = tuple(a - int(w.start) for (a, _), w in zip(bounds, window, strict=True))
        out.append(Tile(window, bounds, offset))
    return out


def _layer_slices(tile: Tile, stride: Sequence[int], full: Sequence[int], shape: Sequence[int]) -> tuple:
    """Slices of the tile's features (and of the whole-input feature grid) that are its interior."""
    local, whole = [], []
    for (a, b), o, s, f, n in zip(tile.interior, tile.offset, stride, full, shape, strict=True):
        start = a // s
        stop = f if b >= n else b // s
        local.append(slice(o // s, o // s + stop - start))
        whole.append(slice(start, stop))
    return (slice(None), slice(None), *local), (slice(None), slice(None), *whole)


class TileableStatistic(Protocol):
    """A style statistic computed from tiles: accumulate, finish, then a linear surrogate per tile."""

    def accumulate(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> None:
        """Add one tile's interior ``features`` ``(1, C, *interior)`` (no autograd)."""

    def finish(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The style cost and ``{layer: dJ_style/dstatistic}`` from the accumulated statistics."""
        ...

    def linearised(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        """A scalar whose gradient w.r.t. this tile's ``features`` equals that of the style cost."""
        ...


class GramStatistic:
    r"""The Gram style cost :math:`\sum_l \lambda_l \|\hat G_l - T_l\|^2 / (4 C_l^2)` over tiles."""

    def __init__(self, targets: Mapping[str, torch.Tensor], layer_weights: Mapping[str, float]) -> None:
        self.targets = targets
        self.layer_weights = layer_weights
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, torch.Tensor] = {}
        self.slopes: dict[str, torch.Tensor] = {}

    def accumulate(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> None:
        """Add the tile's unnormalised (weighted) Gram and its number (weight) of positions."""
        gram = NF.gram_matrix(features, mask=weights)
        count = (
            torch.tensor(float(features[0, 0].numel()), device=features.device)
            if weights is None
            else weights.to(gram.dtype).sum()
        )
        self.sums[layer] = self.sums[layer] + gram if layer in self.sums else gram
        self.counts[layer] = self.counts[layer] + count if layer in self.counts else count

    def finish(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        r""":math:`J_{style}` and :math:`\partial J_{style} / \partial G_l` (unnormalised Gram)."""
        total = torch.zeros(())
        for layer, weight in self.layer_weights.items():
            count = self.counts[layer].clamp_min(1e-8)
            with torch.enable_grad():
                gram = (self.sums[layer] / count).requires_grad_(True)
                cost = weight * NF.style_cost_from_grams(gram, self.targets[layer])
                (slope,) = torch.autograd.grad(cost, gram)
            self.slopes[layer] = slope / count
            total = total + cost.detach().cpu()
        return total, self.slopes

    def linearised(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        r""":math:`\langle D_l, G_l^{tile} \rangle`."""
        gram = NF.gram_matrix(features, mask=weights)
        return (self.slopes[layer].to(gram.dtype) * gram).sum()


class MomentStatistic:
    r"""Any style statistic of additive moments (``mean-cov``...) over tiles.

    Pass 1 sums each layer's :class:`~ndstyle.functional.Moments` (count, :math:`\sum m a`,
    :math:`\sum m a a^\top`) over the tiles' interiors; :meth:`finish` evaluates
    ``cost_from_moments`` once and its gradient with respect to the sums; pass 2 back-propagates
    :math:`\langle \partial J/\partial M, M_{tile} \rangle` per tile: the exact gradient.
    """

    def __init__(
        self,
        statistic: Any,
        targets: Mapping[str, Any],
        layer_weights: Mapping[str, float],
    ) -> None:
        self.statistic = statistic
        self.targets = targets
        self.layer_weights = layer_weights
        self.sums: dict[str, NF.Moments] = {}
        self.slopes: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def accumulate(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> None:
        """Add one tile's moments."""
        m = NF.moments(features, mask=weights)
        self.sums[layer] = self.sums[layer] + m if layer in self.sums else m

    def finish(self) -> tuple[torch.Tensor, dict[str, Any]]:
        """:math:`J_{style}` and the slopes with respect to the first and second moment sums."""
        total = torch.zeros(())
        for layer, weight in self.layer_weights.items():
            m = self.sums[layer]
            with torch.enable_grad():
                first = m.first.detach().requires_grad_(True)
                second = m.second.detach().requires_grad_(True)
                moments = NF.Moments(m.count.detach(), first, second)
                cost = weight * self.statistic.cost_from_moments(moments, self.targets[layer])
                slope_first, slope_second = torch.autograd.grad(cost, (first, second))
            self.slopes[layer] = (slope_first, slope_second)
            total = total + cost.detach().cpu()
        return total, self.slopes

    def scale(self, factor: float) -> None:
        """Multiply the slopes by the style weight (pass 2 then back-propagates the weighted cost)."""
        self.slopes = {k: (a * factor, b * factor) for k, (a, b) in self.slopes.items()}

    def linearised(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        r""":math:`\langle D_1, \sum m a \rangle + \langle D_2, \sum m a a^\top \rangle` of the tile."""
        m = NF.moments(features, mask=weights)
        slope_first, slope_second = self.slopes[layer]
        return (slope_first.to(m.first.dtype) * m.first).sum() + (
            slope_second.to(m.second.dtype) * m.second
        ).sum()


class SortedStatistic:
    r"""A sorted style statistic (``histogram``, ``sliced-wasserstein``) over tiles.

    Its cost compares every position with the style's quantile at the position's *rank in the
    whole input*, so no per-tile sum gives it. Pass 1 writes each tile's interior features of every
    style layer into a float32 buffer of the whole layer's shape (:meth:`place`: the tiles'
    interiors partition it); :meth:`finish` evaluates the statistic once on that buffer, exactly
    as the untiled cost does (the same values in the same order, so even ties rank alike), and its
    gradient :math:`D`; pass 2 back-propagates :math:`\langle D_{tile}, F_{tile} \rangle` per
    tile: the exact gradient. Memory: one float32 value per position and channel of each style
    layer of the whole input, plus the statistic's sort workspace
    (:func:`ndstyle.memory.estimate_memory` counts both), not the activations' autograd graph.
    ``sliced-wasserstein`` draws its directions in :meth:`finish`, once per evaluation and layer in
    the untiled order, so a tiled run sees the directions an untiled one would.

    Args:
        statistic: the loss's :class:`~ndstyle.losses.StyleStatistic`.
        targets: its style targets per layer.
        layer_weights: the style layers and their weights.
        shapes: every style layer's spatial shape for the whole input.
        masks: every style layer's position weights ``(1, 1, *shape)`` for the whole input, or None.

    """

    def __init__(
        self,
        statistic: Any,
        targets: Mapping[str, Any],
        layer_weights: Mapping[str, float],
        shapes: Mapping[str, Sequence[int]],
        masks: Mapping[str, torch.Tensor | None],
    ) -> None:
        self.statistic = statistic
        self.targets = targets
        self.layer_weights = layer_weights
        self.shapes = shapes
        self.masks = masks
        self.features: dict[str, torch.Tensor] = {}
        self.slopes: dict[str, torch.Tensor] = {}
        self.region: tuple = ()

    def place(self, region: tuple) -> None:
        """Where the next tile's interior lies in the whole layer grid (``(:, :, *slices)``)."""
        self.region = region

    def accumulate(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> None:
        """Write one tile's interior features ``(1, C, *interior)`` at the placed region."""
        dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
        if layer not in self.features:
            shape = (1, features.shape[1], *self.shapes[layer])
            self.features[layer] = torch.zeros(shape, dtype=dtype, device=features.device)
        self.features[layer][self.region] = features.detach().to(dtype)

    def finish(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """:math:`J_{style}` of the whole input and its gradient :math:`D` on each layer's features."""
        total = torch.zeros(())
        for layer, weight in self.layer_weights.items():
            with torch.enable_grad():
                whole = self.features.pop(layer).requires_grad_(True)
                cost = weight * self.statistic.cost(whole, self.targets[layer], self.masks.get(layer))
                (slope,) = torch.autograd.grad(cost, whole)
            self.slopes[layer] = slope
            total = total + cost.detach().cpu()
        return total, self.slopes

    def scale(self, factor: float) -> None:
        """Multiply the slopes by the style weight (pass 2 then back-propagates the weighted cost)."""
        self.slopes = {k: d * factor for k, d in self.slopes.items()}

    def linearised(self, layer: str, features: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        r""":math:`\langle D_{tile}, F_{tile} \rangle` at the placed region."""
        slope = self.slopes[layer][self.region]
        return (slope * features.to(slope.dtype)).sum()


#: The statistics whose cost ranks every position (tiled with :class:`SortedStatistic`).
SORTED_STATISTICS = ("histogram", "sliced-wasserstein")


def statistic_name(loss: PerceptualLoss) -> str:
    """The name of ``loss``'s style statistic (``"gram"``, ``"mean-cov"``...)."""
    return str(getattr(getattr(loss, "statistic", None), "name", "gram"))


def statistic_of(
    loss: PerceptualLoss,
    shapes: Mapping[str, Sequence[int]] | None = None,
    masks: Mapping[str, torch.Tensor | None] | None = None,
) -> TileableStatistic:
    """The tileable form of ``loss``'s style statistic, or a clear refusal.

    ``shapes`` and ``masks`` (each style layer's whole-input spatial shape and position weights)
    are what a sorted statistic needs to rank the whole input; :class:`TiledCost` gives them.
    """
    kind = statistic_name(loss)
    if kind == "gram":
        return GramStatistic(loss.style_targets, loss.style_layer_weights)
    statistic = getattr(loss, "statistic", None)
    if statistic is not None and kind in SORTED_STATISTICS:
        return SortedStatistic(
            statistic, loss.style_targets, loss.style_layer_weights, shapes or {}, masks or {}
        )
    if statistic is None or not getattr(statistic, "additive", False):
        raise OptionError(
            f"tiled steps need a style statistic of additive moments (gram, mean-cov) or a sorted one "
            f"({', '.join(SORTED_STATISTICS)}), not {kind!r}; use tile=None or a smaller input"
        )
    return MomentStatistic(statistic, loss.style_targets, loss.style_layer_weights)


def can_tile_statistic(loss: PerceptualLoss) -> bool:
    """Whether ``loss``'s style statistic can be evaluated over tiles (moments or sorted values)."""
    kind = statistic_name(loss)
    return (
        kind == "gram"
        or kind in SORTED_STATISTICS
        or bool(getattr(getattr(loss, "statistic", None), "additive", False))
    )


class TiledCost:
    """:math:`J` of a :class:`~ndstyle.losses.PerceptualLoss` and its gradient, tile by tile.

    Args:
        loss: the cost with its targets set (content targets are recomputed per tile, from
            ``content``, so the whole-input content features are never held).
        content: the level's content ``(1, C, *shape)``.
        tile: interior size per axis (rounded up to the extractor's total stride).

    """

    def __init__(self, loss: PerceptualLoss, content: torch.Tensor, tile: Sequence[int]) -> None:
        self.loss = loss
        self.shape = tuple(content.shape[2:])
        self.geometry = geometry(loss.extractor, loss.layers)
        self.tiles = tiles(self.shape, tile, self.geometry)
        self.full = _feature_shapes(loss.extractor, loss.layers, self.shape)
        regions = {layer: loss.layer_mask(layer) for layer in loss.style_layer_weights}
        self.mask_weights = {
            layer: None if region is None else NF.resize_mask(region, self.full[layer])
            for layer, region in regions.items()
        }
        self.content_targets = [self._content_targets(content, t) for t in self.tiles]
        statistic_of(loss)  # refuse early

    def _views(self, tile: Tile, layer: str) -> tuple[tuple, tuple]:
        return _layer_slices(tile, self.geometry.strides[layer], self.full[layer], self.shape)

    @torch.no_grad()
    def _content_targets(self, content: torch.Tensor, tile: Tile) -> dict[str, torch.Tensor]:
        if not self.loss.content_layers:
            return {}
        feats = self.loss.features(
            content[(slice(None), slice(None), *tile.window)], self.loss.content_layers
        )
        return {k: v[self._views(tile, k)[0]].float() for k, v in feats.items()}

    def _tile_terms(
        self, window: torch.Tensor, index: int, statistic: TileableStatistic, *, accumulate: bool
    ) -> torch.Tensor:
        """Content cost of a tile's interior (+ its linearised style cost unless ``accumulate``).

        ``window`` is the tile's input window ``(1, C, *window)`` cut from the input.
        """
        tile = self.tiles[index]
        feats = self.loss.features(window)
        content = torch.zeros((), device=window.device)
        for layer in self.loss.content_layers:
            local, _ = self._views(tile, layer)
            mine = feats[layer][local]
            dtype = torch.float64 if mine.dtype == torch.float64 else torch.float32
            diff = mine.to(dtype) - self.content_targets[index][layer].to(dtype)
            positions = math.prod(self.full[layer])
            channels = feats[layer].shape[1]
            content = content + diff.pow(2).sum() / (4 * channels * positions) / len(self.loss.content_layers)
        style = torch.zeros((), device=window.device)
        for layer in self.loss.style_layer_weights:
            local, whole = self._views(tile, layer)
            weights = self.mask_weights[layer]
            w = weights[whole] if weights is not None else None
            if isinstance(statistic, SortedStatistic):
                statistic.place(whole)
            if accumulate:
                statistic.accumulate(layer, feats[layer][local], w)
            else:
                style = style + statistic.linearised(layer, feats[layer][local], w)
        return content if accumulate else self.loss.content_weight * content + style

    def value(self, x: torch.Tensor) -> tuple[CostTerms, TileableStatistic]:
        """Pass 1 (no autograd): :math:`J` of ``x`` ``(1, C, *shape)`` and the finished statistic."""
        statistic = statistic_of(self.loss, self.full, self.mask_weights)
        content = torch.zeros(())
        with torch.no_grad():
            for index, tile in enumerate(self.tiles):
                window = x[(slice(None), slice(None), *tile.window)]
                content = content + self._tile_terms(window, index, statistic, accumulate=True).cpu()
            style, _ = statistic.finish()
            tv = NF.total_variation(x).cpu() if self.loss.tv_weight else torch.zeros(())
        total = self.loss.content_weight * content + self.loss.style_weight * style + self.loss.tv_weight * tv
        return CostTerms(content=content, style=style, tv=tv, total=total), statistic

    def backward(self, z: torch.Tensor) -> CostTerms:
        """:math:`J` of ``z`` and its gradient, back-propagated through ``z``'s autograd graph."""
        terms, grad = self.gradient(z.detach())
        z.backward(grad)
        return terms

    def measure(self, x: torch.Tensor, term: str) -> tuple[float, float]:
        r""":math:`J_{term}(x)` and :math:`\|\nabla_x J_{term}\|` (``"content"`` or ``"style"``), unweighted.

        What :func:`ndstyle.losses.calibrate_weights` measures, without the whole input's activations.
        """
        weights = self.loss.content_weight, self.loss.style_weight, self.loss.tv_weight
        try:
            self.loss.content_weight = 1.0 if term == "content" else 0.0
            self.loss.style_weight = 1.0 if term == "style" else 0.0
            self.loss.tv_weight = 0.0
            terms, grad = self.gradient(x.detach())
        finally:
            self.loss.content_weight, self.loss.style_weight, self.loss.tv_weight = weights
        value = terms.content if term == "content" else terms.style
        return float(value), float(grad.float().norm())

    def gradient(self, leaf: torch.Tensor) -> tuple[CostTerms, torch.Tensor]:
        r""":math:`J` of ``leaf`` ``(1, C, *shape)`` and :math:`\nabla J`, the exact whole-input gradient."""
        terms, statistic = self.value(leaf)
        grad = torch.zeros_like(leaf)
        self._scale_slopes(statistic)
        for index, tile in enumerate(self.tiles):
            part = leaf[(slice(None), slice(None), *tile.window)].clone().requires_grad_(True)
            surrogate = self._tile_terms(part, index, statistic, accumulate=False)
            (g,) = torch.autograd.grad(surrogate, part)
            grad[(slice(None), slice(None), *tile.window)] += g
        if self.loss.tv_weight:
            with torch.enable_grad():
                tv_leaf = leaf.clone().requires_grad_(True)
                (g,) = torch.autograd.grad(self.loss.tv_weight * NF.total_variation(tv_leaf), tv_leaf)
            grad += g
        return terms, grad

    def _scale_slopes(self, statistic: TileableStatistic) -> None:
        if isinstance(statistic, (MomentStatistic, SortedStatistic)):
            statistic.scale(self.loss.style_weight)
            return
        slopes = getattr(statistic, "slopes", None)
        if slopes is not None:
            for layer in slopes:
                slopes[layer] = slopes[layer] * self.loss.style_weight


def _feature_shapes(
    extractor: FeatureExtractor, layers: Sequence[str], shape: Sequence[int]
) -> dict[str, tuple[int, ...]]:
    """Spatial shape of every layer's activation for an input of ``shape`` (no computation)."""
    sizes = list(shape)
    out: dict[str, tuple[int, ...]] = {}
    names = extractor.layer_names
    dims = len(sizes)
    for name in names[: 1 + max(names.index(n) for n in layers)]:
        module = extractor.layers[name]
        if isinstance(module, (nn.modules.conv._ConvNd, *_POOLS)):
            kernel = _per_axis(module.kernel_size, dims)  # type: ignore[arg-type]
            stride = _per_axis(module.stride or module.kernel_size, dims)  # type: ignore[arg-type]
            padding = _per_axis(module.padding, dims)  # type: ignore[arg-type]
            dilation = _per_axis(getattr(module, "dilation", 1), dims)  # type: ignore[arg-type]
            sizes = [
                (n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, k, s, p, d in zip(sizes, kernel, stride, padding, dilation, strict=True)
            ]
        out[name] = tuple(sizes)
    return out


def iter_windows(x: torch.Tensor, cost: TiledCost) -> Iterator[torch.Tensor]:
    """The input windows of ``cost``'s tiles (for inspection and tests)."""
    for tile in cost.tiles:
        yield x[(slice(None), slice(None), *tile.window)]
