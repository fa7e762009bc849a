"""What a modality (images, audio, ECG/signals, volumes, arrays) is: a small recipe.

A modality reads files into a working tensor plus the metadata needed to write a result back
(:meth:`Modality.load`, :meth:`Modality.save`), holds its option defaults (:attr:`Modality.defaults`),
resolves its extractor (:meth:`Modality.build_extractor`, always knowing the modality, so weights
trained on another modality are refused), prepares the tensors and keywords for
:func:`ndstyle.stylize` (:meth:`Modality.prepare`) and finishes the result (:meth:`Modality.finish`).
It never mutates the loaded inputs, and knows nothing of the command line.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..engine import StyleTransferResult, stylize
from ..errors import InputFileError, NdstyleError, OptionError
from ..options import TransferOptions


@dataclass
class Loaded:
    """An input read from a file (or an in-memory object).

    Attributes:
        tensor: the working representation ``(C, *spatial)``, float32.
        meta: whatever the writer needs to write a result back faithfully (sample rate, affine,
            mode, EXIF, lead names, original dtype, value mapping...).
        path: the file it came from (``None`` for in-memory objects).
        modality: the name of the modality that read it.

    """

    tensor: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    modality: str = ""

    def with_meta(self, **changes: Any) -> Loaded:
        """A copy whose metadata has ``changes`` (the original is left as it is)."""
        return dataclasses.replace(self, meta={**self.meta, **changes})


#: Former name of :class:`Loaded`.
LoadedInput = Loaded


@dataclass
class Prepared:
    """What :meth:`Modality.prepare` hands to the engine.

    Attributes:
        content: the content as it will be written back (working grid and metadata of this run).
        tensor: the content tensor ``(C, *spatial)`` given to :func:`ndstyle.stylize`.
        styles: the style tensors.
        kwargs: keywords of :func:`ndstyle.stylize` this modality sets (extractor, mask, init...).

    """

    content: Loaded
    tensor: torch.Tensor
    styles: list[torch.Tensor]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _guard_reader(method: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a reader's library exceptions into one-line :class:`InputFileError` naming the file."""

    @functools.wraps(method)
    def guarded(self: Modality, path: Path, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, path, *args, **kwargs)
        except NdstyleError as error:
            if "\n" in str(error):  # one line, always
                raise type(error)(" ".join(str(error).split())) from error
            raise
        except MemoryError as error:
            raise InputFileError(f"input {str(path)!r} is too large to read into memory") from error
        except Exception as error:  # corrupt files make libraries raise anything
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise InputFileError(
                f"input {str(path)!r} is not a readable {self.name} file ({', '.join(self.extensions)}): "
                f"{type(error).__name__}: {detail}"
            ) from error

    return guarded


def _tagged(method: Callable[..., Loaded]) -> Callable[..., Loaded]:
    """Readers return :class:`Loaded` objects that carry the modality's name."""

    @functools.wraps(method)
    def tagged(self: Modality, *args: Any, **kwargs: Any) -> Loaded:
        loaded = method(self, *args, **kwargs)
        if isinstance(loaded, Loaded):
            if not loaded.modality:
                loaded.modality = self.name
            if loaded.tensor.is_floating_point() and not bool(torch.isfinite(loaded.tensor).all()):
                where = loaded.path if loaded.path is not None else (args[0] if args else "the input")
                raise InputFileError(f"input {str(where)!r} holds NaN or infinite values")
        return loaded

    return tagged


def memory_budget(options: TransferOptions | None) -> int | None:
    """Bytes a reader may use: ``max_memory``, else the free physical memory (``None``: unknown)."""
    if options is not None and options.max_memory is not None:
        return int(options.max_memory * 1024**3)
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_working_size(
    shape: Sequence[int], channels: int, options: TransferOptions | None, what: str
) -> None:
    """Refuse a working grid whose tensors alone (the grid and 3 copies, float32) exceed the budget.

    Called by readers before resampling, so that ``--size 60000`` is an option error, not a failed
    allocation blamed on the file.
    """
    from ..memory import format_size

    budget = memory_budget(options)
    need = 4 * 4 * channels * math.prod(int(n) for n in shape)
    if budget is not None and need > budget:
        grid = " x ".join(str(int(n)) for n in shape)
        raise OptionError(
            f"{what} gives a working grid of {grid} with {channels} channel(s): about {format_size(need)} "
            f"for its tensors alone, more than the {format_size(budget)} allowed (--max-memory or the free "
            f"memory); choose a smaller --size"
        )


