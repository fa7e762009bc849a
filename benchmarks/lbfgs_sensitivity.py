"""Is a tiled run's L-BFGS difference from the untiled run rounding, amplified? (issue 19)

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/lbfgs_sensitivity.py [--out JSON]

For 1-, 2- and 3-D pairs (the test suite's synthetic pairs, a small random ConvNd, fp32, one
level, 10 steps), the relative difference of the best J after 10 steps between
- the untiled run and the tiled run (``tile=8``: the exact tiled gradient, summed in another order);
- the untiled run and an untiled run whose content was multiplied by ``1 + 1e-7 * noise``
  (a perturbation at float32 rounding, no tiles),
for L-BFGS and Adam. If the tiled difference is of the size of the perturbed one, the tiles add
nothing to what the optimiser itself does with rounding.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ndstyle import ConvNdExtractor, stylize  # noqa: E402

from conftest import make_pair  # noqa: E402


def relative(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for dims in (1, 2, 3):
        content, style = make_pair(dims)
        noise = torch.randn(content.shape, generator=torch.Generator().manual_seed(1))
        net = ConvNdExtractor.random(dims, 1, seed=0, widths=(4, 8))
        for optimizer in ("lbfgs", "adam"):
            options = dict(extractor=net, steps=args.steps, scales=1, progress=False, precision="fp32",
                           optimizer=optimizer)  # fmt: skip
            whole = stylize(content, style, **options).best_cost  # type: ignore[arg-type]
            tiled = stylize(content, style, tile=8, **options).best_cost  # type: ignore[arg-type]
            nudged = stylize(content * (1 + 1e-7 * noise), style, **options).best_cost  # type: ignore[arg-type]
            row = {
                "dims": dims,
                "optimizer": optimizer,
                "J_untiled": whole,
                "tiled_vs_untiled": relative(tiled, whole),
                "perturbed_vs_untiled": relative(nudged, whole),
            }
            rows.append(row)
            print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
