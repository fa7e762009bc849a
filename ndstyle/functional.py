r"""The N-D mathematics of neural style transfer, as pure functions.

All functions take activations shaped ``(B, C, N_1, ..., N_D)`` with ``D`` in 1, 2, 3 and treat
every spatial axis alike: they flatten the spatial axes instead of indexing them, so one code path
serves waveforms, images and volumes. With :math:`C` channels and :math:`N = \prod_d N_d`
positions (the seeds' :math:`n_H n_W` generalised):

- Gram matrix: :math:`G_{kk'} = \sum_p a_{pk} a_{pk'}`;
- content cost: :math:`J_{content} = \frac{1}{4CN}\sum (a^{(C)} - a^{(G)})^2`;
- style cost of one layer: :math:`J^{l}_{style} = \frac{1}{(2CN)^2}\|G^{(S)} - G^{(G)}\|_F^2`.

Other style statistics, beside the Gram (``docs/theory.md`` gives formulas and sources):

- :func:`gaussian_w2_cost`: the Wasserstein-2 distance between the Gaussians with the features'
  mean and covariance (``mean-cov``);
- :func:`quantile_matching_cost` with random directions (``sliced-wasserstein``, Heitz et al. 2021)
  or the channel axes (``histogram``, Risser et al. 2017): the exact 1-D optimal transport of
  every projection of the feature distribution.

See ``docs/theory.md`` for the derivation and the note on inputs of different sizes.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._checks import spatial_dims_of
from .errors import OptionError, ShapeError

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


def erode_mask(mask: torch.Tensor, radius: Sequence[int]) -> torch.Tensor:
    """``mask`` ``(B, 1, *spatial)`` minus a border of ``radius[d]`` positions along each axis ``d``.

    A position keeps the smallest weight within ``radius`` of it (a separable minimum filter, any
    number of spatial axes); positions beyond the array's edge count as 0, so a position keeps its
    weight only when every input it reads lies inside the mask. Used to take style statistics only
    where a layer's receptive field lies inside the mask (``PerceptualLoss(mask_interior=True)``).
    """
    out = mask
    dims = mask.dim() - 2
    pools = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
    if dims not in pools or len(radius) != dims:
        raise ShapeError(
            f"erode_mask needs (B, 1, *spatial) with 1-3 axes and one radius per axis, got "
            f"{tuple(mask.shape)} and {tuple(radius)}"
        )
    for d, r in enumerate(radius):
        if r < 1:
            continue
        pad = [0, 0] * dims
        pad[2 * (dims - 1 - d)] = pad[2 * (dims - 1 - d) + 1] = int(r)
        kernel = [1] * dims
        kernel[d] = 2 * int(r) + 1
        # min filter = -max(-m); the padding's 0 weight makes the array's edge count as outside
        out = -pools[dims](-F.pad(out, pad, value=0.0), kernel_size=kernel, stride=1)
    return out


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


# -- mean and covariance: the Gaussian Wasserstein-2 distance ------------------------------------
def position_weights(features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor | None:
    """The mask resized to the feature grid and flattened: ``(B|1, 1, N)`` float32, or ``None``."""
    if mask is None:
        return None
    return resize_mask(mask, features.shape[2:]).flatten(2).float()


def mean_covariance(
    features: torch.Tensor, *, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-channel mean and channel covariance over all spatial positions (in float32).

    Args:
        features: activations ``(B, C, *spatial)`` (any dtype; statistics are float32, or float64
            for float64 features).
        mask: optional position weights ``(B|1, 1, *spatial')`` (resized to the features' grid).

    Returns:
        ``mean`` ``(B, C)`` and ``cov`` ``(B, C, C)``:
        :math:`\mu = \sum_p m_p a_p / \sum_p m_p`,
        :math:`\Sigma = \sum_p m_p a_p a_p^T / \sum_p m_p - \mu\mu^T` (the per-position Gram
        minus the outer product of the means, so the Gram's one-product gradient is reused).

    """
    spatial_dims_of(features, "features")
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    weights = position_weights(features, mask)
    if weights is None or not weights.requires_grad:
        mean, second = _MeanAndSecond.apply(features.flatten(2), weights, dtype)
    else:  # a learned mask: let autograd differentiate the weights too
        second = gram_matrix(features, normalize=True, mask=mask)
        flat, w = features.flatten(2).to(dtype), weights.to(dtype)
        mean = (flat * w).sum(-1) / w.sum(-1).clamp_min(1e-8)
    return mean, second - mean.unsqueeze(2) * mean.unsqueeze(1)


