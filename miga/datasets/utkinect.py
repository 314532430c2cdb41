"""UTKinect-Action3D continuous sequences -> the generic stream format (miga.datasets.stream).

`joints_sXX_eYY.txt`: one row per captured frame, the frame id then 20 Kinect v1 joints x
(x, y, z) in metres. Frame ids skip and sometimes repeat; the label file's boundaries refer to
these ids, so a segment covers the rows whose id lies inside it (repeated rows are dropped).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from miga.datasets import stream
from miga.datasets.csvtable import DatasetFormatError

CLASSES = ("walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands")
FPS = 15.0  # UTKinect records at roughly 15 frames/s
_SEQUENCE = re.compile(r"^s(\d+)_e(\d+)$")


def read_joints(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frame ids, (T, 20, 3) x, y (image-up flipped), score) with repeated ids dropped."""
    try:
        table = np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise DatasetFormatError(f"{path}: not a UTKinect joints file: {err}") from err
    if table.shape[1] != 61:
        raise DatasetFormatError(f"{path}: {table.shape[1]} columns, expected 61 (frame id + 20 joints x 3)")
    ids, keep = np.unique(table[:, 0].astype(np.int64), return_index=True)
    world = table[np.sort(keep), 1:].reshape(-1, 20, 3)
    ids = table[np.sort(keep), 0].astype(np.int64)
    keypoints = np.concatenate([world[..., :1], -world[..., 1:2], np.ones_like(world[..., :1])], axis=-1)
    return ids, keypoints.astype(np.float32)


def read_labels(path: Path) -> dict[str, list[tuple[int, int, int]]]:
    """`actionLabel.txt` -> {sequence: [(class, first id, last id)]}; NaN boundaries (action absent) are skipped."""
    labels: dict[str, list[tuple[int, int, int]]] = {}
    current = None
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if _SEQUENCE.match(line):
            current = labels.setdefault(line, [])
            continue
        name, _, bounds = line.partition(":")
        parts = bounds.split()
        if current is None or name not in CLASSES or len(parts) != 2:
            raise DatasetFormatError(f"{path}: line {number}: expected '<action>: <start> <end>', got {line!r}")
        if "NaN" in parts:
            continue
        current.append((CLASSES.index(name), int(parts[0]), int(parts[1])))
    return labels


def convert(source: Path, out: Path, *, label_file: str = "actionLabel_modified.txt", val_subjects=(7, 8), test_subjects=(9, 10)) -> None:
    """Write the UTKinect sequences in `source` as a stream dataset under `out` (leave subjects out)."""
    source = Path(source)
    labels = read_labels(source / label_file)
    sequences, samples, segments = {}, [], []
    for name, actions in sorted(labels.items()):
        path = source / f"joints_{name}.txt"
        if not path.exists():
            continue
        ids, keypoints = read_joints(path)
        subject = int(_SEQUENCE.match(name).group(1))
        split = "val" if subject in val_subjects else "test" if subject in test_subjects else "train"
        sequences[name] = keypoints
        samples.append({"sample_id": name, "subject": subject, "split": split})
        for label, first, last in actions:
            rows = np.flatnonzero((ids >= first) & (ids <= last))
            if rows.size:
                segments.append({"sample_id": name, "label": label, "start_frame": int(rows[0]), "end_frame": int(rows[-1])})
    if not sequences:
        raise DatasetFormatError(f"{source}: no joints_sXX_eYY.txt files matching {label_file}")
    stream.write(out, layout="kinect20", fps=FPS, classes=CLASSES, sequences=sequences,
                 samples=pl.DataFrame(samples, infer_schema_length=None), segments=pl.DataFrame(segments, infer_schema_length=None))
