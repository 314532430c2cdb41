"""A second opinion on each detection's class: a segment classifier.

The frame detector says where a gesture is and, frame by frame, which; a detection's class is the best class over
its run. A gesture longer than the detector's receptive field (ground_guide's signals run to 1118 frames, the
detector sees 127) is judged piecewise, and a run can take a class its parts only resemble. The segment classifier
sees a whole detected segment at once: a logistic regression on the segment's pooled joint statistics
(`miga.baselines.pooled_features`, the clip baseline of Track 1), fitted on the training gestures. A detection's
class becomes the best of `(1 - weight) * detector + weight * classifier` probabilities; where it, start and end
stay the detector's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from miga.baselines import fit_clip_baselines, pooled_features


@dataclass
class SegmentClassifier:
    """Gesture-class probabilities of a segment `(start, end)` (frames inclusive) of a sequence's keypoints."""

    model: object  # a fitted sklearn pipeline with predict_proba
    num_classes: int
    layout: str
    _cache: dict = field(default_factory=dict, repr=False)

    def probabilities(self, keypoints: Mapping[str, np.ndarray], sample_id: str, start: int, end: int) -> np.ndarray:
        """`keypoints`: {sample_id: (M, T, V, 3)}, a keypoint store among them (read only for segments not seen before)."""
        key = (sample_id, int(start), int(end))
        if key not in self._cache:
            features = pooled_features(keypoints[sample_id][:, start: end + 1], self.layout)[None].astype(np.float64)
            out = np.zeros(self.num_classes)
            out[self.model.classes_] = self.model.predict_proba(features)[0]
            self._cache[key] = out
        return self._cache[key]


def fit_segment_classifier(keypoints: Mapping[str, np.ndarray], layout: str, segments: pl.DataFrame, num_classes: int, *,
                           seed: int = 0, C: float = 1.0) -> SegmentClassifier | None:
    """The logistic regression over the ground-truth `segments` (a contract segments table of training sequences)
    of `keypoints` ({sample_id: (M, T, V, 3)}); None when they hold fewer than two classes."""
    rows = segments.select("sample_id", "label", "start_frame", "end_frame").rows()
    labels = np.array([label for _, label, _, _ in rows], np.int64)
    if len(np.unique(labels)) < 2:
        return None
    features = np.stack([pooled_features(keypoints[sid][:, start: end + 1], layout) for sid, _, start, end in rows])
    return SegmentClassifier(fit_clip_baselines(features, labels, seed=seed, C=C, ks=())["logreg"], num_classes, layout)


def relabelled(detections: pl.DataFrame, frame_probs: Mapping[str, np.ndarray], classifier: SegmentClassifier,
               keypoints: Mapping[str, np.ndarray], weight: float) -> pl.DataFrame:
    """`detections` with each label the best class of the detector's mean per-frame probabilities over the segment
    (`frame_probs`: (T, K + 1), column 0 background; renormalised over the gesture classes) mixed with the
    classifier's, `weight` on the classifier's; the other columns unchanged."""
    if detections.is_empty() or weight <= 0:
        return detections
    labels = []
    for sid, label, start, end in detections.select("sample_id", "label", "start_frame", "end_frame").iter_rows():
        detector = frame_probs[sid][start: end + 1, 1:].mean(axis=0)
        detector = detector / detector.sum() if detector.sum() > 0 else detector
        mixed = (1 - weight) * detector + weight * classifier.probabilities(keypoints, sid, start, end)
        labels.append(int(np.argmax(mixed)))
    return detections.with_columns(pl.Series("label", labels, dtype=detections.schema["label"]))


def relabelling_decoder(decode_at: Callable[..., pl.DataFrame], frame_probs: Mapping[str, np.ndarray],
                        classifier: SegmentClassifier, keypoints: Mapping[str, np.ndarray], weight: float):
    """`decode_at` whose detections are `relabelled`: tuning on val then sees the classes that will be submitted."""
    return lambda threshold, **setting: relabelled(decode_at(threshold, **setting), frame_probs, classifier, keypoints, weight)
