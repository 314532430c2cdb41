"""Self-supervised pretraining of a skeleton stream on clips without labels (SkeletonCLR-style contrastive learning).

Two views of the same clip, each drawn by the stream's own training augmentation (`SkeletonClipPipeline.train_view`:
temporal sampling, random scale / rotation / shear, the mirror), should embed close together and far from the other
clips of the batch: the NT-Xent loss of SimCLR over a small projection head on the stream's embedding. Labels are never
read, so the clips may include those whose labels are withheld. The stream's encoder keeps the learned weights; the
head is thrown away, and supervised training (`miga.training.fit`) starts from there.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from miga.models.fusion import PrototypeClassifier
from miga.track1.skeleton import SkeletonClips

__all__ = ["ContrastiveModel", "TwoViewClips", "contrastive_loss", "nt_xent"]


class TwoViewClips(Dataset):
    """Skeleton clips -> two independently augmented training views of each, `(2, 3, T, V)` (the label is unused)."""

    def __init__(self, clips: SkeletonClips):
        if not clips.train:
            raise ValueError("TwoViewClips draws training views: give it SkeletonClips with train=True")
        self.clips = clips

    def set_epoch(self, epoch: int) -> None:
        self.clips.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        clip, c = self.clips.clips[index], self.clips
        views = [c.pipeline.train_view(clip, np.random.default_rng([c.seed, c.epoch, index, 5 + k]))[0] for k in range(2)]
        return torch.from_numpy(np.stack(views)), -1


class ContrastiveModel(nn.Module):
    """A stream's network (`embed`) with a two-layer projection head for the contrastive loss."""

    def __init__(self, network: nn.Module, projection_dim: int):
        super().__init__()
        self.network = network
        encoder = network.base if isinstance(network, PrototypeClassifier) else network
        self.head = nn.Sequential(nn.Linear(encoder.embedding_size, encoder.embedding_size), nn.ReLU(),
                                  nn.Linear(encoder.embedding_size, projection_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.network.embed(x))


def nt_xent(za: torch.Tensor, zb: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss: each of the 2N projections must pick its own pair's other view among the other 2N - 1."""
    z = F.normalize(torch.cat([za, zb]).float(), dim=1)
    n = len(za)
    similarity = z @ z.T / temperature
    similarity = similarity.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(similarity, target)


def contrastive_loss(temperature: float):
    """`loss_fn(model, batch, device)` for `miga.training.fit` over `TwoViewClips` batches and a `ContrastiveModel`."""

    def loss_fn(model: ContrastiveModel, batch: Sequence, dev: torch.device) -> torch.Tensor:
        views = batch[0].to(dev)
        return nt_xent(model(views[:, 0]), model(views[:, 1]), temperature)

    return loss_fn
