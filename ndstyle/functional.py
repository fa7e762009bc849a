r"""The N-D mathematics of neural style transfer, as pure functions.

All functions take activations shaped ``(B, C, N_1, ..., N_D)`` with ``D`` in 1, 2, 3 and treat
every spatial axis alike: they flatten the spatial axes instead of indexing them, so one code path
serves waveforms, images and volumes. With :math:`C` channels and :math:`N = \prod_d N_d`
positions (the seeds' :math:`n_H n_W` generalised):

- Gram matrix: :math:`G_{kk'} = \sum_p a_{pk} a_{pk'}`;
- content cost: :math:`J_{content} = \frac{1}{4CN}\sum (a^{(C)} - a^{(G)})^2`;
- style cost of one layer: :math:`J^{l}_{style} = \frac{1}{(2CN)^2}\|G^{(S)} - G^{(G)}\|_F^2`.

See ``docs/theory.md`` for the derivation and the note on inputs of different sizes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ._checks import spatial_dims_of
from .errors import ShapeError

_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def gram_matrix(
    features: torch.Tensor, *, normalize: bool = False, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Gram matrix of channel correlations over all spatial positions.

    Args:
        features: activations ``(B, C, *spatial)``.
        normalize: divide by the number of positions :math:`N` (or by the mask's sum), giving the
            per-position Gram :math:`\hat G = G / N` that is comparable across sizes.
        mask: optional weights ``(B or 1, 1, *spatial')`` in ``[0, 1]``; resized to the feature
            grid. Positions are weighted by it (a region-restricted Gram).

    Returns:
        ``(B, C, C)`` in float32 (or float64 if ``features`` is float64): the sum over positions
        of :math:`a_k a_{k'}`.

    Examples:
        >>> gram_matrix(torch.ones(1, 2, 3, 4))[0]
        tensor([[12., 12.],
                [12., 12.]])

    """
    spatial_dims_of(features, "features")
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    flat = features.flatten(2)  # (B, C, N)
    if mask is None:
        gram = _SymmetricGram.apply(flat, None, dtype)
        return gram / flat.shape[-1] if normalize else gram
    weights = resize_mask(mask, features.shape[2:]).flatten(2).to(dtype)  # (B|1, 1, N)
    if weights.requires_grad:  # a learned mask: let autograd differentiate the weights too
        values = flat.to(dtype)
        gram = (values * weights) @ values.transpose(1, 2)
    else:
        gram = _SymmetricGram.apply(flat, weights, dtype)
    if normalize:
        gram = gram / weights.sum(dim=-1, keepdim=True).clamp_min(1e-8)
    return gram


class _SymmetricGram(torch.autograd.Function):
    r""":math:`G = F W F^T` for ``F`` ``(B, C, N)`` and optional position weights ``W`` ``(B|1, 1, N)``.

    Autograd would differentiate ``F @ F.T`` through both factors (two ``(C, C) @ (C, N)`` products
    and a sum of two ``(B, C, N)`` gradients); since :math:`\partial G / \partial F` is symmetric in
    the two factors, :math:`\bar F = (\bar G + \bar G^T) F W` needs one product. The forward
    product is taken in ``dtype`` (float32 or float64, whatever the features' dtype, e.g. bfloat16
    under autocast); the backward product is taken in the features' dtype, the precision their
    gradient has anyway. Only ``F`` receives a gradient.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, flat: torch.Tensor, weights: torch.Tensor | None, dtype: torch.dtype
    ) -> torch.Tensor:
        ctx.save_for_backward(flat, weights)
        with torch.autocast(flat.device.type, enabled=False):
            values = flat.to(dtype)
            left = values if weights is None else values * weights
            return left @ values.transpose(1, 2)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:  # type: ignore[override]
        flat, weights = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        with torch.autocast(flat.device.type, enabled=False):
            symmetric = (grad + grad.transpose(1, 2)).to(flat.dtype)
            grad_flat = symmetric @ flat
            if weights is not None:
                grad_flat = grad_flat * weights.to(flat.dtype)
        return grad_flat, None, None


def resize_mask(mask: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize a weight mask ``(B, 1, *spatial)`` to ``size`` by area averaging (any dims)."""
    if tuple(mask.shape[2:]) == tuple(size):
        return mask
    return F.interpolate(mask, size=tuple(int(n) for n in size), mode="area")


