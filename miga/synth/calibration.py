"""Statistics that compare the synthetic world with real data, measured the same way on both.

iMiGUE (one interview's keypoints + its clips): per clip, the largest wrist displacement from
the clip's first frame and the mean wrist speed, both in shoulder widths (the interview's median
shoulder width, as `miga.skeleton.normalise` sizes a body); the clip-length distribution and the
share of class 99 (non-MG) over a label table. SMG (label rows of whole sequences): gesture
duration, the share of frames inside a gesture, gestures per 1,000 frames and the share of
consecutive gestures that overlap.

Real inputs: the raw OpenPose JSON of iMiGUE video 298 (read by `miga.datasets.openpose_json`,
layout openpose137), `labels_dev.csv`, `smg_finelabels_train_val.csv`. Synthetic inputs: a
release written by `miga.synth`, read back through `miga.datasets.imigue` / `miga.datasets.smg`.
`REAL` holds the real figures (recomputed by `real_imigue_*` / `real_smg` and checked equal in
tests/synth/test_synth_calibration.py where the real material exists).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from miga.layouts import get_layout
from miga.skeleton.normalise import SHOULDERS, joint_pair

WRISTS = ("LWrist", "RWrist")
MIN_SCORE = 0.1  # a keypoint counts as seen from this confidence (OpenPose's own rendering threshold is 0.05-0.1)
NON_MG_RAW = 99

# Real figures, measured with this module's functions on the real material (../shared/realdata, 2026-12-06):
#   imigue_motion: video 298's 56 clips (298_openpose_json.tar.gz + its labels_dev.csv rows)
#   imigue_labels: labels_dev.csv, 259 videos, 13,617 clips
#   smg:           smg_finelabels_train_val.csv, Sample0001-0035, 3,089 gestures
# ---------------------------------------------------------------- calibration constants (read by the generator)
# Chosen so the synthetic default matches `REAL` within `TOLERANCES` (benchmarks/synth_vs_real.py, BENCHMARKS.md
# "Synthetic vs real"); before calibration every value was the one in brackets.
ILLUSTRATIVE_REACH = 0.4  # [1.0] share of the way from rest to the gesture space the hands of class 99 / SMG
#   'illustrative' travel (real class 99 of video 298: median wrist displacement 0.18 shoulder widths over 18 clips)
IMIGUE_APPROACH = 0.3  # [0.0] hand approach / retreat before / after a labelled clip, in shares of its length (clips
#   label a gesture's core: real 'scratch head' clips of video 298 move a wrist 0.35 shoulder widths, not a full reach)
ILLUSTRATIVE_AMP = 0.02  # [0.1] metres of their free hand motion (same measurement)
IDLE_HAND_SCALE = 0.3  # [1.0] on a resting hand's drift and fidgets (real 'shake shoulder' clips of video 298 move a
#   wrist 0.01 shoulder widths, median of 8)
POSE_NOISE_SCALE = 0.15  # [1.0] on each subject's OpenPose pixel noise (jitter dominated the wrist speed)
DURATION_LOG_SIGMA = 0.55  # [0.0] log-normal spread on every gesture's duration (real durations are long-tailed)
IMIGUE_CLASS_POWER = 1.0  # [0.5] class frequencies ~ real count ** power: class 99 is 30% of real clips
IMIGUE_DURATION_SCALE = 0.8  # [1.0] on the programs' durations (default and benchmark presets)
IMIGUE_CLIP_FRAMES = (12, 200)  # [(30, 90)] clip-length bounds (default and benchmark presets)
SMG_DURATION_SCALE = 0.85  # [0.75] on the programs' durations (SMG gestures: median 45 frames at 30 fps)
SMG_GESTURE_FRACTION = 0.2  # [0.3] share of a sequence's frames inside gestures
SMG_OVERLAP_RATE = 0.017  # [0.1] chance a gesture starts before the previous one ends

REAL = {
    "imigue_motion": {
        "clips": 56, "displacement_median": 0.1777, "displacement_q1": 0.03714, "displacement_q3": 0.3497,
        "speed_mean": 0.01010, "speed_median": 0.008242,
    },
    "imigue_labels": {
        "clips": 13617, "length_median": 40.0, "length_mean": 63.76, "length_q1": 26.0, "length_q3": 72.0,
        "non_mg_share": 0.2990,
    },
    "smg": {
        "sequences": 35, "gestures": 3089, "frames_median": 24617.0, "duration_median": 45.0, "duration_mean": 55.63,
        "duration_p10": 21.0, "duration_p90": 103.2, "inside_share": 0.2017, "per_1000_frames": 3.640,
        "overlap_share": 0.01703,
    },
}

# What each compared statistic is, in the benchmark's order.
STATISTICS = {
    ("imigue_motion", "displacement_median"): "iMiGUE max wrist displacement, median (sw)",
    ("imigue_motion", "displacement_q1"): "iMiGUE max wrist displacement, q1 (sw)",
    ("imigue_motion", "displacement_q3"): "iMiGUE max wrist displacement, q3 (sw)",
    ("imigue_motion", "speed_mean"): "iMiGUE wrist speed, mean (sw/frame)",
    ("imigue_motion", "speed_median"): "iMiGUE wrist speed, median clip (sw/frame)",
    ("imigue_labels", "length_median"): "iMiGUE clip length, median (frames)",
    ("imigue_labels", "length_mean"): "iMiGUE clip length, mean (frames)",
    ("imigue_labels", "length_q1"): "iMiGUE clip length, q1 (frames)",
    ("imigue_labels", "length_q3"): "iMiGUE clip length, q3 (frames)",
    ("imigue_labels", "non_mg_share"): "iMiGUE class 99 (non-MG) share of clips",
    ("smg", "frames_median"): "SMG sequence length, median (frames)",
    ("smg", "duration_median"): "SMG gesture duration, median (frames)",
    ("smg", "duration_mean"): "SMG gesture duration, mean (frames)",
    ("smg", "duration_p10"): "SMG gesture duration, p10 (frames)",
    ("smg", "duration_p90"): "SMG gesture duration, p90 (frames)",
    ("smg", "inside_share"): "SMG share of frames inside a gesture",
    ("smg", "per_1000_frames"): "SMG gestures per 1,000 frames",
    ("smg", "overlap_share"): "SMG consecutive gestures overlapping",
}
# ("rel", x): |synthetic / real - 1| <= x; ("abs", x): |synthetic - real| <= x. A statistic absent here is
# not calibrated: the displacement's q1 (a quarter of real clips barely move a wrist, < 0.04 sw; the synthetic
# idle hand drifts more) and SMG's sequence length (~25k frames real: a cost, not a per-gesture statistic).
TOLERANCES = {
    ("imigue_motion", "displacement_median"): ("rel", 0.25),
    ("imigue_motion", "displacement_q3"): ("rel", 0.25),
    ("imigue_motion", "speed_mean"): ("rel", 0.25),
    ("imigue_motion", "speed_median"): ("rel", 0.3),
    ("imigue_labels", "length_median"): ("rel", 0.15),
    ("imigue_labels", "length_mean"): ("rel", 0.3),
    ("imigue_labels", "length_q1"): ("rel", 0.2),
    ("imigue_labels", "length_q3"): ("rel", 0.25),
    ("imigue_labels", "non_mg_share"): ("abs", 0.06),
    ("smg", "duration_median"): ("rel", 0.15),
    ("smg", "duration_mean"): ("rel", 0.2),
    ("smg", "duration_p10"): ("rel", 0.25),
    ("smg", "duration_p90"): ("rel", 0.25),
    ("smg", "inside_share"): ("abs", 0.04),
    ("smg", "per_1000_frames"): ("rel", 0.25),
    ("smg", "overlap_share"): ("abs", 0.03),
}


def within(real: float, synthetic: float, rule: tuple[str, float]) -> bool:
    kind, x = rule
    if kind == "rel":
        return abs(synthetic / real - 1.0) <= x
    return abs(synthetic - real) <= x


def describe(rule: tuple[str, float] | None) -> str:
    if rule is None:
        return "-"
    kind, x = rule
    return f"+-{x:.0%}" if kind == "rel" else f"+-{x:g} abs"


# ---------------------------------------------------------------- iMiGUE: wrist motion per clip

def _wrist_indices(layout: str) -> tuple[list[int], tuple[int, int]]:
    spec = get_layout(layout)
    wrists = [spec.joints.index(name) for name in WRISTS]
    shoulders = joint_pair(spec, SHOULDERS)
    if shoulders is None:
        raise ValueError(f"layout {layout} has no shoulders")
    return wrists, shoulders


def shoulder_width(keypoints: np.ndarray, layout: str, min_score: float = MIN_SCORE) -> float:
    """Median shoulder width (pixels) over the frames where both shoulders are seen."""
    _, (a, b) = _wrist_indices(layout)
    kp = np.asarray(keypoints, np.float64)
    both = (kp[:, a, 2] > min_score) & (kp[:, b, 2] > min_score)
    if not both.any():
        raise ValueError("no frame shows both shoulders")
    return float(np.median(np.linalg.norm(kp[both, a, :2] - kp[both, b, :2], axis=-1)))


def clip_motion(keypoints: np.ndarray, layout: str, start: int, end: int, width: float,
                min_score: float = MIN_SCORE) -> tuple[float, float] | None:
    """(largest wrist displacement from its first seen position, mean wrist speed per frame) in the
    clip's inclusive frames, in shoulder widths; either wrist counts (the larger displacement; the
    speed pools both wrists' steps between consecutive seen frames). None: no wrist seen twice."""
    wrists, _ = _wrist_indices(layout)
    kp = np.asarray(keypoints[start: end + 1], np.float64)
    displacements, steps = [], []
    for j in wrists:
        seen = kp[:, j, 2] > min_score
        xy = kp[:, j, :2]
        if seen.sum() < 2:
            continue
        first = xy[np.argmax(seen)]
        displacements.append(np.linalg.norm(xy[seen] - first, axis=-1).max())
        pairs = seen[1:] & seen[:-1]
        steps.extend(np.linalg.norm(xy[1:][pairs] - xy[:-1][pairs], axis=-1))
    if not displacements or not steps:
        return None
    return float(max(displacements)) / width, float(np.mean(steps)) / width


