"""Skeleton-sequence input for the graph-convolution streams (pyskl's ST-GCN++ / CTR-GCN recipes).

A clip's keypoints `(M, T, V, 3)` (pixels, score 0 = missing; person 0 is used) become a tensor
`(C, T', V)` in four steps, each a small pure function:

1. `fill_gaps`: a joint missing for at most `max_gap` frames between two detections is
   interpolated linearly (pose estimators drop hands for a frame or two); longer gaps are left
   to step 2.
2. body normalisation (`miga.skeleton.clip_normalised`): centred on the neck / shoulder midpoint of
   each frame, scaled by the clip's median shoulder width, still-missing joints carry their last
   seen position. The same normalisation the pooled-statistics baselines use.
3. in training, pyskl's augmentations on the normalised coordinates: random scale, rotation and
   shear (`random_affine`), mirror with the left/right joints swapped (`mirror`), and uniform
   temporal sampling (`miga.track1.transforms.uniform_sample_indices`, pyskl's
   `UniformSampleFrames`). At test time `test_clips` evenly spread clips, each also mirrored when
   `flip_test`.
4. the stream's features (`FEATURES`, pyskl's `GenSkeFeat`): `joint` (x, y), `bone` (joint minus
   its parent along the layout's limbs), `joint_motion` and `bone_motion` (the next frame minus
   this one), each with the seen flag as a third channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from miga.skeleton import affine_matrix, mirrored
from miga.skeleton import clip_normalised as normalise
from miga.layouts import Layout, convert, get_layout
from miga.track1.mirror import mirrored_label
from miga.track1.transforms import uniform_sample_indices

FEATURES = ("joint", "bone", "joint_motion", "bone_motion")


@dataclass(frozen=True)
class SkeletonClipConfig:
    layout: str | None = None  # joints the stream sees (converted from the keypoints'); None = the keypoints' own
    clip_len: int = 32
    max_gap: int = 5
    test_clips: int = 4
    flip_test: bool = True
    scale: float = 0.1          # random scale per axis in [1 - scale, 1 + scale]
    rotate: float = 0.3         # radians, uniform in [-rotate, rotate]
    shear: float = 0.1
    flip_prob: float = 0.5

    @classmethod
    def from_params(cls, params: Mapping) -> "SkeletonClipConfig":
        """From the `skeleton` params section (every key of the schema's)."""
        known = {k: params[k] for k in cls.__dataclass_fields__}
        return cls(**{k: (v if k == "layout" else type(getattr(cls, k))(v)) for k, v in known.items()})

    def layout_for(self, source_layout: str) -> str:
        return self.layout or source_layout


def fill_gaps(keypoints: np.ndarray, max_gap: int) -> np.ndarray:
    """`(T, V, 3)` -> a copy where runs of at most `max_gap` missing frames between two detections
    of a joint are linearly interpolated (score: the lower of the two ends)."""
    kp = np.array(keypoints, dtype=np.float64)
    if max_gap < 1 or len(kp) < 3:
        return kp
    seen = kp[..., 2] > 0
    frames = np.arange(len(kp))
    for v in range(kp.shape[1]):
        where = np.flatnonzero(seen[:, v])
        if len(where) < 2:
            continue
        gaps = np.flatnonzero((np.diff(where) > 1) & (np.diff(where) <= max_gap + 1))
        for g in gaps:
            a, b = where[g], where[g + 1]
            inside = frames[a + 1: b]
            w = ((inside - a) / (b - a))[:, None]
            kp[a + 1: b, v, :2] = (1 - w) * kp[a, v, :2] + w * kp[b, v, :2]
            kp[a + 1: b, v, 2] = min(kp[a, v, 2], kp[b, v, 2])
    return kp


def normalised_clip(keypoints: np.ndarray, layout: str, max_gap: int) -> np.ndarray:
    """One clip `(M, T, V, 3)` -> body-normalised, gap-filled `(T, V, 3)` float32: x, y, seen (0/1)."""
    kp = np.asarray(keypoints)
    kp = kp[0] if kp.ndim == 4 else kp
    if len(kp) == 0:
        return np.zeros((1, get_layout(layout).num_joints, 3), np.float32)
    filled = fill_gaps(kp, max_gap)
    xy, seen, _ = normalise(filled, layout)
    return np.concatenate([xy, seen[..., None]], axis=-1).astype(np.float32)


def random_affine(xy: np.ndarray, rng: np.random.Generator, *, scale: float, rotate: float, shear: float) -> np.ndarray:
    """`(..., 2)` body-normalised coordinates -> scaled, sheared and rotated about the body centre (0, 0)."""
    sx, sy = rng.uniform(1 - scale, 1 + scale, size=2)
    hx, hy = rng.uniform(-shear, shear, size=2)
    angle = rng.uniform(-rotate, rotate)
    return xy @ affine_matrix(angle, (sx, sy), (hx, hy)).T


def mirror(clip: np.ndarray, flip_index: np.ndarray) -> np.ndarray:
    """`(T, V, C)` normalised clip seen in a mirror: x negated, left and right joints swapped."""
    return mirrored(clip, flip_index)


def parents(layout: Layout) -> np.ndarray:
    """Each joint's parent along the limbs, walking out from the first joint of the first limb (roots: themselves)."""
    parent = np.arange(layout.num_joints)
    neighbours: dict[int, list[int]] = {}
    for a, b in layout.limbs:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    visited = set()
    for root in [a for a, _ in layout.limbs[:1]] + list(range(layout.num_joints)):
        if root in visited:
            continue
        visited.add(root)
        queue = [root]
        while queue:
            node = queue.pop(0)
            for other in neighbours.get(node, []):
                if other not in visited:
                    visited.add(other)
                    parent[other] = node
                    queue.append(other)
    return parent


def stream_features(clip: np.ndarray, feature: str, parent: np.ndarray) -> np.ndarray:
    """`(T, V, 3)` (x, y, seen) -> `(3, T, V)` float32 of one of `FEATURES`."""
    if feature not in FEATURES:
        raise ValueError(f"unknown skeleton feature {feature!r}; choose one of {FEATURES}")
    xy, seen = clip[..., :2], clip[..., 2:3]
    if feature.startswith("bone"):
        xy = xy - xy[:, parent]
        seen = seen * seen[:, parent]
    if feature.endswith("motion"):
        xy = np.concatenate([xy[1:] - xy[:-1], np.zeros_like(xy[:1])], axis=0)
        seen = np.concatenate([seen[1:] * seen[:-1], np.zeros_like(seen[:1])], axis=0)
    return np.ascontiguousarray(np.concatenate([xy, seen], axis=-1).transpose(2, 0, 1), dtype=np.float32)


class SkeletonClipPipeline:
    """Normalised clip `(T, V, 3)` -> training view `(3, clip_len, V)` or test views `(N, 3, clip_len, V)`."""

    def __init__(self, config: SkeletonClipConfig, feature: str, layout: str):
        layout = get_layout(layout)
        self.config, self.feature = config, feature
        self.flip_index, self.parent = layout.flip_index, parents(layout)

    def __call__(self, clip: np.ndarray, *, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        return self.train_view(clip, rng)[0] if train else self.test_views(clip)

    def train_view(self, clip: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """One augmented view `(3, clip_len, V)`, and whether it was mirrored."""
        c = self.config
        frames = clip[uniform_sample_indices(len(clip), c.clip_len, rng=rng)[0]].copy()
        frames[..., :2] = random_affine(frames[..., :2], rng, scale=c.scale, rotate=c.rotate, shear=c.shear)
        mirrored = bool(rng.random() < c.flip_prob)
        if mirrored:
            frames = mirror(frames, self.flip_index)
        return stream_features(frames, self.feature, self.parent), mirrored

    @property
    def view_mirrored(self) -> np.ndarray:
        """Which of `test_views` are mirrored: each clip, then its mirror when `flip_test`."""
        return np.array([False, True] * self.config.test_clips if self.config.flip_test else [False] * self.config.test_clips)

    def test_views(self, clip: np.ndarray) -> np.ndarray:
        c = self.config
        views = []
        for indices in uniform_sample_indices(len(clip), c.clip_len, c.test_clips, test_mode=True):
            views.append(stream_features(clip[indices], self.feature, self.parent))
            if c.flip_test:
                views.append(stream_features(mirror(clip[indices], self.flip_index), self.feature, self.parent))
        return np.stack(views)


class SkeletonClips(Dataset):
    """Keypoints of each clip -> one skeleton stream's tensor: `(3, T, V)` (train) or `(views, 3, T, V)` (test)."""

    def __init__(self, keypoints: Sequence[np.ndarray], source_layout: str, labels: np.ndarray, *,
                 config: SkeletonClipConfig, feature: str, train: bool, seed: int, class_mirror: np.ndarray | None = None):
        layout = config.layout_for(source_layout)
        self.clips = [normalised_clip(convert(np.asarray(k), source_layout, layout), layout, config.max_gap) for k in keypoints]
        self.pipeline = SkeletonClipPipeline(config, feature, layout)
        self.labels, self.train, self.seed, self.epoch = labels, train, seed, 0
        self.class_mirror, self.view_mirrored = class_mirror, self.pipeline.view_mirrored

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        if not self.train:
            return torch.from_numpy(self.pipeline.test_views(self.clips[index])), int(self.labels[index])
        view, mirrored = self.pipeline.train_view(self.clips[index], np.random.default_rng([self.seed, self.epoch, index, 3]))
        return torch.from_numpy(view), mirrored_label(self.labels[index], mirrored, self.class_mirror)
