"""Pose heatmaps (PoseConv3D / pyskl `GeneratePoseTarget` semantics), rasterized with Numba.

Keypoints `(M persons, T frames, V joints, 3)` hold x, y, score in output pixels: pixel (i, j)
is centred at x = j, y = i. A joint draws `score * exp(-d^2 / 2 sigma^2)` on pyskl's window
`[int(x - 3 sigma), int(x + 3 sigma)]` (int() truncates toward zero, so the window is not quite
symmetric; pixels outside it stay 0); a limb draws the same Gaussian of the distance to the
segment over the segment's box grown by 3 sigma, with peak min(score_a, score_b), and a limb
shorter than 1 px is drawn as its start joint (with the start joint's score). Joints with
score < eps, or a coordinate beyond +-1e6 px or not finite, are skipped; persons and overlapping
patches combine by max.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from miga.heatmap import kernels

DTYPES = (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.uint8))

__all__ = ["DTYPES", "flip_keypoints", "limb_flip_index", "num_channels", "rasterize"]


def rasterize(
    keypoints: np.ndarray,
    *,
    size: tuple[int, int],
    limbs: Sequence[tuple[int, int]] | np.ndarray | None = None,
    sigma: float = 0.6,
    with_joints: bool = True,
    with_limbs: bool = False,
    use_score: bool = True,
    eps: float = 1e-3,
    scaling: float = 1.0,
    flip: bool = False,
    flip_index: Sequence[int] | np.ndarray | None = None,
    dtype: np.dtype | type = np.float32,
    out: np.ndarray | None = None,
    parallel: bool = False,
) -> np.ndarray:
    """Keypoints `(M, T, V, 3)` -> heatmaps `(C, T, H, W)`, C = V joints (if with_joints) then
    L limbs (if with_limbs).

    size: (H, W) of the output. scaling: multiplies the keypoint coordinates first (as pyskl).
    flip: draw the mirror image instead (x -> W - 1 - x), with left/right channels swapped as
    pyskl does: channel k shows the mirrored joint `flip_index[k]` (limbs: `limb_flip_index`).
    dtype: float32, float16 or uint8 (= round(255 * value), clipped). out: a C-contiguous array
    of the output's shape and dtype to write into (no need to zero it).
    parallel: spread the (channel, frame) planes over Numba's threads.
    """
    kp = _checked_keypoints(keypoints)
    height, width = _checked_size(size)
    num_joints = kp.shape[2]
    limb_array = _checked_limbs(limbs, num_joints) if with_limbs else np.zeros((0, 2), np.int64)
    if not (with_joints or with_limbs):
        raise ValueError("nothing to draw: with_joints and with_limbs are both False")
    if not (1e-3 <= sigma < math.inf):
        raise ValueError(f"sigma must be finite and at least 1e-3 px, got {sigma}")
    if not math.isfinite(scaling):
        raise ValueError(f"scaling must be finite, got {scaling}")
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {[str(d) for d in DTYPES]}, got {dtype}")

    shape = (num_joints * bool(with_joints) + len(limb_array), kp.shape[1], height, width)
    out = _checked_out(out, shape, dtype)
    joint_dest = np.arange(num_joints)
    limb_dest = np.arange(len(limb_array))
    if scaling != 1.0:
        kp[..., :2] *= scaling
    if flip:
        kp[..., 0] = (width - 1) - kp[..., 0]
        index = _checked_flip_index(flip_index, num_joints)
        joint_dest = np.argsort(index)  # mirrored joint v goes to the channel k with index[k] == v
        if with_limbs:
            limb_dest = np.argsort(limb_flip_index(limb_array, index))

    target = out if dtype == np.float32 else np.empty(shape, np.float32)
    _draw(kp, limb_array, target, joint_dest, limb_dest, with_joints, float(sigma), float(eps), bool(use_score), parallel)
    if dtype == np.uint8:
        np.clip(np.rint(target * 255.0), 0, 255, out=target)
    if target is not out:
        out[...] = target
    return out


def _draw(kp, limbs, target, joint_dest, limb_dest, with_joints, sigma, eps, use_score, parallel) -> None:
    num_joints = kp.shape[2] if with_joints else 0
    if with_joints:
        draw = kernels.joint_heatmaps_parallel if parallel else kernels.joint_heatmaps
        draw(kp, target[:num_joints], joint_dest, sigma, eps, use_score)
    if len(limbs):
        draw = kernels.limb_heatmaps_parallel if parallel else kernels.limb_heatmaps
        draw(kp, limbs, target[num_joints:], limb_dest, sigma, eps, use_score)


def num_channels(num_joints: int, num_limbs: int, *, with_joints: bool = True, with_limbs: bool = False) -> int:
    return num_joints * bool(with_joints) + num_limbs * bool(with_limbs)


def flip_keypoints(keypoints: np.ndarray, width: int, flip_index: Sequence[int] | np.ndarray) -> np.ndarray:
    """Mirror `(..., V, C)` keypoints horizontally (x -> width - 1 - x) and swap left/right joints:
    new joint k = mirrored old joint `flip_index[k]`. Scores are kept; returns a new array."""
    keypoints = np.asarray(keypoints)
    if keypoints.ndim < 2 or keypoints.shape[-1] < 2:
        raise ValueError(f"keypoints must be (..., V, C>=2), got shape {keypoints.shape}")
    index = _checked_flip_index(flip_index, keypoints.shape[-2])
    flipped = keypoints[..., index, :]  # fancy indexing copies
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    return flipped


def limb_flip_index(limbs: Sequence[tuple[int, int]] | np.ndarray, flip_index: Sequence[int] | np.ndarray) -> np.ndarray:
    """The limb permutation induced by a joint permutation: limb l = (a, b) maps to the limb
    (flip_index[a], flip_index[b]), in either direction. Raises if the limb list is not closed."""
    limb_array = np.asarray(limbs, dtype=np.int64).reshape(-1, 2)
    index = np.asarray(flip_index, dtype=np.int64)
    position = {}
    for l, (a, b) in enumerate(limb_array.tolist()):
        position.setdefault((a, b), l)
        position.setdefault((b, a), l)
    result = np.empty(len(limb_array), np.int64)
    for l, (a, b) in enumerate(limb_array.tolist()):
        twin = (int(index[a]), int(index[b]))
        if twin not in position:
            raise ValueError(f"limb {l} {(a, b)} flips to {twin}, which is not in the limb list")
        result[l] = position[twin]
    return result


def _checked_keypoints(keypoints) -> np.ndarray:
    """A float32 C-contiguous copy of `(M, T, V, 3)` keypoints."""
    array = np.asarray(keypoints)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"keypoints must have shape (M persons, T frames, V joints, 3), got {array.shape}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"keypoints must be real numbers, got dtype {array.dtype}")
    return np.array(array, dtype=np.float32, order="C")


def _checked_size(size) -> tuple[int, int]:
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), got {size!r}") from None
    if height < 1 or width < 1 or (height, width) != tuple(size):
        raise ValueError(f"size must be two positive integers (H, W), got {size!r}")
    return height, width


def _checked_limbs(limbs, num_joints: int) -> np.ndarray:
    if limbs is None:
        raise ValueError("with_limbs=True needs limbs, a sequence of (joint, joint) pairs")
    array = np.asarray(limbs)
    if array.size == 0:
        raise ValueError("with_limbs=True needs at least one limb")
    if array.ndim != 2 or array.shape[1] != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"limbs must be integer (joint, joint) pairs, got shape {array.shape} {array.dtype}")
    if array.min() < 0 or array.max() >= num_joints:
        raise ValueError(f"limbs reference joints outside 0..{num_joints - 1}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _checked_flip_index(flip_index, num_joints: int) -> np.ndarray:
    if flip_index is None:
        raise ValueError("flip=True needs flip_index (the layout's left/right joint permutation)")
    index = np.asarray(flip_index)
    if index.shape != (num_joints,) or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"flip_index must be {num_joints} integers, got shape {index.shape} {index.dtype}")
    if not np.array_equal(np.sort(index), np.arange(num_joints)):
        raise ValueError("flip_index must be a permutation of the joints")
    return index.astype(np.int64)


def _checked_out(out, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype:
        got = (out.shape, out.dtype) if isinstance(out, np.ndarray) else type(out).__name__
        raise ValueError(f"out must be a {dtype} array of shape {shape}, got {got}")
    if not (out.flags.c_contiguous and out.flags.writeable):
        raise ValueError("out must be C-contiguous and writeable")
    return out
