"""Track 2 per-frame classifier: a dilated residual temporal conv net (MS-TCN single stage)."""

from __future__ import annotations

import torch
import torch.nn as nn


class DilatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.mix(torch.relu(self.conv(x))))


class TemporalConvNet(nn.Module):
    """(N, F, T) features -> (N, num_classes, T) per-frame logits."""

    def __init__(self, in_features: int, num_classes: int, channels: int, layers: int, dropout: float):
        super().__init__()
        self.inp = nn.Conv1d(in_features, channels, 1)
        self.blocks = nn.Sequential(*(DilatedResidual(channels, 2**i, dropout) for i in range(layers)))
        self.out = nn.Conv1d(channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.inp(x)))


def create_temporal_convnet(*, in_features: int, num_classes: int, channels: int = 64, layers: int = 8, dropout: float = 0.2) -> TemporalConvNet:
    return TemporalConvNet(in_features, num_classes, channels, layers, dropout)
