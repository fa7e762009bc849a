"""Measurements, each run in a fresh process by ``run.py`` so that its peak memory is its own.

Every worker takes JSON-able keyword arguments and returns a JSON-able dict. Peak memory on the CPU
is the resident-set high-water mark (``VmHWM``) after resetting it (``/proc/self/clear_refs``) once
the network and inputs are loaded: ``peak_mb`` is the whole process at its peak, ``growth_mb`` what
the measured run added on top of the loaded process. On CUDA it is ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".venv-pystiche" / "bin" / "python"
PEER_SCRIPT = HERE / "peers" / "pystiche_peer.py"


# -- memory ------------------------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakMemory:
    """Peak memory of a block of work: ``with PeakMemory(device) as peak: ...; peak.result()``."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.before_mb = 0.0
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before_mb = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")  # reset the high-water mark to the current RSS
        except OSError:
            pass
        self.before_mb = (_status_kb("VmRSS") or 0) / 1024
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
            return
        hwm = _status_kb("VmHWM")
        if hwm is None:  # no /proc: the process's lifetime peak
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_mb = hwm / 1024

    def result(self) -> dict[str, float]:
        return {"peak_mb": self.peak_mb, "growth_mb": self.peak_mb - self.before_mb}


# -- shared pieces -----------------------------------------------------------------------------------
def variant_parser(description: str, default_options: str) -> Any:
    """The arguments of a one-process-per-variant benchmark: --pair, --size, --options, --out."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--pair", default="coffee-ihc")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--options", default=default_options, help="stylize keywords (JSON)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser


def run_variants(
    script: str,
    args: Any,
    one: Callable[[str, str, int, dict[str, Any]], dict[str, Any]],
    variants: list[str],
    show: Callable[[dict[str, Any]], None] = print,
) -> list[dict[str, Any]] | None:
    """Each variant in a fresh Python (``script ... --child VARIANT``), one after the other.

    In a child, print ``one(variant, pair, size, options)`` as JSON and return ``None``; in the
    parent, return the children's results (each shown as it arrives). One variant per process, so
    no variant inherits another's allocator state or patched code.
    """
    options = json.loads(args.options)
    if args.child is not None:
        print(json.dumps(one(args.child, args.pair, args.size, options)))
        return None
    argv = ["--pair", args.pair, "--size", str(args.size), "--options", args.options, "--out", str(args.out)]
    runs = []
    for variant in variants:
        done = subprocess.run(
            [sys.executable, script, *argv, "--child", variant], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        show(runs[-1])
    return runs


def _vgg(device: torch.device) -> Any:
    from ndstyle.extractors import build_extractor

    return build_extractor("vgg16-offline", spatial_dims=2, in_channels=3).to(device)


def objective(net: Any, content: torch.Tensor, style: torch.Tensor, image: torch.Tensor) -> float:
    """The one fixed evaluator: fp32 ``J = J_content + beta * J_style`` at the working size."""
    from ndstyle import evaluate_costs

    costs = evaluate_costs(net, content, style, image)
    return costs["content"] + net.default_style_weight * costs["style"]


def _median_seconds(history: list[Any], skip: int = 1) -> float:
    """Median step time of an engine run (first ``skip`` steps are warm-up)."""
    times = [r.seconds for r in history]
    steps = [b - a for a, b in zip(times[skip:], times[skip + 1 :])]
    return statistics.median(steps)


# -- (a) time to quality -----------------------------------------------------------------------------
def time_to_quality(
    method: str,
    pair: str,
    size: int,
    iterations: int = 300,
    options: dict[str, Any] | None = None,
    device: str = "cpu",
    snapshot_every: int = 10,
    image: str | None = None,
) -> dict[str, Any]:
    """One 2-D run of ``method`` (reference, ndstyle or pystiche) with snapshots for a J(time) curve.

    ``image``: where to write the final result as an 8-bit PNG (not written if ``None``).
    """
    from inputs import load_pair

    from ndstyle.functional import resize

    dev = torch.device(device)
    content, style = load_pair(pair, size)
    net = _vgg(dev)
    snapshots: list[tuple[float, torch.Tensor]] = []
    info: dict[str, Any] = {}
    with PeakMemory(dev) as peak:
        if method == "reference":
            from reference import reference_transfer

            start = time.perf_counter()
            final, snapshots = reference_transfer(
                net,
                content.to(dev),
                style.to(dev),
                content_layers=list(net.default_content_layers),
                style_layers=dict(net.default_style_layers),
                content_weight=1.0,
                style_weight=net.default_style_weight,
                iterations=iterations,
                snapshot_every=snapshot_every,
            )
            seconds = time.perf_counter() - start
        elif method == "ndstyle":
            from ndstyle import stylize

            excluded = [0.0]
            level_starts: list[dict[str, Any]] = []
            start = time.perf_counter()

            def keep(step: Any) -> None:
                if not level_starts or level_starts[-1]["level"] != step.record.scale:
                    now = time.perf_counter() - start - excluded[0]
                    level_starts.append({"level": step.record.scale, "first_step_done_s": now})
                if step.record.step % snapshot_every == 0:
                    t0 = time.perf_counter()
                    best = resize(step.best, content.shape[1:])[0].detach().cpu().clone()
                    snapshots.append((t0 - start - excluded[0], best))
                    excluded[0] += time.perf_counter() - t0

            result = stylize(
                content, style, extractor=net, callback=keep, progress=False, device=dev, **(options or {})
            )
            seconds = time.perf_counter() - start - excluded[0]
            final = result.output
            info = {
                "precision": result.precision,
                "levels": [list(s) for s in result.scales],
                "steps": len(result.history),
                "level_starts": level_starts,
            }
        elif method == "pystiche":
            final, snapshots, seconds, info = _pystiche(content, style, iterations, snapshot_every)
        else:
            raise ValueError(f"unknown method {method!r}")
    if method == "pystiche":  # measured inside its own process the same way (VmHWM after a reset)
        peak_mb, before = float(info.pop("peak_rss_mb")), info.pop("rss_before_mb", None)
        memory = {"peak_mb": peak_mb, "growth_mb": None if before is None else peak_mb - before}
    else:
        memory = peak.result()
    if image is not None:
        _save_png(final.detach().cpu(), Path(image))
    snapshots.insert(0, (0.0, content))  # every method starts from the content
    snapshots.append((seconds, final.detach().cpu()))
    content_cpu, style_cpu, net_cpu = content, style, net.cpu()
    curve = [(t, objective(net_cpu, content_cpu, style_cpu, x.cpu())) for t, x in snapshots]
    return {
        "method": method,
        "pair": pair,
        "size": size,
        "shape": list(content.shape[1:]),
        "options": options or {},
        "seconds": seconds,
        "objective": curve[-1][1],
        "curve": curve,
        **memory,
        **info,
    }


def _save_png(image: torch.Tensor, path: Path) -> None:
    """(3, H, W) in [0, 1] -> 8-bit RGB PNG."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels).save(path)


