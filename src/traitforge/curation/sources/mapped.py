"""Generic files (jsonl, csv, parquet, hf datasets) read through the config's field mapping."""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from traitforge.curation.sources.base import (
    GZIP_ERRORS,
    SKIP_HINT,
    Parsed,
    Rejected,
    RowOutcome,
    build_candidate,
    encoding_error,
    gzip_error,
    has_bad_bytes,
    open_input,
    refuse_wide_text,
    require_file,
)
from traitforge.curation.sources.jsonl import JSONRefusal, jsonl_rows, parse_json
from traitforge.errors import InputError, short_repr
from traitforge.schemas import Candidate, FieldMapping, ProjectConfig, prompt_hash


def row_to_candidate(
    row: dict[str, Any],
    mapping: FieldMapping,
    path: Path,
    line: int | str,
    known_traits: Sequence[str] | None = None,
) -> Candidate:
    """One mapped row to a candidate; every problem names the file, row and column.
    `known_traits`: the project's trait names, which a stated trait must be one of (None: the
    names are not checked)."""
    columns = sorted(row)

    def require(column: str, role: str, key: str) -> Any:
        if column not in row:
            raise InputError(
                path,
                line,
                column,
                expected=f"a column '{column}' holding the {role}",
                received=f"a row with columns {columns}",
                fix=f"add the column, or set ingest.mapping.{key} in the config to the column "
                f"that holds the {role}, {SKIP_HINT}",
            )
        return row[column]

    response = require(mapping.response, "response", "response")
    if not isinstance(response, str):
        raise InputError(
            path,
            line,
            mapping.response,
            expected="a string",
            received=short_repr(response),
            fix=f"store the response as text, {SKIP_HINT}",
        )
    prompt = _prompt(require(mapping.prompt, "prompt", "prompt"), mapping, path, line)

    gold: dict[str, float] = {}
    for trait, column in mapping.gold.items():
        value = require(column, f"gold label of '{trait}'", f"gold.{trait}")
        if value is None or value == "":
            continue  # no gold for this row: allowed, gold labels are optional
        gold[trait] = _number(value, path, line, column)

    traits: list[str] = []
    if mapping.trait:
        cell = require(mapping.trait, "trait(s) the row is for", "trait")
        traits = _traits(cell, known_traits, path, line, mapping.trait)

    group = row.get(mapping.prompt_group) if mapping.prompt_group else None
    source = str(row[mapping.source]) if mapping.source and row.get(mapping.source) else path.stem
    model = str(row[mapping.model]) if mapping.model and row.get(mapping.model) else None
    used = _mapped_columns(mapping)
    keep = mapping.metadata if mapping.metadata is not None else [c for c in row if c not in used]
    metadata = {c: _jsonable(row[c]) for c in keep if c in row}

    fields: dict[str, Any] = {
        "prompt": prompt,
        "response": response,
        "source": source,
        "model": model,
        "metadata": metadata,
        "gold": gold,
        "traits": traits,
    }
    if group is not None and group != "":
        fields["prompt_id"] = prompt_hash(prompt, group=str(group))
    return build_candidate(path, line, fields)


def _mapped_columns(mapping: FieldMapping) -> set[str]:
    """The columns the mapping gives a role; by default every other column is metadata."""
    roles = (mapping.prompt, mapping.response, mapping.prompt_group, mapping.model)
    return {
        c for c in (*roles, mapping.source, mapping.trait, *mapping.gold.values()) if c is not None
    }


