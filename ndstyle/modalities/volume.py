"""NIfTI volumes (``.nii``, ``.nii.gz``) with their geometry, header and dtype kept intact.

Reading keeps everything the writer needs: the header (affine, sform/qform codes, zooms, units,
descriptions, extensions), the on-disk dtype and the scaling ``scl_slope``/``scl_inter``. The
result is written with a copy of the content's header and raw on-disk values of the content's
dtype (integers rounded and clipped), so only the voxel values change. Outside ``--mask`` the raw
voxels of the content are copied, hence bit-identical.

Working representation: intensities are normalised per channel (percentile window or z-score,
exactly invertible), and the volume is resampled to a near-isotropic working grid whose longest
axis is ``--size`` voxels; the result is resampled back to the content's grid. A 3-D style is
resampled to the content's working voxel size (in millimetres, from both headers), whatever its
field of view, so that its texture is matched at its physical scale. 4-D inputs
``(X, Y, Z, C)`` are treated as channels (e.g. multi-echo or multi-contrast stacks); 5-D and more
are rejected. A 2-D image (``.png``/``.jpg``/...) given as style becomes a depth-1 volume and the
transfer uses the 2.5-D ``slices`` extractor, whose statistics of every slice orientation then
match the image (a solid texture).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import InputFileError, OptionError, ShapeError
from ..functional import resize
from ..options import TransferOptions
from ..volume_provenance import mark_header
from .base import Loaded, Modality, Prepared, check_working_size, memory_budget, standard_info

logger = logging.getLogger("ndstyle")

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
#: Style weight of the 2-D-style (slices, VGG) path with its intensity content term; measured in
#: docs/volumes.md (T1 + painting).
SOLID_TEXTURE_STYLE_WEIGHT = 1e-6
#: Style layers of that path (each on the slices of every orientation, equal weights): VGG's
#: shallow layers only. Against ``relu1_1``..``relu5_1`` they kept more anatomy at the same texture
#: distance on every grid measured, at 0.6x the CPU time (docs/volumes.md, benchmarks/volume_painting.py).
SOLID_TEXTURE_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
#: Slices per axis and step of the 2.5-D ``slices`` extractor for the style cost (seeded random
#: subset, a new one every step; the ``all/`` content layers see every slice). Measured in
#: docs/volumes.md (T1 + painting).
SLICES_PER_STEP = 8
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


#: Bytes per voxel the reader holds at its peak: the float64 data, its normalised float32 copy and
#: the working tensor (float32).
_BYTES_PER_VOXEL = 8 + 4 + 4


def check_declared_volume(name: str, img: Any, budget: int | None) -> None:
    """Refuse a NIfTI whose header declares more voxels than ``budget`` bytes can hold when read.

    ``nib.load`` is lazy: only the header has been read, so a compressed file that would inflate to
    tens of gigabytes is refused before any voxel is decoded.
    """
    from ..memory import format_size

    shape = tuple(int(n) for n in img.shape)
    need = int(np.prod(shape, dtype=np.float64)) * _BYTES_PER_VOXEL
    if budget is not None and need > budget:
        raise InputFileError(
            f"{name!r} declares a volume of shape {shape}: reading it needs about {format_size(need)}, "
            f"more than the {format_size(budget)} allowed (--max-memory or the free memory)"
        )


def read_nifti(path: Any, budget: int | None = None) -> tuple[Any, np.ndarray]:
    """Load a NIfTI image (a file or a ``nibabel`` image) and its scaled data ``(C, X, Y, Z)`` as float64.

    The header's declared shape is checked against ``budget`` (bytes) before any voxel is read.
    """
    import nibabel as nib

    if not isinstance(path, (str, Path)):
        img: Any = path
        path = "<nibabel image>"
    elif not Path(path).is_file():
        raise InputFileError(f"{str(path)!r} does not exist or is not a file")
    else:
        img = None
    try:
        if img is None:
            img = nib.load(str(path))
    except Exception as error:  # nibabel raises many types for corrupt files
        raise InputFileError(f"{str(path)!r} is not a readable NIfTI file ({error})") from error
    check_declared_volume(str(path), img, budget)
    try:
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


def field_of_view(shape: tuple[int, ...], zooms: tuple[float, ...]) -> list[float]:
    """Extent (mm) of a grid of ``shape`` voxels of size ``zooms`` along each axis."""
    return [n * max(float(z), 1e-6) for n, z in zip(shape, zooms, strict=True)]


def working_spacing(volume: Loaded) -> float:
    """The voxel size (mm) of a loaded volume's near-isotropic working grid."""
    meta = volume.meta
    return max(field_of_view(meta["shape"], meta["zooms"])) / max(meta["working_shape"])


