"""Lay a generated release out as one of the real editions unpack (docs/design.md section 4).

The generators write the 2023 iMiGUE layout and the organisers' SMG bundles; these functions
move the files into another edition's tree, so every layout the readers accept has a synthetic
twin. Test labels are moved aside (a `*_test_truth` folder) and, for iMiGUE, the release's test
label files keep only a placeholder class, as the challenge releases do.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from miga.datasets.csvtable import read_numeric_csv
from miga.synth.files import write_rows
from miga.video import encode_mp4, probe_video, read_frames

IMIGUE_EDITIONS = ("2023", "2024", "2025", "2025_precut", "full")
SMG_EDITIONS = ("organisers", "kaggle2024")
IMIGUE_TRUTH = "imigue_test_truth"
SMG_TRUTH = "smg_test_truth"
PLACEHOLDER_CLASS = 0  # not a raw class (1..31, 99): unmistakably not a label

_SKELETON_2023 = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}
_SKELETON_2024 = {"train": "imigue_data_phase1/datasets/imigue_skeleton_train",
                  "val": "imigue_data_phase1/datasets/imigue_skeleton_validate",
                  "test": "imigue_data_phase2/imigue_skeleton_test"}
_RGB_2025 = {"train": "imigue_rgb_phase1/train_data", "val": "imigue_rgb_phase1/validation_data", "test": "imigue_rgb_phase2"}
_RGB_FULL = {"train": "iMiGUE_RGB_Phase1/imigue_rgb_train", "val": "iMiGUE_RGB_Phase1/imigue_rgb_validate",
             "test": "iMiGUE_RGB_Phase2/imigue_rgb_test"}


def arrange_imigue(root: Path, edition: str) -> None:
    """Rearrange a 2023-layout tree under `root` in place into `edition` (one of IMIGUE_EDITIONS)."""
    if edition not in IMIGUE_EDITIONS:
        raise ValueError(f"unknown iMiGUE edition {edition!r}; known: {IMIGUE_EDITIONS}")
    root = Path(root)
    _hide_test_labels(root / _SKELETON_2023["test"], root / IMIGUE_TRUTH)
    skeleton = _SKELETON_2024 if edition in ("2024", "2025", "2025_precut") else _SKELETON_2023
    videos = {"2025": _RGB_2025, "2025_precut": _RGB_2025, "full": _RGB_FULL}.get(edition)
    for split, old in _SKELETON_2023.items():
        for folder in sorted((root / old).iterdir()):
            has_video = (folder / f"{folder.name}.mp4").exists()  # presets at the real size render a few videos only
            if videos and has_video:
                _move(folder / f"{folder.name}.mp4", root / videos[split] / folder.name / f"{folder.name}.mp4")
            if edition == "2025_precut" and split != "test" and has_video:
                _cut_clips(root / videos[split] / folder.name, folder / f"{folder.name}_label.csv")
        if skeleton[split] != old:
            _move(root / old, root / skeleton[split])


def _hide_test_labels(test_dir: Path, truth_dir: Path) -> None:
    truth_dir.mkdir(parents=True, exist_ok=True)
    for folder in sorted(test_dir.iterdir()):
        label = folder / f"{folder.name}_label.csv"
        shutil.copy2(label, truth_dir / label.name)
        rows = read_numeric_csv(label, columns=3).astype(np.int64)
        rows[:, 0] = PLACEHOLDER_CLASS
        write_rows(label, rows)


def _cut_clips(video_dir: Path, label_path: Path) -> None:
    """Replace the whole interview by one video per label row, `{vid}_{k}.mp4`, as 2026 code suggests."""
    whole = video_dir / f"{video_dir.name}.mp4"
    info = probe_video(whole)
    rows = read_numeric_csv(label_path, columns=3).astype(np.int64)
    for k, (_, start, end) in enumerate(rows):
        frames = read_frames(whole, np.arange(start, min(end, info.num_frames - 1) + 1))
        encode_mp4(video_dir / f"{video_dir.name}_{k}.mp4", frames, info.fps, (info.width, info.height))
    whole.unlink()


def arrange_smg(root: Path, edition: str, splits: Mapping[str, str]) -> None:
    """Rearrange organisers' `SampleXXXX/` bundles under `root` into `edition`; `splits` maps sample -> split."""
    if edition not in SMG_EDITIONS:
        raise ValueError(f"unknown SMG edition {edition!r}; known: {SMG_EDITIONS}")
    if edition == "organisers":
        return
    root = Path(root)
    skeleton = {"train": "smg_data_phase1/smg_skeleton_train", "val": "smg_data_phase1/smg_skeleton_validate",
                "test": "smg_data_phase2/smg_skeleton_test"}
    rgb = {"train": "SMG_RGB_Phase1/smg_rgb_train", "val": "SMG_RGB_Phase1/smg_rgb_validate", "test": "SMG_RGB_Phase2/smg_rgb_test"}
    for sample, split in sorted(splits.items()):
        bundle = root / sample
        if (bundle / f"{sample}_color.mp4").exists():
            _move(bundle / f"{sample}_color.mp4", root / rgb[split] / sample / f"{sample}_color.mp4")
        if split == "test":
            _move(bundle / f"{sample}_finelabels.csv", root / SMG_TRUTH / f"{sample}_finelabels.csv")
        _move(bundle, root / skeleton[split] / sample)


def _move(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dst)
