"""The ECG recipe and writers on a small cut of the real 12-lead record (tests/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb
from scipy import signal

import ndstyle
from ndstyle.metrics.signal import limb_errors
from ndstyle.modalities.signal import read_signal

DATA = Path(__file__).parent / "data"
LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
RATE = 500


def write_pair(folder: Path) -> tuple[Path, Path]:
    content = np.load(DATA / "ecg12_500hz_a.npy").astype(np.float64) * 1.25
    other = np.load(DATA / "ecg12_500hz_b.npy").astype(np.float64) * 1.25
    rng = np.random.default_rng(0)
    emg = signal.sosfiltfilt(
        signal.butter(4, [20, 150], "band", fs=RATE, output="sos"), rng.standard_normal(other.shape)
    )
    style = other + 40 * emg / emg.std() + 100 * np.sin(2 * np.pi * 0.25 * np.arange(other.shape[1]) / RATE)
    paths = []
    for name, x in (("content.csv", content), ("style.csv", style)):
        with open(folder / name, "w") as f:
            f.write(f"# sample_rate={RATE}\n" + ",".join(LEADS) + "\n")
            f.writelines(",".join(f"{v:.2f}".rstrip("0").rstrip(".") for v in row) + "\n" for row in x.T)
        paths.append(folder / name)
    return paths[0], paths[1]


def test_ecg_recipe_keeps_limb_leads_polarity_and_input_precision(tmp_path: Path) -> None:
    content, style = write_pair(tmp_path)
    res = ndstyle.transfer(
        content, style, tmp_path / "out.csv", steps=8, progress=False, report=True, preview=tmp_path / "p.png"
    )
    values, meta = read_signal(tmp_path / "out.csv")
    assert meta["lead_names"] == LEADS
    assert max(limb_errors(values, LEADS).values()) < 1e-3  # III, aVR, aVL, aVF rebuilt from I and II
    assert res.report is not None and res.report["polarity_kept_all"]
    assert res.report["r_peak_max_shift_ms"] <= 20
    # the input had at most two decimals: so does the result (not 17 digits)
    data_rows = [r for r in (tmp_path / "out.csv").read_text().splitlines()[2:]]
    assert max(len(v.split(".")[1]) if "." in v else 0 for r in data_rows for v in r.split(",")) <= 2
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_wfdb_writer_keeps_each_leads_format(tmp_path: Path) -> None:
    x = np.load(DATA / "ecg12_500hz_a.npy")[:2, :600].astype(np.float64) * 1.25
    names, fmt = ["I", "II"], ["16", "212"]
    wfdb.wrsamp(
        "rec",
        fs=RATE,
        units=["uV"] * 2,
        sig_name=names,
        p_signal=x.T.copy(),
        fmt=fmt,
        write_dir=str(tmp_path),
    )
    loaded = ndstyle.load(tmp_path / "rec.hea")
    ndstyle.save(tmp_path / "out.hea", loaded.tensor, like=loaded)
    assert wfdb.rdheader(str(tmp_path / "out")).fmt == ["16", "212"]
