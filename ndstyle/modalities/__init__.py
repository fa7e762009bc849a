"""Modalities: which reader, writer and defaults serve a file, chosen by its extension."""

from __future__ import annotations

import importlib
from pathlib import Path

from .._checks import suggest
from ..errors import InputFileError, OptionError
from .base import Loaded, LoadedInput, Modality, Prepared

#: Modality name -> module defining ``MODALITY``. Missing modules are skipped.
MODALITY_MODULES = {
    "image": "ndstyle.modalities.image",
    "audio": "ndstyle.modalities.audio",
    "signal": "ndstyle.modalities.signal",
    "volume": "ndstyle.modalities.volume",
    "array": "ndstyle.modalities.array",
}


def all_modalities() -> dict[str, Modality]:
    """Every modality whose module is present, by name."""
    found: dict[str, Modality] = {}
    for name, module_name in MODALITY_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name == module_name:
                continue
            raise
        found[name] = module.MODALITY
    return found


def file_suffix(path: Path) -> str:
    """The extension that picks a modality (``.nii.gz`` counts as one), lower case."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def get_modality(name: str) -> Modality:
    """The modality called ``name`` (with a suggestion if unknown)."""
    modalities = all_modalities()
    if name not in modalities:
        raise OptionError(
            f"unknown modality {name!r}.{suggest(name, modalities)} Available: {', '.join(modalities)}"
        )
    return modalities[name]


def modality_for_path(path: str | Path, override: str | None = None) -> Modality:
    """The modality for ``path``: ``override`` if given, else from the file extension."""
    if override:
        return get_modality(override)
    suffix = file_suffix(Path(path))
    for modality in all_modalities().values():
        if suffix in modality.extensions:
            return modality
    known = sorted({e for m in all_modalities().values() for e in m.extensions})
    raise InputFileError(
        f"{str(path)!r}: unsupported file extension {suffix or '(none)'!r}; expected one of "
        f"{', '.join(known)} (or choose one with --modality)"
    )


_suffix = file_suffix

__all__ = [
    "Loaded",
    "LoadedInput",
    "Modality",
    "Prepared",
    "all_modalities",
    "file_suffix",
    "get_modality",
    "modality_for_path",
]