def working_shape(shape: tuple[int, ...], zooms: tuple[float, ...], size: int | None) -> tuple[int, ...]:
    """Near-isotropic grid covering the same field of view, longest axis ``size`` voxels.

    Args:
        shape: voxels per axis; zooms: voxel spacing per axis (mm).
        size: longest axis of the working grid; ``None`` keeps the finest spacing, capped at
            :data:`DEFAULT_SIZE`.

    """
    extent = field_of_view(shape, zooms)
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

    defaults: ClassVar[dict[str, Any]] = {"steps": 100, "scales": "auto"}
    stylize_defaults: ClassVar[dict[str, Any]] = {"value_range": None}

    # -- reading ---------------------------------------------------------------------------------
    def _normalize(self, data: np.ndarray, options: TransferOptions | None) -> Normalization:
        options = options or TransferOptions()
        return Normalization.fit(data, options.vol_normalize, tuple(options.vol_window))  # type: ignore[arg-type]

    def load(self, path: Path, options: TransferOptions | None = None) -> Loaded:
        """Read a NIfTI volume as ``(C, X, Y, Z)`` normalised, resampled to the working grid."""
        return self.from_object(path, options)

    def from_object(
        self, source: Any, options: TransferOptions | None = None, content: Loaded | None = None
    ) -> Loaded:
        """A content (or, with ``content``, a style) from a file or a ``nibabel`` image."""
        if content is not None:
            return self._style(source, content, options)
        return self._read(source, options)

    def _read(self, source: Any, options: TransferOptions | None, spacing: float | None = None) -> Loaded:
        """A volume on its working grid: longest axis ``--size`` voxels, or ``spacing`` mm per voxel."""
        img, data = read_nifti(source, memory_budget(options))
        norm = self._normalize(data, options)
        zooms = tuple(float(z) for z in img.header.get_zooms()[:3])
        if spacing is None:
            size = options.size if options is not None else None
            what = f"--size {size}"
        else:  # a style at the content's voxel size: its texture keeps its size in millimetres
            size = max(2, round(max(field_of_view(data.shape[1:], zooms)) / spacing))
            what = f"the style at the content's working voxel size ({spacing:.3g} mm)"
        shape = working_shape(data.shape[1:], zooms, size)
        check_working_size(shape, data.shape[0], options, what)
        tensor = torch.from_numpy(norm.forward(data).astype(np.float32))
        work = resize(tensor[None], shape)[0].contiguous()
        meta = {
            "image": img,
            "disk_header": _disk_header(Path(source), img) if isinstance(source, (str, Path)) else img.header,
            "normalization": norm,
            "shape": tuple(data.shape[1:]),
            "channels": data.shape[0],
            "zooms": zooms,
            "dtype": str(img.get_data_dtype()),
            "working_shape": shape,
            "orientation": "".join(_orientation(img.affine)),
        }
        return Loaded(work, meta, Path(source) if isinstance(source, (str, Path)) else None)

    def load_style(self, path: Path, content: Loaded, options: TransferOptions | None = None) -> Loaded:
        """A NIfTI style volume, or a 2-D image as a depth-1 grey volume ``(C, 1, H, W)``."""
        return self._style(path, content, options)

    def _style(self, path: Any, content: Loaded, options: TransferOptions | None) -> Loaded:
        if not isinstance(path, (str, Path)) or _suffix(Path(path)) not in IMAGE_SUFFIXES:
            style = self._read(path, options, spacing=working_spacing(content))
            if style.tensor.shape[0] != content.tensor.shape[0]:
                raise ShapeError(
                    f"style {str(path)!r} has {style.tensor.shape[0]} channel(s) but the content has "
                    f"{content.tensor.shape[0]}"
                )
            return style
        data = read_image_as_slice(Path(path))
        norm = self._normalize(data, options)
        tensor = torch.from_numpy(norm.forward(data).astype(np.float32))  # (1, 1, H, W)
        size = max(content.meta["working_shape"])
        h, w = tensor.shape[-2:]
        factor = size / max(h, w)
        if factor < 1:
            tensor = resize(tensor[None], (1, max(2, round(h * factor)), max(2, round(w * factor))))[0]
        tensor = tensor.expand(content.tensor.shape[0], *tensor.shape[1:]).contiguous()
        return Loaded(tensor, {"image2d": True, "shape": (h, w), "normalization": norm}, Path(path))

    def read_mask(self, path: Any, content: Loaded) -> np.ndarray:
        """A mask on the content's grid as booleans ``(X, Y, Z)`` (nonzero = style)."""
        _, data = read_nifti(path)
        if data.shape[0] != 1 or tuple(data.shape[1:]) != content.meta["shape"]:
            raise ShapeError(
                f"--mask {str(path)!r} has shape {data.shape[1:]} (channels {data.shape[0]}), "
                f"expected one channel on the content's grid {content.meta['shape']}"
            )
        return data[0] != 0

    # -- running ---------------------------------------------------------------------------------
    def build_extractor(
        self, content: Loaded, styles: list[Loaded], options: TransferOptions, **builder_options: Any
    ) -> Any:
        """``conv3d`` by default, ``slices`` for a 2-D style image (the only one that can use it)."""
        flat_style = any(s.meta.get("image2d") for s in styles)
        if options.extractor is None:
            options = dataclasses.replace(options, extractor="slices" if flat_style else "conv3d")
        if options.extractor == "slices":
            builder_options.setdefault("slices_per_step", SLICES_PER_STEP)
        extractor = super().build_extractor(content, styles, options, **builder_options)
        if flat_style and not hasattr(extractor, "slice_axes"):
            raise OptionError(
                "a 2-D style image needs the 2.5-D extractor: use --extractor slices (or a 3-D style volume)"
            )
        return extractor

    def prepare(self, content: Loaded, styles: list[Loaded], options: TransferOptions) -> Prepared:
        """The extractor, the working grid, the mask and the recipe; the result's provenance.

        The result written by :meth:`save` carries a JSON sidecar (:mod:`ndstyle.volume_provenance`)
        naming the content, the styles and the options, so that it cannot pass for an acquisition.
        """
        prepared = self._prepare(content, styles, options)
        provenance = {
            "content": content.path,
            "styles": [s.path for s in styles if s.path is not None],
            "options": options.changed(),
        }
        prepared.content = prepared.content.with_meta(provenance=provenance)
        return prepared

    def _prepare(self, content: Loaded, styles: list[Loaded], options: TransferOptions) -> Prepared:
        """Build the extractor and the run on the content's own working grid.

        The grid is never made smaller to fit memory: :func:`ndstyle.stylize` plans the run against
        ``--max-memory`` (shorter L-BFGS history, then exact tiled steps) and refuses, with the
        numbers, only when even one tile cannot fit.
        """
        extractor = self.build_extractor(content, styles, options)
        channels = content.tensor.shape[0]
        _check_fits(extractor, tuple(content.tensor.shape[1:]), channels, options)
        tensor = content.tensor
        shape = tuple(tensor.shape[1:])
        run_content = content
        kwargs: dict[str, Any] = {"extractor": extractor}
        if options.mask is not None:  # slices fold it like the volume (SliceExtractor.fold_mask)
            mask = self.read_mask(options.mask, content)
            run_content = run_content.with_meta(mask=mask)
            m = torch.from_numpy(mask.astype(np.float32))[None, None]
            kwargs["mask"] = resize(m, shape)[0, 0].clamp(0, 1)
        harmonize = (
            options.vol_recipe == "harmonize" and not hasattr(extractor, "slice_axes") and len(styles) == 1
        )
        if options.outside == "background" and not harmonize:
            raise OptionError(
                "--outside background needs one 3-D style volume with --vol-recipe harmonize (it writes "
                "the style's background around a result in the style's units)"
            )
        if harmonize:
            return self._harmonize(run_content, tensor, styles[0], options, kwargs)
        if options.vol_recipe == "harmonize" and hasattr(extractor, "slice_axes"):
            return self._solid_texture(run_content, tensor, styles, options, kwargs)
        return Prepared(run_content, tensor, [s.tensor for s in styles], kwargs)

    def _solid_texture(
        self,
        content: Loaded,
        tensor: torch.Tensor,
        styles: list[Loaded],
        options: TransferOptions,
        kwargs: dict[str, Any],
    ) -> Prepared:
        """2.5-D slices (a 2-D style image): the harmonize recipe's intensity terms, slice-wise.

        - An intensity content term seen from every orientation (``all/input``): the 2-D net's
          content layers are axial slices only, which let the sagittal and coronal views drift.
        - Shallow style layers (:data:`SOLID_TEXTURE_STYLE_LAYERS` of the 2-D net, those it has, on
          every slice orientation) and :data:`SOLID_TEXTURE_STYLE_WEIGHT`, unless the options set them.
        - For one 2-D style image, the start and the content target are the content mapped
          monotonically onto the image's grey-level distribution inside the mask
          (:func:`~ndstyle.volume_quality.match_histogram`): tissue order and every boundary are
          kept, the contrast becomes the painting's, and the result is written in the image's grey
          levels (into the content's header). Otherwise the content's own units are kept.
        - Every step is clamped to the range spanned by that start and the style image (or the
          content's own range): no negative values, nothing beyond what the inputs span.
        - Without ``--mask`` the result is kept inside the content's automatic foreground (outside
          it the content is written back).
        """
        from ..extractors.volume import add_input_layer
        from ..volume_quality import foreground, match_histogram, value_bounds

        extractor = kwargs["extractor"]
        add_input_layer(extractor.base)
        if options.content_layers is None:
            kwargs["content_layers"] = ["all/input", "all/relu2_1"]
        shallow = [n for n in SOLID_TEXTURE_STYLE_LAYERS if n in extractor.base.layer_names]
        if options.style_layers is None and shallow:
            kwargs["style_layers"] = [f"{axis}/{n}" for axis in extractor.slice_axes for n in shallow]
        if options.style_weight is None:
            kwargs["style_weight"] = SOLID_TEXTURE_STYLE_WEIGHT
        c_raw = content.meta["normalization"].inverse(tensor.double().numpy())
        if "mask" in kwargs:
            mask = kwargs["mask"].numpy() > 0.5
        else:
            mask = foreground(c_raw)
            full = resize(torch.from_numpy(mask.astype(np.float32))[None, None], content.meta["shape"])
            content = content.with_meta(mask=full[0, 0].numpy() > 0.5, composite_mask=mask, auto_mask=True)
        if len(styles) != 1 or not styles[0].meta.get("image2d"):
            kwargs["value_range"] = (float(tensor.min()), float(tensor.max()))
            return Prepared(content, tensor, [s.tensor for s in styles], kwargs)
        s_raw = styles[0].meta["normalization"].inverse(styles[0].tensor.double().numpy())
        norm = Normalization.fit(s_raw)
        target = norm.forward(match_histogram(c_raw, s_raw, mask))
        painting = norm.forward(s_raw)
        kwargs["value_range"] = value_bounds(target, painting, mask)
        start = torch.from_numpy(norm.forward(c_raw).astype(np.float32))
        content = dataclasses.replace(content, tensor=start).with_meta(normalization=norm, harmonized=True)
        as_tensor = torch.from_numpy
        return Prepared(
            content, as_tensor(target.astype(np.float32)), [as_tensor(painting.astype(np.float32))], kwargs
        )

    def finish(self, output: torch.Tensor, prepared: Prepared, options: TransferOptions) -> torch.Tensor:
        """Outside an automatic foreground (2-D style path) the result is the content.

        ``--outside background`` is applied by the writer on the content's own grid
        (:func:`write_like`), not here: blended into the working grid, the background would be
        interpolated into the mask's border voxels when the result is resampled back.
        """
        mask = prepared.content.meta.get("composite_mask")
        if mask is None:
            return output
        m = torch.from_numpy(mask.astype(np.float32))[None]
        return m * output + (1 - m) * prepared.tensor.to(output.dtype)

    def _harmonize(
        self,
        content: Loaded,
        tensor: torch.Tensor,
        style: Loaded,
        options: TransferOptions,
        kwargs: dict[str, Any],
    ) -> Prepared:
        """The measured volume recipe (docs/volumes.md, :mod:`ndstyle.volume_quality`).

        The content, histogram-matched to the style inside the masks (automatic Otsu foregrounds
        where ``--mask``/``--style-mask`` are not given), is the start and the content target, in
        the style's intensity units; values stay within the inputs' range; style statistics are taken
        inside the style mask only; with ``conv3d`` the content term includes the intensities
        themselves and the style layers are shallow (unless the options set them).
        """
        from ..extractors.volume import add_input_layer
        from ..volume_quality import (
            RECIPE_STYLE_WEIGHTS,
            VOLUME_RECIPE,
            FlatStyleError,
            foreground,
            plan_volume_transfer,
        )

        c_raw = content.meta["normalization"].inverse(tensor.double().numpy())
        s_raw = style.meta["normalization"].inverse(style.tensor.double().numpy())
        shape = tuple(tensor.shape[1:])
        if "mask" in kwargs:
            mask = kwargs["mask"].numpy() > 0.5
        else:
            mask = foreground(c_raw)
            full = resize(torch.from_numpy(mask.astype(np.float32))[None, None], content.meta["shape"])
            content = content.with_meta(mask=full[0, 0].numpy() > 0.5, auto_mask=True)
        style_mask = (
            foreground(s_raw)
            if options.style_mask is None
            else self._read_style_mask(options.style_mask, style)
        )
        try:
            plan = plan_volume_transfer(c_raw, s_raw, mask, style_mask)
        except FlatStyleError as error:
            name = str(style.path) if style.path is not None else "the style"
            raise InputFileError(
                f"{name[:120]!r}: {error}; if it is a mask, pass it as --style-mask "
                "with the volume as the style"
            ) from None
        start = torch.from_numpy(plan.normalization.forward(c_raw).astype(np.float32))
        content = dataclasses.replace(content, tensor=start).with_meta(
            normalization=plan.normalization,
            harmonized=True,
            style_masks=[style_mask],
            auto_style_mask=options.style_mask is None,
        )
        if options.outside == "background":  # the style's air (CT) or background (MR), per channel
            content = content.with_meta(
                outside_value=np.percentile(s_raw.reshape(s_raw.shape[0], -1), 1, axis=1)
            )
        kwargs.update(mask=plan.mask.reshape(shape), style_masks=[plan.style_mask], value_range=plan.bounds)
        extractor = kwargs["extractor"]
        if options.extractor in (None, "conv3d"):
            add_input_layer(extractor)
            for name in ("content_layers", "style_layers", "style_loss", "style_weight", "tol"):
                if name == "style_weight" and options.strength is not None:
                    continue  # the user's --strength sets the balance
                if getattr(options, name) is None:
                    kwargs[name] = VOLUME_RECIPE[name]
            if "style_weight" in kwargs and options.style_weight is None:  # the statistic's own weight
                statistic = str(kwargs.get("style_loss", options.style_loss))
                weight = RECIPE_STYLE_WEIGHTS.get(statistic, VOLUME_RECIPE["style_weight"])
                kwargs["style_weight"] = weight
            if options.style_loss is None and options.style_weight is None:
                _gram_where_only_the_gram_fits(kwargs, shape, tuple(plan.style.shape[1:]), options)
        return Prepared(content, plan.content, [plan.style], kwargs)

    def _read_style_mask(self, source: Any, style: Loaded) -> np.ndarray:
        """``--style-mask`` (NIfTI on the style's grid) on the style's working grid, as booleans."""
        if hasattr(source, "shape"):
            data = np.asarray(source, dtype=np.float64)[None]
        else:
            _, data = read_nifti(Path(source))
        if data.shape[0] != 1 or tuple(data.shape[1:]) != tuple(style.meta.get("shape", ())):
            raise ShapeError(
                f"--style-mask {str(source)[:80]!r} has shape {data.shape[1:]} (channels {data.shape[0]}), "
                f"expected one channel on the style's grid {style.meta.get('shape')}"
            )
        m = torch.from_numpy((data[0] != 0).astype(np.float32))[None, None]
        grid = resize(m, tuple(style.tensor.shape[1:]))[0, 0].numpy() > 0.5
        if not grid.any():
            raise OptionError(f"--style-mask {str(source)[:80]!r} is empty on the style's working grid")
        return grid

    # -- writing ---------------------------------------------------------------------------------
    def save(
        self, path: Path, result: torch.Tensor, content: Loaded, options: TransferOptions | None = None
    ) -> None:
        """Write ``result`` ``(C, *working)`` with the content's header, affine and dtype.

        A transfer's result also gets its JSON sidecar (``out.json``), written together with it.
        """
        write_like(
            path,
            result,
            content,
            as_float32=bool(options is not None and options.float32),
            mask=content.meta.get("mask"),
            outside_value=content.meta.get("outside_value"),
        )
        provenance = content.meta.get("provenance")
        if provenance is not None:
            from ..io.atomic import companion, final_path
            from ..volume_provenance import sidecar_path, sidecar_record

            final = final_path(path)
            record = sidecar_record(final, provenance["content"], provenance["styles"], provenance["options"])
            companion(path, sidecar_path(final)).write_text(json.dumps(record, indent=2) + "\n")

    def output_companions(self, output: Path) -> list[Path]:
        """A result ``out.nii.gz`` comes with its provenance sidecar ``out.json``."""
        from ..volume_provenance import sidecar_path

        return [sidecar_path(output)]

    def preview(self, path: Path, content: Loaded, styles: list[Loaded], result: torch.Tensor) -> None:
        """Radiological orthogonal slices of content, each style and the result, in their own units.

        See :mod:`ndstyle.volume_preview`: reoriented to the closest canonical axes, labelled, one
        robust intensity window per row; a 2-D style image is drawn as it is. Outside the mask the
        result row shows the content, as the written volume has it (:func:`write_like`).
        """
        from ..volume_preview import PreviewRow, save_volume_preview

        norm = content.meta["normalization"]
        shape = tuple(content.tensor.shape[1:])
        affine = _grid_affine(content.meta["image"].affine, content.meta["shape"], shape)
        original = norm.inverse(content.tensor.double().numpy())
        rows = [PreviewRow("content", original, affine)]
        for i, s in enumerate(styles):
            title = "style" if len(styles) == 1 else f"style {i + 1}"
            values = s.meta["normalization"].inverse(s.tensor.double().numpy())
            if s.meta.get("image2d"):
                rows.append(PreviewRow(title, values[0, 0], image2d=True))
            else:
                s_affine = _grid_affine(s.meta["image"].affine, s.meta["shape"], tuple(s.tensor.shape[1:]))
                rows.append(PreviewRow(title, values, s_affine))
        out = norm.inverse(resize(result[None].float(), shape)[0].double().numpy())
        mask = content.meta.get("mask")
        if mask is not None:
            full = torch.from_numpy(np.asarray(mask, dtype=np.float32))[None, None]
            inside = resize(full, shape)[0, 0].numpy() > 0.5
            fill = content.meta.get("outside_value")
            written = original if fill is None else np.asarray(fill, dtype=np.float64).reshape(-1, 1, 1, 1)
            out = np.where(inside[None], out, written)
        rows.append(PreviewRow("result (stylised)", out, affine))
        save_volume_preview(path, rows)

    def info(self, path: Path) -> dict[str, Any]:
        """Shape, dtype, spacing, orientation and working grid."""
        loaded = self.load(path, TransferOptions())
        m = loaded.meta
        return standard_info(
            channels=m["channels"],
            shape=m["shape"],
            spacing=m["zooms"],
            unit="mm",
            dtype=m["dtype"],
            orientation=m["orientation"],
            working_grid=m["working_shape"],
        )


