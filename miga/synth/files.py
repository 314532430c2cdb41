"""Atomic writing of the generated files and of whole dataset folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from miga.io import atomic_path


def write_numeric_csv(path: Path, columns: list[np.ndarray], *, decimals: int) -> None:
    """Headerless CSV: integer arrays as integers, float arrays with exactly `decimals` decimals."""
    frame = pl.DataFrame({f"c{i}": _clean(c, decimals) for i, c in enumerate(columns)})
    with atomic_path(path) as tmp:
        frame.write_csv(tmp, include_header=False, float_precision=decimals)


def _clean(column: np.ndarray, decimals: int) -> np.ndarray:
    if np.issubdtype(column.dtype, np.integer):
        return column
    return np.round(column.astype(np.float64), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def write_rows(path: Path, rows: np.ndarray) -> None:
    """An integer table (n, k), headerless."""
    write_numeric_csv(path, list(np.asarray(rows, np.int64).T), decimals=0)
