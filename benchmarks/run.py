"""ndstyle benchmarks: time to quality vs the textbook method, per-step overhead, scaling.

Run (not part of the test suite; needs the `examples` and `vgg16-offline` extras):

    python benchmarks/run.py --out benchmarks/results            # default set
    python benchmarks/run.py --out benchmarks/results --sizes 256 512 --pairs 3   # the full set

Each measurement runs in a fresh subprocess so that its peak memory (ru_maxrss) is its own.
Writes results.json, results.md and plots into --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


# -- inputs ----------------------------------------------------------------------------------------
def pairs(n: int) -> list[tuple[str, Path, Path]]:
    import skimage

    data = Path(skimage.__file__).parent / "data"
    from ndstyle.demo import CONTENT, STYLE

    chosen = [
        ("chelsea", CONTENT, STYLE),
        ("astronaut", data / "astronaut.png", STYLE),
        ("coffee", data / "coffee.png", STYLE),
    ]
    return chosen[:n]


def load_image(path: Path, size: int) -> torch.Tensor:
    from ndstyle.modalities.image import MODALITY

    args = argparse.Namespace(
        size=size,
        style_scale=1.0,
        preserve_color="none",
        original_size=False,
        init_file=None,
        pooling="max",
        download=False,
        mask=None,
    )
    return MODALITY.load(path, args).tensor


def vgg() -> torch.nn.Module:
    from ndstyle.extractors import build_extractor

    return build_extractor("auto", spatial_dims=2, in_channels=3)


def objective(net, content, style, image) -> float:
    from ndstyle import evaluate_costs

    costs = evaluate_costs(net, content, style, image)
    return costs["content"] + net.default_style_weight * costs["style"]


# -- workers (each in its own process) ---------------------------------------------------------------
def worker_time_to_quality(method: str, pair: int, size: int, iterations: int) -> dict:
    name, content_path, style_path = pairs(pair + 1)[pair]
    content, style = load_image(content_path, size), load_image(style_path, size)
    net = vgg()
    snapshots: list[tuple[float, torch.Tensor]] = []
    start = time.perf_counter()
    if method == "reference":
        from reference import reference_transfer

        final, snapshots = reference_transfer(
            net,
            content,
            style,
            content_layers=list(net.default_content_layers),
            style_layers=dict(net.default_style_layers),
            content_weight=1.0,
            style_weight=net.default_style_weight,
            iterations=iterations,
        )
        seconds = time.perf_counter() - start
    else:
        from ndstyle import stylize
        from ndstyle.functional import resize

        excluded = [0.0]

        def keep(info) -> None:
            if info.record.step % 10 == 0:
                t0 = time.perf_counter()
                best = resize(info.best, content.shape[1:])[0].clone()
                snapshots.append((t0 - start - excluded[0], best))
                excluded[0] += time.perf_counter() - t0

        result = stylize(content, style, extractor=net, callback=keep, progress=False)
        seconds = time.perf_counter() - start - excluded[0]
        final = result.output
        snapshots.append((seconds, final))
    curve = [(t, objective(net, content, style, x)) for t, x in snapshots]
    return {
        "method": method,
        "pair": name,
        "size": size,
        "seconds": seconds,
        "objective": objective(net, content, style, final),
        "curve": curve,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def worker_step(size: int, precision: str, steps: int) -> dict:
    from ndstyle import stylize
    from ndstyle.losses import PerceptualLoss

    net = vgg()
    content = load_image(pairs(1)[0][1], size)
    style = load_image(pairs(1)[0][2], size)
    loss = PerceptualLoss(
        net,
        content_layers=list(net.default_content_layers),
        style_layers=net.default_style_layers,
        autocast_dtype=torch.bfloat16 if precision == "bf16" else None,
    )
    x = content[None].clone().requires_grad_(True)
    layers = loss.layers

    def bare() -> None:
        with loss._autocast(x.device):
            feats = net(x, layers)
        sum(f.float().sum() for f in feats.values()).backward()

    for _ in range(2):
        bare()
    t0 = time.perf_counter()
    for _ in range(steps):
        bare()
    bare_s = (time.perf_counter() - t0) / steps
    result = stylize(
        content, style, extractor=net, steps=steps + 2, scales=1, precision=precision, progress=False
    )
    times = [r.seconds for r in result.history]
    step_s = (times[-1] - times[1]) / (len(times) - 2)
    return {
        "size": size,
        "precision": precision,
        "bare_fwd_bwd_s": bare_s,
        "step_s": step_s,
        "overhead": step_s / bare_s,
        "objective": result.best_cost,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def worker_scaling(size: int, steps: int) -> dict:
    from ndstyle import stylize

    net = vgg()
    content = load_image(pairs(1)[0][1], size)
    style = load_image(pairs(1)[0][2], size)
    result = stylize(content, style, extractor=net, steps=steps, scales=1, progress=False)
    times = [r.seconds for r in result.history]
    return {
        "size": size,
        "pixels": int(content[0].numel()),
        "seconds_per_step": (times[-1] - times[0]) / (len(times) - 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


WORKERS = {"tq": worker_time_to_quality, "step": worker_step, "scaling": worker_scaling}


def spawn(kind: str, **kwargs) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(kwargs)]
    print("  ", kind, kwargs, flush=True)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- report -------------------------------------------------------------------------------------------
def time_to_reach(curve: list, target: float) -> float | None:
    for seconds, value in curve:
        if value <= target:
            return seconds
    return None


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def write_report(out: Path, results: dict) -> None:
    lines = [
        "# ndstyle benchmark results",
        "",
        f"Machine: `{json.dumps(results['machine'])}` (CPU only)",
        "",
        f"Command: `{results['command']}`",
        "",
    ]
    if results.get("tq"):
        lines += [
            "## Time to quality (2-D, offline VGG-16, objective evaluated at the working size)",
            "",
            "| pair | size | reference s | reference J | ndstyle s | ndstyle J "
            "| ndstyle s to reach reference J | ratio | peak MB ref / nd |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in results["tq"]:
            ratio = f"{row['ratio']:.3f}" if row["ratio"] is not None else "not reached"
            reach = f"{row['reach_s']:.1f}" if row["reach_s"] is not None else "—"
            lines.append(
                f"| {row['pair']} | {row['size']} | {row['ref_s']:.1f} | {row['ref_J']:.4g} | "
                f"{row['nd_s']:.1f} | {row['nd_J']:.4g} | {reach} | {ratio} | "
                f"{row['ref_mb']:.0f} / {row['nd_mb']:.0f} |"
            )
        lines.append("")
    if results.get("step"):
        lines += [
            "## Per-step time vs bare extractor forward+backward",
            "",
            "| size | precision | bare fwd+bwd s | ndstyle step s | overhead | final J | peak MB |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in results["step"]:
            lines.append(
                f"| {r['size']} | {r['precision']} | {r['bare_fwd_bwd_s']:.3f} | {r['step_s']:.3f} | "
                f"{r['overhead']:.2f}× | {r['objective']:.4g} | {r['peak_rss_mb']:.0f} |"
            )
        lines.append("")
    if results.get("scaling"):
        lines += [
            "## Scaling (2-D, fp32, one scale)",
            "",
            "| size | pixels | s/step | peak MB |",
            "|---|---|---|---|",
        ]
        for r in results["scaling"]:
            lines.append(
                f"| {r['size']} | {r['pixels']} | {r['seconds_per_step']:.3f} | {r['peak_rss_mb']:.0f} |"
            )
        lines.append("")
    (out / "results.md").write_text("\n".join(lines))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        print(json.dumps(WORKERS[sys.argv[2]](**json.loads(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--sections", nargs="+", default=["tq", "step", "scaling"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=300, help="reference L-BFGS iterations")
    parser.add_argument("--step-sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--scaling-sizes", nargs="+", type=int, default=[128, 256, 512])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": machine(), "command": "python " + " ".join(sys.argv)}
    if "tq" in args.sections:
        results["tq"] = []
        for size in args.sizes:
            for pair in range(args.pairs):
                ref = spawn("tq", method="reference", pair=pair, size=size, iterations=args.iterations)
                nd = spawn("tq", method="ndstyle", pair=pair, size=size, iterations=args.iterations)
                reach = time_to_reach(nd["curve"], ref["objective"])
                results["tq"].append(
                    {
                        "pair": ref["pair"],
                        "size": size,
                        "ref_s": ref["seconds"],
                        "ref_J": ref["objective"],
                        "nd_s": nd["seconds"],
                        "nd_J": nd["objective"],
                        "reach_s": reach,
                        "ratio": reach / ref["seconds"] if reach else None,
                        "ref_mb": ref["peak_rss_mb"],
                        "nd_mb": nd["peak_rss_mb"],
                        "ref_curve": ref["curve"],
                        "nd_curve": nd["curve"],
                    }
                )
                write_report(args.out, results)
    if "step" in args.sections:
        results["step"] = [
            spawn("step", size=s, precision=p, steps=8) for s in args.step_sizes for p in ("fp32", "bf16")
        ]
    if "scaling" in args.sections:
        results["scaling"] = [spawn("scaling", size=s, steps=4) for s in args.scaling_sizes]
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    write_report(args.out, results)
    print((args.out / "results.md").read_text())


if __name__ == "__main__":
    main()
