"""The volume recipe on real pairs with some of its options changed, judged (issues 15, 18, 19).

MNI152 T1 -> each ``--pairs`` style (``examples/volumes_data.py`` at 3 mm) resampled to
``--size``^3 with brain masks on both, then ``plan_volume_transfer`` + ``stylize`` with
:data:`ndstyle.volume_quality.VOLUME_RECIPE` changed by each ``--settings`` entry
(``key=value[,key=value...]`` of ``stylize``; ``strength=S`` replaces the recipe's style weight),
judged by ``ndstyle.metrics.volume`` on the working grid. Rows: pair, setting, seconds, steps per
level, best J and the judges.

Run, e.g.::

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/volume_settings.py --data DATA --size 77 \\
        --pairs mni_t1:colin_t1 mni_t1:ct_head --settings tol=0 tol=1e-3 [--out JSON]
    ... --size 48 --settings style_weight=3 strength=0.25 strength=0.5 strength=0.75
    ... --size 77 --settings style_loss=gram,style_weight=2 style_loss=sliced-wasserstein,style_weight=0.35
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


def overrides(setting: str) -> dict[str, Any]:
    """``"style_loss=histogram,style_weight=2"`` -> ``{"style_loss": "histogram", "style_weight": 2.0}``."""
    out: dict[str, Any] = {}
    for item in setting.split(","):
        key, _, value = item.partition("=")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = value
    return out


def options(setting: str) -> dict[str, Any]:
    """The recipe with ``setting`` applied (a strength replaces the recipe's style weight)."""
    changed = overrides(setting)
    recipe = {k: v for k, v in VOLUME_RECIPE.items() if not (k == "style_weight" and "strength" in changed)}
    return {**recipe, **changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder from examples/volumes_data.py")
    parser.add_argument("--size", type=int, default=77)
    parser.add_argument("--pairs", nargs="+", default=["mni_t1:colin_t1", "mni_t1:ct_head"])
    parser.add_argument("--settings", nargs="+", default=["tol=0", "tol=1e-3"])
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
            start = time.perf_counter()
            res = stylize(plan.content, plan.style, extractor=recipe_extractor(), mask=plan.mask,
                          style_masks=[plan.style_mask], value_range=plan.bounds, progress=False,
                          **options(setting))  # fmt: skip
            seconds = time.perf_counter() - start
            scores = judge(
                c, [s], plan.normalization.inverse(res.output.double().numpy()), cm, style_masks=[sm]
            )
            row = {"pair": pair, "size": n, "setting": setting, "seconds": seconds,
                   "level_steps": res.level_steps, "best_cost": res.best_cost}  # fmt: skip
            row.update({k: float(scores[k]) for k in KEYS})
            rows.append(row)
            print(
                json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
                flush=True,
            )
            if args.out:
                args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
