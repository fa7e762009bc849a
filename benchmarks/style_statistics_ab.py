"""A/B timing of the style statistics' own work: ``ndstyle/functional.py`` at a git ref against now.

Cost + gradient of each statistic on fixed VGG-16 features (chelsea + *Starry Night*, bf16, all
default style layers), old and new code round-robin in one process (so load from other processes
falls on both alike); prints medians and the cost values (equal when the change is exact).
``python benchmarks/style_statistics_ab.py --ref main --size 512 --repeats 3``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from inputs import load_pair  # noqa: E402

from ndstyle import functional as NF  # noqa: E402
from ndstyle.extractors import build_extractor  # noqa: E402
from ndstyle.losses import PerceptualLoss  # noqa: E402


def old_functional(ref: str, folder: Path) -> ModuleType:
    """``ndstyle/functional.py`` as it was at ``ref``, importable beside the current one."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:ndstyle/functional.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "old_functional.py"
    path.write_text(
        text.replace("from ._checks", "from ndstyle._checks").replace("from .errors", "from ndstyle.errors")
    )
    spec = importlib.util.spec_from_file_location("old_functional", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_functional"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="main")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    net = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
    content, style = load_pair("chelsea-starry", args.size)
    loss = PerceptualLoss(
        net, content_layers=[], style_layers=net.default_style_layers, autocast_dtype=torch.bfloat16
    )
    with torch.no_grad():
        fc, fs = loss.features(content[None]), loss.features(style[None])
    layers = list(net.default_style_layers)
    leaves = {k: fc[k].detach().clone().requires_grad_(True) for k in layers}

    def cases(M: ModuleType) -> dict:  # type: ignore[type-arg]
        grams = {k: M.gram_matrix(fs[k], normalize=True) for k in layers}
        gauss = {k: M.GaussianTarget.from_moments(*M.mean_covariance(fs[k].float())) for k in layers}
        samples = {k: M.sample_target(fs[k]) for k in layers}
        sorted_ = {k: M.sample_target(fs[k], presort=True) for k in layers}
        g = torch.Generator()

        def sliced() -> torch.Tensor:
            g.manual_seed(0)
            return sum(
                M.quantile_matching_cost(
                    leaves[k], samples[k], M.random_directions(fc[k].shape[1], fc[k].shape[1], g)
                )
                for k in layers
            )

        return {
            "gram": lambda: sum(
                M.style_cost_from_grams(M.gram_matrix(leaves[k], normalize=True), grams[k]) for k in layers
            ),
            "mean-cov": lambda: sum(M.gaussian_w2_cost(leaves[k], gauss[k]) for k in layers),
            "sliced-wasserstein": sliced,
            "histogram": lambda: sum(M.quantile_matching_cost(leaves[k], sorted_[k], None) for k in layers),
        }

    with tempfile.TemporaryDirectory() as tmp:
        versions = {"old": cases(old_functional(args.ref, Path(tmp))), "new": cases(NF)}
        times: dict[tuple[str, str], list[float]] = {(v, n): [] for v in versions for n in versions["new"]}
        values: dict[tuple[str, str], float] = {}
        for round_ in range(args.repeats + 1):  # the first round warms up
            for name in versions["new"]:
                for version, fns in versions.items():
                    for leaf in leaves.values():
                        leaf.grad = None
                    start = time.perf_counter()
                    cost = fns[name]()
                    cost.backward()
                    if round_:
                        times[(version, name)].append(time.perf_counter() - start)
                    values[(version, name)] = float(cost.detach())
    for name in versions["new"]:
        old, new = statistics.median(times[("old", name)]), statistics.median(times[("new", name)])
        print(
            f"{name}: {args.ref} {old:.3f} s, now {new:.3f} s; cost {values[('old', name)]:.6g} / "
            f"{values[('new', name)]:.6g}"
        )


if __name__ == "__main__":
    main()
