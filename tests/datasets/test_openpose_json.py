"""OpenPose JSON output (miga.datasets.openpose_json), the openpose137 order, and the iMiGUE source `openpose_json`.

The real-data tests read the iMiGUE authors' OpenPose output of interview 298
(../shared/realdata/imigue_real/298_openpose_json.tar.gz, never copied into the repository): they
extract the first 2,000 frames (and a few frames with two people) to a temporary folder, and skip
when the file is absent.
"""

from __future__ import annotations

import csv
import json
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from miga.datasets import DatasetFormatError, imigue
from miga.datasets.entry import default_entry
from miga.datasets.openpose_json import list_frames, read_openpose_json, read_openpose_json_with_choice
from miga.datasets.openpose_xlsx import read_openpose_xlsx
from miga.datasets.sides import body_sides
from miga.layouts import OPENPOSE137, convert

PARTS = ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d")
FIRST_FRAMES = 2000
TWO_PEOPLE = range(15085, 15105)  # frames 15093-15096 hold a second, faint person
_FRAME = re.compile(r"_(\d+)_keypoints\.json$")


# ---------------------------------------------------------------- real OpenPose output of iMiGUE interview 298


@pytest.fixture(scope="module")
def real298(tmp_path_factory) -> dict[str, Path]:
    from conftest import REALDATA

    archive = REALDATA / "imigue_real" / "298_openpose_json.tar.gz"
    if not archive.is_file():
        pytest.skip(f"real iMiGUE OpenPose output not available at {archive}")
    base = tmp_path_factory.mktemp("real298")
    folders = {"first": base / "first" / "298", "two": base / "two" / "298"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    with tarfile.open(archive, "r|gz") as members:  # the archive's order is not the frames'; read it through once
        for member in members:
            match = _FRAME.search(member.name)
            if not member.isfile() or match is None:
                continue
            frame = int(match.group(1))
            target = folders["first"] if frame < FIRST_FRAMES else folders["two"] if frame in TWO_PEOPLE else None
            if target is not None:
                (target / Path(member.name).name).write_bytes(members.extractfile(member).read())
    folders["labels"] = archive.parent / "labels_dev.csv"
    return folders


def _raw_frames(folder: Path) -> dict[int, list[list[float]]]:
    """frame -> each person's 411 numbers in the JSON's own order, read with the standard library."""
    out = {}
    for path in folder.glob("*_keypoints.json"):
        people = json.loads(path.read_text())["people"]
        out[int(_FRAME.search(path.name).group(1))] = [sum((p[k] for k in PARTS), []) for p in people]
    return out


def test_real_json_frames_read_in_openpose_order(real298):
    folder = real298["first"]
    numbers, _ = list_frames(folder)
    assert numbers.tolist() == list(range(FIRST_FRAMES))
    points, choice = read_openpose_json_with_choice(folder)
    assert points.shape == (FIRST_FRAMES, 137, 3) and points.dtype == np.float32
    assert "present in 2000/2000 frames" in choice.reason, choice.reason
    raw = _raw_frames(folder)
    assert all(len(people) == 1 for people in raw.values())  # one person in each of the first 2,000 frames
    expected = np.array([raw[t][0] for t in range(FIRST_FRAMES)], np.float32).reshape(FIRST_FRAMES, 137, 3)
    np.testing.assert_array_equal(points, expected)
    np.testing.assert_allclose(points[0, 0], (263.054, 272.756, 0.813957), rtol=1e-6)  # frame 0's nose
    # openpose137 is the JSON's order: the hands' roots lie at their wrists, face 36-41 around REye
    lwrist, rwrist = points[:, OPENPOSE137.index("LWrist")], points[:, OPENPOSE137.index("RWrist")]
    lroot, rroot = points[:, OPENPOSE137.index("LHandRoot")], points[:, OPENPOSE137.index("RHandRoot")]
    seen = (lwrist[:, 2] > 0.1) & (rwrist[:, 2] > 0.1) & (lroot[:, 2] > 0.1) & (rroot[:, 2] > 0.1)
    distance = lambda a, b: np.median(np.linalg.norm(a[seen, :2] - b[seen, :2], axis=1))  # noqa: E731
    assert distance(lroot, lwrist) < 0.2 * distance(lroot, rwrist)  # measured: 22 vs 192 px
    assert distance(rroot, rwrist) < 0.2 * distance(rroot, lwrist)  # 7 vs 236 px
    eye = points[:, [OPENPOSE137.index(f"REyeRim{i}") for i in range(6)], :2].mean(axis=1)
    assert np.median(np.abs(eye[:, 0] - points[:, OPENPOSE137.index("REye"), 0])) < 10
    assert body_sides(points, "openpose137").verdict == "as named"
    light = convert(points, "openpose137", "openpose25_hands10")
    np.testing.assert_array_equal(light[:, 25], points[:, 95 + 4])   # LThumbTip = left hand point 4
    np.testing.assert_array_equal(light[:, 34], points[:, 116 + 20])  # RPinkyTip = right hand point 20


def test_real_json_and_workbook_give_the_same_keypoints(real298, tmp_path):
    """A workbook in the `{vid}_openpose.xlsx` layout (a frame's JSON lists end to end) reads as the JSON does."""
    xlsxwriter = pytest.importorskip("xlsxwriter")
    raw = _raw_frames(real298["first"])
    path = tmp_path / "0298_openpose.xlsx"
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    for frame in range(FIRST_FRAMES):
        sheet.write_row(frame, 0, raw[frame][0])
    workbook.close()
    from_xlsx = read_openpose_xlsx(path)
    np.testing.assert_array_equal(from_xlsx, read_openpose_json(real298["first"]))
    assert from_xlsx[:, 73:83, 2].mean() > 0.5  # the participant's "mouth" groups 73-82 are the outer lip ...
    names = [OPENPOSE137.joints[i] for i in range(73, 83)]
    assert all("Mouth" in n or "Lip" in n for n in names), names  # ... in the layout too
    assert [OPENPOSE137.joints[i] for i in (99, 115, 120, 136)] == ["LThumbTip", "LPinkyTip", "RThumbTip", "RPinkyTip"]


def test_real_frames_with_two_people_keep_the_subject(real298):
    points, choice = read_openpose_json_with_choice(real298["two"], frame_size=(1280, 720))
    raw = _raw_frames(real298["two"])
    two = sorted(t for t, people in raw.items() if len(people) == 2)
    assert two == [15093, 15094, 15095, 15096]
    for t in TWO_PEOPLE:
        people = np.array(raw[t], np.float32).reshape(-1, 137, 3)
        subject = max(people, key=lambda p: p[:, 2].mean())  # the other one is faint (mean score 0.05 vs 0.5)
        np.testing.assert_array_equal(points[t], subject)
    assert "of 2:" in choice.reason


def test_real_json_is_an_imigue_skeleton_source(real298, tmp_path):
    """`{vid}/{vid}_openpose_json/` beside the label file; clips are cut out of the whole interview."""
    folder = tmp_path / "release" / "imigue_skeleton_train" / "0298"
    folder.mkdir(parents=True)
    with open(real298["labels"], newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["video_id"] == "298" and int(r["end_frame"]) < FIRST_FRAMES]
    assert len(rows) == 4
    (folder / "0298_label.csv").write_text("".join(f"{r['class']},{r['start_frame']},{r['end_frame']}\n" for r in rows))
    (folder / "0298_openpose_json").symlink_to(real298["first"], target_is_directory=True)
    root = folder.parents[1]
    entry = default_entry() | {"skeleton": "openpose_json"}
    assert imigue.layout_of(root, entry) == "openpose137"
    with pytest.warns(UserWarning, match="no video"):
        manifest = imigue.scan(root, entry=entry)
    keypoints = imigue.provided_keypoints(root, manifest, entry)
    whole = read_openpose_json(real298["first"])
    for row, sample_id in zip(rows, manifest["sample_id"]):
        start, end = int(row["start_frame"]), int(row["end_frame"])
        assert keypoints[sample_id][0] == start
        np.testing.assert_array_equal(keypoints[sample_id][1], whole[None, start: end + 1])


# ---------------------------------------------------------------- generated folders


def _person(x: float, y: float, size: float, score: float = 0.9) -> dict:
    """A person as OpenPose writes one: 137 points spread over a box of `size` around (x, y)."""
    rng = np.random.default_rng(int(x + 7 * y))
    points = np.column_stack([x + size * rng.uniform(-0.5, 0.5, 137), y + size * rng.uniform(-0.5, 0.5, 137),
                              np.full(137, score)]).round(3)
    out, start = {"person_id": [-1]}, 0
    for key, count in zip(PARTS, (25, 70, 21, 21)):
        out[key] = points[start: start + count].ravel().tolist()
        start += count
    return out


def _write(folder: Path, frame: int, people: list[dict], name: str = "clip") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_{frame:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))


