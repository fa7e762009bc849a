"""Inputs larger than memory: peak resident memory and time per step of tiled runs (issue 19).

    python benchmarks/tiled_memory.py --case image --sizes 4900 --limit 6G --steps 6 --out OUT.json
    python benchmarks/tiled_memory.py --case volume --sizes 256 --limit 4G --steps 6 --out OUT.json
    python benchmarks/tiled_memory.py --case image --sizes 1024 --compare 512 --steps 10 --out OUT.json
    python benchmarks/tiled_memory.py --plot OUT.json --png memory_plateau.png

Each measurement runs ``ndstyle.stylize`` in a fresh process (one pyramid level, the defaults
otherwise: L-BFGS, ``strength``, ``precision="auto"``) with ``max_memory=--limit``, so the memory
policy (:func:`ndstyle.memory.plan_memory`) shortens the L-BFGS history and tiles where the whole
input does not fit. The child's peak resident set (``ru_maxrss``) is the figure; ``growth`` is it
minus the resident memory before the run (Python, torch, the weights and the inputs).

- ``image``: scikit-image's *chelsea* photo resized to long side ``size`` (4900 = 16 megapixels at
  4900 x 3264) with *The Starry Night* at 1024 px, the offline ImageNet VGG-16;
- ``volume``: the MNI152 T1 template (nilearn, 1 mm) resampled to ``size``^3, Colin27's T1
  (the style, ``--style-volume``) or the template itself, the random ``conv3d``.

``--compare TILE`` runs the same problem twice, untiled and with ``tile=TILE``, and records J after
every step of both (the issue's "identical J after 10 steps") and the time per step.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _inputs(case: str, size: int, style_volume: str | None) -> tuple[Any, Any]:
    import torch
    from inputs import load_image, pair_paths

    if case == "image":
        content_path, style_path = pair_paths()["chelsea-starry"]
        return load_image(content_path, size), load_image(style_path, 1024)
    import nibabel as nib
    from nilearn import datasets

    from ndstyle.functional import resize

    def grid(img: Any, n: int | None) -> torch.Tensor:
        data = torch.from_numpy(img.get_fdata(dtype="float32"))[None, None]
        data = (data - data.min()) / (data.max() - data.min())
        return (resize(data, (n,) * 3) if n else data)[0]

    content = grid(datasets.load_mni152_template(resolution=1), size)
    style = grid(nib.load(style_volume), None) if style_volume else content[:, ::2, ::2, ::2]
    return content, style


def measure(
    case: str,
    size: int,
    limit: str | None,
    steps: int,
    tile: list[int] | None,
    style_volume: str | None,
    precision: str = "auto",
    optimizer: str = "lbfgs",
    style_loss: str = "gram",
) -> dict:
    """One run in this process: peak RSS, plan, seconds per step, J per step.

    ``limit`` ``"total:4G"`` gives the run what the process may still use after loading (4 GiB
    minus the resident memory before the run), so that the whole process's peak is the target.
    """
    limit_asked = limit
    import torch

    from ndstyle import stylize
    from ndstyle.extractors import build_extractor
    from ndstyle.memory import parse_size

    torch.manual_seed(0)
    content, style = _inputs(case, size, style_volume)
    name = "vgg16-offline" if case == "image" else "conv3d"
    net = build_extractor(name, spatial_dims=content.ndim - 1, in_channels=content.shape[0])
    before = _rss_mb()
    if limit is not None and limit.startswith("total:"):
        # the whole process within this: the run may use what the loaded program does not
        limit = str(int(parse_size(limit.removeprefix("total:")) - before * 2**20))
    start = time.perf_counter()
    result = stylize(
        content,
        style,
        extractor=net,
        steps=steps,
        scales=1,
        progress=False,
        max_memory=limit,
        tile=tile,
        seed=0,
        precision=precision,
        optimizer=optimizer,
        style_loss=style_loss,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = [r.seconds for r in result.history]
    per_step = [b - a for a, b in zip(times, times[1:])]
    plan = result.memory
    return {
        "case": case,
        "shape": list(content.shape[1:]),
        "positions": int(content[0].numel()),
        "limit": limit,
        "limit_asked": limit_asked,
        "asked_tile": tile,
        "tile": None if plan is None or plan.tile is None else list(plan.tile),
        "history_size": None if plan is None else plan.history_size,
        "estimate_mb": None if plan is None else plan.needed / 2**20,
        "note": "" if plan is None else plan.note,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "growth_mb": peak - before,
        "seconds": seconds,
        "seconds_per_step": sorted(per_step)[len(per_step) // 2] if per_step else None,
        "first_step_seconds": times[0] if times else None,
        "totals": [r.total for r in result.history],
        "precision": result.precision,
        "threads": torch.get_num_threads(),
        "optimizer": optimizer,
        "style_loss": style_loss,
    }


def _tile(text: str | None) -> list[int] | None:
    return None if not text else [int(t) for t in text.split(",")]


def _child(args: argparse.Namespace, size: int, tile: str | None) -> dict:
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--case",
        args.case,
        "--sizes",
        str(size),
        "--steps",
        str(args.steps),
        "--precision",
        args.precision,
        "--optimizer",
        args.optimizer,
        "--style-loss",
        args.style_loss,
    ]
    if args.limit:
        command += ["--limit", args.limit]
    if tile:
        command += ["--tile", tile]
    if args.style_volume:
        command += ["--style-volume", args.style_volume]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _whole_need_gib(row: dict) -> float:
    """What the whole input would need untiled: the plan note's first figure, else the estimate."""
    match = re.search(r"memory: ([0-9.]+) (GiB|MiB)", row.get("note", ""))
    if match is None:
        return row["estimate_mb"] / 1024
    return float(match.group(1)) / (1 if match.group(2) == "GiB" else 1024)


