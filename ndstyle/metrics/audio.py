"""Audio judge: what a sound designer checks (timbre moved to the style, rhythm kept, texture).

All measures work on waveforms ``(channels, samples)`` at one sample rate (channels are averaged
to mono for the spectrum and the envelope):

* **Long-term spectrum** (:func:`third_octave_ltas`): Welch power spectrum (Hann, 8192-point
  segments or the whole clip) summed into 1/3-octave bands (centres ``1000 * 2**(k/3)`` Hz from
  63 Hz to ``min(16 kHz, 0.45 * rate)``), in dB, each band floored 80 dB under the loudest and the
  mean over bands removed, so only the spectral *shape* counts. ``ltas_distance_db`` is the mean
  absolute dB difference over bands to the style's; ``ltas_ratio`` divides the result's by the
  content's (1 = unchanged, 0 = the style's timbre).
* **Envelope** (:func:`frame_envelope`): RMS in 25 ms frames every 10 ms; ``envelope_corr`` is its
  Pearson correlation between result and content (the rhythm and syllables kept).
* **Texture in another network**: Gram matrices of a spectral network that the optimisation does
  not see (``log(1+|STFT|)`` with a 2048-point FFT, hop 256, 256 random Conv1d filters of width 5,
  seed 20260): ``texture_distance`` is ``|G_x - G_style| / |G_style|`` for the result and the
  content; ``texture_ratio`` = result / content.
* ``passes``: the targets of issue 16 (:data:`TARGETS`): ``ltas_ratio`` at most a third (the
  result's long-term spectrum at most a third as far from the style's as the content's) and
  ``envelope_corr`` at least 0.8.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from scipy import signal

from . import verdicts

#: Thresholds of issue 16 (what a sound designer would accept of a timbre transfer).
TARGETS = {"ltas_ratio": 1 / 3, "envelope_corr": 0.8}
#: Which side of each target passes.
TARGET_SIDES = {"ltas_ratio": "<=", "envelope_corr": ">="}
ENVELOPE_FRAME = 0.025
ENVELOPE_HOP = 0.010
FLOOR_DB = 80.0


def third_octave_ltas(x: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Centres (Hz) and level-normalised dB of the long-term 1/3-octave spectrum of ``x`` ``(C, T)``."""
    mono = np.atleast_2d(np.asarray(x, np.float64)).mean(axis=0)
    nperseg = min(mono.size, 8192)
    freqs, psd = signal.welch(mono, fs=rate, nperseg=nperseg)
    top = min(16000.0, 0.45 * rate)
    ks = np.arange(-12, 13)  # 63 Hz ... 16 kHz
    centres = 1000.0 * 2.0 ** (ks / 3)
    centres = centres[centres <= top]
    power = []
    kept = []
    for fc in centres:
        sel = (freqs >= fc * 2 ** (-1 / 6)) & (freqs < fc * 2 ** (1 / 6))
        if sel.any():
            power.append(psd[sel].sum())
            kept.append(fc)
    p = np.asarray(power)
    db = 10 * np.log10(np.maximum(p, p.max() * 10 ** (-FLOOR_DB / 10) + 1e-30))
    return np.asarray(kept), db - db.mean()


def ltas_distance(a: np.ndarray, b: np.ndarray, rate: float) -> float:
    """Mean absolute dB difference of the normalised 1/3-octave spectra of ``a`` and ``b``."""
    fa, da = third_octave_ltas(a, rate)
    fb, db = third_octave_ltas(b, rate)
    common = np.intersect1d(fa, fb)
    da, db = da[np.isin(fa, common)], db[np.isin(fb, common)]
    return float(np.mean(np.abs((da - da.mean()) - (db - db.mean()))))


