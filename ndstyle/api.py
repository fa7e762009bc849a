"""The file-level Python API: :func:`load`, :func:`save`, :func:`transfer` and :func:`describe`.

``ndstyle run`` is argument parsing plus one :func:`transfer` call; the batch runner and the web app
call it too. Paths, :class:`~ndstyle.modalities.Loaded` objects and in-memory objects (a
``PIL.Image``, a numpy array or torch tensor ``(C, *spatial)``, a ``nibabel`` image) are accepted
wherever an input is.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import torch

from .engine import StepInfo, StepRecord, StyleTransferResult
from .errors import InputFileError, InterruptedRun, NdstyleError, OptionError
from .modalities import Loaded, Modality, get_modality, modality_for_path
from .modalities.base import Prepared
from .options import TransferOptions

logger = logging.getLogger("ndstyle")

Source = str | os.PathLike[str] | Loaded | Any


@dataclass
class TransferResult:
    """What :func:`transfer` returns.

    Attributes:
        output: the result ``(C, *spatial)`` on the content's working grid (after the modality's
            finishing step, e.g. colour preservation).
        content: the content as loaded (with this run's working metadata).
        styles: the styles as loaded.
        history: one :class:`~ndstyle.StepRecord` per optimiser step.
        best_cost: the total cost of the result at the finest scale.
        options: the options the run used (modality defaults filled in).
        modality: the modality's name.
        extractor: one line describing the extractor.
        path: the result file written, or ``None``.
        preview_path: the preview PNG written, or ``None``.
        report: the field measures (:mod:`ndstyle.metrics`) if asked for, else ``None``.
        report_path: the JSON report written, or ``None``.
        seconds: wall time of the whole call.
        engine: the engine's own :class:`~ndstyle.StyleTransferResult`.

    """

    output: torch.Tensor
    content: Loaded
    styles: list[Loaded]
    history: list[StepRecord]
    best_cost: float
    options: TransferOptions
    modality: str
    extractor: str
    path: Path | None = None
    preview_path: Path | None = None
    report: dict[str, Any] | None = None
    report_path: Path | None = None
    seconds: float = 0.0
    engine: StyleTransferResult | None = field(default=None, repr=False)


# -- inputs ------------------------------------------------------------------------------------------


def check_input_file(path: Path) -> None:
    """One-line errors for inputs that cannot be read at all (before any reader sees them)."""
    if not path.exists():
        raise InputFileError(f"input {str(path)!r} does not exist")
    if path.is_dir():
        raise InputFileError(f"input {str(path)!r} is a folder; expected a file")
    if not os.access(path, os.R_OK):
        raise InputFileError(f"input {str(path)!r} is not readable (permission denied)")
    try:
        size = path.stat().st_size
    except OSError as error:
        raise InputFileError(f"input {str(path)!r} cannot be read: {error.strerror or error}") from error
    if size == 0 and path.is_file():
        raise InputFileError(f"input {str(path)!r} is empty (0 bytes)")


def _is_path(source: Any) -> TypeGuard[str | os.PathLike[str]]:
    return isinstance(source, (str, os.PathLike))


def modality_of(source: Source, override: str | None = None) -> Modality:
    """The modality that reads ``source`` (a path, a :class:`Loaded` or an in-memory object)."""
    if override:
        return get_modality(override)
    if isinstance(source, Loaded):
        return get_modality(source.modality or "array")
    if _is_path(source):
        return modality_for_path(Path(source))
    kind = type(source).__module__.split(".")[0]
    if kind == "PIL":
        return get_modality("image")
    if kind == "nibabel":
        return get_modality("volume")
    if hasattr(source, "shape"):
        return get_modality("array")
    raise OptionError(
        f"cannot read an input of type {type(source).__name__}: give a file path, an ndstyle.Loaded, a "
        f"PIL.Image, a nibabel image or an array/tensor shaped (C, *spatial)"
    )


def _read(
    modality: Modality,
    source: Source,
    options: TransferOptions,
    content: Loaded | None = None,
) -> Loaded:
    if isinstance(source, Loaded):
        return source
    if _is_path(source):
        path = Path(source)
        check_input_file(path)
        if content is None:
            return modality.load(path, options)
        return modality.load_style(path, content, options)
    reader = getattr(modality, "from_object", None)
    if reader is None:
        raise OptionError(f"the {modality.name} modality reads files only, got a {type(source).__name__}")
    return reader(source, options, content)


def load(path: Source, modality: str | None = None, **reader_options: Any) -> Loaded:
    """Read ``path`` (any supported format, or an in-memory object) as :class:`Loaded`.

    Args:
        path: a file, or a ``PIL.Image``/``nibabel`` image/array ``(C, *spatial)``.
        modality: the reader to use (default: from the extension or the object's type).
        **reader_options: options of the reader (``size``, ``sample_rate``, ``working_rate``,
            ``vol_normalize``...), named as :class:`~ndstyle.TransferOptions` fields.

    Returns:
        ``.tensor`` ``(C, *spatial)`` float32, ``.meta``, ``.path`` and ``.modality``.

    """
    options = TransferOptions.from_kwargs(**reader_options)
    chosen = modality_of(path, modality)
    return _read(chosen, path, options.with_defaults(chosen.defaults))


def save(
    path: str | os.PathLike[str],
    tensor: torch.Tensor,
    like: Loaded,
    *,
    overwrite: bool = False,
    **writer_options: Any,
) -> Path:
    """Write ``tensor`` ``(C, *spatial)`` to ``path`` with the metadata of ``like``, atomically.

    The format follows ``path``'s extension (within ``like``'s modality). An existing file is
    never replaced unless ``overwrite``; ``like``'s own file never is.
    """
    from .io.atomic import atomic_output, check_output_path

    options = TransferOptions.from_kwargs(**writer_options)
    modality = get_modality(like.modality or "array")
    out = Path(path)
    inputs = [like.path] if like.path is not None else []
    check_output_path(out, overwrite=overwrite, inputs=inputs)
    check_output_suffix(modality, out)
    with atomic_output(out, overwrite=overwrite, inputs=inputs) as tmp:
        modality.save(tmp, tensor.detach().float().cpu(), like, options.with_defaults(modality.defaults))
    return out


def check_output_suffix(modality: Modality, output: Path) -> None:
    """Refuse an output whose extension the modality cannot write."""
    from .modalities import file_suffix

    allowed = tuple(getattr(modality, "output_extensions", ()) or modality.extensions)
    if file_suffix(output) not in allowed:
        raise OptionError(
            f"output {str(output)!r}: a {modality.name} result cannot be written as "
            f"{file_suffix(output) or '(no extension)'!r}; expected one of {', '.join(allowed)}"
        )


def describe(path: str | os.PathLike[str], modality: str | None = None) -> dict[str, Any]:
    """What ``ndstyle info`` shows: the same keys for every modality, then the modality's own.

    Keys: ``modality``, ``channels``, ``shape`` (spatial, as stored), ``spacing`` and ``extent``
    (with ``unit``: s for signals, mm for volumes, px for images), ``dtype``.
    """
    file = Path(path)
    check_input_file(file)
    if file.suffix == ".safetensors":
        from .weights import describe_file

        return {"modality": "weights", **describe_file(file)}
    chosen = modality_of(file, modality)
    facts = chosen.info(file)
    return {"modality": chosen.name, **facts}


# -- the transfer ------------------------------------------------------------------------------------


def checkpoint_file(output: Path | None, options: TransferOptions) -> Path | None:
    """The checkpoint of a run: ``checkpoint`` or ``<output>.checkpoint.safetensors``."""
    if options.checkpoint is not None:
        return Path(options.checkpoint)
    if output is None:
        return None
    return output.with_name(f"{output.name}.checkpoint.safetensors")


def files_read(content: Source, styles: Sequence[Source], options: TransferOptions) -> list[Path]:
    """Every file this run reads: content, styles, mask, init file, weights, checkpoint to resume.

    A WFDB record's signal files (named in its ``.hea``) are included with it. The default
    checkpoint of a resumed run (next to the output) is added by :func:`_plan_outputs`.
    """
    candidates: list[Any] = [content, *styles, options.mask, options.init_file]
    if isinstance(options.extractor, (str, os.PathLike)) and Path(options.extractor).is_file():
        candidates.append(options.extractor)
    if options.resume and options.checkpoint is not None:
        candidates.append(options.checkpoint)
    paths = [Path(c) for c in candidates if _is_path(c)]
    return paths + [d for p in paths for d in _record_files(p)]


def _record_files(path: Path) -> list[Path]:
    """The signal files a WFDB header ``path`` names (none for other files)."""
    if path.suffix.lower() != ".hea" or not path.is_file():
        return []
    names: list[Path] = []
    with contextlib.suppress(OSError, UnicodeDecodeError):
        lines = [
            x for x in path.read_text(errors="strict").splitlines() if x.strip() and not x.startswith("#")
        ]
        for line in lines[1:]:
            name = line.split()[0]
            if name and "/" not in name and name != "~":
                names.append(path.with_name(name))
    return names


@dataclass
class _Outputs:
    """The files one run may write, checked before any work starts."""

    result: Path | None
    preview: Path | None
    report: Path | None
    checkpoint: Path | None
    partial: Path | None
    interrupted: Path | None
    inputs: list[Path]
    overwrite: bool = False
    wrote_partial: bool = False
    checkpoint_before: tuple[int, int, int] | None = None

    def finals(self) -> list[Path]:
        return [p for p in (self.result, self.preview, self.report) if p is not None]


def _plan_outputs(
    modality: Modality,
    output: Path | None,
    preview: Path | None,
    report: Path | None,
    options: TransferOptions,
    inputs: list[Path],
    overwrite: bool,
) -> _Outputs:
    """Check every file the run may write before any work: results, checkpoint and temporaries.

    No planned file may be a file the run reads (through links too), none may be planned twice,
    none may replace an existing file unless ``overwrite`` (the checkpoint of ``resume`` is read
    and then updated), and every folder must be writable.
    """
    from .io.atomic import check_output_path, same_file

    if output is None and (options.save_every or options.checkpoint_every or options.resume):
        if options.save_every or options.checkpoint is None:
            raise OptionError("save_every and checkpoints need an output path (output=...)")
    checkpoint = checkpoint_file(output, options) if (options.checkpoint_every or options.resume) else None
    reads = list(inputs)
    if options.resume and checkpoint is not None and not any(same_file(checkpoint, r) for r in reads):
        reads.append(checkpoint)
    partial = modality.marked(output, "partial") if output is not None and options.save_every else None
    interrupted = modality.marked(output, "interrupted") if output is not None else None

    def with_companions(role: str, path: Path | None) -> list[tuple[str, Path]]:
        if path is None:
            return []
        extra = (
            modality.output_companions(path)
            if role.split()[0] in ("output", "partial", "interrupted")
            else []
        )
        return [(role, path), *((f"{role} (companion)", c) for c in extra)]

    if output is not None:
        check_output_path(output, overwrite=overwrite, inputs=reads)
        check_output_suffix(modality, output)
    planned = [
        *with_companions("output", output),
        *with_companions("--preview", preview),
        *with_companions("--report", report),
        *with_companions("checkpoint", checkpoint),
        *with_companions("partial result (--save-every)", partial),
        *with_companions("interrupted result", interrupted),
    ]
    for i, (role, path) in enumerate(planned):
        for other_role, other in planned[:i]:
            if same_file(path, other):
                raise OptionError(f"{role} {str(path)!r} is also the {other_role}; choose another path")
        if role.startswith("checkpoint"):
            # a resumed checkpoint is read and then updated: it may be itself, never another input
            others = [r for r in reads if not same_file(r, path)] if options.resume else reads
            if options.resume and len(others) < len(reads) - 1:
                raise OptionError(f"checkpoint {str(path)!r} is also another input of this run")
            check_output_path(path, overwrite=True, inputs=others)
        elif role.startswith("interrupted"):  # written only on Ctrl-C, under a free name
            check_output_path(path, overwrite=True, inputs=reads)
        else:
            check_output_path(path, overwrite=overwrite, inputs=reads)
    if checkpoint is not None:
        if options.resume and not checkpoint.is_file():
            raise OptionError(f"--resume: no checkpoint {str(checkpoint)!r} to resume from")
        if not options.resume and checkpoint.exists() and not overwrite:
            raise OptionError(
                f"checkpoint {str(checkpoint)!r} exists from an earlier run; pass --resume to continue "
                f"it or --overwrite to start afresh"
            )
    before = _stamp(checkpoint) if checkpoint is not None else None
    return _Outputs(
        output, preview, report, checkpoint, partial, interrupted, reads, overwrite, False, before
    )


def _measure(modality: str, prepared: Any, styles: list[Loaded], result: torch.Tensor) -> dict[str, Any]:
    """The field's measures of ``result``; a judge that fails does not cost the result.

    The optimisation may have taken hours: a measure that raises is logged in one line and the
    report holds ``{"error": ...}`` instead, while the result is written as usual.
    """
    from .metrics import report as measure

    try:
        return measure(modality, prepared.content, styles, result, mask=prepared.kwargs.get("mask"))
    except Exception as error:
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        logger.warning("the %s judge failed (%s); the result is written without measures", modality, message)
        return {"error": message}


def _log_failed_checks(modality: str, path: Path | None, measures: dict[str, Any] | None) -> None:
    """One warning line when the result failed its field's checks: which, by how much, and a hint."""
    from .metrics import CHECKS_LOGGER, advice, failures

    failed = failures(measures)
    if not failed:
        return
    hint = advice(measures)
    logging.getLogger(CHECKS_LOGGER).warning(
        "%s: flagged by the %s checks: %s.%s Look at the result before using it.",
        path if path is not None else "the result",
        modality,
        "; ".join(failed),
        f" Likely cause: {hint}." if hint else "",
    )


def _stylize_keywords(options: TransferOptions, modality: Modality) -> dict[str, Any]:
    """Keywords of :func:`ndstyle.stylize` from the options (unset ones keep stylize's defaults)."""
    names = (
        "steps",
        "coarse_steps",
        "scales",
        "seed",
        "device",
        "precision",
        "content_weight",
        "style_weight",
        "strength",
        "style_loss",
        "mask_interior",
        "tol",
        "margin",
        "tile",
        "tv_weight",
        "style_blend",
        "content_layers",
        "style_layers",
        "init",
        "optimizer",
        "lr",
    )
    kwargs: dict[str, Any] = dict(modality.stylize_defaults)
    for name in names:
        value = getattr(options, name)
        if value is not None:
            kwargs[name] = value
    if options.max_memory is not None:
        kwargs["max_memory"] = int(options.max_memory * 1024**3)
    return kwargs


def _chain(*callbacks: Callable[[StepInfo], bool | None] | None) -> Callable[[StepInfo], bool | None] | None:
    chosen = [c for c in callbacks if c is not None]
    if not chosen:
        return None

    def call(info: StepInfo) -> bool:
        stop = False
        for callback in chosen:
            stop = bool(callback(info)) or stop
        return stop

    return call


def _periodic_saver(
    modality: Modality, prepared: Prepared, options: TransferOptions, out: _Outputs
) -> Callable[[StepInfo], None]:
    """Write the best result so far every ``save_every`` steps to ``out.partial``.

    The first write may replace an existing file only with ``overwrite`` (checked up front too);
    ``out.wrote_partial`` records that this run created the file, so that only then it is removed.
    """
    from .functional import resize
    from .io.atomic import atomic_output

    shape = tuple(prepared.tensor.shape[1:])

    def save(info: StepInfo) -> None:
        if info.record.step % options.save_every == 0:
            assert out.partial is not None
            best = resize(info.best, shape)[0].float().cpu()
            again = out.wrote_partial or out.overwrite
            with atomic_output(out.partial, overwrite=again, inputs=out.inputs) as tmp:
                modality.save(tmp, best, prepared.content, options)
            out.wrote_partial = True

    return save


def transfer(
    content: Source,
    style: Source | Sequence[Source],
    output: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
    preview: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | bool | None = None,
    callback: Callable[[StepInfo], bool | None] | None = None,
    progress: bool = True,
    modality: str | None = None,
    **options: Any,
) -> TransferResult:
    """Style ``content`` with one or more ``style`` inputs; optionally write the result.

    The same path as ``ndstyle run``: the modality comes from the content (its extension or type),
    its defaults apply (the pretrained VGG for images, the spectral front end for audio, ...), and
    the result is written with the content's metadata, atomically, never over an existing file
    unless ``overwrite``.

    Args:
        content: a file path, a :class:`~ndstyle.modalities.Loaded`, or an in-memory object (a
            ``PIL.Image``, a ``nibabel`` image, an array/tensor ``(C, *spatial)``).
        style: one style or a list of them (same kinds as ``content``).
        output: the result file (its extension picks the format), or ``None`` to write nothing.
        overwrite: replace existing output files.
        preview: also write a PNG comparing content, styles and result.
        report: also measure the result as its field does (:mod:`ndstyle.metrics`): ``True`` to
            return the measures in ``result.report``, or a ``.json`` path to write them too.
        callback: called after every optimiser step with a :class:`~ndstyle.StepInfo`; returning
            ``True`` stops the run (the best result so far is kept).
        progress: show a progress bar.
        modality: choose the reader instead of the content's extension.
        **options: :class:`~ndstyle.TransferOptions` fields, named like ``ndstyle run``'s long
            options (``size``, ``steps``, ``seed``, ``mask``, ``extractor``, ...).

    Returns:
        A :class:`TransferResult`.

    Raises:
        OptionError, InputFileError, OutputFileError, ShapeError: one-line errors raised before any
            work starts where possible.
        InterruptedRun: Ctrl-C; with an ``output``, the best result so far is saved as
            ``<stem>.interrupted<ext>``.

    """
    started = time.perf_counter()
    opts = TransferOptions.from_kwargs(**options)
    styles_in = [style] if _is_path(style) or not isinstance(style, (list, tuple)) else list(style)
    if not styles_in:
        raise OptionError("at least one style is needed")
    if opts.style_blend is not None and len(opts.style_blend) != len(styles_in):
        raise OptionError(
            f"--style-blend gives {len(opts.style_blend)} weight(s) for {len(styles_in)} style(s)"
        )
    for source in [content, *styles_in]:
        if _is_path(source):
            check_input_file(Path(source))
    chosen = modality_of(content, modality)
    if modality is None:
        _check_style_modalities(chosen, content, styles_in)
    opts = opts.with_defaults(chosen.defaults)
    inputs = files_read(content, styles_in, opts)
    report_path = Path(report) if _is_path(report) else None
    out = _plan_outputs(
        chosen,
        Path(output) if output is not None else None,
        Path(preview) if preview is not None else None,
        report_path,
        opts,
        inputs,
        overwrite,
    )
    loaded = _read(chosen, content, opts)
    styles = [_read(chosen, s, opts, loaded) for s in styles_in]
    prepared = chosen.prepare(loaded, styles, opts)
    kwargs = {**_stylize_keywords(opts, chosen), **prepared.kwargs, "progress": progress}
    if out.checkpoint is not None:
        kwargs.update(checkpoint=out.checkpoint, checkpoint_every=opts.checkpoint_every, resume=opts.resume)
    saver = _periodic_saver(chosen, prepared, opts, out) if out.partial is not None else None
    kwargs["callback"] = _chain(saver, callback)
    engine = _run_engine(chosen, prepared, kwargs, opts, out)
    logger.info("extractor: %s [%s, %s]", engine.extractor, engine.precision, engine.device)
    result = chosen.finish(engine.output, prepared, opts)
    measures = _measure(chosen.name, prepared, styles, result) if report else None
    _log_failed_checks(chosen.name, out.result, measures)
    _write_outputs(chosen, out, result, prepared, styles, opts, measures, overwrite)
    _remove_partial(chosen, out)
    if out.checkpoint is not None and opts.checkpoint_every and not opts.keep_checkpoint:
        if opts.resume or _stamp(out.checkpoint) != out.checkpoint_before:  # ours: written or resumed
            _remove_own(out.checkpoint)
    return TransferResult(
        output=result,
        content=prepared.content,
        styles=styles,
        history=engine.history,
        best_cost=engine.best_cost,
        options=opts,
        modality=chosen.name,
        extractor=engine.extractor,
        path=out.result,
        preview_path=out.preview,
        report=measures,
        report_path=out.report,
        seconds=time.perf_counter() - started,
        engine=engine,
    )


def _check_style_modalities(modality: Modality, content: Source, styles: Sequence[Source]) -> None:
    for style in styles:
        if not _is_path(style):
            continue
        other = modality_for_path(Path(style))
        if other.name != modality.name and other.name not in modality.style_modalities:
            where = f"the content {str(content)!r}" if _is_path(content) else "the content"
            raise OptionError(
                f"style {str(style)!r} is a {other.name} file but {where} is a {modality.name} file; "
                f"give a {modality.name} style ({', '.join(modality.extensions)}) or choose one reader "
                f"with --modality"
            )


def _run_engine(
    modality: Modality, prepared: Prepared, kwargs: dict[str, Any], options: TransferOptions, out: _Outputs
) -> StyleTransferResult:
    """Run the optimisation; on Ctrl-C save the best result so far next to the output."""
    try:
        return modality.run(prepared, kwargs, options)
    except InterruptedRun as interrupt:
        partial = getattr(interrupt, "result", None)
        if out.interrupted is None or partial is None or not partial.history:
            raise
        saved = _save_interrupted(
            modality, out, modality.finish(partial.output, prepared, options), prepared, options
        )
        _remove_partial(modality, out)
        again = (
            f"; continue with --resume (checkpoint {str(out.checkpoint)!r})"
            if options.checkpoint_every
            else ""
        )
        error = InterruptedRun(f"{interrupt}; best result so far saved to {str(saved)!r}{again}")
        error.result = partial  # type: ignore[attr-defined]
        raise error from None
    except NdstyleError as error:
        if out.partial is not None and out.wrote_partial:
            raise type(error)(f"{error} (best result so far: {str(out.partial)!r})") from error
        raise


def _write_outputs(
    modality: Modality,
    out: _Outputs,
    result: torch.Tensor,
    prepared: Prepared,
    styles: list[Loaded],
    options: TransferOptions,
    measures: dict[str, Any] | None,
    overwrite: bool,
) -> None:
    """Write result, preview and report together: all appear, or none."""
    from .io.atomic import atomic_outputs

    finals = out.finals()
    if not finals:
        return
    with atomic_outputs(finals, overwrite=overwrite, inputs=out.inputs) as tmps:
        for path, tmp in zip(finals, tmps, strict=True):
            if path == out.result:
                modality.save(tmp, result, prepared.content, options)
            elif path == out.preview:
                modality.preview(tmp, prepared.content, styles, result)
            else:
                Path(tmp).write_text(json.dumps(measures or {}, indent=1, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _save_interrupted(
    modality: Modality, out: _Outputs, result: torch.Tensor, prepared: Prepared, options: TransferOptions
) -> Path:
    """Write the best result of an interrupted run next to the output, never over a file.

    The name is ``<stem>.interrupted<ext>``, or, when that exists (an earlier interruption, a
    user's file), ``<stem>.interrupted-2<ext>``...
    """
    from .errors import OutputFileError
    from .io.atomic import atomic_output

    assert out.interrupted is not None and out.result is not None
    for n in range(1, 1000):
        target = out.interrupted if n == 1 else modality.marked(out.result, f"interrupted-{n}")
        if target.exists() or any(c.exists() for c in modality.output_companions(target)):
            continue
        try:
            with atomic_output(target, overwrite=False, inputs=out.inputs) as tmp:
                modality.save(tmp, result, prepared.content, options)
        except OutputFileError as error:
            if "appeared while writing" in str(error) or "already exists" in str(error):
                continue
            raise
        return target
    raise OutputFileError(f"no free name for the interrupted result next to {str(out.result)!r}")


def _remove_partial(modality: Modality, out: _Outputs) -> None:
    """Remove ``<stem>.partial<ext>`` (and its companions) only if this run wrote it."""
    if out.partial is not None and out.wrote_partial:
        for path in [out.partial, *modality.output_companions(out.partial)]:
            _remove_own(path)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """Inode, size and modification time of ``path`` (``None`` if absent): was it written."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _remove_own(path: Path | None) -> None:
    """Remove a temporary sibling this run created (its name was checked free before the run)."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


__all__ = [
    "TransferResult",
    "check_input_file",
    "describe",
    "files_read",
    "load",
    "modality_of",
    "save",
    "transfer",
]
