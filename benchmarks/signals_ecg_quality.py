"""ECG configurations judged by ndstyle.metrics.signal on the real pair of examples/signals_data.py.

Run:  OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/signals_ecg_quality.py --data /tmp/sigdata \
          --out benchmarks/results/signals_ecg.json [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ndstyle import stylize
from ndstyle.extractors.ecg import build_ecg_extractor
from ndstyle.metrics.signal import ecg_report
from ndstyle.modalities.signal import ecg_extractor, read_signal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))


def standardise(x: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    mean, std = x.mean(1, keepdims=True), x.std(1, keepdims=True)
    return torch.from_numpy(((x - mean) / std).astype(np.float32)), mean, std


def configs(
    rate: float, names: list[str], mean: np.ndarray, std: np.ndarray, seed: int, backbone: Path | None = None
) -> dict[str, dict[str, Any]]:
    leads = len(names)
    firsts = {f"relu{b}_1": 0.25 for b in range(1, 5)}

    def ecg(**kw: Any) -> Any:
        return build_ecg_extractor(rate, leads, seed=seed, **{"backbone_input": "raw", **kw})

    proj = {"lead_names": names, "mean": mean.ravel(), "std": std.ravel()}
    out: dict[str, dict[str, Any]] = {
        "today (random ConvNd, content relu2_2)": {
            "extractor": ecg_extractor(rate, leads, seed=seed),
            "content_layers": ["relu2_2"],
        },
        "content relu1_1": {
            "extractor": ecg_extractor(rate, leads, seed=seed),
            "content_layers": ["relu1_1"],
        },
        "monitor-band content + ConvNd style": {
            "extractor": ecg(),
            "content_layers": ["monitor"],
            "style_layers": firsts,
        },
        "monitor-band content + ConvNd + band style": {
            "extractor": ecg(),
            "content_layers": ["monitor"],
            "style_layers": {**firsts, "wander": 1.0, "muscle": 1.0},
        },
        "monitor + bands + limb projection": {
            "extractor": ecg(**proj),
            "content_layers": ["monitor"],
            "style_layers": {**firsts, "wander": 1.0, "muscle": 1.0},
        },
    }
    for sw in (1e2, 1e3, 1e5):
        out[f"monitor + bands + limb projection, style weight {sw:g}"] = {
            **out["monitor + bands + limb projection"],
            "style_weight": sw,
        }
    out["default, backbone reads outside the monitoring band"] = {
        "extractor": ecg(backbone_input="outside-monitor", **proj),
        "content_layers": ["monitor"],
        "style_layers": {**firsts, "wander": 1.0, "muscle": 1.0},
        "style_weight": 1e3,
    }
    for sw in (1e2, 3e2, 3e3, 1e4, 1e5):
        out[f"default, backbone reads outside the monitoring band, style weight {sw:g}"] = {
            **out["default, backbone reads outside the monitoring band"],
            "style_weight": sw,
        }
    for strength in (0.5, 0.75, 0.9):
        out[f"default, backbone reads outside the monitoring band, strength {strength:g}"] = {
            **out["default, backbone reads outside the monitoring band"],
            "style_weight": None,
            "strength": strength,
        }
    if backbone is not None:
        from ndstyle.extractors import ConvNdExtractor

        trained = ConvNdExtractor.from_file(backbone, spatial_dims=1, in_channels=1)
        random = ConvNdExtractor(trained.config, seed=seed)
        for label, net in (("trained", trained), ("random", random)):
            out[f"per-lead {label} backbone + bands + limb projection, style weight 1000"] = {
                "extractor": ecg(backbone=net, **proj),
                "content_layers": ["monitor"],
                "style_layers": {**firsts, "wander": 1.0, "muscle": 1.0},
                "style_weight": 1e3,
            }
            out[f"per-lead {label} backbone + bands + limb projection, strength 0.75"] = {
                "extractor": ecg(backbone=net, **proj),
                "content_layers": ["monitor"],
                "style_layers": {**firsts, "wander": 1.0, "muscle": 1.0},
                "strength": 0.75,
            }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--backbone", type=Path, help="a one-lead ConvNd trained with `ndstyle train`")
    parser.add_argument(
        "--band-scaled-style",
        action="store_true",
        help="scale each style lead so that its 0.5-40 Hz band has the content's power",
    )
    parser.add_argument("--save", type=Path, help="folder for the result arrays (.npy)")
    parser.add_argument("--history", action="store_true", help="print the cost J of every step")
    args = parser.parse_args()
    c, meta = read_signal(args.data / "ecg_content.csv")
    s, _ = read_signal(args.data / "ecg_style.csv")
    rate, names = meta["sample_rate"], meta["lead_names"]
    ct, cm, cs = standardise(c)
    st, _, _ = standardise(s)
    if args.band_scaled_style:
        from ndstyle.metrics.signal import bandpass

        gain = bandpass(ct.double().numpy(), rate, 0.5, 40).std(1) / bandpass(
            st.double().numpy(), rate, 0.5, 40
        ).std(1)
        st = st * torch.from_numpy(gain[:, None]).float()
    rows: dict[str, Any] = {}
    from signals_data import electrode_noise, leads_from_electrodes

    noise = leads_from_electrodes(electrode_noise(rate, s.shape[1], np.random.default_rng(0)))
    rows["reference: content + the style's noise"] = ecg_report(
        c, [s], c + noise[:, : c.shape[1]], rate, names
    )
    show("reference: content + the style's noise", rows["reference: content + the style's noise"])
    for name, cfg in configs(rate, names, cm, cs, args.seed, args.backbone).items():
        if args.only and not any(o in name for o in args.only):
            continue
        cfg = dict(cfg)
        extractor = cfg["extractor"]
        t0 = time.perf_counter()
        res = stylize(
            ct,
            [st],
            init="content",
            scales=1,
            steps=args.steps,
            value_range=None,
            progress=False,
            seed=args.seed,
            **cfg,
        )
        seconds = time.perf_counter() - t0
        out = res.output if hasattr(res, "output") else res.result
        if hasattr(extractor, "project"):
            out = extractor.project(out.detach())
        r = out.detach().double().numpy() * cs + cm
        rep = ecg_report(c, [s], r, rate, names)
        rep["seconds"] = round(seconds, 1)
        rep["cost_at_content"] = res.history[0].total  # the first step evaluates J at the content
        if args.history:
            print(" ".join(f"{r.total:.4g}" for r in res.history), flush=True)
        name = f"{name}, band-scaled style" if args.band_scaled_style else name
        rows[name] = rep
        show(name, rep)
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.save(args.save / (name.split(" (")[0].replace(" ", "_").replace(",", "") + ".npy"), r)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1, default=float))


def show(name: str, rep: dict[str, Any]) -> None:
    if True:
        print(
            f"{name:60s} corr med {rep['beat_corr_median']:.3f} min {rep['beat_corr_min']:.3f} "
            f"({rep['beat_corr_worst_lead']}) R {rep['r_peak_max_shift_ms']:.0f} ms "
            f"moved wander {rep['noise_moved']['wander']:.2f} muscle {rep['noise_moved']['muscle']:.2f} "
            f"limb {rep['limb_error_max']:.3f} pol {rep['polarity_kept_all']} "
            f"edge {rep['edge_spike_ratio']:.1f} "
            f"{rep.get('seconds', '')}s",
            flush=True,
        )


if __name__ == "__main__":
    main()