def frame_envelope(x: np.ndarray, rate: float) -> np.ndarray:
    """RMS of the mono mix in 25 ms frames every 10 ms ``(frames,)``."""
    mono = np.atleast_2d(np.asarray(x, np.float64)).mean(axis=0)
    frame, hop = max(1, int(ENVELOPE_FRAME * rate)), max(1, int(ENVELOPE_HOP * rate))
    if mono.size < frame:
        return np.sqrt(np.array([np.mean(mono**2)]))
    windows = np.lib.stride_tricks.sliding_window_view(mono, frame)[::hop]
    return np.sqrt((windows**2).mean(axis=-1))


def envelope_corr(a: np.ndarray, b: np.ndarray, rate: float) -> float:
    """Pearson correlation of the frame envelopes of ``a`` and ``b`` (same length)."""
    ea, eb = frame_envelope(a, rate), frame_envelope(b, rate)
    n = min(ea.size, eb.size)
    ea, eb = ea[:n] - ea[:n].mean(), eb[:n] - eb[:n].mean()
    denominator = np.sqrt((ea**2).sum() * (eb**2).sum())
    return float((ea * eb).sum() / denominator) if denominator > 0 else 0.0


@lru_cache(maxsize=1)
def _judge_network() -> torch.nn.Module:
    from ..extractors.spectral import SpectralExtractor

    return SpectralExtractor(1, n_fft=2048, hop=256, filters=256, kernel_size=5, seed=20260).freeze()


@torch.no_grad()
def _gram(x: np.ndarray) -> torch.Tensor:
    from ..functional import gram_matrix

    net = _judge_network()
    mono = torch.as_tensor(np.atleast_2d(x).mean(axis=0), dtype=torch.float32)[None, None]
    feats = net(mono, ["relu"])["relu"]
    return gram_matrix(feats, normalize=True)[0]


def texture_distance(x: np.ndarray, style: np.ndarray) -> float:
    """``|G_x - G_style| / |G_style|`` in the judge network (see the module docstring)."""
    gs = _gram(style)
    return float(torch.linalg.norm(_gram(x) - gs) / torch.linalg.norm(gs).clamp_min(1e-12))


def audio_report(
    content: np.ndarray, styles: Sequence[np.ndarray], result: np.ndarray, rate: float
) -> dict[str, Any]:
    """Every audio measure for ``(C, T)`` waveforms at ``rate`` Hz (the first style is the target)."""
    if not styles:
        raise ValueError("the audio judge needs at least one style")
    style = np.asarray(styles[0], np.float64)
    content, result = np.asarray(content, np.float64), np.asarray(result, np.float64)
    d_result, d_content = ltas_distance(result, style, rate), ltas_distance(content, style, rate)
    t_result, t_content = texture_distance(result, style), texture_distance(content, style)
    out: dict[str, Any] = {
        "ltas_distance_db": {"result": d_result, "content": d_content},
        "ltas_ratio": d_result / max(d_content, 1e-12),
        "envelope_corr": envelope_corr(result, content, rate),
        "texture_distance": {"result": t_result, "content": t_content},
        "texture_ratio": t_result / max(t_content, 1e-12),
        "rms": {"content": float(np.sqrt((content**2).mean())), "result": float(np.sqrt((result**2).mean()))},
    }
    out.update(verdicts({name: (out[name], op, TARGETS[name]) for name, op in TARGET_SIDES.items()}))
    return out


def judge(
    content: Any, styles: Sequence[Any], result: torch.Tensor, mask: torch.Tensor | None = None
) -> dict[str, Any]:
    """The audio report of ``result`` at the working rate (the mask is ignored).

    ``content``/``styles`` are loaded audio (``.tensor`` ``(C, T)`` at the working rate, ``.meta``
    with ``working_rate`` or ``sample_rate``).
    """
    meta = content.meta
    rate = float(meta.get("working_rate") or meta["sample_rate"])

    def values(t: torch.Tensor) -> np.ndarray:
        return t.detach().double().cpu().numpy()

    return audio_report(values(content.tensor), [values(s.tensor) for s in styles], values(result), rate)


__all__ = [
    "audio_report",
    "envelope_corr",
    "frame_envelope",
    "judge",
    "ltas_distance",
    "texture_distance",
    "third_octave_ltas",
]
