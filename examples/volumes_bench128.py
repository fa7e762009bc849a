"""Time and peak memory of a 128^3 transfer with the default 3-D extractor (see docs/volumes.md).

Run: ``OMP_NUM_THREADS=2 PYTHONPATH=. python examples/volumes_bench128.py``
"""

from __future__ import annotations

import resource
import time

import torch

from ndstyle import stylize
from ndstyle.extractors import build_extractor
from ndstyle.extractors.volume import estimate_memory


def main() -> None:
    """10 L-BFGS steps at 128^3, one scale; prints time, peak RSS and the estimate."""
    torch.set_num_threads(2)
    net = build_extractor("conv3d", spatial_dims=3, in_channels=1)
    n = 128
    axes = torch.meshgrid(*[torch.linspace(0, 1, n)] * 3, indexing="ij")
    content = (sum(axes) / 3)[None]
    style = (0.5 + 0.5 * torch.sin(axes[0] * 60) * torch.cos(axes[1] * 45 + axes[2] * 30))[None]
    print("estimate GB", estimate_memory(net, (n, n, n)) / 1e9, flush=True)
    start = time.perf_counter()
    result = stylize(content, style, extractor=net, steps=10, scales=1, progress=False)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"128^3 conv3d, 10 L-BFGS steps, 1 scale: {seconds:.1f} s ({seconds / 10:.2f} s/step), "
        f"peak RSS {peak:.2f} GiB, J {result.best_cost:.4g}"
    )


if __name__ == "__main__":
    main()
