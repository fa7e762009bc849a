"""Judges of a stylised volume: what a neuroradiologist checks, measured inside the masks.

:func:`judge` returns a flat dictionary (JSON-friendly floats and bools):

- ``class_dice``: agreement of tissue classes. Each image is cut into ``classes`` intensity classes
  at *its own* quantiles inside the mask (so a monotone change of contrast is not penalised), and
  the mean Dice of the content's and the result's classes is reported (chance ~ 1 / classes);
- ``rank_corr``: Spearman rank correlation of result and content inside the mask;
- ``ssim``: structural similarity (3-D, 7-voxel box windows) inside the mask, each image scaled to
  its own 1st..99th percentile window;
- ``in_range_fraction``: fraction of all result voxels within ``[range_low, range_high]``, the range
  spanned by the content and the style (inside its mask); outside the content's mask the style's
  whole range counts too (its background, written there with ``--outside background``);
  ``negative_fraction`` where the content has no negative values (MR);
- ``hist_result`` / ``hist_content``: 1-D Wasserstein distance of the result's (content's)
  intensities inside the mask to the style's inside its foreground, in units of the style's
  1st..99th percentile width; ``hist_ratio`` = result / content (< 1: closer to the style);
- ``texture_result`` / ``texture_content``: relative Gram distance ``|G - G_s| / |G_s|`` to the
  style, averaged over three layers of a *judge network* that no transfer optimises (a seeded random
  Conv3d of other widths and seed than ``conv3d``; for a 2-D style image, a random Conv2d on the
  slices of all three orientations); ``texture_ratio`` = result / content;
- ``border_shift``: mean difference between the result and the content mapped onto the style's
  intensities on the mask's one-voxel inner border, in units of the style's 1..99 % width
  (< 0: a darker ring where the style meets the untouched voxels; no target, reported);
- the style's region (its mask, else its Otsu foreground) loses its far-out voxels
  (:func:`~ndstyle.volume_quality.inlier_mask`, Tukey's 3 IQR fence), exactly as the volume recipe
  does before it takes the style's statistics: the partial-volume skull-base bone and sinus air
  inside a CT brain mask (4 % of its voxels at 3 mm on a 77^3 grid, -174..261 HU against 4..42 HU
  for the rest) are not part of the brain's texture, and with them in the style's Gram the judge
  asked the result for bone specks that the recipe (bounded to the style's tissue range) rightly
  never makes. A T1 brain mask keeps every voxel; a 2-D style image is used whole;
- ``passes``: the targets of issue 15 (Dice >= 0.8, rank >= 0.85, all voxels in range, hist_ratio
  <= 0.5, texture_ratio <= 0.8).

Intensities are compared in the inputs' own units: where an input carries
``meta["normalization"]`` (the volume modality's exact intensity map) it is inverted first, and the
result is mapped back with the content's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import ShapeError
from ..volume_quality import STYLE_INLIER_FENCE, foreground, inlier_mask
from . import verdicts

#: Seed and widths of the judge network (deliberately not those of the ``conv3d`` extractor).
JUDGE_SEED = 20_151
JUDGE_WIDTHS = (24, 48, 96)
JUDGE_LAYERS = ("relu1_2", "relu2_2", "relu3_2")
#: Thresholds of issue 15.
TARGETS = {"class_dice": 0.8, "rank_corr": 0.85, "hist_ratio": 0.5, "texture_ratio": 0.8}


def _raw(x: Any, normalization: Any = None) -> tuple[np.ndarray, Any]:
    """``(C, *spatial)`` float64 intensities of a tensor, array or Loaded-like object, and its map."""
    meta = getattr(x, "meta", None)
    tensor = getattr(x, "tensor", x)
    values = (
        tensor.detach().cpu().double().numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    )
    values = np.asarray(values, dtype=np.float64)
    norm = normalization if normalization is not None else (meta or {}).get("normalization")
    if norm is not None and hasattr(norm, "inverse"):
        values = norm.inverse(values)
    return values, norm


def _as_mask(mask: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    m = np.squeeze(m) if m.ndim > len(shape) else m
    if tuple(m.shape) != shape:
        raise ShapeError(f"{what} has shape {tuple(m.shape)}, expected the grid {shape}")
    return np.asarray(m > 0.5, dtype=bool)


def quantile_classes(values: np.ndarray, classes: int) -> np.ndarray:
    """Class index 0..classes-1 of each value, cut at the sample's own quantiles (ties broken by rank)."""
    order = np.argsort(values, kind="stable")
    labels = np.empty(values.shape, dtype=np.int64)
    labels[order] = np.arange(values.size) * classes // max(values.size, 1)
    return labels


