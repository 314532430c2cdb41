"""`miga online`: streaming Track 2 over one skeleton CSV or video, gestures printed as JSON lines when decided."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import typer

from miga.datasets import smg, stream
from miga.errors import MigaError
from miga.io import atomic_path
from miga.layouts import convert
from miga.track2.online import build_online, emitted_table
from miga.video import VIDEO_SUFFIXES
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, load_params



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
        raise typer.BadParameter(f"{source}: expected a skeleton CSV (SMG _skeleton.csv or stream format) or a video")
    yield from keypoints[0]


@clean_errors
def main(
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="Skeleton CSV (SMG _skeleton.csv or stream format) or a video."),
    params: Path = PARAMS_OPTION,
    out: Path | None = typer.Option(None, help="Write the JSON lines here (default: stdout)."),
    csv: Path | None = typer.Option(None, help="Also write the detections as a table (sample_id, label, start_frame, end_frame, score)."),
    window: int = typer.Option(512, min=1, help="Frames the detector sees (the newest ones): the longest gesture plus track2.recipe.past_context."),
    hop: int = typer.Option(16, min=1, help="Run the detector every `hop` frames."),
    guard: int = typer.Option(16, min=0, help="A gesture is decided once it ended this many frames before the newest frame."),
    mirror: bool | None = typer.Option(None, help="Mirror left/right (Kinect-style input); default: the training dataset's `mirror`."),
) -> None:
    """Detect micro-gestures frame by frame, printing each as soon as it is decided, then latency and delay figures."""
    config = load_params(params)
    for name, target in (("--out", out), ("--csv", csv)):
        if target is not None and target.resolve() == source.resolve():
            raise typer.BadParameter(f"{name} {target} is the source itself; write the results elsewhere")
    detector, layout = build_online(config, window=window, hop=hop, guard=guard)
    if mirror is None:
        mirror = bool(dataset_entry(config, config["track2"]["dataset"])["mirror"])
    frames = keypoint_frames(source, layout, mirror=mirror)
    if out:
        with atomic_path(out) as tmp, tmp.open("w") as sink:  # an existing --out is replaced only by a finished run
            source_seconds = _stream(detector, frames, sink)
    else:
        source_seconds = _stream(detector, frames, sys.stdout)
    stats = detector.stats
    if csv:
        with atomic_path(csv) as tmp:
            emitted_table(source.stem, detector.emitted).write_csv(tmp)
    delays = np.array(stats.delays) if stats.delays else np.zeros(1)
    source_ms = 1000 * source_seconds / max(stats.frames, 1)
    typer.echo(f"online: {stats.frames} frames, {len(detector.emitted)} gestures, detector {stats.ms_per_frame:.2f} ms/frame "
               f"({1000 / max(stats.ms_per_frame, 1e-9):.0f} fps possible), reading + pose {source_ms:.2f} ms/frame, "
               f"decision delay mean {delays.mean():.1f} / max {delays.max():.0f} frames", err=True)


def _stream(detector, frames: Iterator[np.ndarray], sink) -> float:
    """Push every frame through the detector, writing each decided gesture to `sink`; returns the seconds spent reading."""
    source_seconds = 0.0
    while True:
        started = time.perf_counter()
        frame = next(frames, None)
        source_seconds += time.perf_counter() - started
        if frame is None:
            break
        for gesture in detector.push(frame):
            _emit(sink, gesture)
    for gesture in detector.flush():
        _emit(sink, gesture)
    return source_seconds


def _emit(sink, gesture) -> None:
    try:
        sink.write(json.dumps(_record(gesture)) + "\n")
        sink.flush()
    except BrokenPipeError:
        raise MigaError("online: the output was closed before the run ended") from None
    except ValueError as error:
        if "closed file" not in str(error):
            raise
        raise MigaError("online: the output was closed before the run ended") from None


def _record(gesture) -> dict:
    return {"label": gesture.label, "start_frame": gesture.start_frame, "end_frame": gesture.end_frame,
            "score": round(gesture.score, 4), "decided_at_frame": gesture.decided_at, "delay_frames": gesture.delay}


if __name__ == "__main__":
    typer.run(main)
