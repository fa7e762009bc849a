"""ndstyle benchmarks: time to quality vs the textbook method and pystiche, per-step overhead, scaling.

Not part of the test suite. Needs the ``examples`` and ``vgg16-offline`` extras; the pystiche peer
needs its own environment (``benchmarks/peers/setup_pystiche.sh``) and is skipped without it.

    python benchmarks/run.py                       # everything, results in benchmarks/results/
    python benchmarks/run.py --sections step       # one section, merged into the same results
    python benchmarks/run.py --quick --out /tmp/b  # a smoke run on tiny sizes (a few minutes)

Each measurement runs in a fresh process (``workers.py``) so that its peak memory is its own, one
at a time. Results are merged into ``OUT/results.json`` after every measurement (``--reuse`` skips
those already there), and ``OUT/results.md`` plus plots are written from all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: ndstyle variants measured beside its defaults (each is stylize keyword arguments).
ABLATIONS: dict[str, dict[str, Any]] = {
    "fp32": {"precision": "fp32"},
    "single-scale": {"scales": 1},
    "coarse-200": {"coarse_steps": 200},
}
PAIRS = ("chelsea-starry", "astronaut-hubble", "coffee-ihc")
SCALING_SIZES = {1: [5, 10, 20, 40, 60], 2: [128, 256, 384, 512, 768, 1024], 3: [32, 48, 64, 96, 128]}


def machine(device: str) -> dict[str, Any]:
    import torch

    from ndstyle.engine import native_bf16

    cpu = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=False
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                cpu = line.split(":", 1)[1].strip()
    except OSError:
        pass
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "native_bf16_cpu": native_bf16(torch.device("cpu")),
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def spawn(worker: str, **kwargs: Any) -> dict[str, Any]:
    """Run one worker in a fresh process; raise with its stderr if it fails."""
    command = [sys.executable, str(HERE / "workers.py"), worker, json.dumps(kwargs)]
    print(f"  {worker} {json.dumps(kwargs)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {worker} {kwargs} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"    done in {time.perf_counter() - started:.0f} s", flush=True)
    return result


class Results:
    """``OUT/results.json``: ``{"machine", "commands", "runs": {key: record}}``, saved after each run."""

    def __init__(self, out: Path, reuse: bool, device: str) -> None:
        self.path = out / "results.json"
        data: dict[str, Any] = {}
        if self.path.exists():
            data = json.loads(self.path.read_text())
        self.runs: dict[str, Any] = data.get("runs", {}) if reuse else {}
        self.commands: list[str] = data.get("commands", []) if reuse else []
        self.machine = machine(device)
        self.commands.append(
            f"python benchmarks/{Path(sys.argv[0]).name} {' '.join(sys.argv[1:])}".strip()
            + f"  # {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
            + " ".join(f"{v:.2f}" for v in os.getloadavg())
        )

    def image_path(self, key: str) -> str:
        """Where a time-to-quality run writes its final image (``OUT/images/<key with _>.png``)."""
        return str(self.path.parent / "images" / (key.replace("/", "_").replace(":", "-") + ".png"))

    def measure(self, key: str, worker: str, **kwargs: Any) -> dict[str, Any] | None:
        if key in self.runs:
            print(f"  {key}: reused", flush=True)
            return self.runs[key]
        try:
            record = spawn(worker, **kwargs)
        except RuntimeError as error:
            print(f"  {key}: FAILED\n{error}", flush=True)
            return None
        record["load_after"] = os.getloadavg()[0]
        self.runs[key] = record
        self.save()
        return record

    def save(self) -> None:
        self.path.write_text(
            json.dumps({"machine": self.machine, "commands": self.commands, "runs": self.runs}, indent=1)
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--sections", nargs="+", default=["tq", "ablation", "step", "scaling"], help="(default: %(default)s)"
    )
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512], help="time-to-quality sizes")
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=PAIRS)
    parser.add_argument("--iterations", type=int, default=300, help="reference L-BFGS iterations")
    parser.add_argument("--peers", nargs="*", default=["pystiche"], help="peer libraries to run")
    parser.add_argument("--ablations", nargs="*", default=list(ABLATIONS), choices=list(ABLATIONS))
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="an extra ndstyle variant (stylize keyword arguments) for the ablation section, "
        "e.g. 'short={\"steps\": [100, 100, 200]}'",
    )
    parser.add_argument("--step-sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--scaling-dims", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--scaling-steps", type=int, default=55, help="steps per scaling run (history: 50)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--reuse", action="store_true", help="keep results already in OUT/results.json")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps: checks the harness")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite OUT/results.md and the plots from OUT/results.json",
    )
    args = parser.parse_args()
    if args.report_only:
        from report import write_report

        data_path = args.out / "results.json"
        if not data_path.is_file():
            parser.error(f"--report-only: {data_path} does not exist")
        write_report(args.out, json.loads(data_path.read_text()))
        print(f"wrote {args.out / 'results.md'}")
        return
    scaling_sizes = dict(SCALING_SIZES)
    if args.quick:
        args.sizes, args.pairs, args.iterations, args.step_sizes = [64], args.pairs[:1], 20, [64]
        args.scaling_steps = 4
        scaling_sizes = {1: [1, 2], 2: [64, 96], 3: [16, 24]}
    variants = {name: ABLATIONS[name] for name in args.ablations}
    for text in args.variant:
        name, _, options = text.partition("=")
        variants[name] = json.loads(options)
    args.out.mkdir(parents=True, exist_ok=True)
    results = Results(args.out, args.reuse, args.device)
    device = args.device
    quick_options = {"steps": 10} if args.quick else {}

    if "tq" in args.sections or "ablation" in args.sections:
        for size in args.sizes:
            for pair in args.pairs:
                common = dict(pair=pair, size=size, iterations=args.iterations, device=device)
                key = f"tq/reference/{pair}/{size}"
                results.measure(key, "tq", method="reference", image=results.image_path(key), **common)
                key = f"tq/ndstyle/{pair}/{size}"
                results.measure(
                    key,
                    "tq",
                    method="ndstyle",
                    options=quick_options,
                    image=results.image_path(key),
                    **common,
                )
                if "tq" in args.sections:
                    for peer in args.peers:
                        key = f"tq/{peer}/{pair}/{size}"
                        results.measure(key, "tq", method=peer, image=results.image_path(key), **common)
                if "ablation" in args.sections:
                    for name, options in variants.items():
                        key = f"tq/ndstyle:{name}/{pair}/{size}"
                        results.measure(
                            key,
                            "tq",
                            method="ndstyle",
                            options={**quick_options, **options},
                            image=results.image_path(key),
                            **common,
                        )
    if "step" in args.sections:
        for size in args.step_sizes:
            for precision in ("fp32", "bf16"):
                results.measure(
                    f"step/{size}/{precision}", "step", size=size, precision=precision, device=device
                )
    if "scaling" in args.sections:
        for dims in args.scaling_dims:
            for size in scaling_sizes[dims]:
                results.measure(
                    f"scaling/{dims}/{size}",
                    "scaling",
                    dims=dims,
                    size=size,
                    steps=args.scaling_steps,
                    device=device,
                )
    results.save()
    from report import write_report

    print(write_report(args.out, json.loads(results.path.read_text())))


if __name__ == "__main__":
    main()
