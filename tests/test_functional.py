"""The N-D costs: closed forms, cross-dims consistency, gradients, batch consistency."""

from __future__ import annotations

import math

import pytest
import torch

from ndstyle import functional as NF
from ndstyle.errors import ShapeError

from conftest import SPATIAL_DIMS

TINY = {1: (5,), 2: (4, 4), 3: (3, 3, 3)}


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
@pytest.mark.parametrize("size", [2, 5])
def test_gram_of_ones_is_number_of_positions(spatial_dims: int, size: int) -> None:
    x = torch.ones(2, 3, *([size] * spatial_dims))
    gram = NF.gram_matrix(x)
    assert gram.shape == (2, 3, 3)
    torch.testing.assert_close(gram, torch.full((2, 3, 3), float(size**spatial_dims)))
    torch.testing.assert_close(NF.gram_matrix(x, normalize=True), torch.ones(2, 3, 3))


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_identical_inputs_cost_zero(spatial_dims: int) -> None:
    a = rand(1, 4, *TINY[spatial_dims])
    assert float(NF.content_cost(a, a)) == 0.0
    assert float(NF.style_cost(a, a)) == 0.0
    assert float(NF.total_variation(torch.full_like(a, 0.3))) == 0.0


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_costs_match_the_seeds_formulas(spatial_dims: int) -> None:
    a, g = rand(1, 3, *TINY[spatial_dims], seed=1), rand(1, 3, *TINY[spatial_dims], seed=2)
    channels, positions = 3, math.prod(TINY[spatial_dims])
    expected_content = ((a - g) ** 2).sum() / (4 * channels * positions)
    torch.testing.assert_close(NF.content_cost(g, a), expected_content)
    fa, fg = a.reshape(3, -1), g.reshape(3, -1)
    expected_style = ((fa @ fa.T - fg @ fg.T) ** 2).sum() / (2 * channels * positions) ** 2
    torch.testing.assert_close(NF.style_cost(g, a), expected_style)


def test_depth_one_volume_gives_the_image_values() -> None:
    image, other = rand(1, 3, 6, 5, seed=3), rand(1, 3, 6, 5, seed=4)
    volume, other_volume = image.unsqueeze(2), other.unsqueeze(2)
    torch.testing.assert_close(NF.gram_matrix(volume), NF.gram_matrix(image))
    torch.testing.assert_close(NF.content_cost(volume, other_volume), NF.content_cost(image, other))
    torch.testing.assert_close(NF.style_cost(volume, other_volume), NF.style_cost(image, other))
    torch.testing.assert_close(NF.total_variation(volume), NF.total_variation(image))
    # and a height-1 image gives the 1-D signal's values
    signal = image[:, :, 0]
    torch.testing.assert_close(NF.total_variation(image[:, :, :1]), NF.total_variation(signal))


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_style_cost_is_size_independent(spatial_dims: int) -> None:
    """A texture tiled twice along every axis has the same per-position Gram."""
    tile = rand(1, 2, *TINY[spatial_dims], seed=5)
    tiled = tile.repeat(1, 1, *([2] * spatial_dims))
    generated = rand(1, 2, *TINY[spatial_dims], seed=6)
    torch.testing.assert_close(NF.style_cost(generated, tiled), NF.style_cost(generated, tile))


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_gradcheck_float64(spatial_dims: int) -> None:
    shape = TINY[spatial_dims]
    g = rand(1, 2, *shape, seed=7, dtype=torch.float64).requires_grad_(True)
    target = rand(1, 2, *shape, seed=8, dtype=torch.float64)
    style = rand(1, 2, *[s + 1 for s in shape], seed=9, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: NF.content_cost(x, target), (g,))
    assert torch.autograd.gradcheck(lambda x: NF.style_cost(x, style), (g,))
    assert torch.autograd.gradcheck(lambda x: NF.gram_matrix(x, normalize=True), (g,))
    assert torch.autograd.gradcheck(lambda x: NF.total_variation(x), (g,))