def plot(results: dict, png: Path) -> None:
    """Per case: the whole input's estimated need against the measured peak of the run (plateau).

    Gram runs only (the sorted statistics' rows have a higher floor; see docs/benchmarks.md).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = sorted({r["case"] for r in results.values()})
    fig, axes = plt.subplots(1, len(cases), figsize=(5.2 * len(cases), 3.8), squeeze=False)
    for ax, case in zip(axes[0], cases):
        rows = sorted(
            (
                r
                for r in results.values()
                if r["case"] == case and not r.get("asked_tile") and r.get("style_loss", "gram") == "gram"
            ),
            key=lambda r: r["positions"],
        )
        xs = [r["positions"] / 1e6 for r in rows]
        ax.plot(
            xs,
            [_whole_need_gib(r) for r in rows],
            "x--",
            color="tab:orange",
            label="needed untiled (estimate)",
        )
        ax.plot(
            xs, [r["peak_rss_mb"] / 1024 for r in rows], "o-", color="tab:blue", label="measured peak RSS"
        )
        for r, x in zip(rows, xs):
            label = f"tiles {tuple(r['tile'])}" if r["tile"] else "whole input"
            ax.annotate(
                label, (x, r["peak_rss_mb"] / 1024), fontsize=7, xytext=(3, -12), textcoords="offset points"
            )
        for asked in sorted({r.get("limit_asked") for r in rows if r.get("limit_asked")}):
            gib = float(asked.removeprefix("total:").rstrip("G"))
            ax.axhline(gib, color="grey", lw=0.8, ls=":")
            ax.annotate(
                f"limit {gib:g} GiB", (xs[0], gib), fontsize=7, xytext=(0, 3), textcoords="offset points"
            )
        ax.set_title(f"{case}: peak memory against size")
        ax.set_xlabel("million positions (pixels / voxels)")
        ax.set_ylabel("GiB")
        ax.set_yscale("log")
        ax.legend(fontsize=8, loc="upper left")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", choices=("image", "volume"), default="image")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024])
    parser.add_argument("--limit", default=None, help="max_memory (6G), or total:6G for the process")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--tile", default=None, help="tile interior per axis, e.g. 512,1024")
    parser.add_argument("--compare", default=None, help="also run with this --tile, untiled first")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--style-loss", default="gram")
    parser.add_argument("--style-volume", default=None)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--plot", type=Path, help="results JSON to plot (with --png)")
    parser.add_argument("--png", type=Path)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plot:
        plot(json.loads(args.plot.read_text()), args.png)
        return
    if args.worker:
        row = measure(
            args.case,
            args.sizes[0],
            args.limit,
            args.steps,
            _tile(args.tile),
            args.style_volume,
            args.precision,
            args.optimizer,
            args.style_loss,
        )
        print(json.dumps(row))
        return
    results = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    for size in args.sizes:
        for tile in [None, args.compare] if args.compare else [args.tile]:
            run = f"tile={tile}/steps={args.steps}/{args.precision}/{args.optimizer}"
            if args.style_loss != "gram":
                run += f"/{args.style_loss}"
            key = f"{args.case}/{size}/{args.limit}/{run}"
            row = _child(args, size, tile)
            results[key] = row
            print(
                key,
                f"peak {row['peak_rss_mb']:.0f} MB (growth {row['growth_mb']:.0f},",
                f"estimate {row['estimate_mb']:.0f})",
                f"{row['seconds_per_step']} s/step",
                row["note"],
                flush=True,
            )
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
