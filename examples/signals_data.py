"""Prepare the real signal pairs that docs/signals.md and the signal/audio judges use.

ECG (needs ``pip install pydicom``; the record is pydicom's ``test_files/waveform_ecg.dcm``:
10 s, 1 kHz, 12 leads, uV, recorded 0.05-300 Hz):

* ``ecg_content.csv`` / ``ecg_content.hea``: seconds 0-5 of the record, as recorded (the CSV
  keeps the DICOM's 1.25 uV steps with up to two decimals).
* ``ecg_style.csv``: seconds 5-10 of the same record (other beats) plus noise with physiological
  spectra, made on the *electrodes* (RA, LA, LL, V1-V6) so that the leads derived from them keep
  Einthoven's and Goldberger's relations (III = II - I, aVR = -(I + II) / 2, ...):

  - muscle (EMG) noise: Gaussian noise band-passed 20-150 Hz (4th-order Butterworth; surface EMG
    has most of its power there), amplitude-modulated by bursts of contraction (a slow random
    envelope, 0.3-1 s bursts), 25-60 uV RMS per electrode (limb electrodes louder than chest);
  - baseline wander: respiration at 0.25 Hz (plus its harmonic) with random phase per electrode,
    plus a random walk low-passed below 0.5 Hz (electrode motion), 80-200 uV;
  - the leads are recomputed from the noisy electrodes: I = LA - RA, II = LL - RA, III = LL - LA,
    aVR = RA - (LA + LL) / 2, aVL = LA - (RA + LL) / 2, aVF = LL - (RA + LA) / 2,
    Vi = Vi - (RA + LA + LL) / 3.

Audio (Debian alsa-utils speech; ``apt-get download alsa-utils && dpkg -x alsa-utils_*.deb DIR``;
pygame's ``house_lo.wav`` optional):

* ``speech.wav``: alsa-utils ``Front_Center.wav`` (48 kHz mono, "front centre").
* ``rain.wav``: 6 s of a rain-like texture at 48 kHz: Gaussian noise band-limited to 1.5-6 kHz
  (4th-order Butterworth) with a slow 0.3-1.5 Hz intensity drift, plus ~80 drop clicks per second
  (2-8 ms decaying bursts band-passed to random 2-8 kHz centres).
* ``house_lo.wav``: pygame's 7 s music loop (11,025 Hz, 8-bit), when pygame's wheel is given.
* ``speech60_stereo.wav``: 60 s, 44.1 kHz, 16-bit stereo made of the alsa clips (left: the
  Front/Rear/Side_Left clips, right: the _Right ones, centre ones on both), for the speed target.

Run:  PYTHONPATH=. python examples/signals_data.py --alsa /tmp/realdata/alsa --out /tmp/sigdata \
          [--pygame /tmp/realdata/pgdata]
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def real_ecg() -> tuple[np.ndarray, float, list[str]]:
    """pydicom's 12-lead ECG: ``(12, 10000)`` uV, rate, lead names."""
    import pydicom
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / "waveform_ecg.dcm"
    ds = pydicom.dcmread(path)
    group = ds.WaveformSequence[0]
    names = [
        c.ChannelSourceSequence[0].CodeMeaning.replace("Lead ", "").split(" ")[0]
        for c in group.ChannelDefinitionSequence
    ]
    return ds.waveform_array(0).T.astype(np.float64), float(group.SamplingFrequency), names


