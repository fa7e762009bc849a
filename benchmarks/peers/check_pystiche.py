"""Check that the pystiche peer optimises the same objective as ndstyle, on the same weights.

Runs in ndstyle's environment and calls ``pystiche_peer.py --probe`` in pystiche's. On one image
(a noisy content, not an optimum, so every term is non-zero) it compares pystiche's preprocessed
input, its relu activations and its total loss with ndstyle's. Prints one JSON line and exits 1 if
any relative difference exceeds ``--tolerance``.

    python benchmarks/peers/check_pystiche.py [--size 128] [--pair chelsea-starry]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from inputs import load_pair  # noqa: E402
from workers import PEER_PYTHON, PEER_SCRIPT, _vgg, objective  # noqa: E402


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max |a - b| / max |b|``."""
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp_min(1e-30))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--pair", default="chelsea-starry")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    if not PEER_PYTHON.exists():
        sys.exit(f"pystiche peer not installed: run {HERE / 'setup_pystiche.sh'}")
    from ndstyle.extractors.vgg import OFFLINE

    content, style = load_pair(args.pair, args.size)
    generator = torch.Generator().manual_seed(0)
    image = (content + 0.1 * torch.randn(content.shape, generator=generator)).clamp(0, 1)
    net = _vgg(torch.device("cpu"))
    with tempfile.TemporaryDirectory() as folder:
        inputs, probe = Path(folder, "in.safetensors"), Path(folder, "probe.safetensors")
        save_file({"content": content, "style": style, "image": image}, str(inputs))
        command = [str(PEER_PYTHON), str(PEER_SCRIPT), "--inputs", str(inputs)]
        command += ["--weights", str(OFFLINE.cache_path), "--probe", str(probe)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"pystiche probe failed:\n{done.stderr[-3000:]}")
        theirs = load_file(str(probe))
    layers = sorted({*net.default_content_layers, *net.default_style_layers})  # as the probe's
    with torch.no_grad():
        ours = net(image[None], layers)
    report = {
        "activations": {layer: relative(theirs[layer], ours[layer][0]) for layer in layers},
        "pystiche_total": float(theirs["total"]),
        "ndstyle_total": objective(net, content, style, image),
    }
    report["total"] = abs(report["pystiche_total"] - report["ndstyle_total"]) / abs(report["ndstyle_total"])
    print(json.dumps(report))
    worst = max(report["total"], *report["activations"].values())
    sys.exit(0 if worst <= args.tolerance else 1)


if __name__ == "__main__":
    main()
