"""Numba kernels behind `miga.heatmap.rasterize`, one (channel, frame) plane at a time.

Each kernel zeroes its planes itself and then draws into them, so the output may come from
`np.empty` and every plane is written while it sits in cache. The arguments are assumed valid
(checked by `miga.heatmap.rasterize`): `keypoints` float32 C-contiguous `(M, T, V, 3)`, `out`
float32 C-contiguous `(C, T, H, W)`, `dest[c]` the output channel of channel c. All arithmetic
is float64; values are rounded to float32 as they are stored.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# Points farther out than this (and non-finite ones) are not drawn: with coordinates that large a
# limb's distances lose the pixel offsets to float64 rounding, and such a point is garbage anyway.
MAX_ABS_COORD = 1e6

# Limb rows are evaluated in whole SIMD vectors (8 float64 with AVX-512), so no scalar tail loop.
_LANES = 8


@njit(cache=True, nogil=True)
def _window(lo, hi, n):
    """pyskl's pixel range `[max(int(lo), 0), min(int(hi) + 1, n))`; int() truncates toward 0.

    The clamp to [-2, n + 1] keeps int() in range for huge coordinates without changing the result.
    """
    lo = min(max(lo, -2.0), n + 1.0)
    hi = min(max(hi, -2.0), n + 1.0)
    return max(int(lo), 0), min(int(hi) + 1, n)


@njit(cache=True, nogil=True)
def _point(keypoints, m, t, v):
    return np.float64(keypoints[m, t, v, 0]), np.float64(keypoints[m, t, v, 1]), np.float64(keypoints[m, t, v, 2])


@njit(cache=True, nogil=True)
def _is_drawn(x, y, score, eps):
    return score >= eps and abs(x) <= MAX_ABS_COORD and abs(y) <= MAX_ABS_COORD


@njit(cache=True, nogil=True)
def _draw_point(plane, x, y, value, sigma, gx):
    """max= value * exp(-d^2 / 2 sigma^2) on the 3-sigma window, as (row factor) x (column table gx)."""
    h, w = plane.shape
    x0, x1 = _window(x - 3.0 * sigma, x + 3.0 * sigma, w)
    y0, y1 = _window(y - 3.0 * sigma, y + 3.0 * sigma, h)
    if x0 >= x1 or y0 >= y1:
        return
    k = 0.5 / (sigma * sigma)
    for j in range(x0, x1):
        gx[j] = math.exp(-k * (j - x) ** 2)
    for i in range(y0, y1):
        gy = value * math.exp(-k * (i - y) ** 2)
        row = plane[i]
        for j in range(x0, x1):
            row[j] = max(row[j], np.float32(gy * gx[j]))


@njit(cache=True, nogil=True)
def _draw_segment(plane, ax, ay, bx, by, value, sigma, buf):
    """max= value * exp(-dist(p, segment)^2 / 2 sigma^2) on the segment's box grown by 3 sigma.

    Each row is computed branch-free into `buf`, padded to whole SIMD vectors, so that LLVM
    vectorizes it (with `_exp_neg`), then max-ed into the plane.
    """
    h, w = plane.shape
    x0, x1 = _window(min(ax, bx) - 3.0 * sigma, max(ax, bx) + 3.0 * sigma, w)
    y0, y1 = _window(min(ay, by) - 3.0 * sigma, max(ay, by) + 3.0 * sigma, h)
    if x0 >= x1 or y0 >= y1:
        return
    k = 0.5 / (sigma * sigma)
    abx, aby = bx - ax, by - ay
    inv_d2ab = 1.0 / (abx * abx + aby * aby)
    n = np.uint64(x1 - x0)
    padded = (n + np.uint64(_LANES - 1)) & ~np.uint64(_LANES - 1)
    for i in range(y0, y1):
        dy = i - ay
        for u in range(padded):
            dx = np.float64(u) + (x0 - ax)
            t = min(max((dx * abx + dy * aby) * inv_d2ab, 0.0), 1.0)  # clamped projection on a -> b
            ex, ey = dx - t * abx, dy - t * aby
            buf[u] = value * _exp_neg(k * (ex * ex + ey * ey))
        row = plane[i, x0:x1]
        for u in range(n):
            row[u] = max(row[u], np.float32(buf[u]))


# exp(-e) = 2^-n * exp(r), n = round(e / ln 2), |r| <= ln(2) / 2 (Cody-Waite: ln 2 = HI + LO),
# exp(r) by its degree-11 Taylor polynomial (relative error < 1e-14), 2^-n by writing the
# exponent bits. libm's exp does not vectorize (Numba has no SVML here); this does, and makes
# limbs about 2x faster.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / math.log(2.0)
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11 = (1.0 / math.factorial(i) for i in range(2, 12))


@njit(cache=True, nogil=True, inline="always")
def _exp_neg(e):
    """exp(-e) for e >= 0; exp(-700) (~1e-304, 0 once rounded to float32) from e = 700 on."""
    e = min(e, 700.0)
    n = np.int64(e * _INV_LN2 + 0.5)
    r = n * _LN2_HI - e + n * _LN2_LO
    p = 1.0 + r * (1.0 + r * (_C2 + r * (_C3 + r * (_C4 + r * (_C5 + r * (_C6 + r * (
        _C7 + r * (_C8 + r * (_C9 + r * (_C10 + r * _C11))))))))))
    return p * np.int64((1023 - n) << 52).view(np.float64)


@njit(cache=True, nogil=True)
def _joint_plane(out, keypoints, dest, c, t, sigma, eps, use_score, scratch):
    plane = out[dest[c], t]
    plane[:] = 0.0
    for m in range(keypoints.shape[0]):
        x, y, s = _point(keypoints, m, t, c)
        if _is_drawn(x, y, s, eps):
            _draw_point(plane, x, y, s if use_score else 1.0, sigma, scratch)


@njit(cache=True, nogil=True)
def _limb_plane(out, keypoints, limbs, dest, c, t, sigma, eps, use_score, scratch):
    plane = out[dest[c], t]
    plane[:] = 0.0
    a, b = limbs[c, 0], limbs[c, 1]
    for m in range(keypoints.shape[0]):
        ax, ay, sa = _point(keypoints, m, t, a)
        bx, by, sb = _point(keypoints, m, t, b)
        if not (_is_drawn(ax, ay, sa, eps) and _is_drawn(bx, by, sb, eps)):
            continue
        if not use_score:
            sa = sb = 1.0
        # pyskl draws a limb shorter than 1 px as its start joint, with the start joint's score.
        if (bx - ax) ** 2 + (by - ay) ** 2 < 1.0:
            _draw_point(plane, ax, ay, sa, sigma, scratch)
        else:
            _draw_segment(plane, ax, ay, bx, by, min(sa, sb), sigma, scratch)


@njit(cache=True, nogil=True)
def joint_heatmaps(keypoints, out, dest, sigma, eps, use_score):
    """out[dest[v], t] = heatmap of joint v in frame t, max over persons."""
    num_frames, num_joints = keypoints.shape[1], keypoints.shape[2]
    scratch = np.empty(out.shape[3] + _LANES)
    for p in range(num_joints * num_frames):
        _joint_plane(out, keypoints, dest, p // num_frames, p % num_frames, sigma, eps, use_score, scratch)


@njit(cache=True, nogil=True, parallel=True)
def joint_heatmaps_parallel(keypoints, out, dest, sigma, eps, use_score):
    num_frames, num_joints = keypoints.shape[1], keypoints.shape[2]
    for p in prange(num_joints * num_frames):
        scratch = np.empty(out.shape[3] + _LANES)
        _joint_plane(out, keypoints, dest, p // num_frames, p % num_frames, sigma, eps, use_score, scratch)


@njit(cache=True, nogil=True)
def limb_heatmaps(keypoints, limbs, out, dest, sigma, eps, use_score):
    """out[dest[l], t] = heatmap of limb l = (limbs[l, 0], limbs[l, 1]) in frame t, max over persons."""
    num_frames = keypoints.shape[1]
    scratch = np.empty(out.shape[3] + _LANES)
    for p in range(limbs.shape[0] * num_frames):
        _limb_plane(out, keypoints, limbs, dest, p // num_frames, p % num_frames, sigma, eps, use_score, scratch)


@njit(cache=True, nogil=True, parallel=True)
def limb_heatmaps_parallel(keypoints, limbs, out, dest, sigma, eps, use_score):
    num_frames = keypoints.shape[1]
    for p in prange(limbs.shape[0] * num_frames):
        scratch = np.empty(out.shape[3] + _LANES)
        _limb_plane(out, keypoints, limbs, dest, p // num_frames, p % num_frames, sigma, eps, use_score, scratch)
