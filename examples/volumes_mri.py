"""Style real brain volumes with ndstyle's measured volume recipe and judge the results.

Needs the pairs written by ``examples/volumes_data.py --out DATA`` (MNI152 T1, Colin27 T1, head
CT with brain masks; all from offline packages). For each run it writes, into ``--out``: the result
NIfTI (content geometry and dtype, ``descrip`` marked as stylised), its JSON sidecar (inputs,
options, ndstyle version, judges' measures) and a radiological preview PNG.

1. ``mni_to_colin``: MNI152 T1 in the style of Colin27 (brain masks on both sides).
2. ``mni_to_ct``: MNI152 T1 in the style of the head CT (brain masks on both sides).
3. ``mni_painting``: MNI152 T1 with a 2-D painting as style (slice-wise VGG; no masks, the
   result is put back into the brain mask afterwards).

Usage: ``python examples/volumes_mri.py --data DATA --out OUT [--size 77] [--runs mni_to_colin]``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch

from ndstyle import stylize
from ndstyle.demo import STYLE
from ndstyle.extractors import build_extractor
from ndstyle.extractors.volume import add_input_layer
from ndstyle.functional import resize, resize_mask
from ndstyle.metrics.volume import judge
from ndstyle.modalities.volume import Normalization, working_shape
from ndstyle.volume_preview import PreviewRow, save_volume_preview
from ndstyle.volume_provenance import fit_dtype, mark_header, write_sidecar
from ndstyle.volume_quality import VOLUME_RECIPE, plan_volume_transfer, recipe_extractor

MASKS = {"mni_t1": "mni_brain", "colin_t1": "colin_brain", "ct_head": "ct_brain"}


def read(path: Path, size: int) -> tuple[Any, np.ndarray, tuple[int, ...]]:
    """Image, raw data ``(1, X, Y, Z)`` and its working grid (longest axis ``size``)."""
    img = nib.load(path)
    data = np.asarray(img.dataobj, dtype=np.float64)[None]
    zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
    return img, data, working_shape(data.shape[1:], zooms, size)


def to_grid(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(C, *spatial)`` resampled (trilinear/area) to ``shape``."""
    return resize(torch.from_numpy(x.astype(np.float32))[None], shape)[0].double().numpy()


