"""Batch throughput: items per hour vs --workers (local pool), and Ray's overhead per item.

Inputs are crops of real photos (scikit-image) styled with the bundled Starry Night; every run
writes into a fresh folder. Results go to benchmarks/results/batch.json (and are printed).

    python benchmarks/batch.py                       # the issue's size: 64 images at 256 px
    python benchmarks/batch.py --items 8 --size 64 --steps 10 --workers 1 2   # reduced
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

import ndstyle
from ndstyle.batching import batch

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "hubble_deep_field")


def make_inputs(folder: Path, items: int, size: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    content = folder / "in"
    content.mkdir(parents=True)
    for i in range(items):
        img = getattr(data, PHOTOS[i % len(PHOTOS)])()
        img = np.stack([img] * 3, -1) if img.ndim == 2 else img[..., :3]
        h, w = img.shape[:2]
        side = min(h, w, 2 * size)
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = Image.fromarray(img[y : y + side, x : x + side]).resize((size, size))
        crop.save(content / f"{i:03d}.png")
    style = folder / "starry.jpg"
    Image.open(Path(ndstyle.__file__).parent / "data" / "starry_night.jpg").convert("RGB").save(style)
    return content, style


def timed(**kwargs: object) -> float:
    start = time.perf_counter()
    result = batch(**kwargs)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    assert result.failed == 0, result.line()
    print(result.line(), flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--tiny",
        type=int,
        nargs="*",
        default=[4, 16],
        help="numbers of tiny items for the overhead (none: skip)",
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "batch.json")
    a = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        content, style = make_inputs(root, a.items, a.size)
        options = dict(steps=a.steps, size=a.size, seed=0, progress=False)
        for workers in a.workers:
            seconds = timed(
                inputs=content, styles=style, output_dir=root / f"w{workers}", workers=workers, **options
            )
            rows.append(
                {"backend": "local", "workers": workers, "threads": max(1, (os.cpu_count() or 1) // workers),
                 "items": a.items, "seconds": round(seconds, 1),
                 "items_per_hour": round(3600 * a.items / seconds, 1)}
            )  # fmt: skip
        if a.tiny:
            # per-item cost of each backend = slope of wall time over the number of tiny items;
            # the intercept is the fixed start-up (spawning workers; Ray's is timed apart)
            import ray

            tiny_options = dict(steps=1, size=32, scales=1, seed=0, progress=False, threads=1)
            fits = {}
            for backend in ("local", "ray"):
                if backend == "ray":
                    start = time.perf_counter()
                    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
                    ray_init = time.perf_counter() - start
                    timed(inputs=make_inputs(root / "warm", 2, 32)[0], styles=style, output_dir=root / "wr",
                          ray=True, **tiny_options)  # fmt: skip
                points = []
                for n in a.tiny:
                    folder, _ = make_inputs(root / f"{backend}{n}", n, 32)
                    where = {"ray": True} if backend == "ray" else {"workers": 2}
                    points.append((n, timed(inputs=folder, styles=style, output_dir=root / f"o{backend}{n}",
                                            **where, **tiny_options)))  # fmt: skip
                (n0, t0), (n1, t1) = points[0], points[-1]
                slope = (t1 - t0) / (n1 - n0)
                fits[backend] = {"points": points, "per_item_s": round(slope, 3),
                                 "fixed_s": round(t0 - slope * n0, 2)}  # fmt: skip
            ray.shutdown()
            rows.append(
                {"backend": "overhead", "local": fits["local"], "ray": fits["ray"],
                 "ray_init_s": round(ray_init, 2),
                 "ray_overhead_per_item_s": round(fits["ray"]["per_item_s"] - fits["local"]["per_item_s"], 3)}
            )  # fmt: skip
    report = {
        "command": " ".join(["python benchmarks/batch.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "items": a.items, "size": a.size, "steps": a.steps, "rows": rows,
    }  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
