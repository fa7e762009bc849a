"""Exact tiled steps: the tiled gradient is the whole-input gradient, in 1, 2 and 3 dims."""

from __future__ import annotations

import logging

import pytest
import torch

from ndstyle import ConvNdExtractor, stylize
from ndstyle.errors import OptionError
from ndstyle.extractors.base import FeatureExtractor
from ndstyle.extractors.vgg import VGGExtractor
from ndstyle.losses import PerceptualLoss
from ndstyle.tiling import TiledCost, can_tile, geometry, tile_with_halo

from conftest import SPATIAL_DIMS, make_pair

#: Inputs larger than one tile plus its halo on every axis, so that interior tiles really occur.
SHAPES = {1: (200,), 2: (40, 44), 3: (24, 22, 24)}
TILES = {1: (24,), 2: (12, 12), 3: (8, 8, 8)}


def _problem(net: FeatureExtractor, shape: tuple[int, ...], dtype: torch.dtype, masked: bool) -> tuple:
    channels = net.in_channels
    g = torch.Generator().manual_seed(0)
    content = torch.rand(1, channels, *shape, generator=g, dtype=torch.float64)
    style = torch.rand(1, channels, *[n + 3 for n in shape], generator=g, dtype=torch.float64)
    mask = torch.rand(1, 1, *shape, generator=g, dtype=torch.float64) if masked else None
    x = torch.rand(1, channels, *shape, generator=g, dtype=torch.float64)
    return tuple(t.to(dtype) if t is not None else None for t in (content, style, mask, x))


def _gradients(
    net: FeatureExtractor, layers: dict, shape, tile, dtype, masked: bool, style_loss: str = "gram"
) -> tuple:
    """(J, gradient) untiled and tiled, for one problem in ``dtype``."""
    net = net.to(dtype)
    content, style, mask, x0 = _problem(net, shape, dtype, masked)
    loss = PerceptualLoss(net, style_weight=100.0, tv_weight=0.1, style_loss=style_loss, **layers)
    loss.set_content(content)
    loss.set_styles([style])
    loss.set_mask(mask)
    x = x0.clone().requires_grad_(True)
    whole = loss(x)
    whole.total.backward()
    g_whole = x.grad.clone()
    x.grad = None
    cost = TiledCost(loss, content, tile)
    assert len(cost.tiles) > 2
    tiled = cost.backward(x * 1.0)
    return float(whole.total.detach()), g_whole, float(tiled.total), x.grad.clone()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def _convnd(spatial_dims: int) -> ConvNdExtractor:
    return ConvNdExtractor.random(spatial_dims, 2, seed=0, widths=(4, 8))  # halo 6, stride 2


def _layers(net: FeatureExtractor) -> dict:
    return {"content_layers": list(net.default_content_layers), "style_layers": net.default_style_layers}


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_tiled_gradient_is_the_whole_gradient_in_float64(spatial_dims: int, masked: bool) -> None:
    """Same J and gradient as the untiled cost to float64 rounding (no seams, no approximation)."""
    net = _convnd(spatial_dims)
    j_whole, g_whole, j_tiled, g_tiled = _gradients(
        net, _layers(net), SHAPES[spatial_dims], TILES[spatial_dims], torch.float64, masked
    )
    assert j_tiled == pytest.approx(j_whole, rel=1e-12)
    assert _rel(g_tiled, g_whole) < 1e-12


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_tiled_gradient_in_float32_is_as_close_to_the_truth_as_the_untiled_one(spatial_dims: int) -> None:
    """float32: the tiled error against the float64 gradient is of the untiled error's size."""
    net = _convnd(spatial_dims)
    args = (_layers(net), SHAPES[spatial_dims], TILES[spatial_dims])
    _, truth, _, _ = _gradients(net, *args, torch.float64, True)
    _, g_whole, _, g_tiled = _gradients(net, *args, torch.float32, True)
    rounding = _rel(g_whole, truth)
    assert rounding < 1e-4  # float32 rounding of the untiled gradient itself
    assert _rel(g_tiled, truth) < 10 * rounding + 1e-6


def test_tiled_vgg_gradient_is_the_whole_gradient() -> None:
    """The VGG body (3 blocks, random weights), halo and pooling alignment included."""
    torch.manual_seed(0)
    net = VGGExtractor("vgg16")
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.05)
    layers = {"content_layers": ["relu3_1"], "style_layers": {"relu1_1": 0.4, "relu2_1": 0.3, "relu3_1": 0.3}}
    assert geometry(net, ["relu3_1"]).halo == (16, 16)
    j_whole, g_whole, j_tiled, g_tiled = _gradients(net, layers, (64, 56), (16, 16), torch.float64, True)
    assert j_tiled == pytest.approx(j_whole, rel=1e-12)
    assert _rel(g_tiled, g_whole) < 1e-12


