"""What `miga online` streams from: skeleton frames of an SMG `_skeleton.csv`, a stream-format CSV or a video (pose by
MediaPipe as each frame decodes), and writing each decided gesture as one JSON line."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from miga.datasets import smg, stream
from miga.errors import MigaError
from miga.layouts import convert
from miga.video import VIDEO_SUFFIXES


def keypoint_frames(source: Path, layout: str, *, mirror: bool = False) -> Iterator[np.ndarray]:
    """Frames (V, 3) of `source` in `layout`: an SMG `_skeleton.csv`, a stream-format CSV, or a video (MediaPipe)."""
    if source.suffix.lower() in VIDEO_SUFFIXES:
        from miga.pose.mediapipe_backend import stream_video

        for _, frame in stream_video(source, layout="openpose25_hands10", mirror=mirror):  # pose as each frame decodes
            yield convert(frame, "openpose25_hands10", layout)
        return
    if source.name.endswith("_skeleton.csv"):
        keypoints = smg.colour_keypoints(smg.read_skeleton(source))
        keypoints = convert(keypoints, smg.layout_of(), layout, mirror=mirror)
    elif source.suffix.lower() == ".csv":
        keypoints = stream.read_sequence(source, layout)
    else:
        raise MigaError(f"{source}: expected a skeleton CSV (SMG _skeleton.csv or stream format) or a video")
    yield from keypoints[0]


def stream_gestures(detector, frames: Iterator[np.ndarray], sink) -> float:
    """Push every frame through the online detector, writing each decided gesture to `sink` as a JSON line;
    returns the seconds spent reading frames (and running pose on video)."""
    source_seconds = 0.0
    while True:
        started = time.perf_counter()
        frame = next(frames, None)
        source_seconds += time.perf_counter() - started
        if frame is None:
            break
        for gesture in detector.push(frame):
            emit(sink, gesture)
    for gesture in detector.flush():
        emit(sink, gesture)
    return source_seconds


def emit(sink, gesture) -> None:
    """One decided gesture as a JSON line; a closed output is a MigaError, not a traceback."""
    try:
        sink.write(json.dumps(record(gesture)) + "\n")
        sink.flush()
    except BrokenPipeError:
        raise MigaError("online: the output was closed before the run ended") from None
    except ValueError as error:
        if "closed file" not in str(error):
            raise
        raise MigaError("online: the output was closed before the run ended") from None


def record(gesture) -> dict:
    return {"label": gesture.label, "start_frame": gesture.start_frame, "end_frame": gesture.end_frame,
            "score": round(gesture.score, 4), "decided_at_frame": gesture.decided_at, "delay_frames": gesture.delay}