class Modality:
    """Readers, writers, defaults and previews of one kind of data.

    Subclasses set :attr:`name`, :attr:`extensions` and :attr:`spatial_dims` and implement
    :meth:`load` and :meth:`save`; the rest has working defaults.
    """

    name: str = ""
    extensions: tuple[str, ...] = ()
    spatial_dims: int = 0
    description: str = ""
    #: Other modalities whose files :meth:`load_style` accepts as styles (e.g. images for volumes).
    style_modalities: tuple[str, ...] = ()
    #: Option defaults of this modality, filling :class:`~ndstyle.TransferOptions` left at ``None``.
    defaults: ClassVar[dict[str, Any]] = {}
    #: Keywords of :func:`ndstyle.stylize` that are no options (e.g. ``value_range``).
    stylize_defaults: ClassVar[dict[str, Any]] = {}
    #: The extractor used when the options name none.
    default_extractor: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("load", "load_style", "info"):  # readers only raise ndstyle's one-line errors
            if name in cls.__dict__:
                setattr(cls, name, _guard_reader(cls.__dict__[name]))
        for name in ("load", "load_style"):
            if name in cls.__dict__:
                setattr(cls, name, _tagged(cls.__dict__[name]))

    # -- reading and writing ---------------------------------------------------------------------
    def load(self, path: Path, options: TransferOptions | None = None) -> Loaded:
        """Read the content file ``path``."""
        raise NotImplementedError

    def load_style(self, path: Path, content: Loaded, options: TransferOptions | None = None) -> Loaded:
        """Read a style file for ``content`` (default: like a content file)."""
        return self.load(path, options)

    def save(
        self, path: Path, result: torch.Tensor, content: Loaded, options: TransferOptions | None = None
    ) -> None:
        """Write ``result`` ``(C, *spatial)`` to ``path`` (already a temporary file; atomic)."""
        raise NotImplementedError

    def marked(self, output: Path, mark: str) -> Path:
        """A clearly marked sibling of ``output``: ``out.nii.gz`` -> ``out.<mark>.nii.gz``."""
        from . import file_suffix

        suffix = file_suffix(output) or ""
        stem = output.name[: len(output.name) - len(suffix)] if suffix else output.name
        return output.with_name(f"{stem}.{mark}{suffix}")

    def output_companions(self, output: Path) -> list[Path]:
        """Files :meth:`save` writes next to ``output`` (checked like outputs before any work)."""
        return []

    def preview(self, path: Path, content: Loaded, styles: list[Loaded], result: torch.Tensor) -> None:
        """Write a PNG comparing content, styles and result (default: generic N-D preview)."""
        from ..preview import save_preview

        save_preview(path, content.tensor, [s.tensor for s in styles], result)

    def info(self, path: Path) -> dict[str, Any]:
        """What ``ndstyle info`` prints about ``path`` (see :func:`ndstyle.api.describe`)."""
        loaded = self.load(path, TransferOptions())
        shape = tuple(loaded.tensor.shape[1:])
        return standard_info(
            channels=loaded.tensor.shape[0],
            shape=shape,
            spacing=(1.0,) * len(shape),
            unit="sample",
            dtype=str(loaded.meta.get("dtype", "float32")),
            **{k: v for k, v in _printable(loaded.meta).items() if k not in ("dtype", "shape")},
        )

    # -- the transfer recipe ---------------------------------------------------------------------
    def build_extractor(
        self, content: Loaded, styles: list[Loaded], options: TransferOptions, **builder_options: Any
    ) -> Any:
        """The extractor named by ``options.extractor`` (or this modality's default).

        A weights file is loaded with this modality's name, so weights trained on another modality
        are refused with a message naming both.
        """
        from ..extractors import build_extractor

        spec = options.extractor if options.extractor is not None else self.default_extractor
        if isinstance(spec, Path):
            spec = str(spec)
        return build_extractor(
            spec,
            spatial_dims=content.tensor.ndim - 1,
            in_channels=content.tensor.shape[0],
            modality=self.name,
            seed=options.seed,
            **builder_options,
        )

    def prepare(self, content: Loaded, styles: list[Loaded], options: TransferOptions) -> Prepared:
        """Tensors and :func:`ndstyle.stylize` keywords for this run (default: the extractor)."""
        return Prepared(
            content,
            content.tensor,
            [s.tensor for s in styles],
            {"extractor": self.build_extractor(content, styles, options)},
        )

    def run(
        self, prepared: Prepared, kwargs: dict[str, Any], options: TransferOptions
    ) -> StyleTransferResult:
        """Run the optimisation (default: :func:`ndstyle.stylize`)."""
        return stylize(prepared.tensor, prepared.styles, **kwargs)

    def finish(self, output: torch.Tensor, prepared: Prepared, options: TransferOptions) -> torch.Tensor:
        """Post-process the result ``(C, *spatial)`` (default: unchanged)."""
        return output


def standard_info(
    *, channels: int, shape: tuple[int, ...], spacing: tuple[float, ...], unit: str, dtype: str, **extra: Any
) -> dict[str, Any]:
    """The keys ``ndstyle info`` gives for every modality, then the modality's own ``extra``.

    ``shape`` is the spatial shape as stored, ``spacing`` the size of one step along each axis in
    ``unit`` (px, s or mm), ``extent`` their product (a signal's duration, a volume's field of view).
    """
    return {
        "channels": int(channels),
        "shape": tuple(int(n) for n in shape),
        "unit": unit,
        "spacing": tuple(round(float(v), 6) for v in spacing),
        "extent": tuple(round(float(n) * float(v), 4) for n, v in zip(shape, spacing, strict=True)),
        "dtype": dtype,
        **extra,
    }


def _printable(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, tuple, list, bool))}
