"""Extractors for 3-D volumes: random Conv3d, 2.5-D slices of a 2-D net, and a 2-D net inflated to 3-D.

Registered names (``build_extractor(name, spatial_dims=3, in_channels=C)``, ``--extractor name``):

- ``conv3d``: a seeded random :class:`ConvNdExtractor` with widths sized for CPUs.
- ``slices``: :class:`SliceExtractor`, a 2-D extractor applied to the slices along each axis.
  Its layer names are ``"{axis}/{layer}"`` with axis ``axial``, ``coronal``, ``sagittal`` (the
  slices across the third, second and first array axes) or ``all`` (every slice across the third
  axis, never subsampled; used for the content cost). The slices of one axis are folded into the
  batch, so a layer's activation is ``(B * n_slices, C_l, h, w)``: the engine's Gram is then per
  slice and its style cost averages over slices, i.e. every slice is asked to have the style's
  statistics. A depth-1 input ``(B, C, 1, H, W)`` (a 2-D image used as a style) is the same image
  for every axis, which makes a 2-D exemplar the style of a volume (a solid texture).
- ``inflated-vgg``: :func:`inflate`, a 2-D extractor whose ``k x k`` kernels are repeated over a
  new depth axis and divided by ``k`` (Carreira & Zisserman 2017), pooling made 3-D; same names.

The 2-D network is ``build_extractor("auto", spatial_dims=2, in_channels=3)`` (pretrained VGG
when available) unless one is passed with ``base=``; grey volumes are repeated to 3 channels.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..errors import OptionError
from ..memory import LBFGS_HISTORY, format_size, memory_limit
from ..memory import estimate_memory as _estimate
from . import build_extractor, register_extractor
from .base import FeatureExtractor
from .convnd import ConvNdExtractor

#: Axis name -> index of the spatial axis the slices are taken across.
SLICE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}
#: Widths of the default random 3-D extractor (small enough for a 128^3 volume on a CPU).
CONV3D_WIDTHS = (16, 32, 64, 128)


def default_2d_extractor(**options: Any) -> FeatureExtractor:
    """The pretrained 2-D network (``"auto"``), with a clear error if none is installed."""
    try:
        return build_extractor("auto", spatial_dims=2, in_channels=3, **options)
    except OptionError as error:
        raise OptionError(
            f"the 2.5-D and inflated volume extractors need a 2-D extractor ('auto' VGG): {error}"
        ) from error


def _channel_adapter(in_channels: int, base_channels: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if in_channels == base_channels:
        return lambda x: x
    if in_channels == 1:
        return lambda x: x.expand(x.shape[0], base_channels, *x.shape[2:])
    raise OptionError(
        f"the 2-D extractor takes {base_channels} channel(s); volumes with {in_channels} channels "
        f"need a 2-D extractor with as many (grey volumes are repeated to {base_channels})"
    )


def _fold(x: torch.Tensor, axis: int) -> torch.Tensor:
    """``(B, C, X, Y, Z)`` -> ``(B * n, C, h, w)``: slices across spatial ``axis`` in the batch."""
    moved = x.movedim(2 + axis, 1)  # (B, n, C, h, w)
    return moved.reshape(-1, x.shape[1], *moved.shape[3:])


class SliceExtractor(FeatureExtractor):
    """2.5-D: a 2-D extractor on the slices along each axis (see module docstring for names).

    Args:
        base: a 2-D :class:`FeatureExtractor`.
        in_channels: channels of the volumes (1 is repeated to ``base.in_channels``).
        axes: slice orientations used for the style (default: all three).
        slices_per_step: at most this many slices per axis and call, drawn at random from a
            generator seeded with ``seed`` (``None``: all slices). ``all/...`` layers never sample.
        seed: seed of the slice sampling.

    """

    slice_axes: tuple[str, ...]

    def __init__(
        self,
        base: FeatureExtractor,
        in_channels: int = 1,
        *,
        axes: Sequence[str] = ("axial", "coronal", "sagittal"),
        slices_per_step: int | None = None,
        seed: int = 0,
    ) -> None:
        if base.spatial_dims != 2:
            raise OptionError(f"the slices extractor needs a 2-D extractor, got {base.describe()}")
        super().__init__(3, in_channels)
        self.base = base
        self._adapt = _channel_adapter(in_channels, base.in_channels)
        self.slice_axes = tuple(axes)
        for axis in self.slice_axes:
            if axis not in SLICE_AXES:
                raise OptionError(f"unknown slice axis {axis!r}; expected {', '.join(SLICE_AXES)}")
        self.slices_per_step = slices_per_step
        self.generator = torch.Generator().manual_seed(seed)
        #: per slice group (``"all"`` or an axis): the slices picked by the last :meth:`forward`
        #: (``None``: all of them), so that :meth:`fold_mask` folds a mask the same way
        self._picks: dict[str, torch.Tensor | None] = {}
        self._flat: int | None = None
        self.value_range = base.value_range
        self.default_style_weight = base.default_style_weight
        self.default_precision = base.default_precision
        self.default_content_layers = tuple(f"all/{n}" for n in base.default_content_layers)
        per_axis = len(self.slice_axes)
        self.default_style_layers = {
            f"{axis}/{n}": w / per_axis
            for axis in self.slice_axes
            for n, w in base.default_style_layers.items()
        }

    @property
    def layer_names(self) -> tuple[str, ...]:
        """``{all,axial,coronal,sagittal}/{2-D layer}``."""
        return tuple(f"{a}/{n}" for a in ("all", *SLICE_AXES) for n in self.base.layer_names)

    def forward(self, x: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations ``(B * n_slices, C_l, h, w)`` per ``"{axis}/{layer}"``."""
        self.check_input(x)
        wanted = self.check_layers(layers)
        x = self._adapt(x)
        groups: dict[str, list[str]] = {}
        for name in wanted:
            axis, layer = name.split("/", 1)
            groups.setdefault(axis, []).append(layer)
        flat = [d for d in range(3) if x.shape[2 + d] == 1]
        self._flat = flat[0] if flat else None
        out: dict[str, torch.Tensor] = {}
        for axis, names in groups.items():
            self._picks[axis] = None
            if flat:  # a 2-D image as a depth-1 volume: the same image for every axis
                slices = _fold(x, flat[0])
            else:
                slices = _fold(x, SLICE_AXES["axial" if axis == "all" else axis])
                if axis != "all" and self.slices_per_step and slices.shape[0] > self.slices_per_step:
                    pick = torch.randperm(slices.shape[0], generator=self.generator)[: self.slices_per_step]
                    self._picks[axis] = pick
                    slices = slices[pick.to(slices.device)]
            feats = self.base(slices, names)
            out.update({f"{axis}/{k}": v for k, v in feats.items()})
        return out

    def fold_mask(self, mask: torch.Tensor, layer: str) -> torch.Tensor:
        """A volume's weights ``(1, 1, X, Y, Z)`` folded like the input of ``layer`` in the last call.

        Returns ``(n_slices, 1, h, w)``: the slices across the layer's axis, the same ones
        :meth:`forward` picked, so a masked Gram of a folded activation is restricted to the
        mask slice by slice. A depth-1 mask (a 2-D style's) is folded across its flat axis.
        """
        axis = layer.split("/", 1)[0]
        flat = [d for d in range(3) if mask.shape[2 + d] == 1]
        if flat:
            return _fold(mask, flat[0])
        folded = _fold(mask, SLICE_AXES["axial" if axis == "all" else axis])
        pick = self._picks.get(axis)
        return folded if pick is None else folded[pick.to(folded.device)]

    def min_input_size(self, layers: Sequence[str]) -> int:
        """The 2-D extractor's minimum for the named layers."""
        return self.base.min_input_size([n.split("/", 1)[1] for n in layers])

    def describe(self) -> str:
        """One line: the 2-D extractor and the slice sampling."""
        return (
            f"SliceExtractor(axes={list(self.slice_axes)}, slices_per_step={self.slices_per_step}) of "
            f"{self.base.describe()}"
        )


