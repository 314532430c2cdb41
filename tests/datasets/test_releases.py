"""Every release layout the readers accept (miga.datasets.imigue_tree / smg_tree), from tiny generated trees."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from miga.datasets import DatasetFormatError, imigue, smg
from miga.datasets.entry import default_entry
from miga.datasets.openpose_xlsx import read_openpose_xlsx, write_openpose_xlsx
from miga.layouts import OPENPOSE137, convert
from miga.track1.rgb import extract_crops
from miga.synth import generate_imigue, generate_smg
from miga.synth.editions import IMIGUE_EDITIONS, IMIGUE_TRUTH, SMG_EDITIONS, SMG_TRUTH

SEED = 11
SPLITS = {"val": [31, 35], "test": [36, 40]}


@pytest.fixture(scope="module")
def imigue_trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("imigue")
    return {edition: _generated(generate_imigue, base / edition, edition) for edition in IMIGUE_EDITIONS}


@pytest.fixture(scope="module")
def smg_trees(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("smg")
    return {edition: _generated(generate_smg, base / edition, edition) for edition in SMG_EDITIONS}


def _generated(generate, root: Path, edition: str) -> Path:
    generate(root, "tiny", SEED, edition=edition)
    return root


def _truth(root: Path, name: str) -> dict:
    """A dataset entry (the schema's defaults) naming the release's real test labels when it ships them."""
    return default_entry() | ({"test_truth": str(root / name)} if (root / name).exists() else {})


def _imigue_manifest(root: Path, **entry) -> pl.DataFrame:
    return imigue.scan(root, entry={**_truth(root, IMIGUE_TRUTH), **entry})


def test_every_imigue_edition_ingests_to_the_same_manifest(imigue_trees):
    reference = _imigue_manifest(imigue_trees["2023"])
    assert reference["label"].null_count() == 0 and set(reference["split"]) == {"train", "val", "test"}
    for edition, root in imigue_trees.items():
        manifest = _imigue_manifest(root)
        assert manifest["video"].null_count() == 0, edition
        assert manifest.drop("video", "video_start").equals(reference.drop("video", "video_start")), edition


def test_editions_are_told_apart(imigue_trees, smg_trees):
    names = {edition: imigue.release_tree(root).edition for edition, root in imigue_trees.items()}
    assert names["2023"].startswith("2023") and names["2024"].startswith("2024") and names["full"].startswith("full")
    assert names["2025"].startswith("2025 Kaggle") and names["2025_precut"].endswith("pre-cut clip videos")
    assert smg.release_tree(smg_trees["kaggle2024"]).edition.startswith("2024 Kaggle")
    assert smg.release_tree(smg_trees["organisers"]).edition.startswith("organisers")


def test_a_release_without_videos_is_not_named_after_an_edition(imigue_trees, tmp_path):
    import shutil

    shutil.copytree(imigue_trees["2023"], tmp_path / "release", ignore=shutil.ignore_patterns("*.mp4", "*.avi"))
    assert imigue.release_tree(tmp_path / "release").edition == "labels and skeletons only (no videos)"


def test_imigue_provided_keypoints_agree_across_editions(imigue_trees):
    reference_root = imigue_trees["2023"]
    reference = imigue.provided_keypoints(reference_root, _imigue_manifest(reference_root))
    root = imigue_trees["2025"]
    keypoints = imigue.provided_keypoints(root, _imigue_manifest(root))
    assert keypoints.keys() == reference.keys()
    for sample_id, (start, array) in reference.items():
        assert keypoints[sample_id][0] == start and np.array_equal(keypoints[sample_id][1], array)


def test_precut_clips_point_into_their_own_videos(imigue_trees):
    whole = _imigue_manifest(imigue_trees["2025"])
    cut = _imigue_manifest(imigue_trees["2025_precut"])
    train = cut.filter(pl.col("split") == "train")
    assert (train["video_start"] == train["start_frame"]).all()
    assert all(v.endswith(f"{sid}.mp4") for sid, v in train.select("sample_id", "video").iter_rows())
    ids = train["sample_id"].head(3).to_list()
    boxes = {sid: np.full((1, 2, 35, 3), 1.0, np.float32) for sid in ids}  # no usable joints: centre crops
    crops = [extract_crops(m.filter(pl.col("sample_id").is_in(ids)), boxes, frames=4, size=16, padding=0.2, root=r)
             for m, r in ((whole, imigue_trees["2025"]), (cut, imigue_trees["2025_precut"]))]
    for sid in ids:  # the same frames, re-encoded once more: close, not equal
        difference = np.abs(crops[0][sid].astype(int) - crops[1][sid].astype(int)).mean()
        assert difference < 6, (sid, difference)


def test_test_labels_are_placeholders_unless_truth_or_real(imigue_trees):
    root = imigue_trees["2025"]
    bare = imigue.scan(root)
    assert bare.filter(pl.col("split") == "test")["label"].null_count() == bare.filter(pl.col("split") == "test").height
    assert bare.filter(pl.col("split") != "test")["label"].null_count() == 0
    with pytest.raises(DatasetFormatError, match="class 0 is out of range"):
        imigue.scan(root, entry=default_entry() | {"test_labels": "real"})  # trusted placeholders are caught, not learned


def test_separate_skeleton_and_video_roots(imigue_trees, tmp_path):
    root = tmp_path / "skeletons"
    shutil.copytree(imigue_trees["2025"], root)
    videos = tmp_path / "elsewhere"
    shutil.move(root / "imigue_rgb_phase1", videos / "imigue_rgb_phase1")
    shutil.move(root / "imigue_rgb_phase2", videos / "imigue_rgb_phase2")
    with pytest.warns(UserWarning, match="have no video"):
        assert _imigue_manifest(root)["video"].null_count() > 0
    with pytest.raises(DatasetFormatError, match="video_root"):
        imigue.scan(root, entry=_truth(root, IMIGUE_TRUTH), require_video=True)
    manifest = _imigue_manifest(root, video_root=str(videos))
    reference = _imigue_manifest(imigue_trees["2025"])
    assert manifest["video"].null_count() == 0 and all(os.path.isabs(v) for v in manifest["video"])
    assert manifest.drop("video").equals(reference.drop("video"))


def test_a_video_found_twice_is_an_error(imigue_trees, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(imigue_trees["2023"], root)
    video = sorted(root.glob("imigue_skeleton_train/*/*.mp4"))[0]
    shutil.copy(video, root / video.name)
    with pytest.raises(DatasetFormatError, match="found twice"):
        imigue.scan(root)


def test_label_header_needs_every_cell_non_numeric(tmp_path):
    folder = tmp_path / "imigue_skeleton_train" / "0001"
    folder.mkdir(parents=True)
    (folder / "0001_label.csv").write_text("class,start_frame,end_frame\n3,0,5\n")
    assert imigue.read_labels(folder / "0001_label.csv").tolist() == [[2, 0, 5]]
    (folder / "0001_label.csv").write_text("3,x,5\n4,6,9\n")
    with pytest.raises(DatasetFormatError, match="row 1, column 2: 'x'"):
        imigue.read_labels(folder / "0001_label.csv")


def test_openpose_workbook_is_a_keypoint_source(imigue_trees, tmp_path):
    root = tmp_path / "release"
    shutil.copytree(imigue_trees["2023"], root)
    manifest = _imigue_manifest(root)
    light = imigue.provided_keypoints(root, manifest)
    rng = np.random.default_rng(0)
    for folder in root.glob("imigue_skeleton_*/*"):
        body_and_tips = imigue.read_skeleton(folder / f"{folder.name}_light_hand.csv")
        points = rng.uniform(1, 50, (len(body_and_tips), OPENPOSE137.num_joints, 3)).astype(np.float32)
        points[:, :25] = body_and_tips[:, :25]
        for k, tip in enumerate((4, 8, 12, 16, 20)):  # fingertips of the 21-point hands: left 95-115, right 116-136
            points[:, 95 + tip] = body_and_tips[:, 25 + k]
            points[:, 116 + tip] = body_and_tips[:, 30 + k]
        write_openpose_xlsx(folder / f"{folder.name}_openpose.xlsx", np.round(points, 3))
    entry = {**_truth(root, IMIGUE_TRUTH), "skeleton": "openpose_xlsx"}
    assert imigue.layout_of(root, entry) == "openpose137"
    rich = imigue.provided_keypoints(root, manifest, entry)
    for sample_id, (start, array) in light.items():
        assert rich[sample_id][0] == start and rich[sample_id][1].shape[2] == 137
        as_light = convert(rich[sample_id][1], "openpose137", "openpose25_hands10")
        np.testing.assert_allclose(as_light, array, atol=1e-3)


def test_openpose_workbook_with_wrong_width_names_the_file(tmp_path):
    path = tmp_path / "0001_openpose.xlsx"
    write_openpose_xlsx(path, np.zeros((3, 20, 3)))
    with pytest.raises(DatasetFormatError, match="0001_openpose.xlsx: 60 columns, expected 411"):
        read_openpose_xlsx(path)


def test_smg_editions_ingest_to_the_same_tables(smg_trees):
    tables = {e: smg.scan(r, SPLITS, entry=_truth(r, SMG_TRUTH)) for e, r in smg_trees.items()}
    (m0, s0), (m1, s1) = tables["organisers"], tables["kaggle2024"]
    assert m0["split"].to_list() == ["train", "val", "test"] and s0.height > 0
    assert m1.drop("video").equals(m0.drop("video")) and s1.equals(s0)
    keypoints = [smg.provided_keypoints(smg_trees[e], tables[e][0]) for e in ("organisers", "kaggle2024")]
    assert all(np.array_equal(keypoints[0][k][1], keypoints[1][k][1]) for k in keypoints[0])


def test_smg_kaggle_split_comes_from_the_folders(smg_trees):
    manifest, _ = smg.scan(smg_trees["kaggle2024"], {}, entry=_truth(smg_trees["kaggle2024"], SMG_TRUTH))
    assert manifest["split"].to_list() == ["train", "val", "test"]  # not all train, as sample numbers alone would say


def test_smg_labelled_split_without_finelabels_is_an_error(smg_trees, tmp_path):
    root = tmp_path / "smg"
    shutil.copytree(smg_trees["kaggle2024"], root)
    next(root.glob("smg_data_phase1/smg_skeleton_train/*/*_finelabels.csv")).unlink()
    with pytest.raises(DatasetFormatError, match="no Sample0001_finelabels.csv in the train split"):
        smg.scan(root, SPLITS)


def test_smg_unlabelled_test_split_warns(smg_trees):
    with pytest.warns(UserWarning, match="1 SMG test sequences have no finelabels"):
        manifest, segments = smg.scan(smg_trees["kaggle2024"], SPLITS)
    assert "Sample0036" in manifest["sample_id"].to_list() and "Sample0036" not in segments["sample_id"].to_list()
