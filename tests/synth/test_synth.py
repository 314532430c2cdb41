"""The synthetic data generator: official layouts, readable by the real readers, deterministic, learnable."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from miga.synth.editions import PLACEHOLDER_CLASS
from miga.datasets import imigue, smg
from miga.layouts import KINECT25, OPENPOSE25_HANDS10
from miga.synth import generate_imigue, generate_smg, get_preset, plan_imigue, plan_smg
from miga.synth.body import ANCHORS
from miga.synth.frequencies import IMIGUE_TRAIN_COUNTS, SMG_TEST_COUNTS, sample_classes
from miga.synth.gestures import IMIGUE_CLASS_NAMES, IMIGUE_PROGRAMS, SMG_CLASS_NAMES
from miga.synth.imigue import subject_of as imigue_subject
from miga.synth.motion import animate
from miga.synth.sensors import Camera, openpose_keypoints
from miga.synth.smg import subject_of as smg_subject
from miga.video import read_frames

SEED = 11
TINY = get_preset("tiny")
SMG_SPLITS = {"val": (31, 35), "test": (36, 40)}


def _generate(root: Path, seed: int = SEED) -> Path:
    generate_imigue(root / "imigue", TINY.imigue, seed)
    generate_smg(root / "smg", TINY.smg, seed)
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory.mktemp("synth"))


def _csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _video_dirs(root: Path) -> list[Path]:
    return sorted(p for folder in imigue.SPLIT_FOLDERS.values() for p in (root / "imigue" / folder).iterdir())


def _decoded_frames(path: Path) -> tuple[int, tuple[int, int]]:
    with av.open(str(path)) as container:
        frames = [frame for frame in container.decode(video=0)]
    return len(frames), (frames[0].width, frames[0].height)


def test_class_names_match_the_readers():
    assert IMIGUE_CLASS_NAMES == imigue.CLASS_NAMES
    assert SMG_CLASS_NAMES == smg.CLASS_NAMES


def test_imigue_files_have_the_official_layout(tiny):
    dirs = _video_dirs(tiny)
    assert len(dirs) == sum(TINY.imigue.videos.values())
    for vdir in dirs:
        vid = vdir.name
        assert len(vid) == 4 and vid.isdigit()
        assert sorted(p.name for p in vdir.iterdir()) == [f"{vid}.mp4", f"{vid}_label.csv", f"{vid}_light_hand.csv"]
        skeleton = _csv_rows(vdir / f"{vid}_light_hand.csv")
        assert {len(row) for row in skeleton} == {1 + 3 * OPENPOSE25_HANDS10.num_joints} == {106}
        assert [int(row[0]) for row in skeleton] == list(range(len(skeleton)))
        assert all(len(cell.split(".")[1]) == 3 for cell in skeleton[0][1:])
        labels = np.array(_csv_rows(vdir / f"{vid}_label.csv"), dtype=int)
        placeholder = {PLACEHOLDER_CLASS} if vdir.parent.name.endswith("test") else set()  # test truth is kept aside
        assert set(labels[:, 0]) <= set(range(1, 32)) | {99} | placeholder
        assert (labels[:, 1] <= labels[:, 2]).all() and (labels[1:, 1] > labels[:-1, 2]).all()
        assert labels[-1, 2] < len(skeleton)


def test_imigue_confidences_look_like_openpose(tiny):
    vdir = _video_dirs(tiny)[0]
    keypoints = imigue.read_skeleton(vdir / f"{vdir.name}_light_hand.csv")
    lost = keypoints[..., 2] == 0
    assert (keypoints[lost] == 0).all()  # lost joints are written as 0,0,0
    assert ((keypoints[~lost][:, 2] >= 0.3) & (keypoints[~lost][:, 2] < 1)).all()
    assert 0 < lost.mean() < 0.5


def test_readers_accept_the_generated_releases(tiny):
    manifest = imigue.scan(tiny / "imigue")
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert (manifest["subject"] > 0).all()
    assert manifest["width"].to_list()[0] == TINY.imigue.size[0]
    keypoints = imigue.provided_keypoints(tiny / "imigue", manifest)
    assert len(keypoints) == manifest.height
    smg_manifest, segments = smg.scan(tiny / "smg", SMG_SPLITS)
    assert smg_manifest["sample_id"].to_list() == ["Sample0001", "Sample0031", "Sample0036"]
    assert smg_manifest["split"].to_list() == ["train", "val", "test"]
    assert segments.height > 0 and segments["label"].is_between(0, 16).all()
    # video paths are relative to the release root, so a manifest survives moving the data
    for root, frame in ((tiny / "imigue", manifest), (tiny / "smg", smg_manifest)):
        assert all(not Path(v).is_absolute() and (root / v).is_file() for v in frame["video"])


def test_every_imigue_video_decodes_to_its_skeleton_length(tiny):
    for vdir in _video_dirs(tiny):
        rows = len(_csv_rows(vdir / f"{vdir.name}_light_hand.csv"))
        assert _decoded_frames(vdir / f"{vdir.name}.mp4") == (rows, TINY.imigue.size)


def test_smg_files_have_the_official_layout(tiny):
    for sdir in sorted((tiny / "smg").glob("Sample*")):
        name = sdir.name
        skeleton = _csv_rows(sdir / f"{name}_skeleton.csv")
        assert {len(row) for row in skeleton} == {KINECT25.num_joints * 11} == {275}
        frames, fps, max_depth = smg.read_data_file(sdir / f"{name}_data.csv")
        assert frames == len(skeleton) and fps == 30 and 1000 < max_depth < 5000
        labels = np.array(_csv_rows(sdir / f"{name}_finelabels.csv"), dtype=int)
        assert ((labels[:, 0] >= 1) & (labels[:, 0] <= 17)).all() and (labels[:, 2] < frames).all()
        assert _decoded_frames(sdir / f"{name}_color.mp4") == (frames, TINY.smg.size)


def test_generation_is_deterministic(tiny, tmp_path):
    again = _generate(tmp_path / "again")
    files = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for name in files:  # mp4 too: one x264 thread makes the encoder deterministic
        assert (tiny / name).read_bytes() == (again / name).read_bytes(), name
    other = plan_smg(TINY.smg, SEED + 1)
    assert [p.instances for p in other] != [p.instances for p in plan_smg(TINY.smg, SEED)]


def test_subjects_are_disjoint_across_splits(tiny):
    subjects = {row[0]: int(row[1]) for row in _csv_rows(tiny / "imigue" / "video_subjects.csv")[1:]}
    by_split = {split: set() for split in imigue.SPLIT_FOLDERS}
    for split, folder in imigue.SPLIT_FOLDERS.items():
        for vdir in (tiny / "imigue" / folder).iterdir():
            by_split[split].add(subjects[vdir.name])
    assert all(by_split.values())
    assert sum(map(len, by_split.values())) == len(set.union(*by_split.values()))


def test_smg_colour_frame_is_mirrored_and_imigue_is_not(tiny):
    left, right = KINECT25.index("LShoulder"), KINECT25.index("RShoulder")
    for sdir in sorted((tiny / "smg").glob("Sample*")):
        keypoints = smg.colour_keypoints(smg.read_skeleton(sdir / f"{sdir.name}_skeleton.csv"))[0]
        tracked = (keypoints[:, left, 2] > 0) & (keypoints[:, right, 2] > 0)
        assert (keypoints[tracked, left, 0] < keypoints[tracked, right, 0]).all()  # Kinect's "left" on the image's left
    left, right = OPENPOSE25_HANDS10.index("LShoulder"), OPENPOSE25_HANDS10.index("RShoulder")
    vdir = _video_dirs(tiny)[0]
    keypoints = imigue.read_skeleton(vdir / f"{vdir.name}_light_hand.csv")
    tracked = (keypoints[:, left, 2] > 0) & (keypoints[:, right, 2] > 0)
    assert (keypoints[tracked, left, 0] > keypoints[tracked, right, 0]).all()  # facing the camera


def _shirt_share(video: Path, points: np.ndarray, shirt) -> float:
    """Share of frames whose pixel at `points` (T, 2) has the shirt's colour."""
    frames = read_frames(video, np.arange(len(points)))
    x = np.clip(np.round(points[:, 0]).astype(int), 0, frames.shape[2] - 1)
    y = np.clip(np.round(points[:, 1]).astype(int), 0, frames.shape[1] - 1)
    pixels = frames[np.arange(len(points)), y, x].astype(float)
    return float((np.abs(pixels - np.array(shirt)).sum(-1) < 60).mean())


