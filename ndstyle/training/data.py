"""Training data: the user's files of one modality, read through the modality registry, cropped.

Every file is read with ``modality.load`` (the same reader as ``ndstyle run``), so the extractor is
trained on exactly the tensors ``(C, *spatial)`` it will see during a transfer. Each file is split
along its longest spatial axis into a training part and a held-out validation part, so validation
crops never overlap training crops.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputFileError, OptionError, ShapeError
from ..options import TransferOptions

#: Crop size per number of spatial axes when none is given (shrunk to fit small files).
DEFAULT_CROP_SIZE = {1: 2048, 2: 64, 3: 32}
#: Metadata keys that modalities use for the sampling rate and the voxel/pixel spacing.
SAMPLE_RATE_KEYS = ("sample_rate", "sampling_rate", "sr", "fs")
SPACING_KEYS = ("spacing", "voxel_spacing", "zooms", "pixel_spacing")


@dataclass
class TrainingFile:
    """One loaded file: its tensor ``(C, *spatial)``, metadata and group (file or label index)."""

    path: Path
    tensor: torch.Tensor
    meta: dict[str, Any]
    group: int
    label: str


@dataclass
class TrainingData:
    """Files of one modality with the same channel count and number of spatial axes.

    Attributes:
        files: the loaded files.
        modality: the modality's name.
        spatial_dims: 1, 2 or 3.
        in_channels: channels of every file.
        groups: names of the groups (file names, or labels from subfolders).
        labelled: whether groups come from subfolder labels.
        split_axis: per file, the spatial axis (0-based, within ``*spatial``) split into
            training and validation parts.
        split_index: per file, where the validation part starts along ``split_axis``.

    """

    files: list[TrainingFile]
    modality: str
    spatial_dims: int
    in_channels: int
    groups: list[str]
    labelled: bool
    split_axis: list[int] = field(default_factory=list)
    split_index: list[int] = field(default_factory=list)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std over the training parts of all files (float64 sums)."""
        total = torch.zeros(self.in_channels, dtype=torch.float64)
        squares = torch.zeros(self.in_channels, dtype=torch.float64)
        count = 0
        for i in range(len(self.files)):
            part = self.train_part(i).double().flatten(1)
            total += part.sum(1)
            squares += (part * part).sum(1)
            count += part.shape[1]
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(0.0)
        std = var.sqrt()
        std = torch.where(std > 1e-8 * (mean.abs() + 1.0), std, torch.ones_like(std))
        return tuple(float(v) for v in mean), tuple(float(v) for v in std)

    def train_part(self, index: int) -> torch.Tensor:
        """Training part of file ``index`` ``(C, *spatial')``."""
        tensor = self.files[index].tensor
        if not self.split_axis:
            return tensor
        return tensor.narrow(1 + self.split_axis[index], 0, self.split_index[index])

    def val_part(self, index: int) -> torch.Tensor | None:
        """Held-out part of file ``index``, or ``None`` without validation."""
        if not self.split_axis:
            return None
        tensor = self.files[index].tensor
        axis = 1 + self.split_axis[index]
        start = self.split_index[index]
        return tensor.narrow(axis, start, tensor.shape[axis] - start)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description stored in the weights file."""
        shapes = [list(f.tensor.shape) for f in self.files]
        sizes = [_file_size(f.path) for f in self.files]
        out: dict[str, Any] = {
            "files": len(self.files),
            "total_bytes": sum(sizes),
            "total_positions": sum(math.prod(s[1:]) for s in shapes),
            "shapes": shapes[:50],
            "names": [f.path.name for f in self.files][:50],
            "groups": self.groups,
            "labelled": self.labelled,
        }
        return out

    def common_meta(self, keys: Sequence[str]) -> Any:
        """The value of the first of ``keys`` present in the files' metadata, if all agree."""
        values = []
        for item in self.files:
            value = next((item.meta[k] for k in keys if k in item.meta), None)
            if value is None:
                return None
            values.append(_jsonable(value))
        return values[0] if all(v == values[0] for v in values) else {"varies": values[:20]}


