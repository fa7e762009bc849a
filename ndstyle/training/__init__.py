"""Training ConvNd feature extractors on the user's own files (``ndstyle train``)."""

from __future__ import annotations

from .augment import Mixing, mix_crops
from .objectives import (
    band_spectra,
    embed_set,
    gram_embedding,
    gram_statistics,
    nearest_neighbour_accuracy,
    pairwise_correlation,
    supervised_info_nce,
)
from .train import OBJECTIVES, TrainResult, calibrate_scales, train_extractor

__all__ = [
    "OBJECTIVES",
    "Mixing",
    "TrainResult",
    "band_spectra",
    "calibrate_scales",
    "embed_set",
    "gram_embedding",
    "gram_statistics",
    "mix_crops",
    "nearest_neighbour_accuracy",
    "pairwise_correlation",
    "supervised_info_nce",
    "train_extractor",
]