def test_video_shows_the_body_where_the_keypoints_are(tiny):
    sdir = tiny / "smg" / "Sample0001"
    keypoints = smg.colour_keypoints(smg.read_skeleton(sdir / "Sample0001_skeleton.csv"))[0]
    spine = keypoints[:, KINECT25.index("SpineMid"), :2]
    assert _shirt_share(sdir / "Sample0001_color.mp4", spine, smg_subject(SEED, 1).colours["shirt"]) > 0.8
    vdir = _video_dirs(tiny)[0]
    keypoints = imigue.read_skeleton(vdir / f"{vdir.name}_light_hand.csv")
    neck, width = keypoints[:, 1, :2], np.abs(keypoints[:, 2, 0] - keypoints[:, 5, 0])
    chest = neck + np.stack([0 * width, 0.5 * width], -1)  # half a shoulder width below the neck: the shirt
    subject = int(dict(_csv_rows(tiny / "imigue" / "video_subjects.csv")[1:])[vdir.name])
    assert _shirt_share(vdir / f"{vdir.name}.mp4", chest, imigue_subject(SEED, subject).colours["shirt"]) > 0.8


def test_class_frequencies_are_long_tailed_and_tempered():
    rng = np.random.default_rng(0)
    counts = np.bincount(sample_classes(rng, IMIGUE_TRAIN_COUNTS, 20000, power=0.5), minlength=32)
    assert np.argmax(counts) == 31 and counts.max() > 20 * counts.min() > 0
    assert counts.max() / counts.min() < max(IMIGUE_TRAIN_COUNTS) / min(IMIGUE_TRAIN_COUNTS)
    smg_counts = np.bincount(sample_classes(rng, SMG_TEST_COUNTS, 20000, power=0.5), minlength=17)
    assert (smg_counts > 0).all() and np.argmax(smg_counts) == 8
    train = {
        preset: Counter(i.label for p in plan_imigue(get_preset(preset).imigue, SEED) if p.split == "train" for i in p.instances)
        for preset in ("tiny", "default")
    }
    assert set(train["tiny"]) == set(train["default"]) == set(range(32))  # the tail exists in train
    assert max(train["default"].values()) >= 10 * min(train["default"].values())


