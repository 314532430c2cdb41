"""Anchor-free temporal detection (ActionFormer-style): targets, losses and decoding.

Time is continuous here: frame f covers [f, f + 1). A pyramid position i of stride s sits at
p = (i + 0.5) s. A ground-truth segment [start, end] (inclusive frames) becomes [start, end + 1).
A position is positive for a segment when it lies inside it, within `radius` strides of its
centre (centre sampling), and when the larger of its distances to the two ends falls in the
level's range; among several such segments, the shortest wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from miga.track2.segments import _detections, soft_nms_1d


@dataclass(frozen=True)
class Pyramid:
    """Positions of every level of a `TemporalDetector` over a sequence of `length` frames."""

    strides: tuple[int, ...]
    base_range: float = 4.0  # level l regresses max(left, right) in [base * 2^(l-1), base * 2^l); first from 0, last to inf

    def positions(self, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """centres, strides, range low, range high: one entry per position, level by level."""
        centres, strides, lows, highs = [], [], [], []
        last = len(self.strides) - 1
        for level, stride in enumerate(self.strides):
            count = length // stride
            centres.append((np.arange(count) + 0.5) * stride)
            strides.append(np.full(count, stride, np.float64))
            lows.append(np.full(count, 0.0 if level == 0 else self.base_range * 2 ** (level - 1)))
            highs.append(np.full(count, np.inf if level == last else self.base_range * 2**level))
        return tuple(np.concatenate(part) for part in (centres, strides, lows, highs))


def assign_targets(segments: np.ndarray, length: int, pyramid: Pyramid, num_classes: int, radius: float = 1.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """segments (S, 3) rows (label, start, end) -> class targets (K, P) in {0, 1} and distances (2, P) in strides (-1 = negative)."""
    centres, strides, lows, highs = pyramid.positions(length)
    classes = np.zeros((num_classes, centres.size), np.float32)
    distances = np.full((2, centres.size), -1.0, np.float32)
    if len(segments) == 0:
        return classes, distances
    labels, starts, ends = (np.asarray(segments[:, i]) for i in range(3))
    starts, stops = starts.astype(np.float64), ends.astype(np.float64) + 1
    left = centres[:, None] - starts[None]
    right = stops[None] - centres[:, None]
    reach = np.maximum(left, right)
    middle = (starts + stops) / 2
    ok = (left > 0) & (right > 0) & (reach >= lows[:, None]) & (reach < highs[:, None])
    ok &= np.abs(centres[:, None] - middle[None]) <= radius * strides[:, None]
    lengths = np.where(ok, (stops - starts)[None], np.inf)
    best = lengths.argmin(axis=1)
    positive = np.isfinite(lengths[np.arange(centres.size), best])
    index = np.flatnonzero(positive)
    chosen = best[index]
    classes[labels[chosen].astype(np.int64), index] = 1
    distances[0, index] = left[index, chosen] / strides[index]
    distances[1, index] = right[index, chosen] / strides[index]
    return classes, distances


def detection_loss(logits: torch.Tensor, distances: torch.Tensor, class_targets: torch.Tensor, distance_targets: torch.Tensor,
                   *, gamma: float = 2.0, alpha: float = 0.25, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Sigmoid focal loss over all positions + DIoU loss over positives, both / number of positives.

    logits, class_targets (N, K, P); distances, distance_targets (N, 2, P) (targets < 0 at negatives);
    `valid` (N, P) masks padding out of the classification loss.
    """
    logits, distances = logits.float(), distances.float()
    probability = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, class_targets, reduction="none")
    p_t = probability * class_targets + (1 - probability) * (1 - class_targets)
    focal = ce * (1 - p_t) ** gamma * (alpha * class_targets + (1 - alpha) * (1 - class_targets))
    if valid is not None:
        focal = focal * valid[:, None].float()
    positive = distance_targets[:, 0] >= 0
    count = max(int(positive.sum()), 1)
    loss = focal.sum() / count
    if positive.any():
        predicted = distances.permute(0, 2, 1)[positive]
        target = distance_targets.permute(0, 2, 1)[positive]
        loss = loss + diou_loss(predicted, target).sum() / count
    return loss


