"""Feature extractors: one interface (:class:`FeatureExtractor`) for 1, 2 and 3 spatial axes.

Extractors are chosen by name or by weights file through :func:`build_extractor`. Modules that add
extractors (pretrained VGG, slice-wise and inflated adapters, spectral front ends) register a
builder with :func:`register_extractor`, and loaders for their weights-file architectures with
:func:`register_weights_loader`; losses never know where features came from.
"""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._checks import suggest
from ..errors import OptionError
from ..weights import load_weights
from .base import FeatureExtractor
from .convnd import ConvNdConfig, ConvNdExtractor, check_weights_fit

#: A builder takes ``spatial_dims``, ``in_channels`` and keyword options.
ExtractorBuilder = Callable[..., FeatureExtractor]

_BUILDERS: dict[str, ExtractorBuilder] = {}
_WEIGHTS_LOADERS: dict[str, Callable[..., FeatureExtractor]] = {}
#: Modules imported on first look-up, so that registering extractors costs nothing at import.
_PLUGIN_MODULES = (
    "ndstyle.extractors.vgg",
    "ndstyle.extractors.volume",
    "ndstyle.extractors.spectral",
    "ndstyle.extractors.ecg",
)


def register_extractor(name: str, builder: ExtractorBuilder) -> ExtractorBuilder:
    """Make ``builder`` available as ``build_extractor(name, ...)`` and ``--extractor name``."""
    _BUILDERS[name] = builder
    return builder


def register_weights_loader(architecture: str, loader: Callable[..., FeatureExtractor]) -> None:
    """Load weights files whose metadata says ``architecture`` with ``loader(path, meta, ...)``."""
    _WEIGHTS_LOADERS[architecture] = loader


def _load_plugins() -> None:
    for module in _PLUGIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def available_extractors() -> list[str]:
    """Names accepted by :func:`build_extractor` (besides weights-file paths)."""
    _load_plugins()
    return sorted(_BUILDERS)


def _random_convnd(spatial_dims: int, in_channels: int, *, seed: int = 0, **options: Any) -> FeatureExtractor:
    return ConvNdExtractor.random(spatial_dims, in_channels, seed=seed, **options)


register_extractor("random", _random_convnd)
register_extractor("convnd", _random_convnd)


def _load_convnd(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    *,
    spatial_dims: int | None,
    in_channels: int | None,
    **_: Any,
) -> FeatureExtractor:
    return ConvNdExtractor.from_file(path, spatial_dims=spatial_dims, in_channels=in_channels)


register_weights_loader("convnd", _load_convnd)


#: Extractors built by name or weights file, kept per process once :func:`cache_extractors` is called.
_CACHE: OrderedDict[str, FeatureExtractor] | None = None
_CACHE_SIZE = 4
_CACHE_COUNTS = {"built": 0, "reused": 0}


def cache_extractors(size: int = 4) -> None:
    """Keep up to ``size`` extractors built by name or weights file in this process.

    Batch workers call this so that weights are loaded once per worker, not once per file: a
    later :func:`build_extractor` with the same name (or unchanged weights file), dims, channels
    and options returns the same frozen extractor. ``size=0`` turns the cache off.
    """
    global _CACHE, _CACHE_SIZE
    _CACHE, _CACHE_SIZE = (OrderedDict() if size > 0 else None), size
    _CACHE_COUNTS.update(built=0, reused=0)


def extractor_cache_info() -> dict[str, int]:
    """``{"built": n, "reused": m, "size": k}`` of this process's extractor cache."""
    return {**_CACHE_COUNTS, "size": len(_CACHE) if _CACHE is not None else 0}


def _cache_key(spec: Any, spatial_dims: int, in_channels: int, options: dict[str, Any]) -> str:
    stamp = ""
    if spec is not None and is_weights_path(spec):
        try:
            stat = Path(spec).stat()
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "missing"
    return repr((os.fspath(spec) if spec is not None else None, stamp, spatial_dims, in_channels,
                 sorted((k, repr(v)) for k, v in options.items())))  # fmt: skip


