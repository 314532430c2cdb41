"""Self-supervised pretraining of the frame detector's trunk on unlabelled frames: masked-frame modelling.

In a random window of a standardised feature sequence, spans of frames are hidden (set to 0, the training mean) and
the detector's trunk, with a reconstruction head, predicts their features from the frames around them; the loss is
the mean squared error over the hidden frames. No label is read, so any split's frames can be used
(`track2.pretrain.splits`). The head is thrown away; the detector then trains on the labelled sequences as usual.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from miga.models.temporal import TemporalConvNet
from miga.track2.windows import RandomWindows


class MaskedFrames(RandomWindows):
    """Random windows as (features with hidden spans, the features, which frames are hidden): spans of `span` frames
    cover about `mask_ratio` of the window; frames past a short sequence's end are never hidden (nothing to predict)."""

    def __init__(self, features: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int, mask_ratio: float, span: int):
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed)
        if not 0 < mask_ratio < 1:
            raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
        self.mask_ratio, self.span = float(mask_ratio), max(1, min(int(span), window))

    def __getitem__(self, index: int):
        seq, start, _ = self.draw_span(index)
        features = self.window_features(seq, start)
        rng = np.random.default_rng([self.seed, self.epoch, index, 7])
        hidden = np.zeros(self.window, dtype=bool)
        for first in rng.integers(0, self.window - self.span + 1, size=max(1, round(self.mask_ratio * self.window / self.span))):
            hidden[first: first + self.span] = True
        hidden &= np.arange(start, start + self.window) < self.lengths[seq]
        masked = features.copy()
        masked[:, hidden] = 0.0
        return torch.from_numpy(masked), torch.from_numpy(features), torch.from_numpy(hidden)


class MaskedFrameModel(nn.Module):
    """The frame detector's trunk (its input layer and residual blocks, shared: training this trains the detector's)
    with a per-frame head that reconstructs the input features."""

    def __init__(self, detector: TemporalConvNet):
        super().__init__()
        if not isinstance(detector, TemporalConvNet):
            raise TypeError(f"masked-frame pretraining needs the frame detector's TemporalConvNet, not {type(detector).__name__}")
        self.detector = detector
        self.head = nn.Conv1d(detector.inp.out_channels, detector.inp.in_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.detector.blocks(self.detector.inp(x)))


def masked_frame_loss(model: nn.Module, batch, dev: torch.device) -> torch.Tensor:
    """Mean squared reconstruction error over the hidden frames of a `MaskedFrames` batch."""
    masked, target, hidden = (part.to(dev) for part in batch)
    error = ((model(masked).float() - target) ** 2).mean(dim=1)  # (N, W)
    weight = hidden.float()
    return (error * weight).sum() / weight.sum().clamp_min(1.0)