class InflatedExtractor(FeatureExtractor):
    """A 2-D extractor inflated to 3-D (built by :func:`inflate`); same layer names and weights."""

    def __init__(self, base: FeatureExtractor, in_channels: int, depth: int | None = None) -> None:
        super().__init__(3, in_channels, [(n, _inflate_module(m, depth)) for n, m in base.layers.items()])
        self.base_description = base.describe()
        self._base_preprocess = base.preprocess
        self._adapt = _channel_adapter(in_channels, base.in_channels)
        self._base_min_size = base.min_input_size
        self.value_range = base.value_range
        self.default_style_weight = base.default_style_weight
        self.default_precision = base.default_precision
        self.default_content_layers = tuple(base.default_content_layers)
        self.default_style_layers = dict(base.default_style_layers)

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """The 2-D preprocessing applied slice by slice (depth folded into the batch)."""
        x = self._adapt(x)
        b, c, d = x.shape[:3]
        flat = x.movedim(2, 1).reshape(b * d, c, *x.shape[3:])
        out = self._base_preprocess(flat)
        return out.reshape(b, d, out.shape[1], *out.shape[2:]).movedim(1, 2)

    def min_input_size(self, layers: Sequence[str]) -> int:
        """Same as the 2-D extractor (pooling is inflated isotropically)."""
        return self._base_min_size(layers)

    def describe(self) -> str:
        """One line: inflated from which 2-D extractor."""
        return f"InflatedExtractor(3-D, in={self.in_channels}) of {self.base_description}"


