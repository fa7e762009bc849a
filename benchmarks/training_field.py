"""Do extractors trained with ``ndstyle train`` improve the field metrics? (issues 15 and 16)

Compares, with every other option equal, a ConvNd extractor with random weights (the same
architecture and input standardisation as the trained ones, i.e. the trained nets' own
initialisation), trained with ``--objective files`` and trained with ``--objective mixtures``,
judged by the field judges (``ndstyle.metrics.audio`` / ``ndstyle.metrics.volume``), not by the
training metric. Each extractor runs with the style weight calibrated from ``strength`` (the
engine's default) and with a fixed style weight.

Data preparation and training (see docs/training.md, "Does training help the transfer?")::

    # audio: real clips at 16 kHz mono, one file each (see --help of prepare-audio)
    PYTHONPATH=. python benchmarks/training_field.py prepare-audio --out /tmp/trn/audio
    ndstyle train /tmp/trn/audio -o audio_files.safetensors --objective files --labels none \\
        --widths 16,32,64,128 --dilations 1,2,4,8 --kernel-size 9 --crop-size 2048 -n 300
    # (and the same with --objective mixtures -o audio_mixtures.safetensors)
    PYTHONPATH=. python benchmarks/training_field.py audio --weights audio_files.safetensors \\
        audio_mixtures.safetensors --out benchmarks/results/training_field_audio.json

    # volumes: MNI152, Colin27 and the CT on a 64-voxel grid, each normalised in its brain window
    PYTHONPATH=. python benchmarks/training_field.py prepare-volumes --data /tmp/vols1 --out /tmp/trn/vols
    ndstyle train /tmp/trn/vols -o vol_files.safetensors --objective files --labels none \\
        --widths 16,32,64,128 --crop-size 16 --val-fraction 0.25 -n 300
    PYTHONPATH=. python benchmarks/training_field.py volume --data /tmp/vols1 --weights \\
        vol_files.safetensors vol_mixtures.safetensors --out benchmarks/results/training_field_volume.json

Run every command with ``OMP_NUM_THREADS=1 nice -n 19`` on the shared machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ndstyle import stylize
from ndstyle.extractors.base import FeatureExtractor
from ndstyle.extractors.convnd import ConvNdExtractor

RATE = 16000


def _extractors(weights: list[Path], random: bool = True) -> dict[str, ConvNdExtractor]:
    """The trained nets by objective, and (``random``) their common random initialisation."""
    nets: dict[str, ConvNdExtractor] = {}
    for path in weights:
        net = ConvNdExtractor.from_file(path)
        training = net.metadata.get("training", {})
        objective = net.metadata.get("metrics", {}).get("objective", "files")
        if not nets and random:
            nets["random (same net, initial weights)"] = ConvNdExtractor(
                net.config, seed=int(training.get("seed", 0))
            ).freeze()  # type: ignore[assignment]
        nets[f"trained, --objective {objective}"] = net
    return nets


def _weightings(net: FeatureExtractor) -> dict[str, dict[str, Any]]:
    return {
        f"strength {net.default_strength}": {},
        f"style weight {net.default_style_weight:g}": {"style_weight": float(net.default_style_weight)},
    }


# -- audio ----------------------------------------------------------------------------------------
def prepare_audio(out: Path, sources: list[Path], seconds: float = 6.0) -> None:
    """Every real clip of at least 0.8 s as 16 kHz mono (duplicates by content skipped)."""
    import soundfile as sf

    from ndstyle.modalities.audio import read_audio, resample

    out.mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()
    for path in sources:
        x, meta = read_audio(path)
        mono = resample(x.mean(0, keepdims=True), meta["sample_rate"], RATE)[0, : int(seconds * RATE)]
        key = np.round(mono[:4000], 3).tobytes()
        if mono.size < 0.8 * RATE or key in seen:
            continue
        seen.add(key)
        sf.write(out / f"{path.parent.name}_{path.name}", mono.astype(np.float32), RATE)


def audio(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Speech styled as rain with each extractor; the audio judges on the result."""
    from ndstyle.metrics.audio import audio_report
    from ndstyle.modalities.audio import read_audio, resample

    c, cm = read_audio(args.content)
    s, sm = read_audio(args.style)
    c = resample(c.mean(0, keepdims=True), cm["sample_rate"], RATE)
    s = resample(s.mean(0, keepdims=True), sm["sample_rate"], RATE)
    ct, st = torch.from_numpy(c.astype(np.float32)), torch.from_numpy(s.astype(np.float32))
    rows = []
    runs: list[tuple[str, str, FeatureExtractor, dict[str, Any]]] = []
    if args.reference:
        from ndstyle.extractors.spectral import SpectralExtractor

        recipe = {"content_layers": ["envelope"], "style_layers": {"relu": 1.0, "spectrum": 1.0}}
        runs.append(
            ("spectral (reference: the audio default)", "style weight 1e4", SpectralExtractor(1), recipe)
        )
    layers = {"content_layers": args.content_layers} if args.content_layers else {}
    for name, net in _extractors(args.weights, not args.skip_random).items():
        runs += [
            (name, weighting, net, {**kw, **layers})
            for weighting, kw in _weightings(net).items()
            if args.weighting is None or args.weighting in weighting
        ]
    for name, weighting, net, kw in runs:
        start = time.perf_counter()
        res = stylize(
            ct, [st], extractor=net, init="content", scales=1, steps=args.steps,
            value_range=None, progress=False, seed=0, **kw,
        )  # fmt: skip
        rep = audio_report(c, [s], res.output.double().numpy(), RATE)
        row = {
            "extractor": name,
            "weighting": weighting,
            "content_layers": ",".join(kw.get("content_layers", [])) or "default",
            "ltas_ratio": rep["ltas_ratio"],
            "ltas_db": rep["ltas_distance_db"]["result"],
            "envelope_corr": rep["envelope_corr"],
            "texture_ratio": rep["texture_ratio"],
            "seconds": round(time.perf_counter() - start, 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


# -- volumes --------------------------------------------------------------------------------------
def prepare_volumes(data: Path, out: Path, size: int = 64) -> None:
    """MNI152, Colin27 and the CT on a ``size`` grid, each normalised to its brain's 0.5-99.5 %."""
    sys.path.insert(0, str(Path(__file__).parent))
    from volume_quality import MASKS, load, mask_to_grid, to_grid

    from ndstyle.modalities.volume import Normalization, working_shape

    out.mkdir(parents=True, exist_ok=True)
    for name in ("mni_t1", "colin_t1", "ct_head"):
        x, zooms = load(data / f"{name}.nii.gz")
        m, _ = load(data / f"{MASKS[name]}.nii.gz")
        shape = working_shape(x.shape[1:], zooms, size)
        grid, mask = to_grid(x, shape), mask_to_grid(m[0] > 0, shape)
        np.save(out / f"{name}.npy", Normalization.fit(grid[:, mask]).forward(grid).astype(np.float32))


def volume(args: argparse.Namespace) -> list[dict[str, Any]]:
    """MNI T1 -> Colin27 T1 with the library's volume recipe and each extractor; volume judges."""
    sys.path.insert(0, str(Path(__file__).parent))
    from volume_quality import Recipe, prepare, run

    from ndstyle.metrics.volume import judge
    from ndstyle.volume_quality import VOLUME_RECIPE

    pair = prepare(args.data, "mni_t1", "colin_t1", args.size)
    layers = VOLUME_RECIPE["style_layers"]
    assert isinstance(layers, dict)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, net in _extractors(args.weights, not args.skip_random).items():
            path = Path(tmp) / f"{len(rows)}.safetensors"
            net.save(path, extra_metadata={"modality": "array"})
            weightings: dict[str, tuple[Any, float | None]] = {
                f"strength {x:g}": (None, x) for x in args.strengths
            }
            if not args.strength_only:
                weight = VOLUME_RECIPE["style_weight"]
                weightings[f"style weight {weight:g} (recipe)"] = (weight, None)
            for weighting, (style_weight, strength) in weightings.items():
                if args.weighting is not None and args.weighting not in weighting:
                    continue
                recipe = Recipe(
                    extractor=str(path),
                    style_weight=style_weight,
                    steps=args.steps,
                    options={"style_layers": list(layers), "strength": strength},
                )
                result, info = run(recipe, pair)
                scores = judge(
                    pair["content"], [pair["style"]], result, pair["mask"], style_masks=[pair["style_mask"]]
                )
                row = {
                    "extractor": name,
                    "weighting": weighting,
                    **{
                        k: scores[k]
                        for k in ("class_dice", "rank_corr", "ssim", "hist_ratio", "texture_ratio")
                    },
                    "seconds": round(info["seconds"], 1),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table."""
    keys = [k for k in rows[0] if k not in ("extractor", "weighting")]
    head = "| extractor | weighting | " + " | ".join(keys) + " |\n|---|---|" + "---|" * len(keys) + "\n"
    body = "\n".join(
        f"| {r['extractor']} | {r['weighting']} | "
        + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys)
        + " |"
        for r in rows
    )
    return head + body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare-audio")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--sources",
        type=Path,
        nargs="*",
        default=[
            Path("/tmp/sigdata"),
            Path("/tmp/realdata/alsa/usr/share/sounds/alsa"),
            Path("/tmp/realdata/pgdata/pygame/examples/data"),
        ],
        help="folders of WAV files (examples/signals_data.py, alsa-utils, pygame)",
    )
    p = sub.add_parser("prepare-volumes")
    p.add_argument("--data", type=Path, default=Path("/tmp/vols1"))
    p.add_argument("--out", type=Path, required=True)
    for name in ("audio", "volume"):
        p = sub.add_parser(name)
        p.add_argument("--weights", type=Path, nargs="+", required=True, help="trained .safetensors")
        p.add_argument("--steps", type=int, default=100)
        p.add_argument("--out", type=Path)
        p.add_argument("--skip-random", action="store_true", help="only the trained nets")
        p.add_argument("--weighting", help="only the weightings whose name holds this, e.g. 'style weight'")
        if name == "audio":
            p.add_argument("--content", type=Path, default=Path("/tmp/sigdata/speech.wav"))
            p.add_argument("--style", type=Path, default=Path("/tmp/sigdata/rain.wav"))
            p.add_argument("--content-layers", nargs="*", help="for the ConvNd nets (default: theirs)")
            p.add_argument("--reference", action="store_true", help="also the spectral default recipe")
        else:
            p.add_argument("--data", type=Path, default=Path("/tmp/vols1"))
            p.add_argument("--size", type=int, default=48)
            p.add_argument("--strength-only", action="store_true", help="skip the fixed style weight")
            p.add_argument("--strengths", type=float, nargs="+", default=[0.75], help="(default: 0.75)")
    p = sub.add_parser("table")
    p.add_argument("json", type=Path)
    args = parser.parse_args()
    if args.command == "prepare-audio":
        files = sorted(f for d in args.sources for f in d.glob("*.wav") if "speech60" not in f.name)
        prepare_audio(args.out, files)
    elif args.command == "prepare-volumes":
        prepare_volumes(args.data, args.out)
    elif args.command == "table":
        print(markdown(json.loads(args.json.read_text())["rows"]))
    else:
        rows = audio(args) if args.command == "audio" else volume(args)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            command = "OMP_NUM_THREADS=1 python benchmarks/training_field.py " + " ".join(sys.argv[1:])
            args.out.write_text(json.dumps({"command": command, "rows": rows}, indent=1))
        print(markdown(rows))


if __name__ == "__main__":
    main()
