"""Re-judge saved volume results with the texture judge before and after its outside-mask fix.

Before: each image standardised inside its mask, the network run on the whole volume (where the
erosion of a deep layer left under 5 % of a mask, the outside leaked into its Gram). After: the
outside of each mask set to the mean inside (:func:`ndstyle.metrics.volume._standardise`).

Run: ``PYTHONPATH=. python benchmarks/volume_rejudge.py --data DATA RESULT.nii.gz,STYLE,STYLE_MASK ...``
(DATA from ``examples/volumes_data.py``; the content is ``mni_t1`` with ``mni_brain``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np

import ndstyle.metrics.volume as judges


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)[None]


def _before(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    inside = x[:, mask]
    shape = (-1,) + (1,) * (x.ndim - 1)
    std = inside.std(axis=1).reshape(shape)
    return (x - inside.mean(axis=1).reshape(shape)) / np.where(std > 0, std, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("runs", nargs="+", help="RESULT.nii.gz,STYLE,STYLE_MASK (names in --data)")
    args = parser.parse_args()
    after = judges._standardise
    content, mask = _load(args.data / "mni_t1.nii.gz"), _load(args.data / "mni_brain.nii.gz")[0] > 0
    keys = ("class_dice", "rank_corr", "hist_ratio", "texture_content", "texture_result", "texture_ratio")
    for run in args.runs:
        result, style, style_mask = run.split(",")
        r, s = _load(Path(result)), _load(args.data / f"{style}.nii.gz")
        sm = _load(args.data / f"{style_mask}.nii.gz")[0] > 0
        row = {}
        for name, standardise in (("before", _before), ("after", after)):
            judges._standardise = standardise  # type: ignore[assignment]
            scores = judges.judge(content, [s], r, mask, style_masks=[sm])
            row[name] = {k: round(float(scores[k]), 3) for k in keys}
        judges._standardise = after
        print(result, json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
