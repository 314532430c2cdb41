"""From per-frame scores to segments, and the decoding setting tuned on val for F1 (the challenge's own rule)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from miga.evaluation.metrics import detection_metrics
from miga.track2.segments import frame_scores_to_segments, nms_1d


@dataclass(frozen=True)
class DecodeConfig:
    threshold: float = 0.5
    min_length: int = 8
    smooth: int = 5
    nms_iou: float = 0.5
    class_thresholds: tuple[float, ...] | None = None  # one per gesture class (replaces `threshold`)
    class_scale: tuple[float, ...] | None = None  # one per gesture class: its smooth and min_length are these times the setting's


def decode(probabilities: Mapping[str, np.ndarray], config: DecodeConfig) -> pl.DataFrame:
    """Per-frame probabilities of each sequence -> detections (sample_id, label, start, end, score)."""
    threshold = config.threshold if config.class_thresholds is None else np.asarray(config.class_thresholds, np.float64)
    smooth, min_length = config.smooth, config.min_length
    if config.class_scale is not None:
        scale = np.asarray(config.class_scale, np.float64)
        smooth, min_length = (np.maximum(1, np.rint(value * scale)).astype(np.int64) for value in (smooth, min_length))
    parts = [
        frame_scores_to_segments(
            probs, sample_id=sample_id, threshold=threshold, min_length=min_length, smooth=smooth, background=0
        )
        for sample_id, probs in probabilities.items()
    ]
    detections = pl.concat(parts) if parts else None
    return nms_1d(detections, config.nms_iou)


def tune_for_f1(decode_at: Callable[..., pl.DataFrame], segments: pl.DataFrame, thresholds: Sequence[float],
                num_classes: int, iou: float, settings: Sequence[Mapping] = ({},)) -> tuple[float, list[dict]]:
    """The score threshold (from `thresholds`) and decoding setting (from `settings`, keyword arguments of
    `decode_at(threshold, **setting)`) whose detections maximise F1 (official rule) against `segments`.

    Returns the threshold and every trial; `best_trial(trials)` is the chosen one (its setting included)."""
    trials = []
    for setting in settings:
        for threshold in thresholds:
            result = detection_metrics(segments, decode_at(float(threshold), **setting), num_classes=num_classes, iou_threshold=iou)
            trials.append({**setting, "threshold": float(threshold), "f1": result["official"]["f1"], "f1_one_to_one": result["one_to_one"]["f1"]})
    best = best_trial(trials)
    return best["threshold"], trials


def tune_class_thresholds(decode_at: Callable[..., pl.DataFrame], segments: pl.DataFrame, thresholds: Sequence[float],
                          num_classes: int, iou: float, threshold: float, setting: Mapping, min_gestures: int, *,
                          shared_f1: float | None = None) -> tuple[list[float] | None, float]:
    """Per-class thresholds, from the shared `threshold` (already tuned at `setting`): each class with at least
    `min_gestures` gestures in `segments`, the most frequent first, takes the value of `thresholds` that raises val F1
    (official rule) the most with the others held; a class whose best is no gain keeps the shared one (so the val F1
    never falls). `shared_f1`: the val F1 at the shared threshold where the caller has it (saves decoding it again).
    Returns (the thresholds, one per class, or None when no class moved; the val F1 they give)."""
    counts = np.bincount(segments["label"].to_numpy(), minlength=num_classes) if segments.height else np.zeros(num_classes, int)
    current = [float(threshold)] * num_classes
    score = lambda values: detection_metrics(  # noqa: E731
        segments, decode_at(float(threshold), class_thresholds=values, **setting), num_classes=num_classes, iou_threshold=iou)["official"]["f1"]
    shared_f1 = score(current) if shared_f1 is None else float(shared_f1)
    best_f1 = shared_f1
    for label in sorted(np.flatnonzero(counts >= max(min_gestures, 1)), key=lambda c: (-counts[c], c)):
        for value in thresholds:
            trial = current[:label] + [float(value)] + current[label + 1:]
            f1 = score(trial)
            if f1 > best_f1:
                best_f1, current = f1, trial
    return (current if best_f1 > shared_f1 else None), best_f1


def best_trial(trials: Sequence[dict]) -> dict:
    """The trial with the best val F1 (official, then one-to-one; then the lowest threshold, then the last setting in
    `tune_for_f1`'s order). BENCHMARKS.md "Track 2: does the decoding choice lose ground_guide person 5?" compares
    other tie-breaks."""
    return max(reversed(trials), key=lambda t: (t["f1"], t["f1_one_to_one"], -t["threshold"]))


def ints(value) -> list[int]:
    """A params value that is one integer or a list of them, as a list."""
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