def diou_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1-D distance IoU loss between (left, right) distance pairs measured from the same point."""
    inter = torch.minimum(predicted[:, 0], target[:, 0]) + torch.minimum(predicted[:, 1], target[:, 1])
    union = predicted.sum(1) + target.sum(1) - inter
    iou = inter / union.clamp(min=1e-6)
    enclosing = torch.maximum(predicted[:, 0], target[:, 0]) + torch.maximum(predicted[:, 1], target[:, 1])
    centre_offset = ((predicted[:, 1] - predicted[:, 0]) - (target[:, 1] - target[:, 0])) / 2
    return 1 - iou + (centre_offset / enclosing.clamp(min=1e-6)) ** 2


@dataclass(frozen=True)
class DetectorDecodeConfig:
    threshold: float = 0.3  # final score threshold (tuned on val for F1)
    pre_threshold: float = 0.05  # candidates below are dropped before NMS
    top_k: int = 2000  # candidates kept per sequence before NMS
    nms: str = "soft"  # soft | hard
    nms_iou: float = 0.5  # hard NMS: drop IoU above; soft NMS: gaussian sigma = nms_iou
    min_length: int = 4
    max_detections: int = 200  # per sequence, after NMS


def candidates(scores: np.ndarray, distances: np.ndarray, pyramid: Pyramid, length: int, config: DetectorDecodeConfig
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-position class probabilities (K, P) and distances (2, P) of a sequence of `length` frames
    (padded to the largest stride for the model) -> (labels, starts, ends, scores) of the top-k candidates."""
    padded = length + (-length) % pyramid.strides[-1]
    centres, strides, _, _ = pyramid.positions(padded)
    if centres.size != scores.shape[1]:
        raise ValueError(f"{scores.shape[1]} positions do not match a {padded}-frame pyramid of strides {pyramid.strides}")
    label, position = np.nonzero(scores > config.pre_threshold)
    score = scores[label, position]
    order = np.argsort(-score, kind="stable")[: config.top_k]
    label, position, score = label[order], position[order], score[order]
    starts = np.floor(centres[position] - distances[0, position] * strides[position] + 0.5)
    ends = np.floor(centres[position] + distances[1, position] * strides[position] + 0.5) - 1
    starts, ends = np.clip(starts, 0, length - 1), np.clip(ends, 0, length - 1)
    keep = ends - starts + 1 >= config.min_length
    return label[keep], starts[keep].astype(np.int64), ends[keep].astype(np.int64), score[keep]


def decode_sequence(sample_id: str, scores: np.ndarray, distances: np.ndarray, pyramid: Pyramid, length: int,
                    config: DetectorDecodeConfig) -> pl.DataFrame:
    """Candidates -> NMS (per class) -> score threshold -> detections table."""
    labels, starts, ends, score = candidates(scores, distances, pyramid, length, config)
    table = _detections(sample_id, labels, starts, ends, score)
    table = soft_nms_1d(table, sigma=config.nms_iou, method=config.nms)
    table = table.filter(pl.col("score") > config.threshold)
    if table.height > config.max_detections:
        table = table.sort("score", descending=True).head(config.max_detections)
    return table.sort(["start_frame", "end_frame", "label"])


def pad_to_stride(features: np.ndarray, stride: int) -> np.ndarray:
    """(T, F) -> (T', F) zero-padded so that T' is a multiple of `stride`."""
    pad = (-len(features)) % stride
    return np.pad(features, ((0, pad), (0, 0))) if pad else features


def segments_array(segments: pl.DataFrame) -> np.ndarray:
    return segments.select("label", "start_frame", "end_frame").to_numpy().astype(np.int64).reshape(-1, 3)


def window_segments(segments: np.ndarray, start: int, length: int) -> np.ndarray:
    """Segments overlapping [start, start + length), shifted to window frames and clipped to it."""
    if len(segments) == 0:
        return segments
    inside = (segments[:, 2] >= start) & (segments[:, 1] < start + length)
    chosen = segments[inside].copy()
    chosen[:, 1:] -= start
    chosen[:, 1] = np.clip(chosen[:, 1], 0, length - 1)
    chosen[:, 2] = np.clip(chosen[:, 2], 0, length - 1)
    return chosen


def check_strides(strides: Sequence[int]) -> None:
    if any(b != 2 * a for a, b in zip(strides, strides[1:])) or strides[0] != 1:
        raise ValueError(f"pyramid strides must be 1, 2, 4, ...; got {list(strides)}")
