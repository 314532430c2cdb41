"""Pose frames/s on Ray (`pose.executor: ray`) at 1 and 2 workers against the local executor, in one run.

The whole MediaPipe backend (`mediapipe_backend`: jobs, shards, assembly; holistic, the default)
over the same videos, each configuration into a fresh shard folder:

  - local, workers=1: in this process;  local, workers=2: two spawned worker processes;
  - ray, 1 and 2 workers: actors on a local Ray of --num-cpus CPUs started once beforehand (its
    start is timed apart; actor start-up, the model load, is inside each run as the local
    processes' start is inside theirs).

The videos are --copies copies of the NTU RGB+D clip (1920x1080, 103 frames) re-encoded to --size
under --work (as `benchmarks/pose.py` does for its workers lines), so the figures line up with
BENCHMARKS.md "Pose extraction". Every configuration must give the same keypoints (checked).

    python -m benchmarks.pose_ray                       # 8 x 640x480 copies, ~3 min on 2 cores
    python -m benchmarks.pose_ray --copies 4 --size 320x240
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.pose import NTU_VIDEO, resized_copy
from miga.pose import mediapipe_backend as mb
from miga.videowork.ray_executor import RayExecutor, import_ray
from miga.video import probe_video


def _videos(work: Path, size: tuple[int, int], copies: int) -> tuple[Path, list[str], int]:
    base = resized_copy(NTU_VIDEO, size, work / f"ntu_{size[0]}x{size[1]}.mp4")
    root = work / f"ray_{size[0]}x{size[1]}"
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(copies):
        target = root / f"copy{k}.mp4"
        if not target.exists():
            shutil.copyfile(base, target)
        names.append(target.name)
    return root, names, probe_video(base).num_frames


def _manifest(names: list[str], frames: int) -> pl.DataFrame:
    return pl.DataFrame({"sample_id": [Path(n).stem for n in names], "video": names,
                         "start_frame": [0] * len(names), "end_frame": [frames - 1] * len(names)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "miga-bench-pose")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count())
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    root, names, frames = _videos(args.work, size, args.copies)
    manifest = _manifest(names, frames)
    total = frames * len(names)
    print(f"# {platform.machine()}, {os.cpu_count()} cores; mediapipe holistic; {len(names)} x {root.name} "
          f"({frames} frames each, {total} in all); load average before: {os.getloadavg()[0]:.2f}")

    results = {}

    def run(label: str, **options) -> None:
        shards = Path(tempfile.mkdtemp(prefix="miga-bench-shards-", dir=args.work))
        start = time.perf_counter()
        result = mb.mediapipe_backend("bench", root, manifest, shard_dir=shards, progress=False, **options)
        seconds = time.perf_counter() - start
        shutil.rmtree(shards)
        results[label] = result
        print(f"{label:<22} {seconds:7.1f} s  {total / seconds:6.1f} frames/s   (load average {os.getloadavg()[0]:.2f})", flush=True)

    run("local, workers=1", workers=1)
    run("local, workers=2", workers=2)
    ray = import_ray()
    start = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, logging_level=logging.WARNING)
    print(f"(local Ray of {args.num_cpus} CPUs started in {time.perf_counter() - start:.1f} s; not counted below)")
    try:
        run("ray, 1 worker", executor=RayExecutor(workers=1))
        run("ray, 2 workers", executor=RayExecutor(workers=2))
    finally:
        ray.shutdown()
    reference = results["local, workers=1"].keypoints
    for label, result in results.items():
        same = all(np.array_equal(result.keypoints[sid][1], kp) for sid, (_, kp) in reference.items())
        assert same, f"{label}: keypoints differ from the local executor's"
    print("keypoints: identical in every configuration")


if __name__ == "__main__":
    main()
