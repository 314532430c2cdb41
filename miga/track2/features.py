"""Track 2's per-frame input: features of body-normalised skeleton streams (`track2.features`), their standardiser,
the per-frame targets, and the sequence-level augmentations (mirror, affine copies)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from miga import skeleton
from miga.errors import ConfigError
from miga.layouts import get_layout
from miga.skeleton import causal_normalised
from miga.track2.segments import equal_runs

# Joints a hand may touch during a micro-gesture, by name in the layout (missing names are skipped).
_HAND_TARGETS = ("Head", "Nose", "Neck", "SpineShoulder", "SpineMid", "LShoulder", "RShoulder", "LElbow", "RElbow", "LHip", "RHip")
_HANDS = ("LHand", "RHand", "LWrist", "RWrist")


FEATURE_PARTS = ("joints", "posture", "path", "velocity", "distances", "scores")
DEFAULT_FEATURES = ("joints", "velocity", "distances", "scores")


@dataclass(frozen=True)
class FeatureConfig:
    """Which per-frame features `frame_features` builds (`track2.features`, `track2.velocity_steps`).

    joints: every joint centred on the sequence's median body centre, in shoulder widths;
    posture: every joint centred on the frame's own body centre (position removed);
    path: the frame's body centre relative to the sequence's (one point);
    velocity: of `joints`, (joints[t + k] - joints[t - k]) / (2k) for each k in `velocity_steps` (k = 1 as
    before: the backward difference);
    distances: each hand to the head / torso / shoulders / elbows / hips; scores: the joint-seen mask.

    `norm_window` N > 0 makes the body normalisation causal: frame t is centred and scaled by the medians over
    frames t - N + 1 .. t, so a stream (`miga.track2.online`) that has seen those frames computes the very
    features the offline pass does (with the whole sequence it cannot: BENCHMARKS.md "Track 2 streaming")."""

    parts: tuple[str, ...] = DEFAULT_FEATURES
    velocity_steps: tuple[int, ...] = (1,)
    norm_window: int = 0  # body centre and size: medians over the whole sequence (0) or over each frame's last N frames

    def __post_init__(self):
        unknown = [p for p in self.parts if p not in FEATURE_PARTS]
        if unknown or not self.parts:
            raise ConfigError(f"track2.features: unknown or no parts {unknown}; choose from {list(FEATURE_PARTS)}")
        if not self.velocity_steps or any(int(k) < 1 for k in self.velocity_steps):
            raise ConfigError(f"track2.velocity_steps must be positive frame steps, got {list(self.velocity_steps)}")
        if int(self.norm_window) < 0:
            raise ConfigError(f"track2.norm_window must be 0 (whole sequence) or a number of frames, got {self.norm_window}")


def feature_config(options: Mapping) -> FeatureConfig:
    return FeatureConfig(tuple(options["features"]["parts"]), tuple(int(k) for k in options["features"]["velocity_steps"]), int(options["features"]["norm_window"]))


def _velocity(values: np.ndarray, step: int) -> np.ndarray:
    """Per-frame velocity along axis 0 (x 10): backward difference for step 1, else centred over +-step (edges clamped)."""
    if step == 1:
        return np.diff(values, axis=0, prepend=values[:1]) * 10
    index = np.arange(len(values))
    ahead, behind = np.minimum(index + step, len(values) - 1), np.maximum(index - step, 0)
    return (values[ahead] - values[behind]) / (2 * step) * 10


def frame_features(keypoints: np.ndarray, layout: str, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(M, T, V, 3) keypoints -> float32 (T, F): the parts of `config` (body-normalised joints, velocities, hand-to-body distances, scores)."""
    names = get_layout(layout).joints
    body = causal_normalised(keypoints, layout, int(config.norm_window))
    norm, valid, path, t = body.joints, body.seen, body.path, len(body.joints)
    parts = []
    for part in config.parts:
        if part == "joints":
            parts.append(norm.reshape(t, -1))
        elif part == "posture":
            parts.append((norm - path[:, None]).reshape(t, -1))
        elif part == "path":
            parts.append(path)
        elif part == "velocity":
            for step in config.velocity_steps:
                parts.append(_velocity(norm, step).reshape(t, -1))
        elif part == "distances":
            hands = [names.index(n) for n in _HANDS if n in names]
            targets = [names.index(n) for n in _HAND_TARGETS if n in names]
            parts.append(np.linalg.norm(norm[:, hands, None, :] - norm[:, None, targets, :], axis=-1).reshape(t, -1))
        else:
            parts.append(valid.astype(np.float64))
    return np.concatenate(parts, axis=1).astype(np.float32)