def motion_summary(per_clip: Sequence[tuple[float, float]]) -> dict:
    """Median and quartiles of the clips' displacement, median and mean of their mean speeds."""
    d = np.array([c[0] for c in per_clip])
    s = np.array([c[1] for c in per_clip])
    return {
        "clips": int(len(d)),
        "displacement_median": float(np.median(d)), "displacement_q1": float(np.percentile(d, 25)),
        "displacement_q3": float(np.percentile(d, 75)),
        "speed_mean": float(np.mean(s)), "speed_median": float(np.median(s)),
    }


def video_clip_motion(keypoints: np.ndarray, layout: str, clips: Iterable[tuple[int, int]]) -> list[tuple[float, float]]:
    width = shoulder_width(keypoints, layout)
    out = [clip_motion(keypoints, layout, int(s), int(e), width) for s, e in clips]
    return [c for c in out if c is not None]


# ---------------------------------------------------------------- label statistics

def clip_label_summary(rows: Sequence[tuple[int, int, int]]) -> dict:
    """Rows of (raw class, start, end): clip-length distribution and the share of class 99."""
    rows = np.asarray(rows, np.int64).reshape(-1, 3)
    lengths = rows[:, 2] - rows[:, 1] + 1
    return {
        "clips": int(len(rows)),
        "length_median": float(np.median(lengths)), "length_mean": float(np.mean(lengths)),
        "length_q1": float(np.percentile(lengths, 25)), "length_q3": float(np.percentile(lengths, 75)),
        "non_mg_share": float(np.mean(rows[:, 0] == NON_MG_RAW)),
    }


