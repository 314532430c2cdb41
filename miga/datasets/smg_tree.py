"""Where the parts of an SMG release lie: the organisers' bundle or the 2024 Kaggle split trees.

    organisers   SampleXXXX/SampleXXXX_skeleton.csv, _data.csv, _finelabels.csv, _color.mp4 (split by number)
    Kaggle 2024  smg_data_phase1/smg_skeleton_{train,validate}/SampleXXXX/...   (labels, skeletons)
                 smg_data_phase2/smg_skeleton_test/SampleXXXX/...
                 SMG_RGB_Phase1/smg_rgb_{train,validate}/SampleXXXX/SampleXXXX_color.mp4
                 SMG_RGB_Phase2/smg_rgb_test/SampleXXXX/SampleXXXX_color.mp4      (split by folder)

The tree is walked once; each `SampleXXXX` folder contributes the parts it holds, and a part
found twice is an error naming both places.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from miga.datasets.csvtable import DatasetFormatError
from miga.datasets.imigue_tree import split_of_folder
from miga.datasets.tree import walk_release

SAMPLE = re.compile(r"^Sample(\d+)$")
PARTS = {"skeleton": "_skeleton.csv", "data": "_data.csv", "labels": "_finelabels.csv", "video": "_color.mp4"}
MAX_DEPTH = 5


@dataclass
class SmgSample:
    sample_id: str
    parts: dict[str, Path] = field(default_factory=dict)
    folder_splits: set[str] = field(default_factory=set)  # splits the folders' names say (Kaggle trees)


@dataclass
class SmgTree:
    samples: dict[str, SmgSample] = field(default_factory=dict)

    @property
    def edition(self) -> str:
        paths = [str(p) for s in self.samples.values() for p in s.parts.values()]
        if any("SMG_RGB_Phase" in p or "smg_data_phase" in p for p in paths):
            return "2024 Kaggle (split skeleton and RGB trees)"
        if all(len({p.parent for p in s.parts.values()}) == 1 for s in self.samples.values()):
            return "organisers' release (SampleXXXX bundles)"
        return "SMG layout (custom nesting)"


def find_tree(roots: Iterable[Path], *, exclude: Iterable[Path] = ()) -> SmgTree:
    tree = SmgTree()
    roots = list(roots)
    for folder, files in walk_release(roots, leaf=SAMPLE, exclude=exclude, max_depth=MAX_DEPTH, what="SMG"):
        if SAMPLE.match(folder.name):
            _take_sample(tree, folder, set(files))
    if not tree.samples:
        raise DatasetFormatError(f"{roots[0] if roots else '.'}: no SampleXXXX folders found")
    return tree


def _take_sample(tree: SmgTree, folder: Path, files: set[str]) -> None:
    sample = tree.samples.setdefault(folder.name, SmgSample(folder.name))
    found = False
    for part, suffix in PARTS.items():
        name = folder.name + suffix
        if name not in files:
            continue
        found = True
        if part in sample.parts and sample.parts[part] != folder / name:
            raise DatasetFormatError(f"{folder / name}: found twice (also {sample.parts[part]})")
        sample.parts[part] = folder / name
    split = split_of_folder(folder.parent.name) if folder.parent.name.lower().startswith("smg_") else None
    if found and split:
        sample.folder_splits.add(split)
    if not sample.parts:
        del tree.samples[folder.name]
