"""ndstyle: neural style transfer for 1-D signals, 2-D images and 3-D volumes, with one engine.

Importing ndstyle has no side effects: nothing is created, downloaded or registered globally, and
torch is imported only when something that needs it is first used.

File level: :func:`load`, :func:`save`, :func:`transfer` (the path ``ndstyle run`` takes) with
:class:`TransferOptions`; tensor level: :func:`stylize`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

#: Public name -> module that defines it (imported on first use).
_LAZY = {
    "load": "api",
    "save": "api",
    "transfer": "api",
    "describe": "api",
    "TransferResult": "api",
    "Loaded": "modalities.base",
    "TransferOptions": "options",
    "StepInfo": "engine",
    "StepRecord": "engine",
    "StyleTransferResult": "engine",
    "evaluate_costs": "engine",
    "stylize": "engine",
    "NdstyleError": "errors",
    "ConvNdExtractor": "extractors",
    "FeatureExtractor": "extractors",
    "build_extractor": "extractors",
    "content_cost": "functional",
    "gram_matrix": "functional",
    "style_cost": "functional",
    "total_variation": "functional",
    "train_extractor": "training",
    "TrainResult": "training",
    "batch": "batching",
}

if TYPE_CHECKING:  # pragma: no cover
    from .api import TransferResult, describe, load, save, transfer
    from .batching import batch
    from .engine import StepInfo, StepRecord, StyleTransferResult, evaluate_costs, stylize
    from .errors import NdstyleError
    from .extractors import ConvNdExtractor, FeatureExtractor, build_extractor
    from .functional import content_cost, gram_matrix, style_cost, total_variation
    from .modalities.base import Loaded
    from .options import TransferOptions
    from .training import TrainResult, train_extractor


def __getattr__(name: str) -> object:
    """Import the public names on first use (keeps ``import ndstyle`` and ``ndstyle --help`` fast)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ndstyle' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = [
    "ConvNdExtractor",
    "FeatureExtractor",
    "Loaded",
    "NdstyleError",
    "StepInfo",
    "StepRecord",
    "StyleTransferResult",
    "TrainResult",
    "TransferOptions",
    "TransferResult",
    "__version__",
    "batch",
    "build_extractor",
    "content_cost",
    "describe",
    "evaluate_costs",
    "gram_matrix",
    "load",
    "save",
    "style_cost",
    "stylize",
    "total_variation",
    "train_extractor",
    "transfer",
]