def _points(person: dict) -> np.ndarray:
    return np.array(sum((person[k] for k in PARTS), []), np.float32).reshape(137, 3)


def test_two_people_none_and_missing_frames(tmp_path):
    subject, passer = _person(320, 240, 200), _person(40, 60, 50)
    folder = tmp_path / "clip"
    for t in range(8):
        if t == 3:
            continue  # no file: untracked
        people = {2: [passer, subject], 4: [], 6: [passer]}.get(t, [subject])
        _write(folder, t, people)
    points, choice = read_openpose_json_with_choice(folder, num_frames=10, frame_size=(640, 480))
    assert points.shape == (10, 137, 3)
    for t in (0, 1, 2, 5, 7):
        np.testing.assert_array_equal(points[t], _points(subject))  # the subject, also when listed second
    for t in (3, 4, 6, 8, 9):  # missing file, nobody, only the passer-by, past the last file
        assert not points[t].any()
    assert "present in 5/10 frames" in choice.reason and choice.num_tracks == 2
    assert read_openpose_json(folder).shape[0] == 8  # T = last frame + 1 without num_frames
    assert read_openpose_json(folder, num_frames=2).shape[0] == 2


def test_parts_missing_or_in_old_key_names(tmp_path):
    person = _person(100, 100, 40)
    body_only = {"pose_keypoints_2d": person["pose_keypoints_2d"], "face_keypoints_2d": [],
                 "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []}
    old_names = {k.replace("_2d", ""): v for k, v in person.items() if k in PARTS}
    _write(tmp_path / "a", 0, [body_only])
    _write(tmp_path / "a", 1, [old_names])
    points = read_openpose_json(tmp_path / "a")
    np.testing.assert_array_equal(points[0, :25], _points(person)[:25])
    assert not points[0, 25:].any()
    np.testing.assert_array_equal(points[1], _points(person))


@pytest.mark.parametrize("case, message", [
    ("two_names", "a second video name"),
    ("short_part", "face_keypoints_2d has 6 numbers, expected 210"),
    ("not_json", "not a readable OpenPose JSON file"),
    ("no_people", "no `people` list"),
    ("odd_name", "not an OpenPose frame file"),
])
def test_broken_json_folders_name_the_file(tmp_path, case, message):
    folder = tmp_path / "clip"
    _write(folder, 0, [_person(10, 10, 5)])
    if case == "two_names":
        _write(folder, 1, [], name="other")
    elif case == "short_part":
        _write(folder, 1, [{**_person(10, 10, 5), "face_keypoints_2d": [1, 2, 3, 4, 5, 6]}])
    elif case == "not_json":
        (folder / "clip_000000000001_keypoints.json").write_text("{people: [")
    elif case == "no_people":
        (folder / "clip_000000000001_keypoints.json").write_text('{"version": 1.3}')
    else:
        (folder / "notes.json").write_text("{}")
    with pytest.raises(DatasetFormatError, match=re.escape(message)):
        read_openpose_json(folder)


def test_empty_json_folder_is_untracked_and_a_missing_one_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    assert read_openpose_json(tmp_path / "empty", num_frames=4).shape == (4, 137, 3)
    assert not read_openpose_json(tmp_path / "empty", num_frames=4).any()
    with pytest.raises(DatasetFormatError, match="folder not found"):
        read_openpose_json(tmp_path / "nowhere")


def test_generated_json_release_reads_through_imigue(tmp_path):
    folder = tmp_path / "imigue_skeleton_train" / "0001"
    (folder).mkdir(parents=True)
    (folder / "0001_label.csv").write_text("3,0,4\n99,5,9\n")
    subject = _person(320, 240, 200)
    for t in range(0, 10, 2):
        _write(folder / "0001_openpose_json", t, [subject], name="1")
    entry = default_entry() | {"skeleton": "openpose_json"}
    with pytest.warns(UserWarning, match="no video"):
        manifest = imigue.scan(tmp_path, entry=entry)
    keypoints = imigue.provided_keypoints(tmp_path, manifest, entry)
    assert keypoints["0001_1"][0] == 5 and keypoints["0001_1"][1].shape == (1, 5, 137, 3)
    assert [bool(f.any()) for f in keypoints["0001_1"][1][0]] == [False, True, False, True, False]  # frames 6, 8 tracked
    # an interview folder with only the JSON folder (no label file) is reported, as for the other sources
    lonely = tmp_path / "imigue_skeleton_train" / "0002"
    _write(lonely / "0002_openpose_json", 0, [subject])
    with pytest.raises(DatasetFormatError, match="0002_label.csv: missing"):
        imigue.scan(tmp_path, entry=entry)
