"""Pictures a cardiologist or a sound designer reads: 12-lead layouts with median beats, spectrograms.

* :func:`ecg_figure`: the standard 3 x 4 layout (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3,
  V6; other lead sets in their own order), each lead's trace of the result over the content's
  (grey), in the lead's units, and beside it the median beats in the 0.5-40 Hz band aligned on the
  content's R peaks (content grey, result black; see :mod:`ndstyle.metrics.signal`).
* :func:`audio_figure`: waveforms and log spectrograms of content, styles and result on **one**
  dB scale (one colour bar), so that levels compare across panels.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .metrics.signal import BEAT_WINDOW, MONITOR_BAND, bandpass, median_beats, r_peaks

STANDARD_ORDER = ["I", "aVR", "V1", "V4", "II", "aVL", "V2", "V5", "III", "aVF", "V3", "V6"]


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ecg_figure(
    path: Path,
    content: np.ndarray,
    result: np.ndarray,
    rate: float,
    lead_names: Sequence[str],
    units: Sequence[str],
    *,
    title: str = "",
    dpi: int = 80,
) -> None:
    """Write the 12-lead (or any-lead) comparison PNG; ``content``/``result`` physical ``(leads, T)``."""
    plt = _pyplot()
    names = list(lead_names)
    upper = [n.upper() for n in names]
    order = [upper.index(n.upper()) for n in STANDARD_ORDER if n.upper() in upper]
    order += [i for i in range(len(names)) if i not in order]
    columns = 4 if len(order) > 4 else len(order)
    rows = int(np.ceil(len(order) / columns))
    fig = plt.figure(figsize=(4.2 * columns, 1.9 * rows + 0.6))
    grid = fig.add_gridspec(rows, 2 * columns, width_ratios=[3, 1] * columns, wspace=0.35, hspace=0.45)
    t = np.arange(content.shape[-1]) / rate
    peaks = r_peaks(content, rate)
    beats_c = beats_r = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            beats_c = median_beats(bandpass(content, rate, *MONITOR_BAND), peaks, rate)
            beats_r = median_beats(bandpass(result, rate, *MONITOR_BAND), peaks, rate)
        except ValueError:
            pass
    tb = (np.arange(beats_c.shape[-1]) / rate - BEAT_WINDOW[0]) * 1000 if beats_c is not None else None
    for k, lead in enumerate(order):
        r, c = divmod(k, columns)
        ax = fig.add_subplot(grid[r, 2 * c])
        ax.plot(t, content[lead], color="0.65", lw=0.6)
        ax.plot(t, result[lead], color="k", lw=0.45)
        unit = units[lead] if lead < len(units) and units[lead] else ""
        ax.set_title(names[lead], fontsize=9, loc="left", pad=2)
        ax.set_ylabel(unit, fontsize=7)
        ax.tick_params(labelsize=6)
        if r == rows - 1:
            ax.set_xlabel("time (s)", fontsize=7)
        if beats_c is not None and beats_r is not None and tb is not None:
            bx = fig.add_subplot(grid[r, 2 * c + 1])
            bx.plot(tb, beats_c[lead], color="0.6", lw=1.2)
            bx.plot(tb, beats_r[lead], color="k", lw=0.7)
            bx.tick_params(labelsize=5)
            bx.set_title("median beat", fontsize=6, pad=1)
            if r == rows - 1:
                bx.set_xlabel("ms", fontsize=6)
    fig.suptitle(title or "content (grey) and result (black); median beats in 0.5-40 Hz", fontsize=10)
    fig.savefig(path, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)


def _spectrogram_db(x: np.ndarray, rate: float, n_fft: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from scipy import signal

    mono = np.atleast_2d(x).mean(axis=0)
    nperseg = min(n_fft, mono.size)
    f, t, s = signal.spectrogram(
        mono, fs=rate, nperseg=nperseg, noverlap=nperseg * 3 // 4, scaling="spectrum"
    )
    return f, t, 10 * np.log10(s + 1e-12)


def audio_figure(
    path: Path,
    panels: Sequence[tuple[str, np.ndarray]],
    rate: float,
    *,
    n_fft: int = 1024,
    dynamic_range_db: float = 90.0,
    dpi: int = 80,
) -> None:
    """Waveforms (top) and spectrograms (bottom) of ``(title, (C, T))`` panels on one dB scale."""
    plt = _pyplot()
    specs = [_spectrogram_db(x, rate, n_fft) for _, x in panels]
    top = max(float(s.max()) for _, _, s in specs)
    fig, axes = plt.subplots(
        2, len(panels), figsize=(3.6 * len(panels) + 0.8, 4.6), squeeze=False, height_ratios=[1, 2.2]
    )
    mesh = None
    peak = max(float(np.abs(x).max()) for _, x in panels) or 1.0
    for col, ((title, x), (f, t, s)) in enumerate(zip(panels, specs, strict=True)):
        mono = np.atleast_2d(x).mean(axis=0)
        axes[0, col].plot(np.arange(mono.size) / rate, mono, lw=0.3, color="k")
        axes[0, col].set_ylim(-peak, peak)
        axes[0, col].set_title(title, fontsize=9)
        axes[0, col].tick_params(labelsize=6)
        mesh = axes[1, col].pcolormesh(
            t, f / 1000, s, vmin=top - dynamic_range_db, vmax=top, cmap="magma", shading="auto"
        )
        axes[1, col].set_xlabel("time (s)", fontsize=7)
        axes[1, col].tick_params(labelsize=6)
    axes[1, 0].set_ylabel("kHz", fontsize=7)
    axes[0, 0].set_ylabel("amplitude", fontsize=7)
    if mesh is not None:
        bar = fig.colorbar(mesh, ax=list(axes[1]), fraction=0.02, pad=0.01)
        bar.set_label("dB (one scale for all panels)", fontsize=7)
        bar.ax.tick_params(labelsize=6)
    fig.savefig(path, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)


__all__ = ["STANDARD_ORDER", "audio_figure", "ecg_figure"]
