"""Image files through Pillow: PNG, JPEG, TIFF, WebP, BMP; RGB, RGBA, grayscale and 16-bit.

The working tensor is RGB ``(3, H, W)`` in ``[0, 1]`` at the working size (long side ``--size``).
Alpha is carried through unchanged (resized with the result if needed); grayscale inputs are
transferred on three replicated channels and written back as grayscale; 16-bit inputs are read at
full precision and written back 16-bit. EXIF orientation is honoured; ICC profile and DPI are kept.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .. import functional as NF
from ..errors import InputFileError, OptionError
from ..options import TransferOptions
from .base import Loaded, Modality, Prepared, check_working_size, memory_budget, standard_info

#: Working long side when ``--size`` is not given (the demo finishes in a few minutes on 2 cores).
DEFAULT_SIZE = 256
logger = logging.getLogger("ndstyle")
PRESERVE_COLOR = ("none", "luminance", "histogram")
# ITU-R BT.601 RGB -> YIQ.
_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


#: Bytes per pixel the reader holds at its peak, per decoded band (8-bit band, its converted copy,
#: float64 and float32 arrays) plus the working RGB tensor and its resized copy (2 x 3 x float32).
_BYTES_PER_BAND = 1 + 1 + 8 + 4
_BYTES_RGB = 2 * 3 * 4


def _check_declared_size(name: str, image: Any, budget: int | None) -> None:
    """Refuse an image whose declared size needs more than ``budget`` bytes to decode.

    The size comes from the header (``Image.open`` is lazy): nothing has been decoded yet.
    """
    from ..memory import format_size

    w, h = image.size
    bands = len(image.getbands())
    bytes_per_band = 4 if image.mode in ("F", "I") else 2 if image.mode.startswith("I;16") else 1
    need = w * h * (bands * (_BYTES_PER_BAND + bytes_per_band) + _BYTES_RGB)
    if w < 1 or h < 1:
        raise InputFileError(f"{name!r} declares an empty image ({w} x {h} pixels)")
    if budget is not None and need > budget:
        raise InputFileError(
            f"{name!r} declares {w} x {h} pixels ({w * h / 1e6:.0f} megapixels): decoding needs about "
            f"{format_size(need)}, more than the {format_size(budget)} allowed (--max-memory or the free "
            f"memory); give a smaller image"
        )


def read_image(path: Any, budget: int | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``path`` (a file or a ``PIL.Image``) as float ``(H, W, C)`` in ``[0, 1]`` plus its metadata.

    The declared size is checked against ``budget`` (bytes) before any pixel is decoded; Pillow's
    own decompression-bomb warning is not shown (this check replaces it) and its error becomes
    :class:`InputFileError`. 32-bit float images (mode ``F``) are read as they are (``[0, 1]``
    expected); a NaN or infinite pixel is refused naming the file.

    Returns:
        ``(array, meta)``: array with C = 1 (grayscale), 3 (RGB) or 4 (RGBA); meta holds ``mode``,
        ``bits`` (8, 16 or 32), ``size`` (W, H after EXIF orientation), ``icc_profile``, ``dpi``.

    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if isinstance(path, Image.Image):
        return _decode(ImageOps.exif_transpose(path), {str(k): v for k, v in path.info.items()}, "the image")
    name = str(path)
    if not Path(path).is_file():
        raise InputFileError(f"{name!r} does not exist or is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as opened:  # lazy: only the header is read
                _check_declared_size(name, opened, budget)
                image = ImageOps.exif_transpose(opened)
                image.load()
                info = {str(k): v for k, v in opened.info.items()}
    except InputFileError:
        raise
    except Image.DecompressionBombError as error:
        raise InputFileError(f"{name!r} is too large to decode safely ({error})") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InputFileError(f"{name!r} is not a readable image ({error})") from error
    return _decode(image, info, name)


def _decode(image: Any, info: dict[str, Any], name: str) -> tuple[np.ndarray, dict[str, Any]]:
    mode = image.mode
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)[..., None]
        if not np.isfinite(array).all():
            raise InputFileError(f"{name!r} holds NaN or infinite pixel values")
        if array.size and (array.min() < 0 or array.max() > 1):
            logger.warning("%s: float pixel values outside [0, 1] are clipped", name)
        bits = 32
        array = np.clip(array, 0, 1)
        channels_mode = "L"
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        bits = 16
        array = (np.clip(array, 0, 65535) / 65535.0)[..., None]
        channels_mode = "L"
    else:
        bits = 8
        if mode in ("L", "1"):
            channels_mode = "L"
        elif mode in ("LA", "RGBA", "PA") or (mode == "P" and "transparency" in image.info):
            channels_mode = "RGBA" if mode != "LA" else "LA"
        else:
            channels_mode = "RGB"
        array = np.asarray(image.convert(channels_mode), dtype=np.float64) / 255.0
        if array.ndim == 2:
            array = array[..., None]
    meta = {
        "mode": mode,
        "channels_mode": channels_mode,
        "bits": bits,
        "size": image.size,
        "icc_profile": info.get("icc_profile"),
        "dpi": info.get("dpi"),
    }
    return array.astype(np.float32), meta


def working_shape(size_wh: tuple[int, int], long_side: int | None) -> tuple[int, int]:
    """``(H, W)`` scaled so that the long side is ``long_side`` (``None``: unchanged)."""
    w, h = size_wh
    if long_side is None:
        return h, w
    if long_side < 1:
        raise OptionError(f"--size must be >= 1, got {long_side}")
    scale = long_side / max(w, h)
    return max(1, round(h * scale)), max(1, round(w * scale))


def _to_rgb(array: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(H, W, C) -> RGB (3, H, W) and alpha (1, H, W) or None."""
    t = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float().contiguous()
    alpha = None
    if t.shape[0] in (2, 4):
        alpha, t = t[-1:], t[:-1]
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1).clone()
    return t, alpha


