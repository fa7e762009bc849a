"""ECG judge: what a cardiologist checks in a result (morphology, timing, noise, lead physiology).

All measures work on physical values ``(leads, samples)`` at one sample rate and use
``scipy.signal`` for filtering and peak finding:

* **R peaks** (:func:`r_peaks`): QRS energy (5-25 Hz band, squared and summed over leads,
  smoothed over 50 ms) with peaks at least 250 ms apart above 30 % of its 99th percentile. The
  result's peaks are matched to the content's; ``r_peak_max_shift_ms`` is the largest distance
  from a content peak to the nearest result peak.
* **Morphology** (:func:`median_beats`): both signals band-passed to the 0.5-40 Hz monitoring band
  (2nd-order Butterworth, zero phase) so that added noise does not count; windows from 250 ms
  before to 450 ms after each of the *content's* R peaks; the per-lead median over beats; Pearson
  correlation of the result's median beat with the content's (``beat_corr`` per lead, median and
  worst lead), QRS amplitude ratio and polarity (sign of the largest QRS deflection) per lead.
* **Noise profile** (:func:`noise_profile`): Welch power in the wander (0.05-0.5 Hz) and muscle
  (40-150 Hz, above the monitoring band) bands relative to the QRS band (5-25 Hz), in dB and
  averaged over leads; ``noise_moved`` is how far the result moved from the content's value
  toward the style's (0 = content, 1 = style) per band. ``wander_uv`` is the RMS of the signal
  low-passed at 0.5 Hz.
* **Limb leads** (where the lead names allow): relative errors of Einthoven's and Goldberger's
  relations, ``|III - (II - I)| / |III|``, ``|aVR + (I + II) / 2| / |aVR|``,
  ``|aVL - (I - III) / 2| / |aVL|``, ``|aVF - (II + III) / 2| / |aVF|``.
* **Edge spikes**: per lead, the largest ``|result - content|`` in the first and last 50 ms over the
  largest ``|result - content|`` inside; above 1 the edges hold the largest change of the lead
  (content plus the example style's noise scores 0.6).
* ``passes``: the targets of issue 16 (:data:`TARGETS`): median-beat correlation >= 0.95 (median
  over leads) and >= 0.8 (worst lead), every R peak kept within 20 ms, and the noise profile moved
  at least 70 % of the way to the style's in each band (a band where content and style already
  agree has nothing to move and passes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import signal

from . import verdicts

#: Bands (Hz) of the noise profile, relative to the QRS band.
QRS_BAND = (5.0, 25.0)
NOISE_BANDS = {"wander": (0.05, 0.5), "muscle": (40.0, 150.0)}
MONITOR_BAND = (0.5, 40.0)
#: Thresholds of issue 16 (what a cardiologist would accept of a noise transfer).
TARGETS = {
    "beat_corr_median": 0.95,
    "beat_corr_min": 0.8,
    "r_peak_max_shift_ms": 20.0,
    "noise_moved_min": 0.7,
}
BEAT_WINDOW = (0.25, 0.45)  # seconds before and after the R peak


def bandpass(x: np.ndarray, rate: float, low: float | None, high: float | None, order: int = 2) -> np.ndarray:
    """Zero-phase Butterworth band-, low- or high-pass of ``x`` ``(..., T)`` along the last axis."""
    nyquist = rate / 2
    high = None if high is None or high >= nyquist * 0.99 else high
    if low is not None and high is not None:
        sos = signal.butter(order, [low, high], btype="band", fs=rate, output="sos")
    elif low is not None:
        sos = signal.butter(order, low, btype="high", fs=rate, output="sos")
    elif high is not None:
        sos = signal.butter(order, high, btype="low", fs=rate, output="sos")
    else:
        return x.copy()
    return signal.sosfiltfilt(sos, x, axis=-1)


def r_peaks(x: np.ndarray, rate: float) -> np.ndarray:
    """Sample indices of the R peaks of a multi-lead ECG ``(leads, T)`` (see the module docstring)."""
    qrs = bandpass(np.atleast_2d(x), rate, *QRS_BAND)
    energy = (qrs / (qrs.std(axis=-1, keepdims=True) + 1e-12)) ** 2
    width = max(1, int(round(0.05 * rate)))
    envelope = np.convolve(energy.sum(axis=0), np.ones(width) / width, mode="same")
    peaks, _ = signal.find_peaks(
        envelope, height=0.3 * np.percentile(envelope, 99), distance=max(1, int(0.25 * rate))
    )
    return peaks


def median_beats(x: np.ndarray, peaks: np.ndarray, rate: float) -> np.ndarray:
    """Per-lead median beat ``(leads, window)`` around ``peaks`` (beats too close to an edge dropped)."""
    before, after = int(round(BEAT_WINDOW[0] * rate)), int(round(BEAT_WINDOW[1] * rate))
    keep = [p for p in peaks if p - before >= 0 and p + after <= x.shape[-1]]
    if not keep:
        raise ValueError("no complete beat: the record is shorter than one beat window")
    windows = np.stack([x[:, p - before : p + after] for p in keep])  # (beats, leads, window)
    return np.median(windows, axis=0)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def noise_profile(x: np.ndarray, rate: float) -> dict[str, float]:
    """Lead-averaged power of each noise band relative to the QRS band, in dB."""
    nperseg = min(x.shape[-1], int(4 * rate))
    freqs, psd = signal.welch(x, fs=rate, nperseg=nperseg, axis=-1)

    def power(band: tuple[float, float]) -> np.ndarray:
        sel = (freqs >= band[0]) & (freqs < min(band[1], rate / 2))
        return psd[:, sel].sum(axis=-1) + 1e-20

    qrs = power(QRS_BAND)
    return {name: float(np.mean(10 * np.log10(power(band) / qrs))) for name, band in NOISE_BANDS.items()}


def limb_errors(x: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Relative errors of the limb-lead relations available among ``names``."""
    index = {n.strip().upper(): i for i, n in enumerate(names)}
    lead = {n: x[index[n.upper()]] for n in ("I", "II", "III", "aVR", "aVL", "aVF") if n.upper() in index}
    relations = {
        "III": ("I", "II", lambda v: v["II"] - v["I"]),
        "aVR": ("I", "II", lambda v: -(v["I"] + v["II"]) / 2),
        "aVL": ("I", "III", lambda v: (v["I"] - v["III"]) / 2),
        "aVF": ("II", "III", lambda v: (v["II"] + v["III"]) / 2),
    }
    out = {}
    for target, (a, b, formula) in relations.items():
        if target in lead and a in lead and b in lead:
            norm = float(np.linalg.norm(lead[target]))
            out[target] = float(np.linalg.norm(lead[target] - formula(lead))) / max(norm, 1e-12)
    return out


