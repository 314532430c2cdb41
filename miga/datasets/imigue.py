"""iMiGUE (Track 1) in any of its release layouts (docs/design.md section 4; `miga.datasets.imigue_tree` finds the parts).

    {vid}_label.csv        class,start,end rows (no header); test files may hold a placeholder class
    {vid}_light_hand.csv   frame + 35 x (x, y, conf)             (skeleton: light_hand, the default)
    {vid}_openpose.xlsx    137 OpenPose points x (x, y, c)        (skeleton: openpose_xlsx)
    {vid}_openpose_json/   OpenPose's {name}_{frame:012d}_keypoints.json files, 137 points (skeleton: openpose_json)
    {vid}.mp4 / {vid}_{k}.mp4   the whole interview / one clip per label row
    <root>/video_subjects.csv (optional, header video,subject)

Clips are rows of the label file; sample_id = "{vid}_{k}" with k the row index. Every skeleton
source covers the whole interview (frame = the video's frame number); a clip's keypoints are cut
out of it by the label row's frames.
The dataset's params entry (`datasets.imigue`) may set `skeleton_root` / `video_root` (parts
unpacked elsewhere), `skeleton` (which keypoint file), `test_labels: real` (trust the test
files' classes) and `test_truth` (a folder of `{vid}_label.csv` with the real test labels).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl

from miga.contracts import SEGMENTS_SCHEMA, SPLITS, empty, validate_manifest
from miga.datasets.csvtable import DatasetFormatError, read_numeric_csv, read_segment_rows
from miga.datasets.entry import entry_or_default
from miga.datasets.imigue_tree import SKELETON_SOURCES, ImigueTree, find_tree
from miga.datasets.openpose_json import read_openpose_json
from miga.datasets.openpose_xlsx import read_openpose_xlsx
from miga.datasets.safe_pickle import load_name_label_pickle
from miga.errors import ConfigError
from miga.layouts import IMIGUE22, OPENPOSE25_HANDS10, OPENPOSE137
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
SPLIT_FOLDERS = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}  # 2023 names
NON_MG_RAW = 99
SKELETON_COLUMNS = 1 + OPENPOSE25_HANDS10.num_joints * 3


def raw_to_label(raw: np.ndarray) -> np.ndarray:
    """Official raw classes (1..31, 99 = non-MG) to the 0-based labels every public pipeline uses."""
    raw = np.asarray(raw, dtype=np.int64)
    return np.where(raw == NON_MG_RAW, NUM_CLASSES - 1, raw - 1)


def label_to_raw(label: np.ndarray) -> np.ndarray:
    label = np.asarray(label, dtype=np.int64)
    return np.where(label == NUM_CLASSES - 1, NON_MG_RAW, label + 1)


def read_labels(path: Path, *, placeholder: bool = False) -> np.ndarray:
    """`{vid}_label.csv` -> int64 (n, 3) rows of (0-based label, start, end); label -1 where `placeholder`."""
    rows = read_segment_rows(path, what="iMiGUE label file: class,start_frame,end_frame")
    if not len(rows):
        raise DatasetFormatError(f"{path}: no label rows (every interview has clips; an empty file would drop them silently)")
    if placeholder:
        rows[:, 0] = -1
        return rows
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
    bad = np.argwhere(np.isnan(table) | (table != np.round(table)) | (table < 0))
    if bad.size:
        raise DatasetFormatError(f"{path}: data row {int(bad[0, 0]) + 1}: video and subject must be non-negative integers "
                                 f"(an empty or fractional cell)")
    return {f"{int(v):04d}": int(s) for v, s in table}


def release_tree(root: Path, entry: Mapping | None = None) -> ImigueTree:
    """The parts of the release under `root` (and the entry's `skeleton_root` / `video_root`)."""
    entry = entry_or_default(entry)
    roots = [Path(entry[key] or root) for key in ("skeleton_root", "video_root")]
    truth = entry["test_truth"]
    tree = find_tree(roots, exclude=[truth] if truth else [])
    if not any(tree.label_dirs.values()):
        raise DatasetFormatError(f"{roots[0]}: no iMiGUE label files ({{vid}}/{{vid}}_label.csv under imigue_skeleton_train/_validate/_test)")
    return tree


def require_labels(tree: ImigueTree) -> None:
    """An interview folder with a skeleton but no readable label file would lose its clips without a word: an error."""
    if tree.without_labels:
        video, folder = next(iter(sorted(tree.without_labels.items())))
        raise DatasetFormatError(f"{folder / f'{video}_label.csv'}: missing or not a file, but the interview's skeleton is there "
                                 f"({len(tree.without_labels)} such interviews); its clips would be dropped")


def skeleton_source(entry: Mapping | None) -> str:
    source = str(entry_or_default(entry)["skeleton"])
    if source not in SKELETON_SOURCES:
        raise DatasetFormatError(f"datasets.imigue.skeleton: unknown skeleton source {source!r}; known: {sorted(SKELETON_SOURCES)}")
    return source


def scan(root: Path, *, default_fps: float = 25.0, entry: Mapping | None = None, require_video: bool = False) -> pl.DataFrame:
    """Build the manifest (one row per clip) from an iMiGUE release in any known layout.

    Clips without a video are an error when `require_video`, a warning with counts otherwise.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: iMiGUE root folder not found")
    entry = entry_or_default(entry)
    tree = release_tree(root, entry)
    require_labels(tree)
    subjects = read_video_subjects(root)
    truth = _test_truth(entry, tree)
    trust_test = str(entry["test_labels"]) == "real"
    rows = []
    for split in SPLITS:
        for video in tree.videos(split):
            placeholder = split == "test" and not trust_test
            labels = read_labels(tree.label_file(video), placeholder=placeholder)
            if placeholder and video in truth:
                labels = _with_truth(labels, truth[video], tree.label_file(video))
            rows.extend(_clips_of_video(root, tree, video, split, labels, subjects.get(video, -1), default_fps))
    _report_missing_video(rows, require_video)
    return validate_manifest(pl.DataFrame(rows, schema_overrides={"label": pl.Int64}, infer_schema_length=None), f"{root} (iMiGUE manifest)", NUM_CLASSES)


def _test_truth(entry: Mapping, tree: ImigueTree) -> dict[str, Path]:
    folder = entry["test_truth"]
    if not folder:
        return {}
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder}: datasets.imigue.test_truth folder not found")
    files = {p.name[: -len("_label.csv")]: p for p in folder.rglob("*_label.csv")}
    missing = [v for v in tree.videos("test") if v not in files]
    if missing:
        raise DatasetFormatError(f"{folder}: no test truth for {len(missing)} test videos (first: {missing[0]}_label.csv)")
    return files


def _with_truth(placeholder_rows: np.ndarray, truth_path: Path, label_path: Path) -> np.ndarray:
    truth = read_labels(truth_path)
    if truth.shape != placeholder_rows.shape or (truth[:, 1:] != placeholder_rows[:, 1:]).any():
        raise DatasetFormatError(f"{truth_path}: its rows do not match the clips of {label_path} (same frames, same order)")
    return truth


def _clips_of_video(root: Path, tree: ImigueTree, video: str, split: str, labels: np.ndarray, subject: int,
                    default_fps: float) -> list[dict]:
    whole = tree.whole_videos.get(video)
    info = probe_video(whole) if whole else None
    rows = []
    for k, (label, start, end) in enumerate(labels):
        path, video_start, clip_info = whole, 0, info
        if path is None and (video, k) in tree.clip_videos:
            path, video_start = tree.clip_videos[(video, k)], int(start)
            clip_info = probe_video(path)
        rows.append({
            "sample_id": f"{video}_{k}", "dataset": DATASET, "split": split, "subject": subject,
            "video": _relative(path, root) if path else None, "video_start": video_start,
            "start_frame": int(start), "end_frame": int(end), "label": None if label < 0 else int(label),
            "fps": clip_info.fps if clip_info else default_fps,
            "width": clip_info.width if clip_info else None, "height": clip_info.height if clip_info else None,
            "_video_frames": clip_info.num_frames if clip_info else None,
        })
    return _clip_to_video(rows, tree.label_file(video))


def _clip_to_video(rows: list[dict], label_path: Path) -> list[dict]:
    """Label rows may run past the video's last frame (a known quirk): cut them there, drop rows that start past it."""
    kept, cut, dropped = [], 0, 0
    for row in rows:
        frames = row.pop("_video_frames")
        if frames is not None:
            last = row["video_start"] + frames - 1
            if row["start_frame"] > last:
                dropped += 1
                continue
            if row["end_frame"] > last:
                row["end_frame"], cut = last, cut + 1
        kept.append(row)
    if cut or dropped:
        warnings.warn(f"{label_path}: {cut} clips end past the video's last frame (cut there), {dropped} start past it (dropped)",
                      stacklevel=4)
    return kept


def _report_missing_video(rows: list[dict], require_video: bool) -> None:
    missing = [r["sample_id"] for r in rows if r["video"] is None]
    if not missing:
        return
    message = f"{len(missing)} of {len(rows)} iMiGUE clips have no video (first: {missing[0]})"
    if require_video:
        raise DatasetFormatError(f"{message}; the configured pose backend or RGB fusion needs one "
                                 "(set datasets.imigue.video_root to the folder holding the videos)")
    warnings.warn(f"{message}; fps defaults to ingest.imigue_default_fps", stacklevel=3)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path.resolve())


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


