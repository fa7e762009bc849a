"""Style statistics and the strength knob, judged on real image pairs with the offline VGG-16.

Two experiments (``python benchmarks/style_losses.py --out DIR``; CPU, ~25 min at 128 px):

- **strength**: the Gram cost at strength 0.25 / 0.5 / 0.75 on every pair. For each result,
  ``content change`` = J_content(result) / J_content(noise) (0: the content kept, 1: as lost as
  Gaussian noise with its mean and std) and ``style change`` = 1 - J_style(result) / J_style(content)
  (the share of the style gap closed), both in the optimised VGG-16; the knob means the same for
  every pair when their ratio is similar across pairs at each strength.
- **statistics**: each style statistic (gram, mean-cov, sliced-wasserstein, histogram) at the
  default strength, judged with *every* distance (Gram, mean-cov W2, sliced W2) in two extractors
  that were not optimised: a seeded random 2-D ConvNd, and the VGG-16 layers the loss does not use
  (relu1_2, relu2_2, relu3_3, relu4_3). Each distance is divided by the content's own distance to
  the style (1: no closer than the content; 0: the style's statistics), plus the content change.

Writes ``results.json`` (every number), ``results.md`` (tables) and PNG strips to ``--out``
(never into docs/ unless ``--docs-img`` names a folder).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inputs import load_image, pair_paths, skimage_data  # noqa: E402

import ndstyle  # noqa: E402
from ndstyle import functional as NF  # noqa: E402
from ndstyle.extractors import ConvNdExtractor, build_extractor  # noqa: E402
from ndstyle.extractors.base import FeatureExtractor  # noqa: E402
from ndstyle.losses import DEFAULT_STRENGTH, STYLE_LOSSES, build_style_statistic  # noqa: E402

JUDGE_VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
DISTANCES = ("gram", "mean-cov", "sliced-wasserstein")


def all_pairs() -> dict[str, tuple[Path, Path]]:
    """The benchmark's three pairs plus three more, rocket + gravel among them (a known hard case)."""
    data = skimage_data()
    pairs = dict(pair_paths())
    pairs["rocket-gravel"] = (data / "rocket.jpg", data / "gravel.png")
    pairs["astronaut-brick"] = (data / "astronaut.png", data / "brick.png")
    pairs["coffee-grass"] = (data / "coffee.png", data / "grass.png")
    return pairs


def rgb(path: Path, size: int) -> torch.Tensor:
    image = load_image(path, size)
    return image.expand(3, *image.shape[1:]).contiguous() if image.shape[0] == 1 else image[:3]


def noise_like(content: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Gaussian noise with the content's per-channel mean and std (calibrate_weights' far point)."""
    g = torch.Generator().manual_seed(seed)
    mean = content.mean(dim=(1, 2), keepdim=True)
    std = content.std(dim=(1, 2), keepdim=True).clamp_min(1e-3)
    return (mean + std * torch.randn(content.shape, generator=g)).clamp(0, 1)


class Judge:
    """Distances of candidates to one pair's style and content, in a fixed extractor and layers."""

    def __init__(self, net: FeatureExtractor, layers: list[str], style: torch.Tensor, content: torch.Tensor):
        self.net, self.layers = net, layers
        self.stats = {name: build_style_statistic(name, seed=99) for name in DISTANCES}
        with torch.no_grad():
            feats = net(style[None], layers)
        self.targets = {name: {k: s.target(v) for k, v in feats.items()} for name, s in self.stats.items()}
        self.reference = self.raw(content)

    @torch.no_grad()
    def raw(self, x: torch.Tensor) -> dict[str, float]:
        feats = self.net(x[None], self.layers)
        out = {}
        for name, statistic in self.stats.items():
            if hasattr(statistic, "reseed"):
                statistic.reseed()  # the same directions for every candidate
            out[name] = float(
                sum(statistic.cost(feats[k], self.targets[name][k]) for k in self.layers) / len(self.layers)
            )
        return out

    def relative(self, x: torch.Tensor) -> dict[str, float]:
        """Each distance over the content's: 1 = no closer to the style than the content."""
        raw = self.raw(x)
        return {k: raw[k] / max(self.reference[k], 1e-30) for k in raw}


