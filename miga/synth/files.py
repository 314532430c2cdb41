"""Atomic writing of the generated files and of whole dataset folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
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


@contextlib.contextmanager
def replacing_directory(target: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty folder beside `target`; if the block succeeds it takes `target`'s place.

    An interrupted run leaves `target` as it was (plus a hidden `.name.tmp-*` folder).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(fresh, 0o777 & ~_umask())  # mkdtemp makes it private; the dataset should not be
    try:
        yield fresh
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(fresh, target)
            shutil.rmtree(old)
        else:
            os.replace(fresh, target)
    finally:
        if fresh.exists():
            shutil.rmtree(fresh)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
