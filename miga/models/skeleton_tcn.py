"""Skeleton stream over time only: every joint's coordinates as channels of a dilated temporal conv net.

ST-GCN++ mixes joints through the layout's graph, which needs data to learn; with a few hundred
clips (a user's own recordings, biisc_dev) a 1-D temporal net over the flattened, body-normalised
joints and their frame-to-frame motion learns the same gestures with far fewer parameters.
Input `(N, C, T, V)` as the ST-GCN streams read it; output `(N, num_classes)`.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class TemporalBlock(nn.Module):
    """Residual: dilated conv (kernel 3) -> BN -> ReLU -> dropout."""

    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(torch.relu(self.norm(self.conv(x))))


class SkeletonTCN(nn.Module):
    def __init__(self, in_channels: int, num_joints: int, num_classes: int, *, channels: int, blocks: int,
                 dropout: float, motion: bool):
        super().__init__()
        self.motion = motion
        features = in_channels * num_joints * (2 if motion else 1)
        self.stem = nn.Sequential(nn.Conv1d(features, channels, 1, bias=False), nn.BatchNorm1d(channels), nn.ReLU())
        self.blocks = nn.Sequential(*(TemporalBlock(channels, 2 ** (i % 4), dropout) for i in range(blocks)))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * channels, num_classes)
        self.embedding_size = 2 * channels  # mean and max pooled: what class prototypes compare

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        x = x.permute(0, 1, 3, 2).reshape(n, c * v, t)
        if self.motion:
            x = torch.cat([x, torch.diff(x, dim=2, append=x[:, :, -1:])], dim=1)
        h = self.blocks(self.stem(x))
        return torch.cat([h.mean(2), h.amax(2)], dim=1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def create_skeleton_tcn(*, num_joints: int, num_classes: int, in_channels: int = 3, channels: int = 64, blocks: int = 4,
                        dropout: float = 0.3, motion: bool = True) -> SkeletonTCN:
    return SkeletonTCN(in_channels, num_joints, num_classes, channels=channels, blocks=blocks, dropout=dropout, motion=motion)