def is_weights_path(spec: str | os.PathLike[str]) -> bool:
    """Whether ``spec`` names a weights file rather than a registered extractor."""
    text = os.fspath(spec)
    return text.endswith((".safetensors", ".pth", ".pt", ".onnx")) or os.sep in text


def build_extractor(
    spec: str | os.PathLike[str] | FeatureExtractor | None,
    *,
    spatial_dims: int,
    in_channels: int,
    **options: Any,
) -> FeatureExtractor:
    """Return a frozen extractor for inputs with ``spatial_dims`` axes and ``in_channels``.

    Args:
        spec: an extractor (returned as is, after checking it fits), a registered name
            (``"random"``, ``"vgg19"``...), a path to an ndstyle ``.safetensors`` weights file, or
            ``None`` for a seeded random :class:`ConvNdExtractor`.
        spatial_dims: spatial axes of the inputs.
        in_channels: channels of the inputs.
        **options: passed to the builder (e.g. ``seed``, ``widths``); ``modality`` (the input's
            modality name) is used to refuse weights files trained on another modality.

    Raises:
        OptionError: unknown name (with a suggestion).
        WeightsIntegrityError: a weights file made for other dims/channels/modality, or corrupt.
        WeightsNotFoundError: a weights path that does not exist.

    """
    if _CACHE is not None and not isinstance(spec, FeatureExtractor):
        key = _cache_key(spec, spatial_dims, in_channels, options)
        if key in _CACHE:
            _CACHE.move_to_end(key)
            _CACHE_COUNTS["reused"] += 1
            return _CACHE[key]
        built = _build(spec, spatial_dims=spatial_dims, in_channels=in_channels, **options)
        _CACHE_COUNTS["built"] += 1
        _CACHE[key] = built
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return built
    return _build(spec, spatial_dims=spatial_dims, in_channels=in_channels, **options)


def _build(
    spec: str | os.PathLike[str] | FeatureExtractor | None,
    *,
    spatial_dims: int,
    in_channels: int,
    **options: Any,
) -> FeatureExtractor:
    modality = options.pop("modality", None)
    if isinstance(spec, FeatureExtractor):
        extractor = spec
    elif spec is None:
        extractor = _random_convnd(spatial_dims, in_channels, **options)
    elif is_weights_path(spec):
        path = Path(spec)
        _, meta = load_weights(path)
        architecture = str(meta.get("architecture"))
        _load_plugins()
        if architecture not in _WEIGHTS_LOADERS:
            raise OptionError(f"weights file {str(path)!r} holds an unknown architecture {architecture!r}")
        check_weights_fit(path, meta, spatial_dims, in_channels, modality)
        extractor = _WEIGHTS_LOADERS[architecture](
            path, meta, spatial_dims=spatial_dims, in_channels=in_channels, **options
        )
    else:
        name = str(spec)
        _load_plugins()
        if name not in _BUILDERS:
            raise OptionError(
                f"unknown extractor {name!r}.{suggest(name, _BUILDERS)} Available: "
                f"{', '.join(sorted(_BUILDERS))}, or the path of a .safetensors weights file"
            )
        extractor = _BUILDERS[name](spatial_dims=spatial_dims, in_channels=in_channels, **options)
    if extractor.spatial_dims != spatial_dims:
        raise OptionError(
            f"extractor {extractor.describe()} takes {extractor.spatial_dims}-D inputs, but the "
            f"input has {spatial_dims} spatial axes"
        )
    if extractor.in_channels != in_channels:
        raise OptionError(
            f"extractor {extractor.describe()} takes {extractor.in_channels} channel(s), but the "
            f"input has {in_channels}"
        )
    return extractor.freeze()


__all__ = [
    "ConvNdConfig",
    "ConvNdExtractor",
    "FeatureExtractor",
    "available_extractors",
    "build_extractor",
    "cache_extractors",
    "extractor_cache_info",
    "register_extractor",
    "register_weights_loader",
]
