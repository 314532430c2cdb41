"""Ground Guide Gesture dataset (2-D upper-body joints with per-frame labels) -> miga keypoints.

The source (github sschueth/ground-guide-gesture-dataset) has one folder per recording,
`<person>_<gesture>[_<gesture>][_NNN]/gesture_data.csv`, one row per video frame:
`image` (`images/<recording>/frame_NNNN.jpg`; the frames themselves are not shipped), `gesture`
(0-based class of the frame), then 8 joints x (x, y): left/right shoulder, elbow, wrist, hip,
already normalised (centred near the shoulders, unit about a shoulder width, y down). Left/right
are the person's. There is no score column: every joint counts as seen (score 1).

`read_recording` gives the frame labels and the keypoints in `coco17` (the 8 joints; the head
and legs have score 0); `segments` cuts a recording into its runs of one class; `load` reads them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from miga.datasets.csvtable import DatasetFormatError
from miga.layouts import get_layout

LAYOUT = "coco17"
CLASSES = ("attention", "ready", "crank", "stop", "move", "turn-left", "turn-right", "speed-up", "slow-down", "kill", "standby")
PERSONS = ("chris", "janie", "john", "stephen", "terri")
_JOINTS = {  # source column prefix -> coco17 joint
    "left_shoulder": "LShoulder", "right_shoulder": "RShoulder", "left_elbow": "LElbow", "right_elbow": "RElbow",
    "left_wrist": "LWrist", "right_wrist": "RWrist", "left_hip": "LHip", "right_hip": "RHip",
}
COLUMNS = ("image", "gesture") + tuple(f"{j}_{c}" for j in _JOINTS for c in ("x", "y"))
_FRAME = re.compile(r"frame_(\d+)\.\w+$")


@dataclass(frozen=True)
class Recording:
    name: str
    person: str
    labels: np.ndarray  # (T,) class per frame
    keypoints: np.ndarray  # (1, T, 17, 3) coco17, score 1 for the 8 joints, 0 elsewhere


def read_recording(folder: Path) -> Recording:
    folder = Path(folder)
    path = folder / "gesture_data.csv"
    if not path.exists():
        raise DatasetFormatError(f"{path}: file not found")
    table = pl.read_csv(path)
    if tuple(table.columns) != COLUMNS:
        raise DatasetFormatError(f"{path}: columns {table.columns}, expected {list(COLUMNS)}")
    frames = table["image"].str.extract(_FRAME.pattern, 1).cast(pl.Int64, strict=False).to_numpy()
    if np.isnan(frames.astype(float)).any():
        raise DatasetFormatError(f"{path}: image names without a frame_NNNN number")
    order = np.argsort(frames, kind="stable")
    labels = table["gesture"].to_numpy().astype(np.int64)[order]
    if labels.min() < 0 or labels.max() >= len(CLASSES):
        raise DatasetFormatError(f"{path}: gesture values outside 0..{len(CLASSES) - 1}")
    xy = table.select(COLUMNS[2:]).to_numpy().astype(np.float32)[order].reshape(-1, len(_JOINTS), 2)
    spec = get_layout(LAYOUT)
    kp = np.zeros((len(labels), spec.num_joints, 3), np.float32)
    for i, joint in enumerate(_JOINTS.values()):
        kp[:, spec.index(joint), :2] = xy[:, i]
        kp[:, spec.index(joint), 2] = np.isfinite(xy[:, i]).all(axis=-1)
    kp[~np.isfinite(kp)] = 0.0
    return Recording(folder.name, folder.name.split("_")[0], labels, kp[None])


def segments(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs of one class: [(start, end (inclusive), label)]."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(labels) != 0) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts - 1, [len(labels) - 1]])
    return [(int(s), int(e), int(labels[s])) for s, e in zip(starts, ends)]


def load(root: Path) -> list[Recording]:
    """Every recording under `root`, by folder name."""
    folders = sorted(p.parent for p in Path(root).glob("*/gesture_data.csv"))
    if not folders:
        raise DatasetFormatError(f"{root}: no <recording>/gesture_data.csv folders")
    return [read_recording(f) for f in folders]


BACKGROUND = CLASSES.index("standby")  # the non-gesture class: background in a stream, not a segment


def stream_sequences(recordings: list[Recording]) -> dict[str, tuple[str, np.ndarray, list[tuple[int, int, int]]]]:
    """Continuous sequences for detection (Track 2): {sample_id: (person, (T, V, 3), [(start, end, label)])}.

    A recording whose label changes inside it is a sequence of its own; each person's one-class recordings
    are joined into one long sequence, ordered so that a class comes back only after every other class
    has had a turn. Segments are each recording's runs of one gesture; `standby` is background."""
    out = {}
    for person in sorted({r.person for r in recordings}):
        own = [r for r in recordings if r.person == person]
        joined = [r for r in own if len(segments(r.labels)) == 1]
        turn = {r.name: sum(1 for q in joined[:i] if q.labels[0] == r.labels[0]) for i, r in enumerate(joined)}
        joined.sort(key=lambda r: (turn[r.name], int(r.labels[0]), r.name))
        for r in own:
            if r not in joined:
                out[r.name] = (person, r.keypoints[0], _gestures(r.labels, 0))
        if joined:
            offsets = np.cumsum([0] + [len(r.labels) for r in joined])
            runs = [run for r, first in zip(joined, offsets) for run in _gestures(r.labels, int(first))]
            out[f"{person}_joined"] = (person, np.concatenate([r.keypoints[0] for r in joined]), runs)
    return out


def _gestures(labels: np.ndarray, offset: int) -> list[tuple[int, int, int]]:
    return [(s + offset, e + offset, c) for s, e, c in segments(labels) if c != BACKGROUND]


def convert_stream(source: Path, out: Path) -> None:
    """Write the recordings in `source` as a stream dataset (miga.datasets.stream) under `out`: the sequences of
    `stream_sequences`, 10 gesture classes (standby is background), subject = the person's number in name order
    (chris 1 ... terri 5), all `train`
    (benchmarks assign their own folds)."""
    from miga.datasets import stream

    sequences = stream_sequences(load(source))
    number = {person: i + 1 for i, person in enumerate(sorted({person for person, _, _ in sequences.values()}))}
    samples = [{"sample_id": sid, "subject": number[person], "split": "train"} for sid, (person, _, _) in sequences.items()]
    rows = [{"sample_id": sid, "label": c, "start_frame": s, "end_frame": e} for sid, (_, _, runs) in sequences.items() for s, e, c in runs]
    stream.write(out, layout=LAYOUT, fps=30.0, classes=[c for c in CLASSES if c != "standby"],
                 sequences={sid: kp for sid, (_, kp, _) in sequences.items()}, samples=pl.DataFrame(samples, infer_schema_length=None), segments=pl.DataFrame(rows, infer_schema_length=None))