def mask_to_grid(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A bool mask resampled to ``shape`` (area average > 0.5)."""
    soft = resize_mask(torch.from_numpy(m.astype(np.float32))[None, None], shape)
    return soft[0, 0].numpy() > 0.5


def write_result(path: Path, values: np.ndarray, content_img: Any, mask: np.ndarray) -> None:
    """Result on the content's grid and dtype, raw content outside the mask, header marked."""
    original = np.asarray(content_img.dataobj, dtype=np.float64)
    full = to_grid(values, original.shape)[0]
    full = np.where(mask, full, original)
    header = mark_header(content_img.header.copy())
    dtype = content_img.get_data_dtype()
    out = nib.Nifti1Image(fit_dtype(full, dtype), content_img.affine, header)
    out.set_data_dtype(dtype)
    nib.save(out, str(path))


def run_3d(data: Path, out: Path, content: str, style: str, size: int, name: str) -> dict[str, Any]:
    """The recipe on one pair; returns the judges' measures."""
    c_img, c, c_shape = read(data / f"{content}.nii.gz", size)
    s_img, s, s_shape = read(data / f"{style}.nii.gz", size)
    cm_full = np.asarray(nib.load(data / f"{MASKS[content]}.nii.gz").dataobj) > 0
    sm_full = np.asarray(nib.load(data / f"{MASKS[style]}.nii.gz").dataobj) > 0
    cw, sw = to_grid(c, c_shape), to_grid(s, s_shape)
    cm, sm = mask_to_grid(cm_full, c_shape), mask_to_grid(sm_full, s_shape)
    plan = plan_volume_transfer(cw, sw, cm, sm)
    start = time.perf_counter()
    res = stylize(
        plan.content,
        plan.style,
        extractor=recipe_extractor("conv3d", seed=0),
        mask=plan.mask,
        style_masks=[plan.style_mask],
        value_range=plan.bounds,
        seed=0,
        progress=False,
        **VOLUME_RECIPE,  # type: ignore[arg-type]
    )
    seconds = time.perf_counter() - start
    result = plan.normalization.inverse(res.output.double().numpy())
    scores = judge(cw, [sw], result, cm, style_masks=[sm])
    scores["seconds"] = seconds
    target = out / f"{name}.nii.gz"
    write_result(target, result, c_img, cm_full)
    options = {**VOLUME_RECIPE, "extractor": "conv3d + input layer", "size": size, "value_range": plan.bounds}
    write_sidecar(target, data / f"{content}.nii.gz", [data / f"{style}.nii.gz"], options, metrics=scores,
                  overwrite=True)  # fmt: skip
    rows = [
        PreviewRow(f"content\n{content}", cw[0], _grid_affine(c_img, c_shape), cm),
        PreviewRow(f"style\n{style}", sw[0], _grid_affine(s_img, s_shape), sm),
        PreviewRow("result", result[0], _grid_affine(c_img, c_shape), cm),
    ]
    title = (
        f"{name}: Dice {scores['class_dice']:.2f}, rank {scores['rank_corr']:.2f}, "
        f"hist {scores['hist_ratio']:.2f}, texture {scores['texture_ratio']:.2f} (x content)"
    )
    save_volume_preview(out / f"{name}.png", rows, title)
    return scores


def _grid_affine(img: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Affine of the working grid covering the same field of view as ``img``."""
    affine = img.affine.copy()
    factors = np.asarray(img.shape[:3], dtype=np.float64) / np.asarray(shape)
    affine[:3, :3] = img.affine[:3, :3] * factors
    return affine


def run_painting(data: Path, out: Path, size: int, steps: int, painting: Path) -> dict[str, Any]:
    """MNI T1 with a 2-D painting as style (2.5-D slice-wise VGG)."""
    from PIL import Image

    c_img, c, c_shape = read(data / "mni_t1.nii.gz", size)
    cm_full = np.asarray(nib.load(data / "mni_brain.nii.gz").dataobj) > 0
    cw, cm = to_grid(c, c_shape), mask_to_grid(cm_full, c_shape)
    norm = Normalization.fit(cw[:, cm])
    with Image.open(painting) as image:
        grey = np.asarray(image.convert("F"), dtype=np.float64)
    factor = 2 * size / max(grey.shape)
    small = to_grid(grey[None, None], (1, round(grey.shape[0] * factor), round(grey.shape[1] * factor)))[0]
    style = torch.from_numpy(Normalization.fit(small).forward(small).astype(np.float32))[None]
    net = build_extractor("slices", spatial_dims=3, in_channels=1, seed=0)
    add_input_layer(net.base)  # type: ignore[attr-defined]
    layers = {
        f"{a}/{n}": 1 / 9 for a in ("axial", "coronal", "sagittal") for n in ("relu1_1", "relu2_1", "relu3_1")
    }
    x = torch.from_numpy(norm.forward(cw).astype(np.float32))
    start = time.perf_counter()
    res = stylize(x, style, extractor=net, content_layers=["all/input", "all/relu2_1"], style_layers=layers,
                  content_weight=100.0, steps=steps, scales=1, seed=0, progress=False,
                  value_range=(float(x.min()), float(x.max())))  # fmt: skip
    seconds = time.perf_counter() - start
    result = norm.inverse(np.where(cm[None], res.output.double().numpy(), x.double().numpy()))
    scores = judge(cw, [grey[None, None]], result, cm)
    scores["seconds"] = seconds
    target = out / "mni_painting.nii.gz"
    write_result(target, result, c_img, cm_full)
    options = {
        "extractor": "slices (VGG-16) + input layer",
        "content_weight": 100.0,
        "steps": steps,
        "size": size,
    }
    write_sidecar(target, data / "mni_t1.nii.gz", [painting], options, metrics=scores, overwrite=True)
    rows = [
        PreviewRow("content\nmni_t1", cw[0], _grid_affine(c_img, c_shape), cm),
        PreviewRow(f"style\n{painting.name}", grey, image2d=True),
        PreviewRow("result", result[0], _grid_affine(c_img, c_shape), cm),
    ]
    save_volume_preview(out / "mni_painting.png", rows, f"T1 + painting: Dice {scores['class_dice']:.2f}, "
                        f"rank {scores['rank_corr']:.2f}")  # fmt: skip
    return scores


def main() -> None:
    """Run the chosen transfers and print their measures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder from examples/volumes_data.py")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--size", type=int, default=77, help="working grid, longest axis (voxels)")
    parser.add_argument("--painting-size", type=int, default=56)
    parser.add_argument("--painting-steps", type=int, default=40)
    parser.add_argument("--painting", type=Path, default=STYLE)
    parser.add_argument("--runs", nargs="*", default=["mni_to_colin", "mni_to_ct", "mni_painting"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    measures = {}
    for name in args.runs:
        if name == "mni_to_colin":
            measures[name] = run_3d(args.data, args.out, "mni_t1", "colin_t1", args.size, name)
        elif name == "mni_to_ct":
            measures[name] = run_3d(args.data, args.out, "mni_t1", "ct_head", args.size, name)
        elif name == "mni_painting":
            measures[name] = run_painting(
                args.data, args.out, args.painting_size, args.painting_steps, args.painting
            )
        else:
            raise SystemExit(f"unknown run {name!r}")
        shown = {k: round(v, 3) for k, v in measures[name].items() if isinstance(v, float)}
        print(name, json.dumps(shown))


if __name__ == "__main__":
    main()
