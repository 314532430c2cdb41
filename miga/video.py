"""Video probing, decoding by frame index and mp4 encoding with PyAV: the one place miga touches video files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
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


@contextlib.contextmanager
def open_video(path: str | os.PathLike) -> Iterator:
    """A PyAV container with at least one video stream; VideoError naming the file otherwise. Closed on exit."""
    path = Path(path)
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as err:
        raise VideoError(f"{path}: cannot open video: {err}") from err
    try:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        yield container
    finally:
        container.close()


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps and size; the count is decoded when the container does not state it."""
    path = Path(path)
    with open_video(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        frames = stream.frames
        if not frames:
            frames = sum(1 for _ in _decode(container, path))
        return VideoInfo(int(frames), float(rate), int(stream.codec_context.width), int(stream.codec_context.height))


def _decode(container, path: Path):
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    try:
        yield from container.decode(stream)
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: video does not decode: {err}") from err


def iter_frames(path: str | os.PathLike, wanted: np.ndarray | None = None, *,
                size: tuple[int, int] | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, uint8 rgb24 (H, W, 3)) for the sorted 0-based indices `wanted` (None: every frame).

    Frames are counted in decode order, so variable frame rate and missing timestamps don't
    shift them; `size` = (width, height) rescales each frame as it is decoded.
    """
    path = Path(path)
    with open_video(path) as container:
        position = 0
        for number, frame in enumerate(_decode(container, path)):
            if wanted is not None:
                if position >= len(wanted):
                    break
                if number != wanted[position]:
                    continue
                position += 1
            if size is not None:
                frame = frame.reformat(width=size[0], height=size[1])
            yield number, frame.to_ndarray(format="rgb24")


def sample_indices(start: int, end: int, frames: int, sampling_rate: int = 0, *, train: bool = False,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """`frames` frame indices in [start, end] (inclusive): every `sampling_rate`-th frame of a window at a random
    offset (train) or centred (test); clips shorter than the window, and `sampling_rate` 0, spread the frames over
    the whole clip instead (centres of equal bins)."""
    length = end - start + 1
    span = (frames - 1) * sampling_rate + 1
    if sampling_rate <= 0 or length < span:
        return start + np.minimum(((np.arange(frames) + 0.5) * length / frames).astype(np.int64), length - 1)
    slack = length - span
    offset = int((rng or np.random.default_rng()).integers(0, slack + 1)) if train else slack // 2
    return start + offset + np.arange(frames, dtype=np.int64) * sampling_rate


def read_frames(path: str | os.PathLike, indices: np.ndarray) -> np.ndarray:
    """Decode the frames at the given 0-based indices (any order, repeats allowed) as uint8 (N, H, W, 3).

    Asking for a frame past the end is an error naming the file.
    """
    path = Path(path)
    indices = np.asarray(indices, dtype=np.int64)
    wanted = np.unique(indices)
    got = dict(iter_frames(path, wanted))
    missing = sorted(set(wanted.tolist()) - got.keys())
    if missing:
        raise VideoError(f"{path}: frame {missing[0]} requested but the video ends before it")
    return np.stack([got[int(i)] for i in indices]) if len(indices) else np.zeros((0, 0, 0, 3), np.uint8)


def encode_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int], *,
               crf: int = 23, codec: str = "libx264") -> int:
    """H.264 (yuv420p, preset ultrafast) mp4 of RGB frames (W, H = `size`); returns the frame count.

    One encoder thread: x264's output then depends only on the input, not on the machine's cores.
    """
    width, height = size
    count = 0
    with av.open(str(path), "w", format="mp4") as container:
        options = {"crf": str(crf), "preset": "ultrafast"} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            count += 1
        for packet in stream.encode():
            container.mux(packet)
    return count
