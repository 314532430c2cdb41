"""Plain NumPy heatmaps, one patch at a time: the test oracle for the Numba kernels.

Written for clarity, after pyskl's `GeneratePoseTarget` (PoseConv3D), not for speed. Only the
tests use it. Differences from pyskl, shared with the kernels: arithmetic in float64 (pyskl
mixes float32 in), joints and limbs may be drawn together (joints first), `use_score=False`
still skips joints whose score is below `eps`, and points beyond `MAX_ABS_COORD` (or not finite)
are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from miga.heatmap.kernels import MAX_ABS_COORD


def window(lo: float, hi: float, n: int) -> tuple[int, int]:
    """Pixels [start, stop) of pyskl's window; int() truncates toward zero, as in pyskl."""
    lo, hi = min(max(lo, -2.0), n + 1.0), min(max(hi, -2.0), n + 1.0)
    return max(int(lo), 0), min(int(hi) + 1, n)


def draw_point(plane: np.ndarray, x: float, y: float, value: float, sigma: float) -> None:
    h, w = plane.shape
    x0, x1 = window(x - 3 * sigma, x + 3 * sigma, w)
    y0, y1 = window(y - 3 * sigma, y + 3 * sigma, h)
    if x0 >= x1 or y0 >= y1:
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    patch = value * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    np.maximum(plane[y0:y1, x0:x1], patch, out=plane[y0:y1, x0:x1], casting="unsafe")


def draw_limb(plane: np.ndarray, a: np.ndarray, b: np.ndarray, value_a: float, value_b: float, sigma: float) -> None:
    h, w = plane.shape
    x0, x1 = window(min(a[0], b[0]) - 3 * sigma, max(a[0], b[0]) + 3 * sigma, w)
    y0, y1 = window(min(a[1], b[1]) - 3 * sigma, max(a[1], b[1]) + 3 * sigma, h)
    if x0 >= x1 or y0 >= y1:
        return
    d2_ab = (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
    if d2_ab < 1:
        draw_point(plane, a[0], a[1], value_a, sigma)  # pyskl: a short limb is its start joint
        return
    xs = np.arange(x0, x1, dtype=np.float64)
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    d2_a = (xs - a[0]) ** 2 + (ys - a[1]) ** 2
    d2_b = (xs - b[0]) ** 2 + (ys - b[1]) ** 2
    # Where the projection falls along a -> b: pyskl's (d2_a - d2_b + d2_ab) / (2 d2_ab), written
    # without its cancellation (which ruins it for far-away points).
    coeff = ((xs - a[0]) * (b[0] - a[0]) + (ys - a[1]) * (b[1] - a[1])) / d2_ab
    proj_x, proj_y = a[0] + coeff * (b[0] - a[0]), a[1] + coeff * (b[1] - a[1])
    d2_line = (xs - proj_x) ** 2 + (ys - proj_y) ** 2
    d2 = np.where(coeff <= 0, d2_a, np.where(coeff >= 1, d2_b, d2_line))
    patch = min(value_a, value_b) * np.exp(-d2 / (2 * sigma**2))
    np.maximum(plane[y0:y1, x0:x1], patch, out=plane[y0:y1, x0:x1], casting="unsafe")


def _drawn(point: np.ndarray, eps: float) -> bool:
    return bool(point[2] >= eps and abs(point[0]) <= MAX_ABS_COORD and abs(point[1]) <= MAX_ABS_COORD)


def rasterize(
    keypoints: np.ndarray,
    *,
    size: tuple[int, int],
    limbs: Sequence[tuple[int, int]] | None = None,
    sigma: float = 0.6,
    with_joints: bool = True,
    with_limbs: bool = False,
    use_score: bool = True,
    eps: float = 1e-3,
    scaling: float = 1.0,
) -> np.ndarray:
    """`(M, T, V, 3)` keypoints -> float32 `(C, T, H, W)`, C = joints then limbs."""
    kp = np.array(keypoints, dtype=np.float32)
    kp[..., :2] *= scaling
    kp = kp.astype(np.float64)
    num_persons, num_frames, num_joints, _ = kp.shape
    limbs = list(limbs or []) if with_limbs else []
    joints = range(num_joints) if with_joints else range(0)
    out = np.zeros((len(joints) + len(limbs), num_frames, *size), np.float32)
    for t in range(num_frames):
        for m in range(num_persons):
            for v in joints:
                p = kp[m, t, v]
                if _drawn(p, eps):
                    draw_point(out[v, t], p[0], p[1], p[2] if use_score else 1.0, sigma)
            for c, (i, j) in enumerate(limbs, start=len(joints)):
                a, b = kp[m, t, i], kp[m, t, j]
                if _drawn(a, eps) and _drawn(b, eps):
                    va, vb = (a[2], b[2]) if use_score else (1.0, 1.0)
                    draw_limb(out[c, t], a, b, va, vb, sigma)
    return out