def _pystiche(
    content: torch.Tensor, style: torch.Tensor, iterations: int, snapshot_every: int
) -> tuple[torch.Tensor, list[tuple[float, torch.Tensor]], float, dict[str, Any]]:
    """Run pystiche in its own virtual environment (``peers/setup_pystiche.sh``) on the same weights."""
    from safetensors.torch import load_file, save_file

    from ndstyle.extractors.vgg import OFFLINE

    if not PEER_PYTHON.exists():
        raise RuntimeError(f"pystiche peer not installed: run {HERE / 'peers' / 'setup_pystiche.sh'}")
    with tempfile.TemporaryDirectory() as folder:
        inputs, out = Path(folder, "inputs.safetensors"), Path(folder, "out.safetensors")
        save_file({"content": content.contiguous(), "style": style.contiguous()}, str(inputs))
        command = [
            str(PEER_PYTHON),
            str(PEER_SCRIPT),
            "--inputs",
            str(inputs),
            "--weights",
            str(OFFLINE.cache_path),
            "--iterations",
            str(iterations),
            "--snapshot-every",
            str(snapshot_every),
            "--out",
            str(out),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pystiche peer failed:\n{done.stderr[-3000:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        tensors = load_file(str(out))
    snapshots = [(float(t), tensors[f"snapshot_{k}"]) for k, t in enumerate(report.pop("snapshot_seconds"))]
    seconds = float(report.pop("seconds"))
    return tensors["final"], snapshots, seconds, report


# -- (b) per-step overhead -----------------------------------------------------------------------------
def step_overhead(size: int, precision: str, steps: int = 70, device: str = "cpu") -> dict[str, Any]:
    """Engine step time vs the bare extractor forward+backward at the same size and precision.

    The bare pass runs the same network to the same deepest layer on the same input and
    backpropagates the sum of the used activations; no Grams, no costs, no optimiser. Once the
    engine's L-BFGS history (50 pairs) is full (the cost of most of a run's steps), one bare pass
    is timed after every engine step, so that both see the same state of the machine; the
    medians are compared. ``step_s_early`` is the median engine step before the history is full.
    """
    from inputs import load_pair

    from ndstyle import stylize
    from ndstyle.losses import PerceptualLoss
    from ndstyle.memory import LBFGS_HISTORY

    dev = torch.device(device)
    content, style = (t.to(dev) for t in load_pair("chelsea-starry", size))
    net = _vgg(dev)
    loss = PerceptualLoss(
        net,
        content_layers=list(net.default_content_layers),
        style_layers=net.default_style_layers,
        autocast_dtype=torch.bfloat16 if precision == "bf16" else None,
    )
    x = content[None].clone().requires_grad_(True)

    def bare() -> float:
        t0 = time.perf_counter()
        x.grad = None
        feats = loss.features(x)
        sum(f.float().sum() for f in feats.values()).backward()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        return time.perf_counter() - t0

    full = LBFGS_HISTORY + 1
    if steps < full + 3:
        raise ValueError(f"steps must be >= {full + 3} (history full at step {full}), got {steps}")
    early_steps: list[float] = []
    full_steps: list[float] = []
    bare_times: list[float] = []
    last_end = [0.0]

    def interleave(step: Any) -> None:
        now = time.perf_counter()
        if step.record.step > 2:  # the first steps warm the kernels up
            (full_steps if step.record.step > full else early_steps).append(now - last_end[0])
        if step.record.step > full:
            bare_times.append(bare())
        last_end[0] = time.perf_counter()

    for _ in range(2):
        bare()
    last_end[0] = time.perf_counter()
    stylize(
        content,
        style,
        extractor=net,
        steps=steps,
        scales=1,
        precision=precision,
        progress=False,
        device=dev,
        callback=interleave,
    )
    bare_s, step_s = statistics.median(bare_times), statistics.median(full_steps)
    return {
        "size": size,
        "shape": list(content.shape[1:]),
        "precision": precision,
        "bare_fwd_bwd_s": bare_s,
        "step_s": step_s,
        "step_s_early": statistics.median(early_steps),
        "steps": steps,
        "samples": len(full_steps),
        "overhead": step_s / bare_s,
    }


# -- (c) scaling -----------------------------------------------------------------------------------------
def scaling(
    dims: int, size: float, steps: int, precision: str = "auto", device: str = "cpu"
) -> dict[str, Any]:
    """Per-step time and peak memory of one single-scale run with the modality's default extractor.

    ``size``: seconds of 44.1 kHz stereo audio (1-D, spectral extractor), pixels per side of an RGB
    image (2-D, VGG-16), voxels per side of a one-channel volume (3-D, conv3d). Runs ``steps``
    L-BFGS steps, enough to fill its history (50) so that the peak includes it.
    """
    import inputs

    from ndstyle import stylize
    from ndstyle.extractors import build_extractor

    dev = torch.device(device)
    if dims == 1:
        content, style = inputs.audio(size), inputs.audio(size, seed=1).roll(4410, dims=1)
        net = build_extractor("spectral", spatial_dims=1, in_channels=2, n_fft=1024, hop=512, filters=512)
        options: dict[str, Any] = {"value_range": None}
        warm = (inputs.audio(1.0), inputs.audio(1.0, seed=1))
    elif dims == 2:
        content = inputs.square_image(int(size))
        style = inputs.load_image(inputs.pair_paths()["chelsea-starry"][1], int(size))
        net = _vgg(dev)
        options = {}
        warm = (inputs.square_image(64), inputs.square_image(64))
    else:
        content, style = inputs.volume(int(size)), inputs.volume(int(size), seed=1) ** 3
        net = build_extractor("conv3d", spatial_dims=3, in_channels=1)
        options = {"value_range": None}
        warm = (inputs.volume(16), inputs.volume(16, seed=1))
    common = dict(extractor=net, scales=1, precision=precision, progress=False, device=dev, **options)
    stylize(*warm, steps=2, **common)  # load kernels outside the measured peak
    with PeakMemory(dev) as peak:
        result = stylize(content, style, steps=steps, **common)
    positions = int(torch.tensor(content.shape[1:]).prod())
    return {
        "dims": dims,
        "size": size,
        "shape": list(content.shape),
        "positions": positions,
        "precision": result.precision,
        "steps": steps,
        "seconds_per_step": _median_seconds(result.history, skip=2),
        **peak.result(),
    }


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {
    "tq": time_to_quality,
    "step": step_overhead,
    "scaling": scaling,
}


def main(argv: list[str]) -> None:
    """``workers.py NAME JSON``: run one worker and print its result as the last line."""
    torch.set_num_threads(int(os.environ.get("NDSTYLE_BENCH_THREADS", os.cpu_count() or 1)))
    print(json.dumps(WORKERS[argv[0]](**json.loads(argv[1]))))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main(sys.argv[1:])
