"""Pose extraction on Ray (`pose.executor: ray`): the local executor's keypoints, resumable after a kill, failures named.

The pose stage runs MediaPipe Holistic (installed, real) on a few short videos: real recordings
with a person in them where ../shared/realdata is present (BIISC clips), else the synthetic
square videos of tests/conftest.py. The in-process runs share one local Ray of 2 CPUs
(`ray_session`); the killed run is a `python -m stages.pose` subprocess that starts its own
(`pose.ray.address: null`), killed with SIGKILL (it and its Ray processes) mid-run.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from miga.errors import ConfigError, MissingExtraError
from miga.params import defaults
from miga.videowork import ray_executor as rx
from miga.videowork import shards as sh
from tests.conftest import REALDATA, write_test_video

REPO = Path(__file__).resolve().parents[2]
BIISC = REALDATA / "video" / "biisc_dev"
REAL = ("S001_M_CALL_STD_LFT", "S007_M_WAVE_STD_RGT", "S010_F_DRIN_STD_LFT", "S013_F_SCRA_STD_RGT", "S016_F_STRE_STD_LFT")
CLIPS = ((0, 14), (20, 29))  # two clips per video with a gap between them (the graph is reset there)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, list[str]]:
    """(raw root, video file names): real people where the recordings are available, synthetic squares otherwise."""
    if BIISC.is_dir():
        return BIISC, [f"{name}.avi" for name in REAL]
    root = tmp_path_factory.mktemp("videos")
    for k in range(len(REAL)):
        write_test_video(root / f"v{k}.mp4", 32, size=(96, 64))
    return root, [f"v{k}.mp4" for k in range(len(REAL))]


def _project(root: Path, raw: Path, names: list[str], pose: dict) -> Path:
    """A project folder for the pose stage: params.yaml (dataset `clips` at `raw`) and its manifest."""
    (root / "data/interim/clips").mkdir(parents=True)
    params = {"datasets": {"clips": {"format": "imigue", "root": str(raw)}},
              "pose": {"backend": "mediapipe", "mediapipe": {"model": "holistic", "workers": 1}, **pose}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    rows = [dict(sample_id=f"{Path(name).stem}_{k}", dataset="clips", split="train", subject=0, video=name, video_start=0,
                 start_frame=start, end_frame=end, label=0, fps=10.0, width=0, height=0)
            for name in names for k, (start, end) in enumerate(CLIPS)]
    pl.DataFrame(rows).write_parquet(root / "data/interim/clips/manifest.parquet")
    return root


def _ray_pose(**ray) -> dict:
    return {"executor": "ray", "ray": {"address": None, "num_cpus": 2, "workers": 2, "retries": 1, **ray}}


def _stage(project: Path, monkeypatch) -> None:
    from stages.pose import app

    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["--dataset", "clips", "--params", "params.yaml"])
    assert result.exit_code == 0, result.output


def _shards(project: Path) -> Path:
    return project / "data/cache/pose/clips"


@pytest.fixture(scope="module")
def ray_session():
    ray = rx.import_ray()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(videos, tmp_path_factory) -> bytes:
    """keypoints.parquet written by the local executor."""
    raw, names = videos
    project = _project(tmp_path_factory.mktemp("local"), raw, names, {"executor": "local"})
    with pytest.MonkeyPatch.context() as monkeypatch:
        _stage(project, monkeypatch)
    return (project / "data/interim/clips/keypoints.parquet").read_bytes()


def test_ray_executor_writes_the_local_executors_keypoints(videos, reference, ray_session, tmp_path, monkeypatch):
    from miga.io import KeypointStore

    raw, names = videos
    project = _project(tmp_path, raw, names, _ray_pose())
    _stage(project, monkeypatch)
    written = project / "data/interim/clips/keypoints.parquet"
    assert written.read_bytes() == reference
    assert sorted(p.stem for p in _shards(project).glob("*.done")) == sorted(Path(n).stem for n in names)
    store = KeypointStore(written)
    if raw == BIISC:  # real people: the comparison covers real keypoints, not all-zero frames
        assert all((store[f"{Path(n).stem}_0"][..., 2] > 0).any() for n in names)


def test_killed_ray_run_resumes_with_only_the_missing_videos(videos, reference, ray_session, tmp_path, monkeypatch):
    """SIGKILL to the stage and its own local Ray after the first finished video; the rerun redoes only the others."""
    raw, names = videos
    project = _project(tmp_path, raw, names, _ray_pose())
    shard_dir = _shards(project)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "stages.pose", "--dataset", "clips", "--params", "params.yaml"],
                               cwd=project, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list(shard_dir.glob("*.done")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, process.stderr.read().decode()
        assert list(shard_dir.glob("*.done")), "no video finished within 120 s"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the stage and the Ray it started (same session)
        process.wait()
        process.stderr.close()
    key = _key()
    jobs = sh.make_jobs({raw / n: _frames() for n in names}, shard_dir)
    finished = {job.video.name: job.shard.stat().st_mtime_ns for job in jobs if sh.is_complete(job, key)}
    assert 1 <= len(finished) < len(names), finished  # killed mid-run
    time.sleep(0.01)

    # rerun (through the object store this time, as on workers without the shared file system)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["pose"]["ray"]["ship_videos"] = True
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    _stage(project, monkeypatch)
    for job in jobs:
        assert sh.is_complete(job, key)
        if job.video.name in finished:
            assert job.shard.stat().st_mtime_ns == finished[job.video.name], f"{job.video.name} was redone"
        else:
            assert job.shard.stat().st_mtime_ns > max(finished.values())
    assert (project / "data/interim/clips/keypoints.parquet").read_bytes() == reference


def _key() -> str:
    from miga.pose.mediapipe_backend import MediapipeSettings

    return MediapipeSettings("holistic").key()


def _frames() -> np.ndarray:
    return np.unique(np.concatenate([np.arange(start, end + 1) for start, end in CLIPS]))


class FlakyExtractor:
    """Fails on `bad` always and on `flaky` the first time; counts tries in `log` (a folder every worker sees)."""

    def __init__(self, log: Path, bad: str, flaky: str):
        self.log, self.bad, self.flaky = log, bad, flaky

    def __call__(self, video, frames, progress):
        tries = self.log / f"{Path(video).stem}.tries"
        count = int(tries.read_text()) + 1 if tries.exists() else 1
        tries.write_text(str(count))
        if Path(video).name == self.bad or (Path(video).name == self.flaky and count == 1):
            raise RuntimeError(f"cannot read {Path(video).name}")
        return {"frames": np.asarray(frames), "raw": np.zeros((len(frames), 2, 3), np.float32)}, {"tries": count}


def test_a_failing_video_is_retried_then_named_and_the_others_are_written(ray_session, tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers need not import tests/
    videos = {tmp_path / f"v{k}.mp4": range(3) for k in range(4)}
    for video in videos:
        video.touch()
    jobs = sh.make_jobs(videos, tmp_path / "shards")
    extractor = FlakyExtractor(tmp_path, bad="v1.mp4", flaky="v2.mp4")
    executor = rx.RayExecutor(workers=2, retries=2)
    with pytest.raises(rx.PoseJobsFailed) as failure:
        executor(jobs, extractor, key="k", progress=False)
    message = str(failure.value)
    assert "1 of 4 videos failed after 3 tries" in message and str(tmp_path / "v1.mp4") in message
    assert "RuntimeError: cannot read v1.mp4" in message and "\n" not in message
    assert {p.name: p.read_text() for p in tmp_path.glob("*.tries")} == {"v0.tries": "1", "v1.tries": "3", "v2.tries": "2", "v3.tries": "1"}
    assert [sh.is_complete(job, "k") for job in jobs] == [True, False, True, True]
    assert sh.read_shard(jobs[2], "k")[1] == {"tries": 2}
    # a rerun tries only the failed video again
    assert executor(jobs, FlakyExtractor(tmp_path, bad="none", flaky="none"), key="k", progress=False) == [jobs[1]]
    assert (tmp_path / "v1.tries").read_text() == "4" and (tmp_path / "v0.tries").read_text() == "1"


def test_stage_names_an_unreadable_video_in_one_line(ray_session, tmp_path, monkeypatch):
    from stages.pose import app

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "broken.mp4").write_bytes(b"not a video")
    project = _project(tmp_path / "project", raw, ["broken.mp4"], _ray_pose(retries=0))
    monkeypatch.chdir(project)
    result = CliRunner().invoke(app, ["--dataset", "clips", "--params", "params.yaml"])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "1 of 1 videos failed after 1 tries" in errors[0] and "broken.mp4" in errors[0], result.output


def test_executor_params_and_a_missing_ray(monkeypatch):
    pose = defaults("pose")
    ray = lambda **settings: pose | {"executor": "ray", "ray": pose["ray"] | settings}  # noqa: E731
    assert rx.executor_of(pose) is None and rx.executor_of(pose | {"executor": "local"}) is None
    executor = rx.executor_of(ray(address="auto", workers=4, num_gpus=0.5, cpus_per_worker=2))
    assert executor == rx.RayExecutor(address="auto", workers=4, num_gpus=0.5, cpus_per_worker=2.0)
    with pytest.raises(ConfigError, match="pose.executor must be one of"):
        rx.executor_of(pose | {"executor": "dask"})
    with pytest.raises(ConfigError, match="unknown keys \\['gpus'\\]"):
        rx.executor_of(ray(gpus=1))
    with pytest.raises(ConfigError, match="pose.ray.retries"):
        rx.executor_of(ray(retries=-1))
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match="pip install ray=="):
        rx.import_ray()


def test_importing_the_ray_executor_does_not_import_ray():
    code = "import sys, miga.videowork.ray_executor, stages.pose; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_mmpose_rtmpose_through_the_stage_on_both_executors(ray_session, tmp_path, monkeypatch):
    """An RTMPose-t config (untrained weights saved by the test as its checkpoint) on the local and the Ray executor."""
    from miga.pose import mmpose_backend as mm
    from tests.pose.test_pose_mmpose import RTMPOSE_T, require_mmpose

    require_mmpose()
    import torch

    config = tmp_path / "rtmpose_t.py"
    config.write_text("".join(f"{name} = {value!r}\n" for name, value in RTMPOSE_T.items()))
    torch.manual_seed(0)
    model = mm.MmposeSettings(str(config)).build()
    torch.save({"state_dict": model.state_dict()}, tmp_path / "rtmpose_t.pth")
    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(3):
        write_test_video(raw / f"m{k}.mp4", 32, size=(96, 64))
    mmpose = {"config": str(config), "checkpoint": str(tmp_path / "rtmpose_t.pth"), "device": "cpu"}
    written = []
    for name, executor in (("local", {"executor": "local"}), ("ray", _ray_pose())):
        project = _project(tmp_path / name, raw, [f"m{k}.mp4" for k in range(3)],
                           {"backend": "mmpose", "mmpose": mmpose, **executor})
        _stage(project, monkeypatch)
        written.append((project / "data/interim/clips/keypoints.parquet").read_bytes())
    assert written[0] == written[1]
