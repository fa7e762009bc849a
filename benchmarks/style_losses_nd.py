"""Strength and style statistics on a real volume pair and a real audio pair (issue 18).

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/style_losses_nd.py --volumes VOLS --audio SIG --out DIR

The same two experiments as ``benchmarks/style_losses.py`` (images), outside 2-D:

- **volume**: MNI152 T1 -> Colin27 T1 (``examples/volumes_data.py`` at 3 mm, resampled to
  ``--vsize``^3, intensities to [0, 1]) with the random ``conv3d`` extractor;
- **audio**: seconds 0-3 of a speech clip -> a rain texture (``examples/signals_data.py``), mono at
  16 kHz, with the ``spectral`` front end.

``strength``: the Gram cost at 0.25 / 0.5 / 0.75; content change = J_content(result) /
J_content(noise), style change = 1 - J_style(result) / J_style(content), in the optimised
extractor. ``statistics``: every style statistic at strength 0.5, judged by the Gram, W2 and
sliced-W2 distances in a seeded random ConvNd of the same dimension that was not optimised
(``seed=123``), each divided by the content's distance. Writes ``results_nd.json``, ``results_nd.md``
and picture strips into ``--out``.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from style_losses import DISTANCES  # noqa: E402

import ndstyle.functional as NF  # noqa: E402
from ndstyle import stylize  # noqa: E402
from ndstyle.extractors import ConvNdExtractor, build_extractor  # noqa: E402
from ndstyle.extractors.base import FeatureExtractor  # noqa: E402
from ndstyle.losses import STYLE_LOSSES, PerceptualLoss, build_style_statistic  # noqa: E402

STRENGTHS = (0.25, 0.5, 0.75)


def noise_like(content: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Gaussian noise with the content's per-channel mean and std ``(C, *spatial)``."""
    dims = tuple(range(1, content.ndim))
    g = torch.Generator().manual_seed(seed)
    mean, std = content.mean(dims, keepdim=True), content.std(dims, keepdim=True).clamp_min(1e-3)
    return mean + std * torch.randn(content.shape, generator=g)


def changes(
    net: FeatureExtractor, content: torch.Tensor, style: torch.Tensor, x: torch.Tensor
) -> dict[str, float]:
    """Content and style change of ``x`` in ``net`` (its default layers, the Gram cost)."""
    loss = PerceptualLoss(
        net, content_layers=list(net.default_content_layers), style_layers=net.default_style_layers
    )
    loss.set_content(content[None])
    loss.set_styles([style[None]])
    with torch.no_grad():

        def terms(y: torch.Tensor) -> tuple[float, float]:
            t = loss(y[None])
            return float(t.content), float(t.style)

        c_x, s_x = terms(x)
        c_noise, _ = terms(noise_like(content))
        _, s_content = terms(content)
    return {"content_change": c_x / max(c_noise, 1e-30), "style_change": 1 - s_x / max(s_content, 1e-30)}


def judged(
    judge: FeatureExtractor, content: torch.Tensor, style: torch.Tensor, x: torch.Tensor
) -> dict[str, float]:
    """Each distance of ``x`` to the style in ``judge`` over the content's (1: no closer)."""
    layers = list(judge.default_style_layers)
    with torch.no_grad():
        fs, fc, fx = (judge(t[None], layers) for t in (style, content, x))
    out = {}
    for name in DISTANCES:
        statistic = build_style_statistic(name, seed=99)
        targets = {k: statistic.target(v) for k, v in fs.items()}

        def distance(feats: dict[str, torch.Tensor], st: Any = statistic, tg: dict = targets) -> float:
            if hasattr(st, "reseed"):
                st.reseed()
            return float(sum(st.cost(feats[k], tg[k]) for k in layers))

        out[name] = distance(fx) / max(distance(fc), 1e-30)
    return out


