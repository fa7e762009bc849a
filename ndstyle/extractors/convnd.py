"""A configurable VGG-like ConvNd feature extractor for 1, 2 or 3 spatial axes.

With seeded random weights it is already a working texture model (Ustyuzhaninov et al. 2016;
Ulyanov & Lebedev 2016); with trained weights (``ndstyle train``) it captures what matters in the
user's data. Layer names follow VGG: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .._checks import ensure_tuple_rep, look_up_option
from ..errors import OptionError, WeightsIntegrityError
from ..layers import conv_type, pool_type
from ..weights import load_weights, save_weights
from .base import FeatureExtractor


@dataclass(frozen=True)
class ConvNdConfig:
    """Architecture of a :class:`ConvNdExtractor` (stored in weights files as metadata).

    Attributes:
        spatial_dims: 1, 2 or 3.
        in_channels: input channels.
        widths: output channels of each block.
        convs_per_block: convolutions in each block (an int applies to all blocks).
        kernel_size: kernel size of every convolution (odd; per axis is not needed here).
        dilations: dilation of each block (an int applies to all blocks); dilations widen the
            receptive field of 1-D extractors without pooling.
        pooling: ``"avg"``, ``"max"`` or ``"none"`` between blocks (factor ``pool_size``).
        pool_size: pooling factor per axis.
        input_mean: per-channel mean subtracted before the first layer.
        input_std: per-channel std the input is divided by.

    """

    spatial_dims: int
    in_channels: int
    widths: tuple[int, ...] = (32, 64, 128, 256)
    convs_per_block: tuple[int, ...] | int = 2
    kernel_size: int = 3
    dilations: tuple[int, ...] | int = 1
    pooling: str = "avg"
    pool_size: int = 2
    input_mean: tuple[float, ...] = field(default=())
    input_std: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.spatial_dims not in (1, 2, 3):
            raise OptionError(f"spatial_dims must be 1, 2 or 3, got {self.spatial_dims!r}")
        if self.in_channels < 1:
            raise OptionError(f"in_channels must be >= 1, got {self.in_channels}")
        if not self.widths or min(self.widths) < 1:
            raise OptionError(f"widths must be positive channel counts, got {self.widths}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise OptionError(f"kernel_size must be odd and >= 1, got {self.kernel_size}")
        look_up_option("pooling", self.pooling, ("avg", "max", "none"))
        for name in ("input_mean", "input_std"):
            value = getattr(self, name)
            if value and len(value) != self.in_channels:
                raise OptionError(f"{name} needs {self.in_channels} values, got {len(value)}")

    @property
    def blocks(self) -> list[tuple[int, int, int]]:
        """``(width, n_convs, dilation)`` for each block."""
        n = len(self.widths)
        convs = ensure_tuple_rep(self.convs_per_block, n, "convs_per_block")
        dilations = ensure_tuple_rep(self.dilations, n, "dilations")
        return list(zip(self.widths, convs, dilations, strict=True))

    def to_metadata(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return asdict(self)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any]) -> ConvNdConfig:
        """Inverse of :meth:`to_metadata` (lists become tuples; unknown keys are ignored)."""
        names = {f for f in cls.__dataclass_fields__}
        kwargs: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in meta.items() if k in names
        }
        return cls(**kwargs)


class ConvNdExtractor(FeatureExtractor):
    """VGG-like stack of ConvNd blocks with seeded random or loaded weights.

    Args:
        config: the architecture, or ``None`` to build one from ``spatial_dims``/``in_channels``
            and ``**overrides``.
        seed: seed of the random weights (He-normal, zero bias), reproducible on any device.

    Examples:
        >>> net = ConvNdExtractor.random(spatial_dims=3, in_channels=1, widths=(8, 16))
        >>> feats = net(torch.rand(1, 1, 16, 16, 16), ["relu2_1"])
        >>> tuple(feats["relu2_1"].shape)
        (1, 16, 8, 8, 8)

    """

    input_mean: torch.Tensor
    input_std: torch.Tensor
    metadata: dict[str, Any]

    def __init__(self, config: ConvNdConfig, *, seed: int | None = 0) -> None:
        self.config = config
        self.seed = seed
        super().__init__(config.spatial_dims, config.in_channels, self._build(config))
        if seed is not None:
            self.reset_random(seed)
        mean = torch.tensor(config.input_mean or (0.0,) * config.in_channels)
        std = torch.tensor(config.input_std or (1.0,) * config.in_channels)
        shape = (1, config.in_channels) + (1,) * config.spatial_dims
        self.register_buffer("input_mean", mean.reshape(shape), persistent=False)
        self.register_buffer("input_std", std.reshape(shape), persistent=False)
        names = self.layer_names
        relus = [n for n in names if n.startswith("relu")]
        firsts = [n for n in relus if n.endswith("_1")]
        self.default_style_layers = {n: 1.0 / len(firsts) for n in firsts}
        self.default_content_layers = (
            (relus[min(len(relus) - 1, 2 * len(firsts) - 3)],) if len(firsts) > 1 else (relus[-1],)
        )
        self.source = "random" if seed is not None else "weights"
        self.metadata = {}
        self.freeze()

    @classmethod
    def random(cls, spatial_dims: int, in_channels: int, *, seed: int = 0, **config: Any) -> ConvNdExtractor:
        """Build an extractor with seeded random weights."""
        return cls(ConvNdConfig(spatial_dims=spatial_dims, in_channels=in_channels, **config), seed=seed)

    @staticmethod
    def _build(config: ConvNdConfig) -> list[tuple[str, nn.Module]]:
        conv = conv_type(config.spatial_dims)
        layers: list[tuple[str, nn.Module]] = []
        channels = config.in_channels
        for block, (width, n_convs, dilation) in enumerate(config.blocks, start=1):
            if block > 1 and config.pooling != "none":
                pool = pool_type(config.pooling, config.spatial_dims)
                layers.append((f"pool{block - 1}", pool(config.pool_size)))
            for i in range(1, n_convs + 1):
                padding = dilation * (config.kernel_size // 2)
                layers.append(
                    (
                        f"conv{block}_{i}",
                        conv(
                            channels,
                            width,
                            config.kernel_size,
                            padding=padding,
                            dilation=dilation,
                            padding_mode="reflect" if padding else "zeros",
                        ),
                    )
                )
                layers.append((f"relu{block}_{i}", nn.ReLU()))
                channels = width
        return layers

    def reset_random(self, seed: int) -> None:
        """Draw He-normal weights and zero biases from a generator seeded with ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        for module in self.layers.values():
            if isinstance(module, nn.modules.conv._ConvNd):
                fan_in = module.weight[0].numel()
                weight = torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5
                with torch.no_grad():
                    module.weight.copy_(weight)
                    if module.bias is not None:
                        module.bias.zero_()

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise with the configured per-channel mean and std."""
        return (x - self.input_mean.to(x.dtype)) / self.input_std.to(x.dtype)

    def min_input_size(self, layers: Sequence[str]) -> int:
        """Inputs must survive the poolings, and each reflect padding needs more positions than it pads."""
        deepest = max(self.layer_names.index(name) for name in layers)
        factor, needed = 1, 1
        for name in self.layer_names[: deepest + 1]:
            module = self.layers[name]
            if name.startswith("pool"):
                factor *= self.config.pool_size
                needed = max(needed, factor)
            elif isinstance(module, nn.modules.conv._ConvNd):
                padding = module.padding[0] if isinstance(module.padding, tuple) else 0
                needed = max(needed, factor * (int(padding) + 1))
        return needed

    def describe(self) -> str:
        """One line: architecture and where the weights come from."""
        c = self.config
        origin = f"random weights, seed {self.seed}" if self.source == "random" else self.source
        return (
            f"ConvNdExtractor({c.spatial_dims}-D, in={c.in_channels}, widths={list(c.widths)}, "
            f"kernel={c.kernel_size}, pooling={c.pooling}; {origin})"
        )

    # -- weights files ---------------------------------------------------------------------------
    def save(
        self,
        path: str | os.PathLike[str],
        *,
        extra_metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
    ) -> str:
        """Save weights and architecture to a safetensors file; return its SHA-256."""
        meta: dict[str, Any] = {
            "architecture": "convnd",
            "config": self.config.to_metadata(),
            "spatial_dims": self.spatial_dims,
            "in_channels": self.in_channels,
            "layers": list(self.layer_names),
        }
        meta.update(extra_metadata or {})
        state = {k: v for k, v in self.state_dict().items()}
        return save_weights(path, state, meta, overwrite=overwrite)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        spatial_dims: int | None = None,
        in_channels: int | None = None,
        expected_sha256: str | None = None,
    ) -> ConvNdExtractor:
        """Load an extractor saved by :meth:`save`, checking dims and channels if given."""
        tensors, meta = load_weights(path, expected_sha256=expected_sha256)
        if meta.get("architecture") != "convnd":
            raise WeightsIntegrityError(
                f"weights file {str(path)!r} holds a {meta.get('architecture')!r} network, "
                f"not a ConvNd extractor"
            )
        check_weights_fit(path, meta, spatial_dims, in_channels)
        net = cls(_checked_config(path, meta, tensors), seed=None)
        try:
            net.load_state_dict(tensors, strict=True)
        except RuntimeError as error:
            raise WeightsIntegrityError(
                f"weights file {str(path)!r} does not match its own architecture: {error}"
            ) from error
        net.metadata = meta
        net.source = f"weights {os.fspath(path)}"
        return net.freeze()  # type: ignore[return-value]


def _checked_config(
    path: str | os.PathLike[str], meta: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> ConvNdConfig:
    """The architecture in ``meta``, refused unless the file's tensors have exactly its shapes.

    The network is first built on the ``meta`` device (no memory), so absurd widths in a
    malformed file are refused instead of being allocated.
    """
    where = f"weights file {os.fspath(path)!r}"
    config = meta.get("config")
    if not isinstance(config, dict):
        raise WeightsIntegrityError(f"{where} has no architecture ('config') in its metadata")
    try:
        parsed = ConvNdConfig.from_metadata(config)
        with torch.device("meta"):
            skeleton = ConvNdExtractor(parsed, seed=None)
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError) as error:
        raise WeightsIntegrityError(
            f"{where} has an invalid architecture in its metadata ({error})"
        ) from error
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in tensors.items()}
    if expected != got:
        key = next(k for k in sorted(set(expected) | set(got)) if expected.get(k) != got.get(k))
        raise WeightsIntegrityError(
            f"{where} does not match its own architecture: {key} is {got.get(key, 'missing')} in the file, "
            f"{expected.get(key, 'absent')} in its metadata"
        )
    return parsed


def check_weights_fit(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    spatial_dims: int | None,
    in_channels: int | None,
    modality: str | None = None,
) -> None:
    """Refuse weights made for other dims, channels or modality, naming the file and both sides.

    Args:
        path: the weights file (for the message).
        meta: its metadata.
        spatial_dims: spatial axes of the input, if known.
        in_channels: channels of the input, if known.
        modality: the input's modality, if known. Weights trained on another modality are
            refused unless either side is the generic ``"array"`` modality.

    Raises:
        WeightsIntegrityError: with one line naming the file, what it was made for and what came.

    """
    made = meta.get("modality")
    trained_on = (
        f"{meta.get('spatial_dims')}-D {made!r} data with {meta.get('in_channels')} channel(s)"
        if made
        else f"{meta.get('spatial_dims')}-D inputs with {meta.get('in_channels')} channel(s)"
    )
    given = [f"{spatial_dims}-D" if spatial_dims is not None else ""]
    given.append(f"{modality!r} data" if modality else "")
    given.append(f"with {in_channels} channel(s)" if in_channels is not None else "")
    this = " ".join(g for g in given if g)
    if spatial_dims is not None and meta.get("spatial_dims") != spatial_dims:
        raise WeightsIntegrityError(
            f"weights file {str(path)!r} was made for {trained_on}, but the input is {this}: "
            f"wrong number of spatial axes; train an extractor on data like this input"
        )
    if in_channels is not None and meta.get("in_channels") != in_channels:
        raise WeightsIntegrityError(
            f"weights file {str(path)!r} was made for {trained_on}, but the input is {this}: "
            f"wrong number of channels; train an extractor on data like this input"
        )
    if modality and made and modality != made and "array" not in (modality, made):
        raise WeightsIntegrityError(
            f"weights file {str(path)!r} was made for {trained_on}, but the input is {this}: "
            f"wrong modality; train an extractor on {modality!r} data"
        )
