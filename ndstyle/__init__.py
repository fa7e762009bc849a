"""ndstyle: neural style transfer for 1-D signals, 2-D images and 3-D volumes, with one engine.

Importing ndstyle has no side effects: nothing is created, downloaded or registered globally.
"""

from __future__ import annotations

from .engine import StepInfo, StepRecord, StyleTransferResult, evaluate_costs, stylize
from .errors import NdstyleError
from .extractors import ConvNdExtractor, FeatureExtractor, build_extractor
from .functional import content_cost, gram_matrix, style_cost, total_variation

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``ndstyle.train_extractor``, ``ndstyle.TrainResult`` and ``ndstyle.batch``, imported on first use."""
    if name == "batch":
        from .batching import batch

        return batch
    if name in ("train_extractor", "TrainResult"):
        from . import training

        return getattr(training, name)
    raise AttributeError(f"module 'ndstyle' has no attribute {name!r}")


__all__ = [
    "ConvNdExtractor",
    "FeatureExtractor",
    "NdstyleError",
    "TrainResult",
    "StepInfo",
    "StepRecord",
    "StyleTransferResult",
    "__version__",
    "batch",
    "build_extractor",
    "content_cost",
    "evaluate_costs",
    "gram_matrix",
    "style_cost",
    "stylize",
    "total_variation",
    "train_extractor",
]
