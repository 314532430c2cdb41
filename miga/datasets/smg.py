"""SMG (Track 2) in its official release layout (DESIGN.md section 3).

    <root>/SampleXXXX/SampleXXXX_skeleton.csv     per frame: 25 Kinect joints x 11 values (275 columns)
    <root>/SampleXXXX/SampleXXXX_data.csv         numFrames,fps,maxDepth
    <root>/SampleXXXX/SampleXXXX_finelabels.csv   class,start,end (1-based classes 1..17, no header)
    <root>/SampleXXXX/SampleXXXX_color.mp4

The split is by sample number (real 2024 release: 1-30 train, 31-35 validate, 36-40 test).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from miga.contracts import validate_manifest, validate_segments
from miga.datasets.csvtable import DatasetFormatError, read_numeric_csv, read_segment_rows
from miga.layouts import KINECT25
from miga.video import probe_video

DATASET = "smg"
LAYOUT = KINECT25.name
NUM_CLASSES = 17
CLASS_NAMES = (
    "turtling neck and shoulder", "rubbing eyes and forehead", "folding arms", "touching or covering suprasternal notch",
    "moving legs", "touching or scratching neck", "folding arms behind body", "rubbing hands and crossing fingers",
    "arms akimbo", "crossing legs", "scratching some part of body", "scratching or touching facial parts other than eyes",
    "playing or adjusting hair", "holding arms", "pulling shirt collar", "playing with jewelry or manipulating objects",
    "illustrative hand gestures",
)
VALUES_PER_JOINT = 11  # world xyz, orientation quaternion (4), colour-frame xy, 2 unused
SKELETON_COLUMNS = KINECT25.num_joints * VALUES_PER_JOINT
COLOUR_XY = slice(7, 9)
WORLD_XYZ = slice(0, 3)
_SAMPLE = re.compile(r"^Sample(\d+)$")


def sample_number(sample_id: str) -> int:
    match = _SAMPLE.match(sample_id)
    if not match:
        raise ValueError(f"{sample_id!r} is not an SMG sample id like 'Sample0031'")
    return int(match.group(1))


def split_of(number: int, splits: Mapping[str, Sequence[int]]) -> str:
    """`splits` maps 'val'/'test' to inclusive [first, last] sample-number ranges; the rest is train."""
    for split in ("val", "test"):
        first, last = splits.get(split, (0, -1))
        if first <= number <= last:
            return split
    return "train"


def read_skeleton(path: Path) -> np.ndarray:
    """`SampleXXXX_skeleton.csv` -> float32 (T, 25, 11)."""
    table = read_numeric_csv(path, columns=SKELETON_COLUMNS, what="SMG skeleton: 25 Kinect joints x 11 values")
    return np.nan_to_num(table).astype(np.float32).reshape(-1, KINECT25.num_joints, VALUES_PER_JOINT)


def colour_keypoints(skeleton: np.ndarray) -> np.ndarray:
    """(T, 25, 11) Kinect rows -> (1, T, 25, 3) colour-frame x, y, score; untracked (all-zero) joints score 0."""
    xy = skeleton[..., COLOUR_XY]
    tracked = np.any(skeleton != 0, axis=-1) & np.all(np.isfinite(xy), axis=-1)
    out = np.concatenate([xy, tracked[..., None].astype(np.float32)], axis=-1)
    out[~tracked] = 0
    return out[None]


def read_data_file(path: Path) -> tuple[int, float, float]:
    table = read_numeric_csv(path, columns=3, what="SMG data file: numFrames,fps,maxDepth")
    if table.shape[0] != 1 or np.isnan(table).any():
        raise DatasetFormatError(f"{path}: expected exactly one row numFrames,fps,maxDepth, got {table.shape[0]}")
    frames, fps, depth = table[0]
    if frames < 1 or fps <= 0:
        raise DatasetFormatError(f"{path}: numFrames {frames} and fps {fps} must be positive")
    return int(frames), float(fps), float(depth)


def read_labels(path: Path, num_frames: int | None = None) -> np.ndarray:
    """`SampleXXXX_finelabels.csv` -> int64 (n, 3) rows of (0-based label, start, end)."""
    rows = read_segment_rows(path, what="SMG finelabels: class,start,end")
    bad = np.flatnonzero((rows[:, 0] < 1) | (rows[:, 0] > NUM_CLASSES))
    if bad.size:
        raise DatasetFormatError(f"{path}: row {bad[0] + 1}: class {rows[bad[0], 0]} is out of range 1..{NUM_CLASSES}")
    if num_frames is not None:
        bad = np.flatnonzero(rows[:, 2] >= num_frames)
        if bad.size:
            raise DatasetFormatError(f"{path}: row {bad[0] + 1}: end frame {rows[bad[0], 2]} is past the sequence's {num_frames} frames")
    rows[:, 0] -= 1
    return rows


def sample_dirs(root: Path) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: SMG root folder not found")
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and _SAMPLE.match(p.name))
    if not dirs:
        raise DatasetFormatError(f"{root}: no SampleXXXX folders found")
    return dirs


def scan(root: Path, splits: Mapping[str, Sequence[int]]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Build (manifest with one row per sequence, ground-truth segments) from an SMG release root."""
    manifest_rows, segment_rows = [], []
    for sdir in sample_dirs(root):
        sample_id = sdir.name
        num_frames, fps, _ = read_data_file(sdir / f"{sample_id}_data.csv")
        mp4 = sdir / f"{sample_id}_color.mp4"
        info = probe_video(mp4) if mp4.exists() else None
        labels_path = sdir / f"{sample_id}_finelabels.csv"
        labels = read_labels(labels_path, num_frames) if labels_path.exists() else None
        manifest_rows.append({
            "sample_id": sample_id, "dataset": DATASET, "split": split_of(sample_number(sample_id), splits),
            "subject": sample_number(sample_id), "video": str(mp4.relative_to(root)) if info else None,
            "start_frame": 0, "end_frame": num_frames - 1, "label": None, "fps": fps,
            "width": info.width if info else None, "height": info.height if info else None,
        })
        if labels is not None:
            segment_rows.extend(
                {"sample_id": sample_id, "label": int(c), "start_frame": int(s), "end_frame": int(e)} for c, s, e in labels
            )
    manifest = validate_manifest(pl.DataFrame(manifest_rows, schema_overrides={"label": pl.Int64}), f"{root} (SMG manifest)")
    segments = validate_segments(
        pl.DataFrame(segment_rows, schema={"sample_id": pl.String, "label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64}),
        f"{root} (SMG segments)", NUM_CLASSES,
    )
    return manifest, segments


def scan_release(root: Path, options: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    return scan(root, options.get("smg_splits", {}))


def class_names(root: Path | None = None) -> list[str]:
    return list(CLASS_NAMES)


def layout_of(root: Path | None = None) -> str:
    return LAYOUT


def provided_keypoints(root: Path, manifest: pl.DataFrame) -> dict[str, tuple[int, np.ndarray]]:
    """Colour-frame keypoints `(1, T, 25, 3)` of each sequence, T = the manifest's frame count."""
    out = {}
    for sample_id, end in manifest.select("sample_id", "end_frame").iter_rows():
        path = Path(root) / sample_id / f"{sample_id}_skeleton.csv"
        keypoints = colour_keypoints(read_skeleton(path))
        num_frames = end + 1
        if keypoints.shape[1] < num_frames:  # missing trailing rows: untracked
            keypoints = np.concatenate([keypoints, np.zeros((1, num_frames - keypoints.shape[1], 25, 3), np.float32)], axis=1)
        out[sample_id] = (0, keypoints[:, :num_frames])
    return out