def volume_pair(folder: Path, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    import nibabel as nib

    def load(name: str) -> torch.Tensor:
        data = torch.from_numpy(np.asarray(nib.load(folder / f"{name}.nii.gz").dataobj, dtype=np.float32))
        data = NF.resize(data[None, None], (size,) * 3)[0]
        return (data - data.min()) / (data.max() - data.min())

    return load("mni_t1"), load("colin_t1")


def audio_pair(folder: Path, seconds: float = 3.0, rate: int = 16000) -> tuple[torch.Tensor, torch.Tensor]:
    from ndstyle.modalities.audio import read_audio, resample

    def load(name: str) -> torch.Tensor:
        x, meta = read_audio(folder / name)
        mono = resample(x.mean(0, keepdims=True), meta["sample_rate"], rate)[:, : int(seconds * rate)]
        return torch.from_numpy(mono.astype(np.float32))

    return load("speech.wav"), load("rain.wav")


def run_pair(
    name: str, content: torch.Tensor, style: torch.Tensor, net: FeatureExtractor, steps: int
) -> dict:
    dims = content.ndim - 1
    judge = ConvNdExtractor.random(dims, content.shape[0], seed=123)
    common = {"extractor": net, "steps": steps, "scales": 1, "progress": False, "seed": 0, "init": "content"}
    if dims == 1:
        common["value_range"] = None
    rows: dict[str, Any] = {"strength": {}, "statistics": {}, "outputs": {}}
    for s in STRENGTHS:
        t0 = time.perf_counter()
        out = stylize(content, style, strength=s, **common).output
        rows["strength"][s] = {**changes(net, content, style, out), "seconds": time.perf_counter() - t0}
        rows["outputs"][f"strength {s}"] = out
        print(name, "strength", s, rows["strength"][s], flush=True)
    for loss in STYLE_LOSSES:
        t0 = time.perf_counter()
        out = stylize(content, style, strength=0.5, style_loss=loss, **common).output
        row = {**judged(judge, content, style, out), **changes(net, content, style, out)}
        rows["statistics"][loss] = {**row, "seconds": time.perf_counter() - t0}
        rows["outputs"][loss] = out
        print(name, loss, row, flush=True)
    return rows


def picture(name: str, content: torch.Tensor, style: torch.Tensor, outputs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"content": content, "style": style, **outputs}
    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels), 2.1))
    for ax, (label, x) in zip(axes, panels.items()):
        if x.ndim == 4:  # volume: the axial mid-slice, radiological display
            image = x[0, :, :, x.shape[-1] // 2].T.flip(0).numpy()
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        else:  # audio: log-magnitude spectrogram on one dB scale
            spec = torch.stft(x[0], 512, 128, window=torch.hann_window(512), return_complex=True).abs()
            ax.imshow(
                20 * torch.log10(spec + 1e-4).numpy(),
                origin="lower",
                aspect="auto",
                vmin=-60,
                vmax=30,
                cmap="magma",
            )
        ax.set_title(label, fontsize=7)
        ax.axis("off")
    fig.suptitle(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def report(results: dict) -> str:
    lines = []
    for name, rows in results.items():
        lines += [
            f"### {name}",
            "",
            "| strength | content change | style change | ratio |",
            "|---|---|---|---|",
        ]
        for s, r in rows["strength"].items():
            ratio = r["content_change"] / max(r["style_change"], 1e-9)
            lines.append(f"| {s} | {r['content_change']:.3f} | {r['style_change']:.3f} | {ratio:.3f} |")
        lines += [
            "",
            "| statistic (strength 0.5) | content change | "
            + " | ".join(f"judge: {d}" for d in DISTANCES)
            + " |",
        ]
        lines.append("|---" * (2 + len(DISTANCES)) + "|")
        for loss, r in rows["statistics"].items():
            lines.append(
                f"| {loss} | {r['content_change']:.3f} | "
                + " | ".join(f"{r[d]:.3f}" for d in DISTANCES)
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--volumes", type=Path, required=True, help="folder with mni_t1/colin_t1 .nii.gz")
    parser.add_argument("--audio", type=Path, required=True, help="folder with speech.wav and rain.wav")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--vsize", type=int, default=40)
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pairs = {
        "volume: MNI T1 -> Colin27 T1 (conv3d)": (*volume_pair(args.volumes, args.vsize), "conv3d", 3),
        "audio: speech -> rain (spectral)": (*audio_pair(args.audio), "spectral", 1),
    }
    results = {}
    for name, (content, style, extractor, dims) in pairs.items():
        net = build_extractor(extractor, spatial_dims=dims, in_channels=content.shape[0])
        rows = run_pair(name, content, style, net, args.steps)
        outputs = rows.pop("outputs")
        picture(name, content, style, outputs, args.out / f"nd_{extractor}.png")
        results[name] = rows
        (args.out / "results_nd.json").write_text(json.dumps(results, indent=1, default=float))
    text = report(results)
    (args.out / "results_nd.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
