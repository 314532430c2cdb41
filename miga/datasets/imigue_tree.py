"""Where the parts of an iMiGUE release lie, in whichever edition's layout it was unpacked.

Every edition keeps one folder per interview (`{vid}` = four digits); they differ in where
those folders sit and whether labels, skeletons and video share them (docs/design.md section 4):

    2023 Codalab   imigue_skeleton_{train,validate,test}/{vid}/{vid}_label.csv, _light_hand.csv, {vid}.mp4
    2024           imigue_data_phase1/datasets/imigue_skeleton_{train,validate}/{vid}/...
    2025 Kaggle    the 2024 skeleton trees + imigue_data_phase2/imigue_skeleton_test/{vid}/,
                   videos apart: imigue_rgb_phase1/{train_data,validation_data}/{vid}/{vid}.mp4,
                   imigue_rgb_phase2/[test_data/]{vid}/{vid}.mp4
    full release   videos in iMiGUE_RGB_Phase1/imigue_rgb_{train,validate}, iMiGUE_RGB_Phase2/imigue_rgb_test
    pre-cut clips  {vid}/{vid}_{k}.mp4, one video per label row, instead of the whole interview

An interview's keypoints (`datasets.imigue.skeleton`) lie in its label folder: `{vid}_light_hand.csv`,
`{vid}_openpose.xlsx`, or `{vid}_openpose_json/`, a folder of OpenPose's own per-frame output
(`{name}_{frame:012d}_keypoints.json`, as the iMiGUE authors published it for interview 298: unpack
that archive's `298/` folder as `imigue_skeleton_*/0298/0298_openpose_json/`). The JSON files sit in
a folder of their own so that the label folder stays small and the walk never lists them.

So the tree is walked once: a `{vid}` folder holding `{vid}_label.csv` is a label folder whose
split its parent folder names (train / validate / test); every `{vid}.mp4` and `{vid}_{k}.mp4`
anywhere is a video of that interview. Nothing depends on the exact nesting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from miga.datasets.csvtable import DatasetFormatError
from miga.datasets.tree import walk_release

_VID = re.compile(r"^\d{3,5}$")
_CLIP = re.compile(r"^(\d{3,5})_(\d+)$")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm")
# skeleton source -> what follows `{vid}` in the name of its file (a folder for openpose_json)
SKELETON_SOURCES = {"light_hand": "_light_hand.csv", "openpose_xlsx": "_openpose.xlsx", "openpose_json": "_openpose_json"}
SKELETON_FOLDERS = {"openpose_json"}
MAX_DEPTH = 6  # below the given root; the deepest known layout needs 4


def split_of_folder(name: str) -> str | None:
    """The split a folder's name says (`imigue_skeleton_validate` -> val), or None."""
    lowered = name.lower()
    for split, words in (("train", ("train",)), ("val", ("validat", "valid", "_val")), ("test", ("test",))):
        if any(word in lowered for word in words):
            return split
    return None


@dataclass
class ImigueTree:
    """The parts found: label folders by split, videos by interview, and what was odd."""

    label_dirs: dict[str, dict[str, Path]] = field(default_factory=lambda: {"train": {}, "val": {}, "test": {}})
    whole_videos: dict[str, Path] = field(default_factory=dict)
    clip_videos: dict[tuple[str, int], Path] = field(default_factory=dict)
    without_labels: dict[str, Path] = field(default_factory=dict)  # interview folders with a skeleton but no label file
    notes: list[str] = field(default_factory=list)

    def split_of(self, video: str) -> str:
        return next(split for split, dirs in self.label_dirs.items() if video in dirs)

    def videos(self, split: str) -> list[str]:
        return sorted(self.label_dirs[split])

    def label_file(self, video: str) -> Path:
        return self.label_dirs[self.split_of(video)][video] / f"{video}_label.csv"

    def skeleton_file(self, video: str, source: str = "light_hand") -> Path:
        return self.label_dirs[self.split_of(video)][video] / f"{video}{SKELETON_SOURCES[source]}"

    @property
    def edition(self) -> str:
        return describe_edition(self)


