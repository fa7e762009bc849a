"""Audio configurations judged by ndstyle.metrics.audio on the real pairs of examples/signals_data.py.

Run:  OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/signals_audio_quality.py --data /tmp/sigdata \
          [--style rain.wav] [--only NAME ...] [--out benchmarks/results/signals_audio.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import signal

from ndstyle import stylize
from ndstyle.extractors.spectral import SpectralExtractor
from ndstyle.metrics.audio import audio_report, frame_envelope
from ndstyle.modalities.audio import read_audio, resample


def envelope_mix(content: np.ndarray, style: np.ndarray, rate: float) -> np.ndarray:
    """Reference: the style (tiled) under the content's RMS envelope (what a mixer would do)."""
    reps = int(np.ceil(content.shape[-1] / style.shape[-1]))
    tiled = np.tile(style, (1, reps))[:, : content.shape[-1]]
    hop = int(0.010 * rate)
    env_c = np.interp(
        np.arange(content.shape[-1]),
        np.arange(frame_envelope(content, rate).size) * hop,
        frame_envelope(content, rate),
    )
    env_s = np.interp(
        np.arange(content.shape[-1]),
        np.arange(frame_envelope(tiled, rate).size) * hop,
        frame_envelope(tiled, rate),
    )
    smooth = signal.butter(2, 20, fs=rate, output="sos")
    env_s = np.maximum(signal.sosfiltfilt(smooth, env_s), 1e-4)
    return tiled * env_c / env_s


def configs(channels: int) -> dict[str, dict[str, Any]]:
    def spec(**kw: Any) -> SpectralExtractor:
        return SpectralExtractor(channels, **kw)

    relu = {"content_layers": ["relu"], "style_layers": ["relu"]}
    default = {"content_layers": ["envelope"], "style_layers": {"relu": 1.0, "spectrum": 1.0}}
    out: dict[str, dict[str, Any]] = {
        "today (512 filters, n_fft 1024, content relu, style relu)": {"extractor": spec(), **relu},
        "4096 filters, content relu, style relu": {"extractor": spec(filters=4096), **relu},
        "style relu + spectrum": {
            "extractor": spec(),
            "content_layers": ["relu"],
            "style_layers": {"relu": 1.0, "spectrum": 1.0},
        },
        "content envelope, style relu": {
            "extractor": spec(),
            "content_layers": ["envelope"],
            "style_layers": ["relu"],
        },
        "content envelope, style relu + spectrum": {"extractor": spec(), **default},
        "content envelope, style spectrum": {
            "extractor": spec(),
            "content_layers": ["envelope"],
            "style_layers": ["spectrum"],
        },
        "default recipe, 4096 filters": {"extractor": spec(filters=4096), **default},
        "default recipe, multiscale (dilations 1-8)": {
            "extractor": spec(dilations=(1, 2, 4, 8)),
            "content_layers": ["envelope"],
            "style_layers": {**{f"relu_d{d}": 1.0 for d in (1, 2, 4, 8)}, "spectrum": 1.0},
        },
        "default recipe, n_fft 2048 hop 1024": {"extractor": spec(n_fft=2048, hop=1024), **default},
        "content relu+envelope, style relu + spectrum": {
            "extractor": spec(),
            "content_layers": ["relu", "envelope"],
            "style_layers": {"relu": 1.0, "spectrum": 1.0},
        },
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--content", default="speech.wav")
    parser.add_argument("--style", default="rain.wav")
    parser.add_argument("--rate", type=int, default=0, help="working rate (default: the content's)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--content-weight", type=float, default=1.0)
    parser.add_argument("--init", default="content", choices=("content", "noise", "style"))
    parser.add_argument("--style-weights", nargs="*", type=float, default=[0.0], help="0: the extractor's")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--save", type=Path, help="folder for result WAVs")
    args = parser.parse_args()
    c, cm = read_audio(args.data / args.content)
    s, sm = read_audio(args.data / args.style)
    rate = args.rate or cm["sample_rate"]
    c, s = resample(c, cm["sample_rate"], rate), resample(s, sm["sample_rate"], rate)
    if s.shape[0] != c.shape[0]:
        s = np.repeat(s.mean(0, keepdims=True), c.shape[0], 0)
    rows: dict[str, Any] = {}

    def show(name: str, rep: dict[str, Any]) -> None:
        print(
            f"{name:58s} LTAS {rep['ltas_distance_db']['result']:5.2f}/"
            f"{rep['ltas_distance_db']['content']:5.2f} dB ratio {rep['ltas_ratio']:.2f} "
            f"env {rep['envelope_corr']:.3f} texture {rep['texture_ratio']:.2f} "
            f"{rep.get('seconds', '')}s",
            flush=True,
        )

    rows["reference: style under the content's envelope"] = audio_report(
        c, [s], envelope_mix(c, s, rate), rate
    )
    show(
        "reference: style under the content's envelope", rows["reference: style under the content's envelope"]
    )
    ct, st = torch.from_numpy(c.astype(np.float32)), torch.from_numpy(s.astype(np.float32))
    grid = [
        (
            name if not w else f"{name}, style weight {w:g}",
            {**cfg, **({"style_weight": w} if w else {}), "content_weight": args.content_weight},
        )
        for name, cfg in configs(c.shape[0]).items()
        for w in args.style_weights
    ]
    for name, cfg in grid:
        if args.only and not any(o in name for o in args.only):
            continue
        t0 = time.perf_counter()
        res = stylize(
            ct, [st], init=args.init, scales=1, steps=args.steps, value_range=None, progress=False, **cfg
        )
        rep = audio_report(c, [s], res.output.double().numpy(), rate)
        rep["seconds"] = round(time.perf_counter() - t0, 1)
        name = name if args.init == "content" else f"{name}, init {args.init}"
        name = name if args.content_weight == 1 else f"{name}, content weight {args.content_weight:g}"
        rows[name] = rep
        show(name, rep)
        if args.save:
            import soundfile as sf

            args.save.mkdir(parents=True, exist_ok=True)
            out = res.output.numpy().T
            sf.write(
                args.save / (name.split(" (")[0].replace(" ", "_").replace(",", "") + ".wav"),
                out / max(1.0, np.abs(out).max()),
                rate,
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
