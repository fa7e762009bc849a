from pathlib import Path

import numpy as np
import pytest
import wfdb
from scipy.signal import find_peaks

from ndstyle.cli import main
from ndstyle.errors import InputFileError
from ndstyle.modalities import modality_for_path
from ndstyle.modalities.signal import SignalModality, ecg_extractor, read_signal
from ndstyle.options import TransferOptions

RATE = 250


def ecg(
    rate: float, seconds: float, bpm: float, seed: int = 0, leads: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic ECG: P, QRS (narrow R), T waves per beat, plus a little noise; returns R times."""
    t = np.arange(int(rate * seconds)) / rate
    beats = np.arange(0.3, seconds - 0.3, 60 / bpm)
    x = np.zeros_like(t)
    for b in beats:
        x += np.exp(-(((t - b) / 0.012) ** 2)) - 0.15 * np.exp(-(((t - b + 0.04) / 0.01) ** 2))
        x += 0.25 * np.exp(-(((t - b - 0.25) / 0.05) ** 2)) + 0.1 * np.exp(-(((t - b + 0.18) / 0.03) ** 2))
    x += 0.02 * np.random.default_rng(seed).standard_normal(t.size)
    return np.stack([x * (1 + 0.3 * i) for i in range(leads)]), beats


def write_csv(path: Path, x: np.ndarray, rate: float | None, names: list[str]) -> None:
    with open(path, "w") as f:
        if rate is not None:
            f.write(f"# sample_rate={rate:g}\n")
        f.write(",".join(names) + "\n")
        for row in x.T:
            f.write(",".join(repr(float(v)) for v in row) + "\n")


def ns(**kw: object) -> TransferOptions:
    return TransferOptions(sample_rate=None, **kw)  # type: ignore[arg-type]


def test_csv_round_trip(tmp_path: Path) -> None:
    x, _ = ecg(RATE, 1, 70)
    write_csv(tmp_path / "c.csv", x, RATE, ["I", "aVR"])
    m = modality_for_path(tmp_path / "c.csv")
    assert m.name == "signal"
    loaded = m.load(tmp_path / "c.csv", ns())
    assert np.allclose(loaded.tensor.mean(1).numpy(), 0, atol=1e-5)
    m.save(tmp_path / "o.csv", loaded.tensor, loaded, ns())
    back, meta = read_signal(tmp_path / "o.csv")
    assert meta["sample_rate"] == RATE and meta["lead_names"] == ["I", "aVR"]
    assert np.allclose(back, x, rtol=1e-6, atol=1e-6)


def test_csv_rate_from_option_and_missing(tmp_path: Path) -> None:
    x, _ = ecg(RATE, 1, 70, leads=1)
    write_csv(tmp_path / "c.csv", x, None, ["II"])
    with pytest.raises(InputFileError, match="sample rate"):
        SignalModality().load(tmp_path / "c.csv", ns())
    assert (
        SignalModality().load(tmp_path / "c.csv", TransferOptions(sample_rate=500.0)).meta["sample_rate"]
        == 500
    )


def test_wfdb_round_trip(tmp_path: Path) -> None:
    x, _ = ecg(RATE, 1, 70)
    wfdb.wrsamp(
        "rec",
        fs=RATE,
        units=["mV", "uV"],
        sig_name=["V1", "V2"],
        p_signal=x.T,
        fmt=["16", "16"],
        write_dir=str(tmp_path),
    )
    m = SignalModality()
    loaded = m.load(tmp_path / "rec.hea", ns())
    import ndstyle

    ndstyle.save(tmp_path / "out.hea", loaded.tensor, like=loaded)  # through the atomic temporary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dat", "out.hea", "rec.dat", "rec.hea"]
    rec = wfdb.rdrecord(str(tmp_path / "out"))
    assert (
        rec.fs == RATE
        and rec.sig_name == ["V1", "V2"]
        and rec.units == ["mV", "uV"]
        and rec.fmt == ["16", "16"]
    )
    original = wfdb.rdrecord(str(tmp_path / "rec")).p_signal
    assert np.allclose(rec.p_signal, original, atol=2 * float(np.ptp(original)) / 2**16)


def test_receptive_field_follows_rate() -> None:
    for rate in (250, 500, 1000):
        ex = ecg_extractor(rate, 1)
        rf = 30 * (ex.config.kernel_size - 1)
        assert 0.8 * rate <= rf <= 1.3 * rate


def test_cli_transfer_keeps_r_peaks(tmp_path: Path) -> None:
    x, beats = ecg(RATE, 4, 72)
    style, _ = ecg(360, 3, 100, seed=1)
    style[0] += 0.3 * np.sin(2 * np.pi * 25 * np.arange(style.shape[1]) / 360)
    write_csv(tmp_path / "c.csv", x, RATE, ["I", "II"])
    wfdb.wrsamp(
        "s",
        fs=360,
        units=["mV", "mV"],
        sig_name=["I", "II"],
        p_signal=style.T,
        fmt=["16", "16"],
        write_dir=str(tmp_path),
    )
    out, preview = tmp_path / "o.csv", tmp_path / "p.png"
    assert (
        main(
            [
                "run",
                str(tmp_path / "c.csv"),
                str(tmp_path / "s.hea"),
                "-o",
                str(out),
                "--preview",
                str(preview),
                "-n",
                "40",
                "-q",
            ]
        )
        == 0
    )
    result, meta = read_signal(out)
    assert result.shape == x.shape and meta["lead_names"] == ["I", "II"] and meta["sample_rate"] == RATE
    assert not np.allclose(result, x, atol=0.02)  # the style changed something
    for lead in range(2):
        peaks, _ = find_peaks(result[lead], height=0.5 * result[lead].max(), distance=int(0.4 * RATE))
        times = peaks / RATE
        assert len(times) == len(beats)
        assert np.abs(times - beats).max() <= 0.020
    assert preview.read_bytes()[:4] == b"\x89PNG"
