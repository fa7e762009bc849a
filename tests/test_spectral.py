import math

import pytest
import torch

from ndstyle.engine import evaluate_costs, stylize
from ndstyle.errors import OptionError
from ndstyle.extractors import available_extractors, build_extractor
from ndstyle.extractors.spectral import SpectralExtractor, griffin_lim

RATE = 8000


def tone(freq: float, samples: int = 4000, channels: int = 1) -> torch.Tensor:
    t = torch.arange(samples) / RATE
    return torch.stack([0.5 * torch.sin(2 * math.pi * freq * (c + 1) * t) for c in range(channels)])


def small(channels: int, name: str = "spectral") -> SpectralExtractor:
    ex = build_extractor(name, spatial_dims=1, in_channels=channels, n_fft=256, hop=128, filters=64)
    assert isinstance(ex, SpectralExtractor)
    return ex


def test_registered_names() -> None:
    names = available_extractors()
    assert "spectral" in names and "spectral-multiscale" in names


@pytest.mark.parametrize("name", ["spectral", "spectral-multiscale"])
def test_gradient_reaches_waveform(name: str) -> None:
    ex = small(2, name)
    x = tone(440, 2000, channels=2)[None].requires_grad_(True)
    feats = ex(x, list(ex.default_style_layers))
    sum(f.square().mean() for f in feats.values()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert float(x.grad.abs().sum()) > 0
    assert float(x.grad[0, 1].abs().sum()) > 0  # second channel too


def test_channels_use_same_filters_separately() -> None:
    ex = small(2)
    a, b = tone(300, 2000), tone(700, 2000)
    both = ex(torch.cat([a, b])[None], ["relu"])["relu"]
    assert both.shape[0] == 2  # channels folded into the batch
    assert torch.allclose(both[0], small(1)(a[None], ["relu"])["relu"][0], atol=1e-5)


def test_seeded_and_deterministic() -> None:
    x = tone(440, 1000)[None]
    assert torch.equal(small(1)(x, ["relu"])["relu"], small(1)(x, ["relu"])["relu"])


def test_bad_options() -> None:
    with pytest.raises(OptionError):
        build_extractor("spectral", spatial_dims=2, in_channels=1)
    with pytest.raises(OptionError):
        build_extractor("spectral", spatial_dims=1, in_channels=1, filters=0)


def test_short_transfer_reduces_style_cost_tenfold() -> None:
    content = tone(440, 4000)
    style = (torch.rand(1, 3000, generator=torch.Generator().manual_seed(1)) - 0.5) * 0.4
    ex = small(1)
    # the classic Ulyanov layers (the audio recipe's envelope/spectrum defaults start from noise)
    ex.default_content_layers, ex.default_style_layers = ("relu",), {"relu": 1.0}
    before = evaluate_costs(ex, content, style, content)["style"]
    result = stylize(content, style, extractor=ex, steps=20, scales=1, progress=False, value_range=None)
    after = evaluate_costs(ex, content, style, result.output)["style"]
    assert after <= before / 10
    assert result.output.shape == content.shape


def test_griffin_lim_from_true_phase_rebuilds_signal() -> None:
    x = tone(440, 2000, channels=2).double()
    window = torch.hann_window(256, dtype=torch.float64)
    spec = torch.stft(x, 256, hop_length=64, window=window, return_complex=True)
    y = griffin_lim(spec.abs(), spec.angle(), n_fft=256, hop=64, length=2000, iterations=4)
    assert y.shape == x.shape
    assert torch.allclose(y, x, atol=1e-6)
