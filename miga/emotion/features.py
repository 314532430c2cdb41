"""Per-video features of a micro-gesture sequence: events (class, start, end) in a video of known length and fps.

Two parts, each a fixed-length vector:
- `bag`: the bag of MGs (the baseline's input, as the iMiGUE emotion protocol's reference uses it): each class's share
  of the events, each class's share of the video's time, and MGs per minute.
- `timing`: how the sequence unfolds, whatever the classes: how many events and how long the video, MGs per minute,
  time inside events, event lengths, the pauses between events (median, spread, overlaps), the non-MG share, class
  variety, how often a class repeats at once, where in the video the first MG comes and how the events spread over
  its thirds.

The video's length is its `frames` (for iMiGUE clips: the last labelled frame + 1, the label files give no more).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

TIMING_NAMES = (
    "log_events", "log_minutes", "mgs_per_minute", "time_in_events", "mean_log_length", "std_log_length",
    "median_pause", "mean_log_pause", "std_log_pause", "overlap_share", "non_mg_share", "variety", "log_classes",
    "repeat_share", "first_onset", "first_third", "middle_third", "last_third",
)
PARTS = ("bag", "timing")


@dataclass(frozen=True)
class MgSequence:
    """One video's events, sorted by start: classes (0-based), start and end frames (inclusive)."""

    classes: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    frames: int  # the video's length in frames
    fps: float

    @classmethod
    def of(cls, classes: Sequence[int], starts: Sequence[int], ends: Sequence[int], frames: int, fps: float) -> "MgSequence":
        classes, starts, ends = (np.asarray(a, np.int64).reshape(-1) for a in (classes, starts, ends))
        order = np.lexsort((ends, starts))
        return cls(classes[order], starts[order], ends[order], max(int(frames), 1), float(fps))

    @property
    def minutes(self) -> float:
        return self.frames / self.fps / 60.0


def bag_names(class_names: Sequence[str]) -> list[str]:
    return [f"share:{n}" for n in class_names] + [f"time:{n}" for n in class_names] + ["mgs_per_minute"]


def bag_features(seq: MgSequence, num_classes: int) -> np.ndarray:
    """Class shares of the events (K), class shares of the video's time (K), MGs per minute (1)."""
    n = seq.classes.size
    counts = np.bincount(seq.classes, minlength=num_classes).astype(np.float64)
    lengths = (seq.ends - seq.starts + 1).astype(np.float64)
    time = np.bincount(seq.classes, weights=lengths, minlength=num_classes)
    return np.concatenate([counts / max(n, 1), time / seq.frames, [n / seq.minutes]])


def timing_features(seq: MgSequence, non_mg: int | None) -> np.ndarray:
    """The `TIMING_NAMES` of one sequence (an empty sequence: no events, no pauses, its first MG at the very end)."""
    n, fps = seq.classes.size, seq.fps
    if n == 0:
        return np.array([0.0, np.log(seq.minutes), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    log_length = np.log((seq.ends - seq.starts + 1) / fps)
    pauses = (seq.starts[1:] - seq.ends[:-1]) / fps
    log_pause = np.log1p(np.maximum(pauses, 0.0))
    position = seq.starts / seq.frames
    thirds = np.bincount(np.minimum((position * 3).astype(np.int64), 2), minlength=3) / n
    distinct = np.unique(seq.classes).size
    return np.array([
        np.log1p(n), np.log(seq.minutes), n / seq.minutes, float((seq.ends - seq.starts + 1).sum()) / seq.frames,
        log_length.mean(), log_length.std(),
        float(np.median(pauses)) if pauses.size else 0.0, log_pause.mean() if pauses.size else 0.0,
        log_pause.std() if pauses.size else 0.0, float((pauses < 0).mean()) if pauses.size else 0.0,
        float((seq.classes == non_mg).mean()) if non_mg is not None else 0.0,
        distinct / n, np.log1p(distinct), float((seq.classes[1:] == seq.classes[:-1]).mean()) if n > 1 else 0.0,
        float(position[0]), *thirds,
    ])


def feature_names(parts: Sequence[str], class_names: Sequence[str]) -> list[str]:
    names: list[str] = []
    for part in parts:
        names += bag_names(class_names) if part == "bag" else [f"timing:{n}" for n in TIMING_NAMES]
    return names


def feature_matrix(sequences: Sequence[MgSequence], parts: Sequence[str], num_classes: int, non_mg: int | None) -> np.ndarray:
    """(videos, features) for the given parts, in `feature_names` order."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown feature parts {unknown}; known: {PARTS}")
    rows = []
    for seq in sequences:
        row = [bag_features(seq, num_classes) if part == "bag" else timing_features(seq, non_mg) for part in parts]
        rows.append(np.concatenate(row) if row else np.zeros(0))
    width = sum(2 * num_classes + 1 if p == "bag" else len(TIMING_NAMES) for p in parts)
    return np.array(rows, dtype=np.float64).reshape(len(rows), width)


def class_rates(sequences: Sequence[MgSequence], num_classes: int) -> np.ndarray:
    """(videos, classes): events of each class per minute of each video."""
    return np.array([np.bincount(s.classes, minlength=num_classes) / s.minutes for s in sequences], dtype=np.float64).reshape(-1, num_classes)
