"""Compare each style statistic with the Gram *at equal content change*.

``benchmarks/style_losses.py`` runs every statistic at the same strength, but one strength does not
give every statistic the same content change. This reads its ``results.json`` and the Gram
strength-sweep strips (PNG, 8 bit), judges the Gram results at strength 0.25 / 0.5 / 0.75 with the
same independent distances, and interpolates (piecewise linearly in the content change) the
distance the Gram reaches at each other statistic's content change. A negative difference means the
statistic is closer to the style than the Gram at the same cost to the content.

``python benchmarks/style_losses_frontier.py --out benchmarks/results/style_losses``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from style_losses import JUDGE_VGG_LAYERS, Judge, all_pairs, rgb  # noqa: E402

from ndstyle.extractors import ConvNdExtractor, build_extractor  # noqa: E402


def tiles(path: Path, content: torch.Tensor, style: torch.Tensor, count: int) -> list[torch.Tensor]:
    """The ``count`` result tiles of a strip written by ``save_strip`` (content, style, results...)."""
    with Image.open(path) as opened:
        strip = torch.from_numpy(np.asarray(opened.convert("RGB")).copy()).permute(2, 0, 1).float() / 255
    h, w = content.shape[1:]
    x = w + 2 + style.shape[2] + 2
    out = []
    for _ in range(count):
        out.append(strip[:, :h, x : x + w].contiguous())
        x += w + 2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    results: dict[str, Any] = json.loads((args.out / "results.json").read_text())
    size = int(results["setup"]["size"])
    vgg = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    random_net = ConvNdExtractor.random(2, 3, seed=123)
    pairs = all_pairs()
    lines = []
    diffs: dict[str, list[list[float]]] = {}
    columns: list[str] = []
    for name, entry in results.items():
        if name == "setup" or not entry.get("strength"):
            continue
        content, style = (rgb(p, size) for p in pairs[name])
        judges = {
            "random ConvNd": Judge(random_net, list(random_net.default_style_layers), style, content),
            "VGG unused layers": Judge(vgg, list(JUDGE_VGG_LAYERS), style, content),
        }
        strengths = sorted(entry["strength"], key=float)
        outputs = tiles(args.out / f"strength_{name}.png", content, style, len(strengths))
        sweep = []
        for s, out_x in zip(strengths, outputs, strict=True):
            judged = {f"{j}: {k}": v for j, judge in judges.items() for k, v in judge.relative(out_x).items()}
            entry["strength"][s]["judges"] = judged
            sweep.append((entry["strength"][s]["content_change"], judged))
        columns = list(sweep[0][1])
        change = np.array([c for c, _ in sweep])
        for loss_name, row in entry.get("statistics", {}).items():
            if loss_name == "gram":
                continue
            c = row["content_change"]
            gram_at_c = [float(np.interp(c, change, [j[col] for _, j in sweep])) for col in columns]
            inside = change.min() <= c <= change.max()
            delta = [row[col] - g for col, g in zip(columns, gram_at_c, strict=True)]
            row["gram_at_equal_content_change"] = dict(zip(columns, gram_at_c, strict=True))
            row["inside_gram_sweep"] = bool(inside)
            if inside:
                diffs.setdefault(loss_name, []).append(delta)
            flag = "" if inside else " (outside the Gram sweep: clamped)"
            lines.append(
                f"| {name} | {loss_name} | {c:.3f}{flag} | " + " | ".join(f"{d:+.3f}" for d in delta) + " |"
            )
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    header = ["| pair | statistic | content change | " + " | ".join(columns) + " |"]
    header.append("|---" * (len(columns) + 3) + "|")
    summary = []
    for loss_name, rows in diffs.items():
        a = np.array(rows)
        summary.append(
            f"| **mean of {len(rows)} pairs** | {loss_name} | | "
            + " | ".join(
                f"**{m:+.3f}** ({int((a[:, i] < 0).sum())}/{len(rows)} better)"
                for i, m in enumerate(a.mean(0))
            )
            + " |"
        )
    text = "\n".join(header + lines + summary) + "\n"
    (args.out / "frontier.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
