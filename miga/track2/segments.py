"""Track 2 decoding: per-frame class probabilities -> scored segments, and 1-D NMS.

Segments are contract detections tables (`DETECTIONS_SCHEMA`): frames inclusive, labels
0-based over the gesture classes (background excluded).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from miga.contracts import DETECTIONS_SCHEMA, validate_detections
from miga.evaluation.overlap import frame_iou


def frame_scores_to_segments(
    probs: np.ndarray,
    *,
    sample_id: str,
    threshold: float | np.ndarray,
    min_length: int | np.ndarray = 1,
    smooth: int | np.ndarray = 1,
    background: int | None = 0,
    frame_offset: int = 0,
) -> pl.DataFrame:
    """Runs of frames whose best gesture class is above `threshold` (one value, or one per gesture class), one
    segment per class run.

    `probs` is (T, C). `background` is the background column (dropped; the remaining columns
    are labels 0..C-2 in order) or None when every column is a gesture class. Probabilities
    are first smoothed by a centred moving average of width `smooth`. A run is split where
    the best class changes; runs shorter than `min_length` frames are dropped. `smooth` and `min_length` may
    also be one value per gesture class (each class column smoothed at its own width). Score = mean
    smoothed probability of the run's class over the run. Row t is frame `frame_offset + t`.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (T, C), got shape {probs.shape}")
    if background is not None:
        probs = np.delete(probs, background, axis=1)
    if probs.shape[0] == 0 or probs.shape[1] == 0:
        return _detections(sample_id, [], [], [], [])
    probs = _smoothed(probs, smooth)
    best = probs.argmax(axis=1)
    best_prob = probs[np.arange(probs.shape[0]), best]
    threshold = np.asarray(threshold, dtype=np.float64)
    if threshold.ndim and threshold.shape != (probs.shape[1],):
        raise ValueError(f"one threshold per gesture class: {probs.shape[1]} expected, got {threshold.shape}")
    key = np.where(best_prob > (threshold[best] if threshold.ndim else threshold), best, -1)
    starts, ends = equal_runs(key)
    min_length = np.asarray(min_length)
    if min_length.ndim and min_length.shape != (probs.shape[1],):
        raise ValueError(f"one min_length per gesture class: {probs.shape[1]} expected, got {min_length.shape}")
    shortest = min_length[np.maximum(key[starts], 0)] if min_length.ndim else min_length
    keep = (key[starts] >= 0) & (ends - starts + 1 >= shortest)
    starts, ends = starts[keep], ends[keep]
    cumulative = np.concatenate([[0.0], np.cumsum(best_prob)])
    scores = (cumulative[ends + 1] - cumulative[starts]) / (ends - starts + 1)
    return _detections(sample_id, key[starts], starts + frame_offset, ends + frame_offset, scores)


def _smoothed(probs: np.ndarray, smooth: int | np.ndarray) -> np.ndarray:
    """`moving_average` of every column at `smooth`, or of column c at `smooth[c]`."""
    widths = np.asarray(smooth)
    if not widths.ndim:
        return moving_average(probs, int(widths))
    if widths.shape != (probs.shape[1],):
        raise ValueError(f"one smooth width per gesture class: {probs.shape[1]} expected, got {widths.shape}")
    out = np.empty_like(probs)
    for width in np.unique(widths):
        columns = widths == width
        out[:, columns] = moving_average(probs[:, columns], int(width))
    return out


def moving_average(values: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average along axis 0; near the edges, the mean of the frames available."""
    if width <= 1:
        return values
    t = values.shape[0]
    padded = np.concatenate([np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)])
    lo = np.clip(np.arange(t) - (width - 1) // 2, 0, t)
    hi = np.clip(np.arange(t) + width // 2 + 1, 0, t)
    shape = (t,) + (1,) * (values.ndim - 1)
    return (padded[hi] - padded[lo]) / (hi - lo).reshape(shape)


def equal_runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) index of every run of equal values in a non-empty 1-D `key`."""
    change = np.flatnonzero(key[1:] != key[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change - 1, [key.size - 1]])
    return starts, ends


def nms_1d(segments: pl.DataFrame, iou_threshold: float) -> pl.DataFrame:
    """Hard NMS per (sample, class): keep the best-scored segment, drop those with IoU > threshold.

    Returns the kept rows sorted by sample, start frame, end frame and label.
    """
    segments = validate_detections(segments, "segments")
    keep = np.zeros(segments.height, dtype=bool)
    indexed = segments.with_row_index("row")
    for group in indexed.partition_by(["sample_id", "label"]):
        group = group.sort("score", descending=True, nulls_last=True, maintain_order=True)
        kept = _nms_group(group["start_frame"].to_numpy(), group["end_frame"].to_numpy(), iou_threshold)
        keep[group["row"].to_numpy()[kept]] = True
    return segments.filter(pl.Series(keep)).sort(["sample_id", "start_frame", "end_frame", "label"], maintain_order=True)


def soft_nms_1d(segments: pl.DataFrame, *, sigma: float = 0.5, method: str = "soft", iou_threshold: float | None = None) -> pl.DataFrame:
    """NMS per (sample, class). `soft`: each kept segment decays the scores of the rest by
    exp(-IoU^2 / sigma) (nothing is dropped; threshold afterwards). `hard`: drop IoU > `iou_threshold`
    (default `sigma`, so one parameter serves both). Returns rows sorted by descending score per group."""
    if method == "hard":
        return nms_1d(segments, sigma if iou_threshold is None else iou_threshold)
    if method != "soft":
        raise ValueError(f"unknown NMS method {method!r}; use soft or hard")
    segments = validate_detections(segments, "segments")
    parts = []
    for group in segments.partition_by(["sample_id", "label"], maintain_order=True):
        starts, ends = group["start_frame"].to_numpy(), group["end_frame"].to_numpy()
        scores = group["score"].to_numpy().astype(np.float64).copy()
        order = _soft_nms_order(starts, ends, scores, sigma)
        parts.append(group[order].with_columns(pl.Series("score", scores[order])))
    return pl.concat(parts) if parts else segments


def _soft_nms_order(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian soft-NMS in place on `scores`; returns the order in which segments were picked."""
    alive = np.ones(starts.size, dtype=bool)
    picked = []
    for _ in range(starts.size):
        best = int(np.where(alive, scores, -np.inf).argmax())
        alive[best] = False
        picked.append(best)
        iou = frame_iou(starts[alive], ends[alive], starts[best], ends[best])
        scores[alive] *= np.exp(-(iou**2) / sigma)
    return np.asarray(picked, dtype=np.int64)


def _nms_group(starts: np.ndarray, ends: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS over segments already in descending score order."""
    alive = np.ones(starts.size, dtype=bool)
    kept = []
    for i in range(starts.size):
        if not alive[i]:
            continue
        kept.append(i)
        alive[i + 1:] &= frame_iou(starts[i + 1:], ends[i + 1:], starts[i], ends[i]) <= iou_threshold
    return np.asarray(kept, dtype=np.int64)


def _detections(sample_id: str, labels, starts, ends, scores) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sample_id": [sample_id] * len(labels),
            "label": np.asarray(labels, dtype=np.int64),
            "start_frame": np.asarray(starts, dtype=np.int64),
            "end_frame": np.asarray(ends, dtype=np.int64),
            "score": np.asarray(scores, dtype=np.float64),
        },
        schema=DETECTIONS_SCHEMA,
    )
