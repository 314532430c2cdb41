"""A small SlowOnly-style 3D ResNet (PoseConv3D's pose backbone, scaled down for the CPU).

Temporal kernels stay 1 in the early stages and become 3 later; time is never downsampled,
space is halved at the start of every stage after the first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn


def conv_bn_relu(cin: int, cout: int, kernel: Sequence[int], stride: Sequence[int] = (1, 1, 1)) -> nn.Sequential:
    padding = tuple(k // 2 for k in kernel)
    return nn.Sequential(nn.Conv3d(cin, cout, tuple(kernel), tuple(stride), padding, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))


class BasicBlock3d(nn.Module):
    def __init__(self, cin: int, cout: int, *, temporal_kernel: int, spatial_stride: int):
        super().__init__()
        kernel = (temporal_kernel, 3, 3)
        self.conv1 = conv_bn_relu(cin, cout, kernel, (1, spatial_stride, spatial_stride))
        self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, kernel, 1, (temporal_kernel // 2, 1, 1), bias=False), nn.BatchNorm3d(cout))
        self.shortcut = (
            nn.Identity() if cin == cout and spatial_stride == 1
            else nn.Sequential(nn.Conv3d(cin, cout, 1, (1, spatial_stride, spatial_stride), bias=False), nn.BatchNorm3d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


class ClassifierHead(nn.Module):
    def __init__(self, in_features: int, num_classes: int, dropout: float):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_features, num_classes)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        return self.pool(features).flatten(1)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(embedding))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(features))


class Backbone3d(nn.Module):
    """stem -> stages; `forward` returns the feature map (N, C, T, H, W)."""

    def __init__(self, stem: nn.Module, stages: Sequence[nn.Module], out_channels: int):
        super().__init__()
        self.stem = stem
        self.stages = nn.Sequential(*stages)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))


class Classifier3d(nn.Module):
    def __init__(self, backbone: Backbone3d, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    @property
    def embedding_size(self) -> int:
        return self.backbone.out_channels

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip embedding (N, D) before the classifier."""
        return self.head.embed(self.backbone(x))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.head.classify(embedding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def create_slowonly(
    *,
    in_channels: int,
    num_classes: int,
    base_channels: int = 16,
    stage_blocks: Sequence[int] = (1, 1, 1),
    temporal_kernels: Sequence[int] | None = None,  # default: 1 in the first stage, 3 after (SlowOnly)
    stem_kernel: Sequence[int] = (1, 3, 3),
    stem_stride: Sequence[int] = (1, 1, 1),
    dropout: float = 0.3,
    head: Callable[[int, int, float], nn.Module] = ClassifierHead,
) -> Classifier3d:
    if temporal_kernels is None:
        temporal_kernels = (1,) + (3,) * (len(stage_blocks) - 1)
    if len(stage_blocks) != len(temporal_kernels):
        raise ValueError("stage_blocks and temporal_kernels need one entry per stage")
    stem = conv_bn_relu(in_channels, base_channels, stem_kernel, stem_stride)
    stages, cin = [], base_channels
    for index, (blocks, kt) in enumerate(zip(stage_blocks, temporal_kernels)):
        cout = base_channels * 2**index
        layers = [
            BasicBlock3d(cin if b == 0 else cout, cout, temporal_kernel=kt, spatial_stride=2 if (b == 0 and index > 0) else 1)
            for b in range(blocks)
        ]
        stages.append(nn.Sequential(*layers))
        cin = cout
    return Classifier3d(Backbone3d(stem, stages, cin), head(cin, num_classes, dropout))


def create_rgb_slowonly(*, num_classes: int, base_channels: int = 16, in_channels: int = 3, **kwargs) -> Classifier3d:
    """The RGB stream's small SlowOnly over person-centred frame crops (5x5 stride-2 stem): model `rgb_slowonly_small`,
    RGB backbone `slowonly_small`."""
    return create_slowonly(in_channels=in_channels, num_classes=num_classes, base_channels=base_channels,
                           stem_kernel=(1, 5, 5), stem_stride=(1, 2, 2), **kwargs)
