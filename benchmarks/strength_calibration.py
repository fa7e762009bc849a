"""Does one strength mean the same across pairs? Compare calibrate_weights' ``by`` modes.

For every image pair of ``benchmarks/style_losses.py`` and strength 0.25 / 0.5 / 0.75, runs the
Gram transfer with ``calibrate_weights(..., by=MODE)`` and measures, in the optimised VGG-16,
``content change`` = J_content(result) / J_content(noise) and ``style change`` =
1 - J_style(result) / J_style(content) (the measures of docs/style-losses.md, unchanged); reports
the coefficient of variation of their ratio across pairs per strength (the issue's target: similar).

``python benchmarks/strength_calibration.py --by gradient value --size 128 --steps 100 --out DIR``
(CPU: about 25 min per mode at 128 px on an idle core).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import style_losses as B  # noqa: E402

import ndstyle  # noqa: E402
import ndstyle.engine as engine  # noqa: E402
from ndstyle.extractors import build_extractor  # noqa: E402
from ndstyle.losses import CALIBRATIONS, calibrate_weights  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--by", nargs="+", choices=CALIBRATIONS, default=list(CALIBRATIONS))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--pairs", nargs="*", default=None)
    parser.add_argument("--strengths", type=float, nargs="*", default=[0.25, 0.5, 0.75])
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    vgg = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    pairs = B.all_pairs()
    results: dict[str, Any] = {"setup": {"size": args.size, "steps": args.steps}}
    original = engine.calibrate_weights
    try:
        for by in args.by:
            engine.calibrate_weights = functools.partial(calibrate_weights, by=by)  # type: ignore[assignment]
            for name in args.pairs or list(pairs):
                content, style = (B.rgb(p, args.size) for p in pairs[name])
                lost = B.content_cost(vgg, content, B.noise_like(content))
                gap = B.gram_style_cost(vgg, style, content)
                strip = [content, style]
                for s in args.strengths:
                    start = time.perf_counter()
                    x = ndstyle.stylize(
                        content, style, extractor=vgg, steps=args.steps, seed=0, progress=False, strength=s
                    ).output
                    dc = B.content_cost(vgg, content, x) / lost
                    ds = 1 - B.gram_style_cost(vgg, style, x) / gap
                    results.setdefault(by, {}).setdefault(name, {})[f"{s:g}"] = [dc, ds]
                    print(
                        f"{by} {name} s={s:g}: content {dc:.3f} style {ds:.3f} ratio {dc / ds:.3f} "
                        f"({time.perf_counter() - start:.0f} s)",
                        flush=True,
                    )
                    strip.append(x)
                B.save_strip(strip, args.out / f"strength_{by}_{name}.png")
                (args.out / "strength_calibration.json").write_text(json.dumps(results, indent=1))
    finally:
        engine.calibrate_weights = original
    text = report(results)
    (args.out / "strength_calibration.md").write_text(text)
    print(text)


def report(results: dict[str, Any]) -> str:
    """One table per mode: content / style change (ratio) per pair and strength, ratio CV per strength."""
    lines = [f"Setup: {json.dumps(results['setup'])}", ""]
    for by, per_pair in results.items():
        if by == "setup":
            continue
        strengths = list(next(iter(per_pair.values())))
        lines += [f"by={by}", "", "| pair | " + " | ".join(f"s={s}" for s in strengths) + " |"]
        lines += ["|---" * (len(strengths) + 1) + "|"]
        for name, row in per_pair.items():
            cells = [
                f"{row[s][0]:.3f} / {row[s][1]:.3f} ({row[s][0] / max(row[s][1], 1e-9):.2f})"
                for s in strengths
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        cvs = []
        for s in strengths:
            r = np.array([row[s][0] / max(row[s][1], 1e-9) for row in per_pair.values()])
            cvs.append(f"{r.mean():.2f} ± {r.std():.2f} ({r.std() / r.mean():.0%})")
        lines += ["| ratio mean ± sd (cv) | " + " | ".join(cvs) + " |", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