def write_csv(path: Path, x: np.ndarray, rate: float, names: list[str], comment: str) -> None:
    """One column per lead, ``# sample_rate=`` line, values with at most two decimals."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# sample_rate={rate:g}\n# {comment}\n")
        f.write(",".join(names) + "\n")
        for row in x.T:
            f.write(",".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in row) + "\n")


def electrode_noise(rate: float, samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """EMG + baseline wander on each electrode (uV), see the module docstring."""
    t = np.arange(samples) / rate
    emg_sos = signal.butter(4, [20, 150], btype="band", fs=rate, output="sos")
    low_sos = signal.butter(2, 0.5, btype="low", fs=rate, output="sos")
    burst_sos = signal.butter(2, 1.5, btype="low", fs=rate, output="sos")
    noise = {}
    for name in ["RA", "LA", "LL", *[f"V{i}" for i in range(1, 7)]]:
        limb = name in ("RA", "LA", "LL")
        emg = signal.sosfiltfilt(emg_sos, rng.standard_normal(samples))
        bursts = signal.sosfiltfilt(burst_sos, rng.standard_normal(samples))
        envelope = 0.4 + np.clip(bursts / bursts.std(), 0, None)
        emg = emg * envelope
        emg *= (rng.uniform(40, 60) if limb else rng.uniform(25, 40)) / emg.std()
        walk = signal.sosfiltfilt(low_sos, np.cumsum(rng.standard_normal(samples)))
        walk -= walk.mean()
        walk *= rng.uniform(40, 100) / max(walk.std(), 1e-9)
        phase = rng.uniform(0, 2 * np.pi)
        breath = rng.uniform(60, 140) * (
            np.sin(2 * np.pi * 0.25 * t + phase) + 0.3 * np.sin(4 * np.pi * 0.25 * t)
        )
        noise[name] = emg + walk + breath
    return noise


def leads_from_electrodes(e: dict[str, np.ndarray]) -> np.ndarray:
    """The 12 standard leads ``(12, T)`` from electrode potentials."""
    ra, la, ll = e["RA"], e["LA"], e["LL"]
    wct = (ra + la + ll) / 3
    limb = [la - ra, ll - ra, ll - la, ra - (la + ll) / 2, la - (ra + ll) / 2, ll - (ra + la) / 2]
    return np.stack(limb + [e[f"V{i}"] - wct for i in range(1, 7)])


def prepare_ecg(out: Path, seed: int = 0) -> None:
    import wfdb

    x, rate, names = real_ecg()
    half = x.shape[1] // 2
    content, base = x[:, :half], x[:, half:]
    write_csv(out / "ecg_content.csv", content, rate, names, "pydicom waveform_ecg.dcm, seconds 0-5, uV")
    wfdb.wrsamp(
        "ecg_content", fs=rate, units=["uV"] * len(names), sig_name=names,
        p_signal=content.T.copy(), fmt=["16"] * len(names), adc_gain=[0.8] * len(names),
        baseline=[0] * len(names), write_dir=str(out),
    )  # fmt: skip
    if names != LEADS:
        raise SystemExit(f"unexpected lead order {names}")
    noise = leads_from_electrodes(electrode_noise(rate, base.shape[1], np.random.default_rng(seed)))
    write_csv(
        out / "ecg_style.csv",
        base + noise,
        rate,
        names,
        "pydicom waveform_ecg.dcm seconds 5-10 + electrode EMG (20-150 Hz bursts) + baseline wander, uV",
    )


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    ratio = Fraction(rate_out, rate_in)
    return signal.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)


def rain(rate: int, seconds: float, seed: int = 1) -> np.ndarray:
    """A rain-like texture: 1.5-6 kHz noise with slow drift plus drop clicks (mono float)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    bed = signal.sosfilt(
        signal.butter(4, [1500, 6000], "band", fs=rate, output="sos"), rng.standard_normal(n)
    )
    drift = signal.sosfiltfilt(signal.butter(2, 1.5, fs=rate, output="sos"), rng.standard_normal(n))
    bed *= 1 + 0.3 * drift / drift.std()
    clicks = np.zeros(n)
    for start in rng.integers(0, n - rate // 50, int(80 * seconds)):
        length = int(rate * rng.uniform(0.002, 0.008))
        centre = rng.uniform(2000, 8000)
        sos = signal.butter(
            2, [centre / 1.3, min(centre * 1.3, rate / 2 - 100)], "band", fs=rate, output="sos"
        )
        burst = signal.sosfilt(sos, rng.standard_normal(length)) * np.exp(-np.arange(length) / (length / 4))
        clicks[start : start + length] += rng.uniform(0.5, 2.0) * burst / (np.abs(burst).max() + 1e-9)
    x = bed / bed.std() * 0.08 + clicks * 0.15
    return x / np.abs(x).max() * 0.5


def prepare_audio(out: Path, alsa: Path, pygame_dir: Path | None) -> None:
    sounds = alsa / "usr/share/sounds/alsa"
    speech, rate = sf.read(sounds / "Front_Center.wav", dtype="float64")
    sf.write(out / "speech.wav", speech, rate, subtype="PCM_16")
    sf.write(out / "rain.wav", rain(rate, 6.0), rate, subtype="PCM_16")
    if pygame_dir is not None:
        loop = pygame_dir / "pygame/examples/data/house_lo.wav"
        if loop.is_file():
            data, loop_rate = sf.read(loop, dtype="float64")
            sf.write(out / "house_lo.wav", data, loop_rate, subtype="PCM_16")
    # 60 s stereo at 44.1 kHz from the clips, each side its own voices
    left, right = [], []
    order = [f"{side}_{pos}" for side in ("Front", "Rear") for pos in ("Left", "Center", "Right")]
    order += ["Side_Left", "Side_Right"]
    while sum(len(c) for c in left) < 60 * 44100:
        for name in order:
            clip, clip_rate = sf.read(sounds / f"{name}.wav", dtype="float64")
            clip = resample(clip if clip.ndim == 1 else clip.mean(1), clip_rate, 44100)
            gap = np.zeros(int(0.3 * 44100))
            on_left = "Right" not in name
            on_right = "Left" not in name
            left += [clip * on_left, gap]
            right += [clip * on_right, gap]
    stereo = np.stack([np.concatenate(left), np.concatenate(right)], 1)[: 60 * 44100]
    sf.write(out / "speech60_stereo.wav", stereo, 44100, subtype="PCM_16")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--alsa", type=Path, help="folder where alsa-utils_*.deb was unpacked (dpkg -x)")
    parser.add_argument("--pygame", type=Path, help="folder where pygame's wheel was unzipped")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    prepare_ecg(args.out)
    if args.alsa is not None:
        prepare_audio(args.out, args.alsa, args.pygame)
    print("wrote", ", ".join(sorted(p.name for p in args.out.iterdir())))


if __name__ == "__main__":
    main()
