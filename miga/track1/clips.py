"""Track 1's clip datasets: keypoints -> heatmap volumes (`PoseClips`), cached RGB crops -> frame tensors
(`RgbClips`), both mirrored together (`PairedClips`); the skeleton-sequence clips are `miga.track1.skeleton`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import torch
from torch.utils.data import Dataset

from miga.io import KeypointStore
from miga.layouts import convert, get_layout
from miga.models import InputRecipe, input_recipe, rgb_clip_transform
from miga.track1.mirror import mirrored_label
from miga.track1.transforms import PoseClipConfig, PoseClipPipeline, flip_volume


def pose_pipeline(heatmap: Mapping) -> PoseClipPipeline:
    layout = get_layout(heatmap["layout"])
    return PoseClipPipeline(PoseClipConfig(
        clip_len=int(heatmap["clip_len"]), resize_to=int(heatmap["resize_to"]), crop_size=int(heatmap["size"]),
        sigma=float(heatmap["sigma"]), padding=float(heatmap["padding"]), with_limbs=bool(heatmap["with_limbs"]),
        num_test_clips=int(heatmap["test_clips"]), flip_test=bool(heatmap["flip_test"]), flip_prob=float(heatmap["flip_prob"]),
        limbs=layout.limbs, flip_index=layout.flip_index,
    ))


def pose_channels(heatmap: Mapping) -> int:
    layout = get_layout(heatmap["layout"])
    return len(layout.limbs) if heatmap["with_limbs"] else layout.num_joints


class PoseClips(Dataset):
    """Keypoints of each clip -> heatmap volume (C, T, H, W) (train) or (views, C, T, H, W) (test). A mirrored
    training clip takes its class's mirror twin (`class_mirror`, `miga.track1.mirror`)."""

    def __init__(self, store: KeypointStore, sample_ids: Sequence[str], labels: np.ndarray, *, layout: str,
                 pipeline: PoseClipPipeline, train: bool, seed: int, class_mirror: np.ndarray | None = None):
        self.keypoints = [convert(store[s], store.layout, layout) for s in sample_ids]
        self.labels, self.pipeline, self.train, self.seed, self.epoch = labels, pipeline, train, seed, 0
        self.class_mirror = class_mirror

    @property
    def view_mirrored(self) -> np.ndarray:
        return self.pipeline.view_mirrored

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.keypoints)

    def __getitem__(self, index: int):
        if not self.train:
            return torch.from_numpy(self.pipeline(self.keypoints[index], train=False)), int(self.labels[index])
        view, mirrored = self.pipeline.train_view(self.keypoints[index], np.random.default_rng([self.seed, self.epoch, index]))
        return torch.from_numpy(view), mirrored_label(self.labels[index], mirrored, self.class_mirror)


def rgb_backbone_name(model: Mapping) -> str:
    return str(model["rgb_backbone"])


def rgb_recipe(model: Mapping, rgb: Mapping) -> InputRecipe:
    """The RGB input of `model.rgb_backbone`: its published recipe (crop, test crop, short-side jitter) scaled to the
    cached crop side `rgb.size`, with `rgb.frames` frames every `rgb.sampling_rate` source frames (0 = spread
    over the whole clip). At the recipe's own cache size (configs/rgb_*.yaml) this is the published recipe."""
    published = input_recipe(rgb_backbone_name(model))
    size = int(rgb["size"])
    scale = size / published.cache_size
    side = lambda pixels: max(1, int(round(pixels * scale)))  # noqa: E731
    return InputRecipe(int(rgb["frames"]), int(rgb["sampling_rate"]), min(size, side(published.size)),
                       published.mean, published.std, test_size=min(size, side(published.eval_size)),
                       scale_range=tuple(side(p) for p in published.scale_range) if published.scale_range else None,
                       flip_prob=float(rgb["flip_prob"]))


