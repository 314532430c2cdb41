"""The one real iMiGUE interview we have (video 298's raw OpenPose JSON) through the stages: ingest, pose, Track 1.

Not a model-quality check (56 clips of one person): it shows that a release in the `openpose_json` skeleton format
runs end to end and that the clips the pipeline trains on are the reader's keypoints, cut at the labelled frames.
The interview's clips are split in time over three stand-in videos (train 36, val 10, test 10), each a link to the
same frame folder.
"""

from __future__ import annotations

import csv
import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from miga.datasets.openpose_json import read_openpose_json
from miga.io import KeypointStore, read_parquet
from tests.conftest import REALDATA
from tests.test_pipeline import REPO, _run

ARCHIVE = REALDATA / "imigue_real" / "298_openpose_json.tar.gz"
LABELS = REALDATA / "imigue_real" / "labels_dev.csv"
SPLITS = (("imigue_skeleton_train", "0298", 0, 36), ("imigue_skeleton_validate", "1298", 36, 46),
          ("imigue_skeleton_test", "2298", 46, 56))

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not ARCHIVE.is_file(), reason=f"real interview not present: {ARCHIVE}")]


def _release(root: Path) -> tuple[Path, list[dict]]:
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(root, filter="data")
    frames = root / "298"
    with open(LABELS, newline="") as handle:
        rows = sorted((r for r in csv.DictReader(handle) if r["video_id"] == "298"), key=lambda r: int(r["start_frame"]))
    assert len(rows) == 56
    release = root / "release"
    for split, video, first, last in SPLITS:
        folder = release / split / video
        folder.mkdir(parents=True)
        (folder / f"{video}_label.csv").write_text(
            "".join(f"{r['class']},{r['start_frame']},{r['end_frame']}\n" for r in rows[first:last]))
        (folder / f"{video}_openpose_json").symlink_to(frames, target_is_directory=True)
    (release / "video_subjects.csv").write_text("video,subject\n0298,22\n1298,1022\n2298,2022\n")
    return frames, rows


def test_real_interview_runs_through_ingest_pose_and_track1(tmp_path):
    frames, rows = _release(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    for name in ("miga", "stages"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["imigue"].update(root=str(tmp_path / "release"), skeleton="openpose_json", test_labels="real",
                                        test_truth=None)
    params["track1"]["model"].update(streams=["tcn"], fusion="none")
    params["track1"]["train"]["per_stream"]["tcn"]["epochs"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    for stage in (["ingest", "--dataset", "imigue"], ["pose", "--dataset", "imigue"], ["track1", "train"],
                  ["track1", "predict"], ["track1", "evaluate"]):
        _run([sys.executable, "-m", f"stages.{stage[0]}", *stage[1:], "--params", "params.yaml"], project)

    manifest = read_parquet(project / "data/interim/imigue/manifest.parquet")
    assert manifest.group_by("split").len().sort("split").rows() == [("test", 10), ("train", 36), ("val", 10)]
    store = KeypointStore(project / "data/interim/imigue/keypoints.parquet")
    assert store.layout == "openpose137"
    whole = read_openpose_json(frames)
    for sample_id, row in zip(manifest.filter(manifest["sample_id"].str.starts_with("0298_"))["sample_id"], rows[:36]):
        start, end = int(row["start_frame"]), int(row["end_frame"])
        assert store.start_frame(sample_id) == start
        np.testing.assert_array_equal(store[sample_id], whole[None, start: end + 1])
    with open(project / "submissions/track1.csv", newline="") as handle:
        submission = list(csv.reader(handle))
    assert submission[0] == ["Id", "Target"] and len(submission) == 11
    assert (project / "metrics/track1.json").is_file()
