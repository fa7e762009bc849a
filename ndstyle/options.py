"""The one options object: every transfer option with its default, type, help text and check.

:class:`TransferOptions` is the single source of truth. The command line's flags and ``--help``
(:func:`add_option_arguments`), :func:`ndstyle.transfer`'s keywords, the options' fingerprint
(:meth:`TransferOptions.fingerprint`) and the table in ``docs/api.md`` (:func:`options_table`) are
all generated from its fields, so they cannot drift apart. A field's default ``None`` means "the
modality's default" (each modality's :attr:`~ndstyle.modalities.Modality.defaults`).

Constructing the object checks every value (finite, in range, of the right type) before any file is
read; the error names the option as the command line spells it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import OptionError

#: Groups in the order ``--help`` shows them.
GROUPS = ("transfer", "long runs", "image", "audio", "signal", "volume")


@dataclass(frozen=True)
class OptionSpec:
    """How one option appears on the command line and what values it accepts."""

    help: str
    group: str = "transfer"
    short: str | None = None
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None
    nargs: int | None = None
    metavar: str | None = None
    check: Callable[[str, Any], None] | None = None
    fingerprint: bool = True
    default_text: str | None = None


def _option(default: Any, spec: OptionSpec) -> Any:
    return field(default=default, metadata={"spec": spec})


def flag_of(name: str) -> str:
    """``style_weight`` -> ``--style-weight``."""
    return "--" + name.replace("_", "-")


# -- checks (each raises OptionError naming the flag) ----------------------------------------------


def _fail(name: str, expected: str, value: Any) -> OptionError:
    return OptionError(f"{flag_of(name)}: expected {expected}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def int_in(low: int, high: int | None = None) -> Callable[[str, Any], None]:
    """A whole number in ``[low, high]``."""

    def check(name: str, value: Any) -> None:
        if not _is_int(value) or value < low or (high is not None and value > high):
            bound = f">= {low}" if high is None else f"from {low} to {high}"
            raise _fail(name, f"a whole number {bound}", value)

    return check


def number_in(low: float, high: float | None = None, *, open_low: bool = False) -> Callable[[str, Any], None]:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""

    def check(name: str, value: Any) -> None:
        ok = _number(value) and math.isfinite(value) and (value > low if open_low else value >= low)
        if not ok or (high is not None and value > high):
            bound = ("> " if open_low else ">= ") + f"{low:g}" + ("" if high is None else f" and <= {high:g}")
            raise _fail(name, f"a finite number {bound}", value)

    return check


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        from ._checks import suggest

        hint = suggest(str(value), choices)
        raise OptionError(f"{flag_of(name)}: expected one of {', '.join(choices)}, got {value!r}.{hint}")


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value)


def _check_scales(name: str, value: Any) -> None:
    if value == "auto":
        return
    if _is_int(value):
        int_in(1, 16)(name, value)
        return
    if isinstance(value, Sequence) and not isinstance(value, str) and value:
        if all(_number(f) and math.isfinite(f) and 0 < f <= 1 for f in value):
            return
    raise _fail(name, "'auto', a number of levels from 1 to 16, or factors in (0, 1]", value)


def _check_blend(name: str, value: Any) -> None:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or not value
        or not all(_number(w) and math.isfinite(w) and w >= 0 for w in value)
        or sum(value) <= 0
    ):
        raise _fail(name, "finite weights >= 0, not all 0", value)


def _check_layers(name: str, value: Any) -> None:
    if isinstance(value, dict):
        ok = all(isinstance(k, str) and _number(v) and math.isfinite(v) and v >= 0 for k, v in value.items())
    else:
        ok = isinstance(value, Sequence) and not isinstance(value, str)
        ok = ok and all(isinstance(v, str) and v for v in value)
    if not ok or not value:
        raise _fail(name, "a non-empty list of layer names (or {layer: weight})", value)


def _check_path_or_tensor(name: str, value: Any) -> None:
    if not isinstance(value, (str, os.PathLike)) and not hasattr(value, "shape"):
        raise _fail(name, "a file path or an array/tensor", value)


def _check_path(name: str, value: Any) -> None:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise _fail(name, "a file path", value)


def _check_init(name: str, value: Any) -> None:
    if isinstance(value, str):
        _check_choice(name, value, ("content", "noise", "style"))
    elif not hasattr(value, "shape"):
        raise _fail(name, "content, noise, style or a tensor shaped like the content", value)


def _check_extractor(name: str, value: Any) -> None:
    from .extractors.base import FeatureExtractor

    if not isinstance(value, (str, os.PathLike, FeatureExtractor)) or not str(value):
        raise _fail(name, "an extractor name, a weights file or a FeatureExtractor", value)


def _check_window(name: str, value: Any) -> None:
    if (
        not isinstance(value, Sequence)
        or len(value) != 2
        or not all(_number(v) and math.isfinite(v) for v in value)
        or not 0 <= value[0] < value[1] <= 100
    ):
        raise _fail(name, "two percentiles LOW HIGH with 0 <= LOW < HIGH <= 100", value)


def _check_device(name: str, value: Any) -> None:
    if not isinstance(value, str) and type(value).__name__ != "device":
        raise _fail(name, "a device name such as auto, cpu, cuda, cuda:1, mps", value)


# -- command-line parsers ---------------------------------------------------------------------------


def parse_float_list(text: str) -> list[float]:
    """``"1,0.5"`` -> ``[1.0, 0.5]`` (``ValueError`` naming what was expected)."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise ValueError(f"expected comma-separated numbers, got {text!r}") from error