def mirrored(keypoints: np.ndarray, layout: str) -> np.ndarray:
    """(..., V, 3) keypoints of the same recording seen in a mirror: left and right joints swapped, x negated.

    `frame_features` centres and scales each sequence, so negating x is a mirror about the body."""
    return skeleton.mirrored(keypoints, get_layout(layout).flip_index)


def affine_copy(keypoints: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """(..., V, 3) keypoints under one random 2-D affine map: rotation in +-strength rad, scale per axis in
    1 +- strength, shear in +-strength. Scores unchanged."""
    angle, shear = rng.uniform(-strength, strength, 2)
    scale = 1 + rng.uniform(-strength, strength, 2)
    out = keypoints.copy()
    out[..., :2] = keypoints[..., :2] @ skeleton.affine_matrix(angle, scale, (shear, 0.0)).T.astype(keypoints.dtype)
    return out


def frame_labels(num_frames: int, segments: pl.DataFrame) -> np.ndarray:
    """Per-frame targets: 0 = background, c + 1 inside a segment of class c (later segments win)."""
    labels = np.zeros(num_frames, np.int64)
    for label, start, end in segments.select("label", "start_frame", "end_frame").iter_rows():
        labels[start: end + 1] = label + 1
    return labels


FRAME_WEIGHTS = ("none", "instance", "class")


def frame_loss_weights(labels: Sequence[np.ndarray], mode: str) -> list[np.ndarray] | None:
    """Per-frame loss weights for `frame_labels` targets (None for `none`); background frames weigh 1.

    `instance`: the frames of a gesture (a run of one label) weigh median gesture length / its length, so every
    gesture counts as much as one of median length and a 12-frame gesture is not drowned by 60-frame ones.
    `class`: the frames of class c weigh (gesture frames / classes present) / frames of c, so every class counts alike.
    Both keep the mean weight of gesture frames near 1 (the background's share of the loss barely moves)."""
    if mode not in FRAME_WEIGHTS:
        raise ValueError(f"unknown frame weighting {mode!r}; known: {FRAME_WEIGHTS}")
    if mode == "none":
        return None
    labels = [np.asarray(l) for l in labels]
    return _class_weights(labels) if mode == "class" else _instance_weights(labels)


def _class_weights(labels: list[np.ndarray]) -> list[np.ndarray]:
    counts = np.bincount(np.concatenate([l[l > 0] for l in labels] + [np.zeros(0, np.int64)]).astype(np.int64))
    present = counts > 0
    scale = np.ones(counts.size)
    scale[present] = counts[present].sum() / present.sum() / counts[present]
    return [np.where(l > 0, scale[l.clip(0, scale.size - 1)], 1.0).astype(np.float32) for l in labels]


def _instance_weights(labels: list[np.ndarray]) -> list[np.ndarray]:
    runs = [_gesture_runs(l) for l in labels]
    lengths = [end - start for r in runs for start, end in r]
    median = float(np.median(lengths)) if lengths else 1.0
    weights = []
    for l, r in zip(labels, runs):
        w = np.ones(len(l), np.float32)
        for start, end in r:
            w[start:end] = median / (end - start)
        weights.append(w)
    return weights


def _gesture_runs(labels: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of one gesture label (> 0)."""
    if labels.size == 0:
        return []
    starts, ends = equal_runs(labels)
    return [(int(s), int(e) + 1) for s, e in zip(starts, ends) if labels[s] > 0]


@dataclass
class Standardizer:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: Sequence[np.ndarray]) -> "Standardizer":
        """Mean and standard deviation per feature over all frames, one sequence at a time (float64 sums:
        no copy of the whole training set is made, whatever its size)."""
        count, total = 0, 0.0
        for sequence in features:
            count += len(sequence)
            total = total + sequence.sum(0, dtype=np.float64)
        mean = total / max(count, 1)
        squares = sum((((sequence - mean) ** 2).sum(0) for sequence in features), np.zeros_like(mean))
        return cls(mean.astype(np.float32), (np.sqrt(squares / max(count, 1)) + 1e-6).astype(np.float32))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std
