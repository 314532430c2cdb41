"""Heatmap rasterization: Numba kernels vs the NumPy oracle vs the cost of just writing the output.

One clip as the reference recipe draws it: 1 person (a standing skeleton waving its arms),
COCO-17 (17 joints, 16 limbs), 48 frames, 64 x 64, sigma 0.6, float32, on one thread (the serial
kernels; the thread settings only pin NumPy and Numba's pools). Every figure is the median of
several timed runs, all in this one process, after a warm-up that also JIT-compiles the kernels.

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python -m benchmarks.heatmap   # from the repository root
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numba
import numpy as np

from miga.heatmap import rasterize
from tests.heatmap import heatmap_oracle as oracle  # the NumPy reference the tests check the kernels against
from miga.layouts import COCO17

FRAMES, SIZE, SIGMA = 48, 64, 0.6


# A standing person filling the 64 x 64 crop, as after PoseCompact + Resize (COCO-17 order).
_STANDING = np.array([
    (32, 10), (34, 8), (30, 8), (37, 9), (27, 9), (40, 18), (24, 18), (44, 28), (20, 28),
    (46, 37), (18, 37), (37, 38), (27, 38), (38, 48), (26, 48), (38, 58), (26, 58),
], np.float64)


def clip_keypoints(seed: int = 0) -> np.ndarray:
    """`(1, 48, 17, 3)`: the standing person waving both arms, jittered, scores in [0.3, 1]."""
    rng = np.random.default_rng(seed)
    phase = np.linspace(0, 4 * np.pi, FRAMES)
    xy = np.repeat(_STANDING[None], FRAMES, axis=0)
    for joint, reach in ((7, 4.0), (8, 4.0), (9, 8.0), (10, 8.0)):  # elbows and wrists
        xy[:, joint, 1] -= reach * (1 + np.sin(phase))
    xy += rng.normal(0, 0.5, size=xy.shape)
    score = rng.uniform(0.3, 1.0, size=(FRAMES, COCO17.num_joints, 1))
    return np.concatenate([xy, score], axis=-1)[None].astype(np.float32)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (JIT compilation, page cache, allocator)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def floor(channels: int) -> Callable[[], np.ndarray]:
    """np.zeros + writing every value of the volume once: what any rasterizer must at least pay."""
    def run() -> np.ndarray:
        volume = np.zeros((channels, FRAMES, SIZE, SIZE), np.float32)
        volume.fill(1.0)
        return volume
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--oracle-repeats", type=int, default=5)
    args = parser.parse_args()

    kp = clip_keypoints()
    common = dict(size=(SIZE, SIZE), limbs=COCO17.limbs, sigma=SIGMA)
    joints = dict(with_joints=True, with_limbs=False)
    limbs = dict(with_joints=False, with_limbs=True)
    np.testing.assert_allclose(rasterize(kp, **common, **joints), oracle.rasterize(kp, **common, **joints), atol=1e-5)
    np.testing.assert_allclose(rasterize(kp, **common, **limbs), oracle.rasterize(kp, **common, **limbs), atol=1e-5)

    t = {
        "oracle joints": median_seconds(lambda: oracle.rasterize(kp, **common, **joints), args.oracle_repeats),
        "oracle limbs": median_seconds(lambda: oracle.rasterize(kp, **common, **limbs), args.oracle_repeats),
        "numba joints": median_seconds(lambda: rasterize(kp, **common, **joints), args.repeats),
        "numba limbs": median_seconds(lambda: rasterize(kp, **common, **limbs), args.repeats),
        "floor joints": median_seconds(floor(COCO17.num_joints), args.repeats),
        "floor limbs": median_seconds(floor(len(COCO17.limbs)), args.repeats),
    }
    print(f"# {platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}, numba {numba.__version__}, "
          f"NUMBA_NUM_THREADS={numba.config.NUMBA_NUM_THREADS}")
    print(f"# 1 person, {COCO17.num_joints} joints / {len(COCO17.limbs)} limbs, {FRAMES} frames, {SIZE}x{SIZE}, sigma {SIGMA}, float32")
    print(f"{'case':<14} {'ms / clip':>10}")
    for name, seconds in t.items():
        print(f"{name:<14} {1e3 * seconds:>10.2f}")
    for kind in ("joints", "limbs"):
        fast = t[f"numba {kind}"]
        print(f"{kind}: numba is {t[f'oracle {kind}'] / fast:.1f}x faster than the oracle, "
              f"{fast / t[f'floor {kind}']:.2f}x the zeros+write floor")


if __name__ == "__main__":
    main()
