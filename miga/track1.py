"""Track 1: clip classification from pose heatmaps (rasterized on the fly) and RGB crops, with fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from miga.io import KeypointStore
from miga.layouts import convert, get_layout
from miga.models import build_model
from miga.transforms import PoseClipConfig, PoseClipPipeline

FUSIONS = ("none", "late")


@dataclass(frozen=True)
class StreamInputs:
    """What a stream needs to build its model: channels and classes."""

    in_channels: int
    num_classes: int


def pose_pipeline(heatmap: Mapping) -> PoseClipPipeline:
    layout = get_layout(heatmap["layout"])
    return PoseClipPipeline(PoseClipConfig(
        clip_len=int(heatmap["clip_len"]), resize_to=int(heatmap["resize_to"]), crop_size=int(heatmap["size"]),
        sigma=float(heatmap["sigma"]), padding=float(heatmap["padding"]), with_limbs=bool(heatmap["with_limbs"]),
        num_test_clips=int(heatmap["test_clips"]), flip_test=bool(heatmap["flip_test"]),
        limbs=layout.limbs, flip_index=layout.flip_index,
    ))


def pose_channels(heatmap: Mapping) -> int:
    layout = get_layout(heatmap["layout"])
    return len(layout.limbs) if heatmap["with_limbs"] else layout.num_joints


class PoseClips(Dataset):
    """Keypoints of each clip -> heatmap volume (C, T, H, W) (train) or (views, C, T, H, W) (test)."""

    def __init__(self, store: KeypointStore, sample_ids: Sequence[str], labels: np.ndarray, *, layout: str,
                 pipeline: PoseClipPipeline, train: bool, seed: int):
        self.keypoints = [convert(store[s], store.layout, layout) for s in sample_ids]
        self.labels, self.pipeline, self.train, self.seed, self.epoch = labels, pipeline, train, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.keypoints)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        volume = self.pipeline(self.keypoints[index], train=self.train, rng=rng)
        return torch.from_numpy(volume[0] if self.train else volume), int(self.labels[index])


_RGB_MEAN = torch.tensor([0.45, 0.45, 0.45]).view(3, 1, 1, 1)
_RGB_STD = torch.tensor([0.225, 0.225, 0.225]).view(3, 1, 1, 1)


def rgb_tensor(crops: np.ndarray) -> torch.Tensor:
    """uint8 (T, S, S, 3) -> normalised float (3, T, S, S)."""
    return (torch.from_numpy(crops).permute(3, 0, 1, 2).float() / 255 - _RGB_MEAN) / _RGB_STD


class RgbClips(Dataset):
    """Cached crops -> (3, T, S, S); training flips horizontally with p = 0.5 and jitters brightness."""

    def __init__(self, crops: Sequence[np.ndarray], labels: np.ndarray, *, train: bool, seed: int):
        self.crops, self.labels, self.train, self.seed, self.epoch = crops, labels, train, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int):
        clip = rgb_tensor(self.crops[index])
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, index, 1])
            if rng.random() < 0.5:
                clip = clip.flip(-1)
            clip = clip * float(rng.uniform(0.8, 1.2)) + float(rng.uniform(-0.2, 0.2))
        else:
            clip = torch.stack([clip, clip.flip(-1)])
        return clip, int(self.labels[index])


def build_stream(stream: str, model: Mapping, inputs: StreamInputs) -> torch.nn.Module:
    common = dict(num_classes=inputs.num_classes, stage_blocks=tuple(model["stage_blocks"]), dropout=float(model["dropout"]))
    if stream == "pose":
        return build_model("pose_slowonly", in_channels=inputs.in_channels, base_channels=int(model["pose_base_channels"]), **common)
    if stream == "rgb":
        return build_model("rgb_slowonly", base_channels=int(model["rgb_base_channels"]), **common)
    raise ValueError(f"unknown stream {stream!r}")


def classification_loss(model: torch.nn.Module, batch, dev: torch.device) -> torch.Tensor:
    inputs, labels = batch
    return F.cross_entropy(model(inputs.to(dev)).float(), labels.to(dev))


@torch.no_grad()
def view_averaged_probabilities(model: torch.nn.Module, dataset: Dataset, batch_size: int = 16) -> np.ndarray:
    """Softmax averaged over the test views (clips x flips) of each sample -> (N, K)."""
    dev = next(model.parameters()).device
    model.eval()
    out = []
    for views, _ in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        n, v = views.shape[:2]
        logits = model(views.flatten(0, 1).to(dev)).float()
        out.append(torch.softmax(logits, dim=1).view(n, v, -1).mean(1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def fuse(scores: Mapping[str, np.ndarray], fusion: str, late_weight: float) -> np.ndarray:
    if fusion == "none":
        return scores["pose"]
    if fusion == "late":
        return late_weight * scores["pose"] + (1 - late_weight) * scores["rgb"]
    raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")


def streams_for(fusion: str) -> tuple[str, ...]:
    if fusion not in FUSIONS:
        raise ValueError(f"unknown model.fusion {fusion!r}; choose one of {FUSIONS}")
    return ("pose",) if fusion == "none" else ("pose", "rgb")
