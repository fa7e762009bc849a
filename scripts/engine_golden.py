"""Golden outputs of ndstyle.stylize for a few seeded cases (engine refactor check).

Usage: python scripts/engine_golden.py OUTDIR        # writes OUTDIR/<case>.pt
       python scripts/engine_golden.py OUTDIR --compare OTHERDIR   # torch.equal per case
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch

torch.set_num_threads(1)
from ndstyle import ConvNdExtractor, stylize  # noqa: E402


def pair(dims: int, channels: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded content/style pair ``(C, *spatial)``."""
    g = torch.Generator().manual_seed(seed)
    shape = {1: (256,), 2: (40, 40), 3: (16, 16, 16)}[dims]
    return torch.rand((channels, *shape), generator=g), torch.rand((channels, *shape), generator=g)


def net(dims: int, channels: int = 1) -> ConvNdExtractor:
    """A small seeded random ConvNd."""
    return ConvNdExtractor.random(dims, channels, seed=0, widths=(8, 16, 32))


def cases() -> dict[str, dict]:
    """The seeded cases: stylize keywords by name."""
    out: dict[str, dict] = {}
    for dims in (1, 2, 3):
        c, s = pair(dims)
        out[f"lbfgs_{dims}d"] = dict(content=c, style=s, extractor=net(dims), steps=[3, 6], scales=2)
        out[f"adam_{dims}d"] = dict(
            content=c,
            style=s,
            extractor=net(dims),
            steps=8,
            scales=1,
            optimizer="adam",
            tv_weight=0.1,
            init="noise",
            seed=3,
        )
    c, s = pair(2, seed=1)
    s2 = torch.rand(1, 30, 50, generator=torch.Generator().manual_seed(9))
    mask = torch.zeros(40, 40)
    mask[:, 20:] = 1
    out["mask_2d_two_styles"] = dict(
        content=c,
        style=[s, s2],
        style_blend=[0.3, 0.7],
        mask=mask,
        extractor=net(2),
        steps=7,
        scales=1,
        value_range=(0.0, 1.0),
    )
    out["none_extractor_1d"] = dict(content=pair(1)[0], style=pair(1)[1], steps=4, scales=1, seed=2)
    c3, s3 = pair(3, channels=2)
    out["mask_3d_adam"] = dict(
        content=c3,
        style=s3,
        extractor=net(3, 2),
        steps=5,
        scales=1,
        optimizer="adam",
        lr=0.05,
        mask=(torch.rand(16, 16, 16, generator=torch.Generator().manual_seed(5)) > 0.5).float(),
    )
    return out


def run_all(outdir: Path) -> None:
    """Run every case and save its outputs."""
    outdir.mkdir(parents=True, exist_ok=True)
    for name, kw in cases().items():
        kw = dict(kw)
        content, style = kw.pop("content"), kw.pop("style")
        r = stylize(content, style, progress=False, **kw)
        torch.save(
            {
                "output": r.output,
                "totals": torch.tensor([h.total for h in r.history], dtype=torch.float64),
                "best": torch.tensor(r.best_cost, dtype=torch.float64),
            },
            outdir / f"{name}.pt",
        )
    # checkpoint + resume: stop after 5 steps (checkpoint at step 4), then resume to the end
    c, s = pair(2, seed=4)
    with tempfile.TemporaryDirectory() as tmp:
        ck = Path(tmp) / "run.safetensors"
        kw = dict(extractor=net(2), steps=[4, 6], scales=2, checkpoint=ck, checkpoint_every=2, progress=False)
        stylize(c, s, callback=lambda info: info.record.step >= 5, **kw)
        r = stylize(c, s, resume=True, **kw)
        full = stylize(c, s, extractor=net(2), steps=[4, 6], scales=2, progress=False)
    torch.save(
        {
            "output": r.output,
            "full": full.output,
            "totals": torch.tensor([h.total for h in r.history], dtype=torch.float64),
        },
        outdir / "resume_2d.pt",
    )


def compare(a: Path, b: Path) -> int:
    """Print identical/DIFFERENT per case; return the number that differ."""
    bad = 0
    for f in sorted(a.glob("*.pt")):
        x, y = torch.load(f, weights_only=True), torch.load(b / f.name, weights_only=True)
        same = all(torch.equal(x[k], y[k]) for k in x)
        print(f"{f.stem:22s} {'identical' if same else 'DIFFERENT'}")
        bad += not same
    return bad


if __name__ == "__main__":
    if "--compare" in sys.argv:
        sys.exit(compare(Path(sys.argv[1]), Path(sys.argv[3])))
    run_all(Path(sys.argv[1]))
