"""Style real brain volumes with ndstyle's volume defaults (the measured recipe) and judge them.

Needs the pairs written by ``examples/volumes_data.py --out DATA`` (MNI152 T1, Colin27 T1, head
CT with brain masks; all from offline packages). For each run it writes, into ``--out``: the result
NIfTI (content geometry and dtype, ``descrip`` marked as stylised), its JSON sidecar (inputs,
options, ndstyle version, judges' measures) and a radiological preview PNG.

1. ``mni_to_colin``: MNI152 T1 in the style of Colin27 (brain masks on both sides).
2. ``mni_to_ct``: MNI152 T1 in the style of the head CT (brain masks on both sides).
3. ``mni_painting``: MNI152 T1 with a 2-D painting as style (slice-wise VGG, a random subset of
   slices per axis and step; the brain mask folded with the slices, the outside kept).
4. ``mni_to_colin_interior`` (not run unless asked): as 1. with ``mask_interior=True``, the style
   statistics taken only where a layer's receptive field lies inside the brain masks.
5. ``colin_to_ct_background`` (not run unless asked): the whole-head Colin27 T1 in the style of the
   CT with ``outside="background"``: the CT's air around a brain in CT values, one set of units.

Usage: ``python examples/volumes_mri.py --data DATA --out OUT [--size 77] [--runs mni_to_colin]
[--style-weight W]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import ndstyle
from ndstyle.demo import STYLE
from ndstyle.volume_provenance import write_sidecar

MASKS = {"mni_t1": "mni_brain", "colin_t1": "colin_brain", "ct_head": "ct_brain"}


def run_3d(
    data: Path, out: Path, content: str, style: str, size: int, name: str, **extra: Any
) -> dict[str, Any]:
    """``ndstyle.transfer`` with the volume defaults (the harmonize recipe) and both brain masks."""
    target = out / f"{name}.nii.gz"
    options = {"size": size, "seed": 0, "mask": data / f"{MASKS[content]}.nii.gz",
               "style_mask": data / f"{MASKS[style]}.nii.gz", **extra}  # fmt: skip
    start = time.perf_counter()
    res = ndstyle.transfer(data / f"{content}.nii.gz", data / f"{style}.nii.gz", target, overwrite=True,
                           preview=out / f"{name}.png", report=out / f"{name}.report.json", progress=False,
                           **options)  # fmt: skip
    scores = dict(res.report or {})
    scores["seconds"] = time.perf_counter() - start
    used = {k: v for k, v in dataclasses.asdict(res.options).items() if v is not None}
    write_sidecar(target, data / f"{content}.nii.gz", [data / f"{style}.nii.gz"], used, metrics=scores,
                  overwrite=True)  # fmt: skip
    return scores


def run_painting(
    data: Path, out: Path, size: int, steps: int, painting: Path, **extra: Any
) -> dict[str, Any]:
    """MNI T1 with a 2-D painting as style: the volume defaults pick the 2.5-D slice-wise VGG."""
    target = out / "mni_painting.nii.gz"
    start = time.perf_counter()
    res = ndstyle.transfer(data / "mni_t1.nii.gz", painting, target, overwrite=True, size=size, steps=steps,
                           seed=0, mask=data / "mni_brain.nii.gz", preview=out / "mni_painting.png",
                           report=out / "mni_painting.report.json", progress=False, **extra)  # fmt: skip
    scores = dict(res.report or {})
    scores["seconds"] = time.perf_counter() - start
    used = {k: v for k, v in dataclasses.asdict(res.options).items() if v is not None}
    write_sidecar(target, data / "mni_t1.nii.gz", [painting], used, metrics=scores, overwrite=True)
    return scores


def main() -> None:
    """Run the chosen transfers and print their measures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder from examples/volumes_data.py")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", type=int, default=77, help="working grid, longest axis (voxels)")
    parser.add_argument("--painting-size", type=int, default=64, help="working grid of mni_painting")
    parser.add_argument("--painting-steps", type=int, default=40)
    parser.add_argument("--painting", type=Path, default=STYLE)
    parser.add_argument("--style-weight", type=float, default=None, help="default: the recipe's")
    parser.add_argument("--runs", nargs="*", default=["mni_to_colin", "mni_to_ct", "mni_painting"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    extra = {} if args.style_weight is None else {"style_weight": args.style_weight}
    measures = {}
    for name in args.runs:
        if name == "mni_to_colin":
            measures[name] = run_3d(args.data, args.out, "mni_t1", "colin_t1", args.size, name, **extra)
        elif name == "mni_to_colin_interior":
            measures[name] = run_3d(
                args.data, args.out, "mni_t1", "colin_t1", args.size, name, mask_interior=True, **extra
            )
        elif name == "colin_to_ct_background":
            measures[name] = run_3d(
                args.data, args.out, "colin_t1", "ct_head", args.size, name, outside="background", **extra
            )
        elif name == "mni_to_ct":
            measures[name] = run_3d(args.data, args.out, "mni_t1", "ct_head", args.size, name, **extra)
        elif name == "mni_painting":
            measures[name] = run_painting(
                args.data, args.out, args.painting_size, args.painting_steps, args.painting, **extra
            )
        else:
            raise SystemExit(f"unknown run {name!r}")
        shown = {k: round(v, 3) for k, v in measures[name].items() if isinstance(v, float)}
        print(name, json.dumps(shown))


if __name__ == "__main__":
    main()
