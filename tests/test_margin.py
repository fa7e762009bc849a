"""``margin``: the content mirrored around every border is optimised too and cut off the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import ndstyle
from ndstyle import ConvNdExtractor, stylize
from ndstyle.engine import mirror_pad
from ndstyle.errors import OptionError

from conftest import SPATIAL_DIMS

SHAPES = {1: (64,), 2: (24, 28), 3: (16, 16, 18)}


def _inputs(spatial_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(spatial_dims)
    shape = SHAPES[spatial_dims]
    return torch.rand(1, *shape, generator=g), torch.rand(1, *shape, generator=g)


def _net(spatial_dims: int) -> ConvNdExtractor:
    return ConvNdExtractor.random(spatial_dims, 1, seed=0, widths=(4, 8))


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_mirror_pad_continues_the_picture_without_repeating_the_edge(spatial_dims: int) -> None:
    content, _ = _inputs(spatial_dims)
    padded = mirror_pad(content[None], 3)[0]
    assert padded.shape[1:] == tuple(n + 6 for n in content.shape[1:])
    inner = (slice(None), *(slice(3, n + 3) for n in content.shape[1:]))
    assert torch.equal(padded[inner], content)
    first_axis = padded.movedim(1, 0)  # the mirror of position 1 lies at -1, i.e. padded index 2
    assert torch.equal(first_axis[2], first_axis[4])


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_the_margin_is_optimised_and_cut_off(spatial_dims: int) -> None:
    content, style = _inputs(spatial_dims)
    seen: list[tuple[int, ...]] = []

    def look(info: ndstyle.StepInfo) -> None:
        seen.append(tuple(info.best.shape[2:]))
        assert info.current.shape == info.best.shape

    result = stylize(
        content,
        style,
        extractor=_net(spatial_dims),
        steps=3,
        scales=1,
        margin=2,
        progress=False,
        callback=look,
    )
    assert result.output.shape == content.shape
    optimised = tuple(n + 4 for n in content.shape[1:])
    assert result.scales == [optimised] and result.history[-1].shape == optimised
    assert seen == [tuple(content.shape[1:])] * 3  # callbacks see the content's grid
    plain = stylize(content, style, extractor=_net(spatial_dims), steps=3, scales=1, progress=False)
    assert not torch.equal(plain.output, result.output)  # the margin changed the optimisation


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_the_mask_is_mirrored_with_the_content(spatial_dims: int) -> None:
    """Outside the mask the result is the content exactly, also next to the border."""
    content, style = _inputs(spatial_dims)
    mask = torch.zeros(content.shape[1:])
    mask[tuple(slice(n // 4, n - n // 4) for n in content.shape[1:])] = 1.0
    result = stylize(
        content, style, extractor=_net(spatial_dims), mask=mask, steps=3, scales=2, margin=3, progress=False
    )
    outside = mask == 0
    assert torch.equal(result.output[:, outside], content[:, outside])
    assert not torch.equal(result.output[:, ~outside], content[:, ~outside])


def test_a_margin_with_a_pyramid_and_an_init_keeps_the_contents_grid() -> None:
    content, style = _inputs(2)
    init = content.flip(-1)
    result = stylize(
        content, style, extractor=_net(2), init=init, steps=2, scales=2, margin=3, progress=False
    )
    assert result.output.shape == content.shape
    assert [len(s) for s in result.scales] == [2, 2] and result.scales[-1] == (30, 34)


@pytest.mark.parametrize("bad", [-1, 1.5, True, 24])
def test_a_bad_margin_is_refused_in_one_line(bad: object) -> None:
    content, style = _inputs(2)
    with pytest.raises(OptionError, match="margin") as error:
        stylize(content, style, extractor=_net(2), steps=1, margin=bad, progress=False)  # type: ignore[arg-type]
    assert "\n" not in str(error.value)


def test_a_margin_removes_the_dark_edge_of_a_real_pair() -> None:
    """rocket + gravel (scikit-image): without a margin the result's outermost ring is darker than
    the next ones (docs/style-losses.md measured 0.52 at 128 px); with 4 mirrored pixels it is not."""
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    from ndstyle.metrics.image import border_frame

    def rgb(name: str, size: int) -> torch.Tensor:
        with Image.open(Path(skimage.__file__).parent / "data" / name) as image:
            image = image.convert("RGB")
            scale = size / max(image.size)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
            return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255

    content, style = rgb("rocket.jpg", 96), rgb("gravel.png", 96)
    net = ndstyle.build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    frames = {
        margin: border_frame(
            stylize(
                content, style, extractor=net, steps=60, scales=1, seed=0, margin=margin, progress=False
            ).output
        )
        for margin in (0, 4)
    }
    assert frames[4] < frames[0] / 2