def class_dice(a: np.ndarray, b: np.ndarray, classes: int = 3) -> float:
    """Mean Dice of the quantile classes of two samples of equal size (1 for any monotone map)."""
    la, lb = quantile_classes(a, classes), quantile_classes(b, classes)
    scores = []
    for k in range(classes):
        x, y = la == k, lb == k
        total = x.sum() + y.sum()
        scores.append(2.0 * np.logical_and(x, y).sum() / total if total else 1.0)
    return float(np.mean(scores))


def rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two samples."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(spearmanr(a, b).statistic)


def _window(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(x[mask], (1, 99))
    return (x - lo) / (hi - lo if hi > lo else 1.0)


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray, size: int = 7) -> float:
    """Mean SSIM inside ``mask`` of two ``(*spatial)`` images, each scaled to its own 1..99 % window."""
    from scipy.ndimage import uniform_filter

    x, y = _window(a, mask), _window(b, mask)
    mx, my = uniform_filter(x, size), uniform_filter(y, size)
    vx = uniform_filter(x * x, size) - mx * mx
    vy = uniform_filter(y * y, size) - my * my
    cxy = uniform_filter(x * y, size) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[mask].mean())


def _standardise(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(C, *spatial)`` minus the per-channel mean inside ``mask``, divided by the std there; 0 outside.

    Outside the mask every voxel is set to the inside mean (0), so that the judge network sees the
    masked tissue only: where a deep layer's receptive field is wider than the mask allows to erode
    (:func:`_erode` falls back to the whole mask), bone around a CT brain (+30 standard deviations
    of brain tissue) would otherwise dominate the Gram matrices.
    """
    inside = x[:, mask]
    shape = (-1,) + (1,) * (x.ndim - 1)
    std = inside.std(axis=1).reshape(shape)
    out = (x - inside.mean(axis=1).reshape(shape)) / np.where(std > 0, std, 1.0)
    out[:, ~mask] = 0.0
    return out


def _judge_net(spatial_dims: int, channels: int) -> Any:
    from ..extractors.convnd import ConvNdExtractor

    return ConvNdExtractor.random(spatial_dims, channels, seed=JUDGE_SEED, widths=JUDGE_WIDTHS, pooling="max")


def _grams(
    volume: np.ndarray, mask: np.ndarray | None, net: Any, flat_axis: int | None
) -> dict[str, torch.Tensor]:
    """Position-normalised Grams at :data:`JUDGE_LAYERS`; 2-D nets see the slices of every axis."""
    from ..functional import gram_matrix, resize_mask

    x = torch.from_numpy(volume.astype(np.float32))[None]
    radii = _receptive_radii(net)
    if net.spatial_dims == 3:
        with torch.no_grad():
            feats = net(x, JUDGE_LAYERS)
        out = {}
        for k, v in feats.items():
            inner = _erode(mask, radii[k])
            m = None if inner is None else torch.from_numpy(inner.astype(np.float32))[None, None]
            out[k] = gram_matrix(v, normalize=True, mask=m)[0]
        return out
    m = None if mask is None else torch.from_numpy(mask.astype(np.float32))[None, None]
    axes = [flat_axis] if flat_axis is not None else [0, 1, 2]
    sums: dict[str, torch.Tensor] = {}
    for axis in axes:
        slices = x.movedim(2 + axis, 1).flatten(0, 1)  # (n, C, h, w)
        ms = None if m is None else m.movedim(2 + axis, 1).flatten(0, 1)
        with torch.no_grad():
            feats = net(slices, JUDGE_LAYERS)
        for k, v in feats.items():
            w = torch.ones(v.shape[0], 1, *v.shape[2:]) if ms is None else resize_mask(ms, v.shape[2:])
            gram = gram_matrix(v, mask=w).sum(0) / w.sum().clamp_min(1e-8)
            sums[k] = sums[k] + gram / len(axes) if k in sums else gram / len(axes)
    return sums


#: Relative slack of ``in_range_fraction``'s bounds (float32 rounding is 6e-8 of a value).
IN_RANGE_SLACK = 1e-6


def _in_range_fraction(
    result: np.ndarray, mask: np.ndarray, span: tuple[float, float], style_span: tuple[float, float]
) -> float:
    """Fraction of ``result`` ``(C, *spatial)`` voxels within ``span``.

    Outside ``mask`` the span is widened by ``style_span`` (the style's whole range: its background
    may be written there).
    """
    lo, hi = span
    wide_lo, wide_hi = min(lo, style_span[0]), max(hi, style_span[1])
    # rounding, relative to the values' size: a result clamped to -448.6666419 HU in float32 and
    # mapped back in float64 lands 1.5e-6 below it (an absolute 1e-6 flagged it as out of range)
    slack = IN_RANGE_SLACK * max(1.0, abs(wide_lo), abs(wide_hi))
    inside = (result >= lo - slack) & (result <= hi + slack)
    outside = (result >= wide_lo - slack) & (result <= wide_hi + slack)
    return float(np.mean(np.where(mask[None], inside, outside)))


def _receptive_radii(net: Any) -> dict[str, int]:
    """Half-width of each layer's receptive field (voxels of the input)."""
    radius, stride, out = 0, 1, {}
    for name, module in net.layers.items():
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            radius += (module.kernel_size[0] // 2) * module.dilation[0] * stride
        elif "pool" in name:
            radius += stride // 2 if stride > 1 else 0
            stride *= 2
        out[name] = radius
    return out


def _erode(mask: np.ndarray | None, radius: int) -> np.ndarray | None:
    """``mask`` minus a ``radius``-voxel border (the positions whose receptive field is inside it).

    Falls back to ``mask`` where the eroded mask would keep under 5 % of it (small inputs).
    """
    if mask is None or radius < 1:
        return mask
    from scipy.ndimage import binary_erosion

    inner = binary_erosion(mask, iterations=radius, border_value=0)
    return inner if inner.sum() >= 0.05 * mask.sum() else mask


def gram_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Mean over layers of ``|G_a - G_b|_F / |G_b|_F``."""
    return float(np.mean([float((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-12)) for k in b]))


def _hist_distance(a: np.ndarray, b: np.ndarray, unit: float) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b)) / unit


def border_shift(
    content: np.ndarray,
    style: np.ndarray,
    result: np.ndarray,
    mask: np.ndarray,
    style_mask: np.ndarray,
    unit: Sequence[float],
) -> float:
    """How much darker (< 0) or brighter the result is on the mask's one-voxel inner border.

    Mean over channels of ``mean(result - matched)`` on the border voxels, in units of the style's
    1..99 % width (``unit`` per channel), where ``matched`` is the content mapped monotonically
    onto the style's intensities (what the recipe starts from and holds on to): 0 means no ring
    where the style meets the untouched voxels outside. ``content``/``result`` ``(C, *spatial)``,
    ``style`` ``(C, *spatial_s)``; masks are boolean grids.
    """
    from scipy.ndimage import binary_erosion

    from ..volume_quality import match_histogram

    border = mask & ~binary_erosion(mask, border_value=0)
    if not border.any():
        return 0.0
    matched = match_histogram(content, style, mask, style_mask)
    shifts = [
        float((result[i][border] - matched[i][border]).mean()) / unit[i] for i in range(content.shape[0])
    ]
    return float(np.mean(shifts))


def judge(
    content: Any,
    styles: Sequence[Any],
    result: Any,
    mask: Any = None,
    *,
    style_masks: Sequence[Any] | None = None,
    classes: int = 3,
) -> dict[str, Any]:
    """Field measures of a volume transfer (see the module docstring for each key).

    Args:
        content: Loaded-like (``.tensor`` ``(C, X, Y, Z)``, ``.meta``), a tensor or an array.
        styles: the style inputs (same kinds); only the first is judged against. A depth-1 style
            ``(C, 1, H, W)`` is a 2-D image (texture judged slice-wise with a 2-D net).
        result: ``(C, X, Y, Z)`` on the content's grid, in the content's working representation.
        mask: ``(X, Y, Z)`` weights (> 0.5 = inside); default: the content's Otsu foreground.
        style_masks: one mask per style on its grid; default: ``content.meta["style_masks"]`` (set
            by the volume recipe), else each style's Otsu foreground (a 2-D style: all of it).
        classes: number of intensity classes for ``class_dice``.

    """
    if style_masks is None:  # the volume recipe keeps the style masks it used in the content's meta
        style_masks = (getattr(content, "meta", None) or {}).get("style_masks")
    c, norm = _raw(content)
    r, _ = _raw(result, norm)
    if r.shape != c.shape:
        raise ShapeError(f"result has shape {r.shape}, expected the content's {c.shape}")
    s, _ = _raw(styles[0])
    spatial = tuple(c.shape[1:])
    m = foreground(c) if mask is None else _as_mask(mask, spatial, "mask")
    flat = [d for d in range(3) if s.shape[1 + d] == 1]
    if style_masks and style_masks[0] is not None:
        sm = _as_mask(style_masks[0], tuple(s.shape[1:]), "style mask")
    else:
        sm = np.ones(s.shape[1:], dtype=bool) if flat else foreground(s)
    if not flat:  # the region the transfer matches (plan_volume_transfer): far-out voxels excluded
        sm = inlier_mask(s, sm, STYLE_INLIER_FENCE)
    cv, rv, sv = c[:, m], r[:, m], s[:, sm]
    lo = min(float(c.min()), float(sv.min()))  # the content's whole range (it is kept outside the mask)
    hi = max(float(c.max()), float(sv.max()))
    out: dict[str, Any] = {
        "mask_voxels": int(m.sum()),
        "style_mask_voxels": int(sm.sum()),
        "class_dice": float(np.mean([class_dice(cv[i], rv[i], classes) for i in range(c.shape[0])])),
        "rank_corr": float(np.mean([rank_corr(cv[i], rv[i]) for i in range(c.shape[0])])),
        "ssim": float(np.mean([ssim(c[i], r[i], m) for i in range(c.shape[0])])),
        "range_low": lo,
        "range_high": hi,
        "result_min": float(r.min()),
        "result_max": float(r.max()),
        "in_range_fraction": _in_range_fraction(r, m, (lo, hi), (float(s.min()), float(s.max()))),
    }
    if c.min() >= 0:
        out["negative_fraction"] = float(np.mean(r < 0))
    unit = [float(np.subtract(*np.percentile(sv[i], (99, 1)))) or 1.0 for i in range(c.shape[0])]
    out["hist_result"] = float(np.mean([_hist_distance(rv[i], sv[i], unit[i]) for i in range(c.shape[0])]))
    out["hist_content"] = float(np.mean([_hist_distance(cv[i], sv[i], unit[i]) for i in range(c.shape[0])]))
    out["hist_ratio"] = out["hist_result"] / max(out["hist_content"], 1e-12)
    out["border_shift"] = border_shift(c, s, r, m, sm, unit)
    # texture: each image standardised inside its own mask, so first-order statistics (level,
    # spread: the histogram's job) do not dominate the Gram distance
    net = _judge_net(2 if flat else 3, c.shape[0])
    target = _grams(_standardise(s, sm), sm, net, flat[0] if flat else None)
    out["texture_result"] = gram_distance(_grams(_standardise(r, m), m, net, None), target)
    out["texture_content"] = gram_distance(_grams(_standardise(c, m), m, net, None), target)
    out["texture_ratio"] = out["texture_result"] / max(out["texture_content"], 1e-12)
    out.update(
        verdicts(
            {
                "class_dice": (out["class_dice"], ">=", TARGETS["class_dice"]),
                "rank_corr": (out["rank_corr"], ">=", TARGETS["rank_corr"]),
                "in_range": (out["in_range_fraction"], "==", 1.0),
                "hist_ratio": (out["hist_ratio"], "<=", TARGETS["hist_ratio"]),
                "texture_ratio": (out["texture_ratio"], "<=", TARGETS["texture_ratio"]),
            }
        )
    )
    meta = getattr(content, "meta", None) or {}
    automatic = [
        name for name, key in (("--mask", "auto_mask"), ("--style-mask", "auto_style_mask")) if meta.get(key)
    ]
    if automatic and not all(out["passes"].values()):
        out["advice"] = (
            f"the regions compared were automatic foregrounds ({' and '.join(automatic)} not given); "
            "where one input is skull-stripped and the other is not, they compare brain with scalp and "
            "bone: give brain masks with --mask and --style-mask"
        )
    return out


__all__ = [
    "TARGETS",
    "border_shift",
    "class_dice",
    "gram_distance",
    "judge",
    "quantile_classes",
    "rank_corr",
    "ssim",
]