def scan_release(root: Path, options: dict, entry: Mapping | None = None, *, require_video: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    manifest = scan(root, default_fps=float(options["imigue_default_fps"]), entry=entry, require_video=require_video)
    return manifest, empty(SEGMENTS_SCHEMA)


def class_names(root: Path | None = None, entry: Mapping | None = None) -> list[str]:
    return list(CLASS_NAMES)


def layout_of(root: Path | None = None, entry: Mapping | None = None) -> str:
    return OPENPOSE137.name if skeleton_source(entry) in ("openpose_xlsx", "openpose_json") else LAYOUT


TIP_BLOCKS = (slice(25, 30), slice(30, 35))  # the two blocks of 5 fingertips of `_light_hand.csv`, in file order


def light_hand_tips(entry: Mapping | None) -> str:
    """`datasets.imigue.light_hand_tips`: which hand's 5 fingertips come first in `_light_hand.csv` (`miga data check`
    measures it: miga/datasets/sides.py)."""
    return str(entry_or_default(entry)["light_hand_tips"])


def read_interview(path: Path, source: str, num_frames: int | None = None,
                   frame_size: tuple[int, int] | None = None, *, tips: str = "left_first") -> np.ndarray:
    """A whole interview's keypoints `(T, V, 3)` from its file (folder) of the given skeleton source.

    `frame_size` (width, height), where known, helps openpose_json choose the subject among several people.
    `tips` (light_hand only): `right_first` reads the file's first block of fingertips as the right hand's, so the
    points come out in the layout's order (left tips, then right).
    """
    if tips not in ("left_first", "right_first"):
        raise ConfigError(f"datasets.imigue.light_hand_tips: {tips!r}; known: left_first, right_first")
    if source == "openpose_xlsx":
        return read_openpose_xlsx(path, num_frames)
    if source == "openpose_json":
        return read_openpose_json(path, num_frames, frame_size)
    points = read_skeleton(path, num_frames)
    if tips == "right_first":
        first, second = TIP_BLOCKS
        points[:, first], points[:, second] = points[:, second].copy(), points[:, first].copy()
    return points


def provided_keypoints(root: Path, manifest: pl.DataFrame, entry: Mapping | None = None) -> dict[str, tuple[int, np.ndarray]]:
    """Cut each clip's keypoints `(1, T, V, 3)` from its interview's provided skeleton file (`skeleton` source)."""
    source = skeleton_source(entry)
    tree = release_tree(Path(root), entry)
    out: dict[str, tuple[int, np.ndarray]] = {}
    clips = manifest.with_columns(pl.col("sample_id").str.split("_").list.first().alias("_video"))
    for (video,), group in clips.group_by(["_video"], maintain_order=True):
        num_frames = int(group["end_frame"].max()) + 1
        sizes = group.select("width", "height").drop_nulls().unique().rows() if {"width", "height"} <= set(group.columns) else []
        frame_size = tuple(map(int, sizes[0])) if len(sizes) == 1 else None
        skeleton = read_interview(tree.skeleton_file(video, source), source, num_frames, frame_size, tips=light_hand_tips(entry))
        for sample_id, start, end in group.select("sample_id", "start_frame", "end_frame").iter_rows():
            # a copy: a view would keep the whole interview (gaps included) in memory, 2.6 GB over iMiGUE's 3 M frames
            out[sample_id] = (start, skeleton[None, start: end + 1].copy())
    return out