def _traits(
    cell: Any, known: Sequence[str] | None, path: Path, line: int | str, column: str
) -> list[str]:
    """The trait names a row states: one name, or a list of names (in a text cell, a JSON
    list). An empty cell or list states none."""
    names: Any = cell
    if isinstance(cell, str) and cell.strip().startswith("["):
        try:
            names = parse_json(cell)
        except JSONRefusal as e:
            raise InputError(
                path,
                line,
                column,
                expected='one trait name, or a JSON list of names such as ["honesty"]',
                received=f"{short_repr(cell)}: {e.received}",
                fix=f"{e.fix}, {SKIP_HINT}",
            ) from e
    if isinstance(names, str):
        names = [names] if names.strip() else []
    if names is None:
        names = []
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise InputError(
            path,
            line,
            column,
            expected='one trait name, or a list of names such as ["honesty", "sycophancy"]',
            received=short_repr(cell),
            fix=f"write the trait name(s) as text, leave the cell empty for none, {SKIP_HINT}",
        )
    names = [n.strip() for n in names]
    unknown = [] if known is None else [n for n in names if n not in known]
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        several = json.dumps(list(known or ())[:2])
        raise InputError(
            path,
            line,
            column,
            expected=f"trait names the project defines ({', '.join(known or ())})",
            received=short_repr(cell) + (f" (unknown: {listed})" if len(names) > 1 else ""),
            fix=f"correct the name (several traits: a JSON list, e.g. {several}), "
            f"or define {listed} under 'traits' in the config, {SKIP_HINT}",
        )
    return names


def _prompt(value: Any, mapping: FieldMapping, path: Path, line: int | str) -> Any:
    column = mapping.prompt
    if mapping.prompt_format == "chat" and isinstance(value, str):
        try:
            value = parse_json(value)
        except JSONRefusal as e:
            raise InputError(
                path,
                line,
                column,
                expected="chat messages as a JSON list of {role, content} objects",
                received=f"{short_repr(value)}: {e.received}",
                fix=f"write the prompt as JSON, or set ingest.mapping.prompt_format to 'text', "
                f"{SKIP_HINT}",
            ) from e
    if mapping.prompt_format == "text" and not isinstance(value, str):
        raise InputError(
            path,
            line,
            column,
            expected="a text prompt",
            received=short_repr(value),
            fix=f"set ingest.mapping.prompt_format to 'auto' for chat prompts, {SKIP_HINT}",
        )
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(
        isinstance(m, dict) and set(m) == {"role", "content"} for m in value
    ):
        return value
    raise InputError(
        path,
        line,
        column,
        expected='a string, or a list of {"role": ..., "content": ...} messages',
        received=short_repr(value),
        fix=f"correct the prompt, {SKIP_HINT}",
    )


def _number(value: Any, path: Path, line: int | str, column: str) -> float:
    number: float | None = None
    if isinstance(value, bool | int | float):
        number = float(value)
    elif isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            number = float(lowered == "true")
        else:
            with contextlib.suppress(ValueError):
                number = float(lowered)
    # NaN and infinity are how many tools write "missing": they are no label, and refused.
    if number is None or not math.isfinite(number):
        raise InputError(
            path,
            line,
            column,
            expected="a finite number or true/false",
            received=short_repr(value),
            fix=f"write the gold label as a number (leave the cell empty for no label), "
            f"{SKIP_HINT}",
        )
    return number


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def _mapped(
    rows: Iterator[tuple[int | str, dict[str, Any] | InputError]],
    config: ProjectConfig,
    path: Path,
) -> Iterator[RowOutcome]:
    mapping = config.ingest.mapping
    known = [t.name for t in config.traits]
    for line, row in rows:
        if isinstance(row, InputError):
            yield Rejected(row)
            continue
        try:
            candidate = row_to_candidate(row, mapping, path, line, known)
        except InputError as e:
            yield Rejected(e)
            continue
        yield Parsed(line, [candidate], metadata_columns=tuple(candidate.metadata))


