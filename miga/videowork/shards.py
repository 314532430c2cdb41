"""Per-video shards for long pose extractions: resumable, atomic, spread over worker processes.

Each video's result goes to `<shard_dir>/<video stem>.npz` (`np.savez`, read back with
`allow_pickle=False`), written through a temporary file and renamed into place; then a marker
`<video stem>.done` is written, last. The marker records what made the shard (the extractor's
settings key and a digest of the frame indices asked for) and the shard's size and SHA-256.
A shard is complete only when its marker exists, matches the current job and the file it
describes, and the file loads: a rerun skips complete shards and redoes everything else, so
a run killed at any point (mid-video, mid-write, between the shard and its marker) resumes
without ever reading a partial shard as complete.

An extractor is a picklable callable `(video, frames, progress) -> (arrays, meta)`: `frames`
the sorted 0-based frame indices to process, `progress(n)` to be called as frames are done,
`arrays` a dict of NumPy arrays (no object arrays) and `meta` a JSON-serializable dict. It may
also have a method `loaded()`: a context manager giving a callable of the same signature that
keeps the model loaded across videos with the same results (`loaded(extractor)`; a Ray actor
holds one for its lifetime, see `miga.videowork.ray_executor`).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import queue as queue_module
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miga.io import atomic_path

META_KEY = "__meta__"  # the JSON metadata rides in the .npz as a 0-d unicode array

Progress = Callable[[int], None]
Extractor = Callable[[Path, np.ndarray, Progress], tuple[dict[str, np.ndarray], dict]]


@dataclass(frozen=True)
class ShardJob:
    video: Path           # the video file
    frames: np.ndarray    # sorted unique 0-based frame indices to process
    shard: Path           # <shard_dir>/<video stem>.npz

    @property
    def done(self) -> Path:
        return done_path(self.shard)


def shard_path(shard_dir: str | os.PathLike, video: str | os.PathLike) -> Path:
    return Path(shard_dir) / f"{Path(video).stem}.npz"


def done_path(shard: str | os.PathLike) -> Path:
    return Path(shard).with_suffix(".done")


def frames_digest(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames, dtype=np.int64).tobytes()).hexdigest()


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_jobs(videos: Mapping[str | os.PathLike, Iterable[int]], shard_dir: str | os.PathLike) -> list[ShardJob]:
    """One job per video (path -> the frame indices it needs); two videos may not share a stem."""
    jobs, seen = [], {}
    for video, frames in videos.items():
        video = Path(video)
        shard = shard_path(shard_dir, video)
        if shard in seen:
            raise ValueError(f"videos {seen[shard]} and {video} would share the shard {shard}: rename one")
        seen[shard] = video
        frames = np.unique(np.asarray(list(frames), dtype=np.int64))
        if len(frames) and frames[0] < 0:
            raise ValueError(f"{video}: negative frame index {frames[0]}")
        jobs.append(ShardJob(video, frames, shard))
    return jobs


def write_shard(job: ShardJob, arrays: Mapping[str, np.ndarray], meta: Mapping, key: str) -> None:
    """Write the shard atomically, then its marker; an old marker is removed first."""
    job.done.unlink(missing_ok=True)
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    if META_KEY in payload:
        raise ValueError(f"array name {META_KEY!r} is reserved")
    for name, value in payload.items():
        if value.dtype == object:
            raise ValueError(f"{job.shard}: array {name!r} has dtype object (not loadable without pickle)")
    payload[META_KEY] = np.array(json.dumps(dict(meta), sort_keys=True))
    with atomic_path(job.shard) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **payload)
            handle.flush()
            os.fsync(handle.fileno())
    marker = {
        "key": key,
        "frames_sha256": frames_digest(job.frames),
        "video": str(job.video),
        "bytes": job.shard.stat().st_size,
        "sha256": _file_digest(job.shard),
    }
    with atomic_path(job.done) as tmp:
        tmp.write_text(json.dumps(marker, sort_keys=True) + "\n")


def read_shard(job: ShardJob, key: str) -> tuple[dict[str, np.ndarray], dict] | None:
    """The shard's arrays and metadata if it is complete for this job and key, else None."""
    try:
        marker = json.loads(job.done.read_text())
        if (
            marker.get("key") != key
            or marker.get("frames_sha256") != frames_digest(job.frames)
            or marker.get("bytes") != job.shard.stat().st_size
            or marker.get("sha256") != _file_digest(job.shard)
        ):
            return None
        with np.load(job.shard, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        meta = json.loads(str(arrays.pop(META_KEY)))
    except (OSError, ValueError, KeyError, EOFError, TypeError, AttributeError):
        # no marker, unreadable marker or shard, truncated zip, missing metadata: not complete
        return None
    return arrays, meta


def is_complete(job: ShardJob, key: str) -> bool:
    return read_shard(job, key) is not None


def loaded(extractor: Extractor) -> contextlib.AbstractContextManager[Extractor]:
    """The extractor with its model kept loaded across calls (its `loaded()`), or itself where it has none."""
    opener = getattr(extractor, "loaded", None)
    return opener() if callable(opener) else contextlib.nullcontext(extractor)


# ---------------------------------------------------------------- running

_progress_queue = None


def _init_worker(progress_queue) -> None:
    global _progress_queue
    _progress_queue = progress_queue


def _run_job(extractor: Extractor, job: ShardJob, key: str) -> tuple[ShardJob, int, float]:
    """Worker side: extract one video and write its shard; progress goes to the queue in batches."""
    pending = 0
    last = time.monotonic()

    def progress(n: int) -> None:
        nonlocal pending, last
        pending += n
        now = time.monotonic()
        if _progress_queue is not None and (now - last > 0.25 or pending >= 256):
            _progress_queue.put(pending)
            pending, last = 0, now

    start = time.monotonic()
    arrays, meta = extractor(job.video, job.frames, progress)
    write_shard(job, arrays, meta, key)
    if _progress_queue is not None and pending:
        _progress_queue.put(pending)
    return job, len(job.frames), time.monotonic() - start


def run_shards(
    jobs: list[ShardJob],
    extractor: Extractor,
    *,
    key: str,
    workers: int = 1,
    progress: bool = True,
    desc: str = "pose",
    on_done: Callable[[ShardJob], None] | None = None,
    start_method: str = "spawn",
) -> list[ShardJob]:
    """Make every job's shard that is not complete yet; returns the jobs that were (re)done.

    `workers` <= 1 runs in this process; more start that many worker processes (`start_method`
    spawn by default: safe with the threads that pose libraries start). `on_done(job)` is called
    in this process after each shard is written. The progress bar counts frames (frames/s).
    """
    from tqdm.auto import tqdm

    todo = [job for job in jobs if not is_complete(job, key)]
    for job in todo:
        remove_leftovers(job)
    skipped = len(jobs) - len(todo)
    total = int(sum(len(job.frames) for job in todo))
    bar = tqdm(total=total, unit="frame", desc=desc, disable=not progress or not todo, dynamic_ncols=True, smoothing=0.1)
    if skipped and progress:
        bar.write(f"{desc}: {skipped} of {len(jobs)} videos already done, {len(todo)} to go")
    try:
        if workers <= 1 or len(todo) <= 1:
            for job in todo:
                arrays, meta = extractor(job.video, job.frames, bar.update)
                write_shard(job, arrays, meta, key)
                if on_done is not None:
                    on_done(job)
        else:
            _run_pool(todo, extractor, key, workers, start_method, bar, on_done)
    finally:
        bar.close()
    return todo


def remove_leftovers(job: ShardJob) -> None:
    """Temporary files of an earlier run killed mid-write (see `atomic_path`), and a stale marker."""
    job.done.unlink(missing_ok=True)
    for name in (job.shard.name, job.done.name):
        for tmp in job.shard.parent.glob(f".{name}.*"):
            tmp.unlink(missing_ok=True)


def _run_pool(todo, extractor, key, workers, start_method, bar, on_done) -> None:
    context = multiprocessing.get_context(start_method)
    progress_queue = context.Queue()
    executor = ProcessPoolExecutor(
        max_workers=min(workers, len(todo)), mp_context=context, initializer=_init_worker, initargs=(progress_queue,)
    )
    ok = False
    try:
        pending = {executor.submit(_run_job, extractor, job, key) for job in todo}
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _drain(progress_queue, bar)
            for future in done:
                job, _, _ = future.result()  # re-raises a worker's error
                if on_done is not None:
                    on_done(job)
        _drain(progress_queue, bar)
        ok = True
    finally:
        if not ok:  # an error or Ctrl-C: stop the workers now; finished shards stay, the rest is redone next time
            for process in list((getattr(executor, "_processes", None) or {}).values()):
                process.terminate()
        executor.shutdown(wait=ok, cancel_futures=not ok)
        progress_queue.close()


def _drain(progress_queue, bar) -> None:
    while True:
        try:
            bar.update(progress_queue.get_nowait())
        except queue_module.Empty:
            return
