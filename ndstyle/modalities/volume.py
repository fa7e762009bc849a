"""NIfTI volumes (``.nii``, ``.nii.gz``) with their geometry, header and dtype kept intact.

Reading keeps everything the writer needs: the header (affine, sform/qform codes, zooms, units,
descriptions, extensions), the on-disk dtype and the scaling ``scl_slope``/``scl_inter``. The
result is written with a copy of the content's header and raw on-disk values of the content's
dtype (integers rounded and clipped), so only the voxel values change. Outside ``--mask`` the raw
voxels of the content are copied, hence bit-identical.

Working representation: intensities are normalised per channel (percentile window or z-score,
exactly invertible), and the volume is resampled to a near-isotropic working grid whose longest
axis is ``--size`` voxels; the result is resampled back to the content's grid. 4-D inputs
``(X, Y, Z, C)`` are treated as channels (e.g. multi-echo or multi-contrast stacks); 5-D and more
are rejected. A 2-D image (``.png``/``.jpg``/...) given as style becomes a depth-1 volume and the
transfer uses the 2.5-D ``slices`` extractor, whose statistics of every slice orientation then
match the image (a solid texture).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..engine import StyleTransferResult, resolve_device, resolve_precision, stylize
from ..errors import InputFileError, OptionError, ShapeError
from ..functional import resize
from .base import LoadedInput, Modality

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Default longest axis of the working grid (voxels).
DEFAULT_SIZE = 96


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine intensity map ``y = (x - offset) / scale`` and its exact inverse.

    Attributes:
        offset: per-channel offsets; scale: per-channel scales (> 0).
        method: ``"percentile"`` (offset = low percentile, scale = window width) or ``"zscore"``.

    """

    offset: tuple[float, ...]
    scale: tuple[float, ...]
    method: str = "percentile"

    @classmethod
    def fit(
        cls, x: np.ndarray, method: str = "percentile", window: tuple[float, float] = (0.5, 99.5)
    ) -> Normalization:
        """Fit on ``x`` ``(C, *spatial)``: a percentile window maps to [0, 1], or zero mean/unit std."""
        offsets, scales = [], []
        for channel in x:
            values = channel.astype(np.float64).ravel()
            if method == "zscore":
                lo, width = float(values.mean()), float(values.std())
            elif method == "percentile":
                lo, hi = (float(v) for v in np.percentile(values, window))
                width = hi - lo
            else:
                raise OptionError(f"--vol-normalize must be 'percentile' or 'zscore', got {method!r}")
            if not width > 0:
                width = float(values.max() - values.min()) or 1.0
                lo = float(values.min()) if method == "percentile" else lo
            offsets.append(lo)
            scales.append(width)
        return cls(tuple(offsets), tuple(scales), method)

    def _shape(self, values: tuple[float, ...], ndim: int) -> np.ndarray:
        return np.asarray(values, dtype=np.float64).reshape((-1,) + (1,) * (ndim - 1))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``(C, *spatial)`` raw intensities -> normalised float64."""
        return (x - self._shape(self.offset, x.ndim)) / self._shape(self.scale, x.ndim)

    def inverse(self, y: np.ndarray) -> np.ndarray:
        """Normalised ``(C, *spatial)`` -> intensities (float64)."""
        return y * self._shape(self.scale, y.ndim) + self._shape(self.offset, y.ndim)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def read_nifti(path: Path) -> tuple[Any, np.ndarray]:
    """Load a NIfTI image and its scaled data ``(C, X, Y, Z)`` as float64."""
    import nibabel as nib

    if not path.is_file():
        raise InputFileError(f"{str(path)!r} does not exist or is not a file")
    try:
        img: Any = nib.load(str(path))
        data = np.asarray(img.dataobj, dtype=np.float64)
    except Exception as error:  # nibabel raises many types for corrupt files
        raise InputFileError(f"{str(path)!r} is not a readable NIfTI file ({error})") from error
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputFileError(f"{str(path)!r} is a {type(img).__name__}, expected NIfTI-1 or NIfTI-2")
    if data.ndim == 3:
        data = data[None]
    elif data.ndim == 4:
        data = np.moveaxis(data, 3, 0)
    else:
        raise InputFileError(
            f"{str(path)!r}: expected a 3-D volume or a 4-D stack (X, Y, Z, C) used as channels, "
            f"got shape {data.shape}"
        )
    if min(data.shape[1:]) < 2:
        raise InputFileError(f"{str(path)!r}: a volume needs >= 2 voxels per axis, got {data.shape[1:]}")
    if not np.isfinite(data).all():
        raise InputFileError(f"{str(path)!r} contains NaN or infinite voxels")
    return img, data


def read_image_as_slice(path: Path) -> np.ndarray:
    """A 2-D image as a grey depth-1 volume ``(1, 1, H, W)`` (float64, original values)."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputFileError(f"{str(path)!r} does not exist or is not a file")
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("F"), dtype=np.float64)
    except (UnidentifiedImageError, OSError) as error:
        raise InputFileError(f"{str(path)!r} is not a readable image ({error})") from error
    return grey[None, None]