def _inflate_module(module: nn.Module, depth: int | None) -> nn.Module:
    if isinstance(module, nn.Conv2d):
        k = depth or module.kernel_size[0]
        kh, kw = module.kernel_size
        sh, sw = module.stride
        if isinstance(module.padding, str):
            raise OptionError(f"cannot inflate a Conv2d with padding={module.padding!r}; give explicit sizes")
        ph, pw = module.padding
        dh, dw = module.dilation
        conv = nn.Conv3d(
            module.in_channels,
            module.out_channels,
            (k, kh, kw),
            stride=(sh, sh, sw),
            padding=(ph if depth is None else k // 2, ph, pw),
            dilation=(dh if depth is None else 1, dh, dw),
            bias=module.bias is not None,
            padding_mode=module.padding_mode,
        )
        with torch.no_grad():
            conv.weight.copy_(module.weight.unsqueeze(2).repeat(1, 1, k, 1, 1) / k)
            if module.bias is not None and conv.bias is not None:
                conv.bias.copy_(module.bias)
        return conv
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kernel = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
        stride = module.stride if isinstance(module.stride, int) else module.stride[0]
        pool = nn.MaxPool3d if isinstance(module, nn.MaxPool2d) else nn.AvgPool3d
        return pool(kernel, stride)
    if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.Identity)):
        return module
    raise OptionError(f"cannot inflate a {type(module).__name__} layer to 3-D (conv, ReLU and pooling only)")


def inflate(
    base: FeatureExtractor, in_channels: int | None = None, depth: int | None = None
) -> InflatedExtractor:
    """Inflate a 2-D extractor of Conv2d/ReLU/pooling layers to 3-D (Carreira & Zisserman 2017).

    Each ``k x k`` kernel is repeated ``k`` (or ``depth``) times along a new depth axis and divided
    by it, so a volume constant along depth gives the 2-D activations on every depth position.
    """
    if base.spatial_dims != 2:
        raise OptionError(f"only 2-D extractors can be inflated, got {base.describe()}")
    channels = base.in_channels if in_channels is None else in_channels
    return InflatedExtractor(base, channels, depth).freeze()  # type: ignore[return-value]


# -- memory ---------------------------------------------------------------------------------------
def estimate_memory(
    extractor: FeatureExtractor,
    shape: Sequence[int],
    channels: int = 1,
    *,
    layers: Sequence[str] | None = None,
    history_size: int = LBFGS_HISTORY,
    precision: str = "fp32",
) -> int:
    """Estimated peak bytes of one transfer step at working ``shape``: :func:`ndstyle.memory.estimate_memory`.

    Kept for callers of the volume extractors; ``channels`` is the extractor's ``in_channels``.
    """
    return _estimate(extractor, shape, layers, history_size=history_size, precision=precision)


