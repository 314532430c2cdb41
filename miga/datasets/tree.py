"""Walking a release's folders once, whatever its nesting (shared by the iMiGUE and SMG layout finders)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from miga.datasets.csvtable import DatasetFormatError


def walk_release(roots: Iterable[Path], *, leaf: re.Pattern, exclude: Iterable[Path] = (), max_depth: int = 6,
                 what: str = "release") -> Iterator[tuple[Path, list[str]]]:
    """(folder, sorted file names) for every folder under the roots (each root once), hidden and excluded
    folders skipped; folders whose name matches `leaf` (one sample's folder) are not descended into."""
    excluded = {Path(p).resolve() for p in exclude}
    seen: set[Path] = set()
    for root in map(Path, roots):
        if not root.is_dir():
            raise DatasetFormatError(f"{root}: {what} folder not found")
        if root.resolve() in seen:
            continue
        seen.add(root.resolve())
        base = len(root.parts)
        for folder, subdirs, files in os.walk(root):
            here = Path(folder)
            subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and (here / d).resolve() not in excluded)
            if len(here.parts) - base >= max_depth or (here != root and leaf.match(here.name)):
                subdirs[:] = []
            yield here, sorted(files)