def gesture_summary(sequences: Mapping[str, tuple[int, np.ndarray]]) -> dict:
    """{sequence: (frames, rows of (class, start, end))}: SMG gesture statistics.

    Frames inside a gesture count once however many gestures cover them; a pair of consecutive
    gestures (by start) overlaps when the second starts at or before the first's end."""
    durations, inside, frames, overlaps, pairs, count = [], 0, 0, 0, 0, 0
    for num_frames, rows in sequences.values():
        rows = np.asarray(rows, np.int64).reshape(-1, 3)
        rows = rows[np.argsort(rows[:, 1], kind="stable")]
        durations.extend((rows[:, 2] - rows[:, 1] + 1).tolist())
        covered = np.zeros(num_frames, bool)
        for _, s, e in rows:
            covered[max(s, 0): e + 1] = True
        inside += int(covered.sum())
        frames += int(num_frames)
        overlaps += int((rows[1:, 1] <= rows[:-1, 2]).sum())
        pairs += max(len(rows) - 1, 0)
        count += len(rows)
    d = np.asarray(durations)
    return {
        "sequences": len(sequences), "gestures": count,
        "frames_median": float(np.median([f for f, _ in sequences.values()])),
        "duration_median": float(np.median(d)), "duration_mean": float(np.mean(d)),
        "duration_p10": float(np.percentile(d, 10)), "duration_p90": float(np.percentile(d, 90)),
        "inside_share": inside / max(frames, 1),
        "per_1000_frames": 1000.0 * count / max(frames, 1),
        "overlap_share": overlaps / max(pairs, 1),
    }


