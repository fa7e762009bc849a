"""Physiological signals (ECG...): WFDB records and CSV files, leads as channels.

* WFDB: ``record.hea`` (+ its ``.dat``) through the ``wfdb`` package; the result keeps the sample
  rate, lead names, units, storage format and ADC gains (the ``.dat`` is written next to the
  result's ``.hea`` under the result's name).
* CSV: one column per lead and a header row with the lead names; the sample rate comes from
  ``--sample-rate`` or a ``# sample_rate=500`` comment line, which the result repeats. A leading
  ``time``/``t``/``seconds`` column is kept and rewritten.
* ``.npy`` arrays ``(leads, samples)`` stay with the ``array`` modality (``--modality array``);
  they carry no rate or lead names.

Each lead is standardised (zero mean, unit std) for the network; writing inverts it exactly. The
extractor is a random :class:`~ndstyle.extractors.ConvNdExtractor` on raw samples whose kernel is
chosen from the sample rate so that its receptive fields run from ~70 ms (a QRS complex) at the
first block to ~1 s (a beat) at the last; the content cost reads an early layer, which pins the
content's beat timing.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import InputFileError, OptionError
from ..extractors.convnd import ConvNdExtractor
from ..options import TransferOptions
from .base import Loaded, Modality, Prepared, standard_info

_RATE = re.compile(r"#\s*sample_rate\s*=\s*([0-9.]+)", re.IGNORECASE)
_TIME_COLUMNS = ("time", "t", "seconds", "time_s", "sec")
DEFAULT_STEPS = 150


def ecg_extractor(sample_rate: float, leads: int, *, seed: int = 0) -> ConvNdExtractor:
    """A random 1-D ConvNd whose receptive fields span ~70 ms (block 1) to ~1 s (block 4).

    Four blocks of two convolutions with 2x average pooling between them: the receptive field is
    ``30 * (kernel - 1)`` samples, so ``kernel ~ rate / 30 + 1`` (odd, at least 3).
    """
    kernel = max(3, int(round(sample_rate / 30)) + 1)
    kernel += 1 - kernel % 2
    return ConvNdExtractor.random(
        1, leads, seed=seed, widths=(32, 64, 64, 128), kernel_size=kernel, pooling="avg", pool_size=2
    )


def _decimals(rows: list[str], columns: int) -> list[int | None]:
    """Digits after the point in each column (the most any row uses); ``None`` for exponent notation."""
    out: list[int | None] = [0] * columns
    for row in rows:
        for i, token in enumerate(row.split(",")[:columns]):
            token = token.strip()
            if out[i] is None:
                continue
            if "e" in token.lower():
                out[i] = None
            elif "." in token:
                out[i] = max(out[i] or 0, len(token) - token.index(".") - 1)
    return out


def _format_column(values: np.ndarray, decimals: int | None) -> list[str]:
    """Values as text with ``decimals`` digits after the point (trailing zeros dropped); repr if None."""
    if decimals is None:
        return [repr(float(v)) for v in values]
    if decimals == 0:
        return [str(int(v)) for v in np.rint(values)]
    return [f"{v:.{decimals}f}".rstrip("0").rstrip(".") for v in values]


def _read_csv(path: Path, sample_rate: float | None) -> tuple[np.ndarray, dict[str, Any]]:
    text = path.read_text(encoding="utf-8-sig").splitlines()
    comments = [line for line in text if line.lstrip().startswith("#")]
    rows = [line for line in text if line.strip() and not line.lstrip().startswith("#")]
    if len(rows) < 2:
        raise InputFileError(f"{str(path)!r}: expected a header row of lead names and at least one data row")
    header = [h.strip() for h in rows[0].split(",")]
    try:
        values = np.array([[float(v) for v in row.split(",")] for row in rows[1:]], dtype=np.float64)
    except ValueError as error:
        raise InputFileError(f"{str(path)!r}: non-numeric value in the data rows ({error})") from error
    if values.ndim != 2 or values.shape[1] != len(header):
        raise InputFileError(f"{str(path)!r}: every row must have {len(header)} values like the header")
    rate = sample_rate
    for line in comments:
        match = _RATE.search(line)
        if match and rate is None:
            rate = float(match.group(1))
    time_column = header[0] if header[0].lower() in _TIME_COLUMNS and len(header) > 1 else None
    if rate is None and time_column is not None and values.shape[0] > 1:
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 or NaN spacing: refused below
            rate = float(np.float64(1.0) / np.median(np.diff(values[:, 0])))
    if rate is None:
        raise InputFileError(
            f"{str(path)!r}: no sample rate; add a '# sample_rate=HZ' line or pass --sample-rate"
        )
    decimals = _decimals(rows[1:], len(header))
    if time_column is not None:
        time0 = float(values[0, 0])
        values, header = values[:, 1:], header[1:]
        time_decimals, decimals = decimals[0], decimals[1:]
    else:
        time0, time_decimals = 0.0, None
    meta = {
        "format": "csv",
        "sample_rate": float(rate),
        "lead_names": header,
        "units": [""] * len(header),
        "time_column": time_column,
        "time0": time0,
        "decimals": decimals,
        "time_decimals": time_decimals,
        "comments": [c for c in comments if not _RATE.search(c)],
    }
    return values.T.copy(), meta


def _read_wfdb(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    import wfdb

    try:
        record = wfdb.rdrecord(str(path.with_suffix("")))
    except (OSError, ValueError) as error:
        raise InputFileError(f"{str(path)!r} is not a readable WFDB record ({error})") from error
    if record.p_signal is None:
        raise InputFileError(f"{str(path)!r} holds no physical signal")
    meta = {
        "format": "wfdb",
        "sample_rate": float(record.fs),
        "lead_names": list(record.sig_name),
        "units": list(record.units),
        "fmt": list(record.fmt),
        "adc_gain": list(record.adc_gain),
        "baseline": list(record.baseline),
        "comments": list(record.comments or []),
    }
    return np.asarray(record.p_signal, dtype=np.float64).T.copy(), meta


def read_signal(path: Path, sample_rate: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Read ``(leads, samples)`` float64 plus rate, lead names, units and format details."""
    if not path.is_file():
        raise InputFileError(f"{str(path)!r} does not exist or is not a file")
    suffix = path.suffix.lower()
    values, meta = _read_wfdb(path) if suffix == ".hea" else _read_csv(path, sample_rate)
    rate = meta["sample_rate"]
    if not (np.isfinite(rate) and 0 < rate <= 1e6):
        raise InputFileError(
            f"{str(path)!r}: sample rate {rate:g} Hz (from the file, or its time column) is not a positive "
            f"finite number up to 1e6; fix the file or pass --sample-rate"
        )
    if values.size == 0 or not np.isfinite(values).all():
        raise InputFileError(f"{str(path)!r} is empty or holds NaN/infinite samples")
    return values, meta


