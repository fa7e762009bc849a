"""Shared fixtures: small inputs for every number of spatial axes, an isolated cache."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

SPATIAL_DIMS = (1, 2, 3)
#: A small spatial shape per number of axes (kept tiny so the suite stays fast).
SMALL_SHAPES = {1: (256,), 2: (48, 48), 3: (20, 20, 20)}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's cache: NDSTYLE_HOME points to a fresh folder per test."""
    monkeypatch.setenv("NDSTYLE_HOME", str(tmp_path_factory.mktemp("ndstyle_home")))


def make_pair(spatial_dims: int, channels: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth ramp (content) and a periodic texture (style), ``(C, *spatial)`` in [0, 1]."""
    shape = SMALL_SHAPES[spatial_dims]
    axes = torch.meshgrid(*[torch.linspace(0, 1, n) for n in shape], indexing="ij")
    ramp = sum(axes) / spatial_dims
    texture = 0.5 + 0.5 * torch.sin(sum(a * 37.0 * (i + 1) for i, a in enumerate(axes)))
    generator = torch.Generator().manual_seed(seed)
    jitter = 0.02 * torch.rand((channels, *shape), generator=generator)
    return ramp.expand(channels, *shape) + jitter, texture.expand(channels, *shape).clone()
