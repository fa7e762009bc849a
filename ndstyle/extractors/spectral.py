"""A differentiable spectral front end for audio (Ulyanov & Lebedev 2016).

The waveform ``(B, C, T)`` goes through ``log(1 + |STFT|)`` (Hann window, ``n_fft``/``hop``), the
frequency bins become the channels of a 1-D signal over frames, and random seeded ``Conv1d`` filters
(one wide layer of many filters, or several dilated branches) read it. Everything is differentiable,
so the optimised variable stays the waveform and no phase has to be guessed.

Stereo and multichannel audio: each audio channel is analysed on its own with the *same* filters
(channels are folded into the batch axis), so activations are ``(B * C, filters, frames)`` and the
style Gram is per audio channel: the left channel takes the left style channel's statistics.

:class:`SpectrogramConvExtractor` is the same network without the STFT, for the Griffin-Lim mode
that optimises the log-magnitude spectrogram itself (see :func:`griffin_lim`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import OptionError
from . import register_extractor
from .base import FeatureExtractor

#: Defaults sized for CPU: a 60 s stereo clip at 44.1 kHz costs a few seconds per L-BFGS step.
DEFAULT_N_FFT = 1024
DEFAULT_HOP = 512
DEFAULT_FILTERS = 512
DEFAULT_KERNEL = 11


def log_magnitude(x: torch.Tensor, window: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``log(1 + |STFT(x)|)`` of every channel.

    Args:
        x: waveform ``(B, C, T)``.
        window: Hann window ``(n_fft,)``.
        n_fft: FFT size; hop: hop length in samples.

    Returns:
        ``(B * C, n_fft // 2 + 1, frames)`` with frames ``= 1 + T // hop`` (centred frames).

    """
    flat = x.reshape(-1, x.shape[-1])
    pad_mode = "reflect" if flat.shape[-1] > n_fft // 2 else "constant"
    spec = torch.stft(
        flat,
        n_fft,
        hop_length=hop,
        window=window.to(flat.dtype),
        center=True,
        pad_mode=pad_mode,
        return_complex=True,
    )
    return torch.log1p(spec.abs())


