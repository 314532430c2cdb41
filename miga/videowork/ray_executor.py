"""Pose extraction on Ray: one task per video over a pool of actors, each keeping its pose model loaded.

`executor_of(pose_options)` reads `pose.executor` (`local` | `ray`) and `pose.ray`; for `ray` it
returns a `RayExecutor`, which `miga.pose.extract.extract_manifest` calls in place of the local
process pool (`miga.videowork.shards.run_shards`). What stays the same: the jobs (one per video), the
shards (`<shard_dir>/<video stem>.npz` + `.done`, written here, on the machine that runs the
stage, by the same `write_shard`), so a killed run resumes from the finished videos on either
executor, and the keypoints are the same bytes. What Ray does: places the actors on the
cluster's CPUs/GPUs (`cpus_per_worker`, `num_gpus`), restarts an actor that died and retries a
failed video (`retries`, Ray's own `max_task_retries` and `retry_exceptions`); this module only
hands a video to whichever actor is free (`ray.wait`) and writes each result as it comes back.

- `address: null` starts a local Ray instance in this process (`num_cpus`, all cores by default)
  and stops it at the end; a Ray already started in this process (`ray.init` before the call) is
  used as it is. `"auto"` joins the cluster this machine belongs to (`ray start` ran here);
  `"ray://head:10001"` connects a Ray Client. Joining a cluster ships this checkout's `miga`
  package to the workers (`runtime_env` `py_modules`); the other packages (mediapipe, mmpose)
  must be installed on every node, and the videos readable at the same absolute path (a shared
  file system) unless `ship_videos` sends each video's bytes through Ray's object store.
- A video that still fails after `retries` more tries is reported, with the others, in one
  error naming it once every other video is done; rerunning redoes only the failed ones.

Ray is imported only when a `RayExecutor` runs (`import miga.videowork.ray_executor` does not import it).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from miga.errors import ConfigError, MigaError, MissingExtraError
from miga.videowork.shards import Extractor, ShardJob, is_complete, loaded, remove_leftovers, write_shard

PIP_PACKAGE = "ray==2.60.0"
EXECUTORS = ("local", "ray")


class PoseJobsFailed(MigaError):
    """Videos whose extraction failed on every try (the others' shards are written)."""


def import_ray():
    """The `ray` module, or a MissingExtraError naming the package."""
    try:
        import ray
        import ray.exceptions  # noqa: F401
    except ImportError as err:
        raise MissingExtraError(
            f"pose.executor: ray needs Ray: pip install {PIP_PACKAGE} (pinned in requirements.lock; "
            f"or set pose.executor: local) ({err})"
        ) from err
    return ray


@dataclass(frozen=True)
class RayExecutor:
    """Runs shard jobs on Ray (see the module doc); a callable like `run_shards`, given the jobs to make."""

    address: str | None = None     # None: a local Ray started here; "auto" or "ray://host:port": join one
    num_cpus: int | None = None    # a local Ray's CPUs (None: all)
    workers: int | None = None     # actors; None: as many as the cluster's CPUs allow (cpus_per_worker each)
    cpus_per_worker: float = 1.0
    num_gpus: float = 0.0          # GPUs per actor (mmpose with device cuda; a fraction shares a GPU)
    retries: int = 2               # further tries of a failed video (and restarts of a dead actor per video)
    ship_videos: bool = False      # send video bytes through the object store (no shared file system)

    def __post_init__(self):
        if self.address is not None and not isinstance(self.address, str):
            raise ConfigError(f"pose.ray.address must be null, 'auto' or 'ray://host:port', not {self.address!r}")
        for name, low in (("num_cpus", 1), ("workers", 1)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < low):
                raise ConfigError(f"pose.ray.{name} must be null or an integer >= {low}, not {value!r}")
        if not self.cpus_per_worker > 0:
            raise ConfigError(f"pose.ray.cpus_per_worker must be > 0, not {self.cpus_per_worker!r}")
        if self.num_gpus < 0:
            raise ConfigError(f"pose.ray.num_gpus must be >= 0, not {self.num_gpus!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigError(f"pose.ray.retries must be an integer >= 0, not {self.retries!r}")

    def __call__(self, jobs: list[ShardJob], extractor: Extractor, *, key: str, progress: bool = True,
                 desc: str = "pose") -> list[ShardJob]:
        """Make every job's shard that is not complete yet; returns the jobs that were (re)done."""
        from tqdm.auto import tqdm

        todo = [job for job in jobs if not is_complete(job, key)]
        for job in todo:
            remove_leftovers(job)
        say = _printer(progress)
        if len(jobs) > len(todo):
            say(f"{desc}: {len(jobs) - len(todo)} of {len(jobs)} videos already done, {len(todo)} to go")
        if not todo:
            return []
        ray = import_ray()
        with self._connected(ray):
            workers = self._worker_count(ray, len(todo))
            say(f"{desc}: {len(todo)} videos on Ray ({workers} workers, {self.cpus_per_worker:g} CPU"
                + (f" + {self.num_gpus:g} GPU" if self.num_gpus else "") + " each)")
            bar = tqdm(total=int(sum(len(job.frames) for job in todo)), unit="frame", desc=desc, disable=not progress,
                       dynamic_ncols=True, smoothing=0.1)
            try:
                failed = self._run(ray, todo, extractor, key, workers, bar, desc, progress)
            finally:
                bar.close()
        if failed:
            raise PoseJobsFailed(
                f"{desc}: {len(failed)} of {len(todo)} videos failed after {self.retries + 1} tries (the other videos' "
                f"shards are written; rerun to retry these): " + "; ".join(f"{job.video}: {reason}" for job, reason in failed[:10])
                + (f"; and {len(failed) - 10} more (listed above)" if len(failed) > 10 else "")
            )
        return todo

    # ------------------------------------------------------------ internals

    @contextlib.contextmanager
    def _connected(self, ray):
        """Ray initialised for the duration (and shut down after, if started here)."""
        if ray.is_initialized():
            yield
            return
        import logging

        options = dict(logging_level=logging.WARNING, log_to_driver=True)
        if self.address is None:
            options.update(num_cpus=self.num_cpus, include_dashboard=False)
        else:
            import miga

            options.update(address=self.address, runtime_env={"py_modules": [miga]})
        ray.init(**options)
        try:
            yield
        finally:
            ray.shutdown()

    def _worker_count(self, ray, videos: int) -> int:
        if self.workers is not None:
            return min(self.workers, videos)
        resources = ray.cluster_resources()
        by_cpu = int(resources.get("CPU", 1) // self.cpus_per_worker)
        by_gpu = int(resources.get("GPU", 0) // self.num_gpus) if self.num_gpus else by_cpu
        return max(1, min(by_cpu, by_gpu, videos))

    def _run(self, ray, todo: list[ShardJob], extractor: Extractor, key: str, workers: int, bar, desc: str, progress: bool):
        say = (lambda line: bar.write(line, file=sys.stderr)) if progress else (lambda line: None)
        remote = ray.remote(PoseWorker).options(
            num_cpus=self.cpus_per_worker, num_gpus=self.num_gpus, max_restarts=-1, max_task_retries=self.retries,
        )
        actors = [remote.remote(extractor) for _ in range(workers)]  # by value (small): a restarted actor can rebuild
        idle, pending, running = deque(actors), deque(todo), {}
        failed, finished, started = [], 0, time.monotonic()
        try:
            while pending or running:
                while idle and pending:
                    actor, job = idle.popleft(), pending.popleft()
                    video = ray.put(Path(job.video).read_bytes()) if self.ship_videos else os.path.abspath(job.video)
                    ref = actor.extract.options(max_task_retries=self.retries, retry_exceptions=True).remote(
                        video, Path(job.video).name, job.frames)
                    running[ref] = (job, actor)
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    job, actor = running.pop(ref)
                    idle.append(actor)
                    try:
                        arrays, meta, info = ray.get(ref)
                    except ray.exceptions.RayError as err:  # the video's own error, or a worker lost for good
                        failed.append((job, _reason(err)))
                        say(f"{desc}: FAILED {job.video}: {_reason(err)}")
                        continue
                    write_shard(job, arrays, meta, key)
                    finished += 1
                    bar.update(len(job.frames))
                    say(f"{desc}: {finished}/{len(todo)} {Path(job.video).name}: {len(job.frames)} frames in "
                        f"{info['seconds']:.1f} s on {info['node']} (pid {info['pid']}); {time.monotonic() - started:.0f} s so far")
        finally:  # done, or an error / Ctrl-C here: the actors (and any video in flight) stop; finished shards stay
            for actor in actors:
                ray.kill(actor)
        return failed


def _reason(err: BaseException) -> str:
    """One line: the original exception of a Ray task error (type and message), or Ray's own."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        err = cause
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}"[:500]


def _printer(progress: bool):
    def say(line: str) -> None:
        if progress:
            print(line, file=sys.stderr, flush=True)
    return say


class PoseWorker:
    """A Ray actor's state: the extractor with its model loaded once (`miga.videowork.shards.loaded`), for many videos."""

    def __init__(self, extractor: Extractor):
        self._stack = contextlib.ExitStack()
        self._run = self._stack.enter_context(loaded(extractor))

    def extract(self, video, name: str, frames):
        """(arrays, meta, info) of one video: a path readable here, or its bytes (`ship_videos`)."""
        import ray

        start = time.monotonic()
        with contextlib.ExitStack() as scratch:
            if isinstance(video, bytes):
                folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="miga-video-"))
                path = Path(folder) / name
                path.write_bytes(video)
            else:
                path = Path(video)
            arrays, meta = self._run(path, frames, lambda n: None)
        info = {"seconds": time.monotonic() - start, "node": ray.util.get_node_ip_address(), "pid": os.getpid()}
        return arrays, meta, info


def executor_of(options: Mapping) -> RayExecutor | None:
    """`pose.executor` and `pose.ray` -> None (local processes, `<backend>.workers`) or a `RayExecutor`."""
    name = options["executor"]
    if name not in EXECUTORS:
        raise ConfigError(f"pose.executor must be one of {list(EXECUTORS)}, not {name!r}")
    if name == "local":
        return None
    settings = dict(options["ray"])
    known = set(RayExecutor.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"pose.ray: unknown keys {unknown}; known: {sorted(known)}")
    for name in ("cpus_per_worker", "num_gpus"):
        if name in settings:
            try:
                settings[name] = float(settings[name])
            except (TypeError, ValueError):
                raise ConfigError(f"pose.ray.{name} must be a number, not {settings[name]!r}") from None
    return RayExecutor(**settings)
