"""ST-GCN++ (pyskl, Duan et al. 2022), scaled down for the CPU: graph convolutions over skeleton sequences.

Input `(N, C, T, V)`: C feature channels (x, y, seen) of V joints over T frames. Each block is a
spatial graph convolution with a learnable ("adaptive", initialised from the skeleton) adjacency
per partition (the joint itself, its parent, its children), then a multi-scale temporal
convolution (dilated 3-tap branches, a max-pool branch and a 1x1 branch, as ST-GCN++'s
`mstcn`), each with a residual connection. Channels double and time halves at the blocks listed
in `inflate_at`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from miga.layouts import get_layout


def partitioned_adjacency(num_joints: int, limbs: Sequence[tuple[int, int]]) -> np.ndarray:
    """`(3, V, V)`: identity, parent -> child and child -> parent; `A[k, v, w]` is what joint v
    gives joint w, each column normalised to sum 1 (a mean over the neighbours)."""
    a = np.zeros((3, num_joints, num_joints), np.float32)
    a[0] = np.eye(num_joints)
    for parent, child in limbs:
        a[1, parent, child] = 1.0
        a[2, child, parent] = 1.0
    degree = a[1:].sum(axis=1, keepdims=True)
    a[1:] = np.where(degree > 0, a[1:] / np.maximum(degree, 1), 0)
    return a


class GraphConv(nn.Module):
    """x `(N, C, T, V)` -> sum over partitions k of `conv_k(x) @ A_k`, A learnable from its skeleton start."""

    def __init__(self, cin: int, cout: int, adjacency: np.ndarray):
        super().__init__()
        self.partitions = adjacency.shape[0]
        self.adjacency = nn.Parameter(torch.from_numpy(adjacency.copy()))
        self.conv = nn.Conv2d(cin, cout * self.partitions, 1)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.partitions, -1, t, v)
        y = torch.einsum("nkctv,kvw->nctw", y, self.adjacency)
        return self.relu(self.bn(y) + self.residual(x))


class MultiScaleTemporalConv(nn.Module):
    """ST-GCN++'s `mstcn`: parallel branches (3-tap convs at dilations 1 and 2, a 3-frame max pool, a 1x1)."""

    def __init__(self, channels: int, *, stride: int = 1, dilations: Sequence[int] = (1, 2), dropout: float = 0.0):
        super().__init__()
        branches = len(dilations) + 2
        width = channels // branches
        widths = [width] * (branches - 1) + [channels - width * (branches - 1)]

        def head(cout: int) -> list[nn.Module]:
            return [nn.Conv2d(channels, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.branches = nn.ModuleList(
            [nn.Sequential(*head(w), nn.Conv2d(w, w, (3, 1), (stride, 1), (d, 0), (d, 1))) for w, d in zip(widths, dilations)]
            + [nn.Sequential(*head(widths[-2]), nn.MaxPool2d((3, 1), (stride, 1), (1, 0)))]
            + [nn.Conv2d(channels, widths[-1], 1, (stride, 1))]
        )
        self.bn = nn.BatchNorm2d(channels)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.bn(torch.cat([branch(x) for branch in self.branches], dim=1)))


class STGCNBlock(nn.Module):
    def __init__(self, cin: int, cout: int, adjacency: np.ndarray, *, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.gcn = GraphConv(cin, cout, adjacency)
        self.tcn = MultiScaleTemporalConv(cout, stride=stride, dropout=dropout)
        self.residual = (nn.Identity() if cin == cout and stride == 1
                         else nn.Sequential(nn.Conv2d(cin, cout, 1, (stride, 1)), nn.BatchNorm2d(cout)))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.tcn(self.gcn(x)) + self.residual(x))


class STGCN(nn.Module):
    """Blocks over `(N, C, T, V)` -> global average pool over time and joints -> linear classifier."""

    def __init__(self, *, in_channels: int, num_classes: int, adjacency: np.ndarray, base_channels: int,
                 num_blocks: int, inflate_at: Sequence[int], dropout: float):
        super().__init__()
        num_joints = adjacency.shape[-1]
        self.data_bn = nn.BatchNorm1d(in_channels * num_joints)
        blocks, cin, cout = [], in_channels, base_channels
        for index in range(num_blocks):
            stride = 1
            if index in inflate_at:
                cout, stride = cout * 2, 2
            blocks.append(STGCNBlock(cin, cout, adjacency, stride=stride))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, num_classes)
        self.embedding_size = cin

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        x = self.data_bn(x.permute(0, 1, 3, 2).reshape(n, c * v, t)).view(n, c, v, t).permute(0, 1, 3, 2)
        return self.blocks(x).mean(dim=(2, 3))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(embedding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))


def create_stgcn(*, layout: str, num_classes: int, in_channels: int = 3, base_channels: int = 32, num_blocks: int = 6,
                 inflate_at: Sequence[int] = (2, 4), dropout: float = 0.1) -> STGCN:
    """ST-GCN++ over the joints of `layout` (its limbs give the graph)."""
    spec = get_layout(layout)
    return STGCN(in_channels=in_channels, num_classes=num_classes, adjacency=partitioned_adjacency(spec.num_joints, spec.limbs),
                 base_channels=base_channels, num_blocks=num_blocks, inflate_at=tuple(inflate_at), dropout=dropout)
