"""``train_extractor``: learn ConvNd texture features from the user's own files (1-, 2- or 3-D).

The objective is self-supervised and needs no labels: random crops of the same file (or, with
labels, of the same subfolder) should have closer Gram statistics than crops of different files
(supervised InfoNCE over Gram embeddings, see :mod:`ndstyle.training.objectives`). One code path
serves every number of spatial axes; all randomness comes from generators seeded with ``seed`` and
the step number, so a run is reproducible and a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from .._checks import check_positive
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import InputFileError, InterruptedRun, OptionError, OutputFileError, WeightsIntegrityError
from ..extractors.convnd import ConvNdConfig, ConvNdExtractor
from .augment import Mixing, mix_crops
from .data import (
    SAMPLE_RATE_KEYS,
    SPACING_KEYS,
    TrainingData,
    auto_crop_size,
    check_crop_fits,
    load_training_data,
    random_crops,
    split_for_validation,
)
from .objectives import (
    band_spectra,
    embed_set,
    gram_embedding,
    gram_statistics,
    nearest_neighbour_accuracy,
    pairwise_correlation,
    supervised_info_nce,
)

#: The training objectives (``objective=`` / ``--objective``) and what each one asks of the net.
OBJECTIVES = {
    "files": "supervised InfoNCE over Gram embeddings (crops of one file/label are positives)",
    "mixtures": (
        "supervised InfoNCE over Gram embeddings of augmented crops (another file's crop mixed in at "
        "up to 0.7x the level, contrast gain 0.5-2x, random flips; the dominant file/label is the "
        "positive)"
    ),
    "spectra": (
        "supervised InfoNCE over Gram embeddings plus (1 - correlation between the crops' pairwise Gram "
        "embedding distances and their band power spectrum distances in dB)"
    ),
}


@dataclass
class TrainResult:
    """What :func:`train_extractor` returns.

    Attributes:
        extractor: the trained, frozen :class:`ConvNdExtractor` (activation scales calibrated to
            those of its random initialisation, so default style weights still apply).
        metrics: validation metrics (``val_nn_accuracy_trained``, ``val_nn_accuracy_random``,
            ``chance``...) and the first/last training losses.
        losses: the training loss of every step.
        metadata: what :meth:`save` stores in the weights file besides the architecture.
        steps: steps trained in total (including steps before a resume).
        seconds: wall time of this call.

    """

    extractor: ConvNdExtractor
    metrics: dict[str, Any]
    losses: list[float]
    metadata: dict[str, Any] = field(default_factory=dict)
    steps: int = 0
    seconds: float = 0.0

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> str:
        """Write the weights file (safetensors + metadata); return its SHA-256."""
        return self.extractor.save(path, extra_metadata=self.metadata, overwrite=overwrite)


def train_extractor(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    spatial_dims: int | None = None,
    modality: str | None = None,
    steps: int = 300,
    crop_size: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    widths: Sequence[int] | None = None,
    convs_per_block: Sequence[int] | int | None = None,
    kernel_size: int | None = None,
    dilations: Sequence[int] | int | None = None,
    pooling: str | None = None,
    lr: float = 1e-3,
    temperature: float = 0.5,
    objective: str = "files",
    labels: str | None = "auto",
    val_fraction: float = 0.2,
    val_crops: int = 8,
    device: str | torch.device = "auto",
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int = 50,
    resume: bool = False,
    modality_options: dict[str, Any] | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train a :class:`ConvNdExtractor` on a folder or list of files of one modality.

    Args:
        data: a folder (searched recursively for files of known extensions) or a list of files.
            Each file is read with its modality's reader into ``(C, *spatial)``.
        spatial_dims: expected spatial axes (1, 2 or 3); ``None`` takes them from the files.
        modality: force a modality instead of choosing it from the extensions.
        steps: optimisation steps in total (a resumed run continues up to this number).
        crop_size: crop size per spatial axis; ``None`` picks the largest of 2048 / 64 / 32
            (1-D / 2-D / 3-D) that fits every file.
        batch_size: crops per step (pairs of crops of ``batch_size // 2`` files or labels).
        seed: seed of the initial weights, the crops and the validation crops.
        widths: channels of each block (default: :class:`ConvNdConfig`'s).
        convs_per_block: convolutions per block (default: ConvNdConfig's).
        kernel_size: odd kernel size (default: ConvNdConfig's).
        dilations: dilation of each block (default: ConvNdConfig's).
        pooling: ``"avg"``, ``"max"`` or ``"none"`` (default: ConvNdConfig's).
        lr: Adam learning rate (constant).
        temperature: InfoNCE temperature.
        objective: ``"files"`` (clean crops of one file or label are positives) or
            ``"mixtures"`` (each crop has another file's crop mixed in, a contrast gain and random
            flips; its dominant file or label is the positive) or ``"spectra"`` (``"files"`` plus:
            pairwise Gram distances should correlate with band power spectrum distances), see
            :data:`OBJECTIVES`.
        labels: ``"auto"`` (subfolder names when all files lie in >= 2 subfolders),
            ``"subfolders"`` (required) or ``None`` (each file is its own class).
        val_fraction: fraction of each file (along its longest axis) held out for validation;
            0 disables the validation metric.
        val_crops: held-out crops per file for the validation metric.
        device: ``"auto"`` (cuda, mps, cpu) or a torch device.
        progress: show a tqdm progress bar.
        checkpoint: a ``.safetensors`` file to save the training state to every
            ``checkpoint_every`` steps and when interrupted; ``None`` for none.
        checkpoint_every: steps between checkpoints.
        resume: continue from ``checkpoint`` if it exists (its settings must match).
        modality_options: options of the modality's reader, by ``ndstyle run`` dest name.
        callback: called as ``callback(step, loss)`` after every step.

    Returns:
        A :class:`TrainResult`; ``result.save(path)`` writes the weights file.

    Raises:
        InputFileError: missing, unreadable or mixed-modality files; fewer than 2 files/labels.
        ShapeError: files with different channel counts or numbers of spatial axes.
        OptionError: invalid options, files smaller than one crop, a checkpoint that does not
            match these settings.
        InterruptedRun: Ctrl-C; the checkpoint (if any) holds the state to resume from.

    """
    from ..engine import resolve_device

    started = time.perf_counter()
    if steps < 0:
        raise OptionError(f"steps must be >= 0, got {steps}")
    if batch_size < 4:
        raise OptionError(f"batch_size must be >= 4 (pairs of crops of >= 2 files), got {batch_size}")
    if val_crops < 1:
        raise OptionError(f"val_crops must be >= 1, got {val_crops}")
    check_positive("lr", lr, allow_zero=False)
    check_positive("temperature", temperature, allow_zero=False)
    if objective not in OBJECTIVES:
        raise OptionError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if checkpoint_every < 1:
        raise OptionError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    if resume and checkpoint is None:
        raise OptionError("resume=True needs a checkpoint path")

    dataset = load_training_data(
        data, spatial_dims=spatial_dims, modality=modality, labels=labels, modality_options=modality_options
    )
    crop = crop_size if crop_size is not None else auto_crop_size(dataset, val_fraction)
    if crop < 1:
        raise OptionError(f"crop_size must be >= 1, got {crop}")
    split_for_validation(dataset, val_fraction, crop)
    check_crop_fits(dataset, crop)

    mean, std = dataset.channel_stats()
    arch: dict[str, Any] = {
        k: (tuple(v) if isinstance(v, (list, tuple)) else v)
        for k, v in {
            "widths": widths,
            "convs_per_block": convs_per_block,
            "kernel_size": kernel_size,
            "dilations": dilations,
            "pooling": pooling,
        }.items()
        if v is not None
    }
    config = ConvNdConfig(
        spatial_dims=dataset.spatial_dims,
        in_channels=dataset.in_channels,
        input_mean=mean,
        input_std=std,
        **arch,
    )
    net = ConvNdExtractor(config, seed=seed)
    layers = list(net.default_style_layers)
    need = net.min_input_size(layers)
    if crop < need:
        raise OptionError(
            f"crop_size={crop} is too small for {len(config.widths)} blocks with pooling "
            f"(needs >= {need}); use a larger --crop-size or fewer widths"
        )
    dev = resolve_device(device)
    settings = _settings(dataset, config, crop, batch_size, seed, lr, temperature, val_fraction, objective)
    mixing = Mixing()
    centre = torch.tensor(mean)

    losses: list[float] = []
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    start_step = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        if not resume:
            raise OutputFileError(
                f"checkpoint {str(ckpt)!r} already exists; resume from it (resume=True, --resume) "
                f"or delete it"
            )
        start_step, losses = _load_checkpoint(ckpt, net, optimizer, settings)
    net = net.to(dev)
    for p in net.parameters():
        p.requires_grad_(True)
    _optimizer_to(optimizer, dev)
    net.train()

    groups_files = _files_by_group(dataset)
    pairs = batch_size // 2
    from tqdm.auto import tqdm

    bar = tqdm(
        total=steps,
        initial=min(start_step, steps),
        disable=not progress,
        desc=f"train {dataset.spatial_dims}-D",
        unit="step",
    )
    step = start_step
    try:
        while step < steps:
            generator = torch.Generator().manual_seed(_step_seed(seed, step))
            batch, batch_groups = _sample_batch(dataset, groups_files, pairs, crop, generator)
            if objective == "mixtures":
                others = _partner_crops(dataset, groups_files, batch_groups, crop, generator)
                batch = mix_crops(batch, others, centre, generator, mixing)
            embeddings = gram_embedding(net, batch.to(dev), layers)
            loss = supervised_info_nce(embeddings, batch_groups.to(dev), temperature)
            if objective == "spectra":
                loss = loss + 1 - pairwise_correlation(embeddings, band_spectra(batch).to(dev))
            if not torch.isfinite(loss):
                raise OptionError(f"training loss became {float(loss)} at step {step}; lower lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
            if callback is not None:
                callback(step, losses[-1])
            if ckpt is not None and (step % checkpoint_every == 0 or step == steps):
                _save_checkpoint(ckpt, net, optimizer, step, losses, settings)
    except KeyboardInterrupt:
        where = ""
        if ckpt is not None:
            _save_checkpoint(ckpt, net, optimizer, step, losses, settings)
            where = f"; state saved to {str(ckpt)!r}, continue with resume=True (--resume)"
        raise InterruptedRun(f"training interrupted at step {step}{where}") from None
    finally:
        bar.close()

    net.freeze()
    initial = ConvNdExtractor(config, seed=seed).to(dev)
    val_batch, val_groups, val_files = _validation_crops(dataset, crop, val_crops, seed)
    calibrate_scales(net, initial, _calibration_batch(dataset, crop, seed).to(dev))
    metrics: dict[str, Any] = {
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "loss_last10_mean": float(sum(losses[-10:]) / len(losses[-10:])) if losses else None,
    }
    if val_batch is not None:
        exclude = val_files if dataset.labelled else None
        mixed = _validation_mixtures(val_batch, val_groups, centre, mixing, seed)
        spectra = band_spectra(val_batch)
        for name, model in (("trained", net), ("random", initial)):
            clean = _embed(model, val_batch, layers, dev)
            metrics[f"val_nn_accuracy_{name}"] = nearest_neighbour_accuracy(clean, val_groups, exclude)
            metrics[f"val_spectra_corr_{name}"] = float(pairwise_correlation(clean, spectra))
            emb = _embed(model, mixed, layers, dev)
            metrics[f"val_mix_nn_accuracy_{name}"] = nearest_neighbour_accuracy(emb, val_groups, exclude)
        metrics.update(
            val_crops=int(val_batch.shape[0]),
            val_groups=len(dataset.groups),
            chance=_chance(val_groups, exclude),
            val_task="label of the nearest held-out crop of another file"
            if dataset.labelled
            else "source file of the nearest other held-out crop",
        )
    net = net.cpu()
    net.freeze()
    net.source = f"trained on {len(dataset.files)} {dataset.modality} file(s), seed {seed}"
    metrics["objective"] = objective
    metadata = _metadata(dataset, settings, metrics, steps)
    net.metadata = {**metadata, "architecture": "convnd"}
    return TrainResult(net, metrics, losses, metadata, step, time.perf_counter() - started)


# -- batches ---------------------------------------------------------------------------------------
def _step_seed(seed: int, step: int) -> int:
    return (seed * 1_000_003 + step * 7919 + 17) % (2**63 - 1)


def _files_by_group(dataset: TrainingData) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in dataset.groups]
    for i, item in enumerate(dataset.files):
        out[item.group].append(i)
    return out


