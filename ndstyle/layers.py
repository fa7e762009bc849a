"""Layer types looked up by the number of spatial axes (one code path for 1, 2 and 3 dims)."""

from __future__ import annotations

from torch import nn

from ._checks import SUPPORTED_SPATIAL_DIMS, look_up_option
from .errors import OptionError

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL: dict[str, dict[int, type[nn.Module]]] = {
    "max": {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d},
    "avg": {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d},
}


def _check_dims(spatial_dims: int) -> int:
    if spatial_dims not in SUPPORTED_SPATIAL_DIMS:
        raise OptionError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def conv_type(spatial_dims: int) -> type[nn.Module]:
    """Return ``nn.Conv1d``, ``nn.Conv2d`` or ``nn.Conv3d``."""
    return _CONV[_check_dims(spatial_dims)]


def pool_type(kind: str, spatial_dims: int) -> type[nn.Module]:
    """Return the max- or average-pooling layer type for ``spatial_dims``."""
    return _POOL[look_up_option("pooling", kind, _POOL)][_check_dims(spatial_dims)]
