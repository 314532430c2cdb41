"""iMiGUE (Track 1) in its official release layout (DESIGN.md section 3).

    <root>/imigue_skeleton_{train,validate,test}/{vid}/{vid}_label.csv       class,start,end (no header)
    <root>/imigue_skeleton_{train,validate,test}/{vid}/{vid}_light_hand.csv  frame + 35 x (x, y, conf)
    <root>/imigue_skeleton_{train,validate,test}/{vid}/{vid}.mp4             the whole interview
    <root>/video_subjects.csv (optional, header video,subject)

Clips are rows of the label file; sample_id = "{vid}_{k}" with k the row index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from miga.contracts import SEGMENTS_SCHEMA, empty, validate_manifest
from miga.datasets.csvtable import DatasetFormatError, read_numeric_csv, read_segment_rows
from miga.datasets.safe_pickle import load_name_label_pickle
from miga.layouts import IMIGUE22, OPENPOSE25_HANDS10
from miga.video import probe_video

DATASET = "imigue"
LAYOUT = OPENPOSE25_HANDS10.name
NUM_CLASSES = 32
CLASS_NAMES = (
    "turtle neck", "deep breath", "touch hat", "touch face (scratch head)", "touch forehead", "cover face",
    "rub eyes", "touch other face part", "touch ears", "bite nails", "touch chin", "touch neck", "play hair",
    "adjust tie", "touch chest", "scratch back", "fold arm", "tidy sleeve", "put arm back", "move torso",
    "sit straight", "scratch arm", "rub hand", "cross finger", "minaret hand", "play things", "withdraw arms",
    "head up", "bite lip", "arm akimbo", "shake shoulder", "illustrative",
)
SPLIT_FOLDERS = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}
NON_MG_RAW = 99
SKELETON_COLUMNS = 1 + OPENPOSE25_HANDS10.num_joints * 3


def raw_to_label(raw: np.ndarray) -> np.ndarray:
    """Official raw classes (1..31, 99 = non-MG) to the 0-based labels every public pipeline uses."""
    raw = np.asarray(raw, dtype=np.int64)
    return np.where(raw == NON_MG_RAW, NUM_CLASSES - 1, raw - 1)


def label_to_raw(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label, dtype=np.int64)
    return np.where(label == NUM_CLASSES - 1, NON_MG_RAW, label + 1)


def video_dir(root: Path, split: str, video: str) -> Path:
    return Path(root) / SPLIT_FOLDERS[split] / video


def read_labels(path: Path) -> np.ndarray:
    """`{vid}_label.csv` -> int64 (n, 3) rows of (0-based label, start, end)."""
    rows = read_segment_rows(path, what="iMiGUE label file: class,start_frame,end_frame")
    valid = (rows[:, 0] == NON_MG_RAW) | ((rows[:, 0] >= 1) & (rows[:, 0] <= NUM_CLASSES - 1))
    if not valid.all():
        bad = int(np.flatnonzero(~valid)[0])
        raise DatasetFormatError(f"{path}: row {bad + 1}: class {rows[bad, 0]} is out of range (1..31 or 99)")
    rows[:, 0] = raw_to_label(rows[:, 0])
    return rows


def read_skeleton(path: Path, num_frames: int | None = None) -> np.ndarray:
    """`{vid}_light_hand.csv` -> float32 (T, 35, 3) indexed by the frame column.

    Frames absent from the file get score 0; T = num_frames if given, else last frame + 1.
    """
    table = read_numeric_csv(path, columns=SKELETON_COLUMNS, what="iMiGUE light_hand skeleton: frame + 35 x (x, y, confidence)")
    frames = table[:, 0]
    if np.isnan(frames).any() or (frames != np.round(frames)).any() or (frames < 0).any():
        raise DatasetFormatError(f"{path}: the first column must hold non-negative integer frame indices")
    frames = frames.astype(np.int64)
    length = num_frames if num_frames is not None else (int(frames.max()) + 1 if frames.size else 0)
    out = np.zeros((length, OPENPOSE25_HANDS10.num_joints, 3), np.float32)
    keep = frames < length
    values = np.nan_to_num(table[keep, 1:]).reshape(-1, OPENPOSE25_HANDS10.num_joints, 3)
    out[frames[keep]] = values
    return out


def read_video_subjects(root: Path) -> dict[str, int]:
    path = Path(root) / "video_subjects.csv"
    if not path.exists():
        return {}
    table = read_numeric_csv(path, columns=2, what="video,subject")
    return {f"{int(v):04d}": int(s) for v, s in table}


def scan(root: Path, *, default_fps: float = 25.0) -> pl.DataFrame:
    """Build the manifest (one row per clip) from an iMiGUE release root."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: iMiGUE root folder not found")
    subjects = read_video_subjects(root)
    rows = []
    for split, folder in SPLIT_FOLDERS.items():
        for vdir in sorted(p for p in (root / folder).glob("*") if p.is_dir()):
            rows.extend(_clips_of_video(vdir, split, subjects, default_fps))
    if not rows:
        raise DatasetFormatError(f"{root}: no videos found under {', '.join(SPLIT_FOLDERS.values())}")
    return validate_manifest(pl.DataFrame(rows), f"{root} (iMiGUE manifest)", NUM_CLASSES)