class RgbClips(Dataset):
    """Cached uint8 crops (T, S, S, 3) -> (3, T, s, s) by `recipe` (`rgb_clip_transform`): in training a random
    short-side scale and crop, brightness jitter and a horizontal flip with `flip_prob` (the clip then takes its
    class's mirror twin, `class_mirror`); at test the centre crop, as two views (original, mirrored)."""

    view_mirrored = np.array([False, True])

    def __init__(self, crops: Sequence[np.ndarray], labels: np.ndarray, *, recipe: InputRecipe, train: bool, seed: int,
                 flip_prob: float = 0.5, class_mirror: np.ndarray | None = None):
        self.crops, self.labels, self.train, self.seed, self.epoch, self.flip_prob = crops, labels, train, seed, 0, flip_prob
        self.class_mirror = class_mirror
        self.transform = rgb_clip_transform(recipe, train=train, flip_prob=0.0, intensity_jitter=0.2 if train else 0.0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.crops)

    def frames(self, index: int) -> torch.Tensor:
        return self.transform(self.crops[index], np.random.default_rng([self.seed, self.epoch, index, 1]))

    def __getitem__(self, index: int):
        clip = self.frames(index)
        if not self.train:
            return torch.stack([clip, clip.flip(-1)]), int(self.labels[index])
        mirrored = bool(self.flip_prob and np.random.default_rng([self.seed, self.epoch, index, 4]).random() < self.flip_prob)
        return (clip.flip(-1) if mirrored else clip), mirrored_label(self.labels[index], mirrored, self.class_mirror)


class PairedClips(Dataset):
    """Pose heatmaps and RGB frames of the same clip, mirrored together: ((heatmaps, frames), label).

    Training flips both or neither (the pose pipeline's own flip is off; the heatmap volume is
    mirrored with its left/right channels swapped). Test views pair each pose view with the RGB
    view of the same orientation. A mirrored training pair takes its class's mirror twin (the pose clips'
    `class_mirror`).
    """

    def __init__(self, pose: PoseClips, rgb: RgbClips, *, flip_prob: float | None = None):
        """`flip_prob`: the pair's mirror probability in training; None = the pose clips' own (`track1.heatmap.flip_prob`)."""
        if len(pose) != len(rgb):
            raise ValueError(f"pose and RGB clip counts differ: {len(pose)} != {len(rgb)}")
        if rgb.train and rgb.flip_prob:
            raise ValueError("PairedClips mirrors pose and RGB together: give it RgbClips with flip_prob 0")
        config = pose.pipeline.config
        flip_prob = config.flip_prob if flip_prob is None else flip_prob
        self.pose, self.rgb, self.flip_prob, self.class_mirror = pose, rgb, flip_prob, pose.class_mirror
        self.pose.pipeline = PoseClipPipeline(replace(config, flip_prob=0.0))
        self.channel_flip = config.channel_flip_index(pose.keypoints[0].shape[2]) if len(pose) else None

    @property
    def view_mirrored(self) -> np.ndarray:
        return self.pose.view_mirrored

    def set_epoch(self, epoch: int) -> None:
        self.pose.set_epoch(epoch)
        self.rgb.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pose)

    def __getitem__(self, index: int):
        heatmaps, label = self.pose[index]
        if self.pose.train:
            frames = self.rgb.frames(index)
            rng = np.random.default_rng([self.pose.seed, self.pose.epoch, index, 2])
            mirrored = bool(rng.random() < self.flip_prob)
            if mirrored:
                heatmaps = torch.from_numpy(flip_volume(heatmaps.numpy(), self.channel_flip))
                frames = frames.flip(-1)
            return (heatmaps, frames), mirrored_label(label, mirrored, self.class_mirror)
        rgb_views, _ = self.rgb[index]  # (2, ...): original, mirrored
        return (heatmaps, rgb_views[torch.from_numpy(self.view_mirrored.astype(np.int64))]), label
