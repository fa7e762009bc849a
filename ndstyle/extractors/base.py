"""The one interface every feature extractor implements, whatever its number of dimensions."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import nn

from .._checks import spatial_dims_of, suggest
from ..errors import OptionError, ShapeError


class FeatureExtractor(nn.Module):
    r"""A frozen network that maps inputs ``(B, C, *spatial)`` to named activations.

    Subclasses fill :attr:`layers` (an ordered mapping of names such as ``conv1_1``/``relu1_1`` to
    modules, applied in sequence) or override :meth:`forward`. Parameters never require gradients:
    during a transfer only the input is optimised.

    Attributes:
        spatial_dims: number of spatial axes of the input (1, 2 or 3).
        in_channels: channels of the input, *before* :meth:`preprocess`.
        default_content_layers: layers used for the content cost when none are given.
        default_style_layers: layers used for the style cost when none are given, with weights.
        value_range: the natural ``(low, high)`` range of inputs, or ``None`` if unbounded.
        default_style_weight: the style weight :math:`\beta` that balances the content weight 1
            for this extractor's feature scale.
        default_precision: what ``precision="auto"`` picks where the device computes bfloat16
            natively: ``"bf16"`` only for extractors whose results were checked to be as good in
            bf16 as in fp32 (``docs/benchmarks.md``), else ``"fp32"``.

    """

    spatial_dims: int
    in_channels: int
    default_content_layers: tuple[str, ...] = ()
    default_style_layers: Mapping[str, float] = {}
    value_range: tuple[float, float] | None = None
    default_style_weight: float = 100.0
    #: The strength (:func:`ndstyle.losses.calibrate_weights`) used when neither a style weight nor a
    #: strength is given; ``None`` uses :attr:`default_style_weight` instead (extractors whose
    #: weight was measured on their field's data, e.g. the ECG and spectral front ends).
    default_strength: float | None = 0.75
    #: The convergence tolerance of :func:`ndstyle.stylize` when none is given (``0``: every step),
    #: set where it was measured on the extractor's field (VGG: ``1e-3``, docs/benchmarks.md).
    default_tol: float = 0.0
    default_precision: str = "fp32"

    def __init__(
        self, spatial_dims: int, in_channels: int, layers: Iterable[tuple[str, nn.Module]] = ()
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        self.layers = nn.ModuleDict(OrderedDict(layers))

    # -- interface -------------------------------------------------------------------------------
    @property
    def layer_names(self) -> tuple[str, ...]:
        """All layer names, in forward order."""
        return tuple(self.layers.keys())

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Map an input in its natural range to what the network expects (identity by default)."""
        return x

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Return ``{name: activation}`` for ``layers``, running only up to the deepest of them.

        Args:
            x: input ``(B, in_channels, *spatial)`` in its natural range.
            layers: names from :attr:`layer_names`.

        Returns:
            Activations ``(B, C_l, *spatial_l)`` keyed by layer name.

        """
        self.check_input(x)
        wanted = set(self.check_layers(layers))
        out: dict[str, torch.Tensor] = {}
        h = self.preprocess(x)
        for name, module in self.layers.items():
            h = module(h)
            if name in wanted:
                out[name] = h
                if len(out) == len(wanted):
                    break
        return out

    # -- validation ------------------------------------------------------------------------------
    def check_layers(self, layers: Iterable[str]) -> list[str]:
        """Return ``layers`` as a list, raising :class:`OptionError` for unknown names."""
        names = list(layers)
        known = self.layer_names
        for name in names:
            if name not in known:
                raise OptionError(
                    f"layer {name!r} is not part of {type(self).__name__}.{suggest(name, known)} "
                    f"Available layers: {', '.join(known)}"
                )
        return names

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`ShapeError` unless ``x`` is ``(B, in_channels, *spatial)`` of our dims."""
        dims = spatial_dims_of(x, "input")
        if dims != self.spatial_dims:
            raise ShapeError(
                f"{type(self).__name__} takes inputs with {self.spatial_dims} spatial axes, "
                f"got {dims} (input shape {tuple(x.shape)})"
            )
        if x.shape[1] != self.in_channels:
            raise ShapeError(
                f"{type(self).__name__} takes {self.in_channels} input channel(s), got "
                f"{x.shape[1]} (input shape {tuple(x.shape)})"
            )

    def freeze(self) -> FeatureExtractor:
        """Put the extractor in eval mode and stop gradients to its parameters; return it."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def min_input_size(self, layers: Sequence[str]) -> int:
        """Smallest size per spatial axis for which ``layers`` are still at least 1 position."""
        return 1

    def describe(self) -> str:
        """One line that says what this extractor is (shown by the CLI)."""
        return f"{type(self).__name__}(spatial_dims={self.spatial_dims}, in_channels={self.in_channels})"
