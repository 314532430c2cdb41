import collections

import numpy as np
import polars as pl
import pytest

from miga.datasets import DatasetFormatError, imigue, smg
from miga.datasets.entry import default_entry
from miga.datasets.safe_pickle import load_name_label_pickle
from tests.conftest import write_test_video


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _skeleton_rows(frames, value=1.0):
    return "".join(",".join([str(f)] + [f"{value + f:.3f}"] * 105) + "\n" for f in frames)


def _imigue_root(tmp_path, *, header=False, frames=range(10), labels="3,0,4\n99,5,9\n"):
    vdir = tmp_path / "imigue_skeleton_train" / "0004"
    _write(vdir / "0004_label.csv", labels)
    head = ",".join(["frame"] + [f"j{i}" for i in range(105)]) + "\n" if header else ""
    _write(vdir / "0004_light_hand.csv", head + _skeleton_rows(frames))
    return tmp_path


def test_imigue_label_mapping():
    assert imigue.raw_to_label(np.array([1, 31, 99])).tolist() == [0, 30, 31]
    assert imigue.label_to_raw(np.array([0, 30, 31])).tolist() == [1, 31, 99]


@pytest.mark.parametrize("header", [False, True])
def test_imigue_scan_and_provided_keypoints(tmp_path, header):
    root = _imigue_root(tmp_path, header=header)
    manifest = imigue.scan(root)
    assert manifest["sample_id"].to_list() == ["0004_0", "0004_1"]
    assert manifest["label"].to_list() == [2, 31]
    assert manifest["split"].to_list() == ["train", "train"]
    kp = imigue.provided_keypoints(root, manifest)
    start, clip = kp["0004_1"]
    assert start == 5 and clip.shape == (1, 5, 35, 3)
    assert clip[0, 0, 0, 0] == pytest.approx(6.0)  # frame 5's value
    assert clip.base is None  # its own memory: a view would hold the whole interview (issue 27: 2.6 GB at full size)


def test_imigue_missing_frames_get_score_zero(tmp_path):
    root = _imigue_root(tmp_path, frames=[0, 1, 2, 6, 7, 8, 9])
    kp = imigue.provided_keypoints(root, imigue.scan(root))
    _, clip = kp["0004_0"]
    assert (clip[0, 3:5, :, 2] == 0).all() and (clip[0, :3, :, 2] > 0).all()


def test_imigue_empty_skeleton_file_gives_untracked_frames(tmp_path):
    root = _imigue_root(tmp_path, frames=[])
    kp = imigue.provided_keypoints(root, imigue.scan(root))
    assert (kp["0004_1"][1][..., 2] == 0).all()


@pytest.mark.parametrize(
    "labels, message",
    [("40,0,4\n", "row 1: class 40 is out of range"), ("3,5,2\n", "row 1: frames 5..2"), ("3,0\n", "row 1 has 2 columns"),
     ("3,0,4\n3,x,5\n", "row 2, column 2")],
)
def test_imigue_bad_label_files_name_file_and_row(tmp_path, labels, message):
    root = _imigue_root(tmp_path, labels=labels)
    with pytest.raises(DatasetFormatError, match=message) as info:
        imigue.scan(root)
    assert "0004_label.csv" in str(info.value)


def test_imigue_wrong_skeleton_column_count(tmp_path):
    root = _imigue_root(tmp_path)
    _write(root / "imigue_skeleton_train/0004/0004_light_hand.csv", "0,1,2,3\n")
    with pytest.raises(DatasetFormatError, match="0004_light_hand.csv: row 1 has 4 columns, expected 106"):
        imigue.provided_keypoints(root, imigue.scan(root))


def test_imigue_video_gives_fps_and_size_and_bounds_labels(tmp_path):
    root = _imigue_root(tmp_path)
    write_test_video(root / "imigue_skeleton_train/0004/0004.mp4", frames=12)
    manifest = imigue.scan(root)
    assert manifest["width"].to_list() == [64, 64] and manifest["fps"][0] == pytest.approx(25)
    write_test_video(root / "imigue_skeleton_train/0004/0004.mp4", frames=8)
    with pytest.warns(UserWarning, match="1 clips end past the video's last frame"):
        manifest = imigue.scan(root)
    assert manifest["end_frame"].to_list() == [4, 7]  # cut at the video's last frame, not silently kept
    write_test_video(root / "imigue_skeleton_train/0004/0004.mp4", frames=5)
    with pytest.warns(UserWarning, match="1 start past it"):
        assert imigue.scan(root)["sample_id"].to_list() == ["0004_0"]


def _smg_root(tmp_path, frames=20, labels="3,2,8\n17,10,15\n", sample="Sample0036"):
    sdir = tmp_path / sample
    rows = []
    for f in range(frames):
        values = []
        for j in range(25):
            values += [0.1 * j, 0.2, 2.0, 1, 0, 0, 0, 100 + j + f, 50 + j, 0, 0]
        rows.append(",".join(f"{v:g}" for v in values))
    _write(sdir / f"{sample}_skeleton.csv", "\n".join(rows) + "\n")
    _write(sdir / f"{sample}_data.csv", f"{frames},30,4000\n")
    _write(sdir / f"{sample}_finelabels.csv", labels)
    return tmp_path


