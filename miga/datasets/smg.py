"""SMG (Track 2) in its release layouts (docs/design.md section 4; `miga.datasets.smg_tree` finds the parts).

    SampleXXXX_skeleton.csv     per frame: 25 Kinect joints x 11 values (275 columns)
    SampleXXXX_data.csv         numFrames,fps,maxDepth (optional: else the skeleton's rows and the video's fps)
    SampleXXXX_finelabels.csv   class,start,end (1-based classes 1..17, no header); required in train / val
    SampleXXXX_color.mp4

The split is the one the folders name (Kaggle trees), else by sample number (`ingest.smg_splits`;
real 2024 release: 1-30 train, 31-35 validate, 36-40 test). `datasets.smg.test_truth` may name a
folder of `SampleXXXX_finelabels.csv` holding the test labels kept apart from the release.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl

from miga.contracts import validate_manifest, validate_segments
from miga.datasets.csvtable import DatasetFormatError, read_numeric_csv, read_segment_rows
from miga.datasets.entry import entry_or_default
from miga.datasets.smg_tree import SmgSample, SmgTree, find_tree
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


def release_tree(root: Path, entry: Mapping | None = None) -> SmgTree:
    entry = entry_or_default(entry)
    roots = [Path(entry[key] or root) for key in ("skeleton_root", "video_root")]
    truth = entry["test_truth"]
    return find_tree(roots, exclude=[truth] if truth else [])


def scan(root: Path, splits: Mapping[str, Sequence[int]], *, entry: Mapping | None = None, require_video: bool = False,
         default_fps: float = 30.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Build (manifest with one row per sequence, ground-truth segments) from an SMG release in any known layout."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: SMG root folder not found")
    entry = entry_or_default(entry)
    tree = release_tree(root, entry)
    truth = _truth_files(entry)
    manifest_rows, segment_rows, unlabelled = [], [], []
    for sample in sorted(tree.samples.values(), key=lambda s: sample_number(s.sample_id)):
        split = split_of_sample(sample, splits)
        num_frames, fps, info = length_and_rate(sample, default_fps)
        labels_path = sample.parts.get("labels") or truth.get(sample.sample_id)
        if labels_path is None and split != "test":
            raise DatasetFormatError(f"{sample.sample_id}: no {sample.sample_id}_finelabels.csv in the {split} split "
                                     f"(found: {sorted(str(p) for p in sample.parts.values())})")
        if labels_path is None:
            unlabelled.append(sample.sample_id)
        else:
            segment_rows.extend(
                {"sample_id": sample.sample_id, "label": int(c), "start_frame": int(s), "end_frame": int(e)}
                for c, s, e in read_labels(labels_path, num_frames)
            )
        video = sample.parts.get("video")
        manifest_rows.append({
            "sample_id": sample.sample_id, "dataset": DATASET, "split": split, "subject": sample_number(sample.sample_id),
            "video": _relative(video, root) if info else None, "video_start": 0,
            "start_frame": 0, "end_frame": num_frames - 1, "label": None, "fps": fps,
            "width": info.width if info else None, "height": info.height if info else None,
        })
    _report(manifest_rows, unlabelled, require_video)
    manifest = validate_manifest(pl.DataFrame(manifest_rows, schema_overrides={"label": pl.Int64}, infer_schema_length=None), f"{root} (SMG manifest)")
    segments = validate_segments(
        pl.DataFrame(segment_rows, schema={"sample_id": pl.String, "label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64}),
        f"{root} (SMG segments)", NUM_CLASSES,
    )
    return manifest, segments


def split_of_sample(sample: SmgSample, splits: Mapping[str, Sequence[int]]) -> str:
    if len(sample.folder_splits) > 1:
        raise DatasetFormatError(f"{sample.sample_id}: its parts lie in folders of different splits: {sorted(sample.parts.values())}")
    if sample.folder_splits:
        return next(iter(sample.folder_splits))
    return split_of(sample_number(sample.sample_id), splits)


def length_and_rate(sample: SmgSample, default_fps: float):
    video = sample.parts.get("video")
    info = probe_video(video) if video else None
    if "data" in sample.parts:
        num_frames, fps, _ = read_data_file(sample.parts["data"])
        return num_frames, fps, info
    if "skeleton" in sample.parts:
        num_frames = len(read_skeleton(sample.parts["skeleton"]))
    elif info:
        num_frames = info.num_frames
    else:
        raise DatasetFormatError(f"{sample.sample_id}: neither a skeleton, a _data.csv nor a video to tell its length")
    if num_frames < 1:
        raise DatasetFormatError(f"{sample.parts.get('skeleton', video)}: empty sequence")
    return num_frames, info.fps if info else default_fps, info


def _truth_files(entry: Mapping) -> dict[str, Path]:
    folder = entry["test_truth"]
    if not folder:
        return {}
    if not Path(folder).is_dir():
        raise DatasetFormatError(f"{folder}: datasets.smg.test_truth folder not found")
    return {p.name[: -len("_finelabels.csv")]: p for p in Path(folder).rglob("Sample*_finelabels.csv")}


def _report(rows: list[dict], unlabelled: list[str], require_video: bool) -> None:
    missing = [r["sample_id"] for r in rows if r["video"] is None]
    if missing and require_video:
        raise DatasetFormatError(f"{len(missing)} of {len(rows)} SMG sequences have no video (first: {missing[0]}); "
                                 "the configured pose backend needs one (set datasets.smg.video_root)")
    if missing:
        warnings.warn(f"{len(missing)} of {len(rows)} SMG sequences have no video (first: {missing[0]})", stacklevel=3)
    if unlabelled:
        warnings.warn(f"{len(unlabelled)} SMG test sequences have no finelabels (unlabelled test split; "
                      "set datasets.smg.test_truth to score it)", stacklevel=3)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path.resolve())


def scan_release(root: Path, options: dict, entry: Mapping | None = None, *, require_video: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    return scan(root, options["smg_splits"], entry=entry, require_video=require_video,
                default_fps=float(options["smg_default_fps"]))


def class_names(root: Path | None = None, entry: Mapping | None = None) -> list[str]:
    return list(CLASS_NAMES)


def layout_of(root: Path | None = None, entry: Mapping | None = None) -> str:
    return LAYOUT


def provided_keypoints(root: Path, manifest: pl.DataFrame, entry: Mapping | None = None) -> dict[str, tuple[int, np.ndarray]]:
    """Colour-frame keypoints `(1, T, 25, 3)` of each sequence, T = the manifest's frame count."""
    tree = release_tree(Path(root), entry)
    out = {}
    for sample_id, end in manifest.select("sample_id", "end_frame").iter_rows():
        if sample_id not in tree.samples or "skeleton" not in tree.samples[sample_id].parts:
            raise DatasetFormatError(f"{root}: no {sample_id}_skeleton.csv for the provided pose backend")
        path = tree.samples[sample_id].parts["skeleton"]
        keypoints = colour_keypoints(read_skeleton(path))
        num_frames = end + 1
        if keypoints.shape[1] < num_frames:  # missing trailing rows: untracked
            keypoints = np.concatenate([keypoints, np.zeros((1, num_frames - keypoints.shape[1], 25, 3), np.float32)], axis=1)
        out[sample_id] = (0, keypoints[:, :num_frames])
    return out