def _file_size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def reader_options_for(modality: Any, options: dict[str, Any] | None = None) -> TransferOptions:
    """The modality's reader options (``options`` override its defaults)."""
    return TransferOptions.from_kwargs(**(options or {})).with_defaults(modality.defaults)


def find_files(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], modality: str | None
) -> tuple[list[Path], Path | None]:
    """Expand a folder (recursively) or a list of paths into files ndstyle can read.

    Returns:
        ``(files, root)``: sorted paths and the folder they came from (``None`` for a list).

    """
    from ..modalities import all_modalities, get_modality

    if isinstance(data, (str, os.PathLike)):
        root = Path(data)
        if root.is_file():
            return [root], None
        if not root.is_dir():
            raise InputFileError(f"training data {str(root)!r} does not exist")
        known = (
            get_modality(modality).extensions
            if modality
            else tuple(e for m in all_modalities().values() for e in m.extensions)
        )
        files = sorted(
            p
            for p in root.rglob("*")
            if p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and any(p.name.lower().endswith(e) for e in known)
        )
        if not files:
            raise InputFileError(
                f"training folder {str(root)!r} holds no files with a known extension "
                f"({', '.join(sorted(set(known)))})"
            )
        return files, root
    files = [Path(p) for p in data]
    if not files:
        raise InputFileError("no training files given")
    for path in files:
        if not path.is_file():
            raise InputFileError(f"training file {str(path)!r} does not exist or is not a file")
    return files, None


def _labels_for(files: list[Path], root: Path | None, labels: str | None) -> tuple[list[str], bool]:
    """Group name of each file: its subfolder (labels) or its own path (no labels)."""
    from .._checks import look_up_option

    if labels is not None:
        look_up_option("labels", labels, ("auto", "subfolders"))
    per_file = [str(p.relative_to(root)) if root is not None else str(p) for p in files]
    if labels is None:
        return per_file, False
    subfolders = [p.parent.relative_to(root).parts[0] if root and p.parent != root else None for p in files]
    usable = root is not None and all(s is not None for s in subfolders) and len(set(subfolders)) >= 2
    if labels == "subfolders" and not usable:
        where = repr(str(root)) if root is not None else "a list of files"
        raise OptionError(
            f"labels='subfolders' needs a folder whose files all lie in at least 2 subfolders "
            f"(one per label), got {where}"
        )
    if usable:
        return [str(s) for s in subfolders], True
    return per_file, False


def load_training_data(
    data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    spatial_dims: int | None = None,
    modality: str | None = None,
    labels: str | None = "auto",
    modality_options: dict[str, Any] | None = None,
) -> TrainingData:
    """Read every training file through its modality and check that they fit together.

    Args:
        data: a folder (searched recursively) or a list of files.
        spatial_dims: expected spatial axes (``None``: from the first file).
        modality: force a modality (``None``: from the extensions, which must agree).
        labels: ``"auto"`` (subfolder names when every file lies in one of >= 2 subfolders),
            ``"subfolders"`` (required) or ``None`` (each file is its own group).
        modality_options: reader options (the modality's ``ndstyle run`` options by dest name).

    Raises:
        InputFileError: no files, mixed modalities, unreadable files.
        ShapeError: files with different channel counts or numbers of spatial axes.

    """
    from ..modalities import modality_for_path

    paths, root = find_files(data, modality)
    chosen = {p: modality_for_path(p, modality) for p in paths}
    names = {m.name for m in chosen.values()}
    if len(names) > 1:
        examples = {m.name: str(p) for p, m in chosen.items()}
        raise InputFileError(
            "training files must all be of one modality, found "
            + ", ".join(f"{n} (e.g. {examples[n]!r})" for n in sorted(names))
            + "; pass modality= / --modality or separate the files"
        )
    mod = next(iter(chosen.values()))
    reader_options = reader_options_for(mod, modality_options)
    groups_per_file, labelled = _labels_for(paths, root, labels)
    group_names = sorted(set(groups_per_file)) if labelled else groups_per_file
    files: list[TrainingFile] = []
    for path, group_name in zip(paths, groups_per_file):
        loaded = mod.load(path, reader_options)
        tensor = loaded.tensor.detach().float().cpu()
        dims = tensor.ndim - 1
        if dims not in (1, 2, 3):
            raise ShapeError(f"{str(path)!r} loads as shape {tuple(tensor.shape)}: not (C, *spatial)")
        if files:
            first = files[0]
            if dims != first.tensor.ndim - 1:
                raise ShapeError(
                    f"training files must have the same number of spatial axes: {str(path)!r} has "
                    f"{dims} (shape {tuple(tensor.shape)}), {str(first.path)!r} has "
                    f"{first.tensor.ndim - 1} (shape {tuple(first.tensor.shape)})"
                )
            if tensor.shape[0] != first.tensor.shape[0]:
                raise ShapeError(
                    f"training files must have the same number of channels: {str(path)!r} has "
                    f"{tensor.shape[0]}, {str(first.path)!r} has {first.tensor.shape[0]}"
                )
        if not torch.isfinite(tensor).all():
            raise InputFileError(f"{str(path)!r} contains NaN or infinite values")
        group = group_names.index(group_name)
        files.append(TrainingFile(path, tensor, dict(loaded.meta), group, group_name))
    dims = files[0].tensor.ndim - 1
    if spatial_dims is not None and dims != spatial_dims:
        raise ShapeError(
            f"training files are {dims}-D ({str(files[0].path)!r} has shape "
            f"{tuple(files[0].tensor.shape)}), but spatial_dims={spatial_dims} was asked for"
        )
    if len(group_names) < 2:
        raise InputFileError(
            "training needs at least 2 files (or 2 labels): the objective tells crops of one file "
            f"from crops of others; got only {str(files[0].path)!r} (cut a long recording into "
            "several files)"
        )
    return TrainingData(files, mod.name, dims, int(files[0].tensor.shape[0]), group_names, labelled)


