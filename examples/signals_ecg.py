"""ECG style transfer on the real 12-lead ECG in pydicom's test files (pip install pydicom).

Content: pydicom/data/test_files/waveform_ecg.dcm (10 s, 1 kHz, 12 leads, uV), written as a WFDB
record. Style: a synthesised single-lead CSV at 360 Hz with flutter-like sawtooth waves, muscle
noise and 50 Hz mains hum; the style's one lead is applied to every content lead.
The result (WFDB, 1 kHz, 12 leads, lead names and units kept) keeps the content's beats.

Run:  PYTHONPATH=. python examples/signals_ecg.py --out out/ [--docs]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import wfdb

from ndstyle.cli import main


def content_record(folder: Path) -> Path:
    import pydicom
    import pydicom.data

    path = Path(pydicom.data.__file__).parent / "test_files" / "waveform_ecg.dcm"
    ds = pydicom.dcmread(path)
    group = ds.WaveformSequence[0]
    signal = ds.waveform_array(0)  # (10000, 12), physical units
    names = [
        c.ChannelSourceSequence[0].CodeMeaning.replace("Lead ", "").split(" ")[0]
        for c in group.ChannelDefinitionSequence
    ]
    units = [c.ChannelSensitivityUnitsSequence[0].CodeValue for c in group.ChannelDefinitionSequence]
    wfdb.wrsamp(
        "ecg12",
        fs=float(group.SamplingFrequency),
        units=units,
        sig_name=names,
        p_signal=signal,
        fmt=["16"] * len(names),
        write_dir=str(folder),
    )
    return folder / "ecg12.hea"


def style_csv(folder: Path) -> Path:
    rate, seconds = 360, 6
    t = np.arange(rate * seconds) / rate
    rng = np.random.default_rng(0)
    flutter = 150 * (2 * ((t * 5) % 1) - 1)  # 5 Hz sawtooth, uV
    beats = np.zeros_like(t)
    for b in np.arange(0.2, seconds, 0.4):
        beats += 900 * np.exp(-(((t - b) / 0.015) ** 2))
    x = flutter + beats + 40 * rng.standard_normal(t.size) + 60 * np.sin(2 * np.pi * 50 * t)
    path = folder / "flutter_style.csv"
    with open(path, "w") as f:
        f.write(f"# sample_rate={rate}\n# synthetic flutter-like texture, uV\nII\n")
        f.writelines(f"{v:.3f}\n" for v in x)
    return path


def run() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("signals-ecg-out"))
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--docs", action="store_true", help="write the preview to docs/img/signals/")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    content, style = content_record(args.out), style_csv(args.out)
    img = Path("docs/img/signals") if args.docs else args.out
    img.mkdir(parents=True, exist_ok=True)
    main(
        [
            "run",
            str(content),
            str(style),
            "-o",
            str(args.out / "ecg12_flutter.hea"),
            "-n",
            str(args.steps),
            "--preview",
            str(img / "ecg_flutter.png"),
            "--overwrite",
        ]
    )


if __name__ == "__main__":
    run()
