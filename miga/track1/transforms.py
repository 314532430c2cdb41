"""Keypoint transforms before rasterization, pyskl-style (PoseConv3D's pose pipeline).

Each transform is a pure function on `(M, T, V, 3)` keypoints (x, y, score in pixels; pixel
centres at integer coordinates) and returns new arrays; random ones take an explicit
`np.random.Generator`. Sizes are `(height, width)`. Joints with score 0 keep score 0; their
coordinates move with the rest and mean nothing. `PoseClipPipeline` composes them into the
clips the Track 1 pose stream trains and tests on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from miga.heatmap import flip_keypoints, limb_flip_index, num_channels, rasterize

Size = tuple[int, int]
Box = tuple[float, float, float, float]  # x0, y0, x1, y1

__all__ = [
    "PoseClipConfig", "PoseClipPipeline", "compact", "crop_to_box", "flip", "flip_volume", "person_box",
    "random_resized_crop", "resize", "short_edge_size", "uniform_sample_indices",
]


def uniform_sample_indices(num_frames: int, clip_len: int, num_clips: int = 1, *,
                           rng: np.random.Generator | None = None, test_mode: bool = False,
                           seed: int = 255) -> np.ndarray:
    """pyskl `UniformSampleFrames`: frame indices `(num_clips, clip_len)`, each clip drawn independently.

    - num_frames < clip_len: clip_len consecutive frames from a random start, looping (mod num_frames).
      In test mode the starts are spread evenly (i * num_frames // num_clips).
    - clip_len <= num_frames < 2 clip_len: clip_len distinct frames in order, the
      num_frames - clip_len left out spread at random (at most one in a row).
    - otherwise: one random frame from each of clip_len equal bins.
    Test mode draws from `np.random.default_rng(seed)`, so the clips are the same on every call;
    training needs `rng`.
    """
    if num_frames < 1:
        raise ValueError(f"cannot sample from {num_frames} frames")
    if clip_len < 1 or num_clips < 1:
        raise ValueError(f"clip_len and num_clips must be positive, got {clip_len}, {num_clips}")
    if test_mode:
        rng = np.random.default_rng(seed)
    elif rng is None:
        raise ValueError("training-mode sampling needs rng (a np.random.Generator)")
    if num_frames < clip_len:
        if test_mode:
            starts = np.arange(num_clips) if num_frames < num_clips else np.arange(num_clips) * num_frames // num_clips
        else:
            starts = rng.integers(0, num_frames, size=num_clips)
        return (starts[:, None] + np.arange(clip_len)) % num_frames
    return np.stack([_sample_one(num_frames, clip_len, rng) for _ in range(num_clips)])


def _sample_one(num_frames: int, clip_len: int, rng: np.random.Generator) -> np.ndarray:
    if num_frames < 2 * clip_len:
        # clip_len + 1 gaps; num_frames - clip_len of them get one skipped frame.
        skips = np.zeros(clip_len + 1, np.int64)
        skips[rng.choice(clip_len + 1, num_frames - clip_len, replace=False)] = 1
        return np.arange(clip_len) + np.cumsum(skips)[:-1]
    bins = np.arange(clip_len + 1) * num_frames // clip_len
    return bins[:-1] + rng.integers(0, np.diff(bins))


def person_box(keypoints: np.ndarray, eps: float = 1e-3) -> Box | None:
    """Bounding box (x0, y0, x1, y1) of every joint with score >= eps and finite coordinates,
    over all persons and frames; None when there is none."""
    kp = _checked(keypoints)
    valid = (kp[..., 2] >= eps) & np.isfinite(kp[..., 0]) & np.isfinite(kp[..., 1])
    if not valid.any():
        return None
    x, y = kp[..., 0][valid], kp[..., 1][valid]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def crop_to_box(keypoints: np.ndarray, box: Box, padding: float = 0.25, hw_ratio: float | None = 1.0,
                min_side: float = 0.0) -> tuple[np.ndarray, Size]:
    """pyskl `PoseCompact` (allow_imgpad=True): the box about its centre, grown by `padding` (0.25 =
    25% wider and taller), at least `min_side`, then widened/heightened until height/width ==
    hw_ratio (None: as is); coordinates shifted to it. The crop may reach past the image.

    The crop's corners are floor()/ceil()-ed (pyskl truncates), so every point of the box stays inside.
    """
    x0, y0, x1, y1 = box
    if not (x1 >= x0 and y1 >= y0):
        raise ValueError(f"box must be (x0, y0, x1, y1) with x0 <= x1, y0 <= y1, got {box}")
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w = max((x1 - x0) * (1 + padding), min_side) / 2
    half_h = max((y1 - y0) * (1 + padding), min_side) / 2
    if hw_ratio is not None:
        half_h = max(hw_ratio * half_w, half_h)
        half_w = max(half_h / hw_ratio, half_w)
    left, top = math.floor(cx - half_w), math.floor(cy - half_h)
    right, bottom = math.ceil(cx + half_w), math.ceil(cy + half_h)
    out = np.array(keypoints, dtype=np.float32)
    out[..., 0] -= left
    out[..., 1] -= top
    return out, (max(bottom - top, 1), max(right - left, 1))


def compact(keypoints: np.ndarray, *, padding: float = 0.25, hw_ratio: float | None = 1.0,
            min_side: float = 10.0, eps: float = 1e-3) -> tuple[np.ndarray, Size]:
    """`crop_to_box` around `person_box`. Unlike pyskl, which leaves a person smaller than its
    threshold uncropped (in the whole frame, whose size we do not need), the crop is at least
    min_side wide and high. Keypoints with no valid joint come back as they are, with a
    (min_side, min_side) frame: they draw nothing anyway."""
    box = person_box(keypoints, eps)
    if box is None:
        side = max(math.ceil(min_side), 1)
        return np.array(keypoints, dtype=np.float32), (side, side)
    return crop_to_box(keypoints, box, padding, hw_ratio, min_side)


def resize(keypoints: np.ndarray, from_size: Size, to_size: Size) -> np.ndarray:
    """Scale coordinates from a (H, W) frame to another (pyskl `Resize`: x * W' / W, y * H' / H)."""
    (h0, w0), (h1, w1) = from_size, to_size
    if min(h0, w0, h1, w1) <= 0:
        raise ValueError(f"sizes must be positive, got {from_size} -> {to_size}")
    out = np.array(keypoints, dtype=np.float32)
    out[..., 0] *= w1 / w0
    out[..., 1] *= h1 / h0
    return out


def short_edge_size(size: Size, short: int) -> Size:
    """The (H, W) with the shorter side = `short`, same aspect ratio (pyskl `Resize(scale=(-1, short))`)."""
    h, w = size
    scale = short / min(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def random_resized_crop(keypoints: np.ndarray, size: Size, *, area_range: tuple[float, float] = (0.56, 1.0),
                        aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3),
                        rng: np.random.Generator, max_attempts: int = 10) -> tuple[np.ndarray, Size]:
    """pyskl `RandomResizedCrop`: a random crop of area fraction in `area_range` and aspect ratio
    (w/h, log-uniform) in `aspect_ratio_range` that fits the (H, W) frame (else, after
    `max_attempts`, the centred square); returns shifted keypoints and the crop's (h, w)."""
    if not 0 < area_range[0] <= area_range[1] <= 1:
        raise ValueError(f"area_range must satisfy 0 < lo <= hi <= 1, got {area_range}")
    if not 0 < aspect_ratio_range[0] <= aspect_ratio_range[1]:
        raise ValueError(f"aspect_ratio_range must satisfy 0 < lo <= hi, got {aspect_ratio_range}")
    h, w = size
    ratios = np.exp(rng.uniform(np.log(aspect_ratio_range[0]), np.log(aspect_ratio_range[1]), max_attempts))
    areas = rng.uniform(*area_range, max_attempts) * h * w
    widths = np.round(np.sqrt(areas * ratios)).astype(int)
    heights = np.round(np.sqrt(areas / ratios)).astype(int)
    for cw, ch in zip(widths, heights):
        if 0 < cw <= w and 0 < ch <= h:
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            break
    else:
        cw = ch = min(h, w)
        left, top = (w - cw) // 2, (h - ch) // 2
    out = np.array(keypoints, dtype=np.float32)
    out[..., 0] -= left
    out[..., 1] -= top
    return out, (int(ch), int(cw))


def flip(keypoints: np.ndarray, width: int, flip_index: Sequence[int] | np.ndarray) -> np.ndarray:
    """Horizontal flip (x -> width - 1 - x) with left/right joints swapped (`flip_keypoints`)."""
    return flip_keypoints(np.asarray(keypoints, dtype=np.float32), width, flip_index)


def _checked(keypoints) -> np.ndarray:
    kp = np.asarray(keypoints)
    if kp.ndim != 4 or kp.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (M persons, T frames, V joints, 3), got {kp.shape}")
    return kp


@dataclass(frozen=True)
class PoseClipConfig:
    """Everything that shapes a pose clip (the reference recipe's defaults, docs/design.md section 5).

    Channels are joints unless `with_limbs` (then limbs; both with `with_joints=True, with_limbs=True`).
    """

    clip_len: int = 48
    resize_to: int = 64            # short side after the person crop, before the random crop
    crop_size: int = 56            # heatmap side, train and test
    sigma: float = 0.6
    padding: float = 0.25          # person box growth before cropping
    hw_ratio: float | None = 1.0   # person crop height / width
    min_side: float = 10.0         # smallest person crop, in original pixels
    area_range: tuple[float, float] = (0.56, 1.0)
    aspect_ratio_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip_prob: float = 0.5         # training
    num_test_clips: int = 10
    flip_test: bool = True         # append the flipped copy of every test clip
    test_seed: int = 255
    with_joints: bool | None = None  # None: joints unless with_limbs
    with_limbs: bool = False
    limbs: tuple[tuple[int, int], ...] = ()
    flip_index: tuple[int, ...] | None = None
    use_score: bool = True
    eps: float = 1e-3

    def __post_init__(self):
        # Frozen: normalise with object.__setattr__ (arrays -> hashable tuples, None -> a choice).
        object.__setattr__(self, "limbs", tuple((int(a), int(b)) for a, b in self.limbs))
        if self.flip_index is not None:
            object.__setattr__(self, "flip_index", tuple(int(i) for i in self.flip_index))
        if self.with_joints is None:
            object.__setattr__(self, "with_joints", not self.with_limbs)
        if min(self.clip_len, self.resize_to, self.crop_size, self.num_test_clips) < 1:
            raise ValueError("clip_len, resize_to, crop_size and num_test_clips must be positive")
        if not (self.with_joints or self.with_limbs):
            raise ValueError("with_joints and with_limbs are both False: no channels")
        if self.with_limbs and not self.limbs:
            raise ValueError("with_limbs=True needs limbs")
        if not 0 <= self.flip_prob <= 1:
            raise ValueError(f"flip_prob must be in [0, 1], got {self.flip_prob}")
        if (self.flip_prob > 0 or self.flip_test) and self.flip_index is None:
            raise ValueError("flipping (flip_prob > 0 or flip_test) needs flip_index")
        if self.flip_index is not None and self.with_limbs:
            limb_flip_index(self.limbs, self.flip_index)  # raises if the limbs are not closed under flip

    def num_channels(self, num_joints: int) -> int:
        return num_channels(num_joints, len(self.limbs), with_joints=self.with_joints, with_limbs=self.with_limbs)

    def num_views(self, train: bool) -> int:
        return 1 if train else self.num_test_clips * (2 if self.flip_test else 1)

    def channel_flip_index(self, num_joints: int) -> np.ndarray:
        """Which channel each channel becomes under a horizontal flip (joints, then limbs)."""
        parts = []
        if self.with_joints:
            parts.append(np.asarray(self.flip_index, np.int64))
        if self.with_limbs:
            parts.append(limb_flip_index(self.limbs, self.flip_index) + (num_joints if self.with_joints else 0))
        return np.concatenate(parts)


def flip_volume(volume: np.ndarray, channel_flip_index: np.ndarray) -> np.ndarray:
    """Heatmaps `(C, T, H, W)` of the mirrored image: W reversed, left/right channels swapped.

    The same as flipping the keypoints (x -> W - 1 - x) before rasterizing, since each Gaussian
    is symmetric, up to the pixels at the edge of the 3-sigma window (values <= exp(-4.5)); used where the flip is decided outside the pipeline (paired pose + RGB clips)."""
    return np.ascontiguousarray(volume[channel_flip_index, ..., ::-1])


class PoseClipPipeline:
    """Keypoints `(M, T, V, 3)` in original pixels -> heatmaps `(views, C, clip_len, S, S)`, S = crop_size.

    Train (1 view): uniform sampling, person crop (+padding, square), resize (short side
    `resize_to`), random resized crop, resize to S x S, flip with left/right swap (p = flip_prob),
    rasterize. Test: `num_test_clips` clips sampled with a fixed seed, one person crop over all
    of them, resize to S x S, rasterize; with `flip_test`, the flipped copies follow the clips.
    """

    def __init__(self, config: PoseClipConfig):
        self.config = config

    def __call__(self, keypoints: np.ndarray, *, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
        if train:
            if rng is None:
                raise ValueError("training clips need rng (a np.random.Generator)")
            return self.train_view(keypoints, rng)[0][None]
        kp, cfg = _checked(keypoints), self.config
        indices = uniform_sample_indices(kp.shape[1], cfg.clip_len, cfg.num_test_clips, test_mode=True, seed=cfg.test_seed)
        views = np.empty((cfg.num_views(False), cfg.num_channels(kp.shape[2]), cfg.clip_len, cfg.crop_size, cfg.crop_size),
                         np.float32)
        # pyskl crops all test clips to one box (PoseCompact runs after sampling, on all of them).
        clips = self._test_keypoints(kp[:, indices.ravel()]).reshape(kp.shape[0], *indices.shape, *kp.shape[2:])
        for c in range(indices.shape[0]):
            self._draw(clips[:, c], out=views[c])
            if cfg.flip_test:
                self._draw(clips[:, c], out=views[indices.shape[0] + c], flipped=True)
        return views

    def train_view(self, keypoints: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """One augmented view `(C, clip_len, S, S)`, and whether it was mirrored."""
        kp, cfg = _checked(keypoints), self.config
        indices = uniform_sample_indices(kp.shape[1], cfg.clip_len, 1, rng=rng, seed=cfg.test_seed)
        kp, mirrored = self._train_keypoints(kp[:, indices[0]], rng)
        view = np.empty((cfg.num_channels(kp.shape[2]), cfg.clip_len, cfg.crop_size, cfg.crop_size), np.float32)
        self._draw(kp, out=view)
        return view, mirrored

    @property
    def view_mirrored(self) -> np.ndarray:
        """Which test views are mirrored: the clips, then their mirrored copies when `flip_test`."""
        return np.repeat([False, True], self.config.num_test_clips)[: self.config.num_views(False)]

    def _train_keypoints(self, kp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        cfg = self.config
        kp, size = compact(kp, padding=cfg.padding, hw_ratio=cfg.hw_ratio, min_side=cfg.min_side, eps=cfg.eps)
        resized = short_edge_size(size, cfg.resize_to)
        kp = resize(kp, size, resized)
        kp, size = random_resized_crop(kp, resized, area_range=cfg.area_range,
                                       aspect_ratio_range=cfg.aspect_ratio_range, rng=rng)
        kp = resize(kp, size, (cfg.crop_size, cfg.crop_size))
        mirrored = bool(rng.random() < cfg.flip_prob)
        if mirrored:
            kp = flip(kp, cfg.crop_size, cfg.flip_index)
        return kp, mirrored

    def _test_keypoints(self, kp: np.ndarray) -> np.ndarray:
        cfg = self.config
        kp, size = compact(kp, padding=cfg.padding, hw_ratio=cfg.hw_ratio, min_side=cfg.min_side, eps=cfg.eps)
        return resize(kp, size, (cfg.crop_size, cfg.crop_size))

    def _draw(self, kp: np.ndarray, *, out: np.ndarray, flipped: bool = False) -> None:
        cfg = self.config
        rasterize(kp, size=(cfg.crop_size, cfg.crop_size), limbs=cfg.limbs or None, sigma=cfg.sigma,
                  with_joints=cfg.with_joints, with_limbs=cfg.with_limbs, use_score=cfg.use_score, eps=cfg.eps,
                  flip=flipped, flip_index=cfg.flip_index, out=out)