def parse_name_list(text: str) -> list[str]:
    """``"relu1_1, relu2_1"`` -> ``["relu1_1", "relu2_1"]``."""
    return [v.strip() for v in text.split(",") if v.strip()]


def parse_scales(text: str) -> str | int | list[float]:
    """``auto``, a count, or comma-separated factors."""
    if text == "auto":
        return text
    if text.isdigit():
        return int(text)
    return parse_float_list(text)


def parse_percent(text: str) -> float:
    """A percentile given on the command line."""
    return float(text)


# -- the options ------------------------------------------------------------------------------------

_T = "transfer"
_L = "long runs"


@dataclass(frozen=True)
class TransferOptions:
    """Every option of a transfer (``ndstyle run``, :func:`ndstyle.transfer`, batch and web).

    ``None`` means "the modality's default" (see :meth:`with_defaults`). Construction checks every
    value and raises :class:`~ndstyle.errors.OptionError` naming the option.
    """

    # transfer
    steps: int | None = _option(
        None,
        OptionSpec(
            "optimiser steps at full size",
            short="-n",
            check=int_in(1, 100_000),
            default_text="300, or the modality's",
        ),
    )
    coarse_steps: int | None = _option(
        None,
        OptionSpec(
            "steps at each coarser pyramid level",
            check=int_in(1, 100_000),
            default_text="a quarter of --steps",
        ),
    )
    size: int | None = _option(
        None,
        OptionSpec(
            "working size: long side in pixels/voxels (images, volumes)",
            short="-s",
            check=int_in(1, 65_536),
            default_text="256 for images, the content's own for volumes",
        ),
    )
    scales: str | int | list[float] | None = _option(
        None,
        OptionSpec(
            "coarse-to-fine levels: 'auto', a count, or factors like 0.5,1",
            parse=parse_scales,
            check=_check_scales,
            default_text="auto, or the modality's",
        ),
    )
    seed: int = _option(0, OptionSpec("random seed", check=int_in(0, 2**63 - 1)))
    device: str = _option("auto", OptionSpec("auto, cpu, cuda, cuda:1, mps", check=_check_device))
    precision: str = _option(
        "auto",
        OptionSpec(
            "bf16 autocasts the network; auto: bf16 where the hardware has it natively and the "
            "extractor was checked in bf16, else fp32",
            choices=("auto", "fp32", "bf16"),
        ),
    )
    extractor: Any = _option(
        None,
        OptionSpec(
            "extractor name or .safetensors weights file",
            short="-e",
            check=_check_extractor,
            default_text="the modality's",
        ),
    )
    content_weight: float = _option(
        1.0, OptionSpec("alpha, weight of the content cost", short="-cw", check=number_in(0))
    )
    style_weight: float | None = _option(
        None,
        OptionSpec(
            "beta, weight of the style cost (overrides --strength)",
            short="-sw",
            check=number_in(0),
            default_text="from --strength",
        ),
    )
    strength: float | None = _option(
        None,
        OptionSpec(
            "style strength in [0, 1] (0 keeps the content, 1 is texture); sets the weights per level "
            "unless --style-weight is given",
            check=number_in(0, 1),
            default_text=(
                "the extractor's: 0.75 for VGG and random ConvNds; the measured style weight of the "
                "ECG and spectral front ends"
            ),
        ),
    )
    style_loss: str | None = _option(
        None,
        OptionSpec(
            "style statistic (docs/style-losses.md)",
            choices=("gram", "mean-cov", "sliced-wasserstein", "histogram"),
            default_text="gram; sliced-wasserstein for a volume styled by a volume (docs/volumes.md)",
        ),
    )
    tv_weight: float = _option(0.0, OptionSpec("gamma, total variation", short="-tw", check=number_in(0)))
    tol: float | None = _option(
        None,
        OptionSpec(
            "stop a pyramid level once the cost falls by less than this fraction over a window of steps "
            "(0 runs every step; docs/benchmarks.md)",
            check=number_in(0, 0.5),
            default_text="1e-3 with VGG (images), 0 otherwise",
        ),
    )
    margin: int | None = _option(
        None,
        OptionSpec(
            "optimise the content mirrored by this many positions around every border and cut them "
            "off the result, so no dark edge or frame forms there (docs/style-losses.md)",
            check=int_in(0, 65_536),
            default_text="0",
        ),
    )
    tile: int | None = _option(
        None,
        OptionSpec(
            "run each step over tiles of this many positions per axis: the exact gradient of the "
            "whole input in less memory (docs/reliability.md)",
            check=int_in(8, 65_536),
            default_text="only when the memory estimate exceeds the limit",
        ),
    )
    style_blend: list[float] | None = _option(
        None,
        OptionSpec(
            "one weight per style, comma-separated",
            parse=parse_float_list,
            check=_check_blend,
            default_text="equal",
        ),
    )
    content_layers: list[str] | None = _option(
        None,
        OptionSpec(
            "comma-separated layer names",
            parse=parse_name_list,
            check=_check_layers,
            default_text="the extractor's",
        ),
    )
    style_layers: list[str] | None = _option(
        None,
        OptionSpec(
            "comma-separated layer names",
            parse=parse_name_list,
            check=_check_layers,
            default_text="the extractor's",
        ),
    )
    init: Any = _option(
        None,
        OptionSpec("content, noise or style", check=_check_init, default_text="content, or the modality's"),
    )
    optimizer: str = _option("lbfgs", OptionSpec("optimiser", choices=("lbfgs", "adam")))
    lr: float | None = _option(
        None,
        OptionSpec(
            "step size",
            check=number_in(0, open_low=True),
            default_text="1 for L-BFGS, 2 % of the range for Adam",
        ),
    )
    mask: Any = _option(
        None,
        OptionSpec(
            "style only inside this mask, on the content's grid (a grayscale image for images, a NIfTI "
            "for volumes); outside it the result is the content",
            parse=Path,
            check=_check_path_or_tensor,
            default_text="none",
        ),
    )
    mask_interior: bool = _option(
        False,
        OptionSpec(
            "with --mask or --style-mask: take the style statistics only where a layer's receptive field "
            "lies inside the masks, so no feature straddling a mask's edge is matched (docs/volumes.md)",
            check=_check_bool,
        ),
    )
    # long runs
    max_memory: float | None = _option(
        None,
        OptionSpec(
            "memory limit in GB: above it a run keeps its grid and shortens the L-BFGS history, then runs "
            "exact tiled steps; it is refused only when even one tile cannot fit",
            group=_L,
            metavar="GB",
            check=number_in(0, open_low=True),
            default_text="the device's memory",
            fingerprint=False,
        ),
    )
    save_every: int = _option(
        0,
        OptionSpec(
            "write the best result so far every N steps to OUT's sibling <stem>.partial<suffix> "
            "(removed when the run succeeds)",
            group=_L,
            metavar="N",
            check=int_in(0),
            fingerprint=False,
        ),
    )
    checkpoint_every: int = _option(
        0,
        OptionSpec(
            "save the optimiser state every N steps so that --resume can continue the run",
            group=_L,
            metavar="N",
            check=int_in(0),
            fingerprint=False,
        ),
    )
    checkpoint: Any = _option(
        None,
        OptionSpec(
            "checkpoint file",
            group=_L,
            parse=Path,
            metavar="PATH",
            check=_check_path,
            default_text="OUT.checkpoint.safetensors; removed after success",
            fingerprint=False,
        ),
    )
    resume: bool = _option(
        False,
        OptionSpec(
            "continue from the checkpoint; gives the same result as an uninterrupted run",
            group=_L,
            check=_check_bool,
            fingerprint=False,
        ),
    )
    keep_checkpoint: bool = _option(
        False,
        OptionSpec(
            "keep the checkpoint file after a successful run", group=_L, check=_check_bool, fingerprint=False
        ),
    )
    # image
    style_scale: float = _option(
        1.0,
        OptionSpec(
            "style long side relative to the content's working size",
            group="image",
            check=number_in(0, 16, open_low=True),
        ),
    )
    preserve_color: str = _option(
        "none",
        OptionSpec(
            "keep the content's colours: luminance-only transfer (YIQ) or colour matching of the result "
            "to the content (mean/covariance)",
            group="image",
            choices=("none", "luminance", "histogram"),
        ),
    )
    original_size: bool = _option(
        False,
        OptionSpec("write the result at the content's original size", group="image", check=_check_bool),
    )
    init_file: Any = _option(
        None,
        OptionSpec(
            "start from this image (resized)",
            group="image",
            parse=Path,
            check=_check_path,
            default_text="none",
        ),
    )
    pooling: str = _option("max", OptionSpec("VGG pooling", group="image", choices=("max", "avg")))
    download: bool = _option(
        False,
        OptionSpec(
            "download VGG-19 weights if no VGG weights are found",
            group="image",
            check=_check_bool,
            fingerprint=False,
        ),
    )
    # audio
    n_fft: int = _option(1024, OptionSpec("STFT size", group="audio", check=int_in(16, 65_536)))
    hop: int = _option(512, OptionSpec("STFT hop in samples", group="audio", check=int_in(1, 65_536)))
    working_rate: int | None = _option(
        None,
        OptionSpec(
            "sample rate of the optimisation",
            group="audio",
            metavar="HZ",
            check=int_in(1, 1_000_000),
            default_text="the content's",
        ),
    )
    filters: int = _option(512, OptionSpec("random spectral filters", group="audio", check=int_in(1, 65_536)))
    audio_mode: str = _option(
        "waveform",
        OptionSpec(
            "optimise the waveform or the magnitude spectrogram + Griffin-Lim",
            group="audio",
            choices=("waveform", "griffin-lim"),
        ),
    )
    # signal
    sample_rate: float | None = _option(
        None,
        OptionSpec(
            "sample rate of CSV inputs without a '# sample_rate=' line",
            group="signal",
            metavar="HZ",
            check=number_in(0, 1e6, open_low=True),
            default_text="from the file",
        ),
    )
    # volume
    vol_normalize: str = _option(
        "percentile",
        OptionSpec("intensity normalisation", group="volume", choices=("percentile", "zscore")),
    )
    vol_window: tuple[float, float] = _option(
        (0.5, 99.5),
        OptionSpec(
            "percentile window mapped to [0, 1]",
            group="volume",
            parse=parse_percent,
            nargs=2,
            metavar="P",
            check=_check_window,
        ),
    )
    float32: bool = _option(
        False, OptionSpec("write float32 instead of the content's dtype", group="volume", check=_check_bool)
    )
    style_mask: Any = _option(
        None,
        OptionSpec(
            "NIfTI mask on the style volume's grid: its statistics are taken there only (e.g. its brain "
            "when the content's --mask is a brain)",
            group="volume",
            parse=Path,
            check=_check_path_or_tensor,
            default_text="the style's automatic (Otsu) foreground",
        ),
    )
    outside: str = _option(
        "content",
        OptionSpec(
            "what a volume styled by a volume holds outside --mask (or the automatic foreground): the "
            "content as it was, or the style's background (its 1st percentile: air for a CT), so that a "
            "cross-modality result is in the style's units throughout (docs/volumes.md)",
            group="volume",
            choices=("content", "background"),
        ),
    )
    vol_recipe: str = _option(
        "harmonize",
        OptionSpec(
            "harmonize: the content histogram-matched to the style inside the masks is the start and the "
            "content target, values bounded by the inputs' range, shallow style layers, masks automatic "
            "when not given (docs/volumes.md); gatys: the plain recipe",
            group="volume",
            choices=("harmonize", "gatys"),
        ),
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None:
                continue
            spec: OptionSpec = f.metadata["spec"]
            if spec.choices is not None:
                _check_choice(f.name, value, spec.choices)
            if spec.check is not None:
                spec.check(f.name, value)
        if self.hop > self.n_fft:
            raise OptionError(f"--hop: expected at most --n-fft ({self.n_fft}), got {self.hop}")

    @classmethod
    def from_kwargs(cls, **options: Any) -> TransferOptions:
        """Build from keywords, refusing unknown names with a suggestion."""
        names = option_names()
        unknown = [k for k in options if k not in names]
        if unknown:
            from ._checks import suggest

            raise OptionError(
                f"unknown option {unknown[0]!r}.{suggest(unknown[0], names)} "
                f"Options are the long names of 'ndstyle run' (see ndstyle.TransferOptions)"
            )
        return cls(**options)

    def with_defaults(self, defaults: dict[str, Any]) -> TransferOptions:
        """Fill options left at ``None`` from ``defaults`` (a modality's)."""
        filled = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        return dataclasses.replace(self, **filled) if filled else self

    def changed(self) -> dict[str, Any]:
        """Options that differ from their defaults."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        }

    def fingerprint(self) -> str:
        """A hex digest of every option that changes the result (files by their contents)."""
        values = {
            f.name: _canonical(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.metadata["spec"].fingerprint
        }
        text = json.dumps(values, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


def _canonical(value: Any) -> Any:
    """A JSON-able form: files by content hash, tensors/arrays by value hash, extractors by description."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and os.path.isfile(value)):
        path = Path(value)
        if path.is_file():
            return {"file": path.name, "sha256": _file_hash(path)}
        return str(value)
    if hasattr(value, "shape") and (hasattr(value, "tobytes") or hasattr(value, "detach")):
        import numpy as np

        array = np.ascontiguousarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
        return {"array": list(array.shape), "sha256": hashlib.sha256(array.tobytes()).hexdigest()}
    if hasattr(value, "describe") and callable(value.describe):
        return {"extractor": value.describe()}
    if isinstance(value, tuple):
        return list(value)
    return value


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def option_fields() -> Iterator[tuple[dataclasses.Field[Any], OptionSpec]]:
    """Every field of :class:`TransferOptions` with its :class:`OptionSpec`, in declaration order."""
    for f in dataclasses.fields(TransferOptions):
        yield f, f.metadata["spec"]


def option_names() -> list[str]:
    """The keyword names of every option."""
    return [f.name for f, _ in option_fields()]


def default_text(f: dataclasses.Field[Any], spec: OptionSpec) -> str:
    """The default as ``--help`` and the docs say it."""
    if spec.default_text is not None:
        return spec.default_text
    if isinstance(f.default, tuple):
        return " ".join(str(v) for v in f.default)
    return str(f.default)


def options_table() -> str:
    """A Markdown table of every option (flag, keyword, default, meaning), for ``docs/api.md``."""
    rows = ["| flag | keyword | default | meaning |", "|---|---|---|---|"]
    for f, spec in option_fields():
        flags = ", ".join(f"`{s}`" for s in [flag_of(f.name)] + ([spec.short] if spec.short else []))
        choices = f" ({' / '.join(spec.choices)})" if spec.choices else ""
        meaning = f"[{spec.group}] {spec.help}{choices}".replace("|", "\\|")
        rows.append(f"| {flags} | `{f.name}` | {default_text(f, spec)} | {meaning} |")
    return "\n".join(rows)


__all__ = [
    "GROUPS",
    "OptionSpec",
    "TransferOptions",
    "flag_of",
    "option_fields",
    "option_names",
    "options_table",
]
