r"""Loss modules: they hold configuration and targets and call :mod:`ndstyle.functional`.

:class:`PerceptualLoss` is the whole cost :math:`J = \\alpha J_{content} + \\beta J_{style} +
\\gamma TV` of one transfer: targets are computed once (:meth:`PerceptualLoss.set_content`,
:meth:`PerceptualLoss.set_styles`) and each call costs one forward pass of the extractor.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from . import functional as NF
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
    ) -> None:
        super().__init__()
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
        self.style_targets: dict[str, torch.Tensor] = {}
        self.mask: torch.Tensor | None = None

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
    def style_grams(self, style: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Per-position Gram matrices of ``style`` ``(1, C, *spatial)`` at the style layers.

        ``mask`` ``(1, 1, *spatial)`` in [0, 1] restricts them to a region of the style (e.g. its
        brain, so it is compared with the content's brain and not with air and skull).
        """
        feats = self.features(style, list(self.style_layer_weights))
        # extractors that fold a style into several items (2.5-D slices) give one Gram per item:
        # their mean is the style's (a target (1, C, C) for every generated item)
        return {
            k: NF.gram_matrix(v, normalize=True, mask=mask).mean(0, keepdim=True) for k, v in feats.items()
        }

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
        grams = [self.style_grams(s, m) for s, m in zip(styles, region, strict=True)]
        self.style_targets = NF.blend_grams(grams, weights)

    def set_mask(self, mask: torch.Tensor | None) -> None:
        """Restrict the style statistics of the generated input to a region ``(1, 1, *spatial)``."""
        self.mask = mask

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
            style = NF.layered_style_cost(feats, self.style_targets, self.style_layer_weights, mask=self.mask)
        tv = NF.total_variation(x) if self.tv_weight else zero
        total = self.content_weight * content + self.style_weight * style + self.tv_weight * tv
        return CostTerms(content=content, style=style, tv=tv, total=total)
