"""UTKinect-Action3D continuous sequences -> the generic stream format (miga.datasets.stream).

`joints_sXX_eYY.txt`: one row per captured frame, the frame id then 20 Kinect v1 joints x
(x, y, z) in metres. Frame ids skip and sometimes repeat; the label file's boundaries refer to
these ids, so a segment covers the rows whose id lies inside it (repeated rows are dropped).

Timeline: by default one output frame per captured row (`id_step=None`). The ids count Kinect's 30 Hz
clock but step by 2 to 8 (and by 50-230 where tracking was lost), so rows are not evenly spaced in time:
a stretch with steps of 2 ids plays 4x slower, row by row, than one with steps of 8. `id_step=k` puts
the rows on an even grid of one frame every k ids (30 / k frames/s) and fills the empty grid frames by
linear interpolation between their neighbouring rows; the label boundaries map onto the same grid.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from miga.datasets import stream
from miga.datasets.csvtable import DatasetFormatError

CLASSES = ("walk", "sitDown", "standUp", "pickUp", "carry", "throw", "push", "pull", "waveHands", "clapHands")
FPS = 15.0  # UTKinect records at roughly 15 rows/s
CLOCK_HZ = 30.0  # the frame ids' clock (Kinect v1)
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


def on_id_grid(ids: np.ndarray, keypoints: np.ndarray, id_step: int) -> np.ndarray:
    """(T, V, 3) rows at `ids` -> (T', V, 3) on the grid id0, id0 + id_step, ...: each grid frame linearly
    interpolated from the rows with the nearest ids before and after it (the row itself where one lies on it)."""
    grid = ids[0] + id_step * np.arange((ids[-1] - ids[0]) // id_step + 1)
    flat = keypoints.reshape(len(ids), -1)
    out = np.stack([np.interp(grid, ids, flat[:, j]) for j in range(flat.shape[1])], axis=1)
    return out.reshape(len(grid), *keypoints.shape[1:]).astype(np.float32)


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


def convert(source: Path, out: Path, *, label_file: str = "actionLabel_modified.txt", val_subjects=(7, 8), test_subjects=(9, 10),
            id_step: int | None = None) -> None:
    """Write the UTKinect sequences in `source` as a stream dataset under `out` (leave subjects out); one frame per
    row, or with `id_step` one frame every `id_step` ids of the 30 Hz clock (see the module's docstring)."""
    if id_step is not None and int(id_step) < 1:
        raise DatasetFormatError(f"id_step must be a positive number of frame ids, got {id_step}")
    source = Path(source)
    labels = read_labels(source / label_file)
    sequences, samples, segments = {}, [], []
    for name, actions in sorted(labels.items()):
        path = source / f"joints_{name}.txt"
        if not path.exists():
            continue
        ids, keypoints = read_joints(path)
        if id_step is not None:
            keypoints = on_id_grid(ids, keypoints, int(id_step))
            ids = ids[0] + int(id_step) * np.arange(len(keypoints))
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
    stream.write(out, layout="kinect20", fps=FPS if id_step is None else CLOCK_HZ / int(id_step), classes=CLASSES, sequences=sequences,
                 samples=pl.DataFrame(samples), segments=pl.DataFrame(segments))
