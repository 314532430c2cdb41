"""Body normalisation of 2-D keypoints: joints centred on the body and measured in body sizes (shoulder widths).

Two rules, one home:

- `clip_normalised` (Track 1's skeleton streams, the baselines): per-frame centre (neck, else shoulder midpoint, else
  the seen joints' mean) and one clip-level size (median shoulder width, else torso length, else spread).
- `causal_normalised` (Track 2's per-frame features): centre and size are medians over the whole sequence, or over each
  frame's last `window` frames (causal, so that streaming computes what the offline pass computes).

Missing joints are carried forward from their last seen position (`carry_forward`) in both.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from miga.layouts import Layout, get_layout

_EPS = 1e-6

# Joint names by role, in order of preference; a layout uses those it has.
NECK = ("Neck", "SpineShoulder")
SHOULDERS = ("LShoulder", "RShoulder")
HIPS = ("LHip", "RHip")
PELVIS = ("MidHip", "SpineBase")
HEAD = ("Nose", "Head")
HANDS = {
    "L": ("LWrist", "LHand", "LIndexTip", "LHandTip", "LHandRoot", "LIndex"),
    "R": ("RWrist", "RHand", "RIndexTip", "RHandTip", "RHandRoot", "RIndex"),
}


def first_joint(layout: Layout, names: Sequence[str]) -> int | None:
    """Index of the first of `names` the layout has, or None."""
    for name in names:
        if name in layout.joints:
            return layout.index(name)
    return None


def joint_pair(layout: Layout, names: Sequence[str]) -> tuple[int, int] | None:
    if all(n in layout.joints for n in names):
        return layout.index(names[0]), layout.index(names[1])
    return None


def carry_forward(xy: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """`(T, V, 2)`: unseen frames of each joint take its last seen value (the first seen one before it; 0 if never)."""
    t_len = xy.shape[0]
    if t_len == 0:
        return xy
    index = np.where(seen, np.arange(t_len)[:, None], -1)
    last = np.maximum.accumulate(index, axis=0)  # (T, V): last seen frame, -1 before the first
    first = np.where(seen.any(axis=0), np.argmax(seen, axis=0), 0)
    last = np.where(last < 0, first[None, :], last)
    out = np.take_along_axis(xy, last[..., None].repeat(2, axis=-1), axis=0)
    out[:, ~seen.any(axis=0)] = 0.0
    return out


def _person(keypoints: np.ndarray, layout: Layout) -> np.ndarray:
    """`(M, T, V, 3)` or `(T, V, 3)` -> person 0 as float64 `(T, V, 3)`, non-finite values missing."""
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.ndim == 4:
        kp = np.zeros((0,) + kp.shape[2:]) if kp.shape[0] == 0 else kp[0]
    if kp.ndim != 3 or kp.shape[-1] < 3 or kp.shape[1] != layout.num_joints:
        raise ValueError(f"keypoints must be (M, T, V, 3) or (T, V, 3) with V = {layout.num_joints} ({layout.name}), got {np.shape(keypoints)}")
    kp = kp[..., :3].copy()
    kp[~np.isfinite(kp).all(axis=-1)] = 0.0
    return kp


def body_centres(xy: np.ndarray, seen: np.ndarray, layout: Layout) -> np.ndarray:
    """Per-frame body centre `(T, 2)`: neck, else shoulder midpoint, else mean of the seen joints
    (frames where none of these is seen take the previous frame's centre)."""
    t_len = xy.shape[0]
    centre = np.zeros((t_len, 2))
    have = np.zeros(t_len, bool)
    neck = first_joint(layout, NECK)
    if neck is not None:
        centre[seen[:, neck]] = xy[seen[:, neck], neck]
        have |= seen[:, neck]
    shoulders = joint_pair(layout, SHOULDERS)
    if shoulders is not None:
        both = seen[:, shoulders[0]] & seen[:, shoulders[1]] & ~have
        centre[both] = (xy[both, shoulders[0]] + xy[both, shoulders[1]]) / 2
        have |= both
    count = seen.sum(axis=1)
    rest = ~have & (count > 0)
    if rest.any():
        sums = (xy * seen[..., None]).sum(axis=1)
        centre[rest] = sums[rest] / count[rest, None]
        have |= rest
    return carry_forward(centre[:, None, :], have[:, None])[:, 0]


def _body_size(xy: np.ndarray, seen: np.ndarray, centre: np.ndarray, layout: Layout) -> float:
    """One clip-level body size: median shoulder width, else torso length, else joint spread, else 1."""
    shoulders = joint_pair(layout, SHOULDERS)
    if shoulders is not None:
        both = seen[:, shoulders[0]] & seen[:, shoulders[1]]
        if both.any():
            width = np.median(np.linalg.norm(xy[both, shoulders[0]] - xy[both, shoulders[1]], axis=-1))
            if width > _EPS:
                return float(width)
    top, bottom, hips = first_joint(layout, NECK), first_joint(layout, PELVIS), joint_pair(layout, HIPS)
    lengths = []
    for t in np.flatnonzero(seen.any(axis=1)):
        upper = xy[t, top] if top is not None and seen[t, top] else (
            (xy[t, shoulders[0]] + xy[t, shoulders[1]]) / 2 if shoulders is not None and seen[t, list(shoulders)].all() else None)
        lower = xy[t, bottom] if bottom is not None and seen[t, bottom] else (
            (xy[t, hips[0]] + xy[t, hips[1]]) / 2 if hips is not None and seen[t, list(hips)].all() else None)
        if upper is not None and lower is not None:
            lengths.append(np.linalg.norm(upper - lower))
    if lengths and np.median(lengths) > _EPS:
        return float(np.median(lengths))
    if seen.any():
        spread = np.linalg.norm(xy - centre[:, None, :], axis=-1)[seen]
        if spread.size and np.sqrt(np.mean(spread**2)) > _EPS:
            return float(np.sqrt(np.mean(spread**2)))
    return 1.0


def clip_normalised(keypoints: np.ndarray, layout: str, *, min_score: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body-normalised, gap-filled coordinates `(T, V, 2)`, the seen mask `(T, V)` and the body
    centre's path `(T, 2)` in body sizes (relative to its mean) of person 0.

    A joint is seen where its score is above `min_score` (score 0 = missing).
    """
    spec = get_layout(layout)
    kp = _person(keypoints, spec)
    seen = kp[..., 2] > min_score
    xy = kp[..., :2]
    centre = body_centres(xy, seen, spec)
    size = _body_size(xy, seen, centre, spec)
    norm = (carry_forward(xy, seen) - centre[:, None, :]) / size
    norm[:, ~seen.any(axis=0)] = 0.0
    path = centre / size
    if len(path):
        path = path - path.mean(axis=0)
    return norm, seen, path


@dataclass(frozen=True)
class NormalisedSequence:
    """`causal_normalised`'s result: joints `(T, V, 2)`, seen mask `(T, V)`, the frame's body centre relative to the
    normalisation's centre `(T, 2)`."""

    joints: np.ndarray
    seen: np.ndarray
    path: np.ndarray


def _trailing_median(values: np.ndarray, seen: np.ndarray, window: int) -> np.ndarray:
    """(T, ...) values -> (T, ...) median over the seen rows among the last `window` rows (NaN where none was seen)."""
    masked = np.where(seen.reshape(-1, *([1] * (values.ndim - 1))), values, np.nan)
    padded = np.concatenate([np.full((window - 1, *values.shape[1:]), np.nan), masked])
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # (T, ..., window)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN, filled by the caller
        return np.nanmedian(view, axis=-1)


def causal_normalised(keypoints: np.ndarray, layout: str, window: int = 0, *, min_score: float = 1e-3) -> NormalisedSequence:
    """Person 0 of `(M, T, V, 3)` keypoints centred on the body (neck, or the shoulders' midpoint in a layout without
    one) and scaled by the shoulder width: medians over the whole sequence (`window` 0) or, causally, over each frame's
    last `window` frames (falling back to the sequence's where a frame's past saw neither). A joint never seen sits at
    the body centre."""
    spec = get_layout(layout)
    person = keypoints[0]
    seen = person[..., 2] > min_score
    xy = carry_forward(person[..., :2].astype(np.float64), seen)
    shoulders = [spec.index(n) for n in SHOULDERS]
    both = seen[:, shoulders].all(axis=1)
    neck = next((spec.index(n) for n in ("SpineShoulder", "Neck") if n in spec.joints), None)
    if neck is None:  # a layout without a neck point (coco17): the shoulders' midpoint
        body, body_seen = xy[:, shoulders].mean(axis=1), both
    else:
        body, body_seen = xy[:, neck], seen[:, neck]
    centre = np.median(body[body_seen], axis=0) if body_seen.any() else xy.reshape(-1, 2).mean(0)
    width = np.linalg.norm(xy[:, shoulders[0]] - xy[:, shoulders[1]], axis=-1)
    scale = float(np.median(width[both])) if both.any() else 1.0
    scale = scale or 1.0
    if window > 0:  # causal: each frame's own recent past
        recent = _trailing_median(body, body_seen, window)
        centre = np.where(np.isnan(recent), centre, recent)[:, None]  # (T, 1, 2)
        recent_width = _trailing_median(width, both, window)
        scale = np.where(np.isnan(recent_width) | (recent_width <= 0), scale, recent_width)[:, None, None]  # (T, 1, 1)
    joints = (xy - centre) / scale
    joints[:, ~seen.any(axis=0)] = 0.0
    path = ((body[:, None] - centre) / scale)[:, 0]
    return NormalisedSequence(joints, seen, path)


# ---------------------------------------------------------------- geometric transforms


def affine_matrix(angle: float, scale: Sequence[float], shear: Sequence[float]) -> np.ndarray:
    """2 x 2: rotation by `angle` after a shear [[1, shear_x], [shear_y, 1]] after a scale per axis (pyskl's
    RandomRot / RandomScale / shear in one)."""
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return rotation @ np.array([[1.0, shear[0]], [shear[1], 1.0]]) @ np.diag(scale)


def mirrored(keypoints: np.ndarray, flip_index: Sequence[int]) -> np.ndarray:
    """`(..., V, C)` keypoints seen in a mirror: left and right joints swapped (`flip_index`), x negated. On body-centred
    coordinates (or before a normalisation that centres them) that is a mirror about the body."""
    out = keypoints[..., list(flip_index), :].copy()
    out[..., 0] = -out[..., 0]
    return out


def class_mirror(pairs: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """The labels' side of `mirrored`: `(num_classes,)` int64, class k seen in a mirror is class `out[k]`. Each pair
    (a, b) of classes that name a side (turn left, turn right) is swapped, every other class kept. Raises ValueError
    for a class out of range, a class paired with itself or a class in two pairs."""
    out = np.arange(num_classes, dtype=np.int64)
    seen: set[int] = set()
    for pair in pairs:
        a, b = (int(c) for c in pair)
        if not (0 <= a < num_classes and 0 <= b < num_classes):
            raise ValueError(f"mirror pair {[a, b]}: classes are 0 .. {num_classes - 1}")
        if a == b or {a, b} & seen:
            raise ValueError(f"mirror pair {[a, b]}: a class pairs with one other class, once")
        seen |= {a, b}
        out[a], out[b] = b, a
    return out
