"""The style statistics beside the Gram: closed forms, sizes, masks, blends, bf16, tiles, dims."""

from __future__ import annotations

import pytest
import torch

from ndstyle import ConvNdExtractor, stylize
from ndstyle import functional as NF
from ndstyle.errors import OptionError
from ndstyle.losses import STYLE_LOSSES, PerceptualLoss, SlicedWassersteinStyle, build_style_statistic

from conftest import SPATIAL_DIMS, make_pair

TINY = {1: (12,), 2: (4, 5), 3: (3, 3, 4)}
NAMES = list(STYLE_LOSSES)


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def cost(
    name: str, generated: torch.Tensor, style: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    statistic = build_style_statistic(name, seed=3)
    return statistic.cost(generated, statistic.target(style), mask)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_identical_inputs_cost_zero_and_others_do_not(name: str, spatial_dims: int) -> None:
    a, b = rand(1, 3, *TINY[spatial_dims], seed=1), rand(1, 3, *TINY[spatial_dims], seed=2) * 2 + 1
    assert float(cost(name, a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(cost(name, b, a)) > 0.1


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_cost_is_size_independent(name: str, spatial_dims: int) -> None:
    """A style tiled twice along every axis is the same distribution of features."""
    tile = rand(1, 2, *TINY[spatial_dims], seed=5)
    tiled = tile.repeat(1, 1, *([2] * spatial_dims))
    generated = rand(1, 2, *TINY[spatial_dims], seed=6)
    torch.testing.assert_close(
        cost(name, generated, tiled), cost(name, generated, tile), rtol=1e-4, atol=1e-6
    )


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_w2_of_diagonal_gaussians_is_the_closed_form(spatial_dims: int) -> None:
    """Independent channels: W2^2 = sum_k (mu_k - mu'_k)^2 + (sigma_k - sigma'_k)^2."""
    base = rand(1, 3, *TINY[spatial_dims], seed=7).flatten(2)
    base = base - base.mean(-1, keepdim=True)
    q, _ = torch.linalg.qr(base[0].T)  # orthonormal columns: channels uncorrelated, unit norm
    white = q.T.reshape(1, 3, *TINY[spatial_dims]) * (q.shape[0] ** 0.5)  # mean 0, cov I
    scale, shift = torch.tensor([0.5, 2.0, 1.0]), torch.tensor([1.0, -1.0, 0.0])
    generated = white * scale.view(1, 3, *[1] * spatial_dims) + shift.view(1, 3, *[1] * spatial_dims)
    expected = ((shift**2) + (scale - 1) ** 2).sum() / 3
    torch.testing.assert_close(cost("mean-cov", generated, white), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_histogram_is_the_mean_squared_sorted_difference(spatial_dims: int) -> None:
    a, b = rand(1, 3, *TINY[spatial_dims], seed=8), rand(1, 3, *TINY[spatial_dims], seed=9)
    expected = (a.flatten(2).sort(-1).values - b.flatten(2).sort(-1).values).pow(2).mean()
    torch.testing.assert_close(cost("histogram", a, b), expected)
    # sliced Wasserstein along the channel axes is the histogram cost
    target = NF.sample_target(b)
    torch.testing.assert_close(NF.quantile_matching_cost(a, target, torch.eye(3)), expected)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_mask_restricts_the_statistics_to_the_region(name: str, spatial_dims: int) -> None:
    shape = TINY[spatial_dims]
    g, s = rand(1, 3, *shape, seed=10), rand(1, 3, *shape, seed=11)
    torch.testing.assert_close(
        cost(name, g, s, torch.ones(1, 1, *shape)), cost(name, g, s), rtol=1e-4, atol=1e-6
    )
    mask = torch.zeros(1, 1, *shape)
    mask[..., : shape[-1] // 2] = 1  # the first half of the last axis
    crop = g[..., : shape[-1] // 2]
    torch.testing.assert_close(cost(name, g, s, mask), cost(name, crop, s), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_blend_is_the_mixture_of_the_styles(name: str) -> None:
    """Two equal-size styles blended 1:1 have the statistics of their concatenation."""
    g, s1, s2 = rand(1, 3, 6, 5, seed=12), rand(1, 3, 6, 5, seed=13), 2 + rand(1, 3, 6, 5, seed=14)
    statistic = build_style_statistic(name, seed=4)
    blended = statistic.blend([statistic.target(s1), statistic.target(s2)], [1.0, 1.0])
    joined = statistic.target(torch.cat([s1, s2], dim=-1))
    if isinstance(statistic, SlicedWassersteinStyle):
        statistic.reseed()
        first = statistic.cost(g, blended)
        statistic.reseed()
        torch.testing.assert_close(first, statistic.cost(g, joined), rtol=1e-4, atol=1e-6)
    else:
        torch.testing.assert_close(
            statistic.cost(g, blended), statistic.cost(g, joined), rtol=1e-4, atol=1e-6
        )


@pytest.mark.parametrize("name", ["mean-cov", "histogram"])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_gradcheck_float64(name: str, spatial_dims: int) -> None:
    g = rand(1, 2, *TINY[spatial_dims], seed=15, dtype=torch.float64).requires_grad_(True)
    s = rand(1, 2, *TINY[spatial_dims], seed=16, dtype=torch.float64) * 1.5 + 0.3
    statistic = build_style_statistic(name)
    target = statistic.target(s)
    assert torch.autograd.gradcheck(lambda x: statistic.cost(x, target), (g,))


def test_sliced_directions_are_redrawn_and_seeded() -> None:
    g, s = rand(1, 8, 30, seed=17), rand(1, 8, 30, seed=18)
    first, second = SlicedWassersteinStyle(seed=1), SlicedWassersteinStyle(seed=1)
    target = first.target(s)
    a = [float(first.cost(g, target)) for _ in range(3)]
    b = [float(second.cost(g, target)) for _ in range(3)]
    assert a == b  # same seed, same sequence of directions
    assert len(set(a)) == 3  # new directions at every evaluation
    assert float(SlicedWassersteinStyle(seed=2).cost(g, target)) != a[0]


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_features_give_float32_costs_and_bfloat16_gradients(name: str) -> None:
    g = rand(1, 4, 8, 8, seed=19).bfloat16().requires_grad_(True)
    statistic = build_style_statistic(name)
    value = statistic.cost(g, statistic.target(rand(1, 4, 8, 8, seed=20).bfloat16()))
    assert value.dtype == torch.float32
    value.backward()
    assert g.grad is not None and g.grad.dtype == torch.bfloat16 and torch.isfinite(g.grad.float()).all()


@pytest.mark.parametrize("name", ["gram", "mean-cov"])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_tiles_accumulate_moments_and_give_the_exact_gradient(name: str, spatial_dims: int) -> None:
    """Sum the tiles' moments, differentiate the cost at them once, back-propagate tile by tile."""
    g = rand(1, 3, *[2 * n for n in TINY[spatial_dims]], seed=21).requires_grad_(True)
    statistic = build_style_statistic(name)
    assert statistic.additive
    target = statistic.target(rand(1, 3, *TINY[spatial_dims], seed=22) + 0.5)
    statistic.cost(g, target).backward()
    expected = g.grad.clone()
    g.grad = None
    tiles = g.chunk(2, dim=-1)
    with torch.no_grad():
        total = NF.moments(tiles[0]) + NF.moments(tiles[1])
    leaves = NF.Moments(*(t.clone().requires_grad_(True) for t in (total.count, total.first, total.second)))
    whole = statistic.cost_from_moments(leaves, target)
    torch.testing.assert_close(whole, statistic.cost(g, target), rtol=1e-4, atol=1e-6)
    d_first, d_second = torch.autograd.grad(
        whole, [leaves.first, leaves.second], allow_unused=True, materialize_grads=True
    )
    for tile in tiles:
        m = NF.moments(tile)
        surrogate = (m.first * d_first).sum() + (m.second * d_second).sum()
        surrogate.backward()
    torch.testing.assert_close(g.grad, expected, rtol=1e-4, atol=1e-6)


def test_sort_based_statistics_say_they_are_not_additive() -> None:
    statistic = build_style_statistic("sliced-wasserstein")
    assert not statistic.additive
    with pytest.raises(NotImplementedError, match="rank"):
        statistic.cost_from_moments(NF.moments(rand(1, 2, 5)), None)


def test_unknown_style_loss_is_refused_with_the_choices() -> None:
    with pytest.raises(OptionError, match="did you mean 'gram'|Did you mean 'gram'"):
        build_style_statistic("grams")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_perceptual_loss_optimises_every_statistic(name: str, spatial_dims: int) -> None:
    """Ten Adam steps from the content lower each statistic's style cost, in every dims."""
    content, style = make_pair(spatial_dims)
    crop = (slice(None),) + (slice(0, {1: 128, 2: 32, 3: 12}[spatial_dims]),) * spatial_dims
    content, style = content[crop].contiguous(), style[crop].contiguous()
    net = ConvNdExtractor.random(spatial_dims, 1, seed=0, widths=(8, 16))
    loss = PerceptualLoss(
        net,
        content_layers=[],
        style_layers=net.default_style_layers,
        style_loss=name,
        seed=0,
    )
    loss.set_styles([style[None], style[None].flip(-1)], [1.0, 2.0])
    x = content[None].clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    start = float(loss(x).style.detach())
    for _ in range(10):
        opt.zero_grad()
        loss(x).total.backward()
        opt.step()
    assert float(loss(x).style.detach()) < 0.8 * start


@pytest.mark.parametrize("name", NAMES)
def test_stylize_takes_every_style_loss_and_is_deterministic(name: str) -> None:
    content, style = make_pair(2)
    net = ConvNdExtractor.random(2, 1, seed=0, widths=(8, 16))
    runs = [
        stylize(
            content,
            style,
            extractor=net,
            steps=4,
            scales=1,
            style_loss=name,
            style_weight=100.0,
            progress=False,
        )
        for _ in range(2)
    ]
    assert torch.equal(runs[0].output, runs[1].output)
    assert runs[0].history[-1].style < runs[0].history[0].style


def test_the_option_lists_every_style_loss() -> None:
    from ndstyle.options import TransferOptions

    field = TransferOptions.__dataclass_fields__["style_loss"]
    assert tuple(field.metadata["spec"].choices) == tuple(STYLE_LOSSES)


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_resumed_sliced_run_is_bit_identical(tmp_path, spatial_dims: int) -> None:
    """The checkpoint keeps the directions' generator: a resumed sliced run redraws the same ones.

    Interrupted at step 4: in the second pyramid level (1-D, 2-D), mid-level (3-D, one level).
    """
    from ndstyle.errors import InterruptedRun

    size = {1: (64,), 2: (32, 32), 3: (16, 16, 16)}[spatial_dims]
    content, style = make_pair(spatial_dims)
    content = torch.nn.functional.interpolate(content[None], size=size)[0]
    style = style[(slice(None),) + tuple(slice(0, n) for n in size)]
    levels = {"steps": [3, 3], "scales": [0.5, 1]} if spatial_dims < 3 else {"steps": 6, "scales": 1}
    options = dict(seed=4, style_loss="sliced-wasserstein", extractor="random", progress=False, **levels)

    def stop_at_4(info) -> None:  # type: ignore[no-untyped-def]
        if info.record.step == 4:
            raise KeyboardInterrupt

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        reference = stylize(content, style, **options)
        checkpoint = tmp_path / "run.ckpt.safetensors"
        with pytest.raises(InterruptedRun):
            stylize(content, style, checkpoint=checkpoint, checkpoint_every=1, callback=stop_at_4, **options)
        resumed = stylize(content, style, checkpoint=checkpoint, checkpoint_every=1, resume=True, **options)
    finally:
        torch.set_num_threads(threads)
    assert [r.total for r in resumed.history] == [r.total for r in reference.history]
    assert torch.equal(resumed.output, reference.output)


@pytest.mark.parametrize("style_loss", ["gram", "mean-cov", "histogram", "sliced-wasserstein"])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_a_style_mask_restricts_every_statistic_to_its_region(spatial_dims: int, style_loss: str) -> None:
    """The target of a style under a 0/1 mask is the target of the masked region alone."""
    from ndstyle.losses import build_style_statistic

    g = torch.Generator().manual_seed(0)
    shape = (16,) * spatial_dims
    inside = torch.randn(1, 4, *shape, generator=g)
    outside = 5.0 + 3.0 * torch.randn(1, 4, *shape, generator=g)
    both = torch.cat([inside, outside], dim=2)  # the region is the first half of axis 0
    mask = torch.cat([torch.ones(1, 1, *shape), torch.zeros(1, 1, *shape)], dim=2)
    statistic = build_style_statistic(style_loss)
    masked, alone = statistic.target(both, mask), statistic.target(inside)
    if style_loss == "gram":
        assert torch.allclose(masked, alone, atol=1e-5)
    elif style_loss == "mean-cov":
        assert torch.allclose(masked.mean, alone.mean, atol=1e-5)
        assert torch.allclose(masked.cov, alone.cov, atol=1e-4)
    else:
        assert masked.features.shape == alone.features.shape
        assert torch.equal(masked.features.sort(-1).values, alone.features.sort(-1).values)
        assert torch.allclose(masked.weights, alone.weights)


@pytest.mark.parametrize("style_loss", ["mean-cov", "histogram", "sliced-wasserstein"])
def test_every_statistic_runs_with_style_masks_and_ignores_outside_the_region(style_loss: str) -> None:
    """What lies outside the style mask (beyond the features' reach) does not change the result."""
    content, style = make_pair(2)
    net = ConvNdExtractor.random(2, 1, seed=0, widths=(8, 16))
    width = style.shape[-1]
    wild = style.clone()
    wild[..., width // 2 :] = 50.0  # far from the region: a quarter of the width between them
    mask = torch.zeros(1, 1, *style.shape[1:])
    mask[..., : width // 4] = 1.0
    options = dict(extractor=net, steps=5, scales=1, progress=False, style_loss=style_loss)
    options["style_weight"] = 100.0
    masked = stylize(content, wild, style_masks=[mask], **options)
    half = stylize(content, style, style_masks=[mask], **options)
    assert torch.allclose(masked.output, half.output, atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 40_000), (2, 3, 50_000), (1, 300_000)])
def test_row_sorts_split_over_threads_give_what_one_numpy_call_gives(shape: tuple[int, ...]) -> None:
    """The sorted statistics sort blocks of rows on torch's threads (the volume recipe's run went
    from 29-31 s to 23 s); every row's result must be exactly one NumPy call's, ties included."""
    import numpy as np

    generator = torch.Generator().manual_seed(0)
    values = torch.randn(shape, generator=generator).round(decimals=1)  # many ties
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert values.numel() >= NF.PARALLEL_SORT_MIN
        order = NF.argsort_rows(values)
        ordered = NF.sort_rows(values)
    finally:
        torch.set_num_threads(threads)
    assert order.dtype == torch.int64 and order.shape == values.shape
    assert torch.equal(order, torch.from_numpy(np.argsort(values.numpy(), axis=-1, kind="quicksort")))
    assert torch.equal(ordered, torch.from_numpy(np.sort(values.numpy(), axis=-1)))


def test_quantiles_on_one_grid_pick_columns_exactly_as_the_per_row_lookup() -> None:
    """Without a mask every row shares one grid of masses, so the style quantiles are a column
    lookup (index_select) instead of a per-row gather: the same values, bit for bit."""
    generator = torch.Generator().manual_seed(0)
    style_sorted = torch.sort(torch.randn(6, 500, generator=generator), dim=-1).values
    for n in (300, 500, 700):
        t = ((torch.arange(n) + 0.5) / n).expand(1, 1, n)
        shared = NF._uniform_quantiles(style_sorted, t, same_grid=False)
        per_row = NF._uniform_quantiles(style_sorted, t.expand(1, 6, n).contiguous(), same_grid=False)
        assert shared.shape == (1, 6, n) and torch.equal(shared, per_row)
