"""The volume recipe with each style statistic and weight, judged (issues 15 and 18).

MNI152 T1 -> each ``--pairs`` style (``examples/volumes_data.py`` at 3 mm) resampled to
``--size``^3 with brain masks (style masks too: every statistic takes them), then
``plan_volume_transfer`` + ``stylize`` with :data:`ndstyle.volume_quality.VOLUME_RECIPE` except
``style_loss`` and ``style_weight`` (``STATISTIC@WEIGHT``), judged by ``ndstyle.metrics.volume``.

Run: ``OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/volume_statistics.py --data DATA --size 77
--pairs mni_t1:ct_head mni_t1:colin_t1 --settings gram@2 sliced-wasserstein@0.35 [--out JSON]``
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

MASKS = {"mni_t1": "mni_brain", "colin_t1": "colin_brain", "ct_head": "ct_brain"}
KEYS = ("class_dice", "rank_corr", "in_range_fraction", "hist_ratio", "texture_ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", type=int, default=77)
    parser.add_argument("--pairs", nargs="+", default=["mni_t1:ct_head", "mni_t1:colin_t1"])
    parser.add_argument("--settings", nargs="+", default=["gram@2", "sliced-wasserstein@0.35"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n = args.size
    rows: list[dict[str, Any]] = []
    for pair in args.pairs:
        content, style = pair.split(":")
        c, s = grid(args.data / f"{content}.nii.gz", n), grid(args.data / f"{style}.nii.gz", n)
        cm = grid(args.data / f"{MASKS[content]}.nii.gz", n, True)
        sm = grid(args.data / f"{MASKS[style]}.nii.gz", n, True)
        plan = plan_volume_transfer(c, s, cm, sm)
        for setting in args.settings:
            statistic, weight = setting.split("@")
            options = {**VOLUME_RECIPE, "style_loss": statistic, "style_weight": float(weight)}
            start = time.perf_counter()
            res = stylize(plan.content, plan.style, extractor=recipe_extractor(), mask=plan.mask,
                          style_masks=[plan.style_mask], value_range=plan.bounds, progress=False,
                          **options)  # type: ignore[arg-type]  # fmt: skip
            seconds = time.perf_counter() - start
            result = plan.normalization.inverse(res.output.double().numpy())
            scores = judge(c, [s], result, cm, style_masks=[sm])
            row = {"pair": pair, "size": n, "statistic": statistic, "style_weight": float(weight),
                   "seconds": seconds, "level_steps": res.level_steps}  # fmt: skip
            row.update({k: float(scores[k]) for k in KEYS})
            rows.append(row)
            shown = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            print(json.dumps(shown), flush=True)
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
