"""``mask_interior``: style statistics only where a layer's receptive field lies inside the masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from ndstyle import ConvNdExtractor, stylize
from ndstyle import functional as NF
from ndstyle.errors import OptionError
from ndstyle.losses import PerceptualLoss
from ndstyle.tiling import TiledCost

from conftest import SPATIAL_DIMS

SHAPES = {1: (96,), 2: (36, 40), 3: (24, 24, 26)}
TILES = {1: (24,), 2: (12, 12), 3: (8, 8, 8)}


def _box(shape: tuple[int, ...], margin: int = 2) -> torch.Tensor:
    """``(1, 1, *shape)`` float mask: 1 inside a box ``margin`` positions in from every edge."""
    mask = torch.zeros(1, 1, *shape, dtype=torch.float64)
    mask[(slice(None), slice(None), *(slice(margin, n - margin) for n in shape))] = 1.0
    return mask


def _net(spatial_dims: int) -> ConvNdExtractor:
    return ConvNdExtractor.random(spatial_dims, 1, seed=0, widths=(4, 8)).to(torch.float64)


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_erode_mask_is_a_box_erosion_with_the_edge_outside(spatial_dims: int) -> None:
    rng = np.random.default_rng(0)
    shape = SHAPES[spatial_dims]
    mask = ndimage.binary_opening(rng.random(shape) > 0.3)  # blobs with holes and edge contact
    radius = tuple(range(1, spatial_dims + 1))  # a different radius per axis
    structure = np.ones([2 * r + 1 for r in radius], dtype=bool)
    expected = ndimage.binary_erosion(mask, structure=structure, border_value=0)
    eroded = NF.erode_mask(torch.from_numpy(mask.astype(np.float32))[None, None], radius)
    assert eroded.shape == (1, 1, *shape)
    assert np.array_equal(eroded[0, 0].numpy() > 0.5, expected)


@pytest.mark.parametrize("style_loss", ["gram", "sliced-wasserstein"])
@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_the_interior_cost_ignores_what_lies_beyond_the_masks(spatial_dims: int, style_loss: str) -> None:
    """With ``mask_interior`` no matched feature reads a value outside a mask: changing the style's
    or the generated input's values there leaves the style cost unchanged (it changes without)."""
    net = _net(spatial_dims)
    shape = SHAPES[spatial_dims]
    g = torch.Generator().manual_seed(0)
    style = torch.rand(1, 1, *shape, generator=g, dtype=torch.float64)
    x = torch.rand(1, 1, *shape, generator=g, dtype=torch.float64)
    mask = _box(shape)
    outside = (1 - mask) * 5 * torch.rand(1, 1, *shape, generator=g, dtype=torch.float64)

    def style_cost(interior: bool, style_in: torch.Tensor, x_in: torch.Tensor) -> float:
        loss = PerceptualLoss(net, content_layers=[], style_layers=net.default_style_layers,
                              style_loss=style_loss, mask_interior=interior)  # fmt: skip
        loss.set_styles([style_in], masks=[mask])
        loss.set_mask(mask)
        return float(loss(x_in).style)

    for interior in (True, False):
        base = style_cost(interior, style, x)
        moved = [style_cost(interior, style + outside, x), style_cost(interior, style, x + outside)]
        if interior:
            assert moved == pytest.approx([base, base], rel=1e-12)
        else:
            assert all(abs(m - base) > 1e-3 * base for m in moved)


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_interior_masks_tile_to_the_whole_gradient_in_float64(spatial_dims: int) -> None:
    net = _net(spatial_dims)
    shape = SHAPES[spatial_dims]
    g = torch.Generator().manual_seed(1)
    content, style, x0 = (torch.rand(1, 1, *shape, generator=g, dtype=torch.float64) for _ in range(3))
    layers = {"content_layers": list(net.default_content_layers), "style_layers": net.default_style_layers}
    loss = PerceptualLoss(net, style_weight=100.0, mask_interior=True, **layers)
    loss.set_content(content)
    loss.set_styles([style], masks=[_box(shape, 3)])
    loss.set_mask(_box(shape))
    x = x0.clone().requires_grad_(True)
    whole = loss(x)
    whole.total.backward()
    g_whole = x.grad.clone()
    x.grad = None
    cost = TiledCost(loss, content, TILES[spatial_dims])
    assert len(cost.tiles) > 2
    tiled = cost.backward(x * 1.0)
    assert float(tiled.total) == pytest.approx(float(whole.total.detach()), rel=1e-12)
    assert float((x.grad - g_whole).norm() / g_whole.norm()) < 1e-12


def test_a_mask_too_small_for_a_layer_keeps_its_whole_mask_there() -> None:
    net = _net(2)
    loss = PerceptualLoss(net, content_layers=[], style_layers=net.default_style_layers, mask_interior=True)
    tiny = _box((16, 16), 6)  # a 4x4 square: no position of a deep layer has its field inside it
    deepest = list(loss.style_layer_weights)[-1]
    assert torch.equal(loss.region(tiny, deepest), tiny)
    assert float(loss.region(_box((36, 40)), deepest).sum()) < float(_box((36, 40)).sum())


def test_extractors_without_known_receptive_fields_are_refused() -> None:
    from ndstyle.extractors.volume import SliceExtractor

    slices = SliceExtractor(ConvNdExtractor.random(2, 1, seed=0, widths=(8, 16)), 1)
    layers = slices.default_style_layers
    with pytest.raises(OptionError, match="mask_interior needs an extractor whose receptive fields"):
        PerceptualLoss(slices, content_layers=[], style_layers=layers, mask_interior=True)


def test_stylize_takes_mask_interior_and_keeps_the_outside() -> None:
    shape = SHAPES[2]
    g = torch.Generator().manual_seed(2)
    content, style = torch.rand(1, *shape, generator=g), torch.rand(1, *shape, generator=g)
    net = ConvNdExtractor.random(2, 1, seed=0, widths=(4, 8))
    mask = _box(shape)[0, 0].float()
    result = stylize(content, style, extractor=net, mask=mask, style_masks=[mask], mask_interior=True,
                     steps=5, scales=1, progress=False, seed=0)  # fmt: skip
    assert result.best_cost < result.history[0].total
    assert torch.equal(result.output[0][mask < 0.5], content[0][mask < 0.5])
