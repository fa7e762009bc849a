"""ECG and audio judges and the ECG/spectral layers they motivated, on small cuts of real data.

tests/data: ``ecg12_500hz_{a,b}.npy``: seconds 0-4 and 5-9 of pydicom's 12-lead
``waveform_ecg.dcm`` resampled to 500 Hz, int16 in units of 1.25 uV; ``speech_16k.wav``: 0.75 s of
alsa-utils' ``Front_Center.wav`` at 16 kHz; ``rain_16k.wav``: 0.75 s of the rain-like texture of
``examples/signals_data.py``.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy import signal

from ndstyle.extractors import build_extractor
from ndstyle.extractors.ecg import LeadProjection, fft_filter
from ndstyle.extractors.spectral import SpectralExtractor
from ndstyle.metrics import JUDGES, report
from ndstyle.metrics.audio import audio_report, envelope_corr, ltas_distance
from ndstyle.metrics.signal import bandpass, ecg_report, limb_errors, r_peaks

DATA = Path(__file__).parent / "data"
RATE = 500.0
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def ecg(part: str) -> np.ndarray:
    return np.load(DATA / f"ecg12_500hz_{part}.npy").astype(np.float64) * 1.25


def muscle_and_wander(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """EMG-like (20-150 Hz) noise of 40 uV RMS plus 0.25 Hz wander of 100 uV per lead."""
    rng = np.random.default_rng(seed)
    emg = signal.sosfiltfilt(
        signal.butter(4, [20, 150], "band", fs=RATE, output="sos"), rng.standard_normal(shape)
    )
    t = np.arange(shape[1]) / RATE
    wander = 100 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6, (shape[0], 1)))
    return 40 * emg / emg.std() + wander


def test_ecg_judge_identity_and_reference_noise() -> None:
    c, other = ecg("a"), ecg("b")
    noise = muscle_and_wander(c.shape)
    style = other + noise
    same = ecg_report(c, [style], c, RATE, LEADS)
    assert same["beats"] >= 3 and same["r_peak_max_shift_ms"] == 0
    assert same["beat_corr_min"] > 0.9999 and same["noise_moved_min"] == 0
    assert same["limb_error_max"] < 0.02 and same["polarity_kept_all"]
    noisy = ecg_report(c, [style], c + noise, RATE, LEADS)
    # the style's exact noise added to the content: beats kept in the monitoring band, noise moved all the way
    assert noisy["beat_corr_median"] > 0.95
    assert 0.8 < noisy["noise_moved"]["wander"] < 1.2 and 0.8 < noisy["noise_moved"]["muscle"] < 1.2
    assert noisy["r_peak_max_shift_ms"] <= 4
    # issue 16's targets: the untouched content keeps everything but took none of the noise
    assert same["passes"] == {
        "beat_corr_median": True,
        "beat_corr_min": True,
        "r_peaks_kept": True,
        "noise_moved": False,
    }
    assert all(noisy["passes"].values())


def test_ecg_judge_catches_damage() -> None:
    c, style = ecg("a"), ecg("b") + muscle_and_wander((12, 2000))
    damaged = c.copy()
    damaged[3] *= -1  # aVR flipped
    damaged[2] = np.roll(c[2], 40)  # III no longer II - I
    shifted = np.roll(c, 25, axis=1)  # every beat 50 ms late
    spiked = c.copy()
    spiked[7, :5] += 3000
    rep = ecg_report(c, [style], damaged, RATE, LEADS)
    assert not rep["polarity_kept"]["aVR"] and rep["polarity_kept"]["II"]
    assert rep["beat_corr"]["aVR"] < -0.9 and rep["limb_error_result"]["III"] > 0.5
    assert rep["limb_error_result"]["aVR"] > 1.5
    assert not rep["passes"]["beat_corr_min"]  # a flipped lead fails the worst-lead target
    late = ecg_report(c, [style], shifted, RATE, LEADS)
    assert late["r_peak_max_shift_ms"] == pytest.approx(50, abs=4) and not late["passes"]["r_peaks_kept"]
    assert ecg_report(c, [style], spiked, RATE, LEADS)["edge_spike_ratio"] > 10


def test_r_peaks_match_scipy_filtered_maxima() -> None:
    c = ecg("a")
    peaks = r_peaks(c, RATE)
    lead_ii = bandpass(c[1], RATE, 0.5, 40)
    # every detected peak sits within 30 ms of a local maximum of lead II (upright R waves in this record)
    for p in peaks:
        window = lead_ii[max(0, p - 15) : p + 15]
        assert window.max() > 0.5 * lead_ii.max()
    assert 60 < 60 / np.median(np.diff(peaks) / RATE) < 100  # a plausible heart rate


def test_limb_errors_only_with_names() -> None:
    c = ecg("a")
    assert limb_errors(c, [str(i) for i in range(12)]) == {}
    assert set(limb_errors(c, LEADS)) == {"III", "aVR", "aVL", "aVF"}


def test_lead_projection_rebuilds_derived_leads_exactly() -> None:
    c = ecg("a")
    mean, std = c.mean(1), c.std(1)
    x = torch.from_numpy(((c - mean[:, None]) / std[:, None]).astype(np.float32))
    noisy = x + 0.3 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    projected = (
        LeadProjection(LEADS, mean, std)(noisy[None])[0].double().numpy() * std[:, None] + mean[:, None]
    )
    assert max(limb_errors(projected, LEADS).values()) < 1e-5
    independent = [0, 1, 6, 7, 8, 9, 10, 11]
    expected = noisy.double().numpy() * std[:, None] + mean[:, None]
    assert np.allclose(projected[independent], expected[independent], atol=1e-3)


def test_fft_filter_matches_scipy_filtfilt_inside() -> None:
    c = ecg("a")
    ours = fft_filter(torch.from_numpy(c[None]).float(), RATE, 0.5, 40.0, pad=1000)[0].double().numpy()
    # scipy's filtfilt of the same Butterworth on the same reflect-padded record
    sos = signal.butter(2, [0.5, 40.0], btype="band", fs=RATE, output="sos")
    padded = np.pad(c, ((0, 0), (1000, 1000)), mode="reflect")
    ref = signal.sosfiltfilt(sos, padded, axis=-1, padtype=None)[:, 1000:-1000]
    inner = slice(250, -250)
    assert np.abs(ours[:, inner] - ref[:, inner]).max() < 0.01 * np.abs(ref).max()


def test_ecg_extractor_layers_and_registry() -> None:
    from ndstyle.extractors import available_extractors

    assert "ecg" in available_extractors()
    ex = build_extractor("ecg", spatial_dims=1, in_channels=12, sample_rate=RATE, lead_names=LEADS)
    x = torch.randn(1, 12, 1000)
    feats = ex(x, ["monitor", "wander", "muscle", "relu1_1"])
    assert feats["monitor"].shape == (1, 12, 1000) and feats["muscle"].shape == (1, 12, 1000)
    assert feats["wander"].shape == (1, 12, 1000 // 50) and feats["relu1_1"].shape[0] == 1
    assert ex.default_content_layers == ("monitor",)
    # derived leads carry no gradient: the optimisation moves only I, II and V1-V6
    x.requires_grad_(True)
    ex(x, ["monitor", "relu2_1"])["relu2_1"].sum().backward()
    assert (
        x.grad is not None and float(x.grad[0, 2:6].abs().max()) == 0 and float(x.grad[0, 6].abs().max()) > 0
    )


def test_ecg_judge_registered_and_reads_loaded_inputs() -> None:
    assert (
        JUDGES["signal"] == "ndstyle.metrics.signal:judge"
        and JUDGES["audio"] == "ndstyle.metrics.audio:judge"
    )
    c = ecg("a")
    mean, std = c.mean(1, keepdims=True), c.std(1, keepdims=True)
    meta = {"sample_rate": RATE, "lead_names": LEADS, "mean": mean, "std": std}
    content = SimpleNamespace(tensor=torch.from_numpy((c - mean) / std).float(), meta=meta)
    out = report("signal", content, [content], content.tensor)
    assert out["beat_corr_min"] > 0.999 and out["limb_error_max"] < 0.02


def audio(name: str) -> np.ndarray:
    data, rate = sf.read(DATA / name, always_2d=True)
    assert rate == 16000
    return data.T


def test_audio_judge_on_real_clips() -> None:
    speech, rain = audio("speech_16k.wav"), audio("rain_16k.wav")
    same = audio_report(speech, [rain], speech, 16000)
    assert same["ltas_ratio"] == pytest.approx(1.0) and same["envelope_corr"] == pytest.approx(1.0)
    assert same["texture_ratio"] == pytest.approx(1.0)
    assert same["ltas_distance_db"]["content"] > 5  # speech and rain differ in timbre
    # the rain under the speech's envelope (a mixer's answer): rain's timbre, speech's rhythm
    env = np.abs(signal.hilbert(speech[0]))
    env = signal.sosfiltfilt(signal.butter(2, 20, fs=16000, output="sos"), env)
    mixed = rain[:, : speech.shape[1]] * np.maximum(env, 0) / rain.std()
    rep = audio_report(speech, [rain], mixed, 16000)
    assert rep["ltas_ratio"] < 0.35 and rep["envelope_corr"] > 0.8 and rep["texture_ratio"] < 1
    assert same["passes"] == {"ltas_ratio": False, "envelope_corr": True}  # the speech kept its timbre
    assert all(rep["passes"].values())
    assert ltas_distance(rain, rain, 16000) == 0 and envelope_corr(rain, rain, 16000) == pytest.approx(1)
    sub = SimpleNamespace(tensor=torch.from_numpy(speech).float(), meta={"sample_rate": 16000})
    sty = SimpleNamespace(tensor=torch.from_numpy(rain).float(), meta={"sample_rate": 16000})
    assert report("audio", sub, [sty], sub.tensor)["ltas_ratio"] == pytest.approx(1.0, abs=1e-4)


def test_spectral_spectrum_and_envelope_layers() -> None:
    ex = SpectralExtractor(2, n_fft=256, hop=128, filters=16)
    x = torch.randn(1, 2, 4000)
    feats = ex(x, ["spectrum", "envelope", "relu"])
    assert feats["spectrum"].shape == (2, 130, 32) and feats["envelope"].shape == (2, 1, 32)
    assert torch.all(feats["spectrum"][:, -1] == 1)
    from ndstyle.functional import gram_matrix

    gram = gram_matrix(feats["spectrum"], normalize=True)
    # the constant channel's row of the Gram is the long-term mean log-spectrum
    assert torch.allclose(gram[:, -1, :-1], feats["spectrum"][:, :-1].mean(-1), atol=1e-5)
