"""What every video pose backend shares: manifest clips -> per-video frames -> resumable shards -> layouts.

A video backend supplies a shard extractor (see `miga.videowork.shards`) that returns, per video,
`{"frames": (F,) int64, "raw": (F, K, 3) float32}` (its own K points: pixel x, y, score) and a
metadata dict, plus a function from raw points to the requested layout. `extract_manifest` does
the rest: which frames each video needs (the union of its clips' inclusive ranges), the shards
(a rerun skips finished videos), the cut per sample and the provenance (`PoseResult.source`).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from miga.videowork.shards import Extractor, ShardJob, make_jobs, read_shard, run_shards
from miga.video import VideoError

# makes the shards of the jobs that are not complete (miga.videowork.ray_executor.RayExecutor); None = run_shards here
Executor = Callable[..., list[ShardJob]]

# per-video metadata copied from the shards into PoseResult.source["videos"]
NOTE_KEYS = ("frames", "frames_with_person", "subject")


def points_to_openpose(raw: np.ndarray, table: Mapping[str, int | tuple[int, int] | None]) -> np.ndarray:
    """A model's raw points `(..., K, 3)` -> `(..., 35, 3)` openpose25_hands10 float32.

    `table` gives, per OpenPose joint name, the raw point's index, a pair whose midpoint it is
    (found only when both are), or None (the model lacks it). Missing joints are all zero.
    """
    from miga.layouts import OPENPOSE25_HANDS10

    raw = np.where(raw[..., 2:3] > 0, raw, 0).astype(np.float32)
    out = np.zeros(raw.shape[:-2] + (OPENPOSE25_HANDS10.num_joints, 3), np.float32)
    for name, source in table.items():
        j = OPENPOSE25_HANDS10.index(name)
        if isinstance(source, tuple):
            a, b = raw[..., source[0], :], raw[..., source[1], :]
            both = (a[..., 2] > 0) & (b[..., 2] > 0)
            out[..., j, :2] = np.where(both[..., None], (a[..., :2] + b[..., :2]) / 2, 0)
            out[..., j, 2] = np.where(both, np.minimum(a[..., 2], b[..., 2]), 0)
        elif source is not None:
            out[..., j, :] = raw[..., source, :]
    return out


def video_frames(raw_root: Path, manifest: pl.DataFrame, what: str = "a video pose backend") -> tuple[dict[Path, np.ndarray], list[tuple[str, Path, int, int, int]]]:
    """(frames each video must decode, [(sample_id, video, first, last frame in the video, video_start)])."""
    needed = {"sample_id", "video", "start_frame", "end_frame"}
    if needed - set(manifest.columns):
        raise ValueError(f"manifest lacks columns {sorted(needed - set(manifest.columns))} for {what}")
    rows = manifest.select(sorted(needed)).to_dicts()
    offsets = manifest["video_start"].to_list() if "video_start" in manifest.columns else [0] * len(rows)
    no_video = [r["sample_id"] for r in rows if not r["video"]]
    if no_video:
        raise VideoError(
            f"{what} needs a video for every sample; {len(no_video)} have none "
            f"(first: {no_video[:3]})"
        )
    samples, ranges = [], {}
    for r, offset in zip(rows, offsets):
        offset = int(offset or 0)
        start, end = int(r["start_frame"]) - offset, int(r["end_frame"]) - offset
        if start < 0 or end < start:
            raise ValueError(f"sample {r['sample_id']}: bad frame range [{start}, {end}]")
        path = Path(r["video"]) if Path(r["video"]).is_absolute() else Path(raw_root) / r["video"]
        samples.append((r["sample_id"], path, start, end, offset))
        ranges.setdefault(path, []).append(np.arange(start, end + 1, dtype=np.int64))
    missing = sorted({str(p) for p in ranges if not p.is_file()})
    if missing:
        raise VideoError(f"{len(missing)} manifest videos not found, e.g. {missing[0]}")
    return {p: np.unique(np.concatenate(r)) for p, r in ranges.items()}, samples


def extract_manifest(
    raw_root: str | os.PathLike,
    manifest: pl.DataFrame,
    extractor: Extractor,
    *,
    key: str,
    to_layout: Callable[[np.ndarray], np.ndarray],
    layout: str,
    workers: int = 1,
    shard_dir: str | os.PathLike | None = None,
    progress: bool = True,
    desc: str = "pose",
    what: str = "a video pose backend",
    source: Mapping | None = None,
    executor: Executor | None = None,
):
    """Run `extractor` over the manifest's videos -> `PoseResult(layout, {sample_id: (start, (1, T, V, 3))})`.

    Shards go to `shard_dir` (kept, so a rerun resumes); without one, to a temporary folder
    removed at the end. `to_layout` maps raw points `(T, K, 3)` to `(T, V, 3)` in `layout`.
    `executor` makes the missing shards instead of local worker processes (`workers`): a callable
    `(jobs, extractor, *, key, progress, desc)`, e.g. `miga.videowork.ray_executor.RayExecutor`; the
    shards, and so the keypoints, are the same whichever makes them.
    """
    from miga.pose import PoseResult

    raw_root = Path(raw_root)
    videos, samples = video_frames(raw_root, manifest, what)
    by_video: dict[Path, list[tuple[str, int, int, int]]] = {}
    for sample_id, path, start, end, offset in samples:
        by_video.setdefault(path, []).append((sample_id, start, end, offset))
    keypoints, notes = {}, {}
    with tempfile.TemporaryDirectory(prefix="miga-pose-") as scratch:
        jobs = make_jobs(videos, shard_dir if shard_dir is not None else scratch)
        if executor is None:
            run_shards(jobs, extractor, key=key, workers=int(workers), progress=progress, desc=desc)
        else:
            executor(jobs, extractor, key=key, progress=progress, desc=desc)
        for job in jobs:  # one video at a time: a whole dataset's raw points need not fit in memory
            frames, raw, meta = load_shard(job, key)
            notes[_relative(job.video, raw_root)] = {k: meta[k] for k in NOTE_KEYS if k in meta}
            for sample_id, start, end, offset in by_video[job.video]:
                index = np.searchsorted(frames, np.arange(start, end + 1))
                keypoints[sample_id] = (start + offset, to_layout(raw[index])[None])
    return PoseResult(layout, {sample_id: keypoints[sample_id] for sample_id, *_ in samples},
                      {**(source or {}), "videos": notes})


def _relative(video: Path, root: Path) -> str:
    try:
        return Path(video).relative_to(root).as_posix()
    except ValueError:
        return str(video)


def load_shard(job: ShardJob, key: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """A finished shard's (frames, raw points, metadata); warns about requested frames past the video's end."""
    shard = read_shard(job, key)
    if shard is None:
        raise RuntimeError(f"{job.shard}: shard incomplete after extraction")
    arrays, meta = shard
    if meta.get("missing_frames"):
        warnings.warn(
            f"{job.video}: {meta['missing_frames']} requested frames are past the end of the video "
            f"(from frame {meta['first_missing_frame']}); their keypoints have score 0",
            stacklevel=3,
        )
    return arrays["frames"], arrays["raw"], meta