def split_for_validation(data: TrainingData, val_fraction: float, crop: int) -> None:
    """Hold out the last ``val_fraction`` of each file's longest axis (in place).

    Raises:
        OptionError: a part would be smaller than one crop.

    """
    if not 0.0 <= val_fraction < 1.0:
        raise OptionError(f"val_fraction must be in [0, 1), got {val_fraction}")
    data.split_axis, data.split_index = [], []
    if val_fraction == 0.0:
        return
    for item in data.files:
        spatial = list(item.tensor.shape[1:])
        axis = max(range(len(spatial)), key=lambda a: spatial[a])
        start = round(spatial[axis] * (1.0 - val_fraction))
        if start < crop or spatial[axis] - start < crop:
            raise OptionError(
                f"{str(item.path)!r} (spatial shape {tuple(spatial)}) is too small to hold out "
                f"{val_fraction:.0%} for validation with crops of {crop}: use a smaller crop_size "
                f"(--crop-size) or val_fraction=0"
            )
        data.split_axis.append(axis)
        data.split_index.append(start)


def auto_crop_size(data: TrainingData, val_fraction: float) -> int:
    """Largest crop up to :data:`DEFAULT_CROP_SIZE` that fits every file's parts."""
    limit = DEFAULT_CROP_SIZE[data.spatial_dims]
    for item in data.files:
        spatial = list(item.tensor.shape[1:])
        longest = max(spatial)
        for n in spatial:
            if n == longest and val_fraction > 0:
                n = min(round(n * (1 - val_fraction)), n - round(n * (1 - val_fraction)))
            limit = min(limit, n)
    return max(1, limit)


def check_crop_fits(data: TrainingData, crop: int) -> None:
    """Raise :class:`OptionError` naming the first file smaller than one crop on some axis."""
    for i, item in enumerate(data.files):
        shape = tuple(data.train_part(i).shape[1:])
        if min(shape) < crop:
            raise OptionError(
                f"{str(item.path)!r} (training part of spatial shape {shape}) is smaller than "
                f"crop_size={crop}; use a smaller --crop-size"
            )


def random_crops(part: torch.Tensor, crop: int, count: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``count`` random crops of ``crop`` per axis (or the whole axis when shorter) from ``part``."""
    out = []
    for _ in range(count):
        view = part
        for axis, n in enumerate(part.shape[1:], start=1):
            size = min(crop, n)
            start = int(torch.randint(0, n - size + 1, (1,), generator=generator))
            view = view.narrow(axis, start, size)
        out.append(view)
    return out
