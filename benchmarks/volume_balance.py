"""Which style statistic and weight should the volume recipe default to? The judges over a sweep.

Runs ``ndstyle.transfer`` with the volume defaults (the harmonize recipe, both brain masks) and
only ``style_weight`` (and ``--style-loss``) changed, for each pair and weight, and keeps each
result's judges (the
``--report`` of the written volume, in the inputs' own units). Needs the folder written by
``examples/volumes_data.py --out DATA``.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/volume_balance.py --data DATA --size 77 \\
        --pairs mni_t1:colin_t1 mni_t1:ct_head --weights 1 2 3 5 10 \\
        --out benchmarks/results/volume_balance_77.json [--style-loss gram] [--mask-interior] \\
        [--work OUT] [--table]

Rows already in ``--out`` (same pair, size, statistic and weight) are kept and not run again; rows
without a ``style_loss`` were measured with the Gram (the default until 2026-12-02).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import ndstyle
from ndstyle.volume_quality import VOLUME_RECIPE

MASKS = {"mni_t1": "mni_brain", "colin_t1": "colin_brain", "ct_head": "ct_brain"}
KEYS = ("class_dice", "rank_corr", "ssim", "in_range_fraction", "result_min", "result_max", "hist_ratio",
        "texture_ratio", "border_shift")  # fmt: skip


def run_one(
    data: Path,
    work: Path,
    content: str,
    style: str,
    size: int,
    weight: float,
    style_loss: str,
    mask_interior: bool = False,
) -> dict[str, Any]:
    """One transfer with the defaults but ``style_loss``, ``style_weight`` and ``mask_interior``."""
    name = f"{content}_to_{style}_{size}_{style_loss}_sw{weight:g}{'_interior' if mask_interior else ''}"
    start = time.perf_counter()
    res = ndstyle.transfer(data / f"{content}.nii.gz", data / f"{style}.nii.gz", work / f"{name}.nii.gz",
                           overwrite=True, progress=False, size=size, seed=0, style_loss=style_loss,
                           style_weight=weight, mask_interior=mask_interior,
                           mask=data / f"{MASKS[content]}.nii.gz", style_mask=data / f"{MASKS[style]}.nii.gz",
                           report=work / f"{name}.report.json")  # fmt: skip
    seconds = time.perf_counter() - start
    report = dict(res.report or {})
    row = {"pair": f"{content}->{style}", "size": size, "style_loss": style_loss, "style_weight": weight,
           "content_weight": 1.0, "mask_interior": mask_interior}  # fmt: skip
    row.update({k: report.get(k) for k in KEYS})
    row["passes"] = report.get("passes")
    row["seconds"] = seconds
    # the engine returns its best iterate: J at the finest level no lower than at its start = the
    # histogram-matched start came back unchanged (at --size 77 there is one level)
    row["j_start"] = next(r.total for r in res.history if r.scale == res.history[-1].scale)
    row["j_best"] = res.best_cost
    return row


def moved(row: dict[str, Any]) -> bool:
    """Whether the optimiser lowered J by at least 0.1 % (else the result is its start)."""
    return bool(row["j_best"] < row["j_start"] * (1 - 1e-3))


def statistic(row: dict[str, Any]) -> str:
    """The row's style statistic (rows from before the option: the Gram)."""
    return str(row.get("style_loss", "gram"))


def key(row: dict[str, Any]) -> tuple:
    """What identifies a row: pair, size, statistic, weight and whether the interior was used."""
    return (row["pair"], row["size"], statistic(row), row["style_weight"], bool(row.get("mask_interior")))


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    head = (
        "| pair | statistic | style weight | mask interior | class Dice | rank corr | SSIM | in range "
        "| result range | hist ratio | texture ratio | border shift | all pass | J start -> best | s |\n"
        + "|---" * 15
        + "|\n"
    )
    lines = [
        f"| {r['pair']} | {statistic(r)} | {r['style_weight']:g} | "
        f"{'yes' if r.get('mask_interior') else 'no'} | {r['class_dice']:.3f} | "
        f"{r['rank_corr']:.3f} | {r['ssim']:.3f} | {r['in_range_fraction']:.4f} | "
        f"{r['result_min']:.0f}..{r['result_max']:.0f} | "
        f"{r['hist_ratio']:.3f} | {r['texture_ratio']:.3f} | "
        f"{'—' if r.get('border_shift') is None else format(r['border_shift'], '+.3f')} | "
        f"{'yes' if r['passes'] and all(r['passes'].values()) else 'no'} | "
        f"{r['j_start']:.3g} -> {r['j_best']:.3g}{'' if moved(r) else ' (did not move)'} | "
        f"{r['seconds']:.0f} |"
        for r in rows
    ]
    return head + "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder from examples/volumes_data.py")
    parser.add_argument("--size", type=int, default=77)
    parser.add_argument("--pairs", nargs="+", default=["mni_t1:colin_t1", "mni_t1:ct_head"])
    parser.add_argument("--weights", nargs="+", type=float, default=[1.0, 2.0, 3.0, 5.0, 10.0])
    parser.add_argument("--style-loss", default=str(VOLUME_RECIPE["style_loss"]), help="default: recipe's")
    parser.add_argument("--mask-interior", action="store_true", help="run with mask_interior=True")
    parser.add_argument("--out", type=Path, required=True, help="JSON file (rows are added)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the volumes (default: temporary)")
    parser.add_argument("--table", action="store_true", help="print --out's rows as markdown and stop")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = json.loads(args.out.read_text()) if args.out.exists() else []
    if args.table:
        print(markdown(sorted(rows, key=key)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for pair in args.pairs:
            content, style = pair.split(":")
            for weight in args.weights:
                wanted = (f"{content}->{style}", args.size, args.style_loss, weight, args.mask_interior)
                if wanted in {key(r) for r in rows}:
                    continue
                loss, interior = args.style_loss, args.mask_interior
                rows.append(run_one(args.data, work, content, style, args.size, weight, loss, interior))
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=1) + "\n")
                print(markdown(rows[-1:]).splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