def edge_spike_ratio(content: np.ndarray, result: np.ndarray, rate: float) -> float:
    """Largest per-lead ``max |result - content|`` at the edges (50 ms) over its interior maximum."""
    edge = max(1, int(round(0.05 * rate)))
    diff = np.abs(result - content)
    if diff.shape[-1] <= 4 * edge:
        return 0.0
    inner = diff[:, edge:-edge].max(axis=-1) + 1e-12
    at_edges = np.maximum(diff[:, :edge].max(axis=-1), diff[:, -edge:].max(axis=-1))
    return float((at_edges / inner).max())


def ecg_report(
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    result: np.ndarray,
    rate: float,
    lead_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every ECG measure for physical ``(leads, T)`` arrays at ``rate`` Hz (see the module docstring)."""
    content, result = np.asarray(content, np.float64), np.asarray(result, np.float64)
    leads = content.shape[0]
    names = list(lead_names) if lead_names is not None else [str(i) for i in range(leads)]
    peaks = r_peaks(content, rate)
    found = r_peaks(result, rate)
    shifts = [float(np.min(np.abs(found - p))) * 1000 / rate if found.size else np.inf for p in peaks]
    band_c = bandpass(content, rate, *MONITOR_BAND)
    band_r = bandpass(result, rate, *MONITOR_BAND)
    beat_c, beat_r = median_beats(band_c, peaks, rate), median_beats(band_r, peaks, rate)
    corr = [_corr(beat_c[i], beat_r[i]) for i in range(leads)]
    qrs = slice(int(round((BEAT_WINDOW[0] - 0.06) * rate)), int(round((BEAT_WINDOW[0] + 0.06) * rate)))
    amp_c, amp_r = np.ptp(beat_c[:, qrs], axis=-1), np.ptp(beat_r[:, qrs], axis=-1)
    top_c = beat_c[np.arange(leads), qrs.start + np.abs(beat_c[:, qrs]).argmax(-1)]
    top_r = beat_r[np.arange(leads), qrs.start + np.abs(beat_c[:, qrs]).argmax(-1)]
    polarity = [bool(np.sign(a) == np.sign(b)) for a, b in zip(top_c, top_r, strict=True)]
    prof_c, prof_r = noise_profile(content, rate), noise_profile(result, rate)
    prof_s = [noise_profile(np.asarray(s, np.float64), rate) for s in styles]
    moved: dict[str, float] = {}
    for band in NOISE_BANDS:
        target = float(np.mean([p[band] for p in prof_s])) if prof_s else prof_c[band]
        span = target - prof_c[band]
        moved[band] = (prof_r[band] - prof_c[band]) / span if abs(span) > 1e-6 else float("nan")
    finite_moved = [v for v in moved.values() if np.isfinite(v)]
    wander = {
        "content": float(bandpass(content, rate, None, 0.5).std()),
        "result": float(bandpass(result, rate, None, 0.5).std()),
    }
    if styles:
        wander["style"] = float(
            np.mean([bandpass(np.asarray(s, np.float64), rate, None, 0.5).std() for s in styles])
        )
    limb_c, limb_r = limb_errors(content, names), limb_errors(result, names)
    out: dict[str, Any] = {
        "leads": names,
        "beats": int(peaks.size),
        "r_peak_max_shift_ms": float(max(shifts)) if shifts else float("nan"),
        "r_peaks_within_20ms": int(sum(s <= 20 for s in shifts)),
        "r_peaks_extra": int(max(0, found.size - peaks.size)),
        "beat_corr": dict(zip(names, corr, strict=True)),
        "beat_corr_median": float(np.median(corr)),
        "beat_corr_min": float(np.min(corr)),
        "beat_corr_worst_lead": names[int(np.argmin(corr))],
        "qrs_amplitude_ratio": dict(zip(names, (amp_r / np.maximum(amp_c, 1e-12)).tolist(), strict=True)),
        "polarity_kept": dict(zip(names, polarity, strict=True)),
        "polarity_kept_all": all(polarity),
        "noise_db": {"content": prof_c, "result": prof_r, "style": prof_s},
        "noise_moved": moved,
        "noise_moved_min": min(finite_moved) if finite_moved else float("nan"),
        "wander_rms": wander,
        "limb_error_content": limb_c,
        "limb_error_result": limb_r,
        "limb_error_max": float(max(limb_r.values())) if limb_r else float("nan"),
        "edge_spike_ratio": edge_spike_ratio(content, result, rate),
    }
    out.update(
        verdicts(
            {
                "beat_corr_median": (out["beat_corr_median"], ">=", TARGETS["beat_corr_median"]),
                "beat_corr_min": (out["beat_corr_min"], ">=", TARGETS["beat_corr_min"]),
                # no beat found counts as a miss
                "r_peaks_kept": (max(shifts, default=np.inf), "<=", TARGETS["r_peak_max_shift_ms"]),
                # bands where content and style already agree have nothing to move
                "noise_moved": (
                    min(finite_moved) if finite_moved else None,
                    ">=",
                    TARGETS["noise_moved_min"],
                ),
            }
        )
    )
    return out


def physical(loaded: Any, tensor: torch.Tensor | None = None) -> np.ndarray:
    """Physical ``(leads, T)`` values of ``tensor`` (default ``loaded.tensor``), standardisation undone."""
    x = (loaded.tensor if tensor is None else tensor).detach().double().cpu().numpy()
    meta = getattr(loaded, "meta", {}) or {}
    if "std" in meta and "mean" in meta:
        x = x * np.asarray(meta["std"]) + np.asarray(meta["mean"])
    return x


def judge(
    content: Any, styles: Sequence[Any], result: torch.Tensor, mask: torch.Tensor | None = None
) -> dict[str, Any]:
    """The ECG report of ``result`` (the mask is ignored: every measure is over the whole record).

    ``content``/``styles`` are loaded signals (``.tensor`` ``(leads, T)`` on the content's rate,
    ``.meta`` with ``sample_rate``, ``lead_names`` and the standardisation ``mean``/``std``).
    """
    meta = content.meta
    return ecg_report(
        physical(content),
        [physical(s) for s in styles],
        physical(content, result),
        float(meta["sample_rate"]),
        meta.get("lead_names"),
    )


__all__ = [
    "bandpass",
    "ecg_report",
    "edge_spike_ratio",
    "judge",
    "limb_errors",
    "median_beats",
    "noise_profile",
    "physical",
    "r_peaks",
]
