"""Style a real brain MRI (MNI152 template from the nilearn wheel) with ndstyle's volume modality.

Offline: ``pip download --no-deps nilearn -d WHEELS`` (or ``pip install nilearn``); the template is
read from the wheel. Two runs, each writing a NIfTI result and a preview PNG of the three
orthogonal mid-slices:

1. 3-D style: the T1 template in the style of a cropped white-matter probability map, with the
   random 3-D extractor ``conv3d`` and a brain mask (voxels outside stay bit-identical).
2. 2-D style (solid texture): the T1 in the style of a painting, 2.5-D ``slices`` extractor
   (pretrained VGG when installed, else a random 2-D ConvNd, said in the output).

Usage: ``python examples/volumes_mri.py --wheel WHEELS/nilearn-*.whl --out OUT [--size 64]``
"""

from __future__ import annotations

import argparse
import glob
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

import ndstyle.extractors.volume as V
from ndstyle.cli import main
from ndstyle.demo import STYLE
from ndstyle.errors import OptionError
from ndstyle.extractors import ConvNdExtractor

T1 = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
WM = "nilearn/datasets/data/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"


def template(wheel: Path, member: str, out: Path) -> Path:
    """Copy a template out of the nilearn wheel (a zip file)."""
    with zipfile.ZipFile(wheel) as archive:
        out.write_bytes(archive.read(member))
    return out


def main_example() -> None:
    """Run both transfers."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wheel", type=Path, default=None, help="nilearn wheel (default: find in /tmp)")
    parser.add_argument("--out", type=Path, default=Path("volumes-example"))
    parser.add_argument("--size", type=int, default=64, help="working grid, longest axis (voxels)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument(
        "--painting", type=Path, default=STYLE, help="2-D style (default: bundled Starry Night)"
    )
    args = parser.parse_args()
    found = sorted(glob.glob("/tmp/**/nilearn-*.whl", recursive=True))
    if args.wheel is None and not found:
        raise SystemExit("no nilearn wheel: run 'pip download --no-deps nilearn -d /tmp' or pass --wheel")
    wheel = args.wheel or Path(found[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    t1 = template(wheel, T1, args.out / "mni152_t1.nii.gz")
    wm_full = template(wheel, WM, args.out / "mni152_wm.nii.gz")
    # style: a 64^3 crop of the white-matter map (a different contrast and texture)
    wm = nib.load(wm_full)
    crop = wm.slicer[60:124, 80:144, 70:134]
    style3d = args.out / "wm_crop.nii.gz"
    nib.save(crop, style3d)
    # brain mask on the content grid: the template's nonzero voxels
    img = nib.load(t1)
    mask = args.out / "brain_mask.nii.gz"
    nib.save(nib.Nifti1Image((np.asanyarray(img.dataobj) > 20).astype(np.uint8), img.affine), mask)
    common = ["--size", str(args.size), "-n", str(args.steps), "--scales", "1", "--overwrite"]
    main(["run", str(t1), str(style3d), "-o", str(args.out / "t1_wm_style.nii.gz"), "--mask", str(mask),
          "--preview", str(args.out / "t1_wm_style.png"), "-sw", "1e4", *common])  # fmt: skip
    try:
        V.default_2d_extractor()
    except OptionError:
        print("pretrained 2-D VGG not installed: the slices extractor uses a random 2-D ConvNd")
        V.default_2d_extractor = lambda **_: ConvNdExtractor.random(2, 3, widths=(16, 32, 64), pooling="max")
    main(["run", str(t1), str(args.painting), "-o", str(args.out / "t1_painting.nii.gz"),
          "--preview", str(args.out / "t1_painting.png"), *common])  # fmt: skip


if __name__ == "__main__":
    main_example()
