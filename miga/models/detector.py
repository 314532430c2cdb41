"""Track 2 temporal detectors over per-frame feature sequences.

`TemporalDetector` is an anchor-free, ActionFormer-style head: a dilated conv trunk, a feature
pyramid of strides 1, 2, 4, ..., and at every pyramid position class logits (sigmoid, one per
gesture class) plus the distances to the gesture's start and end in units of that level's
stride. `WindowClassifier` is the sliding-window baseline: one label per fixed-length window.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from miga.models.temporal import DilatedResidual


class TemporalDetector(nn.Module):
    """(N, F, T) -> class logits (N, K, P) and start/end distances (N, 2, P), P = sum_l T / 2^l.

    T must be a multiple of the largest stride (`max_stride`). Positions are ordered level by level.
    """

    def __init__(self, in_features: int, num_classes: int, *, channels: int = 64, layers: int = 4, levels: int = 5,
                 dropout: float = 0.2, prior: float = 0.01):
        super().__init__()
        self.inp = nn.Conv1d(in_features, channels, 1)
        self.trunk = nn.Sequential(*(DilatedResidual(channels, 2**i, dropout) for i in range(layers)))
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(), DilatedResidual(channels, 1, dropout))
            for _ in range(levels - 1)
        )
        self.head = nn.Sequential(nn.Conv1d(channels, channels, 3, padding=1), nn.ReLU())  # shared by all levels
        self.cls_out = nn.Conv1d(channels, num_classes, 1)
        self.reg_out = nn.Conv1d(channels, 2, 1)
        nn.init.constant_(self.cls_out.bias, -math.log((1 - prior) / prior))  # focal-loss prior
        self.scales = nn.Parameter(torch.ones(levels))
        self.strides = tuple(2**level for level in range(levels))

    @property
    def max_stride(self) -> int:
        return self.strides[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] % self.max_stride:
            raise ValueError(f"sequence length {x.shape[-1]} is not a multiple of the largest stride {self.max_stride}")
        features = self.trunk(self.inp(x))
        logits, distances = [], []
        for level in range(len(self.strides)):
            if level:
                features = self.down[level - 1](features)
            hidden = self.head(features)
            logits.append(self.cls_out(hidden))
            distances.append(F.relu(self.scales[level] * self.reg_out(hidden)))
        return torch.cat(logits, dim=2), torch.cat(distances, dim=2)


class WindowClassifier(nn.Module):
    """(N, F, W) window -> (N, K + 1) logits (column 0 = background): the sliding-window baseline."""

    def __init__(self, in_features: int, num_classes: int, *, channels: int = 64, layers: int = 4, dropout: float = 0.2):
        super().__init__()
        self.inp = nn.Conv1d(in_features, channels, 1)
        self.trunk = nn.Sequential(*(DilatedResidual(channels, 2**i, dropout) for i in range(layers)))
        self.out = nn.Linear(2 * channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.trunk(self.inp(x))
        return self.out(torch.cat([features.mean(2), features.amax(2)], dim=1))


def create_temporal_detector(*, in_features: int, num_classes: int, **kwargs) -> TemporalDetector:
    return TemporalDetector(in_features, num_classes, **kwargs)


def create_window_classifier(*, in_features: int, num_classes: int, **kwargs) -> WindowClassifier:
    return WindowClassifier(in_features, num_classes, **kwargs)