def test_extractors_that_cannot_tile_are_refused() -> None:
    from ndstyle.extractors.spectral import SpectralExtractor
    from ndstyle.extractors.volume import SliceExtractor

    spectral = SpectralExtractor(in_channels=1)
    slices = SliceExtractor(ConvNdExtractor.random(2, 3, seed=0, widths=(8, 16)), 1)
    for net in (spectral, slices):
        assert not can_tile(net)
        with pytest.raises(OptionError, match="tiled steps need a convolutional extractor"):
            geometry(net, list(net.default_style_layers))
    x = torch.rand(1, 4096)
    with pytest.raises(OptionError, match="tiled steps need a convolutional extractor"):
        stylize(x, x, extractor=spectral, steps=1, scales=1, tile=1024, progress=False)


def test_halo_covers_the_receptive_field_and_tiles_align_to_the_stride() -> None:
    net = ConvNdExtractor.random(2, 2, seed=0, widths=(8, 16, 32))
    geo = geometry(net, ["relu3_1"])
    assert geo.stride == (4, 4) and all(h % 4 == 0 for h in geo.halo)
    assert tile_with_halo(net, ["relu3_1"], (100, 100), (10, 10)) == (12 + 2 * geo.halo[0],) * 2


@pytest.mark.parametrize("spatial_dims", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_stylize_tiled_follows_the_untiled_run(spatial_dims: int) -> None:
    """Ten Adam steps tiled and untiled: the same J to 1e-4 (L-BFGS amplifies float32 rounding
    differences through its curvature pairs, so it is not used to compare runs step by step)."""
    content, style = make_pair(spatial_dims)
    net = ConvNdExtractor.random(spatial_dims, 1, seed=0, widths=(4, 8))
    options = dict(extractor=net, steps=10, scales=1, progress=False, optimizer="adam")
    whole = stylize(content, style, **options)
    tiled = stylize(content, style, tile=8, **options)
    assert tiled.memory is not None and tiled.memory.tile == (8,) * spatial_dims
    # the weights come from tiled gradient norms: equal in float64 (the calibration test below),
    # float32 rounding apart here
    assert tiled.history[0].total == pytest.approx(whole.history[0].total, rel=1e-5)
    assert tiled.best_cost == pytest.approx(whole.best_cost, rel=1e-4)
    assert torch.allclose(tiled.output, whole.output, atol=1e-4)


def test_too_little_memory_tiles_automatically_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    content, style = make_pair(2)
    net = ConvNdExtractor.random(2, 1, seed=0, widths=(16, 32))
    from ndstyle.memory import estimate_memory

    layers = list(dict.fromkeys([*net.default_content_layers, *net.default_style_layers]))
    limit = estimate_memory(net, (48, 48), layers, history_size=5) - 1  # a shorter history is not enough
    with caplog.at_level(logging.WARNING, logger="ndstyle"):
        result = stylize(content, style, extractor=net, steps=3, scales=1, progress=False, max_memory=limit)
    assert result.memory is not None and result.memory.tile is not None
    assert result.memory.needed <= limit
    notes = [r.getMessage() for r in caplog.records if "tiled steps" in r.getMessage()]
    assert len(notes) == 1 and "exact gradient" in notes[0]


@pytest.mark.parametrize("by", ["gradient", "value"])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_strength_is_calibrated_tile_by_tile_with_the_same_weights(spatial_dims: int, by: str) -> None:
    """A tiled level calibrates ``strength`` from tiled gradients: the weights equal the untiled ones."""
    from ndstyle.losses import calibrate_weights

    net = _convnd(spatial_dims).to(torch.float64)
    content, style, mask, _ = _problem(net, SHAPES[spatial_dims], torch.float64, masked=True)
    loss = PerceptualLoss(net, **_layers(net))
    loss.set_content(content)
    loss.set_styles([style])
    loss.set_mask(mask)
    whole = calibrate_weights(loss, content, 0.6, seed=3, by=by)
    tiled = calibrate_weights(
        loss, content, 0.6, seed=3, by=by, measure=TiledCost(loss, content, TILES[spatial_dims]).measure
    )
    assert tiled.content_weight == pytest.approx(whole.content_weight, rel=1e-9)
    assert tiled.style_weight == pytest.approx(whole.style_weight, rel=1e-9)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_mean_cov_tiles_give_the_whole_gradient_in_float64(spatial_dims: int, masked: bool) -> None:
    """``mean-cov`` (Gaussian W2) accumulates moments over tiles: J and the gradient of the whole input.

    The reference is the same cost from the whole input's moments (``cost_from_moments``, what the
    tiles sum to); the direct per-layer cost agrees with it to ~1e-7 (covariance computed by
    centring instead of from the moments).
    """
    import ndstyle.functional as NF

    net = _convnd(spatial_dims).to(torch.float64)
    content, style, mask, x0 = _problem(net, SHAPES[spatial_dims], torch.float64, masked)
    loss = PerceptualLoss(net, style_weight=100.0, tv_weight=0.1, style_loss="mean-cov", **_layers(net))
    loss.set_content(content)
    loss.set_styles([style])
    loss.set_mask(mask)
    x = x0.clone().requires_grad_(True)
    terms = loss(x)
    feats = loss.features(x, list(loss.style_layer_weights))
    style_cost = sum(
        w
        * loss.statistic.cost_from_moments(
            NF.moments(feats[k], mask=None if mask is None else NF.resize_mask(mask, feats[k].shape[2:])),
            loss.style_targets[k],
        )
        for k, w in loss.style_layer_weights.items()
    )
    whole = loss.content_weight * terms.content + loss.style_weight * style_cost + loss.tv_weight * terms.tv
    assert float(whole.detach()) == pytest.approx(float(terms.total.detach()), rel=1e-5)
    (g_whole,) = torch.autograd.grad(whole, x)
    x.grad = None
    tiled = TiledCost(loss, content, TILES[spatial_dims]).backward(x * 1.0)
    # J to 1e-6 only: the W2's matrix square root of singular covariances (dead ReLU channels)
    # turns rounding-level differences of the summed moments into ~1e-7 of J; the gradient is exact
    assert float(tiled.total) == pytest.approx(float(whole.detach()), rel=1e-6)
    assert _rel(x.grad, g_whole) < 1e-9


@pytest.mark.parametrize("style_loss", ["histogram", "sliced-wasserstein"])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_sorted_statistics_tile_to_the_whole_gradient_in_float64(
    spatial_dims: int, masked: bool, style_loss: str
) -> None:
    """The sorted statistics rank every position of the whole input: tiled, J and the gradient are
    the whole input's (the same random directions are drawn for ``sliced-wasserstein``)."""
    net = _convnd(spatial_dims).to(torch.float64)
    content, style, mask, x0 = _problem(net, SHAPES[spatial_dims], torch.float64, masked)
    loss = PerceptualLoss(net, style_weight=100.0, tv_weight=0.1, style_loss=style_loss, **_layers(net))
    loss.set_content(content)
    loss.set_styles([style])
    loss.set_mask(mask)
    state = loss.statistic.random_state()
    x = x0.clone().requires_grad_(True)
    whole = loss(x)
    whole.total.backward()
    g_whole = x.grad.clone()
    x.grad = None
    loss.statistic.set_random_state(state)
    cost = TiledCost(loss, content, TILES[spatial_dims])
    assert len(cost.tiles) > 2
    tiled = cost.backward(x * 1.0)
    assert float(tiled.total) == pytest.approx(float(whole.total.detach()), rel=1e-10)
    assert _rel(x.grad, g_whole) < 1e-9


@pytest.mark.parametrize("style_loss", ["histogram", "sliced-wasserstein"])
def test_stylize_tiled_with_a_sorted_statistic_follows_the_untiled_run(style_loss: str) -> None:
    """Ten Adam steps with the strength calibration, tiled and untiled: the same J to 1e-4."""
    content, style = make_pair(2)
    net = ConvNdExtractor.random(2, 1, seed=0, widths=(4, 8))
    options = dict(extractor=net, steps=10, scales=1, progress=False, optimizer="adam", style_loss=style_loss)
    whole = stylize(content, style, **options)
    tiled = stylize(content, style, tile=8, **options)
    assert tiled.memory is not None and tiled.memory.tile == (8, 8)
    assert tiled.history[0].total == pytest.approx(whole.history[0].total, rel=1e-5)
    assert tiled.best_cost == pytest.approx(whole.best_cost, rel=1e-4)


def test_a_sorted_statistic_counts_its_whole_layer_copies_and_tiles_within_the_limit() -> None:
    """The memory policy counts the sort workspace, and for tiles the whole-input style layers."""
    from ndstyle.memory import BYTES_PER_VALUE, SORT_WORKSPACE, _layer_values, estimate_memory

    content, style = make_pair(2)
    net = ConvNdExtractor.random(2, 1, seed=0, widths=(16, 32))
    styles = list(net.default_style_layers)
    layers = list(dict.fromkeys([*net.default_content_layers, *styles]))
    gram = estimate_memory(net, (48, 48), layers, history_size=5, tile=(24, 24))
    sorted_ = estimate_memory(net, (48, 48), layers, history_size=5, tile=(24, 24), sorted_layers=styles)
    per_layer = [_layer_values(net, (48, 48), [k]) for k in styles]
    assert sorted_ - gram == BYTES_PER_VALUE * (SORT_WORKSPACE * max(per_layer) + sum(per_layer))
    limit = estimate_memory(net, (48, 48), layers, history_size=5, sorted_layers=styles) - 1
    result = stylize(
        content,
        style,
        extractor=net,
        steps=3,
        scales=1,
        progress=False,
        max_memory=limit,
        style_loss="histogram",
    )
    assert result.memory is not None and result.memory.tile is not None
    assert result.memory.needed <= limit