def content_cost(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r"""Content cost :math:`\frac{1}{4CN}\sum(a^{(C)}-a^{(G)})^2`, averaged over the batch.

    Args:
        generated: activations of the generated input ``(B, C, *spatial)``.
        target: activations of the content input, same shape (or batch 1, broadcast).

    Returns:
        A scalar tensor (float32 or float64).

    """
    _check_same_features(generated, target, "content")
    dtype = torch.float64 if generated.dtype == torch.float64 else torch.float32
    diff = generated.to(dtype) - target.to(dtype)
    channels, positions = generated.shape[1], generated[0, 0].numel()
    return diff.pow(2).flatten(1).sum(1).mean() / (4 * channels * positions)


def style_cost_from_grams(generated_gram: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    r"""Style cost of one layer from per-position Grams :math:`\hat G = G/N`.

    :math:`\frac{1}{4C^2}\|\hat G^{(S)} - \hat G^{(G)}\|_F^2`, which equals the seeds'
    :math:`\frac{1}{(2CN)^2}\|G^{(S)} - G^{(G)}\|_F^2` when both inputs have :math:`N` positions
    and stays meaningful when they do not. Averaged over the batch.
    """
    if generated_gram.shape[-2:] != target_gram.shape[-2:]:
        raise ShapeError(
            f"style Gram matrices differ in channels: {tuple(generated_gram.shape)} vs "
            f"{tuple(target_gram.shape)}"
        )
    channels = generated_gram.shape[-1]
    diff = generated_gram - target_gram.to(generated_gram.dtype)
    return diff.pow(2).flatten(1).sum(1).mean() / (4 * channels**2)


def style_cost(generated: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    r"""Style cost of one layer between two activations (sizes may differ).

    Args:
        generated: activations ``(B, C, *spatial)``.
        style: activations ``(B or 1, C, *spatial')``; its spatial size may differ.

    Returns:
        A scalar: :math:`\frac{1}{(2CN)^2}\|G^{(S)} - G^{(G)}\|_F^2` (see
        :func:`style_cost_from_grams`).

    """
    if generated.shape[1] != style.shape[1] or generated.ndim != style.ndim:
        raise ShapeError(
            f"style activations must have the same channels and spatial dims as the generated "
            f"ones: {tuple(style.shape)} vs {tuple(generated.shape)}"
        )
    return style_cost_from_grams(gram_matrix(generated, normalize=True), gram_matrix(style, normalize=True))


def layered_style_cost(
    generated: Mapping[str, torch.Tensor],
    targets: Mapping[str, torch.Tensor],
    layer_weights: Mapping[str, float],
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r""":math:`J_{style} = \sum_l \lambda_l J^{l}_{style}` against precomputed target Grams.

    Args:
        generated: ``{layer: activations (B, C, *spatial)}``.
        targets: ``{layer: per-position Gram (1, C, C)}`` of the style (see :func:`gram_matrix`).
        layer_weights: ``{layer: lambda_l}``.
        mask: optional region weights for the generated Grams (see :func:`gram_matrix`).

    """
    total = torch.zeros((), dtype=torch.float32, device=_device_of(generated))
    for layer, weight in layer_weights.items():
        gram = gram_matrix(generated[layer], normalize=True, mask=mask)
        total = total + weight * style_cost_from_grams(gram, targets[layer])
    return total


def total_variation(x: torch.Tensor) -> torch.Tensor:
    r"""Squared total variation summed over every spatial axis, averaged per element.

    :math:`TV(x) = \sum_d \operatorname{mean}\big((x_{i+e_d} - x_i)^2\big)` for ``x`` shaped
    ``(B, C, *spatial)`` with any number of spatial axes (axes of size 1 contribute 0).
    """
    dims = spatial_dims_of(x, "input")
    values = x if x.dtype == torch.float64 else x.float()
    total = torch.zeros((), dtype=values.dtype, device=x.device)
    for axis in range(2, 2 + dims):
        if x.shape[axis] > 1:
            total = total + torch.diff(values, dim=axis).pow(2).mean()
    return total


def resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(B, C, *spatial)`` to ``size`` on any number of spatial axes.

    Downsampling averages areas (no aliasing); upsampling interpolates (bi/tri)linearly.
    """
    dims = spatial_dims_of(x, "input")
    size = tuple(int(s) for s in size)
    if len(size) != dims:
        raise ShapeError(f"resize needs {dims} sizes for a {dims}-D input, got {size}")
    if tuple(x.shape[2:]) == size:
        return x
    if all(s <= n for s, n in zip(size, x.shape[2:], strict=True)):
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=_LINEAR_MODES[dims], align_corners=False)


def blend_grams(
    grams: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    r"""Weighted mean of several styles' Grams, layer by layer.

    Because the style cost is quadratic in the Gram, :math:`\sum_s w_s\|G_s - G\|^2` equals
    :math:`(\sum_s w_s)\|\bar G - G\|^2` plus a constant, with :math:`\bar G` this weighted mean:
    blending targets is the same optimisation as summing per-style costs, at the price of one.
    """
    total = float(sum(weights))
    return {
        layer: sum(w * g[layer] for g, w in zip(grams, weights, strict=True)) / total  # type: ignore[misc]
        for layer in grams[0]
    }


def _check_same_features(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    spatial_dims_of(a, f"{what} activations")
    if a.shape[1:] != b.shape[1:]:
        raise ShapeError(
            f"{what} activations must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _device_of(tensors: Mapping[str, torch.Tensor]) -> torch.device:
    return next(iter(tensors.values())).device
