"""Loading the label pickles of public MiGA pipelines without running arbitrary code."""

from __future__ import annotations

import pickle
from pathlib import Path

from miga.datasets.csvtable import DatasetFormatError


class _PlainContainers(pickle.Unpickler):
    """Accepts only plain data (lists, tuples, dicts, str, int, float...): any class reference is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain containers are allowed")


def load_plain_pickle(path: str | Path):
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            return _PlainContainers(handle).load()
    except FileNotFoundError:
        raise DatasetFormatError(f"{path}: file not found") from None
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise DatasetFormatError(f"{path}: not a plain-data pickle: {err}") from err


def load_name_label_pickle(path: str | Path) -> tuple[list[str], list[int]]:
    """The `(names, labels)` tuple used by the 2023 iMiGUE / SMG classification releases."""
    data = load_plain_pickle(path)
    if not (isinstance(data, (tuple, list)) and len(data) == 2 and len(data[0]) == len(data[1])):
        raise DatasetFormatError(f"{path}: expected a (names, labels) pair of equal-length lists")
    names, labels = data
    return [str(n) for n in names], [int(x) for x in labels]
