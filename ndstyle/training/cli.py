"""``ndstyle train DATA -o WEIGHTS.safetensors``: train a ConvNd extractor on your own files."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from ..errors import OptionError


def _int_list(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from error


def add_parser(subparsers: Any, name: str) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand to ``subparsers`` (called by :mod:`ndstyle.cli`)."""
    from .train import train_extractor

    defaults = train_extractor.__kwdefaults__ or {}
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help="train a ConvNd feature extractor on a folder of your files",
        description=(
            "Train a ConvNd extractor (1-, 2- or 3-D) on a folder of files of one modality, "
            "self-supervised (crops of one file have closer Gram statistics than crops of "
            "others; subfolders act as labels), and write a .safetensors weights file for "
            "`ndstyle run ... --extractor WEIGHTS.safetensors`."
        ),
    )
    parser.add_argument("data", type=Path, help="folder of training files (searched recursively)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="weights file (.safetensors)")
    parser.add_argument("-m", "--modality", default=None, help="force the modality of the files")
    parser.add_argument("--dims", type=int, choices=(1, 2, 3), default=None, help="expected spatial axes")
    parser.add_argument(
        "-n", "--steps", type=int, default=defaults["steps"], help="training steps (default: %(default)s)"
    )
    parser.add_argument(
        "--crop-size", type=int, default=None, help="crop size per axis (default: 2048/64/32, shrunk to fit)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=defaults["batch_size"], help="crops per step (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=defaults["seed"], help="random seed (default: %(default)s)"
    )
    parser.add_argument(
        "--lr", type=float, default=defaults["lr"], help="Adam step size (default: %(default)s)"
    )
    parser.add_argument(
        "--objective",
        choices=("files", "mixtures", "spectra"),
        default=defaults["objective"],
        help="files: clean crops of one file (or label) have close Gram statistics; mixtures: also "
        "when another file's crop is mixed in, the contrast changes and the crop is flipped, a task "
        "random filters do not already solve; spectra: files, plus crops with close Gram statistics "
        "should have close power spectra (default: %(default)s)",
    )
    parser.add_argument("--widths", type=_int_list, default=None, help="channels per block, e.g. 32,64,128")
    parser.add_argument("--kernel-size", type=int, default=None, help="odd kernel size (default: 3)")
    parser.add_argument("--dilations", type=_int_list, default=None, help="dilation per block, e.g. 1,2,4")
    parser.add_argument("--pooling", choices=("avg", "max", "none"), default=None, help="(default: avg)")
    parser.add_argument(
        "--labels",
        choices=("auto", "subfolders", "none"),
        default="auto",
        help="subfolder names as labels: auto (if every file is in one of >= 2 subfolders), "
        "subfolders (required) or none (default: %(default)s)",
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=defaults["val_fraction"],
        help="fraction of each file held out for the validation metric (default: %(default)s)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda... (default: %(default)s)")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="training-state file (default: OUTPUT with .ckpt.safetensors; removed after success)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint of an interrupted run"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or messages")
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    parser.set_defaults(handler=cmd_train)
    return parser


def default_checkpoint(output: Path) -> Path:
    """Where ``ndstyle train`` keeps its training state for ``output``."""
    name = output.name.removesuffix(".safetensors")
    return output.with_name(f"{name}.ckpt.safetensors")


def cmd_train(args: argparse.Namespace) -> int:
    """Train, print the validation metrics, write the weights file atomically."""
    from ..io.atomic import check_output_path
    from .train import train_extractor

    if args.output.suffix != ".safetensors":
        raise OptionError(f"output {str(args.output)!r} must end in .safetensors")
    check_output_path(args.output, overwrite=args.overwrite)
    checkpoint = args.checkpoint or default_checkpoint(args.output)
    result = train_extractor(
        args.data,
        spatial_dims=args.dims,
        modality=args.modality,
        steps=args.steps,
        crop_size=args.crop_size,
        batch_size=args.batch_size,
        seed=args.seed,
        lr=args.lr,
        objective=args.objective,
        widths=args.widths,
        kernel_size=args.kernel_size,
        dilations=args.dilations,
        pooling=args.pooling,
        labels=None if args.labels == "none" else args.labels,
        val_fraction=args.val_fraction,
        device=args.device,
        progress=not args.quiet,
        checkpoint=checkpoint,
        resume=args.resume,
    )
    result.save(args.output, overwrite=args.overwrite)
    with contextlib.suppress(FileNotFoundError):
        checkpoint.unlink()
    if not args.quiet:
        print(format_metrics(result.metrics, result.extractor.describe()), file=sys.stderr)
    print(str(args.output))
    return 0


def format_metrics(metrics: dict[str, Any], described: str) -> str:
    """Lines that report the losses and the validation metric, trained vs random weights."""
    lines = [f"extractor: {described}"]
    if metrics.get("loss_first") is not None:
        lines.append(
            f"loss: {metrics['loss_first']:.4f} (first step) -> {metrics['loss_last10_mean']:.4f} (last 10)"
        )
    if "val_nn_accuracy_trained" in metrics:
        lines.append(
            f"validation ({metrics['val_task']}, {metrics['val_crops']} held-out crops, "
            f"{metrics['val_groups']} classes): trained {metrics['val_nn_accuracy_trained']:.3f}, "
            f"random weights {metrics['val_nn_accuracy_random']:.3f}, chance {metrics['chance']:.3f}"
        )
    if "val_mix_nn_accuracy_trained" in metrics:
        lines.append(
            "validation on mixtures (another file's crop mixed in at 0.7x, gain, flips): "
            f"trained {metrics['val_mix_nn_accuracy_trained']:.3f}, "
            f"random weights {metrics['val_mix_nn_accuracy_random']:.3f}"
        )
    if "val_spectra_corr_trained" in metrics:
        lines.append(
            "validation: correlation of Gram and spectrum distances between held-out crops: "
            f"trained {metrics['val_spectra_corr_trained']:.3f}, "
            f"random weights {metrics['val_spectra_corr_random']:.3f}"
        )
    return "\n".join(lines)
