"""Coarse-to-fine schedules over every spatial axis."""

from __future__ import annotations

from collections.abc import Sequence

from .errors import OptionError

#: Coarsest size (positions along the shortest spatial axis) the automatic pyramid goes down to.
AUTO_MIN_SIZE = 64
#: Most levels the automatic pyramid uses.
AUTO_MAX_LEVELS = 3


def scale_factors(
    scales: str | int | Sequence[float], shape: Sequence[int], min_size: int = 1
) -> list[float]:
    """Resolve a ``scales`` option into increasing factors ending with 1.0.

    Args:
        scales: ``"auto"`` (halvings while the shortest axis stays >= ``AUTO_MIN_SIZE`` and
            ``min_size``, at most ``AUTO_MAX_LEVELS`` levels), a number of levels (each half the
            next), or explicit factors in (0, 1].
        shape: the working spatial shape.
        min_size: smallest size per axis the extractor can take.

    """
    shortest = min(shape)
    if isinstance(scales, str):
        if scales != "auto":
            raise OptionError(f"scales must be 'auto', a number of levels or factors, got {scales!r}")
        floor = max(AUTO_MIN_SIZE, min_size)
        levels = 1
        while levels < AUTO_MAX_LEVELS and shortest / 2**levels >= floor:
            levels += 1
        return [1.0 / 2 ** (levels - 1 - i) for i in range(levels)]
    if isinstance(scales, int):
        if scales < 1:
            raise OptionError(f"scales (number of levels) must be >= 1, got {scales}")
        factors = [1.0 / 2 ** (scales - 1 - i) for i in range(scales)]
    else:
        factors = sorted(float(s) for s in scales)
        if not factors or factors[0] <= 0 or factors[-1] > 1:
            raise OptionError(f"scale factors must lie in (0, 1], got {list(scales)}")
        if factors[-1] != 1.0:
            factors.append(1.0)
    too_small = [f for f in factors if round(shortest * f) < min_size]
    if too_small:
        raise OptionError(
            f"scale {too_small[0]} makes the shortest axis {round(shortest * too_small[0])} "
            f"positions, below the extractor's minimum of {min_size}"
        )
    return factors


def scaled_shape(shape: Sequence[int], factor: float, min_size: int = 1) -> tuple[int, ...]:
    """``shape`` times ``factor`` per axis, rounded, at least ``min_size`` (or the axis if smaller)."""
    return tuple(max(min(n, min_size), round(n * factor)) for n in shape)
