"""Wall time of the volume recipe on a real 128^3 pair with its defaults (issue 15: < 10 min).

MNI152 T1 and Colin27 (``examples/volumes_data.py --factor 1 --out DATA1``, 1 mm) resampled to a
128^3 working grid each (brain masks likewise), then ``plan_volume_transfer`` + ``stylize`` with
:data:`ndstyle.volume_quality.VOLUME_RECIPE` (100 L-BFGS steps at 128^3, 25 per coarser level),
judged on the working grid.

Run: ``OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/volume_128.py --data DATA1 [--tol T] [--out JSON]``
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from ndstyle import stylize
from ndstyle.functional import resize, resize_mask
from ndstyle.metrics.volume import judge
from ndstyle.volume_quality import VOLUME_RECIPE, plan_volume_transfer, recipe_extractor


def grid(path: Path, n: int, mask: bool = False) -> np.ndarray:
    x = torch.from_numpy(np.asarray(nib.load(path).dataobj, dtype=np.float32))[None, None]
    if mask:
        return resize_mask((x > 0).float(), (n, n, n))[0, 0].numpy() > 0.5
    return resize(x, (n, n, n))[0].double().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tol", type=float, default=None, help="stylize's tol (default: the recipe's)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n = args.size
    c, s = grid(args.data / "mni_t1.nii.gz", n), grid(args.data / "colin_t1.nii.gz", n)
    cm, sm = grid(args.data / "mni_brain.nii.gz", n, True), grid(args.data / "colin_brain.nii.gz", n, True)
    start = time.perf_counter()
    plan = plan_volume_transfer(c, s, cm, sm)
    options = {**VOLUME_RECIPE, **({} if args.tol is None else {"tol": args.tol})}
    res = stylize(plan.content, plan.style, extractor=recipe_extractor(), mask=plan.mask,
                  style_masks=[plan.style_mask], value_range=plan.bounds, progress=False,
                  **options)  # type: ignore[arg-type]  # fmt: skip
    seconds = time.perf_counter() - start
    result = plan.normalization.inverse(res.output.double().numpy())
    scores = judge(c, [s], result, cm, style_masks=[sm])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    row = {"size": n, "threads": args.threads, "seconds": seconds, "steps": len(res.history), "tol": args.tol,
           "level_steps": res.level_steps, "best_cost": res.best_cost,
           "scales": [list(x) for x in res.scales], "peak_rss_gib": peak, **scores}  # fmt: skip
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}))
    if args.out:
        args.out.write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
