"""Track 2's training samples: random windows over standardised feature sequences, with per-frame labels (frame
detector), pyramid targets (anchor-free detector) or one label per window (window detector)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from miga.track2 import detection


class RandomWindows(Dataset):
    """`per_epoch` random fixed-length windows over sequences (longer ones drawn more often);
    the draw depends only on (seed, epoch, index). Subclasses turn (sequence, start) into a sample.

    `stretch` > 0 (`track2.time_stretch`) plays each window at a random rate: `window * r` frames of the
    sequence, r log-uniform in [1 / (1 + stretch), 1 + stretch], resampled to `window` frames."""

    def __init__(self, features: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int, stretch: float = 0.0):
        self.features, self.window, self.per_epoch, self.seed, self.stretch = features, window, per_epoch, seed, float(stretch)
        self.lengths = np.array([len(f) for f in features])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_epoch

    def draw(self, index: int) -> tuple[int, int]:
        return self.draw_span(index)[:2]

    def draw_span(self, index: int) -> tuple[int, int, int]:
        """(sequence, first frame, frames read): `window` frames unless `stretch`."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        seq = int(rng.choice(len(self.features), p=self.lengths / self.lengths.sum()))
        span = self.window
        if self.stretch > 0:
            span = max(2, int(round(self.window * np.exp(rng.uniform(-1, 1) * np.log1p(self.stretch)))))
        return seq, int(rng.integers(0, max(1, self.lengths[seq] - span + 1))), span

    def window_features(self, seq: int, start: int, span: int | None = None) -> np.ndarray:
        """(F, window) features, zero-padded past the end of a short sequence; `span` frames resampled to `window`."""
        span = span or self.window
        part = self.features[seq][start: start + span]
        part = np.pad(part, ((0, span - len(part)), (0, 0)))
        if span != self.window:
            where = self.source_frames(span)
            low = np.floor(where).astype(np.int64)
            high, weight = np.minimum(low + 1, span - 1), (where - low)[:, None]
            part = (part[low] * (1 - weight) + part[high] * weight).astype(part.dtype)
        return part.T.copy()

    def source_frames(self, span: int) -> np.ndarray:
        """The (fractional) frame of a `span`-frame excerpt that each of the `window` output frames shows."""
        return np.clip((np.arange(self.window) + 0.5) * span / self.window - 0.5, 0, span - 1)


class WindowDataset(RandomWindows):
    """Random windows with per-frame labels (-100 = padding, ignored by the loss), and per-frame loss weights when
    `weights` are given (`miga.track2.features.frame_loss_weights`): then each sample is (features, labels, weights)."""

    def __init__(self, features: Sequence[np.ndarray], labels: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int,
                 stretch: float = 0.0, weights: Sequence[np.ndarray] | None = None):
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed, stretch=stretch)
        self.labels, self.weights = labels, weights

    def __getitem__(self, index: int):
        seq, start, span = self.draw_span(index)
        frames = np.arange(start, start + span)
        if span != self.window:
            frames = start + np.round(self.source_frames(span)).astype(np.int64)
        inside = frames < len(self.labels[seq])
        labels = np.where(inside, self.labels[seq][np.minimum(frames, len(self.labels[seq]) - 1)], -100)
        sample = (torch.from_numpy(self.window_features(seq, start, span)), torch.from_numpy(labels))
        if self.weights is None:
            return sample
        weights = np.where(inside, self.weights[seq][np.minimum(frames, len(self.weights[seq]) - 1)], 0.0).astype(np.float32)
        return (*sample, torch.from_numpy(weights))


class DetectionWindows(RandomWindows):
    """Random windows with pyramid targets: (features (F, W), classes (K, P), distances (2, P))."""

    def __init__(self, features: Sequence[np.ndarray], segments: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int,
                 pyramid: detection.Pyramid, num_classes: int, radius: float, stretch: float = 0.0):
        if window % pyramid.strides[-1]:
            raise ValueError(f"track2.window {window} must be a multiple of the largest stride {pyramid.strides[-1]}")
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed, stretch=stretch)
        self.segments, self.pyramid, self.num_classes, self.radius = segments, pyramid, num_classes, radius

    def __getitem__(self, index: int):
        seq, start, span = self.draw_span(index)
        inside = detection.window_segments(self.segments[seq], start, span)
        if span != self.window and len(inside):
            inside = inside.copy()
            rate = self.window / span
            inside[:, 1] = np.floor(inside[:, 1] * rate)
            inside[:, 2] = np.clip(np.ceil((inside[:, 2] + 1) * rate) - 1, inside[:, 1], self.window - 1)
        classes, distances = detection.assign_targets(inside, self.window, self.pyramid, self.num_classes, self.radius)
        return torch.from_numpy(self.window_features(seq, start, span)), torch.from_numpy(classes), torch.from_numpy(distances)



class ClassifiedWindows(Dataset):
    """Random fixed-length windows, each labelled with its most frequent frame label (0 = background)."""

    def __init__(self, features: Sequence[np.ndarray], labels: Sequence[np.ndarray], *, length: int, per_epoch: int, seed: int,
                 num_classes: int, stretch: float = 0.0):
        self.windows = WindowDataset(features, labels, window=length, per_epoch=per_epoch, seed=seed, stretch=stretch)
        self.num_classes = num_classes

    def set_epoch(self, epoch: int) -> None:
        self.windows.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        features, labels = self.windows[index]
        labels = labels[labels >= 0]
        return features, int(np.bincount(labels.numpy(), minlength=self.num_classes + 1).argmax()) if len(labels) else 0