def rgb_to_yiq(x: torch.Tensor) -> torch.Tensor:
    """RGB ``(3, *spatial)`` -> YIQ ``(3, *spatial)``."""
    return torch.einsum("ij,j...->i...", _YIQ.to(x), x)


def yiq_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YIQ ``(3, *spatial)`` -> RGB ``(3, *spatial)``."""
    return torch.einsum("ij,j...->i...", torch.linalg.inv(_YIQ).to(x), x)


def match_color(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Give ``source`` ``(3, H, W)`` the colour mean and covariance of ``target`` ``(3, H', W')``.

    A linear map (Cholesky of the covariances) per pixel; used by ``--preserve-color histogram``.
    """
    s, t = source.flatten(1).double(), target.flatten(1).double()
    ms, mt = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
    eye = eps * torch.eye(3, dtype=torch.float64)
    cs = torch.cov(s) + eye
    ct = torch.cov(t) + eye
    transform = torch.linalg.cholesky(ct) @ torch.linalg.inv(torch.linalg.cholesky(cs))
    out = transform @ (s - ms) + mt
    return out.reshape(source.shape).float().clamp(0, 1)


def luminance_transfer(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the luminance (Y) of ``result`` and the chroma (I, Q) of ``content`` (both RGB)."""
    y = rgb_to_yiq(result)[:1]
    iq = rgb_to_yiq(NF.resize(content[None], result.shape[1:])[0])[1:]
    return yiq_to_rgb(torch.cat([y, iq])).clamp(0, 1)


def _warn_of_framed_styles(content: Loaded, styles: list[Loaded]) -> None:
    """One warning per style with a frame at its border that the content lacks (the result copies it)."""
    from ..metrics.image import FRAME_LIMIT, framed

    own = framed(content.tensor) or 0.0  # a frame the content has too is the picture's
    for index, style in enumerate(styles):
        frame = framed(style.tensor)
        if frame is not None and frame > own:
            name = f"style {str(style.path)!r}" if style.path is not None else f"style {index + 1}"
            logger.warning(
                "%s has a frame at its border (border_frame %.2f > %.2f); the result's border will copy "
                "it: crop the style to the picture",
                name,
                frame,
                FRAME_LIMIT,
            )


class ImageModality(Modality):
    """2-D images (Pillow)."""

    name = "image"
    extensions = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
    spatial_dims = 2
    description = "images: PNG, JPEG, TIFF, WebP, BMP (RGB, RGBA, grayscale, 16-bit)"

    defaults: ClassVar[dict[str, Any]] = {"extractor": "auto", "steps": 300}
    default_extractor = "auto"

    def load(self, path: Path, options: TransferOptions | None = None) -> Loaded:
        """Read the content at the working size (long side ``size``; default 256, never upscaled)."""
        return self.from_object(path, options)

    def from_object(
        self, source: Any, options: TransferOptions | None = None, content: Loaded | None = None
    ) -> Loaded:
        """A content (or, with ``content``, a style) from a file or a ``PIL.Image``."""
        if content is not None:
            return self._style(source, content, options or TransferOptions())
        array, meta = read_image(source, memory_budget(options))
        size = (options.size if options is not None else None) or min(DEFAULT_SIZE, max(meta["size"]))
        shape = working_shape(meta["size"], size)
        check_working_size(shape, 3, options, f"--size {size}")
        rgb, alpha = _to_rgb(array)
        meta["alpha"] = alpha
        tensor = NF.resize(rgb[None], shape)[0].clamp(0, 1)
        return Loaded(tensor, meta, Path(source) if isinstance(source, (str, Path)) else None)

    def load_style(self, path: Path, content: Loaded, options: TransferOptions | None = None) -> Loaded:
        """Read a style, its long side = content's working long side x ``style_scale``."""
        return self._style(path, content, options or TransferOptions())

    def _style(self, source: Any, content: Loaded, options: TransferOptions) -> Loaded:
        array, meta = read_image(source, memory_budget(options))
        long_side = max(1, round(max(content.tensor.shape[1:]) * options.style_scale))
        shape = working_shape(meta["size"], long_side)
        check_working_size(shape, 3, options, f"--style-scale {options.style_scale:g}")
        rgb, _ = _to_rgb(array)
        tensor = NF.resize(rgb[None], shape)[0].clamp(0, 1)
        return Loaded(tensor, meta, Path(source) if isinstance(source, (str, Path)) else None)

    def build_extractor(
        self, content: Loaded, styles: list[Loaded], options: TransferOptions, **builder_options: Any
    ) -> Any:
        """The VGG (with the image options) or any other extractor, resolved for images."""
        from ..extractors import is_weights_path
        from ..extractors.vgg import load_vgg_path

        spec = options.extractor
        if isinstance(spec, (str, Path)) and str(spec).endswith(".pth"):
            return load_vgg_path(str(spec), pooling=options.pooling)
        if isinstance(spec, str) and not is_weights_path(spec) and spec.startswith(("vgg", "auto")):
            builder_options = {"pooling": options.pooling, "download": options.download}
            return super().build_extractor(content, styles, options, **builder_options)
        return super().build_extractor(content, styles, options)

    def prepare(self, content: Loaded, styles: list[Loaded], options: TransferOptions) -> Prepared:
        """The extractor, plus the mask and init file resized to the content's working grid."""
        prepared = super().prepare(content, styles, options)
        shape = tuple(content.tensor.shape[1:])
        _warn_of_framed_styles(content, styles)
        if options.mask is not None:
            prepared.kwargs["mask"] = self._mask(options.mask, shape, memory_budget(options))
        if options.init_file is not None:
            rgb, _ = _to_rgb(read_image(options.init_file, memory_budget(options))[0])
            prepared.kwargs["init"] = NF.resize(rgb[None], shape)[0].clamp(0, 1)
        return prepared

    @staticmethod
    def _mask(mask: Any, shape: tuple[int, ...], budget: int | None = None) -> torch.Tensor:
        if isinstance(mask, (str, Path)):
            array, _ = read_image(mask, budget)
            gray = torch.from_numpy(array[..., :1].copy()).permute(2, 0, 1).float()
        else:
            gray = torch.as_tensor(np.asarray(mask), dtype=torch.float32)
            gray = gray.reshape(1, *gray.shape[-2:])
        return NF.resize(gray[None], shape)[0].clamp(0, 1)

    def finish(self, output: torch.Tensor, prepared: Prepared, options: TransferOptions) -> torch.Tensor:
        """Colour preservation (``preserve_color``)."""
        return preserve_color(output, prepared.tensor, options.preserve_color)

    def save(
        self, path: Path, result: torch.Tensor, content: Loaded, options: TransferOptions | None = None
    ) -> None:
        """Write ``result`` (3, H, W) in the content's mode, bit depth, alpha, ICC and DPI."""
        from PIL import Image

        meta = content.meta
        out = result.detach().float().clamp(0, 1)
        if options is not None and options.original_size:
            w, h = meta["size"]
            out = NF.resize(out[None], (h, w))[0].clamp(0, 1)
        channels_mode = meta.get("channels_mode", "RGB")
        alpha = meta.get("alpha")
        if alpha is not None and tuple(alpha.shape[1:]) != tuple(out.shape[1:]):
            alpha = NF.resize(alpha[None], out.shape[1:])[0].clamp(0, 1)
        suffix = Path(path).suffix.lower()
        if meta.get("bits") == 16 and suffix in (".png", ".tif", ".tiff"):
            gray = rgb_to_yiq(out)[0].clamp(0, 1)
            values = np.rint(gray.numpy() * 65535).astype(np.uint16)
            image = Image.fromarray(values)  # I;16
        elif meta.get("bits") == 32 and suffix in (".tif", ".tiff"):
            image = Image.fromarray(rgb_to_yiq(out)[0].clamp(0, 1).numpy().astype(np.float32), "F")
        else:
            if channels_mode in ("L", "LA"):
                planes = rgb_to_yiq(out)[:1].clamp(0, 1)
                mode = "L"
            else:
                planes, mode = out, "RGB"
            if alpha is not None and suffix not in (".jpg", ".jpeg", ".bmp"):
                planes = torch.cat([planes, alpha])
                mode = "LA" if mode == "L" else "RGBA"
            values = np.rint(planes.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            image = Image.fromarray(values[..., 0] if mode == "L" else values, mode)
        kwargs: dict[str, Any] = {}
        if meta.get("icc_profile") and image.mode in ("RGB", "RGBA"):
            kwargs["icc_profile"] = meta["icc_profile"]
        if meta.get("dpi") and suffix not in (".webp",):
            kwargs["dpi"] = tuple(float(v) for v in meta["dpi"])
        fmt = Image.registered_extensions().get(suffix)
        image.save(path, format=fmt, **kwargs)

    def preview(self, path: Path, content: Loaded, styles: list[Loaded], result: torch.Tensor) -> None:
        """Side-by-side PNG: content | style(s) | result, true colours."""
        save_side_by_side(path, [content.tensor, *[s.tensor for s in styles], result])

    def info(self, path: Path) -> dict[str, Any]:
        """Size, mode, bit depth, alpha, ICC profile and DPI."""
        array, meta = read_image(path, memory_budget(None))
        w, h = meta["size"]
        return standard_info(
            channels=array.shape[-1],
            shape=(h, w),
            spacing=(1.0, 1.0),
            unit="px",
            dtype="float32" if meta["bits"] == 32 else f"uint{meta['bits']}",
            mode=meta["mode"],
            icc_profile=bool(meta["icc_profile"]),
            dpi=str(meta["dpi"]),
        )


def preserve_color(result: torch.Tensor, content: torch.Tensor, how: str) -> torch.Tensor:
    """Apply ``--preserve-color`` (``none``, ``luminance``, ``histogram``) to ``result``."""
    if how not in PRESERVE_COLOR:
        raise OptionError(f"preserve-color must be one of {', '.join(PRESERVE_COLOR)}, got {how!r}")
    if how == "luminance":
        return luminance_transfer(result, content)
    if how == "histogram":
        return match_color(result, content)
    return result


def save_side_by_side(path: str | Path, images: list[torch.Tensor], height: int = 256, gap: int = 4) -> None:
    """Write a PNG with ``images`` ``(3, H, W)`` in [0, 1] side by side at a common height."""
    from PIL import Image

    tiles = []
    for x in images:
        h, w = x.shape[1:]
        t = NF.resize(x[None].float(), (height, max(1, round(w * height / h))))[0].clamp(0, 1)
        tiles.append(np.rint(t.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    width = sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1)
    canvas = np.full((height, width, 3), 255, np.uint8)
    x0 = 0
    for t in tiles:
        canvas[:, x0 : x0 + t.shape[1]] = t
        x0 += t.shape[1] + gap
    Image.fromarray(canvas).save(path, format="PNG")


MODALITY = ImageModality()
