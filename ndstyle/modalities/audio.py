"""Audio files (WAV, FLAC, OGG through soundfile): style transfer on the waveform.

Content and style may have different sample rates, lengths and channel counts: both are resampled
(``scipy.signal.resample_poly``) to a working rate (default: the content's), the style's channels
are matched to the content's (mono is repeated, multichannel is averaged to mono). The result is
written at the content's rate, channel count, length and subtype; if it would clip it is
peak-normalised and the gain change is logged (logger ``ndstyle``).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..engine import StyleTransferResult, stylize
from ..errors import InputFileError, OptionError
from ..options import TransferOptions
from .base import Loaded, Modality, Prepared, standard_info

logger = logging.getLogger("ndstyle")
#: Output extension -> soundfile container.
CONTAINERS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}

#: Largest absolute value written to integer files (just under full scale).
PEAK = 0.999
DEFAULT_STEPS = 100


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample ``x`` ``(C, T)`` from ``rate_in`` to ``rate_out`` Hz along the last axis."""
    if rate_in == rate_out:
        return x
    from scipy.signal import resample_poly

    ratio = Fraction(rate_out, rate_in)
    return resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


def read_audio(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``path`` as float64 ``(C, T)`` in [-1, 1] plus rate, subtype, format and length."""
    import soundfile as sf

    if not path.is_file():
        raise InputFileError(f"{str(path)!r} does not exist or is not a file")
    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError) as error:
        raise InputFileError(f"{str(path)!r} is not a readable audio file ({error})") from error
    if data.shape[0] == 0:
        raise InputFileError(f"{str(path)!r} holds no samples")
    meta = {
        "sample_rate": int(rate),
        "channels": int(data.shape[1]),
        "frames": int(data.shape[0]),
        "subtype": info.subtype,
        "format": info.format,
    }
    return np.ascontiguousarray(data.T), meta


class AudioModality(Modality):
    """WAV/FLAC/OGG audio, optimised as a waveform seen through a spectral front end."""

    name = "audio"
    extensions = (".wav", ".flac", ".ogg")
    spatial_dims = 1
    description = "audio (soundfile: WAV, FLAC, OGG), mono or multichannel, any rate"

    #: waveform mode starts from noise: from the content, 100 L-BFGS steps cannot remove the speech's
    #: own spectrum (docs/signals.md); Griffin-Lim mode starts from the content's spectrogram
    defaults: ClassVar[dict[str, Any]] = {"init": "noise", "scales": 1, "steps": DEFAULT_STEPS}
    stylize_defaults: ClassVar[dict[str, Any]] = {"value_range": None}
    default_extractor = "spectral"

    # -- reading ---------------------------------------------------------------------------------
    def load(self, path: Path, options: TransferOptions | None = None) -> Loaded:
        """Read the content at the working rate: ``(C, T_work)`` float32."""
        data, meta = read_audio(path)
        working = (options.working_rate if options is not None else None) or meta["sample_rate"]
        meta["working_rate"] = int(working)
        data = resample(data, meta["sample_rate"], meta["working_rate"])
        return Loaded(torch.from_numpy(data.astype(np.float32)), meta, path)

    def load_style(self, path: Path, content: Loaded, options: TransferOptions | None = None) -> Loaded:
        """Read a style at the content's working rate with the content's channel count."""
        data, meta = read_audio(path)
        channels = content.tensor.shape[0]
        if data.shape[0] != channels:
            mono = data.mean(axis=0, keepdims=True)
            data = np.repeat(mono, channels, axis=0)
            meta["channels_matched"] = f"{meta['channels']} -> {channels}"
        data = resample(data, meta["sample_rate"], content.meta["working_rate"])
        return Loaded(torch.from_numpy(data.astype(np.float32)), meta, path)

    # -- transfer --------------------------------------------------------------------------------
    def build_extractor(
        self, content: Loaded, styles: list[Loaded], options: TransferOptions, **builder_options: Any
    ) -> Any:
        """The spectral front end with the STFT options, or any other extractor."""
        spec = options.extractor if options.extractor is not None else self.default_extractor
        if spec in ("spectral", "spectral-multiscale"):
            builder_options = {"n_fft": options.n_fft, "hop": options.hop, "filters": options.filters}
        return super().build_extractor(content, styles, options, **builder_options)

    def prepare(self, content: Loaded, styles: list[Loaded], options: TransferOptions) -> Prepared:
        """Waveform mode builds the extractor; griffin-lim mode builds it in :meth:`run`."""
        if options.audio_mode == "waveform":
            return super().prepare(content, styles, options)
        return Prepared(content, content.tensor, [s.tensor for s in styles], {})

    def run(
        self, prepared: Prepared, kwargs: dict[str, Any], options: TransferOptions
    ) -> StyleTransferResult:
        """Waveform mode: stylize the waveform; griffin-lim mode: the spectrogram, then rebuild."""
        if options.audio_mode == "waveform":
            return stylize(prepared.tensor, prepared.styles, **kwargs)
        return self._griffin_lim_transfer(prepared, kwargs, options)

    def _griffin_lim_transfer(
        self, prepared: Prepared, options: dict[str, Any], transfer_options: TransferOptions
    ) -> StyleTransferResult:
        from ..extractors.spectral import SpectrogramConvExtractor, griffin_lim

        spec = transfer_options.extractor or "spectral"
        if options.get("callback") is not None:
            raise OptionError(
                "--save-every is not available with --audio-mode griffin-lim (it optimises a spectrogram)"
            )
        if spec not in ("spectral", "spectral-multiscale"):
            raise OptionError(
                "--audio-mode griffin-lim works with --extractor spectral or spectral-multiscale"
            )
        opts = {
            "n_fft": transfer_options.n_fft,
            "hop": transfer_options.hop,
            "filters": transfer_options.filters,
            "seed": transfer_options.seed,
        }
        content_tensor = prepared.tensor
        n_fft, hop = opts["n_fft"], opts["hop"]
        window = torch.hann_window(n_fft)
        channels, length = content_tensor.shape

        def stft(x: torch.Tensor) -> torch.Tensor:
            return torch.stft(x, n_fft, hop_length=hop, window=window, return_complex=True)

        content_spec = stft(content_tensor)  # (C, bins, frames)
        bins = content_spec.shape[1]

        def as_input(s: torch.Tensor) -> torch.Tensor:
            return torch.log1p(s.abs()).reshape(channels * bins, -1).contiguous()

        extractor = SpectrogramConvExtractor(
            bins,
            filters=opts["filters"],
            dilations=(1, 2, 4, 8) if spec == "spectral-multiscale" else (1,),
            seed=opts["seed"],
            in_channels=channels * bins,
        )
        options.update(extractor=extractor, value_range=(0.0, float("inf")))
        if options.get("init", "noise") == "noise":
            logger.info("audio: --audio-mode griffin-lim starts from the content's spectrogram")
            options["init"] = "content"
        if options.get("optimizer", "lbfgs") == "lbfgs":
            # L-BFGS's first steps overshoot on raw log-magnitudes (the cost becomes inf); Adam with
            # a step of 0.02 log-units is stable.
            logger.info("audio: --audio-mode griffin-lim optimises with Adam (lr 0.02)")
            options["optimizer"] = "adam"
            options["lr"] = options.get("lr") or 0.02
        result = stylize(as_input(content_spec), [as_input(stft(s)) for s in prepared.styles], **options)
        magnitude = torch.expm1(result.output.reshape(channels, bins, -1)).clamp_min(0)
        result.output = griffin_lim(
            magnitude.double(), content_spec.angle().double(), n_fft=n_fft, hop=hop, length=length
        ).float()
        return result

    # -- writing ---------------------------------------------------------------------------------
    def save(
        self, path: Path, result: torch.Tensor, content: Loaded, options: TransferOptions | None = None
    ) -> None:
        """Write at the content's rate, channels, length and subtype; peak-normalise if it would clip.

        The container follows ``path``'s extension (WAV, FLAC or OGG); the content's subtype is kept
        where that container supports it, else the container's default subtype is used.
        """
        import soundfile as sf

        meta = content.meta
        data = resample(result.detach().double().cpu().numpy(), meta["working_rate"], meta["sample_rate"])
        frames = meta["frames"]
        if data.shape[1] < frames:
            data = np.pad(data, ((0, 0), (0, frames - data.shape[1])))
        data = data[:, :frames]
        peak = float(np.abs(data).max()) if data.size else 0.0
        limit = 1.0 if meta["subtype"] in ("FLOAT", "DOUBLE") else PEAK
        if peak > limit:
            gain = limit / peak
            data = data * gain
            logger.warning(
                "audio: result peak %.3f would clip; scaled by %.4f (%.2f dB)",
                peak,
                gain,
                20 * np.log10(gain),
            )
        container = CONTAINERS.get(Path(path).suffix.lower(), meta["format"])
        subtype = meta["subtype"]
        if not sf.check_format(container, subtype):
            subtype = sf.default_subtype(container)
        sf.write(str(path), data.T, meta["sample_rate"], subtype=subtype, format=container)

    def preview(self, path: Path, content: Loaded, styles: list[Loaded], result: torch.Tensor) -> None:
        """Waveforms (top) and spectrograms (bottom) of content, styles and result on one dB scale."""
        from ..signal_plots import audio_figure

        rate = content.meta["working_rate"]
        panels = [("content", content.tensor), *[(f"style {i + 1}", s.tensor) for i, s in enumerate(styles)]]
        panels.append(("result", result))
        audio_figure(path, [(t, x.detach().double().cpu().numpy()) for t, x in panels], rate)

    def info(self, path: Path) -> dict[str, Any]:
        """Channels, frames, rate (duration as extent), subtype and container."""
        data, meta = read_audio(path)
        return standard_info(
            channels=meta["channels"],
            shape=(meta["frames"],),
            spacing=(1.0 / meta["sample_rate"],),
            unit="s",
            dtype=meta["subtype"],
            sample_rate=meta["sample_rate"],
            format=meta["format"],
        )


MODALITY = AudioModality()
