"""Draw skeletons over video frames and write an mp4, with PyAV and NumPy only (no OpenCV).

    render_video("clip.mp4", keypoints, "openpose25_hands10", "check.mp4", start_frame=120)

draws `keypoints` `(M, T, V, 3)` (pixels of the original frame, score 0 = missing) over frames
`start_frame .. start_frame + T - 1`: the person's left side orange, right side blue, the
middle green; joints and limbs below `min_score` are left out.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from miga.io import atomic_path
from miga.layouts import get_layout
from miga.video import VideoError, encode_mp4, iter_frames, probe_video

LEFT, RIGHT, MIDDLE = (255, 140, 0), (30, 144, 255), (50, 205, 50)


def _side(name: str) -> tuple[int, int, int]:
    if name[:1] in "LR" and name[1:2].isupper():
        return LEFT if name[0] == "L" else RIGHT
    return MIDDLE


def _segment(image: np.ndarray, p: np.ndarray, q: np.ndarray, width: float, color) -> None:
    """Paint the pixels within width/2 of the segment p-q (x, y) in place."""
    half = max(width / 2, 0.5)
    h, w = image.shape[:2]
    x0, y0 = np.floor(np.minimum(p, q) - half).astype(int)
    x1, y1 = np.ceil(np.maximum(p, q) + half).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)
    if x0 > x1 or y0 > y1:
        return
    ys, xs = np.mgrid[y0: y1 + 1, x0: x1 + 1]
    d = q - p
    length2 = float(d @ d)
    if length2 > 0:
        t = np.clip(((xs - p[0]) * d[0] + (ys - p[1]) * d[1]) / length2, 0.0, 1.0)
    else:
        t = np.zeros(xs.shape)
    dist2 = (xs - p[0] - t * d[0]) ** 2 + (ys - p[1] - t * d[1]) ** 2
    image[y0: y1 + 1, x0: x1 + 1][dist2 <= half * half] = color


def draw_skeleton(
    image: np.ndarray,
    keypoints: np.ndarray,
    layout: str,
    *,
    min_score: float = 0.3,
    radius: float | None = None,
    thickness: float | None = None,
) -> np.ndarray:
    """A copy of the RGB uint8 `image` with the skeletons `(M, V, 3)` (or `(V, 3)`) drawn on it."""
    spec = get_layout(layout)
    image = np.array(image, dtype=np.uint8, copy=True)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    if keypoints.ndim == 2:
        keypoints = keypoints[None]
    if keypoints.shape[1:] != (spec.num_joints, 3):
        raise ValueError(f"keypoints must be (M, {spec.num_joints}, 3) for layout {layout}, got {keypoints.shape}")
    scale = max(image.shape[:2]) / 640
    radius = radius if radius is not None else max(2.0, 3 * scale)
    thickness = thickness if thickness is not None else max(1.5, 2 * scale)
    for person in keypoints:
        ok = (person[:, 2] >= min_score) & np.isfinite(person[:, :2]).all(axis=1)
        for a, b in spec.limbs:
            if ok[a] and ok[b]:
                side = _side(spec.joints[b]) if _side(spec.joints[b]) != MIDDLE else _side(spec.joints[a])
                _segment(image, person[a, :2], person[b, :2], thickness, side)
        for j in np.flatnonzero(ok):
            _segment(image, person[j, :2], person[j, :2], 2 * radius, (255, 255, 255))
            _segment(image, person[j, :2], person[j, :2], 2 * radius - 2, _side(spec.joints[j]))
    return image


def render_video(
    video: str | os.PathLike,
    keypoints: np.ndarray,
    layout: str,
    out: str | os.PathLike,
    *,
    start_frame: int = 0,
    min_score: float = 0.3,
    max_width: int | None = 960,
    fps: float | None = None,
    codec: str = "libx264",
) -> Path:
    """Write `out` (mp4): frames start_frame.. of `video` with `keypoints` `(M, T, V, 3)` drawn over them.

    Frames are scaled down to at most `max_width` pixels wide (None: original size) before
    drawing; the file is written atomically.
    """
    video, out = Path(video), Path(out)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.ndim != 4:
        raise ValueError(f"keypoints must be (M, T, V, 3), got {keypoints.shape}")
    frames = keypoints.shape[1]
    info = probe_video(video)
    factor = min(1.0, max_width / info.width) if max_width else 1.0
    size = max(2, int(round(info.width * factor / 2)) * 2), max(2, int(round(info.height * factor / 2)) * 2)
    scaled = keypoints.copy()
    scaled[..., 0] *= size[0] / info.width
    scaled[..., 1] *= size[1] / info.height
    style = {"min_score": min_score, "radius": max(2.0, 3 * size[0] / 640), "thickness": max(1.5, 2 * size[0] / 640)}

    def drawn():
        for number, image in iter_frames(video, np.arange(start_frame, start_frame + frames), size=size):
            yield draw_skeleton(image, scaled[:, number - start_frame], layout, **style)

    with atomic_path(out, suffix=".mp4") as tmp:
        written = encode_mp4(tmp, drawn(), fps or info.fps, size, codec=codec)
        if written < frames:
            raise VideoError(f"{video}: frames {start_frame}..{start_frame + frames - 1} requested, "
                             f"but the video ends after {start_frame + written} frames")
    return out