def find_tree(roots: Iterable[Path], *, exclude: Iterable[Path] = ()) -> ImigueTree:
    """Walk the roots (the release root, or separate skeleton / video roots) for the parts of a release."""
    tree = ImigueTree()
    for folder, files in walk_release(roots, leaf=_VID, exclude=exclude, max_depth=MAX_DEPTH, what="iMiGUE"):
        _take_folder(tree, folder, files)
    return tree


def _take_folder(tree: ImigueTree, folder: Path, files: list[str]) -> None:
    for name in files:
        stem, suffix = os.path.splitext(name)
        if suffix.lower() not in VIDEO_SUFFIXES:
            continue
        if _VID.match(stem):
            _add_unique(tree.whole_videos, f"{int(stem):04d}", folder / name, "video")
        elif match := _CLIP.match(stem):
            key = (f"{int(match.group(1)):04d}", int(match.group(2)))
            _add_unique(tree.clip_videos, key, folder / name, "clip video")
    if _VID.match(folder.name) and f"{folder.name}_label.csv" not in files and _has_skeleton(folder, files):
        tree.without_labels[folder.name] = folder
    if _VID.match(folder.name) and f"{folder.name}_label.csv" in files:
        split = split_of_folder(folder.parent.name)
        if split is None:
            raise DatasetFormatError(
                f"{folder}: a label folder whose parent ({folder.parent.name}) names no split "
                "(expected imigue_skeleton_train / _validate / _test)"
            )
        video = folder.name
        for other_split, dirs in tree.label_dirs.items():
            if video in dirs:
                raise DatasetFormatError(f"{folder}: interview {video} has label files twice (also {dirs[video]})")
        tree.label_dirs[split][video] = folder


def _has_skeleton(folder: Path, files: list[str]) -> bool:
    return any(f"{folder.name}{SKELETON_SOURCES[source]}" in files for source in SKELETON_SOURCES if source not in SKELETON_FOLDERS) \
        or any((folder / f"{folder.name}{SKELETON_SOURCES[source]}").is_dir() for source in SKELETON_FOLDERS)


def _add_unique(index: dict, key, path: Path, what: str) -> None:
    if key in index and index[key] != path:
        raise DatasetFormatError(f"{path}: {what} {key} found twice (also {index[key]}); set datasets.imigue.video_root")
    index[key] = path


def describe_edition(tree: ImigueTree) -> str:
    """A readable name for the layout found (for reports; the readers do not depend on it)."""
    label_paths = [str(p) for dirs in tree.label_dirs.values() for p in dirs.values()]
    video_paths = [str(p) for p in list(tree.whole_videos.values()) + list(tree.clip_videos.values())]
    if any("iMiGUE_RGB_Phase" in p for p in video_paths):
        name = "full release (iMiGUE_RGB_Phase1/2 video trees)"
    elif any("imigue_rgb_phase" in p for p in video_paths):
        name = "2025 Kaggle (separate skeleton and RGB trees)"
    elif any("imigue_data_phase1" in p for p in label_paths):
        name = "2024 (imigue_data_phase1)"
    elif label_paths and not video_paths:
        name = "labels and skeletons only (no videos)"
    elif label_paths and tree.whole_videos and all(_beside_labels(tree, v) for v in tree.whole_videos):
        name = "2023 Codalab (videos beside the skeletons)"
    else:
        name = "iMiGUE layout (custom nesting)"
    if tree.clip_videos:
        name += ", pre-cut clip videos"
    return name


def _beside_labels(tree: ImigueTree, video: str) -> bool:
    folders = {d.get(video) for d in tree.label_dirs.values()} - {None}
    return tree.whole_videos[video].parent in folders