def _gram_where_only_the_gram_fits(
    kwargs: dict[str, Any], shape: tuple[int, ...], style_shape: tuple[int, ...], options: TransferOptions
) -> None:
    """Switch the recipe's sliced Wasserstein to its Gram form when only that fits ``--max-memory``.

    The sorted statistic keeps every style layer whole (one float32 buffer per layer plus the
    sort's workspace) even when the steps tile, so at large sizes (the recipe at 256^3: about
    20.7 GiB against 13.7 GiB for the Gram, untiled) it cannot fit where the Gram, which tiles,
    still does. Rather than refusing a run the Gram form can do, the recipe falls back to the Gram
    at its measured weight (or the given ``--strength``) and says so in one line (``kwargs``: the
    run's keywords; ``shape``: the content's working grid; ``style_shape``: the style's).
    """
    from ..engine import resolve_device
    from ..memory import memory_limit, plan_memory
    from ..tiling import can_tile
    from ..volume_quality import RECIPE_STYLE_WEIGHTS

    net = kwargs["extractor"]
    # the recipe's layers unless the user chose them (then they are in ``options``, not ``kwargs``)
    style_layers = list(kwargs.get("style_layers") or options.style_layers or [])
    content_layers = list(kwargs.get("content_layers") or options.content_layers or [])
    layers = list(dict.fromkeys([*content_layers, *style_layers]))
    max_memory = "auto" if options.max_memory is None else int(options.max_memory * 1024**3)
    limit = memory_limit(max_memory, resolve_device(options.device or "auto"))

    def fits(sorted_layers: list[str]) -> bool:
        try:
            plan_memory(
                net,
                shape,
                layers,
                limit=limit,
                style_shapes=[style_shape],
                can_tile=can_tile(net),
                content_layers=content_layers,
                sorted_layers=sorted_layers,
            )
        except OptionError:
            return False
        return True

    if not fits(style_layers) and fits([]):
        logger.warning(
            "volume recipe: sliced-wasserstein needs more than the memory allowed at %s voxels; "
            "using the gram (style weight %g), which tiles",
            "x".join(map(str, shape)),
            RECIPE_STYLE_WEIGHTS["gram"],
        )
        kwargs["style_loss"] = "gram"
        if options.strength is None:  # a given --strength keeps setting the balance
            kwargs["style_weight"] = RECIPE_STYLE_WEIGHTS["gram"]


