"""Video probing and decoding with PyAV, by frame index."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")


class VideoError(ValueError):
    """A video cannot be opened or decoded; the message names the file."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int
    height: int


def _open(path: Path):
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"{path}: cannot open video: {err}") from err
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count, fps and size; the count is decoded when the container does not state it."""
    path = Path(path)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = stream.frames
        if not frames:
            frames = sum(1 for _ in _decode(container, path))
        return VideoInfo(int(frames), float(rate), int(stream.codec_context.width), int(stream.codec_context.height))
    finally:
        container.close()


def _decode(container, path: Path):
    try:
        yield from container.decode(video=0)
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: video does not decode: {err}") from err


def read_frames(path: str | Path, indices: np.ndarray) -> np.ndarray:
    """Decode the frames at the given 0-based indices (any order, repeats allowed) as uint8 (N, H, W, 3).

    Frames are counted in decode order, so variable frame rate and missing timestamps don't
    shift them. Asking for a frame past the end is an error naming the file.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    wanted = set(indices.tolist())
    last = max(wanted) if wanted else -1
    got: dict[int, np.ndarray] = {}
    decoded = 0
    container = _open(path)
    try:
        for number, frame in enumerate(_decode(container, path)):
            decoded = number + 1
            if number in wanted:
                got[number] = frame.to_ndarray(format="rgb24")
            if number >= last:
                break
    finally:
        container.close()
    missing = sorted(wanted - got.keys())
    if missing:
        raise VideoError(f"{path}: frame {missing[0]} requested but the video decodes only {decoded} frames")
    return np.stack([got[i] for i in indices]) if len(indices) else np.zeros((0, 0, 0, 3), np.uint8)