def _hand_height_at_midpoint(labels: list[int]) -> dict[int, list[float]]:
    """Height of the acting wrist above the neck, in shoulder widths, at each gesture's midpoint."""
    config = replace(TINY.imigue, videos={"train": 4, "val": 1, "test": 1}, clips_per_video=(8, 8), power=0.0)
    out: dict[int, list[float]] = {}
    cycle = iter(labels * 10)
    for plan in plan_imigue(config, SEED):
        rng = np.random.default_rng(plan.number)
        subject = imigue_subject(SEED, plan.subject_id)
        instances = [replace(i, label=next(cycle)) for i in plan.instances]
        body = animate(subject, instances, plan.num_frames, config.fps, IMIGUE_PROGRAMS, rng)
        keypoints = openpose_keypoints(body, Camera(640, 360, 600.0, (0.0, -0.35, 2.4)), subject, rng)  # lap in view
        for inst in instances:
            frame = keypoints[(inst.start + inst.end) // 2]
            wrist = frame[OPENPOSE25_HANDS10.index(f"{inst.side.upper()}Wrist")]
            width = abs(frame[2, 0] - frame[5, 0])
            if wrist[2] > 0 and frame[1, 2] > 0:
                out.setdefault(inst.label, []).append((frame[1, 1] - wrist[1]) / width)
    return out


def test_anchor_groups_are_separable_in_pose():
    head = [c for c, p in enumerate(IMIGUE_PROGRAMS) if p.active and ANCHORS.get(p.active.anchor, ("",))[0] == "head"]
    low = [c for c, p in enumerate(IMIGUE_PROGRAMS) if p.active and p.active.anchor in ("waist", "lap_inner", "belly")]
    heights = _hand_height_at_midpoint(head + low)
    above = np.concatenate([heights[c] for c in head if c in heights])
    below = np.concatenate([heights[c] for c in low if c in heights])
    assert above.mean() > 0 > below.mean()  # hands at the head are above the neck, in the lap below it
    assert above.mean() - below.mean() > 1.0


def test_stage_replaces_the_dataset_only_when_complete(tmp_path, monkeypatch):
    from miga.synth import project as synth_project
    from stages.cli import app

    params = tmp_path / "params.yaml"
    roots = {"imigue_root": str(tmp_path / "raw/imigue"), "smg_root": str(tmp_path / "raw/smg")}
    params.write_text(yaml.safe_dump({"synth": {"preset": "tiny", "seed": 1, "smg_edition": "organisers", **roots}}))
    stale = tmp_path / "raw/smg/stale.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("from an older run")
    result = CliRunner().invoke(app, ["synth", "--params", str(params)])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and (tmp_path / "raw/smg/Sample0001/Sample0001_color.mp4").exists()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["imigue", "smg"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "raw/smg").rglob("*"))
    monkeypatch.setattr(synth_project, "generate_smg", interrupted)
    result = CliRunner().invoke(app, ["synth", "--params", str(params)])
    assert result.exit_code != 0
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "raw/smg").rglob("*")) == before
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["imigue", "smg"]  # no half-written folder left


