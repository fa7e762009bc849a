"""Batch style transfer: many items on a local process pool or a Ray cluster (``ndstyle batch``).

A thin front end over :func:`ndstyle.transfer`: it plans the items (:mod:`.plan`), skips those a
previous run finished (:mod:`.summary`), runs the rest in worker processes (:mod:`.local`) or as
Ray tasks (:mod:`.ray_backend`), and writes one summary line per item. Each item's result is the
one ``ndstyle run`` writes for it with the same options, seed and torch thread count.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import OptionError
from .local import LocalPool
from .plan import SUMMARY_NAME, Item, plan
from .resources import choose
from .runner import BatchInterrupted, BatchResult, run_batch
from .worker import DEFAULT_TRANSFER

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def _paths(value: PathLike | Sequence[PathLike] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value]


def batch(
    inputs: PathLike | Sequence[PathLike] = (),
    styles: PathLike | Sequence[PathLike] = (),
    output_dir: PathLike | None = None,
    *,
    manifest: PathLike | None = None,
    extensions: Iterable[str] | None = None,
    workers: int | None = None,
    threads: int | None = None,
    ray: bool | str | None = None,
    gpus_per_item: float = 0.0,
    redo: bool = False,
    preview: bool = False,
    report: bool = False,
    progress: bool = True,
    transfer: str = DEFAULT_TRANSFER,
    **options: Any,
) -> BatchResult:
    """Style every content of ``inputs`` (files or folders) with ``styles``, or every manifest row.

    Args:
        inputs: content files and/or folders (searched recursively by extension).
        styles: style file(s) applied to every content of ``inputs``.
        output_dir: results mirror the inputs' tree here; the summary is
            ``output_dir/ndstyle-batch.jsonl``.
        manifest: CSV or JSONL with ``content``, ``style`` (several: ``a.jpg;b.jpg`` in CSV, a
            list in JSONL), optional ``output`` (relative to ``output_dir``) and per-row options.
        extensions: file extensions taken from folders (default: all readable ones).
        workers: local worker processes (default: cores // threads, lowered to fit memory).
        threads: torch threads per item (default: cores // workers locally, 1 on Ray).
        ray: ``None``/``False``: local pool; ``True``: Ray at ``$RAY_ADDRESS`` or a new local
            instance; a string: that Ray address (``"local"``, ``"auto"``, ``"ray://host:10001"``).
        gpus_per_item: GPUs each Ray task asks for (Ray only).
        redo: run every item again, replacing existing outputs.
        preview: also write ``<output stem>.preview.png`` next to each result.
        report: also write the field measures to ``<output stem>.report.json`` next to each result.
        progress: one overall progress bar on a terminal.
        transfer: ``module:function`` a worker calls (default :func:`ndstyle.transfer`).
        **options: transfer options for every item (``steps``, ``size``, ``seed``...).

    Returns:
        A :class:`BatchResult` (``.failed``, ``.records``, ``.line()``).

    Raises:
        OptionError: bad batch options (every item would fail the same way), or Ray problems.
        InputFileError: missing inputs, unreadable manifest.
        BatchInterrupted: Ctrl-C; finished outputs and summary lines are kept.

    """
    if output_dir is None:
        raise OptionError("give an output folder (-o OUTDIR)")
    outdir = Path(output_dir)
    if outdir.exists() and not outdir.is_dir():
        raise OptionError(f"output folder {str(outdir)!r} is a file")
    if gpus_per_item and ray in (None, False):
        raise OptionError("--gpus-per-item applies to Ray tasks; add --ray (locally, use --device cuda)")
    if gpus_per_item < 0:
        raise OptionError(f"--gpus-per-item must be >= 0, got {gpus_per_item}")
    from .options import check_options, option_converter

    if options.get("checkpoint") is not None:
        raise OptionError(
            "--checkpoint names one file; in a batch each item keeps its own <output>.checkpoint.safetensors"
        )
    check_options(options)
    items = plan(
        outdir,
        inputs=_paths(inputs),
        styles=_paths(styles),
        manifest=Path(manifest) if manifest is not None else None,
        options=options,
        extensions=extensions,
        convert_option=option_converter(),
    )
    for n, item in enumerate(items):
        if item.error is None and manifest is not None:
            try:
                check_options(item.options, where=f"manifest row for {str(item.content)!r}")
            except OptionError as error:  # a bad row fails its item; the others run
                items[n] = dataclasses.replace(item, error=f"OptionError: {error}")
    backend: Any
    if ray not in (None, False):
        from .ray_backend import RayBackend, import_ray

        import_ray()
        address = ray if isinstance(ray, str) else None
        backend = RayBackend(address, threads=threads or 1, gpus=gpus_per_item, transfer=transfer)
        label = f"ray: {threads or 1} CPU(s), {gpus_per_item:g} GPU(s) per item"
    else:
        from .options import estimate_item_bytes

        chosen = choose(len(items), workers, threads, item_bytes=estimate_item_bytes(items))
        if chosen.note:
            log.warning("%s", chosen.note)
        backend = LocalPool(chosen.workers, chosen.threads, transfer=transfer)
        label = f"local: {chosen.workers} worker(s) x {chosen.threads} thread(s)"
    outdir.mkdir(parents=True, exist_ok=True)
    extras = {"preview": preview, "report": report}
    return run_batch(items, outdir, backend, redo=redo, progress=progress, label=label, extras=extras)


__all__ = ["SUMMARY_NAME", "BatchInterrupted", "BatchResult", "Item", "batch", "plan"]
