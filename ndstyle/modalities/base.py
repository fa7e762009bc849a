"""What a modality (images, audio, ECG/signals, volumes, arrays) plugs into the command line."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..engine import StyleTransferResult, stylize
from ..errors import InputFileError, NdstyleError


@dataclass
class LoadedInput:
    """An input read from a file.

    Attributes:
        tensor: the working representation ``(C, *spatial)``, float32.
        meta: whatever the writer needs to write a result back faithfully (sample rate, affine,
            mode, EXIF, lead names, original dtype, value mapping...).
        path: the file it came from.

    """

    tensor: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


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
        except Exception as error:  # corrupt files make libraries raise anything
            detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise InputFileError(
                f"input {str(path)!r} is not a readable {self.name} file ({', '.join(self.extensions)}): "
                f"{type(error).__name__}: {detail}"
            ) from error

    return guarded


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in ("load", "load_style", "info"):  # readers only raise ndstyle's one-line errors
            if name in cls.__dict__:
                setattr(cls, name, _guard_reader(cls.__dict__[name]))

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add this modality's own options to ``ndstyle run`` (in a group of its own)."""

    def load(self, path: Path, args: argparse.Namespace) -> LoadedInput:
        """Read the content file ``path``."""
        raise NotImplementedError

    def load_style(self, path: Path, content: LoadedInput, args: argparse.Namespace) -> LoadedInput:
        """Read a style file for ``content`` (default: like a content file)."""
        return self.load(path, args)

    def stylize_defaults(self, args: argparse.Namespace) -> dict[str, Any]:
        """Keyword arguments of :func:`ndstyle.stylize` this modality sets by default."""
        return {}

    def transfer(
        self,
        content: LoadedInput,
        styles: list[LoadedInput],
        args: argparse.Namespace,
        options: dict[str, Any],
    ) -> StyleTransferResult:
        """Run the transfer (default: :func:`ndstyle.stylize` on the tensors).

        A weights file given as ``extractor`` is loaded here, so that weights trained on another
        modality are refused with a message naming both modalities.
        """
        return stylize(content.tensor, [s.tensor for s in styles], **self.resolve_weights(content, options))

    def resolve_weights(self, content: LoadedInput, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with a weights-file ``extractor`` loaded and checked against this modality."""
        from ..extractors import build_extractor, is_weights_path

        spec = options.get("extractor")
        if not isinstance(spec, (str, Path)) or not is_weights_path(spec):
            return options
        extractor = build_extractor(
            spec,
            spatial_dims=content.tensor.ndim - 1,
            in_channels=content.tensor.shape[0],
            modality=self.name,
            seed=options.get("seed", 0),
        )
        return {**options, "extractor": extractor}

    def save(self, path: Path, result: torch.Tensor, content: LoadedInput, args: argparse.Namespace) -> None:
        """Write ``result`` ``(C, *spatial)`` to ``path`` (already a temporary file; atomic)."""
        raise NotImplementedError

    def preview(
        self, path: Path, content: LoadedInput, styles: list[LoadedInput], result: torch.Tensor
    ) -> None:
        """Write a PNG comparing content, styles and result (default: generic N-D preview)."""
        from ..preview import save_preview

        save_preview(path, content.tensor, [s.tensor for s in styles], result)

    def info(self, path: Path) -> dict[str, Any]:
        """What ``ndstyle info`` prints about ``path``."""
        loaded = self.load(path, argparse.Namespace())
        return {"shape (C, *spatial)": tuple(loaded.tensor.shape), **_printable(loaded.meta)}


def _printable(meta: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, tuple, list, bool))}
