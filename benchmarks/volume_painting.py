"""The 2-D style (painting) path of volumes with some of its settings changed, judged (issue 15).

MNI152 T1 (``examples/volumes_data.py`` at 3 mm) with a painting (default: ``ndstyle.demo.STYLE``)
through ``ndstyle.transfer`` exactly as ``examples/volumes_mri.py --runs mni_painting`` runs it
(brain mask, seed 0, ``--size 48 --steps 40`` unless a setting changes them), each ``--settings``
entry (``key=value[,key=value...]``) changing some keywords of ``ndstyle.transfer``:

- ``style_layers=relu1_1+relu2_1`` (2-D VGG layers; each is used on all three slice axes with equal
  weights), ``content_layers=input+relu2_1`` (``all/`` slices);
- ``slices=N``: slices per axis and step of the style cost (``SLICES_PER_STEP``);
- anything else (``steps``, ``size``, ``style_weight``, ``tol``, ``optimizer``...) as a number or a
  string.

Each run is judged by ``ndstyle.metrics.volume.judge`` on the transfer's result (``--report``) and
writes its volume and preview (``OUT/<n>.nii.gz``, ``OUT/<n>.png``). Rows: setting, wall and CPU
seconds (CPU is the one to compare on a shared machine), steps per level, J at the start and the
end (mean over the first / last tenth of the steps: does it still fall?), the judges, and the
judge's texture distance per judge layer for the content and the result (a diagnosis).

Run, e.g.::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/volume_painting.py --data DATA --out OUT \\
        --settings steps=40 steps=100 style_layers=relu1_1+relu2_1+relu3_1 [--json RESULTS.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import ndstyle
import ndstyle.modalities.volume as V
from ndstyle.demo import STYLE

KEYS = ("class_dice", "rank_corr", "ssim", "in_range_fraction", "hist_ratio", "texture_ratio")
AXES = ("axial", "coronal", "sagittal")


def overrides(setting: str) -> dict[str, Any]:
    """``"steps=100,style_layers=relu1_1+relu2_1"`` -> keywords of ``ndstyle.transfer``."""
    out: dict[str, Any] = {}
    for item in filter(None, setting.split(",")):
        key, _, value = item.partition("=")
        if key == "style_layers":
            out[key] = [n if "/" in n else f"{a}/{n}" for n in value.split("+") for a in AXES]
        elif key == "content_layers":
            out[key] = [n if "/" in n else f"all/{n}" for n in value.split("+")]
        else:
            try:
                number = float(value)
                out[key] = int(number) if key in ("steps", "size", "slices") else number
            except ValueError:
                out[key] = value
    return out


def run(data: Path, painting: Path, out: Path, index: int, setting: str) -> dict[str, Any]:
    """One transfer with ``setting`` applied; its judges and convergence."""
    changed = overrides(setting)
    slices = changed.pop("slices", None)
    keywords = {"size": 48, "steps": 40, "seed": 0, "mask": data / "mni_brain.nii.gz", **changed}
    saved = V.SLICES_PER_STEP
    if slices is not None:
        V.SLICES_PER_STEP = slices
    try:
        start, cpu = time.perf_counter(), time.process_time()
        res = ndstyle.transfer(data / "mni_t1.nii.gz", painting, out / f"{index}.nii.gz", overwrite=True,
                               preview=out / f"{index}.png", report=True, progress=False,
                               **keywords)  # fmt: skip
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        V.SLICES_PER_STEP = saved
    engine = res.engine
    assert engine is not None
    totals = [r.total for r in engine.history]
    tenth = max(1, len(totals) // 10)
    row: dict[str, Any] = {
        "setting": setting or "default",
        "index": index,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "level_steps": engine.level_steps,
        "J_first": sum(totals[:tenth]) / tenth,
        "J_last": sum(totals[-tenth:]) / tenth,
        "best_cost": engine.best_cost,
    }
    report = res.report or {}
    row.update({k: float(report[k]) for k in KEYS})
    row["passes"] = all(report["passes"].values())
    row["texture_layers"] = texture_layers(res, data / "mni_brain.nii.gz")
    return row


def texture_layers(res: Any, mask_path: Path) -> dict[str, dict[str, float]]:
    """The judge's texture distance per judge layer, of the content and of the result (diagnosis)."""
    import numpy as np
    import torch

    from ndstyle.functional import resize
    from ndstyle.metrics import volume as J

    c, norm = J._raw(res.content)
    r, _ = J._raw(res.output, norm)
    s, _ = J._raw(res.styles[0])
    mask = V.MODALITY.read_mask(mask_path, res.content)
    grid = tuple(c.shape[1:])
    m = resize(torch.from_numpy(mask.astype(np.float32))[None, None], grid)[0, 0].numpy() > 0.5
    sm = np.ones(s.shape[1:], dtype=bool)
    net = J._judge_net(2, c.shape[0])
    target = J._grams(J._standardise(s, sm), sm, net, [d for d in range(3) if s.shape[1 + d] == 1][0])
    out = {}
    for name, v in (("content", c), ("result", r)):
        g = J._grams(J._standardise(v, m), m, net, None)
        out[name] = {k: round(float((g[k] - target[k]).norm() / target[k].norm()), 4) for k in target}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder from examples/volumes_data.py")
    parser.add_argument("--out", type=Path, required=True, help="folder for the volumes and previews")
    parser.add_argument("--painting", type=Path, default=STYLE)
    parser.add_argument("--settings", nargs="+", default=["steps=40"])
    parser.add_argument("--first-index", type=int, default=0, help="number of the first run's files")
    parser.add_argument("--json", type=Path, default=None, help="append the rows to this JSON list")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = json.loads(args.json.read_text()) if args.json and args.json.exists() else []
    for i, setting in enumerate(args.settings):
        row = run(args.data, args.painting, args.out, args.first_index + i, setting)
        rows.append(row)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