def _check_fits(extractor: Any, shape: tuple[int, ...], channels: int, options: TransferOptions) -> None:
    """Refuse working grids too small for the extractor's layers with one line (tiny grids only)."""
    if min(shape) >= 32:
        return
    layers = list(options.style_layers or extractor.default_style_layers)
    layers += list(options.content_layers or extractor.default_content_layers)
    try:
        with torch.no_grad():
            extractor(torch.zeros((1, channels, *shape)), layers)
    except RuntimeError as error:
        raise ShapeError(
            f"working grid {shape} is too small for {extractor.describe()} (layers {layers}); "
            f"raise --size or use shallower --style-layers/--content-layers"
        ) from error


def _grid_affine(affine: np.ndarray, shape: tuple[int, ...], grid: tuple[int, ...]) -> np.ndarray:
    """Affine of a working grid covering the field of view of ``shape`` voxels under ``affine``."""
    out = np.array(affine, dtype=np.float64, copy=True)
    factors = np.asarray(shape, dtype=np.float64) / np.asarray(grid, dtype=np.float64)
    out[:3, :3] = out[:3, :3] * factors
    out[:3, 3] = affine[:3, :3] @ ((factors - 1) / 2) + affine[:3, 3]
    return out


def _disk_header(path: Path, img: Any) -> Any:
    """The header exactly as stored (nibabel's loaded header has ``scl_slope``/``inter`` moved out)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as handle:
        return type(img.header).from_fileobj(handle)


def _orientation(affine: np.ndarray) -> tuple[str, ...]:
    import nibabel as nib

    return tuple(str(c) for c in nib.aff2axcodes(affine))


def write_like(
    path: Path,
    result: torch.Tensor,
    content: Loaded,
    *,
    as_float32: bool = False,
    mask: np.ndarray | None = None,
    outside_value: np.ndarray | None = None,
) -> None:
    """Write ``result`` on the content's grid with a copy of its header.

    The result is resampled back to the content's shape, mapped back to intensities with the
    exact inverse of the normalisation, converted to raw on-disk values (inverse of
    ``scl_slope``/``scl_inter``), rounded and clipped for integer dtypes; raw content voxels are
    copied where ``mask`` is false, or with ``outside_value`` (one intensity per channel, e.g. the
    style's background for ``--outside background``) that value, converted like the result.
    Header and extensions are written byte for byte except the fields nibabel must update (dtype
    with ``as_float32``) and ``descrip``, which marks the data as stylised
    (:func:`ndstyle.volume_provenance.mark_header`).
    """
    from nibabel.openers import ImageOpener

    img = content.meta["image"]
    norm: Normalization = content.meta["normalization"]
    shape = content.meta["shape"]
    values = resize(result[None].float(), shape)[0].double().numpy()
    values = norm.inverse(values)
    slope = float(getattr(img.dataobj, "slope", 1.0))  # in-memory images hold plain arrays
    inter = float(getattr(img.dataobj, "inter", 0.0))
    header = (img.header if as_float32 else content.meta.get("disk_header", img.header)).copy()
    dtype: np.dtype[Any]
    if as_float32:
        dtype = np.dtype(np.float32)
        slope, inter = 1.0, 0.0
        original = np.asarray(img.dataobj, dtype=np.float64)
    else:
        dtype = img.get_data_dtype()
        dataobj = img.dataobj
        original = np.asanyarray(dataobj.get_unscaled() if hasattr(dataobj, "get_unscaled") else dataobj)

    def on_disk(intensities: np.ndarray) -> np.ndarray:
        """Intensities as raw values of the file's dtype (inverse scaling, integers rounded, clipped)."""
        raw_values = (intensities - inter) / slope
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            raw_values = np.clip(np.rint(raw_values), info.min, info.max)
        return raw_values.astype(dtype)

    raw = on_disk(values)
    raw = np.moveaxis(raw, 0, 3) if original.ndim == 4 else raw.reshape(original.shape)
    if mask is not None:
        keep = ~mask
        if raw.ndim == 4:
            keep = keep[..., None].repeat(raw.shape[3], axis=3)
        if outside_value is None:
            raw[keep] = original.astype(raw.dtype)[keep]
        else:
            per_channel = on_disk(np.asarray(outside_value, dtype=np.float64).reshape(-1))
            filled = np.broadcast_to(per_channel if raw.ndim == 4 else per_channel[0], raw.shape)
            raw[keep] = filled[keep]
    if as_float32:
        header.set_data_dtype(dtype)
        header["scl_slope"], header["scl_inter"] = np.nan, np.nan
    mark_header(header)  # a stylised volume must not pass for an acquisition
    with ImageOpener(str(path), "wb") as handle:
        header.write_to(handle)
        header.data_to_fileobj(raw, handle, rescale=False)


MODALITY = VolumeModality()
