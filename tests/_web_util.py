"""A stand-in for ndstyle's file-level API, for fast route tests of ``ndstyle serve``.

It follows the API contract (``transfer(content, styles, output=, preview=, callback=, **options)``
calling ``callback(info)`` after every step and stopping when it returns True; ``load(path)`` ->
object with ``tensor`` and ``meta``; ``TransferOptions`` a dataclass with help/group metadata)
without any optimisation, so that route tests take milliseconds.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import numpy as np
import torch

from ndstyle.engine import StepRecord
from ndstyle.errors import InputFileError, OptionError
from ndstyle.web.jobs import Backend


@dataclasses.dataclass(frozen=True)
class FakeOptions:
    size: int | None = field(default=None, metadata={"help": "working size", "group": "transfer"})
    steps: int | None = field(default=None, metadata={"help": "optimiser steps", "group": "transfer"})
    seed: int = field(default=0, metadata={"help": "random seed", "group": "transfer"})
    content_weight: float = field(default=1.0, metadata={"help": "alpha", "group": "weights"})
    style_weight: float | None = field(default=None, metadata={"help": "beta", "group": "weights"})
    style_blend: list[float] | None = field(default=None, metadata={"help": "per style", "group": "weights"})
    extractor: str | Path | None = field(default=None, metadata={"help": "network", "group": "transfer"})
    scales: str | int | list[float] = field(default="auto", metadata={"help": "pyramid", "group": "transfer"})
    init: Literal["content", "noise", "style"] = field(default="content", metadata={"group": "transfer"})
    preserve_color: Literal["none", "luminance", "histogram"] = field(
        default="none", metadata={"help": "keep colours", "group": "image"}
    )
    mask: Path | None = field(default=None, metadata={"help": "style only inside", "group": "volume"})
    checkpoint: Path | None = field(default=None, metadata={"help": "host file", "group": "long runs"})
    verbose_web: bool = field(default=False, metadata={"help": "a flag", "group": "misc"})


def fake_load(path: Any, **_: Any) -> SimpleNamespace:
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            img: Any = nib.load(str(path))
            data = np.asarray(img.dataobj, dtype=np.float32)[None]
            code = "".join(nib.aff2axcodes(img.affine))
            return SimpleNamespace(tensor=torch.from_numpy(data), meta={"orientation": code}, path=path)
        if name.endswith((".wav", ".flac", ".ogg")):
            import soundfile as sf

            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
            return SimpleNamespace(
                tensor=torch.from_numpy(data.T.copy()), meta={"sample_rate": rate}, path=path
            )
        from PIL import Image

        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return SimpleNamespace(tensor=torch.from_numpy(rgb).permute(2, 0, 1), meta={}, path=path)
    except Exception as error:
        raise InputFileError(f"input {str(path)!r} is not a readable file: {type(error).__name__}") from error


class FakeTransfer:
    """Records its calls; ``steps`` fake steps of ``delay`` seconds each."""

    def __init__(self, delay: float = 0.0, default_steps: int = 3) -> None:
        self.delay = delay
        self.default_steps = default_steps
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self,
        content: Any,
        styles: Any,
        output: Any = None,
        *,
        preview: Any = None,
        report: Any = None,
        callback: Any = None,
        progress: bool = True,
        **options: Any,
    ) -> SimpleNamespace:
        self.calls.append({"content": content, "styles": styles, "output": output, "options": options})
        if options.get("seed") == 13:
            raise OptionError("seed: 13 is refused by the stand-in")
        loaded = fake_load(content)
        x = loaded.tensor
        steps = int(options.get("steps") or self.default_steps)
        start = time.perf_counter()
        history = []
        for step in range(1, steps + 1):
            time.sleep(self.delay)
            x = x * 0.9 + 0.05
            rec = StepRecord(
                step,
                0,
                tuple(x.shape[1:]),
                1.0 / step,
                10.0 / step,
                0.0,
                11.0 / step,
                time.perf_counter() - start,
            )
            history.append(rec)
            if callback is not None and callback(
                SimpleNamespace(record=rec, total_steps=steps, best=x[None])
            ):
                break
        if output is not None:
            write_like(Path(output), x, Path(content))
        if preview is not None:
            from PIL import Image

            Image.fromarray(np.zeros((8, 24, 3), np.uint8)).save(preview, format="PNG")
        measures = None
        if report:  # a judge's verdict with values (ndstyle.metrics.target), one check failed
            measures = {
                "passes": {"border_frame": True, "in_range": False},
                "targets": {
                    "border_frame": {"value": 0.1, "target": "<= 0.5"},
                    "in_range": {"value": 0.99, "target": "== 1"},
                },
                "advice": "the stand-in's hint",
            }
        return SimpleNamespace(output=x, history=history, path=output, report=measures)


def write_like(output: Path, x: torch.Tensor, content: Path) -> None:
    if output.suffix in (".wav", ".flac", ".ogg"):
        import soundfile as sf

        sf.write(str(output), x.T.numpy(), sf.info(str(content)).samplerate)
    elif output.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        img: Any = nib.load(str(content))
        out = nib.Nifti1Image(x[0].numpy(), img.affine)
        out.set_data_dtype(img.get_data_dtype())
        nib.save(out, str(output))
    else:
        from PIL import Image

        pixels = np.rint(x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        Image.fromarray(pixels).save(output)


def fake_backend(transfer: FakeTransfer | None = None) -> Backend:
    from ndstyle.modalities import all_modalities

    return Backend(
        transfer=transfer or FakeTransfer(),
        options=FakeOptions,
        load=fake_load,
        modalities=all_modalities,
        extractors=lambda: ["random", "vgg16"],
    )


def png_bytes(size: tuple[int, int] = (20, 16), seed: int = 0) -> bytes:
    import io

    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def nifti_bytes(shape: tuple[int, int, int] = (10, 12, 8), seed: int = 0) -> bytes:
    import nibabel as nib

    data = np.random.default_rng(seed).normal(100, 20, shape).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.5, 1.0]))
    return bytes(img.to_bytes())


def wav_bytes(seconds: float = 0.25, rate: int = 8000, freq: float = 440.0) -> bytes:
    import io

    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()
