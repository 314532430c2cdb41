"""Two-stream fusion (pose heatmaps + RGB) by cross-attention, and prototype refinement.

Every Track 1 classifier exposes `embed(x) -> (N, D)` and `classify(embedding) -> logits`;
`forward` is their composition. That is what lets the prototype wrapper sit on any of them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from miga.models.slowonly import Classifier3d


class CrossAttentionBlock(nn.Module):
    """Tokens of one stream attend to the tokens of the other (pre-norm, residual, then an MLP)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.norm_query, self.norm_context = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        context = self.norm_context(context)
        attended, _ = self.attention(self.norm_query(query), context, context, need_weights=False)
        query = query + attended
        return query + self.mlp(query)


def _tokens(features: torch.Tensor, projection: nn.Module, position: nn.Parameter) -> torch.Tensor:
    """(N, C, T, H, W) -> (N, T*H*W, D) with a learned position code (resized if the grid differs)."""
    tokens = projection(features)  # (N, D, T, H, W)
    if tokens.shape[2:] != position.shape[2:]:
        position = F.interpolate(position, size=tokens.shape[2:], mode="trilinear", align_corners=False)
    return (tokens + position).flatten(2).transpose(1, 2)


class CrossAttentionFusion(nn.Module):
    """Pose and RGB backbones; each stream's feature map attends to the other's, then a joint head.

    Input: a pair `(heatmaps (N, J, T, H, W), frames (N, 3, T', S, S))`. Each stream keeps an
    auxiliary classifier on its own pooled features (`stream_logits`), used as an extra loss so
    neither stream is starved by the other.
    """

    def __init__(self, pose: Classifier3d, rgb: Classifier3d, num_classes: int, *, dim: int = 64, heads: int = 4,
                 layers: int = 1, dropout: float = 0.3, grid: tuple[int, int, int] = (4, 4, 4)):
        super().__init__()
        self.pose, self.rgb = pose, rgb
        self.project_pose = nn.Conv3d(pose.embedding_size, dim, 1)
        self.project_rgb = nn.Conv3d(rgb.embedding_size, dim, 1)
        self.position_pose = nn.Parameter(torch.zeros(1, dim, *grid))
        self.position_rgb = nn.Parameter(torch.zeros(1, dim, *grid))
        self.pose_from_rgb = nn.ModuleList(CrossAttentionBlock(dim, heads, dropout) for _ in range(layers))
        self.rgb_from_pose = nn.ModuleList(CrossAttentionBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(2 * dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * dim, num_classes)
        self.embedding_size = 2 * dim

    def _features(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        heatmaps, frames = inputs
        return self.pose.backbone(heatmaps), self.rgb.backbone(frames)

    def _fuse(self, pose_map: torch.Tensor, rgb_map: torch.Tensor) -> torch.Tensor:
        pose = _tokens(pose_map, self.project_pose, self.position_pose)
        rgb = _tokens(rgb_map, self.project_rgb, self.position_rgb)
        for pose_block, rgb_block in zip(self.pose_from_rgb, self.rgb_from_pose):
            pose, rgb = pose_block(pose, rgb), rgb_block(rgb, pose)
        return self.norm(torch.cat([pose.mean(1), rgb.mean(1)], dim=1))

    def embed(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self._fuse(*self._features(inputs))

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(embedding))

    def forward(self, inputs: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return self.classify(self.embed(inputs))

    def embed_with_stream_logits(self, inputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The fused embedding and each stream's own logits (for the auxiliary losses)."""
        pose_map, rgb_map = self._features(inputs)
        return self._fuse(pose_map, rgb_map), [self.pose.head(pose_map), self.rgb.head(rgb_map)]


class PrototypeClassifier(nn.Module):
    """Refines any classifier with learnable class prototypes in its embedding space.

    Logits = base logits + `scale` x cosine(embedding, prototype_c). `prototype_loss` pulls each
    embedding toward its class prototype and pushes it `margin` (in cosine) away from the
    nearest wrong one.
    """

    def __init__(self, base: nn.Module, num_classes: int, *, scale: float = 10.0, margin: float = 0.2):
        super().__init__()
        self.base = base
        self.prototypes = nn.Parameter(torch.randn(num_classes, base.embedding_size) * 0.1)
        self.scale, self.margin = scale, margin
        self.embedding_size = base.embedding_size

    def similarity(self, embedding: torch.Tensor) -> torch.Tensor:
        return F.normalize(embedding.float(), dim=1) @ F.normalize(self.prototypes.float(), dim=1).T

    def embed(self, inputs) -> torch.Tensor:
        return self.base.embed(inputs)

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.base.classify(embedding).float() + self.scale * self.similarity(embedding)

    def forward(self, inputs) -> torch.Tensor:
        return self.classify(self.embed(inputs))

    def prototype_loss(self, embedding: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        similarity = self.similarity(embedding)
        own = similarity.gather(1, labels[:, None]).squeeze(1)
        wrong = similarity.scatter(1, labels[:, None], float("-inf")).max(1).values
        return ((1 - own) + F.relu(self.margin - own + wrong)).mean()
