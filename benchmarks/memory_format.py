"""Is VGG-16's forward + backward faster in channels-last memory layout on this CPU? (issue 19)

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/memory_format.py --size 512 --repeats 7 --out OUT.json

The bare pass of ``docs/benchmarks.md`` (b): the offline VGG-16 to relu5_1 on a 341 x 512 input,
bf16 autocast, backpropagating the sum of the squared used activations into the input (no Grams,
no optimiser), once with the default (contiguous, NCHW) layout and once with the network and the
input in ``torch.channels_last``; the two are timed round-robin and the median of ``--repeats``
rounds is reported. oneDNN prefers channels-last on some CPUs; if it were faster here, every
image step would be.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from ndstyle.extractors import build_extractor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512, help="long side (the short side is 2/3)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    nets = {"contiguous": net, "channels_last": copy.deepcopy(net).to(memory_format=torch.channels_last)}
    layers = list(dict.fromkeys([*net.default_style_layers, *net.default_content_layers]))
    start = torch.rand(1, 3, args.size * 2 // 3, args.size, generator=torch.Generator().manual_seed(0))

    def one(layout: str) -> float:
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        x = start.clone().contiguous(memory_format=fmt).requires_grad_(True)
        began = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = nets[layout](x, layers)
        sum(f.float().pow(2).mean() for f in features.values()).backward()
        return time.perf_counter() - began

    times: dict[str, list[float]] = {name: [] for name in nets}
    for name in nets:  # warm-up
        one(name)
    for _ in range(args.repeats):
        for name in nets:
            times[name].append(one(name))
    result = {
        "size": [int(start.shape[2]), int(start.shape[3])],
        "threads": torch.get_num_threads(),
        "seconds_median": {name: statistics.median(t) for name, t in times.items()},
        "seconds": times,
    }
    print(json.dumps(result["seconds_median"]))
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
