"""Person-centred RGB crops for the RGB stream: a few frames per clip, cut around the pose box.

Each video is decoded once for all of its clips. Crops are uint8 (T, S, S, 3); the cache of
a dataset is one `.npz` (`sample_ids`, `crops`) of N x T x S x S x 3 bytes (8 x 48 x 48 x 3 =
55 KiB per clip at the defaults).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from miga.io import atomic_path
from miga.video import read_frames, sample_indices


def clip_frame_indices(start: int, end: int, frames: int, sampling_rate: int = 0) -> np.ndarray:
    """The frames cached for a clip in [start, end] (inclusive): centres of `frames` equal bins (`sampling_rate`
    0), or every `sampling_rate`-th frame of the centred window (a backbone's recipe; bins when the clip is shorter)."""
    return sample_indices(start, end, frames, sampling_rate)


def square_box(keypoints: np.ndarray, *, padding: float, min_score: float = 1e-3) -> tuple[float, float, float]:
    """Centre x, centre y and side of the square around all valid joints, padded by `padding`."""
    valid = keypoints[..., 2] >= min_score
    if not valid.any():
        raise ValueError("no valid joint to place the crop")
    xy = keypoints[..., :2][valid]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = float(max(hi - lo) * (1 + padding)) or 1.0
    cx, cy = (lo + hi) / 2
    return float(cx), float(cy), side


def crop_and_resize(frames: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Cut the square box (zero-padded outside the frame) from uint8 (N, H, W, 3) and resize to size x size."""
    cx, cy, side = box
    n, height, width, _ = frames.shape
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    canvas = np.zeros((n, s, s, 3), np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + s), min(height, y0 + s)
    if sx1 > sx0 and sy1 > sy0:
        canvas[:, sy0 - y0: sy1 - y0, sx0 - x0: sx1 - x0] = frames[:, sy0:sy1, sx0:sx1]
    tensor = torch.from_numpy(canvas).permute(0, 3, 1, 2).float()
    resized = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def extract_crops(manifest: pl.DataFrame, keypoints: dict[str, np.ndarray], *, frames: int, size: int, padding: float,
                  root: Path = Path("."), sampling_rate: int = 0) -> dict[str, np.ndarray]:
    """`{sample_id: uint8 (frames, size, size, 3)}` for every manifest row with a video (paths relative to `root`),
    at the frames `clip_frame_indices` picks."""
    by_video: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    offsets = manifest["video_start"] if "video_start" in manifest.columns else pl.Series([0] * manifest.height)
    rows = manifest.select("sample_id", "video", "start_frame", "end_frame").with_columns(offset=offsets.fill_null(0))
    for sample_id, video, start, end, offset in rows.iter_rows():
        if video is None:
            raise ValueError(f"sample {sample_id} has no video; the RGB stream needs one")
        by_video[video].append((sample_id, start - offset, end - offset))  # frames of the video file
    crops = {}
    for video, clips in by_video.items():
        wanted = {sid: clip_frame_indices(start, end, frames, sampling_rate) for sid, start, end in clips}
        all_indices = np.unique(np.concatenate(list(wanted.values())))
        decoded = read_frames(Path(root) / video, all_indices)
        position = {int(i): k for k, i in enumerate(all_indices)}
        for sample_id, start, _ in clips:
            clip = decoded[[position[int(i)] for i in wanted[sample_id]]]
            kp = keypoints[sample_id]
            try:
                box = square_box(kp, padding=padding)
            except ValueError:
                height, width = clip.shape[1:3]
                box = (width / 2, height / 2, float(min(height, width)))
            crops[sample_id] = crop_and_resize(clip, box, size)
    return crops


def save_crops(crops: dict[str, np.ndarray], path: Path) -> None:
    ids = sorted(crops)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, sample_ids=np.array(ids, dtype=str), crops=np.stack([crops[i] for i in ids]) if ids else np.zeros((0,), np.uint8))


def load_crops(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return dict(zip(data["sample_ids"].tolist(), data["crops"]))
