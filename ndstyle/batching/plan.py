"""What a batch does: content files (from files, folders or a manifest) x styles -> output paths.

A folder is searched recursively for files whose extension a modality reads; each result goes to
the same relative place under the output folder, so ``in/a/b.png`` -> ``OUT/a/b.png``. A manifest
(CSV or JSONL) names every item itself: ``content``, ``style`` (one or several), an optional
``output`` and optional per-row options overriding the command line.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputFileError, OptionError

#: Name of the summary written into the output folder (never taken as an input).
SUMMARY_NAME = "ndstyle-batch.jsonl"
#: Manifest columns that are not transfer options.
MANIFEST_FIELDS = ("content", "style", "styles", "output")
#: Separator of several styles in one CSV cell.
STYLE_SEPARATOR = ";"


class RowError(OptionError):
    """A bad value in one manifest row: that item fails, the others run."""


@dataclass(frozen=True)
class Item:
    """One transfer of a batch.

    Attributes:
        content: the content file.
        styles: one or more style files.
        output: where the result goes.
        options: transfer options of this item (the command line's, updated by a manifest row).
        index: position in the batch (the summary keeps this order when it is read back).
        error: why this item cannot run (a bad value in its manifest row), or ``None``.

    """

    content: Path
    styles: tuple[Path, ...]
    output: Path
    options: Mapping[str, Any] = field(default_factory=dict)
    index: int = 0
    error: str | None = None

    def task(self) -> dict[str, Any]:
        """Plain data sent to a worker (paths as strings: files travel by name, not by value)."""
        return {
            "index": self.index,
            "content": str(self.content),
            "styles": [str(s) for s in self.styles],
            "output": str(self.output),
            "options": dict(self.options),
        }


def suffix_of(path: Path) -> str:
    """``.nii.gz`` for gzipped NIfTI, else the lower-case last suffix."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def known_extensions() -> tuple[str, ...]:
    """Every extension a modality reads."""
    from ..modalities import all_modalities

    return tuple(sorted({e for m in all_modalities().values() for e in m.extensions}))


def output_suffix(content: Path) -> str:
    """The output extension for ``content``: its own if its modality writes it, else the first it writes."""
    from ..modalities import modality_for_path

    suffix = suffix_of(content)
    try:
        modality = modality_for_path(content)
    except InputFileError:
        return suffix
    allowed = tuple(getattr(modality, "output_extensions", ()) or modality.extensions)
    return suffix if suffix in allowed else allowed[0]


def _with_suffix(path: Path, suffix: str) -> Path:
    old = suffix_of(path)
    if old == suffix:
        return path
    return path.with_name(path.name[: len(path.name) - len(old)] + suffix)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def expand_inputs(
    inputs: Sequence[Path],
    outdir: Path,
    extensions: Iterable[str] | None = None,
    exclude: Sequence[Path] = (),
) -> list[tuple[Path, Path]]:
    """``(content, output)`` pairs for files and folders (searched recursively, sorted).

    One folder mirrors its tree directly under ``outdir``; with several inputs, each folder's tree
    goes under ``outdir/<folder name>`` and single files go to ``outdir/<file name>``. Files inside
    ``outdir`` and the ``exclude`` files (the styles) are never taken as contents.

    Raises:
        InputFileError: an input does not exist, or a folder holds no file of those extensions.
        OptionError: two contents would be written to the same output.

    """
    wanted = tuple(e.lower() if e.startswith(".") else "." + e.lower() for e in (extensions or ()))
    wanted = wanted or known_extensions()
    excluded = {p.resolve() for p in exclude}
    pairs: list[tuple[Path, Path]] = []
    for given in inputs:
        if not given.exists():
            raise InputFileError(f"input {str(given)!r} does not exist")
        if given.is_file():
            pairs.append((given, outdir / _with_suffix(Path(given.name), output_suffix(given))))
            continue
        base = outdir if len(inputs) == 1 else outdir / given.resolve().name
        found = []
        for root, dirs, files in os.walk(given):
            dirs.sort()
            here = Path(root)
            dirs[:] = [d for d in dirs if not d.startswith(".") and not _inside(here / d, outdir)]
            for name in sorted(files):
                path = here / name
                if name.startswith(".") or suffix_of(path) not in wanted or path.resolve() in excluded:
                    continue
                relative = path.relative_to(given)
                found.append((path, base / _with_suffix(relative, output_suffix(path))))
        if not found:
            raise InputFileError(
                f"input folder {str(given)!r} holds no file with extension {', '.join(wanted)}"
            )
        pairs.extend(found)
    _refuse_collisions(pairs)
    return pairs


def _refuse_collisions(pairs: Sequence[tuple[Path, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for content, output in pairs:
        key = output.resolve()
        if key in seen:
            raise OptionError(
                f"{str(seen[key])!r} and {str(content)!r} would both be written to {str(output)!r}; "
                f"give them in separate batches or name outputs in a --manifest"
            )
        seen[key] = content


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV (header line) or JSONL (one object a line) manifest, as dicts.

    Empty CSV cells and JSON ``null`` are dropped (the command line's value applies).

    Raises:
        InputFileError: unreadable file, bad JSON line, or a row without ``content``/``style``.

    """
    if not path.is_file():
        raise InputFileError(f"manifest {str(path)!r} does not exist or is not a file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputFileError(f"manifest {str(path)!r} cannot be read: {error}") from error
    rows: list[dict[str, Any]] = []
    if suffix_of(path) in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputFileError(
                    f"manifest {str(path)!r} line {number}: not JSON ({error.msg})"
                ) from None
            if not isinstance(row, dict):
                raise InputFileError(f"manifest {str(path)!r} line {number}: expected a JSON object")
            rows.append({k: v for k, v in row.items() if v is not None})
    elif suffix_of(path) == ".csv":
        reader = csv.DictReader(text.splitlines())
        for row in reader:
            rows.append({k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip()})
    else:
        raise InputFileError(f"manifest {str(path)!r}: expected a .csv or .jsonl file")
    for number, row in enumerate(rows, 1):
        if "content" not in row or not ({"style", "styles"} & set(row)):
            raise InputFileError(f"manifest {str(path)!r} row {number}: needs 'content' and 'style' columns")
    if not rows:
        raise InputFileError(f"manifest {str(path)!r} holds no rows")
    return rows


def _styles_of(row: Mapping[str, Any]) -> list[str]:
    value = row.get("style", row.get("styles"))
    if isinstance(value, str):
        return [s.strip() for s in value.split(STYLE_SEPARATOR) if s.strip()]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise InputFileError(f"manifest: 'style' must be a path or a list of paths, got {value!r}")


def plan(
    outdir: Path,
    *,
    inputs: Sequence[Path] = (),
    styles: Sequence[Path] = (),
    manifest: Path | None = None,
    options: Mapping[str, Any] | None = None,
    extensions: Iterable[str] | None = None,
    convert_option: Callable[[str, Any], tuple[str, Any]] | None = None,
) -> list[Item]:
    """Every item of a batch, in a stable order.

    Args:
        outdir: the output folder (results mirror the inputs' tree under it).
        inputs: content files or folders (with ``styles``).
        styles: style files applied to every content of ``inputs``.
        manifest: a CSV/JSONL manifest; its relative paths are relative to the manifest's
            folder, except ``output``, relative to ``outdir``.
        options: transfer options of every item.
        extensions: which files of a folder to take (default: every readable extension).
        convert_option: ``(column, value) -> (option name, value)`` for a manifest column that is
            an option (checks the name and converts CSV text); default keeps them as given.

    Raises:
        OptionError: neither inputs nor a manifest, inputs without styles, clashing outputs.
        InputFileError: missing inputs, unreadable manifest.

    """
    base_options = dict(options or {})
    items: list[Item] = []
    if inputs:
        if not styles:
            raise OptionError("give at least one --style file for the contents (or use --manifest)")
        for path in styles:
            if not path.is_file():
                raise InputFileError(f"style {str(path)!r} does not exist or is not a file")
        for content, output in expand_inputs(inputs, outdir, extensions, exclude=styles):
            items.append(Item(content, tuple(styles), output, base_options, len(items)))
    if manifest is not None:
        folder = manifest.parent
        for row in read_manifest(manifest):
            content = folder / str(row["content"])
            row_styles = tuple(folder / s for s in _styles_of(row))
            output = (
                outdir / str(row["output"])
                if "output" in row
                else outdir / _with_suffix(Path(Path(str(row["content"])).name), output_suffix(content))
            )
            overrides = dict(base_options)
            error = None
            for column, value in row.items():
                if column in MANIFEST_FIELDS:
                    continue
                try:
                    name, converted = convert_option(column, value) if convert_option else (column, value)
                except RowError as bad:
                    error = f"OptionError: {bad}"
                    continue
                overrides[name] = converted
            items.append(Item(content, row_styles, output, overrides, len(items), error))
    if not inputs and manifest is None:
        raise OptionError("give content files or folders with --style, or a --manifest")
    _refuse_collisions([(i.content, i.output) for i in items])
    for item in items:
        if _inside(item.output, outdir) is False:
            raise OptionError(f"output {str(item.output)!r} lies outside the output folder {str(outdir)!r}")
        if item.output.name == SUMMARY_NAME:
            raise OptionError(f"output {str(item.output)!r} is the batch summary's name; choose another")
    return items