def content_cost(vgg: FeatureExtractor, content: torch.Tensor, x: torch.Tensor) -> float:
    with torch.no_grad():
        a = vgg(content[None], ["relu4_2"])["relu4_2"]
        b = vgg(x[None], ["relu4_2"])["relu4_2"]
    return float(NF.content_cost(b, a))


def gram_style_cost(vgg: FeatureExtractor, style: torch.Tensor, x: torch.Tensor) -> float:
    layers = dict(vgg.default_style_layers)
    with torch.no_grad():
        fs, fx = vgg(style[None], list(layers)), vgg(x[None], list(layers))
    return float(sum(w * NF.style_cost(fx[k], fs[k]) for k, w in layers.items()))


def save_strip(images: list[torch.Tensor], path: Path) -> None:
    from PIL import Image

    height = max(im.shape[1] for im in images)
    tiles = []
    for im in images:
        a = (im.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        pad = np.full((height, a.shape[1] + 2, 3), 255, np.uint8)
        pad[: a.shape[0], : a.shape[1]] = a
        tiles.append(pad)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(tiles, axis=1)).save(path, optimize=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for results.json, results.md, PNGs")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="L-BFGS steps at full size (coarse: 1/4)")
    parser.add_argument("--pairs", nargs="*", default=None, help="pair names (default: all six)")
    parser.add_argument("--strengths", type=float, nargs="*", default=[0.25, 0.5, 0.75])
    parser.add_argument("--losses", nargs="*", default=list(STYLE_LOSSES))
    parser.add_argument("--skip", nargs="*", default=[], choices=["strength", "statistics", "fixed"])
    parser.add_argument(
        "--fixed-style-weight",
        type=float,
        default=1e-4,
        help="baseline: the offline VGG's old fixed style weight, for the same change measures",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    results.setdefault("setup", {})
    results["setup"].update(
        size=args.size,
        steps=args.steps,
        threads=torch.get_num_threads(),
        extractor="vgg16-offline",
        judges=["ConvNdExtractor.random(2, 3, seed=123)", f"VGG-16 {', '.join(JUDGE_VGG_LAYERS)}"],
    )
    vgg = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    random_net = ConvNdExtractor.random(2, 3, seed=123)
    pairs = all_pairs()
    names = args.pairs or list(pairs)

    def transfer(content: torch.Tensor, style: torch.Tensor, **options: Any) -> tuple[torch.Tensor, float]:
        start = time.perf_counter()
        res = ndstyle.stylize(
            content, style, extractor=vgg, steps=args.steps, seed=0, progress=False, **options
        )
        return res.output, time.perf_counter() - start

    for name in names:
        content, style = (rgb(p, args.size) for p in pairs[name])
        lost = content_cost(vgg, content, noise_like(content))
        gap = gram_style_cost(vgg, style, content)
        entry = results.setdefault(name, {"strength": {}, "statistics": {}})
        done: dict[tuple[str, float], tuple[torch.Tensor, float]] = {}
        if "strength" not in args.skip:
            strip = [content, style]
            for s in args.strengths:
                out_x, seconds = transfer(content, style, strength=s)
                done[("gram", s)] = (out_x, seconds)
                dc = content_cost(vgg, content, out_x) / lost
                ds = 1 - gram_style_cost(vgg, style, out_x) / gap
                entry["strength"][f"{s:g}"] = {"content_change": dc, "style_change": ds, "seconds": seconds}
                print(
                    f"{name} strength {s:g}: content {dc:.3f} style {ds:.3f} "
                    f"ratio {dc / ds:.3f} ({seconds:.0f}s)",
                    flush=True,
                )
                strip.append(out_x)
            save_strip(strip, out / f"strength_{name}.png")
        if "fixed" not in args.skip:
            out_x, seconds = transfer(content, style, style_weight=args.fixed_style_weight)
            dc = content_cost(vgg, content, out_x) / lost
            ds = 1 - gram_style_cost(vgg, style, out_x) / gap
            entry["fixed"] = {
                "style_weight": args.fixed_style_weight,
                "content_change": dc,
                "style_change": ds,
                "seconds": seconds,
            }
            print(
                f"{name} fixed style weight: content {dc:.3f} style {ds:.3f} ratio {dc / ds:.3f}", flush=True
            )
            save_strip([content, style, out_x], out / f"fixed_{name}.png")
        if "statistics" not in args.skip:
            judges = {
                "random ConvNd": Judge(random_net, list(random_net.default_style_layers), style, content),
                "VGG unused layers": Judge(vgg, list(JUDGE_VGG_LAYERS), style, content),
            }
            strip = [content, style]
            for loss_name in args.losses:
                out_x, seconds = done.get((loss_name, DEFAULT_STRENGTH)) or transfer(
                    content, style, strength=DEFAULT_STRENGTH, style_loss=loss_name
                )
                row = {
                    "content_change": content_cost(vgg, content, out_x) / lost,
                    "seconds": seconds,
                    **{
                        f"{j}: {k}": v
                        for j, judge in judges.items()
                        for k, v in judge.relative(out_x).items()
                    },
                }
                entry["statistics"][loss_name] = row
                print(f"{name} {loss_name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
                strip.append(out_x)
            save_strip(strip, out / f"statistics_{name}.png")
        results_file.write_text(json.dumps(results, indent=1))
    (out / "results.md").write_text(report(results))
    print(report(results))


def report(results: dict[str, Any]) -> str:
    """Markdown tables of results.json."""
    pairs = [k for k in results if k != "setup"]
    lines = [f"Setup: {json.dumps(results['setup'])}", ""]
    strengths = sorted({s for p in pairs for s in results[p].get("strength", {})}, key=float)
    if strengths:
        lines += [
            "| pair | " + " | ".join(f"s={s}: content / style change (ratio)" for s in strengths) + " |"
        ]
        lines += ["|---" * (len(strengths) + 1) + "|"]
        ratios: dict[str, list[float]] = {s: [] for s in strengths}
        for p in pairs:
            cells = []
            for s in strengths:
                r = results[p]["strength"].get(s)
                if r is None:
                    cells.append("")
                    continue
                ratio = r["content_change"] / max(r["style_change"], 1e-9)
                ratios[s].append(ratio)
                cells.append(f"{r['content_change']:.3f} / {r['style_change']:.3f} ({ratio:.2f})")
            lines.append(f"| {p} | " + " | ".join(cells) + " |")
        lines.append(
            "| ratio mean ± sd (cv) | "
            + " | ".join(
                f"{np.mean(v):.2f} ± {np.std(v):.2f} ({np.std(v) / np.mean(v):.0%})" if v else ""
                for v in ratios.values()
            )
            + " |"
        )
        lines.append("")
        fixed = [results[p]["fixed"] for p in pairs if "fixed" in results[p]]
        if fixed:
            lines.append("")
            lines.append(f"Fixed style weight {fixed[0]['style_weight']:g} (no strength), same measures:")
            lines.append("")
            lines.append("| pair | content / style change (ratio) |")
            lines.append("|---|---|")
            fixed_ratios = []
            for p in pairs:
                if "fixed" in results[p]:
                    r = results[p]["fixed"]
                    ratio = r["content_change"] / max(r["style_change"], 1e-9)
                    fixed_ratios.append(ratio)
                    lines.append(
                        f"| {p} | {r['content_change']:.3f} / {r['style_change']:.3f} ({ratio:.2f}) |"
                    )
            m, sd = np.mean(fixed_ratios), np.std(fixed_ratios)
            lines.append(f"| ratio mean ± sd (cv) | {m:.2f} ± {sd:.2f} ({sd / m:.0%}) |")
            lines.append("")
    losses = list(dict.fromkeys(k for p in pairs for k in results[p].get("statistics", {})))
    if losses:
        columns = [c for c in results[pairs[0]]["statistics"][losses[0]] if c != "seconds"]
        lines += ["| pair | statistic | " + " | ".join(columns) + " | seconds |"]
        lines += ["|---" * (len(columns) + 3) + "|"]
        means: dict[str, list[list[float]]] = {k: [] for k in losses}
        for p in pairs:
            for k in losses:
                r = results[p].get("statistics", {}).get(k)
                if r is None:
                    continue
                means[k].append([r[c] for c in columns])
                lines.append(
                    f"| {p} | {k} | "
                    + " | ".join(f"{r[c]:.3f}" for c in columns)
                    + f" | {r['seconds']:.0f} |"
                )
        for k, rows in means.items():
            if rows:
                lines.append(
                    f"| **mean** | {k} | "
                    + " | ".join(f"**{v:.3f}**" for v in np.mean(rows, axis=0))
                    + " | |"
                )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
