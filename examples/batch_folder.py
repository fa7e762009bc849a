"""Style a folder of photos in one batch, then resume it: ``ndstyle.batch`` on the local pool.

Crops of scikit-image's photos go into ``OUT/photos/`` (two of them in a subfolder), the bundled
Starry Night is the style, and the results mirror the folder under ``OUT/styled/`` with the
summary ``OUT/styled/ndstyle-batch.jsonl``. Running it again skips every finished item.

    python examples/batch_folder.py                    # into a temporary folder
    python examples/batch_folder.py -o batch-demo --size 192 --steps 150 --gallery gallery.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

import ndstyle

PHOTOS = {
    "cat.png": "chelsea",
    "coffee.png": "coffee",
    "more/astronaut.png": "astronaut",
    "more/rocket.png": "rocket",
}


def make_photos(folder: Path, size: int) -> None:
    from skimage import data

    for name, photo in PHOTOS.items():
        img = getattr(data, photo)()[..., :3]
        side = min(img.shape[:2])
        y, x = (img.shape[0] - side) // 2, (img.shape[1] - side) // 2
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[y : y + side, x : x + side]).resize((size, size), Image.LANCZOS).save(path)


def gallery(photos: Path, styled: Path, target: Path, tile: int = 128) -> None:
    """Contents on top, results below."""
    names = list(PHOTOS)
    sheet = Image.new("RGB", (tile * len(names), 2 * tile), "white")
    for i, name in enumerate(names):
        for row, folder in enumerate((photos, styled)):
            if (folder / name).exists():
                sheet.paste(
                    Image.open(folder / name).convert("RGB").resize((tile, tile)), (i * tile, row * tile)
                )
    target.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(target, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-o", "--output-dir", type=Path, default=None, help="(default: a temporary folder)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--gallery", type=Path, default=None, help="also write a PNG of contents and results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.output_dir or Path(tmp)
        photos, styled = root / "photos", root / "styled"
        if not photos.exists():
            make_photos(photos, args.size)
        style = Path(ndstyle.__file__).parent / "data" / "starry_night.jpg"
        options = {"size": args.size, "steps": args.steps, "seed": 0}
        first = ndstyle.batch(photos, style, styled, workers=args.workers, **options)
        print(first.line())
        again = ndstyle.batch(photos, style, styled, workers=args.workers, **options)
        print(again.line())  # every item skipped: outputs exist with the same options and inputs
        for record in first.records:
            costs = record["costs"] or {}
            print(f"{record['status']:7} {record['output']}  {record['seconds']} s  J={costs.get('best')}")
        if args.gallery is not None:
            gallery(photos, styled, args.gallery)
            print(f"gallery: {args.gallery}")
        if first.failed:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