def check_record_name(output: Path) -> str:
    """The WFDB record name of ``output`` (``out.hea`` -> ``out``); WFDB allows letters, digits, - and _."""
    stem = output.name[: -len(output.suffix)] if output.suffix else output.name
    if not re.fullmatch(r"[-\w]+", stem):
        raise OptionError(
            f"output {str(output)!r}: a WFDB record name may hold only letters, digits, '-' and '_' "
            f"(got {stem!r})"
        )
    return stem


class SignalModality(Modality):
    """Multi-lead physiological signals (WFDB ``.hea``, ``.csv``) with leads as channels."""

    name = "signal"
    extensions = (".hea", ".csv")
    spatial_dims = 1
    description = "physiological signals (WFDB .hea/.dat, CSV with lead names)"

    defaults: ClassVar[dict[str, Any]] = {"init": "content", "scales": 1, "steps": DEFAULT_STEPS}
    stylize_defaults: ClassVar[dict[str, Any]] = {"value_range": None}

    def load(self, path: Path, options: TransferOptions | None = None) -> Loaded:
        """Read and standardise each lead: ``(leads, samples)`` float32 with mean 0, std 1."""
        values, meta = read_signal(path, options.sample_rate if options is not None else None)
        mean = values.mean(axis=1, keepdims=True)
        std = values.std(axis=1, keepdims=True)
        std[std == 0] = 1.0
        meta.update(mean=mean, std=std, samples=values.shape[1])
        return Loaded(torch.from_numpy(((values - mean) / std).astype(np.float32)), meta, path)

    def load_style(self, path: Path, content: Loaded, options: TransferOptions | None = None) -> Loaded:
        """Read a style, resampled to the content's rate, with the content's number of leads."""
        style = self.load(path, options)
        rate_in, rate_out = style.meta["sample_rate"], content.meta["sample_rate"]
        x = style.tensor.numpy().astype(np.float64)
        if rate_in != rate_out:
            from fractions import Fraction

            from scipy.signal import resample_poly

            ratio = Fraction(rate_out / rate_in).limit_denominator(1000)
            x = resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
        leads = content.tensor.shape[0]
        if x.shape[0] != leads:
            if x.shape[0] != 1 and leads != 1:
                raise InputFileError(
                    f"{str(path)!r} has {x.shape[0]} leads but the content has {leads}; give a style with "
                    f"{leads} leads or one lead"
                )
            x = np.repeat(x.mean(axis=0, keepdims=True), leads, axis=0)
        return Loaded(torch.from_numpy(x.astype(np.float32)), style.meta, path)

    def build_extractor(
        self, content: Loaded, styles: list[Loaded], options: TransferOptions, **builder_options: Any
    ) -> Any:
        """:class:`~ndstyle.extractors.ecg.ECGExtractor` on :func:`ecg_extractor` unless another is named.

        The content's lead names and standardisation let it rebuild III, aVR, aVL and aVF from I
        and II (the optimisation moves only independent leads).
        """
        if options.extractor in (None, "ecg"):
            from ..extractors.ecg import build_ecg_extractor

            meta = content.meta
            return build_ecg_extractor(
                meta["sample_rate"],
                content.tensor.shape[0],
                seed=options.seed,
                lead_names=meta.get("lead_names"),
                mean=np.asarray(meta["mean"]).ravel().tolist() if "mean" in meta else None,
                std=np.asarray(meta["std"]).ravel().tolist() if "std" in meta else None,
            )
        return super().build_extractor(content, styles, options, **builder_options)

    def prepare(self, content: Loaded, styles: list[Loaded], options: TransferOptions) -> Prepared:
        """The content cost reads the 0.5-40 Hz band sample by sample (beat shapes and polarity).

        Style: the ConvNd's first ReLUs (reading the input outside 0.5-40 Hz, so the style's own
        beats do not count) plus the wander (< 0.5 Hz) and muscle (> 40 Hz) bands (the extractor's
        defaults, style weight 1e3); measured in docs/signals.md.
        """
        return super().prepare(content, styles, options)

    def finish(self, output: torch.Tensor, prepared: Prepared, options: TransferOptions) -> torch.Tensor:
        """Rebuild the derived limb leads so that III = II - I, aVR = -(I + II) / 2, ... hold exactly."""
        extractor = prepared.kwargs.get("extractor")
        project = getattr(extractor, "project", None)
        return project(output) if callable(project) else output

    def save(
        self, path: Path, result: torch.Tensor, content: Loaded, options: TransferOptions | None = None
    ) -> None:
        """Undo the standardisation and write in the content's format, rate, leads and units."""
        meta = content.meta
        values = result.detach().double().cpu().numpy() * meta["std"] + meta["mean"]
        if meta["format"] == "csv":
            self._write_csv(path, values, meta)
        else:
            self._write_wfdb(path, values, meta)

    @staticmethod
    def _write_csv(path: Path, values: np.ndarray, meta: dict[str, Any]) -> None:
        """One column per lead with the input column's decimals (full precision when unknown)."""
        header = list(meta["lead_names"])
        decimals = list(meta.get("decimals") or [None] * values.shape[0])
        columns = [_format_column(values[i], decimals[i]) for i in range(values.shape[0])]
        if meta.get("time_column"):
            time = meta["time0"] + np.arange(values.shape[1]) / meta["sample_rate"]
            columns.insert(0, _format_column(time, meta.get("time_decimals")))
            header = [meta["time_column"], *header]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(f"# sample_rate={meta['sample_rate']:g}\n")
            for line in meta.get("comments", []):
                handle.write(line.rstrip() + "\n")
            handle.write(",".join(header) + "\n")
            for row in zip(*columns, strict=True):
                handle.write(",".join(row) + "\n")

    @staticmethod
    def _write_wfdb(path: Path, values: np.ndarray, meta: dict[str, Any]) -> None:
        """Write ``record.hea`` + ``record.dat``; ``path`` may be an atomic temporary ``.hea``.

        WFDB names the signal file after the record and writes its name into the header, so the
        record is written under the final name (:func:`ndstyle.io.atomic.final_path`) in a scratch
        folder; the header is copied to ``path`` and the ``.dat`` becomes a companion of it
        (:func:`ndstyle.io.atomic.companion`): both appear together, or neither.
        """
        import wfdb

        from ..io.atomic import companion, final_path

        final = final_path(path)
        stem = check_record_name(final)
        fmt = meta.get("fmt") or ["16"] * values.shape[0]
        scratch = tempfile.mkdtemp(prefix=".ndstyle-wfdb-", dir=path.parent)
        try:
            try:
                wfdb.wrsamp(
                    stem,
                    fs=meta["sample_rate"],
                    units=list(meta["units"]),
                    sig_name=list(meta["lead_names"]),
                    p_signal=np.ascontiguousarray(values.T),
                    fmt=[str(f) for f in fmt][: values.shape[0]],
                    comments=list(meta.get("comments", [])) or None,
                    write_dir=scratch,
                )
            except (ValueError, TypeError) as error:
                raise OptionError(f"cannot write WFDB record {str(final)!r}: {error}") from error
            for produced in sorted(Path(scratch).iterdir()):
                if produced.suffix == ".hea":
                    shutil.copyfile(produced, path)
                else:
                    os.replace(produced, companion(path, final.parent / produced.name))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def marked(self, output: Path, mark: str) -> Path:
        """``out.hea`` -> ``out_<mark>.hea`` (a WFDB record name holds no '.'); CSV as usual."""
        if output.suffix.lower() == ".hea":
            return output.with_name(f"{output.stem}_{mark}{output.suffix}")
        return super().marked(output, mark)

    def output_companions(self, output: Path) -> list[Path]:
        """A WFDB record ``out.hea`` also writes ``out.dat`` (checked before any work)."""
        if output.suffix.lower() != ".hea":
            return []
        check_record_name(output)
        return [output.with_suffix(".dat")]

    def preview(self, path: Path, content: Loaded, styles: list[Loaded], result: torch.Tensor) -> None:
        """Every lead in the standard 12-lead layout with units, the result over the content.

        Beside each lead: the median beats (0.5-40 Hz, aligned on the content's R peaks).
        """
        from ..signal_plots import ecg_figure

        meta = content.meta
        physical = content.tensor.detach().double().cpu().numpy() * meta["std"] + meta["mean"]
        values = result.detach().double().cpu().numpy() * meta["std"] + meta["mean"]
        names = [str(s.path.name) if s.path is not None else "style" for s in styles]
        ecg_figure(
            path,
            physical,
            values,
            meta["sample_rate"],
            meta["lead_names"],
            meta["units"],
            title=f"result (black) over the content (grey); style: {', '.join(names)}",
        )

    def info(self, path: Path) -> dict[str, Any]:
        values, meta = read_signal(path)
        return standard_info(
            channels=values.shape[0],
            shape=(values.shape[1],),
            spacing=(1.0 / meta["sample_rate"],),
            unit="s",
            dtype=str(meta.get("fmt") or meta.get("dtype") or "float64"),
            sample_rate=meta["sample_rate"],
            leads=", ".join(meta["lead_names"]),
            units=", ".join(meta["units"]),
        )


MODALITY = SignalModality()
