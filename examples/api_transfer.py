"""The file-level Python API on the bundled photo and painting: ``ndstyle.transfer``.

Run: python examples/api_transfer.py [--out api-example] [--size 256]

Writes ``OUT/cat_starry.png`` (with the content's metadata), ``OUT/cat_starry_preview.png``
(content | style | result) and ``OUT/cat_starry_report.json`` (the image judge,
:mod:`ndstyle.metrics.image`), exactly what ``ndstyle run chelsea.png starry_night.jpg -o ...
--preview ... --report ...`` writes, and prints the judge's main measures.
``--out docs/img/api`` regenerates the README's picture.
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path

import ndstyle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("api-example"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="default: the image modality's (300)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = files("ndstyle") / "data"
    options = {"steps": args.steps} if args.steps else {}
    result = ndstyle.transfer(
        data / "chelsea.png",
        data / "starry_night.jpg",
        args.out / "cat_starry.png",
        preview=args.out / "cat_starry_preview.png",
        report=args.out / "cat_starry_report.json",
        overwrite=True,
        size=args.size,
        seed=0,
        **options,
    )
    last = result.history[-1]
    print(f"extractor: {result.extractor}")
    print(f"{len(result.history)} steps, J={result.best_cost:.4g}, {last.seconds:.1f} s -> {result.path}")
    judged = result.report or {}
    print(
        f"border frame {judged['border_frame']['result']:.2f} (visible above 0.5), structure kept "
        f"{judged['structure_kept']:.2f}, colour distance to the style {judged['colour_ratio']:.2f} of the "
        f"content's, passes: {judged['passes']}"
    )


if __name__ == "__main__":
    main()
