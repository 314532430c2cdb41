"""`miga online`: streaming Track 2 over one skeleton CSV or video, gestures printed as JSON lines when decided."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import typer

from miga.io import atomic_path
from miga.track2.online import build_online, emitted_table
from miga.track2.sources import keypoint_frames, stream_gestures
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, load_params


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
            source_seconds = stream_gestures(detector, frames, sink)
    else:
        source_seconds = stream_gestures(detector, frames, sys.stdout)
    stats = detector.stats
    if csv:
        with atomic_path(csv) as tmp:
            emitted_table(source.stem, detector.emitted).write_csv(tmp)
    delays = np.array(stats.delays) if stats.delays else np.zeros(1)
    source_ms = 1000 * source_seconds / max(stats.frames, 1)
    typer.echo(f"online: {stats.frames} frames, {len(detector.emitted)} gestures, detector {stats.ms_per_frame:.2f} ms/frame "
               f"({1000 / max(stats.ms_per_frame, 1e-9):.0f} fps possible), reading + pose {source_ms:.2f} ms/frame, "
               f"decision delay mean {delays.mean():.1f} / max {delays.max():.0f} frames", err=True)


if __name__ == "__main__":
    typer.run(main)
