r"""Gram-feature embeddings, the contrastive training objective, and the validation metric.

A crop's *Gram embedding* concatenates, over the extractor's style layers, the upper triangle of
the per-position Gram matrix :math:`\hat G = G / N` after a signed square root (which tames the
heavy-tailed scale of second moments), centred on the mean over the set of crops compared, each
layer scaled to equal weight, and L2-normalised. These are exactly the statistics the
style cost compares, so making crops of one file (or label) close and crops of different files far
apart teaches the network which texture statistics matter in the data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..extractors.base import FeatureExtractor
from ..functional import gram_matrix


def gram_statistics(
    extractor: FeatureExtractor, x: torch.Tensor, layers: Sequence[str]
) -> list[torch.Tensor]:
    """Signed-square-root per-position Gram matrices (upper triangles), one tensor per layer.

    Args:
        extractor: the network.
        x: crops ``(B, C, *spatial)``.
        layers: layers whose Grams are used.

    Returns:
        ``[(B, C_l (C_l + 1) / 2) for each layer]``.

    """
    feats = extractor(x, list(layers))
    parts = []
    for name in layers:
        gram = gram_matrix(feats[name], normalize=True)  # (B, C, C)
        rows, cols = torch.triu_indices(gram.shape[-1], gram.shape[-1], device=gram.device)
        flat = gram[:, rows, cols]
        # a floor relative to the crop's mean energy keeps the map 1-homogeneous: scaling the
        # features by c scales every entry by exactly c, which embed_set then removes.
        floor = 1e-6 * gram.diagonal(dim1=1, dim2=2).mean(1, keepdim=True) + 1e-30
        parts.append(flat.sign() * (flat.abs() + floor).sqrt())
    return parts


def embed_set(statistics: Sequence[torch.Tensor]) -> torch.Tensor:
    """Unit-norm embeddings of a set of crops from their per-layer Gram statistics.

    Each layer's statistics are centred on the set's mean (the style cost compares Gram
    *differences*, so the large component that all crops share carries no information) and divided
    by their mean deviation norm, so that every layer counts equally; the layers are concatenated
    and each row is L2-normalised.

    Args:
        statistics: from :func:`gram_statistics`, ``[(B, D_l)]``.

    Returns:
        ``(B, sum_l D_l)`` with unit-norm rows.

    """
    parts = []
    for flat in statistics:
        centred = flat - flat.mean(0, keepdim=True)
        parts.append(centred / centred.norm(dim=1).mean().clamp_min(1e-12))
    return F.normalize(torch.cat(parts, dim=1), dim=1)


def gram_embedding(extractor: FeatureExtractor, x: torch.Tensor, layers: Sequence[str]) -> torch.Tensor:
    """:func:`embed_set` of :func:`gram_statistics`: unit-norm ``(B, D)`` embeddings of a batch."""
    return embed_set(gram_statistics(extractor, x, layers))


def supervised_info_nce(
    embeddings: torch.Tensor, groups: torch.Tensor, temperature: float = 0.5
) -> torch.Tensor:
    r"""InfoNCE with several positives (Khosla et al. 2020): same group = positive pair.

    For each anchor :math:`i` with positives :math:`P(i)` (other items of its group),
    :math:`\ell_i = -\frac{1}{|P(i)|}\sum_{p\in P(i)} \log
    \frac{\exp(s_{ip}/\tau)}{\sum_{j\ne i}\exp(s_{ij}/\tau)}` with cosine similarities
    :math:`s`; the loss is the mean over anchors that have a positive.

    Args:
        embeddings: ``(B, D)`` unit-norm rows.
        groups: ``(B,)`` integer group of each row.
        temperature: :math:`\tau`.

    Returns:
        A scalar tensor.

    """
    sims = embeddings @ embeddings.T / temperature
    eye = torch.eye(len(groups), dtype=torch.bool, device=sims.device)
    sims = sims.masked_fill(eye, float("-inf"))
    log_prob = sims - torch.logsumexp(sims, dim=1, keepdim=True)
    positive = (groups[:, None] == groups[None, :]) & ~eye
    count = positive.sum(1)
    has = count > 0
    per_anchor = -(log_prob.masked_fill(~positive, 0.0).sum(1)[has] / count[has])
    return per_anchor.mean()


@torch.no_grad()
def nearest_neighbour_accuracy(
    embeddings: torch.Tensor, groups: torch.Tensor, exclude: torch.Tensor | None = None
) -> float:
    """Leave-one-out 1-NN identification accuracy (does each nearest other row share the group?).

    Args:
        embeddings: ``(B, D)`` unit-norm rows.
        groups: ``(B,)`` integer groups.
        exclude: optional ``(B,)`` ids (e.g. source files): rows with the same id are not
            candidates for each other's nearest neighbour.

    Returns:
        The fraction of rows whose nearest neighbour (cosine) is of the same group.

    """
    sims = embeddings @ embeddings.T
    sims.fill_diagonal_(float("-inf"))
    if exclude is not None:
        sims = sims.masked_fill(exclude[:, None] == exclude[None, :], float("-inf"))
    nearest = sims.argmax(1)
    return float((groups[nearest] == groups).double().mean())


def band_spectra(x: torch.Tensor, bands: int = 16) -> torch.Tensor:
    r"""Log power spectra of crops in radial frequency bands (any number of spatial axes).

    The power :math:`|\mathrm{FFT}(x - \bar x)|^2` over the spatial axes (per crop and channel,
    mean removed) is averaged in ``bands`` equal-width bins of the radial frequency
    :math:`|k| \in [0, 0.5\sqrt{d}]` (cycles per sample) and taken in dB.

    Args:
        x: crops ``(B, C, *spatial)``.
        bands: number of radial bins.

    Returns:
        ``(B, C * bands)`` in dB (a bin without any frequency holds the floor).

    """
    dims = x.ndim - 2
    axes = tuple(range(2, x.ndim))
    centred = x - x.mean(axes, keepdim=True)
    power = torch.fft.rfftn(centred, dim=axes).abs().pow(2).flatten(2)  # (B, C, F)
    grids = [torch.fft.fftfreq(n) for n in x.shape[2:-1]] + [torch.fft.rfftfreq(x.shape[-1])]
    radius = torch.stack(torch.meshgrid(*grids, indexing="ij")).pow(2).sum(0).sqrt().flatten()
    index = (radius / (0.5 * dims**0.5) * bands).long().clamp_max(bands - 1).to(x.device)
    sums = torch.zeros(*power.shape[:2], bands, dtype=power.dtype, device=x.device)
    sums.index_add_(2, index, power)
    counts = torch.bincount(index, minlength=bands).clamp_min(1).to(power.dtype)
    mean_power = sums / counts
    floor = 1e-10 * mean_power.amax(2, keepdim=True) + 1e-30
    return (10 * torch.log10(mean_power + floor)).flatten(1)


def pairwise_correlation(embeddings: torch.Tensor, descriptors: torch.Tensor) -> torch.Tensor:
    r"""Pearson correlation, over all pairs of crops, of embedding and descriptor distances.

    Embedding distance is the cosine distance :math:`1 - e_i \cdot e_j`; descriptor distance is
    the mean absolute difference (e.g. dB between :func:`band_spectra`). A value near 1 means
    crops whose Gram statistics are close also have close spectra.

    Args:
        embeddings: ``(B, D)`` unit-norm rows.
        descriptors: ``(B, K)``.

    Returns:
        A scalar tensor in [-1, 1].

    """
    rows, cols = torch.triu_indices(len(embeddings), len(embeddings), offset=1, device=embeddings.device)
    gram_distance = 1 - (embeddings[rows] * embeddings[cols]).sum(1)
    target = (descriptors[rows] - descriptors[cols]).abs().mean(1).to(gram_distance)
    a = gram_distance - gram_distance.mean()
    b = target - target.mean()
    return (a * b).sum() / (a.norm() * b.norm()).clamp_min(1e-12)