class _ConvBank(nn.Module):
    """Random seeded Conv1d branches (one per dilation) with ReLU, applied to a spectrogram."""

    def __init__(
        self, bins: int, filters: int, kernel_size: int, dilations: Sequence[int], seed: int
    ) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        per_branch = max(1, filters // len(dilations))
        self.dilations = tuple(int(d) for d in dilations)
        self.names = ["conv"] if len(self.dilations) == 1 else [f"conv_d{d}" for d in self.dilations]
        self.convs = nn.ModuleList()
        for d in self.dilations:
            conv = nn.Conv1d(bins, per_branch, kernel_size, dilation=d, padding=d * (kernel_size // 2))
            bound = math.sqrt(2.0 / (bins * kernel_size))  # He-style scale: ReLU outputs of order 1
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * bound)
                if conv.bias is not None:
                    conv.bias.zero_()
            self.convs.append(conv)


class SpectrogramConvExtractor(FeatureExtractor):
    """Random Conv1d filters over a log-magnitude spectrogram ``(B, bins, frames)``.

    Layers: ``conv``/``relu`` (one branch) or ``conv_d{d}``/``relu_d{d}`` per dilation ``d``;
    all branches read the spectrogram in parallel. Two layers read the spectrogram itself:

    * ``spectrum``: the log-magnitudes with one constant channel appended ``(B', bins + 1, frames)``.
      Its Gram holds, besides the bins' second moments, the row of their means over frames: the
      long-term spectrum, which a style term on this layer matches directly.
    * ``envelope``: the log energy of each frame ``log(1e-4 + mean |X|^2)`` ``(B', 1, frames)``, a
      loudness envelope; as the content layer it keeps the content's rhythm and syllables but not
      its timbre.
    """

    default_style_weight = 1e4
    default_strength = None  # measured with its style weight (docs/signals.md)

    def __init__(
        self,
        bins: int,
        *,
        filters: int = DEFAULT_FILTERS,
        kernel_size: int = DEFAULT_KERNEL,
        dilations: Sequence[int] = (1,),
        seed: int = 0,
        in_channels: int | None = None,
    ) -> None:
        if filters < 1 or kernel_size < 1 or not dilations or min(dilations) < 1:
            raise OptionError(
                f"spectral extractor needs filters >= 1, kernel_size >= 1 and dilations >= 1, got "
                f"filters={filters}, kernel_size={kernel_size}, dilations={tuple(dilations)}"
            )
        super().__init__(1, bins if in_channels is None else in_channels)
        self.bank = _ConvBank(bins, filters, kernel_size, dilations, seed)
        for name, conv in zip(self.bank.names, self.bank.convs, strict=True):
            self.layers[name] = conv
            self.layers[name.replace("conv", "relu")] = nn.ReLU()
        self.layers["spectrum"] = nn.Identity()
        self.layers["envelope"] = nn.Identity()
        relus = [n.replace("conv", "relu") for n in self.bank.names]
        self.default_content_layers = tuple(relus)
        self.default_style_layers = {n: 1.0 for n in relus}
        self.bins, self.filters, self.kernel_size = bins, filters, kernel_size
        self.seed = seed

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C * bins, frames)`` -> ``(B * C, bins, frames)``: each audio channel on its own."""
        return x.reshape(-1, self.bins, x.shape[-1])

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations ``(B', filters_per_branch, frames)`` of ``layers``."""
        self.check_input(x)
        wanted = self.check_layers(layers)
        spec = self.spectrogram(x)
        out: dict[str, torch.Tensor] = {}
        if "spectrum" in wanted:
            out["spectrum"] = torch.cat([spec, torch.ones_like(spec[:, :1])], dim=1)
        if "envelope" in wanted:  # log frame energy, from log(1 + |X|)
            out["envelope"] = torch.log(torch.expm1(spec).pow(2).mean(dim=1, keepdim=True) + 1e-4)
        for name, conv in zip(self.bank.names, self.bank.convs, strict=True):
            relu = name.replace("conv", "relu")
            if name in wanted or relu in wanted:
                h = conv(spec)
                if name in wanted:
                    out[name] = h
                if relu in wanted:
                    out[relu] = torch.relu(h)
        return out

    def describe(self) -> str:
        return (
            f"{type(self).__name__}(bins={self.bins}, filters={self.filters}, "
            f"kernel={self.kernel_size}, dilations={self.bank.dilations}, seed={self.seed})"
        )


class SpectralExtractor(SpectrogramConvExtractor):
    """Waveform ``(B, C, T)`` -> ``log(1+|STFT|)`` per channel -> random Conv1d over frames.

    Args:
        in_channels: audio channels ``C`` (1 mono, 2 stereo...).
        n_fft: FFT size (bins ``n_fft // 2 + 1`` become the conv's input channels).
        hop: hop length in samples.
        filters: total number of random filters (split evenly over the dilated branches).
        kernel_size: filter width in frames.
        dilations: one branch per dilation; ``(1,)`` is Ulyanov & Lebedev's single wide layer.
        seed: seeds the random filters.

    """

    window: torch.Tensor
    default_precision = "bf16"  # the STFT stays fp32; the conv bank in bf16 (docs/benchmarks.md)

    def __init__(
        self,
        in_channels: int,
        *,
        n_fft: int = DEFAULT_N_FFT,
        hop: int = DEFAULT_HOP,
        filters: int = DEFAULT_FILTERS,
        kernel_size: int = DEFAULT_KERNEL,
        dilations: Sequence[int] = (1,),
        seed: int = 0,
    ) -> None:
        if n_fft < 2 or hop < 1:
            raise OptionError(f"spectral extractor needs n_fft >= 2 and hop >= 1, got {n_fft} and {hop}")
        super().__init__(
            n_fft // 2 + 1,
            filters=filters,
            kernel_size=kernel_size,
            dilations=dilations,
            seed=seed,
            in_channels=in_channels,
        )
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        # measured on real speech -> rain (docs/signals.md): content on the loudness envelope, style
        # on the random filters plus the long-term spectrum moves the timbre (1/3-octave distance to
        # the style 0.11 of the content's) and keeps the rhythm (envelope correlation 0.88);
        # content on ``relu`` keeps the speech's spectrum (0.80)
        self.default_content_layers = ("envelope",)
        self.default_style_layers = {
            **{n.replace("conv", "relu"): 1.0 for n in self.bank.names},
            "spectrum": 1.0,
        }

    def spectrogram(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T)`` -> ``(B * C, bins, frames)`` log magnitudes."""
        return log_magnitude(x, self.window, self.n_fft, self.hop)

    def min_input_size(self, layers: Sequence[str]) -> int:
        return 2

    def describe(self) -> str:
        return f"{super().describe()[:-1]}, n_fft={self.n_fft}, hop={self.hop}, channels={self.in_channels})"


def griffin_lim(
    magnitude: torch.Tensor,
    phase: torch.Tensor,
    *,
    n_fft: int,
    hop: int,
    length: int,
    iterations: int = 32,
) -> torch.Tensor:
    """Rebuild waveforms from magnitudes with Griffin-Lim, starting from a given phase.

    Args:
        magnitude: ``|STFT|`` ``(C, bins, frames)`` (linear, not log).
        phase: starting phase ``(C, bins, frames)`` (e.g. the content's), radians.
        n_fft: FFT size; hop: hop length; length: samples of the output.
        iterations: projections; 0 returns the ISTFT with the starting phase.

    Returns:
        Waveform ``(C, length)``.

    """
    window = torch.hann_window(n_fft, dtype=magnitude.dtype)
    angles = torch.polar(torch.ones_like(magnitude), phase)
    wave = torch.istft(magnitude * angles, n_fft, hop_length=hop, window=window, length=length)
    for _ in range(iterations):
        spec = torch.stft(wave, n_fft, hop_length=hop, window=window, return_complex=True)
        angles = spec / spec.abs().clamp_min(1e-8)
        wave = torch.istft(magnitude * angles, n_fft, hop_length=hop, window=window, length=length)
    return wave


def _spectral(spatial_dims: int, in_channels: int, **options: Any) -> FeatureExtractor:
    if spatial_dims != 1:
        raise OptionError(f"the spectral extractors take 1-D audio (spatial_dims=1), got {spatial_dims}")
    return SpectralExtractor(in_channels, **options)


def _spectral_multiscale(spatial_dims: int, in_channels: int, **options: Any) -> FeatureExtractor:
    options.setdefault("dilations", (1, 2, 4, 8))
    return _spectral(spatial_dims, in_channels, **options)


register_extractor("spectral", _spectral)
register_extractor("spectral-multiscale", _spectral_multiscale)

__all__ = ["SpectralExtractor", "SpectrogramConvExtractor", "griffin_lim", "log_magnitude"]
