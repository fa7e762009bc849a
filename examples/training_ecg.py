"""Train a 1-D ConvNd extractor on a real 12-lead ECG, then use it for a style transfer.

Data: pydicom's 12-lead ECG test file (10 s at 1 kHz; ``pip install pydicom``). Each lead becomes
one ``.npy`` file ``(1, 10000)``; the extractor learns, without labels, Gram statistics that tell
the leads' waveform morphologies apart (crops of one lead are positives, crops of other leads
negatives). The last 20 % of every lead is held out for the validation metric.

Then lead II (content) is restyled with the morphology of lead V1 (style), once with the trained
extractor and once with the same architecture's random weights, and a preview PNG is written.

Run:  PYTHONPATH=. python examples/training_ecg.py [--out OUT_DIR] [--steps 300]
The same training from the command line:  ndstyle train OUT_DIR/ecg_leads -o ecg.safetensors --crop-size 1024
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import ndstyle
from ndstyle.extractors import ConvNdExtractor
from ndstyle.training import train_extractor
from ndstyle.training.cli import format_metrics


def write_leads(folder: Path) -> tuple[list[Path], int]:
    import pydicom
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("waveform_ecg.dcm"))
    group = ds.WaveformSequence[0]
    signals = ds.waveform_array(0) / 1000.0  # (10000, 12), microvolts -> millivolts
    names = [c.ChannelSourceSequence[0].CodeMeaning for c in group.ChannelDefinitionSequence]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        short = name.replace("Lead ", "").replace(" (Einthoven)", "")
        path = folder / f"lead_{short}.npy"
        np.save(path, signals[:, i][None].astype(np.float32))
        paths.append(path)
    return paths, int(group.SamplingFrequency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("training-ecg-out"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--crop-size", type=int, default=1024)
    parser.add_argument("--img", type=Path, default=None, help="also write the preview here")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    paths, rate = write_leads(args.out / "ecg_leads")

    t0 = time.perf_counter()
    result = train_extractor(
        args.out / "ecg_leads", steps=args.steps, crop_size=args.crop_size, seed=args.seed
    )
    print(f"trained in {time.perf_counter() - t0:.0f} s")
    print(format_metrics(result.metrics, result.extractor.describe()))
    weights = args.out / "ecg_leads.safetensors"
    result.save(weights, overwrite=True)
    print(f"weights: {weights}")

    content = torch.from_numpy(np.load(args.out / "ecg_leads" / "lead_II.npy"))[:, :3000]
    style = torch.from_numpy(np.load(args.out / "ecg_leads" / "lead_V1.npy"))[:, :3000]
    trained = ConvNdExtractor.from_file(weights, spatial_dims=1, in_channels=1)
    random = ConvNdExtractor(trained.config, seed=args.seed)  # same architecture and preprocessing
    outputs = {}
    for label, net in (("trained", trained), ("random", random)):
        res = ndstyle.stylize(
            content, style, extractor=net, steps=200, coarse_steps=200, seed=0, progress=False
        )
        outputs[label] = res.output
        by_trained = ndstyle.evaluate_costs(trained, content, style, res.output)["style"]
        by_random = ndstyle.evaluate_costs(random, content, style, res.output)["style"]
        print(
            f"transfer with {label} weights: style cost {float(by_trained):.3g} under the trained "
            f"extractor, {float(by_random):.3g} under the random one"
        )
        np.save(args.out / f"lead_II_as_V1_{label}.npy", res.output.numpy())

    t = np.arange(content.shape[-1]) / rate
    fig, axes = plt.subplots(4, 1, figsize=(9, 6.5), sharex=True)
    rows = [
        ("content: lead II", content),
        ("style: lead V1", style),
        ("result, trained extractor", outputs["trained"]),
        ("result, random weights", outputs["random"]),
    ]
    for ax, (title, x) in zip(axes, rows):
        ax.plot(t, x[0].numpy(), lw=0.7)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("mV", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    targets = [args.out / "ecg_transfer.png"] + ([args.img] if args.img else [])
    for target in targets:
        fig.savefig(target, dpi=80)
    print("preview:", ", ".join(map(str, targets)))


if __name__ == "__main__":
    main()