def read_jsonl(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    require_file(path, "jsonl", "JSONL file", "*.jsonl")
    return _mapped(jsonl_rows(path), config, path)


def read_csv(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    require_file(path, "csv", "CSV file", "*.csv")
    return _mapped(csv_rows(path), config, path)


def csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """(first line of the record, row) for each CSV record; quoted fields may span lines.

    A gzip file is read decompressed; a truncated or corrupt one, or a UTF-16 file, raises
    one InputError for the whole file."""
    with open_input(path) as f:
        try:
            data = f.read()
        except GZIP_ERRORS as e:
            raise gzip_error(path, 0, e) from e
    refuse_wide_text(path, data[:4096])
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next((values for values in reader if not _blank(values)), None)
    except csv.Error as e:
        raise _csv_error(path, reader.line_num, e) from e
    if header is None:
        return  # nothing but blank lines
    if has_bad_bytes("".join(header)):
        raise encoding_error(path, reader.line_num, "(header)")
    end = reader.line_num
    while True:
        start = end + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise _csv_error(path, start, e) from e
        end = reader.line_num
        if _blank(values):
            continue
        if len(values) != len(header):
            yield (
                start,
                InputError(
                    path,
                    start,
                    None,
                    expected=f"{len(header)} comma-separated fields",
                    received=f"{len(values)} fields",
                    fix=f"quote fields that hold commas, {SKIP_HINT}",
                ),
            )
            continue
        row = dict(zip(header, values, strict=True))
        bad = next((k for k, v in row.items() if has_bad_bytes(v)), None)
        yield start, encoding_error(path, start, bad) if bad else row


def _blank(values: list[str]) -> bool:
    """An empty line, or one of spaces only: no record, whatever the header."""
    return not values or (len(values) == 1 and not values[0].strip())


def _csv_error(path: Path, line: int, error: Exception) -> InputError:
    return InputError(
        path,
        line,
        None,
        expected="well-formed CSV",
        received=f"a CSV syntax error ({error})",
        fix="check the quoting near this line",
    )


def read_parquet(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    import pyarrow.parquet as pq

    require_file(path, "parquet", "Parquet file", "*.parquet")

    try:
        parquet = pq.ParquetFile(path)
    except Exception as e:
        raise InputError(
            path,
            None,
            None,
            expected="a Parquet file",
            received=f"an unreadable file ({e})",
            fix="check the path and that the file was fully written",
        ) from e

    def rows() -> Iterator[tuple[int | str, dict[str, Any] | InputError]]:
        number = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                yield f"row {number}", row

    return _mapped(rows(), config, path)


def read_hf(path: Path, config: ProjectConfig) -> Iterator[RowOutcome]:
    """A `datasets` folder from save_to_disk (every split), or local data files."""
    import datasets

    loaded: Any
    try:
        if path.is_dir():
            loaded = datasets.load_from_disk(str(path))
        else:
            builder = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
            if path.suffix not in builder:
                raise ValueError(f"unsupported data file type '{path.suffix}'")
            # data_files are glob patterns: brackets in a path would be read as a pattern.
            files = glob.escape(str(path))
            loaded = datasets.load_dataset(builder[path.suffix], data_files=files)
    except Exception as e:
        if path.is_file() and _holds_no_rows(path):
            return iter(())  # `datasets` fails on a file without rows; ingest warns instead
        raise InputError(
            path,
            None,
            None,
            expected="a folder written by Dataset.save_to_disk, or a .jsonl/.json/.csv/.parquet "
            "data file",
            received=f"something `datasets` cannot load ({e or type(e).__name__})",
            fix="pass the folder that holds dataset_info.json or dataset_dict.json",
        ) from e
    splits = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("train", loaded)]

    def rows() -> Iterator[tuple[int | str, dict[str, Any] | InputError]]:
        for split, dataset in splits:
            for number, row in enumerate(dataset, start=1):
                yield f"split {split}, row {number}", row

    return _mapped(rows(), config, path)


def _holds_no_rows(path: Path) -> bool:
    """An empty or blank data file, or a CSV file with a header only."""
    try:
        if path.suffix == ".csv":
            return next(csv_rows(path), None) is None
        with open_input(path) as f:
            return not f.read().strip()
    except (InputError, OSError, *GZIP_ERRORS):
        return False