# ---------------------------------------------------------------- real inputs

def read_labels_dev(path: Path) -> dict[int, list[tuple[int, int, int]]]:
    """labels_dev.csv -> {video id: [(raw class, start_frame, end_frame), ...]}."""
    out: dict[int, list[tuple[int, int, int]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(int(row["video_id"]), []).append((int(row["class"]), int(row["start_frame"]), int(row["end_frame"])))
    return out


def real_imigue_motion(json_folder: Path, labels_dev: Path, video: int = 298) -> dict:
    """Wrist motion over a real interview's labelled clips, from its OpenPose JSON folder."""
    from miga.datasets.openpose_json import read_openpose_json

    keypoints = read_openpose_json(Path(json_folder))
    clips = [(s, e) for _, s, e in read_labels_dev(labels_dev)[video]]
    return motion_summary(video_clip_motion(keypoints, "openpose137", clips))


def real_imigue_labels(labels_dev: Path) -> dict:
    return clip_label_summary([r for rows in read_labels_dev(labels_dev).values() for r in rows])


def real_smg(finelabels: Path) -> dict:
    """smg_finelabels_train_val.csv; a sequence's length is taken as its last labelled frame + 1 (the
    sequences' own lengths are not public)."""
    by_sample: dict[str, list[tuple[int, int, int]]] = {}
    with open(finelabels, newline="") as f:
        for row in csv.DictReader(f):
            by_sample.setdefault(row["sample"], []).append((int(row["class"]), int(row["start_frame"]), int(row["end_frame"])))
    return gesture_summary({k: (max(r[2] for r in rows) + 1, np.array(rows)) for k, rows in by_sample.items()})


# ---------------------------------------------------------------- synthetic releases

def synthetic_imigue(root: Path) -> tuple[dict, dict]:
    """(wrist motion, label statistics) of a synthetic iMiGUE release (light_hand skeletons), read
    through `miga.datasets.imigue`; the test split's classes come from the release's test truth."""
    from miga.datasets.imigue import layout_of, read_labels, read_skeleton, release_tree

    root = Path(root)
    tree = release_tree(root)
    truth = root / "imigue_test_truth"
    per_clip, rows = [], []
    for split in ("train", "val", "test"):
        for video in tree.videos(split):
            label_path = tree.label_file(video)
            if split == "test" and (truth / f"{video}_label.csv").exists():
                label_path = truth / f"{video}_label.csv"
            labels = read_labels(label_path)
            raw = np.where(labels[:, 0] == 31, NON_MG_RAW, labels[:, 0] + 1)
            rows += [(int(c), int(s), int(e)) for c, (_, s, e) in zip(raw, labels)]
            keypoints = read_skeleton(tree.skeleton_file(video), int(labels[:, 2].max()) + 1)
            per_clip += video_clip_motion(keypoints, layout_of(root), labels[:, 1:])
    return motion_summary(per_clip), clip_label_summary(rows)


def synthetic_smg(root: Path) -> dict:
    """Gesture statistics of a synthetic SMG release, read through `miga.datasets.smg`."""
    from miga.datasets.smg import read_data_file, read_labels, release_tree

    tree = release_tree(Path(root))
    sequences = {}
    for name, sample in tree.samples.items():
        frames, _, _ = read_data_file(sample.parts["data"])
        sequences[name] = (frames, read_labels(sample.parts["labels"], frames))
    return gesture_summary(sequences)