def _clips_of_video(vdir: Path, split: str, subjects: dict[str, int], default_fps: float) -> list[dict]:
    video = vdir.name
    label_path = vdir / f"{video}_label.csv"
    labels = read_labels(label_path)
    mp4 = vdir / f"{video}.mp4"
    info = probe_video(mp4) if mp4.exists() else None
    if info is not None and labels.size and labels[:, 2].max() >= info.num_frames:
        bad = int(np.argmax(labels[:, 2]))
        raise DatasetFormatError(f"{label_path}: row {bad + 1}: end frame {labels[bad, 2]} is past the video's {info.num_frames} frames ({mp4})")
    return [
        {
            "sample_id": f"{video}_{k}",
            "dataset": DATASET,
            "split": split,
            "subject": subjects.get(video, -1),
            "video": str(mp4.relative_to(vdir.parent.parent)) if info else None,  # relative to the release root
            "start_frame": int(start),
            "end_frame": int(end),
            "label": int(label),
            "fps": info.fps if info else default_fps,
            "width": info.width if info else None,
            "height": info.height if info else None,
        }
        for k, (label, start, end) in enumerate(labels)
    ]


def read_2023_arrays(data_path: Path, label_path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The 2023 edition's preprocessed arrays: `(N, 3, T, 22, M)` .npy + `(names, labels)` pickle.

    Returns (names, 0-based labels, keypoints `(N, M, T, 22, 3)` in the `imigue22` layout).
    The pickle is read with a restricted unpickler (plain containers only).
    """
    data_path, label_path = Path(data_path), Path(label_path)
    try:
        data = np.load(data_path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DatasetFormatError(f"{data_path}: not a readable .npy array: {err}") from err
    if data.ndim != 5 or data.shape[1] != 3 or data.shape[3] != IMIGUE22.num_joints:
        raise DatasetFormatError(f"{data_path}: expected shape (N, 3, T, 22, M), got {data.shape}")
    names, labels = load_name_label_pickle(label_path)
    if len(names) != data.shape[0]:
        raise DatasetFormatError(f"{label_path}: {len(names)} labels for {data.shape[0]} samples in {data_path}")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DatasetFormatError(f"{label_path}: labels must be 0..{NUM_CLASSES - 1}")
    return names, labels, np.ascontiguousarray(np.asarray(data).transpose(0, 4, 2, 3, 1), dtype=np.float32)


def scan_release(root: Path, options: dict) -> tuple[pl.DataFrame, pl.DataFrame]:
    return scan(root, default_fps=float(options.get("imigue_default_fps", 25.0))), empty(SEGMENTS_SCHEMA)


def class_names(root: Path | None = None) -> list[str]:
    return list(CLASS_NAMES)


def layout_of(root: Path | None = None) -> str:
    return LAYOUT


def provided_keypoints(root: Path, manifest: pl.DataFrame) -> dict[str, tuple[int, np.ndarray]]:
    """Cut each clip's keypoints `(1, T, 35, 3)` from its video's provided skeleton file."""
    out: dict[str, tuple[int, np.ndarray]] = {}
    clips = manifest.with_columns(pl.col("sample_id").str.split("_").list.first().alias("_video"))
    for (split, video), group in clips.group_by(["split", "_video"], maintain_order=True):
        path = video_dir(root, split, video) / f"{video}_light_hand.csv"
        skeleton = read_skeleton(path, num_frames=int(group["end_frame"].max()) + 1)
        for sample_id, start, end in group.select("sample_id", "start_frame", "end_frame").iter_rows():
            out[sample_id] = (start, skeleton[None, start: end + 1])
    return out
