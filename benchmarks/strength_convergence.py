"""Is the content/style change ratio at one strength a converged quantity? (issue 18)

    OMP_NUM_THREADS=2 PYTHONPATH=. python benchmarks/strength_convergence.py --volumes VOLS --audio SIG \\
        --steps 60 300 1000 --images chelsea-starry coffee-ihc --image-steps 100 400 \\
        --out benchmarks/results/style_losses/strength_convergence.json

The volume and audio pairs of ``benchmarks/style_losses_nd.py`` (MNI152 T1 -> Colin27 T1 at 40^3
with ``conv3d``; 3 s of speech -> rain at 16 kHz with ``spectral``; one level, from the content)
and image pairs as ``benchmarks/style_losses.py`` runs them (offline VGG-16, 128 px, 25 steps at
64 px then the given steps at full size), the Gram cost at strength 0.25 / 0.5 / 0.75, ``tol=0``
(every step runs), for each step count:
content change = J_content(result) / J_content(noise), style change = 1 - J_style(result) /
J_style(content), in the optimised extractor, and their ratio. If the ratio changes with the
number of steps, a table of it at a fixed step count measures where the run was, not the pair.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import style_losses_nd as nd  # noqa: E402

from ndstyle import stylize  # noqa: E402
from ndstyle.extractors import build_extractor  # noqa: E402

STRENGTHS = (0.25, 0.5, 0.75)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=Path, required=True, help="folder with mni_t1/colin_t1 .nii.gz")
    parser.add_argument("--audio", type=Path, required=True, help="folder with speech.wav and rain.wav")
    parser.add_argument("--steps", type=int, nargs="+", default=[60, 300, 1000])
    parser.add_argument("--vsize", type=int, default=40)
    parser.add_argument("--images", nargs="*", default=["chelsea-starry"], help="image pairs (inputs.py)")
    parser.add_argument("--image-steps", type=int, nargs="+", default=[100, 400])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    pairs = {
        "volume": (*nd.volume_pair(args.volumes, args.vsize), "conv3d", 3),
        "audio": (*nd.audio_pair(args.audio), "spectral", 1),
    }
    cases = []  # (pair name, net, content, style, steps, stylize keywords)
    for name, (content, style, extractor, dims) in pairs.items():
        net = build_extractor(extractor, spatial_dims=dims, in_channels=content.shape[0])
        options = {"scales": 1, "init": "content"}
        if dims == 1:  # as style_losses_nd.py: audio is not clamped
            options["value_range"] = None
        cases += [(name, net, content, style, steps, options) for steps in args.steps]
    if args.images:
        from inputs import load_pair

        vgg = build_extractor("vgg16-offline", spatial_dims=2, in_channels=3)
        for pair in args.images:
            content, style = load_pair(pair, 128)
            cases += [(pair, vgg, content, style, steps, {"coarse_steps": 25}) for steps in args.image_steps]
    rows = []
    for name, net, content, style, steps, options in cases:
        for strength in STRENGTHS:
            start = time.perf_counter()
            result = stylize(
                content, style, extractor=net, strength=strength, steps=steps, tol=0.0, progress=False,
                seed=0, **options,
            )  # fmt: skip
            change = nd.changes(net, content, style, result.output)
            row = {"pair": name, "steps": steps, "strength": strength, **change}
            row["ratio"] = change["content_change"] / max(change["style_change"], 1e-9)
            row["seconds"] = time.perf_counter() - start
            rows.append(row)
            print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