class _MeanAndSecond(torch.autograd.Function):
    r"""Mean :math:`\mu = F W 1 / \sum W` ``(B, C)`` and second moment :math:`F W F^T / \sum W` ``(B, C, C)``.

    One conversion of ``F`` ``(B, C, N)`` to ``dtype`` and one product forward; backward, one
    fused product-and-add in the features' dtype:
    :math:`\bar F = ((\bar S + \bar S^T) F + \bar\mu 1^T) W / \sum W` (autograd would add a
    float32 ``(B, C, N)`` broadcast of the mean's gradient and convert it). Weights ``W``
    ``(B|1, 1, N)`` (optional) receive no gradient.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, flat: torch.Tensor, weights: torch.Tensor | None, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.autocast(flat.device.type, enabled=False):
            values = flat.to(dtype)
            if weights is None:
                left = values
                total = torch.full((1, 1, 1), float(flat.shape[-1]), dtype=dtype, device=flat.device)
            else:
                left = values * weights.to(dtype)
                total = weights.to(dtype).sum(-1, keepdim=True).clamp_min(1e-8)  # (B|1, 1, 1)
            ctx.save_for_backward(flat, weights, total)
            return left.sum(-1) / total[..., 0], (left @ values.transpose(1, 2)) / total

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: Any, grad_mean: torch.Tensor | None, grad_second: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, None, None]:
        flat, weights, total = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None
        with torch.autocast(flat.device.type, enabled=False):
            b, c = flat.shape[0], flat.shape[1]
            shift = torch.zeros(b, c, 1, dtype=flat.dtype, device=flat.device)
            if grad_mean is not None:
                shift = (grad_mean.unsqueeze(-1) / total).to(flat.dtype).expand(b, c, 1)
            if grad_second is None:
                grad_flat = shift.expand_as(flat).clone()
            else:
                symmetric = ((grad_second + grad_second.transpose(1, 2)) / total).to(flat.dtype)
                grad_flat = torch.baddbmm(shift, symmetric, flat)
            if weights is not None:
                grad_flat = grad_flat * weights.to(flat.dtype)
        return grad_flat, None, None


def sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Square root of symmetric positive semi-definite matrices ``(..., C, C)`` (eigenvalues >= 0).

    Computed in float64 and returned in ``matrix``'s dtype.
    """
    m = matrix.to(torch.float64)
    values, vectors = torch.linalg.eigh((m + m.transpose(-1, -2)) / 2)
    root = (vectors * values.clamp_min(0).sqrt().unsqueeze(-2)) @ vectors.transpose(-1, -2)
    return root.to(matrix.dtype)


