"""Challenge submission files: writers, readers and a checker (docs/design.md section 4, Submissions).

Track 1: `Id,Target`, one row per test clip, Target the 0-based class.
Track 2: `ID,class,start_frame,end_frame,sample_id`; ID counts up from 1 (the DESIGN says
"incremental" without a start; `first_id` changes it), class = label + `class_base` (the
base is unverified; default 1 as in the label files), sample_id the sequence number
(`Sample0005` -> 5; any dataset's ids map back through its test manifest, `sequence_ids`).

Checkers return a list of problems, each naming where it is as "row N (line L)": N counts
data rows from 1 (the header is not a row), L is the line in the file.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from miga.errors import MigaError
from miga.contracts import DETECTIONS_SCHEMA, validate_detections
from miga.io import atomic_path

TRACK1_HEADER = ("Id", "Target")
TRACK2_HEADER = ("ID", "class", "start_frame", "end_frame", "sample_id")
TRACK1_SCHEMA: dict[str, pl.DataType] = {"Id": pl.String, "Target": pl.Int64}
TRACK2_SCHEMA: dict[str, pl.DataType] = {name: pl.Int64 for name in TRACK2_HEADER}
_INTEGER = re.compile(r"-?[0-9]+")
_SEQUENCE_NUMBER = re.compile(r"(\d+)$")
_MAX_LISTED = 10
_INT64 = 2**63


def sequence_number(sample_id: str) -> int:
    """The number at the end of an SMG sequence id: `Sample0005` -> 5."""
    found = _SEQUENCE_NUMBER.search(sample_id)
    if found is None:
        raise ValueError(f"sample_id {sample_id!r} does not end in a sequence number")
    return int(found.group(1))


def sequence_ids(sample_ids: Sequence[str]) -> dict[int, str]:
    """Sequence number -> sample id, for the ids of a test split; a SubmissionError when two ids share a number
    (the Track 2 format, which keeps only the number, could not tell them apart)."""
    out: dict[int, str] = {}
    for sample_id in sample_ids:
        try:
            number = sequence_number(sample_id)
        except ValueError as error:
            raise SubmissionError(f"Track 2 submissions need sequence ids ending in a number: {error}") from None
        if number in out:
            raise SubmissionError(f"sample ids {out[number]!r} and {sample_id!r} share the sequence number {number}: "
                                  "a Track 2 submission cannot tell them apart")
        out[number] = sample_id
    return out


# ---------------------------------------------------------------- writers


def track1_frame(sample_ids: Sequence[str], predicted: Sequence[int] | np.ndarray) -> pl.DataFrame:
    """The Track 1 table: `Id` (test clip sample_id), `Target` (0-based predicted class)."""
    predicted = np.asarray(predicted)
    if predicted.ndim != 1 or len(sample_ids) != predicted.size:
        raise ValueError(f"need one predicted class per sample: {len(sample_ids)} ids, predicted shape {predicted.shape}")
    if predicted.size and not np.issubdtype(predicted.dtype, np.integer):
        raise ValueError(f"predicted classes must be integers, got dtype {predicted.dtype}")
    frame = pl.DataFrame({"Id": list(sample_ids), "Target": predicted.astype(np.int64)}, schema=TRACK1_SCHEMA)
    if frame["Id"].n_unique() != frame.height:
        raise ValueError("sample_ids are not unique")
    return frame


def write_track1(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    _write_csv(frame, TRACK1_HEADER, path)


def track2_frame(detections: pl.DataFrame, *, class_base: int = 1, first_id: int = 1) -> pl.DataFrame:
    """The Track 2 table from contract detections, sorted by sequence, start and end frame."""
    detections = validate_detections(detections, "detections")
    numbers = [sequence_number(s) for s in detections["sample_id"].to_list()]
    frame = (
        detections.with_columns(pl.Series("sample_id", numbers, dtype=pl.Int64), (pl.col("label") + class_base).alias("class"))
        .sort(["sample_id", "start_frame", "end_frame", "class"], maintain_order=True)
        .with_row_index("ID", offset=first_id)
    )
    return frame.select([pl.col(c).cast(pl.Int64) for c in TRACK2_HEADER])


def write_track2(frame: pl.DataFrame, path: str | os.PathLike) -> None:
    _write_csv(frame, TRACK2_HEADER, path)


def _write_csv(frame: pl.DataFrame, header: tuple[str, ...], path: str | os.PathLike) -> None:
    if tuple(frame.columns) != header:
        raise ValueError(f"{path}: columns must be exactly {','.join(header)}, got {','.join(frame.columns)}")
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class _Row:
    number: int  # data row, 1-based
    line: int
    fields: list[str]

    def where(self) -> str:
        return f"row {self.number} (line {self.line})"


def _read_rows(path: str | os.PathLike, header: tuple[str, ...]) -> tuple[list[_Row], list[str]]:
    """The data rows of a CSV with the given header, or no rows and the problem that stops reading."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            first = next(reader, None)
            if first is None:
                return [], [f"{path}: the file is empty; expected the header {','.join(header)}"]
            if tuple(first) != header:
                return [], [f"{path}: header is {','.join(first)!r}, expected {','.join(header)!r}"]
            rows = [_Row(number, reader.line_num, fields) for number, fields in enumerate(reader, start=1)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        return [], [f"{path}: cannot read the file: {err}"]
    return rows, []


def _integer_problem(text: str) -> str | None:
    if not _INTEGER.fullmatch(text):
        return "is not an integer"
    if not -_INT64 <= int(text) < _INT64:
        return "is outside the 64-bit integer range"
    return None


def _parse_integers(row: _Row, names: tuple[str, ...], problems: list[str]) -> list[int] | None:
    """The row's fields as integers, or None after reporting each bad field."""
    if len(row.fields) != len(names):
        problems.append(f"{row.where()}: expected {len(names)} fields, got {len(row.fields)}")
        return None
    bad = [(n, v) for n, v in zip(names, row.fields) if _integer_problem(v)]
    for name, value in bad:
        problems.append(f"{row.where()}: {name} {value!r} {_integer_problem(value)}")
    return None if bad else [int(v) for v in row.fields]


def _parse_track1(rows: list[_Row]) -> tuple[list[tuple[_Row, str, int]], list[str]]:
    records, problems, seen = [], [], {}
    for row in rows:
        if len(row.fields) != 2:
            problems.append(f"{row.where()}: expected 2 fields (Id,Target), got {len(row.fields)}")
            continue
        sample_id, target = row.fields
        if sample_id in seen:
            problems.append(f"{row.where()}: Id {sample_id!r} already appears in row {seen[sample_id]}")
            continue
        seen[sample_id] = row.number
        if _integer_problem(target):
            problems.append(f"{row.where()}: Target {target!r} {_integer_problem(target)}")
            continue
        records.append((row, sample_id, int(target)))
    return records, problems


def _parse_track2(rows: list[_Row], class_base: int) -> tuple[list[tuple[_Row, list[int]]], list[str]]:
    records, problems, seen = [], [], {}
    for row in rows:
        values = _parse_integers(row, TRACK2_HEADER, problems)
        if values is None:
            continue
        detection_id, label, start, end, _ = values
        if detection_id in seen:
            problems.append(f"{row.where()}: ID {detection_id} already appears in row {seen[detection_id]}")
            continue
        seen[detection_id] = row.number
        if label < class_base:
            problems.append(f"{row.where()}: class {label} is below the class base {class_base}")
        elif start < 0 or start > end:
            problems.append(f"{row.where()}: need 0 <= start_frame <= end_frame, got {start} and {end}")
        else:
            records.append((row, values))
    return records, problems


def _listed(values: list[str]) -> str:
    shown = ", ".join(values[:_MAX_LISTED])
    return shown + (f", ... ({len(values) - _MAX_LISTED} more)" if len(values) > _MAX_LISTED else "")


# ---------------------------------------------------------------- checkers


def check_track1(path: str | os.PathLike, manifest_test: pl.DataFrame, num_classes: int) -> list[str]:
    """Problems with a Track 1 file against the test manifest rows (empty list: valid)."""
    rows, problems = _read_rows(path, TRACK1_HEADER)
    if problems:
        return problems
    records, problems = _parse_track1(rows)
    expected = set(manifest_test["sample_id"].to_list())
    listed = {row.fields[0] for row in rows if row.fields}
    for row, sample_id, target in records:
        if sample_id not in expected:
            problems.append(f"{row.where()}: Id {sample_id!r} is not a test sample")
        elif not 0 <= target < num_classes:
            problems.append(f"{row.where()}: Target {target} is outside 0..{num_classes - 1}")
    missing = sorted(expected - listed)
    if missing:
        problems.append(f"{path}: {len(missing)} test Ids have no row: {_listed(missing)}")
    return problems


def check_track2(path: str | os.PathLike, manifest_test: pl.DataFrame, num_classes: int, class_base: int = 1) -> list[str]:
    """Problems with a Track 2 file against the test manifest rows (empty list: valid).

    Frames must lie inside their sequence: the manifest's start_frame..end_frame (for SMG,
    0..numFrames-1).
    """
    rows, problems = _read_rows(path, TRACK2_HEADER)
    if problems:
        return problems
    records, problems = _parse_track2(rows, class_base)
    numbers = {sample_id: number for number, sample_id in sequence_ids(manifest_test["sample_id"].to_list()).items()}
    sequences = {
        numbers[s]: (first, last) for s, first, last in manifest_test.select("sample_id", "start_frame", "end_frame").iter_rows()
    }
    top = class_base + num_classes - 1
    for row, (_, label, start, end, number) in records:
        if label > top:
            problems.append(f"{row.where()}: class {label} is outside {class_base}..{top}")
        if number not in sequences:
            problems.append(f"{row.where()}: sample_id {number} is not a test sequence")
            continue
        first, last = sequences[number]
        if start < first or end > last:
            problems.append(f"{row.where()}: frames {start}..{end} fall outside sequence {number} ({first}..{last})")
    return problems


# ---------------------------------------------------------------- readers


def read_track1(path: str | os.PathLike) -> pl.DataFrame:
    """A Track 1 file as `Id`, `Target`; ValueError naming the file if it is malformed."""
    rows, problems = _read_rows(path, TRACK1_HEADER)
    records, row_problems = _parse_track1(rows)
    _raise_if(path, problems + row_problems)
    return pl.DataFrame({"Id": [r[1] for r in records], "Target": [r[2] for r in records]}, schema=TRACK1_SCHEMA)


def read_track2(path: str | os.PathLike, class_base: int = 1, sample_ids: Sequence[str] | None = None) -> pl.DataFrame:
    """A Track 2 file as contract detections (0-based labels, null scores). `sample_ids` (the test split's ids) map
    each row's sequence number back to its id; without them ids are rebuilt as SMG's `Sample%04d`."""
    rows, problems = _read_rows(path, TRACK2_HEADER)
    records, row_problems = _parse_track2(rows, class_base)
    _raise_if(path, problems + row_problems)
    values = np.asarray([v for _, v in records], dtype=np.int64).reshape(-1, len(TRACK2_HEADER))
    by_number = sequence_ids(sample_ids) if sample_ids is not None else None
    unknown = sorted({int(n) for n in values[:, 4]} - set(by_number)) if by_number is not None else []
    _raise_if(path, [f"sample_id {n} is not a test sequence" for n in unknown])
    return pl.DataFrame(
        {
            "sample_id": [by_number[n] if by_number is not None else f"Sample{n:04d}" for n in values[:, 4].tolist()],
            "label": values[:, 1] - class_base,
            "start_frame": values[:, 2],
            "end_frame": values[:, 3],
            "score": pl.Series([None] * len(values), dtype=pl.Float64),
        },
        schema=DETECTIONS_SCHEMA,
    )


class SubmissionError(MigaError):
    """A submission file that does not follow the track's format or test set."""


def _raise_if(path: str | os.PathLike, problems: list[str]) -> None:
    if problems:
        raise SubmissionError(f"{path}: invalid submission ({len(problems)} problems): " + "; ".join(problems[:_MAX_LISTED]))