def working_shape(shape: tuple[int, ...], zooms: tuple[float, ...], size: int | None) -> tuple[int, ...]:
    """Near-isotropic grid covering the same field of view, longest axis ``size`` voxels.

    Args:
        shape: voxels per axis; zooms: voxel spacing per axis (mm).
        size: longest axis of the working grid; ``None`` keeps the finest spacing, capped at
            :data:`DEFAULT_SIZE`.

    """
    extent = [n * max(float(z), 1e-6) for n, z in zip(shape, zooms, strict=True)]
    spacing = min(max(float(z), 1e-6) for z in zooms)
    longest = max(extent) / spacing
    target = size if size is not None else min(DEFAULT_SIZE, round(longest))
    if target < 2:
        raise OptionError(f"--size must be >= 2 voxels, got {target}")
    step = max(extent) / target
    return tuple(max(2, round(e / step)) for e in extent)


class VolumeModality(Modality):
    """NIfTI volumes: header, affine, dtype and scaling preserved; mask; isotropic working grid."""

    name = "volume"
    extensions = (".nii", ".nii.gz")
    spatial_dims = 3
    description = "NIfTI volume (.nii, .nii.gz); 4-D stacks as channels"
    style_modalities = ("image",)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Volume options (prefixed ``--vol-`` where a name could clash)."""
        g = parser.add_argument_group("volumes (.nii, .nii.gz)")
        g.add_argument(
            "--vol-normalize",
            choices=("percentile", "zscore"),
            default="percentile",
            help="intensity normalisation (default: %(default)s)",
        )
        g.add_argument(
            "--vol-window",
            type=float,
            nargs=2,
            default=(0.5, 99.5),
            metavar=("LOW", "HIGH"),
            help="percentile window mapped to [0, 1] (default: 0.5 99.5)",
        )
        g.add_argument("--float32", action="store_true", help="write float32 instead of the content's dtype")
        g.add_argument(
            "--max-memory",
            type=float,
            default=None,
            metavar="GB",
            help="activation memory limit; the working size is reduced to fit (default: 20)",
        )

    # -- reading ---------------------------------------------------------------------------------
    def _normalize(self, data: np.ndarray, args: argparse.Namespace) -> Normalization:
        return Normalization.fit(
            data,
            getattr(args, "vol_normalize", "percentile"),
            tuple(getattr(args, "vol_window", (0.5, 99.5))),  # type: ignore[arg-type]
        )

    def load(self, path: Path, args: argparse.Namespace) -> LoadedInput:
        """Read a NIfTI volume as ``(C, X, Y, Z)`` normalised, resampled to the working grid."""
        img, data = read_nifti(path)
        norm = self._normalize(data, args)
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
        shape = working_shape(data.shape[1:], zooms, getattr(args, "size", None))
        tensor = torch.from_numpy(norm.forward(data).astype(np.float32))
        work = resize(tensor[None], shape)[0].contiguous()
        meta = {
            "image": img,
            "disk_header": _disk_header(path, img),
            "normalization": norm,
            "shape": tuple(data.shape[1:]),
            "channels": data.shape[0],
            "zooms": zooms,
            "dtype": str(img.get_data_dtype()),
            "working_shape": shape,
            "orientation": "".join(_orientation(img.affine)),
        }
        return LoadedInput(work, meta, path)

    def load_style(self, path: Path, content: LoadedInput, args: argparse.Namespace) -> LoadedInput:
        """A NIfTI style volume, or a 2-D image as a depth-1 grey volume ``(C, 1, H, W)``."""
        if _suffix(path) not in IMAGE_SUFFIXES:
            style = self.load(path, args)
            if style.tensor.shape[0] != content.tensor.shape[0]:
                raise ShapeError(
                    f"style {str(path)!r} has {style.tensor.shape[0]} channel(s) but the content has "
                    f"{content.tensor.shape[0]}"
                )
            return style
        data = read_image_as_slice(path)
        norm = self._normalize(data, args)
        tensor = torch.from_numpy(norm.forward(data).astype(np.float32))  # (1, 1, H, W)
        size = max(content.meta["working_shape"])
        h, w = tensor.shape[-2:]
        factor = size / max(h, w)
        if factor < 1:
            tensor = resize(tensor[None], (1, max(2, round(h * factor)), max(2, round(w * factor))))[0]
        tensor = tensor.expand(content.tensor.shape[0], *tensor.shape[1:]).contiguous()
        return LoadedInput(tensor, {"image2d": True, "shape": (h, w), "normalization": norm}, path)

    def read_mask(self, path: Path, content: LoadedInput) -> np.ndarray:
        """A mask on the content's grid as booleans ``(X, Y, Z)`` (nonzero = style)."""
        _, data = read_nifti(path)
        if data.shape[0] != 1 or tuple(data.shape[1:]) != content.meta["shape"]:
            raise ShapeError(
                f"--mask {str(path)!r} has shape {data.shape[1:]} (channels {data.shape[0]}), "
                f"expected one channel on the content's grid {content.meta['shape']}"
            )
        return data[0] != 0

    # -- running ---------------------------------------------------------------------------------
    def stylize_defaults(self, args: argparse.Namespace) -> dict[str, Any]:
        """Volumes: coarse-to-fine, 100 L-BFGS steps at full size (25 per coarser level), from the content."""
        return {"steps": 100, "scales": "auto", "value_range": None}

    def transfer(
        self,
        content: LoadedInput,
        styles: list[LoadedInput],
        args: argparse.Namespace,
        options: dict[str, Any],
    ) -> StyleTransferResult:
        """Pick the extractor, check memory, pass the mask, and run :func:`ndstyle.stylize`."""
        from ..extractors import build_extractor
        from ..extractors.volume import fit_working_shape

        options = dict(options)
        channels = content.tensor.shape[0]
        spec = options.pop("extractor", None)
        flat_style = any(s.meta.get("image2d") for s in styles)
        if spec is None:
            spec = "slices" if flat_style else "conv3d"
        extractor = build_extractor(spec, spatial_dims=3, in_channels=channels, seed=options.get("seed", 0))
        if flat_style and not hasattr(extractor, "slice_axes"):
            raise OptionError(
                "a 2-D style image needs the 2.5-D extractor: use --extractor slices (or a 3-D style volume)"
            )
        _check_fits(extractor, tuple(content.tensor.shape[1:]), channels, options)
        limit = getattr(args, "max_memory", None)
        device = resolve_device(options.get("device", "auto"))
        shape = fit_working_shape(
            extractor,
            tuple(content.tensor.shape[1:]),
            channels,
            max_gb=limit,
            say=None if getattr(args, "quiet", False) else _say,
            precision=resolve_precision(options.get("precision", "auto"), device, extractor),
        )
        tensor = content.tensor
        if shape != tuple(tensor.shape[1:]):
            tensor = resize(tensor[None], shape)[0]
            content.meta["working_shape"] = shape
        mask_path = getattr(args, "mask", None)
        if mask_path is not None:
            if hasattr(extractor, "slice_axes"):
                raise OptionError(
                    "--mask works with the 3-D extractors (conv3d, inflated-vgg), not with slices"
                )
            mask = self.read_mask(Path(mask_path), content)
            content.meta["mask"] = mask
            m = torch.from_numpy(mask.astype(np.float32))[None, None]
            options["mask"] = resize(m, shape)[0, 0].clamp(0, 1)
        return stylize(tensor, [s.tensor for s in styles], extractor=extractor, **options)

    # -- writing ---------------------------------------------------------------------------------
    def save(self, path: Path, result: torch.Tensor, content: LoadedInput, args: argparse.Namespace) -> None:
        """Write ``result`` ``(C, *working)`` with the content's header, affine and dtype."""
        write_like(
            path,
            result,
            content,
            as_float32=bool(getattr(args, "float32", False)),
            mask=content.meta.get("mask"),
        )

    def preview(
        self, path: Path, content: LoadedInput, styles: list[LoadedInput], result: torch.Tensor
    ) -> None:
        """Three orthogonal mid-slices of content, each style and the result (a 2-D style as is)."""
        from ..preview import save_preview

        shape = tuple(content.tensor.shape[1:])
        shown = []
        for s in styles:
            t = s.tensor
            if s.meta.get("image2d"):  # repeat the image along depth so every row shows it
                t = t.expand(t.shape[0], min(shape), *t.shape[2:])
            shown.append(t)
        save_preview(path, content.tensor, shown, resize(result[None], shape)[0])

    def info(self, path: Path) -> dict[str, Any]:
        """Shape, dtype, spacing, orientation and working grid."""
        loaded = self.load(path, argparse.Namespace())
        m = loaded.meta
        return {
            "shape (X, Y, Z)": m["shape"],
            "channels": m["channels"],
            "dtype": m["dtype"],
            "voxel size (mm)": tuple(round(z, 4) for z in m["zooms"]),
            "orientation": m["orientation"],
            "working grid": m["working_shape"],
        }