class _TraceSqrtm(torch.autograd.Function):
    r""":math:`\operatorname{tr}\sqrt{R\Sigma R}` (symmetric ``R``, PSD ``Σ`` ``(B, C, C)``), stable gradient.

    :math:`d\,\operatorname{tr}\sqrt{M} = \tfrac12 \operatorname{tr}(M^{-1/2} dM)` with
    :math:`M = R\Sigma R = V\Lambda V^T`, so
    :math:`\partial/\partial\Sigma = \tfrac12 (RV)\Lambda^{-1/2}(RV)^T`: two products forward,
    one eigendecomposition, two products backward (no eigenvector derivative). The inverse square
    root is taken on eigenvalues clamped to :math:`10^{-6}\lambda_{max}` (the covariance of ReLU
    features is often singular).
    """

    @staticmethod
    def forward(ctx: Any, cov: torch.Tensor, root: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        matrix = root @ cov @ root
        values, vectors = torch.linalg.eigh((matrix + matrix.transpose(-1, -2)) / 2)
        floor = values.amax(-1, keepdim=True).clamp_min(1e-12) * 1e-6
        ctx.save_for_backward(values.clamp_min(floor), vectors, root)
        return values.clamp_min(0).sqrt().sum(-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        values, vectors, root = ctx.saved_tensors
        left = root @ vectors
        inv_sqrt = (left * (0.5 / values.sqrt()).unsqueeze(-2)) @ left.transpose(-1, -2)
        return grad[:, None, None] * inv_sqrt, None


@dataclass(frozen=True)
class GaussianTarget:
    """Mean ``(1, C)``, covariance ``(1, C, C)`` and the covariance's square root of a style."""

    mean: torch.Tensor
    cov: torch.Tensor
    cov_sqrt: torch.Tensor

    @classmethod
    def from_moments(cls, mean: torch.Tensor, cov: torch.Tensor) -> GaussianTarget:
        """Build the target (and the square root the cost needs) from a mean and a covariance."""
        return cls(mean, cov, sqrtm_psd(cov.to(torch.float64)))


def blend_gaussians(targets: Sequence[GaussianTarget], weights: Sequence[float]) -> GaussianTarget:
    r"""Moments of the mixture of several styles' feature distributions (weights normalised).

    :math:`\bar\mu = \sum_s w_s\mu_s`,
    :math:`\bar\Sigma = \sum_s w_s(\Sigma_s + \mu_s\mu_s^T) - \bar\mu\bar\mu^T`: the same
    mixture whose second moment the Gram blend (:func:`blend_grams`) takes.
    """
    total = float(sum(weights))
    mean = sum(w * t.mean for t, w in zip(targets, weights, strict=True)) / total
    second = (
        sum(
            w * (t.cov + t.mean.unsqueeze(2) * t.mean.unsqueeze(1))
            for t, w in zip(targets, weights, strict=True)
        )
        / total
    )
    mean_t = torch.as_tensor(mean)
    return GaussianTarget.from_moments(
        mean_t, torch.as_tensor(second) - mean_t.unsqueeze(2) * mean_t.unsqueeze(1)
    )


def gaussian_w2_cost(
    generated: torch.Tensor, target: GaussianTarget, *, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Squared Wasserstein-2 distance between Gaussian fits, per channel, averaged over the batch.

    .. math::
        \frac1C\Big(\|\mu_G-\mu_S\|^2 + \operatorname{tr}\Sigma_G + \operatorname{tr}\Sigma_S
        - 2\operatorname{tr}\big(\Sigma_S^{1/2}\Sigma_G\Sigma_S^{1/2}\big)^{1/2}\Big)

    (Dowson & Landau 1982; used as a style loss by Kolkin et al. 2019 and style-transfer-pytorch).
    It is in the features' units squared, like the content cost, where the Gram cost is quartic.

    Args:
        generated: activations ``(B, C, *spatial)``.
        target: the style's :class:`GaussianTarget` (batch 1).
        mask: optional position weights for the generated statistics.

    """
    mean, cov = mean_covariance(generated, mask=mask)
    return gaussian_w2_from_moments(mean, cov, target)


def gaussian_w2_from_moments(mean: torch.Tensor, cov: torch.Tensor, target: GaussianTarget) -> torch.Tensor:
    """:func:`gaussian_w2_cost` from the generated mean ``(B, C)`` and covariance ``(B, C, C)``."""
    if mean.shape[-1] != target.mean.shape[-1]:
        raise ShapeError(f"style statistics have {target.mean.shape[-1]} channels, features {mean.shape[-1]}")
    root = target.cov_sqrt.to(torch.float64)  # eigenvalues near 0 need float64 (C <= 512: cheap)
    cross = _TraceSqrtm.apply(cov.to(torch.float64), root).to(cov.dtype)
    w2 = (
        (mean - target.mean.to(mean.dtype)).pow(2).sum(-1)
        + cov.diagonal(dim1=-2, dim2=-1).sum(-1)
        + target.cov.to(cov.dtype).diagonal(dim1=-2, dim2=-1).sum(-1)
        - 2 * cross
    )
    return w2.clamp_min(0).mean() / mean.shape[-1]


# -- additive moments: what tiles accumulate -------------------------------------------------------
@dataclass(frozen=True)
class Moments:
    """Weighted sums over positions: ``count`` ``(B,)``, ``first`` ``(B, C)``, ``second`` ``(B, C, C)``.

    Sums over disjoint tiles add up to the whole input's (``a + b``), so a tiled run can
    accumulate them without gradients, evaluate a moment-based cost (:meth:`ndstyle.losses.
    StyleStatistic.cost_from_moments`) and its gradient with respect to the moments once, and
    back-propagate each tile through the linear surrogate ``<dJ/dM, M_tile>``: the exact gradient.
    """

    count: torch.Tensor
    first: torch.Tensor
    second: torch.Tensor

    def __add__(self, other: Moments) -> Moments:
        return Moments(self.count + other.count, self.first + other.first, self.second + other.second)

    def mean_covariance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(B, C)`` and covariance ``(B, C, C)`` of the accumulated positions."""
        count = self.count.clamp_min(1e-8)
        mean = self.first / count[:, None]
        return mean, self.second / count[:, None, None] - mean.unsqueeze(2) * mean.unsqueeze(1)


def moments(features: torch.Tensor, *, mask: torch.Tensor | None = None) -> Moments:
    """Weighted count, sum and sum of outer products of activations ``(B, C, *spatial)`` (float32)."""
    spatial_dims_of(features, "features")
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    flat = features.flatten(2).to(dtype)
    weights = position_weights(features, mask)
    second = gram_matrix(features, mask=mask)
    if weights is None:
        count = torch.full((flat.shape[0],), float(flat.shape[-1]), dtype=dtype, device=flat.device)
        return Moments(count, flat.sum(-1), second)
    w = weights.to(dtype)
    return Moments(w.sum(-1).expand(flat.shape[0], 1)[:, 0], (flat * w).sum(-1), second)


# -- sorted (optimal transport) matching of 1-D projections ----------------------------------------
@dataclass(frozen=True)
class SampleTarget:
    """A style's features kept as samples: ``features`` ``(1, C, N_s)`` and each sample's weight.

    ``weights`` ``(N_s,)`` sum to 1 (several styles blended: the mixture, each style's samples
    weighted by its blend weight over its number of positions); ``uniform`` when they are all
    equal (the quantile function is then read by index, without a search). ``sorted_channels``
    optionally caches the channels' sorted values ``(C, N_s)`` (uniform weights only), which the
    per-channel histogram cost reuses at every step.
    """

    features: torch.Tensor
    weights: torch.Tensor
    uniform: bool = False
    sorted_channels: torch.Tensor | None = None


def sample_target(
    features: torch.Tensor, *, presort: bool = False, mask: torch.Tensor | None = None
) -> SampleTarget:
    """Keep a style's activations ``(1, C, *spatial)`` as float32 samples.

    Without ``mask`` every sample weighs the same (``presort`` then also keeps each channel's
    sorted values, for :func:`quantile_matching_cost` without directions). ``mask`` ``(1, 1,
    *spatial')`` (resized to the features' grid) weights each position: positions of weight 0 are
    dropped, the others carry their weight's share of the mass (a region of the style).
    """
    flat = features.flatten(2).float()
    if mask is not None:
        weights = position_weights(features, mask)
        assert weights is not None
        w = weights[0, 0].to(flat.device)
        keep = w > 0
        if not bool(keep.any()):
            raise OptionError("the style mask is empty at a style layer: no position has weight > 0")
        w = w[keep]
        if not bool(torch.allclose(w, w[:1].expand_as(w))):
            return SampleTarget(flat[:, :, keep], (w / w.sum()).float(), False, None)
        flat = flat[:, :, keep]
    n = flat.shape[-1]
    presorted = sort_rows(flat[0]) if presort else None
    return SampleTarget(flat, torch.full((n,), 1.0 / n, device=flat.device), True, presorted)


#: Below this many values a row-wise sort runs in one thread (splitting would cost more than it saves).
PARALLEL_SORT_MIN = 1 << 18


def _rows_in_threads(sort: Callable[[np.ndarray], np.ndarray], values: np.ndarray, dtype: Any) -> np.ndarray:
    """``sort`` (row-wise along the last axis) applied to blocks of rows on torch's CPU threads.

    NumPy's sorts run in one thread but release the GIL, so blocks of rows sort in parallel. Each
    row's result is the same as in one call (rows are independent), so the output is too.
    """
    rows = values.reshape(-1, values.shape[-1])
    threads = min(torch.get_num_threads(), rows.shape[0])
    if threads < 2 or rows.size < PARALLEL_SORT_MIN:
        return sort(values)
    out = np.empty(rows.shape, dtype=dtype)
    bounds = np.linspace(0, rows.shape[0], threads + 1).round().astype(int)

    def block(i: int) -> None:
        out[bounds[i] : bounds[i + 1]] = sort(rows[bounds[i] : bounds[i + 1]])

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(block, range(threads)))
    return out.reshape(values.shape)


def sort_rows(values: torch.Tensor) -> torch.Tensor:
    """Each row of ``values`` ``(..., N)`` sorted (no gradient).

    On the CPU NumPy's SIMD sort, blocks of rows on torch's threads (:func:`_rows_in_threads`).
    """
    if values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        array = values.detach().numpy()
        return torch.from_numpy(_rows_in_threads(lambda a: np.sort(a, axis=-1), array, array.dtype))
    return values.detach().sort(dim=-1).values


def argsort_rows(values: torch.Tensor) -> torch.Tensor:
    """The permutation sorting each row of ``values`` ``(..., N)`` (int64, no gradient).

    On the CPU NumPy's SIMD quicksort (AVX-512/AVX2, several times faster than ``torch.sort``),
    blocks of rows on torch's threads (:func:`_rows_in_threads`; 1.5x on 2 cores for a 64 x 174 592
    layer); deterministic for a given input, but ties are not ordered by position.
    """
    if values.device.type == "cpu" and values.dtype in (torch.float32, torch.float64):
        array = values.detach().numpy()
        order = _rows_in_threads(lambda a: np.argsort(a, axis=-1, kind="quicksort"), array, np.intp)
        return torch.from_numpy(order.astype(np.int64, copy=False))
    return values.detach().argsort(dim=-1)


def blend_samples(targets: Sequence[SampleTarget], weights: Sequence[float]) -> SampleTarget:
    """The mixture of several styles' samples, style ``s`` carrying ``w_s / sum(w)`` of the mass."""
    total = float(sum(weights))
    mass = torch.cat([t.weights * (w / total) for t, w in zip(targets, weights, strict=True)])
    uniform = bool(torch.allclose(mass, mass[:1].expand_as(mass), rtol=1e-6, atol=0))
    features = torch.cat([t.features for t in targets], dim=-1)
    presorted = None
    if uniform and any(t.sorted_channels is not None for t in targets):
        presorted = sort_rows(features[0])
    return SampleTarget(features, mass, uniform, presorted)


def random_directions(channels: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random unit vectors in channel space, ``(count, C)`` float32 (from ``generator``)."""
    directions = torch.randn(count, channels, generator=generator)
    return directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)


def quantile_matching_cost(
    generated: torch.Tensor,
    target: SampleTarget,
    directions: torch.Tensor | None = None,
    *,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Mean squared 1-D optimal-transport distance of projections of the feature distributions.

    Each projection :math:`v_p = d_p^T a` of the generated features is sorted and compared with
    the style's quantile function :math:`Q_p` at the same cumulative mass:
    :math:`\frac1P\sum_p \sum_i m_i (v_{p,(i)} - Q_p(t_i))^2 / \sum_i m_i` with
    :math:`t_i` the mid-point of position :math:`i`'s mass in sorted order. This is the squared
    1-D Wasserstein-2 distance of each projection, exact (no histogram bins) and defined for
    inputs of different sizes (the style's quantiles are interpolated).

    Args:
        generated: activations ``(B, C, *spatial)``.
        target: the style samples (:func:`sample_target`, :func:`blend_samples`).
        directions: ``(P, C)`` unit vectors (sliced Wasserstein, Heitz et al. 2021), or ``None``
            for the channel axes themselves (per-channel histogram matching, Risser et al. 2017).
        mask: optional position weights ``(B|1, 1, *spatial')`` for the generated distribution.

    Returns:
        A scalar (float32, float64 for float64 features), averaged over the batch.

    """
    spatial_dims_of(generated, "features")
    dtype = torch.float64 if generated.dtype == torch.float64 else torch.float32
    flat = generated.flatten(2).to(dtype)  # (B, C, N)
    style = target.features.to(dtype)  # (1, C, M)
    if style.shape[1] != flat.shape[1]:
        raise ShapeError(f"style samples have {style.shape[1]} channels, features {flat.shape[1]}")
    with torch.autocast(flat.device.type, enabled=False):
        if directions is not None:
            d = directions.to(device=flat.device, dtype=dtype)
            flat = d @ flat  # (B, P, N)
            style = d @ style  # (1, P, M)
        with torch.no_grad():
            # The sorted values' cost with the sort's permutation held fixed, written per position:
            # each position is compared with the style quantile at its rank (same value, same
            # gradient, no gather/scatter in the backward pass).
            order = argsort_rows(flat).to(flat.device)  # (B, P, N)
            style_order = None
            if directions is None and target.sorted_channels is not None:
                style_sorted = target.sorted_channels.to(device=flat.device, dtype=dtype)
            elif target.uniform:
                style_sorted = sort_rows(style[0]).to(device=flat.device, dtype=dtype)  # (P, M)
            else:
                style_order = argsort_rows(style[0]).to(flat.device)
                style_sorted = style[0].gather(-1, style_order)
            weights = position_weights(generated, mask)
            n = flat.shape[-1]
            w_rank = None
            if weights is None:
                t = ((torch.arange(n, device=flat.device, dtype=dtype) + 0.5) / n).expand(1, 1, n)
            else:
                w = weights.to(dtype).expand(flat.shape[0], flat.shape[1], -1)
                w_sorted = w.gather(-1, order)
                total = w_sorted.sum(-1, keepdim=True).clamp_min(1e-12)
                t = (w_sorted.cumsum(-1) - w_sorted / 2) / total
                w_rank = weights.to(dtype) / total  # (B, P, N) in position order
            if target.uniform:
                quantiles = _uniform_quantiles(style_sorted, t, same_grid=weights is None)
            else:
                assert style_order is not None  # presorted targets are uniform
                mass = target.weights.to(device=flat.device, dtype=dtype)[style_order]
                style_cdf = mass.cumsum(-1) - mass / 2  # (P, M), mid-points
                quantiles = _interpolate_rows(style_cdf, style_sorted, t.expand(flat.shape).contiguous())
            matched = torch.empty_like(flat).scatter_(-1, order, quantiles.expand(flat.shape))
        diff = (flat - matched).pow(2)
        per_projection = diff.mean(-1) if w_rank is None else (diff * w_rank).sum(-1)
    return per_projection.mean(-1).mean()


def _uniform_quantiles(style_sorted: torch.Tensor, t: torch.Tensor, *, same_grid: bool) -> torch.Tensor:
    """Quantiles of equally weighted sorted samples ``(P, M)`` at masses ``t`` (``(B|1, P|1, N)``).

    Sample ``j`` sits at mass ``(j + 1/2) / M``; between samples the quantile is linear. With
    ``same_grid`` (``t = (i + 1/2) / N``) and ``M == N`` it is the sorted samples themselves.
    """
    m = style_sorted.shape[-1]
    n = t.shape[-1]
    if same_grid and m == n:
        return style_sorted.unsqueeze(0)
    position = (t * m - 0.5).clamp(0, m - 1)
    low = position.floor().long().clamp(max=max(m - 2, 0))
    frac = (position - low.to(position.dtype)).clamp(0, 1)
    if t.shape[0] == 1 and t.shape[1] == 1:  # one grid for every row: pick columns, no gather
        below = style_sorted.index_select(-1, low[0, 0]).unsqueeze(0)  # (1, P, N)
        if m == 1:
            return below
        above = style_sorted.index_select(-1, low[0, 0] + 1).unsqueeze(0)
        return below + frac * (above - below)
    rows = style_sorted.unsqueeze(0)
    shape = (max(t.shape[0], 1), style_sorted.shape[0], n)
    low = low.expand(shape)
    frac = frac.expand(shape)
    below = rows.expand(shape[0], -1, -1).gather(-1, low)
    if m == 1:
        return below
    above = rows.expand(shape[0], -1, -1).gather(-1, low + 1)
    return below + frac * (above - below)


def _interpolate_rows(xp: torch.Tensor, fp: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear ``fp(xp)`` at ``x``, row by row.

    ``xp``, ``fp`` ``(P, M)`` increasing in ``xp``; ``x`` ``(B, P, N)``; values outside ``xp``'s
    range take the end values.
    """
    batch = x.shape[0]
    if xp.shape[-1] == 1:
        return fp[:, :1].unsqueeze(0).expand_as(x)
    xp_b = xp.unsqueeze(0).expand(batch, -1, -1).contiguous()
    fp_b = fp.unsqueeze(0).expand(batch, -1, -1)
    right = torch.searchsorted(xp_b, x.contiguous()).clamp(1, xp.shape[-1] - 1)
    left = right - 1
    x0, x1 = xp_b.gather(-1, left), xp_b.gather(-1, right)
    y0, y1 = fp_b.gather(-1, left), fp_b.gather(-1, right)
    frac = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return y0 + frac * (y1 - y0)


def _check_same_features(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    spatial_dims_of(a, f"{what} activations")
    if a.shape[1:] != b.shape[1:]:
        raise ShapeError(
            f"{what} activations must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _device_of(tensors: Mapping[str, torch.Tensor]) -> torch.device:
    return next(iter(tensors.values())).device
