"""Plain NumPy arrays (``.npy``) shaped ``(C, *spatial)``: any modality, no metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputFileError
from ..options import TransferOptions
from .base import Loaded, Modality


def read_npy(path: Path) -> np.ndarray:
    """Load a ``.npy`` file without pickles, with one-line errors."""
    if not path.is_file():
        raise InputFileError(f"{str(path)!r} does not exist or is not a file")
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic != b"\x93NUMPY":
        raise InputFileError(f"{str(path)!r} is not a .npy file (it lacks the NumPy header)")
    _check_npy_header(path)
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # a corrupt header raises ValueError, EOFError, SyntaxError, TokenError...
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputFileError(f"{str(path)!r} is not a readable .npy array ({detail})") from error
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise InputFileError(f"{str(path)!r} must hold a numeric array, got dtype {array.dtype}")
    return array


def _check_npy_header(path: Path) -> None:
    """Refuse, before reading, object arrays and arrays larger than the file or the memory."""
    from ..memory import device_memory, format_size

    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            offset = handle.tell()
    except Exception:  # a corrupt header: np.load reports it
        return
    if dtype.hasobject:
        raise InputFileError(
            f"{str(path)!r} holds pickled Python objects; ndstyle never unpickles files "
            f"(save a numeric array instead)"
        )
    if dtype.itemsize == 0:
        return
    count = int(np.prod(shape, dtype=np.float64))
    needed = count * dtype.itemsize
    available = path.stat().st_size - offset
    if needed > available:
        raise InputFileError(
            f"{str(path)!r} is truncated: its header promises {format_size(needed)} of data "
            f"(shape {tuple(shape)}, {dtype}), the file holds {format_size(max(0, available))}"
        )
    memory = device_memory(torch.device("cpu"))
    if memory is not None and needed + 4 * count > memory:
        raise InputFileError(
            f"{str(path)!r} needs about {format_size(needed + 4 * count)} of memory to read "
            f"(shape {tuple(shape)}), more than the {format_size(memory)} of this machine"
        )


class ArrayModality(Modality):
    """``.npy`` arrays ``(C, *spatial)`` with 1-3 spatial axes; results keep the dtype."""

    name = "array"
    extensions = (".npy",)
    description = "NumPy array (C, *spatial), 1-3 spatial axes"

    def load(self, path: Path, options: TransferOptions | None = None) -> Loaded:
        """Read ``(C, *spatial)``; a 1-D array is one channel of a 1-D signal."""
        return self.from_object(read_npy(path), options, path=path)

    def from_object(
        self,
        source: Any,
        options: TransferOptions | None = None,
        content: Loaded | None = None,
        *,
        path: Path | str = "<array>",
    ) -> Loaded:
        """An array or tensor ``(C, *spatial)`` (a 1-D one is one channel of a 1-D signal)."""
        array = source.detach().cpu().numpy() if hasattr(source, "detach") else np.asarray(source)
        if np.iscomplexobj(array):
            raise InputFileError(f"{str(path)!r}: complex values are not supported; give real values")
        if array.ndim == 1:
            array = array[None]
        if array.ndim not in (2, 3, 4):
            raise InputFileError(
                f"{str(path)!r}: expected an array shaped (C, *spatial) with 1-3 spatial axes, "
                f"got shape {array.shape}"
            )
        if array.size == 0:
            raise InputFileError(f"{str(path)!r} is empty (shape {array.shape})")
        tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        if not torch.isfinite(tensor).all():
            raise InputFileError(f"{str(path)!r} contains NaN or infinite values")
        meta = {"dtype": str(array.dtype), "shape": tuple(array.shape)}
        return Loaded(tensor, meta, Path(path) if isinstance(path, Path) else None)

    def save(
        self, path: Path, result: torch.Tensor, content: Loaded, options: TransferOptions | None = None
    ) -> None:
        """Write the result in the content's dtype (integers rounded and clipped)."""
        dtype = np.dtype(content.meta.get("dtype", "float32"))
        values = result.numpy()
        if dtype.kind in "iub":
            info = np.iinfo(dtype) if dtype.kind != "b" else None
            values = np.rint(values)
            if info is not None:
                values = np.clip(values, info.min, info.max)
        if len(content.meta.get("shape", ())) == 1:
            values = values[0]
        with open(path, "wb") as handle:
            np.save(handle, values.astype(dtype))


MODALITY = ArrayModality()