# ---------------------------------------------------------------- the real-size presets (issue 27)


def test_real_size_presets_match_the_real_datasets():
    full = get_preset("full")
    videos = plan_imigue(full.imigue, 2024)
    sequences = plan_smg(full.smg, 2024)
    clips, frames = sum(len(v.instances) for v in videos), sum(v.num_frames for v in videos)
    assert len(videos) == 359 and abs(clips - 18_498) < 0.02 * 18_498 and abs(frames - 3.0e6) < 0.05 * 3.0e6
    assert len(sequences) == 40 and abs(sum(s.num_frames for s in sequences) - 0.85e6) < 0.05 * 0.85e6
    assert abs(sum(len(s.instances) for s in sequences) - 3_120) < 0.1 * 3_120  # ~78 per sequence, as the real labels
    quarter = plan_imigue(get_preset("quarter").imigue, 2024)
    assert abs(len(quarter) - 359 / 4) <= 1
    assert full.imigue.rendered_videos == {"train": 16, "val": 4, "test": 4} and not full.smg.render


def test_unrendered_videos_keep_every_other_file(tmp_path):
    config = replace(get_preset("tiny").imigue, rendered_videos={"train": 1, "val": 0, "test": 1})
    generate_imigue(tmp_path / "some", config, seed=5)
    generate_imigue(tmp_path / "all", get_preset("tiny").imigue, seed=5)
    with_video = sorted(p.parent.name for p in (tmp_path / "some").rglob("*.mp4"))
    assert len(with_video) == 2
    for path in (tmp_path / "all").rglob("*.csv"):
        assert (tmp_path / "some" / path.relative_to(tmp_path / "all")).read_bytes() == path.read_bytes(), path


def test_imigue_scan_with_many_clips_without_video_before_one_with_video(tmp_path):
    """Real size found it: the manifest's video column was typed from the first 100 clips (all without video)."""
    config = replace(get_preset("tiny").imigue, videos={"train": 3, "val": 1, "test": 1}, clips_per_video=(60, 60),
                     clip_frames=(4, 6), gap_frames=(0, 0))
    generate_imigue(tmp_path, config, seed=1, edition="2023")
    train = sorted((tmp_path / "imigue_skeleton_train").iterdir())
    for folder in train[:-1]:
        (folder / f"{folder.name}.mp4").unlink()
    with pytest.warns(UserWarning, match="no video"):
        manifest = imigue.scan(tmp_path)
    last = manifest.filter(manifest["sample_id"].str.starts_with(train[-1].name))
    assert manifest.height == 300 and last["video"].null_count() == 0 and last.height == 60
