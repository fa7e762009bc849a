"""Interrupt a style transfer and resume it from its checkpoint: the result is bit-identical.

Runs a 2-level Gatys transfer of scikit-image's ``camera.png`` in the style of ``brick.png``
three ways: uninterrupted; interrupted (Ctrl-C, simulated at a fixed step) with checkpoints every
10 steps; and resumed from the last checkpoint. Writes ``OUT/resume.png`` with the cost curves
and the images (``--out docs/img/reliability`` regenerates the docs picture), and prints whether
the resumed result equals the uninterrupted one bit for bit.

    python examples/reliability_resume.py [--size 96] [--steps 30] [--out docs/img/reliability]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ndstyle import stylize
from ndstyle.errors import InterruptedRun


def load_gray(name: str, size: int) -> torch.Tensor:
    import skimage

    path = Path(os.path.dirname(skimage.__file__)) / "data" / name
    image = Image.open(path).convert("L").resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)[None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--steps", type=int, default=30, help="steps per pyramid level")
    parser.add_argument("--stop", type=int, default=37, help="step at which Ctrl-C is simulated")
    parser.add_argument("--out", type=Path, default=Path("reliability-example"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # bit-identical comparisons need the same thread count

    content, style = load_gray("camera.png", args.size), load_gray("brick.png", args.size)
    options = dict(
        steps=args.steps, coarse_steps=args.steps, scales=[0.5, 1], seed=0, progress=False, style_weight=1e3
    )
    reference = stylize(content, style, **options)

    def ctrl_c(info):
        if info.record.step == args.stop:
            raise KeyboardInterrupt

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / "run.checkpoint.safetensors"
        try:
            stylize(content, style, checkpoint=checkpoint, checkpoint_every=10, callback=ctrl_c, **options)
        except InterruptedRun as interrupt:
            interrupted = interrupt.result  # type: ignore[attr-defined]
            print(f"interrupted: {interrupt}")
        resumed = stylize(content, style, checkpoint=checkpoint, checkpoint_every=10, resume=True, **options)

    identical = torch.equal(resumed.output, reference.output)
    print(f"resumed == uninterrupted, bit for bit: {identical}; best cost {resumed.best_cost:.6g}")
    print(f"max |difference| = {float((resumed.output - reference.output).abs().max()):.3g}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 5, figsize=(17, 3.4), gridspec_kw={"width_ratios": [2.2, 1, 1, 1, 1]})
    ax = axes[0]
    ax.semilogy(
        [r.step for r in reference.history],
        [r.total for r in reference.history],
        "k-",
        lw=3,
        alpha=0.3,
        label="uninterrupted",
    )
    ax.semilogy(
        [r.step for r in interrupted.history],
        [r.total for r in interrupted.history],
        "r.",
        label=f"run until Ctrl-C (step {args.stop})",
    )
    resumed_steps = [r for r in resumed.history if r.step > 10 * (args.stop // 10)]
    ax.semilogy(
        [r.step for r in resumed_steps],
        [r.total for r in resumed_steps],
        "b+",
        label="--resume from the checkpoint",
    )
    ax.set_xlabel("step (2 pyramid levels)")
    ax.set_ylabel("total cost J")
    ax.legend(fontsize=8)
    ax.set_title("cost per step")
    panels = [
        (content, "content"),
        (style, "style"),
        (resumed.output, "resumed result"),
        (
            (resumed.output - reference.output).abs(),
            f"|resumed - uninterrupted| (max {float((resumed.output - reference.output).abs().max()):.0f})",
        ),
    ]
    for ax, (image, title) in zip(axes[1:], panels):
        ax.imshow(image[0].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / "resume.png"
    fig.savefig(target, dpi=80)
    print(f"wrote {target} ({target.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