def _check_fits(extractor: Any, shape: tuple[int, ...], channels: int, options: dict[str, Any]) -> None:
    """Refuse working grids too small for the extractor's layers with one line (tiny grids only)."""
    if min(shape) >= 32:
        return
    layers = list(options.get("style_layers") or extractor.default_style_layers)
    layers += list(options.get("content_layers") or extractor.default_content_layers)
    try:
        with torch.no_grad():
            extractor(torch.zeros((1, channels, *shape)), layers)
    except RuntimeError as error:
        raise ShapeError(
            f"working grid {shape} is too small for {extractor.describe()} (layers {layers}); "
            f"raise --size or use shallower --style-layers/--content-layers"
        ) from error


def _disk_header(path: Path, img: Any) -> Any:
    """The header exactly as stored (nibabel's loaded header has ``scl_slope``/``inter`` moved out)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as handle:
        return type(img.header).from_fileobj(handle)


def _say(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _orientation(affine: np.ndarray) -> tuple[str, ...]:
    import nibabel as nib

    return tuple(str(c) for c in nib.aff2axcodes(affine))


def write_like(
    path: Path,
    result: torch.Tensor,
    content: LoadedInput,
    *,
    as_float32: bool = False,
    mask: np.ndarray | None = None,
) -> None:
    """Write ``result`` on the content's grid with a copy of its header.

    The result is resampled back to the content's shape, mapped back to intensities with the
    exact inverse of the normalisation, converted to raw on-disk values (inverse of
    ``scl_slope``/``scl_inter``), rounded and clipped for integer dtypes; raw content voxels are
    copied where ``mask`` is false. Header and extensions are written byte for byte except the
    fields nibabel must update (dtype with ``as_float32``).
    """
    from nibabel.openers import ImageOpener

    img = content.meta["image"]
    norm: Normalization = content.meta["normalization"]
    shape = content.meta["shape"]
    values = resize(result[None].float(), shape)[0].double().numpy()
    values = norm.inverse(values)
    slope = float(img.dataobj.slope)
    inter = float(img.dataobj.inter)
    header = (img.header if as_float32 else content.meta.get("disk_header", img.header)).copy()
    if as_float32:
        dtype = np.dtype(np.float32)
        raw: np.ndarray = values.astype(np.float32)
        slope, inter = 1.0, 0.0
        original = np.asarray(img.dataobj, dtype=np.float64)
    else:
        dtype = img.get_data_dtype()
        raw = (values - inter) / slope
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            raw = np.clip(np.rint(raw), info.min, info.max)
        raw = raw.astype(dtype)
        original = np.asanyarray(img.dataobj.get_unscaled())
    raw = np.moveaxis(raw, 0, 3) if original.ndim == 4 else raw.reshape(original.shape)
    if mask is not None:
        keep = ~mask
        if raw.ndim == 4:
            keep = keep[..., None].repeat(raw.shape[3], axis=3)
        raw[keep] = original.astype(raw.dtype)[keep]
    if as_float32:
        header.set_data_dtype(dtype)
        header["scl_slope"], header["scl_inter"] = np.nan, np.nan
    with ImageOpener(str(path), "wb") as handle:
        header.write_to(handle)
        header.data_to_fileobj(raw, handle, rescale=False)


MODALITY = VolumeModality()
