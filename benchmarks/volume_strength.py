"""The volume recipe with its fixed weights against the calibrated ``strength`` (issue 18).

MNI152 T1 -> ``--style`` (Colin27 T1 or the head CT of ``examples/volumes_data.py``, 3 mm) resampled
to ``--size``^3 with brain masks, ``plan_volume_transfer`` + ``stylize`` with
:data:`ndstyle.volume_quality.VOLUME_RECIPE`; each setting either a style weight (``3``) or a
strength (``s0.5``, replacing the recipe's style weight), judged by ``ndstyle.metrics.volume``.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/volume_strength.py --data DATA --style colin_t1
--settings 3 s0.5 s0.75 [--size 48] [--out JSON]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from volume_128 import grid  # noqa: E402

from ndstyle import stylize  # noqa: E402
from ndstyle.metrics.volume import judge  # noqa: E402
from ndstyle.volume_quality import VOLUME_RECIPE, plan_volume_transfer, recipe_extractor  # noqa: E402

STYLE_MASKS = {"colin_t1": "colin_brain", "ct_head": "ct_brain"}
KEYS = ("class_dice", "rank_corr", "in_range_fraction", "hist_ratio", "texture_ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--style", choices=sorted(STYLE_MASKS), default="colin_t1")
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--settings", nargs="+", default=["3", "s0.5", "s0.75", "s0.9"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n = args.size
    c, s = grid(args.data / "mni_t1.nii.gz", n), grid(args.data / f"{args.style}.nii.gz", n)
    cm = grid(args.data / "mni_brain.nii.gz", n, True)
    sm = grid(args.data / f"{STYLE_MASKS[args.style]}.nii.gz", n, True)
    plan = plan_volume_transfer(c, s, cm, sm)
    rows: list[dict[str, Any]] = []
    for setting in args.settings:
        options: dict[str, Any] = dict(VOLUME_RECIPE)
        if setting.startswith("s"):
            options.pop("style_weight")
            options["strength"] = float(setting[1:])
        else:
            options["style_weight"] = float(setting)
        start = time.perf_counter()
        res = stylize(plan.content, plan.style, extractor=recipe_extractor(), mask=plan.mask,
                      style_masks=[plan.style_mask], value_range=plan.bounds, progress=False,
                      **options)  # fmt: skip
        result = plan.normalization.inverse(res.output.double().numpy())
        scores = judge(c, [s], result, cm, style_masks=[sm])
        row = {"style": args.style, "size": n, "setting": setting, "seconds": time.perf_counter() - start}
        row.update({k: float(scores[k]) for k in KEYS})
        rows.append(row)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