def _sample_batch(
    dataset: TrainingData,
    groups_files: list[list[int]],
    pairs: int,
    crop: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``2 * pairs`` crops: two per chosen group (distinct groups while there are enough)."""
    n = len(groups_files)
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(math.ceil(pairs / n))])
    crops: list[torch.Tensor] = []
    groups: list[int] = []
    for group in order[:pairs].tolist():
        for _ in range(2):
            members = groups_files[group]
            index = members[int(torch.randint(len(members), (1,), generator=generator))]
            crops += random_crops(dataset.train_part(index), crop, 1, generator)
            groups.append(group)
    return torch.stack(crops), torch.tensor(groups)


def _partner_crops(
    dataset: TrainingData,
    groups_files: list[list[int]],
    groups: torch.Tensor,
    crop: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """For each crop, a crop of a random file of *another* group (to mix in)."""
    n = len(groups_files)
    crops: list[torch.Tensor] = []
    for group in groups.tolist():
        other = (group + 1 + int(torch.randint(n - 1, (1,), generator=generator))) % n
        members = groups_files[other]
        index = members[int(torch.randint(len(members), (1,), generator=generator))]
        crops += random_crops(dataset.train_part(index), crop, 1, generator)
    return torch.stack(crops)


def _validation_mixtures(
    batch: torch.Tensor, groups: torch.Tensor, centre: torch.Tensor, mixing: Mixing, seed: int
) -> torch.Tensor:
    """Held-out crops, each with a held-out crop of another group mixed in at ``max_mix``."""
    generator = torch.Generator().manual_seed(_step_seed(seed, -3) + 3)
    partners = []
    for i in range(len(batch)):
        candidates = torch.nonzero(groups != groups[i]).flatten()
        partners.append(int(candidates[int(torch.randint(len(candidates), (1,), generator=generator))]))
    return mix_crops(batch, batch[partners], centre, generator, mixing, fixed_mix=mixing.max_mix)


def _validation_crops(
    dataset: TrainingData, crop: int, per_file: int, seed: int
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(_step_seed(seed, -1) + 1)
    crops: list[torch.Tensor] = []
    groups: list[int] = []
    files: list[int] = []
    for i, item in enumerate(dataset.files):
        part = dataset.val_part(i)
        if part is None:
            return None, torch.empty(0), torch.empty(0)
        crops += random_crops(part, crop, per_file, generator)
        groups += [item.group] * per_file
        files += [i] * per_file
    return torch.stack(crops), torch.tensor(groups), torch.tensor(files)


def _calibration_batch(dataset: TrainingData, crop: int, seed: int, per_file: int = 2) -> torch.Tensor:
    generator = torch.Generator().manual_seed(_step_seed(seed, -2) + 2)
    crops: list[torch.Tensor] = []
    for i in range(min(len(dataset.files), 64)):
        crops += random_crops(dataset.train_part(i), crop, per_file, generator)
    return torch.stack(crops)


@torch.no_grad()
def _embed(
    model: ConvNdExtractor, batch: torch.Tensor, layers: list[str], dev: torch.device, chunk: int = 32
) -> torch.Tensor:
    stats = [
        gram_statistics(model, batch[i : i + chunk].to(dev), layers) for i in range(0, len(batch), chunk)
    ]
    return embed_set([torch.cat([s[k] for s in stats]).cpu() for k in range(len(layers))])


def _chance(groups: torch.Tensor, exclude: torch.Tensor | None) -> float:
    """Expected accuracy of a neighbour drawn uniformly from the allowed candidates."""
    total = 0.0
    for i in range(len(groups)):
        allowed = torch.ones(len(groups), dtype=torch.bool)
        allowed[i] = False
        if exclude is not None:
            allowed &= exclude != exclude[i]
        total += float((groups[allowed] == groups[i]).double().mean()) if allowed.any() else 0.0
    return total / len(groups)


# -- calibration -----------------------------------------------------------------------------------
@torch.no_grad()
def calibrate_scales(net: ConvNdExtractor, reference: ConvNdExtractor, batch: torch.Tensor) -> list[float]:
    """Rescale ``net``'s layers so each ReLU's mean square matches ``reference``'s on ``batch``.

    Scaling conv ``l`` by :math:`c_l / c_{l-1}` (weights) and :math:`c_l` (bias) multiplies the
    activations of layer ``l`` by exactly :math:`c_l` (ReLU and pooling are positively
    homogeneous), so the features keep their meaning (Gram embeddings are unchanged) while their
    scale matches a random network's, for which the extractor's default style weight is tuned.

    Returns:
        The factors :math:`c_l`.

    """
    relus = [n for n in net.layer_names if n.startswith("relu")]
    mine = net(batch, relus)
    theirs = reference(batch, relus)
    factors = [
        float((theirs[n].pow(2).mean() / mine[n].pow(2).mean().clamp_min(1e-20)).sqrt()) for n in relus
    ]
    previous = 1.0
    convs = [m for n, m in net.layers.items() if n.startswith("conv")]
    for conv, factor in zip(convs, factors, strict=True):
        weight, bias = conv.weight, conv.bias
        assert isinstance(weight, torch.Tensor)
        weight.mul_(factor / previous)
        if isinstance(bias, torch.Tensor):
            bias.mul_(factor)
        previous = factor
    return factors


# -- settings, metadata, checkpoints ----------------------------------------------------------------
def _settings(
    dataset: TrainingData,
    config: ConvNdConfig,
    crop: int,
    batch_size: int,
    seed: int,
    lr: float,
    temperature: float,
    val_fraction: float,
    objective: str = "files",
) -> dict[str, Any]:
    """Everything a checkpoint must agree with to be resumed (not ``steps``)."""
    return {
        "config": config.to_metadata(),
        "crop_size": crop,
        "batch_size": batch_size,
        "seed": seed,
        "lr": lr,
        "temperature": temperature,
        "val_fraction": val_fraction,
        "objective": OBJECTIVES[objective],
        "labelled": dataset.labelled,
        "groups": dataset.groups,
        "files": [[f.path.name, list(f.tensor.shape)] for f in dataset.files],
    }


def _metadata(
    dataset: TrainingData, settings: dict[str, Any], metrics: dict[str, Any], steps: int
) -> dict[str, Any]:
    representation = dataset.common_meta(("representation",)) or {
        "kind": f"tensor (C, *spatial) as read by ndstyle's {dataset.modality!r} reader"
    }
    meta: dict[str, Any] = {
        "modality": dataset.modality,
        "preprocessing": {
            "input_mean": list(settings["config"]["input_mean"]),
            "input_std": list(settings["config"]["input_std"]),
            "note": "per-channel standardisation computed from the training parts of the files",
        },
        "representation": representation,
        "training": {
            "data": dataset.summary(),
            "seed": settings["seed"],
            "steps": steps,
            "crop_size": settings["crop_size"],
            "batch_size": settings["batch_size"],
            "lr": settings["lr"],
            "temperature": settings["temperature"],
            "val_fraction": settings["val_fraction"],
            "objective": settings["objective"],
            "activation_scales": "calibrated to the random initialisation",
            "ndstyle_version": __version__,
        },
        "metrics": metrics,
    }
    sample_rate = dataset.common_meta(SAMPLE_RATE_KEYS)
    spacing = dataset.common_meta(SPACING_KEYS)
    if sample_rate is not None:
        meta["sample_rate"] = sample_rate
    if spacing is not None:
        meta["spacing"] = spacing
    return meta


def _optimizer_to(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(device)


def _save_checkpoint(
    path: Path,
    net: ConvNdExtractor,
    optimizer: torch.optim.Optimizer,
    step: int,
    losses: list[float],
    settings: dict[str, Any],
) -> None:
    """The training state in the one checkpoint format (:mod:`ndstyle.checkpoint`, no pickle)."""
    state = {
        "step": step,
        "losses": losses,
        "settings": settings,
        "model": dict(net.state_dict()),
        "optimizer": optimizer.state_dict(),
    }
    save_checkpoint(path, "training", state)


def _load_checkpoint(
    path: Path, net: ConvNdExtractor, optimizer: torch.optim.Optimizer, settings: dict[str, Any]
) -> tuple[int, list[float]]:
    try:
        saved = load_checkpoint(path, "training")
    except InputFileError as error:
        message = f"checkpoint {str(path)!r} is not an ndstyle training checkpoint ({error})"
        raise WeightsIntegrityError(message) from error
    expected = json.loads(json.dumps(settings, sort_keys=True))
    found = json.loads(json.dumps(saved.get("settings"), sort_keys=True))
    if found != expected:
        differ = sorted(k for k in expected if (found or {}).get(k) != expected[k])
        raise OptionError(
            f"checkpoint {str(path)!r} was made with other settings ({', '.join(differ)} differ); "
            f"use the same data and options, or delete it to start afresh"
        )
    net.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    return int(saved["step"]), [float(v) for v in saved["losses"]]


__all__ = ["OBJECTIVES", "TrainResult", "calibrate_scales", "train_extractor"]
