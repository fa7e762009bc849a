"""The strength knob: 0 keeps the content, more strength more style, same meaning at any scale."""

from __future__ import annotations

import pytest
import torch

from ndstyle import ConvNdExtractor, evaluate_costs, stylize
from ndstyle.errors import OptionError
from ndstyle.losses import PerceptualLoss, calibrate_weights

from conftest import SPATIAL_DIMS
from conftest import make_pair as full_pair

SIZES = {1: 128, 2: 32, 3: 12}


def make_pair(spatial_dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """conftest's pair cut to a smaller grid (these tests run many transfers)."""
    crop = (slice(None),) + (slice(0, SIZES[spatial_dims]),) * spatial_dims
    content, style = full_pair(spatial_dims)
    return content[crop].contiguous(), style[crop].contiguous()


def net(spatial_dims: int, scale: float = 1.0) -> ConvNdExtractor:
    extractor = ConvNdExtractor.random(spatial_dims, 1, seed=0, widths=(8, 16))
    if scale != 1.0:  # zero biases and ReLUs: every activation is multiplied by `scale`
        first = next(m for m in extractor.modules() if isinstance(m, torch.nn.modules.conv._ConvNd))
        with torch.no_grad():
            first.weight.mul_(scale)
    return extractor


def run(spatial_dims: int, strength: float, scale: float = 1.0, **kwargs: object) -> torch.Tensor:
    content, style = make_pair(spatial_dims)
    options = {"steps": 6, "scales": 1, "optimizer": "adam", "lr": 0.02, "progress": False, **kwargs}
    return stylize(content, style, extractor=net(spatial_dims, scale), strength=strength, **options).output


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_strength_zero_keeps_the_content_and_more_strength_gives_more_style(spatial_dims: int) -> None:
    content, style = make_pair(spatial_dims)
    assert torch.equal(run(spatial_dims, 0.0), content)
    style_costs = [
        evaluate_costs(net(spatial_dims), content, style, run(spatial_dims, s))["style"]
        for s in (0.25, 0.75, 1.0)
    ]
    assert style_costs[0] > style_costs[1] > style_costs[2]


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
@pytest.mark.parametrize("style_loss", ["gram", "mean-cov"])
def test_strength_means_the_same_whatever_the_scale_of_the_features(
    spatial_dims: int, style_loss: str
) -> None:
    """Features x10 multiply the Gram cost by 1e4 and the content cost by 1e2: same result.

    (the Gram cost's share grows 100-fold; W2 is quadratic like the content cost). Measured
    against the change the run makes: Adam's epsilon and float rounding are not scale free.
    """
    content, style = make_pair(spatial_dims)
    plain = run(spatial_dims, 0.5, style_loss=style_loss)
    scaled = run(spatial_dims, 0.5, scale=10.0, style_loss=style_loss)
    change = (plain - content).abs().max()
    assert (scaled - plain).abs().max() < 0.05 * change


def test_calibration_balances_the_gradients_and_explicit_weights_override() -> None:
    content, style = make_pair(2)
    loss = PerceptualLoss(
        net(2),
        content_layers=["relu2"] if "relu2" in net(2).layer_names else list(net(2).default_content_layers),
        style_layers=net(2).default_style_layers,
    )
    loss.set_content(content[None])
    loss.set_styles([style[None]])
    found = calibrate_weights(loss, content[None], 0.5, by="gradient")
    assert found.content_gradient > 0 and found.style_gradient > 0
    # at 1/2 the weighted forces are equal: alpha * g_C == beta * g_S
    assert found.content_weight * found.content_gradient == pytest.approx(
        found.style_weight * found.style_gradient
    )
    texture = calibrate_weights(loss, content[None], 1.0, by="gradient")
    assert texture.content_weight == 0 and texture.style_weight > 0
    with pytest.warns(UserWarning, match="strength is ignored"):
        stylize(
            content,
            style,
            extractor=net(2),
            strength=0.3,
            style_weight=5.0,
            steps=1,
            scales=1,
            progress=False,
        )


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "strong"])
def test_strength_outside_zero_one_is_refused(value: object) -> None:
    content, style = make_pair(1)
    with pytest.raises(OptionError, match=r"strength must be a number in \[0, 1\]"):
        stylize(content, style, extractor=net(1), strength=value, steps=1, progress=False)  # type: ignore[arg-type]


def test_texture_synthesis_from_noise_moves_even_when_the_content_is_the_style() -> None:
    """No content term: the style force is measured at the noise (at the content it is 0 here)."""
    content, style = make_pair(2)
    result = stylize(
        style, style, extractor=net(2), content_weight=0, init="noise", steps=6, scales=1, progress=False
    )
    assert result.history[-1].style < 0.5 * result.history[0].style


@pytest.mark.parametrize("spatial_dims", SPATIAL_DIMS)
def test_value_calibration_balances_the_normalised_costs(spatial_dims: int) -> None:
    """``by="value"``: alpha J_C(noise) : beta J_S(content) = (1 - s) : s, weighted gradients sum to k."""
    content, style = make_pair(spatial_dims)
    extractor = net(spatial_dims)
    loss = PerceptualLoss(
        extractor,
        content_layers=list(extractor.default_content_layers),
        style_layers=extractor.default_style_layers,
    )
    loss.set_content(content[None])
    loss.set_styles([style[None]])
    found = calibrate_weights(loss, content[None], 0.3, content_weight=2.0, by="value")
    assert found.by == "value" and found.content_value > 0 and found.style_value > 0
    content_share = found.content_weight * found.content_value
    style_share = found.style_weight * found.style_value
    assert content_share / style_share == pytest.approx(0.7 / 0.3, rel=1e-6)
    pulls = found.content_weight * found.content_gradient + found.style_weight * found.style_gradient
    assert pulls == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(OptionError, match="by"):
        calibrate_weights(loss, content[None], 0.3, by="nonsense")