def _autograd_gram(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    flat = x.flatten(2).float()
    left = flat if weights is None else flat * weights.flatten(2)
    return left @ flat.transpose(1, 2)


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
@pytest.mark.parametrize("masked", [False, True])
def test_gram_gradient_matches_autograd_of_the_plain_product(spatial_dims: int, masked: bool) -> None:
    """The one-product backward equals autograd through F W F^T, in float64 and with a mask."""
    shape = TINY[spatial_dims]
    x = rand(2, 3, *shape, seed=13, dtype=torch.float64).requires_grad_(True)
    mask = rand(1, 1, *shape, seed=14, dtype=torch.float64) if masked else None
    upstream = rand(2, 3, 3, seed=15, dtype=torch.float64)  # not symmetric on purpose
    assert torch.autograd.gradcheck(lambda v: NF.gram_matrix(v, mask=mask), (x,))
    (mine,) = torch.autograd.grad((NF.gram_matrix(x, mask=mask) * upstream).sum(), x)
    flat = x.flatten(2)
    left = flat if mask is None else flat * mask.flatten(2)
    (expected,) = torch.autograd.grad(((left @ flat.transpose(1, 2)) * upstream).sum(), x)
    torch.testing.assert_close(mine, expected)
    assert torch.autograd.gradgradcheck(lambda v: NF.gram_matrix(v, mask=mask), (x,))


def test_gram_of_bfloat16_features_is_float32_and_its_gradient_bfloat16() -> None:
    """Under autocast features are bf16: the Gram is summed in fp32, the gradient comes back bf16."""
    x = rand(1, 8, 16, 16, seed=16).to(torch.bfloat16).requires_grad_(True)
    gram = NF.gram_matrix(x, normalize=True)
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram, _autograd_gram(x.detach()) / 256)  # exact fp32 sums of bf16 values
    upstream = rand(1, 8, 8, seed=17)
    (mine,) = torch.autograd.grad((gram * upstream).sum(), x)
    assert mine.dtype == torch.bfloat16
    reference = x.detach().float().requires_grad_(True)
    (expected,) = torch.autograd.grad(((_autograd_gram(reference) / 256) * upstream).sum(), reference)
    torch.testing.assert_close(mine.float(), expected, rtol=2e-2, atol=1e-4)


def test_mask_that_requires_grad_receives_its_gradient() -> None:
    x = rand(1, 2, 6, 6, seed=18)
    mask = rand(1, 1, 6, 6, seed=19).requires_grad_(True)
    NF.gram_matrix(x, mask=mask).sum().backward()
    assert mask.grad is not None
    torch.testing.assert_close(mask.grad.flatten(), (x.flatten(2).sum(1) ** 2).flatten())


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_batched_equals_per_item(spatial_dims: int) -> None:
    shape = TINY[spatial_dims]
    a, b = rand(3, 2, *shape, seed=10), rand(3, 2, *shape, seed=11)
    grams = NF.gram_matrix(a)
    for i in range(3):
        torch.testing.assert_close(grams[i : i + 1], NF.gram_matrix(a[i : i + 1]))
    per_item = torch.stack([NF.content_cost(a[i : i + 1], b[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(NF.content_cost(a, b), per_item.mean())
    per_item_style = torch.stack([NF.style_cost(a[i : i + 1], b[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(NF.style_cost(a, b), per_item_style.mean())


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_total_variation_closed_form(spatial_dims: int) -> None:
    """A unit step along the first axis: one jump of 1 per line, mean over the diff tensor."""
    shape = (4,) * spatial_dims
    x = torch.zeros(1, 1, *shape)
    x[:, :, 2:] = 1.0
    # diff along axis 2 has shape (..., 3, 4, ...) with one row of ones: mean = 1/3
    torch.testing.assert_close(NF.total_variation(x), torch.tensor(1 / 3))


def test_masked_gram_with_full_mask_equals_plain_gram() -> None:
    x = rand(1, 3, 8, 8, seed=12)
    full = torch.ones(1, 1, 16, 16)
    torch.testing.assert_close(
        NF.gram_matrix(x, normalize=True, mask=full), NF.gram_matrix(x, normalize=True)
    )
    half = torch.zeros(1, 1, 8, 8)
    half[..., :4] = 1
    torch.testing.assert_close(
        NF.gram_matrix(x, normalize=True, mask=half), NF.gram_matrix(x[..., :4], normalize=True)
    )


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_resize_any_dims(spatial_dims: int) -> None:
    x = rand(1, 2, *([8] * spatial_dims))
    assert NF.resize(x, [4] * spatial_dims).shape == (1, 2, *([4] * spatial_dims))
    assert NF.resize(x, [11] * spatial_dims).shape == (1, 2, *([11] * spatial_dims))
    torch.testing.assert_close(NF.resize(torch.ones_like(x), [3] * spatial_dims).mean(), torch.tensor(1.0))


def test_shape_errors_say_what_was_expected() -> None:
    with pytest.raises(ShapeError, match=r"\(B, C, \*spatial\).*got shape \(2, 3\)"):
        NF.gram_matrix(torch.ones(2, 3))
    with pytest.raises(ShapeError, match="same shape"):
        NF.content_cost(torch.ones(1, 2, 4), torch.ones(1, 3, 4))
    with pytest.raises(ShapeError, match="channels"):
        NF.style_cost(torch.ones(1, 2, 4), torch.ones(1, 3, 4))
