"""Strict reading of the headerless numeric CSV files the MiGA releases use."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import polars as pl


class DatasetFormatError(ValueError):
    """A dataset file does not have the official format; the message names file and problem."""


def is_header(cells: list[str]) -> bool:
    """A header row has no numeric cell at all; `3,x,5` is a data row with a bad cell, not a header."""
    filled = [c for c in cells if c.strip()]
    return bool(filled) and not any(_is_number(c) for c in filled)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_numeric_csv(path: Path, *, columns: int | None, allow_header: bool = True, what: str = "") -> np.ndarray:
    """Read a numeric CSV into float64 `(rows, columns)`; an optional first header row is skipped.

    Empty cells read as NaN. Raises DatasetFormatError naming the file and row on a wrong
    column count or a non-numeric cell.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetFormatError(f"{path}: file not found{f' ({what})' if what else ''}")
    if path.is_dir():
        raise DatasetFormatError(f"{path}: a folder, expected a CSV file{f' ({what})' if what else ''}")
    table = _read_fast(path, columns, allow_header)
    if table is None:
        table = _read_strict(path, columns, allow_header, what)
    _refuse_non_finite(path, table, what)
    return table


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _refuse_non_finite(path: Path, table: np.ndarray, what: str) -> None:
    """Infinite values (or values float32 keypoints cannot hold) are never coordinates; empty cells (NaN) are missing."""
    bad = np.argwhere(np.abs(np.nan_to_num(table, nan=0.0, posinf=np.inf, neginf=np.inf)) > _FLOAT32_MAX)
    if bad.size:
        row, col = (int(i) for i in bad[0])
        raise DatasetFormatError(f"{path}: data row {row + 1}, column {col + 1}: {table[row, col]!r} is not a finite number "
                                 f"that float32 holds{f' ({what})' if what else ''}; {len(bad)} such cells")


def _read_fast(path: Path, columns: int | None, allow_header: bool) -> np.ndarray | None:
    """Parse well-formed files with polars; None means 'use the strict reader to explain'."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline()
    except UnicodeDecodeError:
        return None
    if not first.strip():
        return None
    first_cells = next(csv.reader([first]))
    header = allow_header and is_header(first_cells)
    width = len(first_cells)
    if columns is not None and width != columns:
        return None
    try:
        frame = pl.read_csv(
            path, has_header=False, skip_rows=int(header), schema={f"c{i}": pl.Float64 for i in range(width)},
            truncate_ragged_lines=False,
        )
    except Exception:
        return None
    if frame.null_count().sum_horizontal().item():
        return None  # short rows and empty cells both read as null: let the strict reader tell them apart
    return frame.to_numpy().astype(np.float64, copy=False)


def _read_strict(path: Path, columns: int | None, allow_header: bool, what: str) -> np.ndarray:
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise DatasetFormatError(f"{path}: not a text CSV file ({err})") from err
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    if rows and allow_header and is_header(rows[0]):
        rows = rows[1:]
    if not rows:
        return np.zeros((0, columns or 0))
    width = columns if columns is not None else len(rows[0])
    out = np.empty((len(rows), width))
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise DatasetFormatError(f"{path}: row {number} has {len(row)} columns, expected {width}{f' ({what})' if what else ''}")
        for col, cell in enumerate(row):
            cell = cell.strip()
            if not cell:
                out[number - 1, col] = np.nan
                continue
            try:
                out[number - 1, col] = float(cell)
            except ValueError:
                raise DatasetFormatError(f"{path}: row {number}, column {col + 1}: {cell!r} is not a number") from None
    return out


def read_segment_rows(path: Path, *, what: str) -> np.ndarray:
    """Read `class,start,end` rows (no header, integers) as int64 `(n, 3)`."""
    table = read_numeric_csv(path, columns=3, what=what)
    if np.isnan(table).any():
        row = int(np.argwhere(np.isnan(table))[0, 0]) + 1
        raise DatasetFormatError(f"{path}: row {row} has an empty cell ({what})")
    if (table != np.round(table)).any():
        row = int(np.argwhere(table != np.round(table))[0, 0]) + 1
        raise DatasetFormatError(f"{path}: row {row}: class and frames must be integers ({what})")
    table = table.astype(np.int64)
    bad = np.flatnonzero((table[:, 1] < 0) | (table[:, 2] < table[:, 1]))
    if bad.size:
        raise DatasetFormatError(f"{path}: row {bad[0] + 1}: frames {table[bad[0], 1]}..{table[bad[0], 2]} are not 0 <= start <= end")
    return table