def test_smg_scan_splits_segments_and_keypoints(tmp_path):
    root = _smg_root(tmp_path)
    _smg_root(tmp_path, sample="Sample0002")
    manifest, segments = smg.scan(root, {"val": [31, 35], "test": [36, 40]})
    assert dict(zip(manifest["sample_id"], manifest["split"])) == {"Sample0002": "train", "Sample0036": "test"}
    assert manifest["end_frame"].to_list() == [19, 19]
    assert segments.filter(pl.col("sample_id") == "Sample0036")["label"].to_list() == [2, 16]
    kp = smg.provided_keypoints(root, manifest)["Sample0036"][1]
    assert kp.shape == (1, 20, 25, 3)
    assert kp[0, 4, 3].tolist() == [107.0, 53.0, 1.0]


def test_smg_bad_files(tmp_path):
    root = _smg_root(tmp_path, labels="18,0,3\n")
    with pytest.raises(DatasetFormatError, match="Sample0036_finelabels.csv: row 1: class 18"):
        smg.scan(root, {})
    root = _smg_root(tmp_path, labels="1,0,30\n")
    with pytest.raises(DatasetFormatError, match="past the sequence's 20 frames"):
        smg.scan(root, {})
    root = _smg_root(tmp_path)
    _write(root / "Sample0036/Sample0036_skeleton.csv", "1,2,3\n")
    manifest, _ = smg.scan(root, {})
    with pytest.raises(DatasetFormatError, match="Sample0036_skeleton.csv: row 1 has 3 columns, expected 275"):
        smg.provided_keypoints(root, manifest)


def test_real_label_lists_through_the_safe_reader(realdata):
    names, labels = load_name_label_pickle(realdata / "labels/imigue_train_label.pkl")
    counts = collections.Counter(labels)
    assert len(names) == 13670 and len(counts) == 32
    assert counts[31] / len(labels) == pytest.approx(0.294, abs=5e-4)
    names, labels = load_name_label_pickle(realdata / "labels/smg_test_label.pkl")
    assert len(labels) == 610 and len(set(labels)) == 15


def test_safe_pickle_refuses_objects(tmp_path):
    import pickle

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps((["a"], [collections.OrderedDict()])))
    with pytest.raises(DatasetFormatError, match="refusing"):
        load_name_label_pickle(path)


def test_stream_format_round_trip(tmp_path):
    from miga.datasets import stream

    rng = np.random.default_rng(0)
    seqs = {"a": rng.random((30, 20, 3)).astype(np.float32), "b": rng.random((12, 20, 3)).astype(np.float32)}
    stream.write(tmp_path, layout="kinect20", fps=15, classes=["x", "y"], sequences=seqs,
                 samples=pl.DataFrame({"sample_id": ["a", "b"], "subject": [1, 2], "split": ["train", "test"]}),
                 segments=pl.DataFrame({"sample_id": ["a", "b"], "label": [1, 0], "start_frame": [3, 0], "end_frame": [9, 11]}))
    manifest, segments = stream.scan(tmp_path)
    assert manifest["end_frame"].to_list() == [29, 11] and segments.height == 2
    kp = stream.provided_keypoints(tmp_path, manifest)
    np.testing.assert_allclose(kp["a"][1][0], seqs["a"], rtol=1e-5)
    (tmp_path / "segments.csv").write_text("sample_id,label,start_frame,end_frame\nb,0,0,12\n")
    with pytest.raises(DatasetFormatError, match="outside its sequence"):
        stream.scan(tmp_path)


def test_utkinect_labels_refer_to_frame_ids(tmp_path):
    from miga.datasets import stream, utkinect

    src = tmp_path / "src"
    src.mkdir()
    ids = [10, 12, 12, 13, 15, 17, 20]  # skips and a repeat
    rows = [" ".join([str(i)] + ["0.5"] * 60) for i in ids]
    (src / "joints_s01_e01.txt").write_text("\n".join(rows) + "\n")
    (src / "actionLabel.txt").write_text("s01_e01\nwalk: 12 15\ncarry:  NaN NaN\nclapHands: 16 30\n")
    utkinect.convert(src, tmp_path / "out", label_file="actionLabel.txt")
    manifest, segments = stream.scan(tmp_path / "out")
    assert manifest["end_frame"].to_list() == [5]  # 6 distinct ids
    assert segments.select("label", "start_frame", "end_frame").rows() == [(0, 1, 3), (9, 4, 5)]


def test_real_utkinect_sequences_convert(realdata, tmp_path):
    from miga.datasets import stream, utkinect

    utkinect.convert(realdata / "sequences/utkinect", tmp_path)
    manifest, segments = stream.scan(tmp_path)
    assert manifest.height == 20 and set(manifest["split"]) == {"train", "val", "test"}
    assert segments.height >= 190 and segments["label"].n_unique() == 10


