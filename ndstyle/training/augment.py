"""Nuisance augmentations for the ``"mixtures"`` training objective (any number of spatial axes).

A crop of file A becomes ``mean + gain * ((a - mean) + r * rms(a)/rms(b) * (b - mean))``, flipped
along random spatial axes: another file's crop ``b`` is mixed in at ``r`` times A's level, the
contrast (loudness, window) changes by ``gain``, and the orientation is lost. The crop still
belongs to A (the dominant texture). Random filters' Gram statistics are pulled around by the
admixture and the gain, so telling the dominant texture of such crops is a task that random weights
do *not* already solve, unlike telling clean crops of different files apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Mixing:
    """Strength of the augmentations.

    Attributes:
        max_mix: the admixed crop's level relative to the dominant one is drawn from
            ``[0, max_mix]`` (RMS ratio after removing the mean; 0.7 is -3 dB).
        max_gain: contrast gain drawn log-uniformly from ``[1 / max_gain, max_gain]``.
        flip: flip each spatial axis with probability 1/2.

    """

    max_mix: float = 0.7
    max_gain: float = 2.0
    flip: bool = True


def mix_crops(
    crops: torch.Tensor,
    others: torch.Tensor,
    mean: torch.Tensor,
    generator: torch.Generator,
    mixing: Mixing = Mixing(),
    *,
    fixed_mix: float | None = None,
) -> torch.Tensor:
    """Augment each crop with another crop mixed in, a contrast gain and random flips.

    Args:
        crops: the dominant crops ``(B, C, *spatial)``.
        others: crops of other files/labels, same shape; ``others[i]`` is mixed into ``crops[i]``.
        mean: ``(C,)`` per-channel mean of the data (the gain acts around it).
        generator: the source of every random draw.
        mixing: strengths.
        fixed_mix: use this admixture level for every crop instead of drawing it (validation).

    Returns:
        ``(B, C, *spatial)`` augmented crops.

    """
    b, c = crops.shape[:2]
    dims = crops.ndim - 2
    centre = mean.to(crops).reshape(1, c, *([1] * dims))
    a, o = crops - centre, others - centre
    axes = tuple(range(1, crops.ndim))
    level = a.pow(2).mean(axes, keepdim=True).sqrt() / o.pow(2).mean(axes, keepdim=True).sqrt().clamp_min(
        1e-12
    )
    shape = (b,) + (1,) * (crops.ndim - 1)
    if fixed_mix is None:
        ratio = torch.rand(shape, generator=generator) * mixing.max_mix
    else:
        ratio = torch.full(shape, float(fixed_mix))
    log_gain = (torch.rand(shape, generator=generator) * 2 - 1) * torch.log(torch.tensor(mixing.max_gain))
    out = centre + log_gain.exp().to(crops) * (a + ratio.to(crops) * level * o)
    if mixing.flip:
        flips = torch.rand(b, dims, generator=generator) < 0.5
        out = torch.stack(
            [
                item.flip([1 + d for d in range(dims) if flips[i, d]]) if flips[i].any() else item
                for i, item in enumerate(out)
            ]
        )
    return out