def fit_working_shape(
    extractor: FeatureExtractor,
    shape: tuple[int, ...],
    channels: int,
    *,
    max_bytes: int | None = None,
    max_gb: float | None = None,
    say: Callable[[str], None] | None = None,
    precision: str = "fp32",
) -> tuple[int, ...]:
    """``shape`` if its estimate fits, else the largest scaled-down shape that does (deprecated).

    The one memory policy (:func:`ndstyle.memory.plan_memory`, used by :func:`ndstyle.stylize`)
    never shrinks the grid: it shortens the L-BFGS history or tiles. This shrinking fallback stays
    only until the volume modality passes ``max_memory`` to :func:`ndstyle.stylize` instead. The limit
    is ``max_bytes`` (or ``max_gb`` x 2**30 bytes; default: the machine's memory).
    """
    if max_bytes is not None:
        limit = int(max_bytes)
    elif max_gb is not None:
        limit = int(max_gb * 1024**3)
    else:
        limit = memory_limit("auto", torch.device("cpu")) or 2**62
    need = estimate_memory(extractor, shape, channels, precision=precision)
    if need <= limit:
        return shape
    factor = (limit / need) ** (1 / 3)
    while factor > 0.05:
        smaller = tuple(max(2, int(n * factor)) for n in shape)
        try:
            fits = estimate_memory(extractor, smaller, channels, precision=precision) <= limit
        except RuntimeError:  # the grid became too small for the layers
            break
        if fits:
            if say is not None:
                say(
                    f"ndstyle: working grid {shape} needs ~{format_size(need)} (> --max-memory "
                    f"{format_size(limit)}); reduced to {smaller}"
                )
            return smaller
        factor *= 0.9
    raise OptionError(
        f"working grid {shape} needs ~{format_size(need)} and no grid the extractor can take fits "
        f"--max-memory {format_size(limit)}; raise --max-memory"
    )


def add_input_layer(net: FeatureExtractor) -> FeatureExtractor:
    r"""Put an ``input`` layer (the preprocessed input itself, ``nn.Identity``) before every other.

    A content cost on ``input`` is an intensity term :math:`\frac{1}{4CN}\sum (x - c)^2`: it
    holds every voxel near the content target, which keeps the anatomy where deeper content
    layers alone let it drift (measured in ``docs/volumes.md``). Returns ``net`` itself.
    """
    if "input" in net.layers:
        return net
    items = [("input", nn.Identity()), *net.layers.items()]
    net.layers = nn.ModuleDict(OrderedDict(items))
    return net


# -- registration ---------------------------------------------------------------------------------
def _conv3d(spatial_dims: int, in_channels: int, *, seed: int = 0, **options: Any) -> FeatureExtractor:
    if spatial_dims != 3:
        raise OptionError(f"'conv3d' is for volumes (3 spatial axes), got {spatial_dims}")
    options.setdefault("widths", CONV3D_WIDTHS)
    net = ConvNdExtractor.random(3, in_channels, seed=seed, **options)
    net.default_precision = "bf16"  # 2.3x faster per step at 64^3, objective within 1 %
    return net


def _slices(
    spatial_dims: int,
    in_channels: int,
    *,
    seed: int = 0,
    base: FeatureExtractor | None = None,
    **options: Any,
) -> FeatureExtractor:
    if spatial_dims != 3:
        raise OptionError(f"'slices' is for volumes (3 spatial axes), got {spatial_dims}")
    return SliceExtractor(base or default_2d_extractor(), in_channels, seed=seed, **options)


def _inflated(
    spatial_dims: int, in_channels: int, *, seed: int = 0, base: FeatureExtractor | None = None, **_: Any
) -> FeatureExtractor:
    if spatial_dims != 3:
        raise OptionError(f"'inflated-vgg' is for volumes (3 spatial axes), got {spatial_dims}")
    return inflate(base or default_2d_extractor(), in_channels)


register_extractor("conv3d", _conv3d)
register_extractor("slices", _slices)
register_extractor("inflated-vgg", _inflated)