def _ground_guide_recording(root, name, labels):
    from miga.datasets import ground_guide

    rows = [",".join([f"images/{name}/frame_{i:04d}.jpg", str(c)] + [f"{0.01 * i:.2f}"] * 16) for i, c in enumerate(labels)]
    _write(root / name / "gesture_data.csv", ",".join(ground_guide.COLUMNS) + "\n" + "\n".join(rows) + "\n")


def test_ground_guide_recordings_become_continuous_sequences(tmp_path):
    from miga.datasets import ground_guide, stream

    standby = ground_guide.BACKGROUND
    for name, labels in (("ann_stop_001", [3] * 5), ("ann_stop_002", [3] * 4), ("ann_kill_001", [9] * 6),
                         ("ann_standby_left_001", [standby] * 3 + [5] * 4 + [standby] * 2), ("bob_ready_001", [1] * 7)):
        _ground_guide_recording(tmp_path / "src", name, labels)
    ground_guide.convert_stream(tmp_path / "src", tmp_path / "out")
    manifest, segments = stream.scan(tmp_path / "out")
    assert dict(manifest.select("sample_id", "subject").iter_rows()) == {"ann_joined": 1, "ann_standby_left_001": 1, "bob_joined": 2}
    runs = {sid: rows.sort("start_frame").select("label", "start_frame", "end_frame").rows()
            for (sid,), rows in segments.group_by("sample_id")}
    # one-class recordings joined; a class comes back only after the others: stop, kill, then the second stop
    assert runs["ann_joined"] == [(3, 0, 4), (9, 5, 10), (3, 11, 14)]
    assert runs["ann_standby_left_001"] == [(5, 3, 6)]  # standby is background, not a segment
    assert runs["bob_joined"] == [(1, 0, 6)]
    assert len(stream.read_meta(tmp_path / "out")["classes"]) == 10


def test_real_ground_guide_converts_to_sequences(realdata, tmp_path):
    from miga.datasets import ground_guide, stream

    ground_guide.convert_stream(realdata / "sequences/ground_guide", tmp_path)
    manifest, segments = stream.scan(tmp_path)
    assert manifest.height == 12 and manifest["subject"].n_unique() == 5
    assert segments.height >= 70 and segments["label"].n_unique() == 10


def test_imigue_2023_arrays(tmp_path):
    import pickle

    rng = np.random.default_rng(0)
    data = rng.random((3, 3, 90, 22, 1)).astype(np.float32)
    np.save(tmp_path / "train_data.npy", data)
    (tmp_path / "train_label.pkl").write_bytes(pickle.dumps((["0001_0", "0001_1", "0002_0"], [0, 31, 5])))
    names, labels, kp = imigue.read_2023_arrays(tmp_path / "train_data.npy", tmp_path / "train_label.pkl")
    assert names[1] == "0001_1" and labels.tolist() == [0, 31, 5]
    assert kp.shape == (3, 1, 90, 22, 3)
    np.testing.assert_array_equal(kp[2, 0, 7, 4], data[2, :, 7, 4, 0])
    np.save(tmp_path / "bad.npy", data[:, :2])
    with pytest.raises(DatasetFormatError, match="expected shape"):
        imigue.read_2023_arrays(tmp_path / "bad.npy", tmp_path / "train_label.pkl")


def test_biisc_clips_become_an_imigue_release_split_by_person(tmp_path):
    from miga.datasets import biisc, imigue
    from tests.conftest import write_test_video

    source = tmp_path / "biisc"
    source.mkdir()
    for person in (1, 7, 8, 9, 10, 11):
        for action, frames in (("WAVE", 6), ("SCRA", 9)):
            write_test_video(source / f"S{person:03d}_M_{action}_STD_LFT.mp4", frames)
    counts = biisc.convert(source, tmp_path / "release", fold=1, folds=3)
    assert counts == {"train": 4, "val": 4, "test": 4}

    assert imigue.scan(tmp_path / "release").filter(pl.col("split") == "test")["label"].null_count() == 4  # placeholder rule
    manifest = imigue.scan(tmp_path / "release", entry=default_entry() | {"test_labels": "real"})  # as the converter's note says
    assert manifest.height == 12
    by_subject = {s: set(g["split"]) for (s,), g in manifest.group_by(["subject"])}
    assert by_subject == {1: {"train"}, 7: {"train"}, 8: {"test"}, 9: {"test"}, 10: {"val"}, 11: {"val"}}
    waves = manifest.filter(pl.col("label") == biisc.ACTIONS.index("WAVE"))
    assert waves.height == 6 and set(waves["end_frame"]) == {5} and set(waves["start_frame"]) == {0}
    assert set(manifest.filter(pl.col("label") == biisc.ACTIONS.index("SCRA"))["end_frame"]) == {8}
    assert (tmp_path / "release/classes.csv").read_text().splitlines()[1].startswith("0,answer a phone call,")

    with pytest.raises(DatasetFormatError, match="not a BIISC clip name"):
        biisc.parse_name("S001_M_JUMP_STD_LFT")
    with pytest.raises(DatasetFormatError, match="folds must be in 2..6"):
        biisc.convert(source, tmp_path / "other", folds=7)
