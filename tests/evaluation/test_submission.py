import contextlib

import numpy as np
import polars as pl
import pytest

from miga.contracts import DETECTIONS_SCHEMA, MANIFEST_SCHEMA
from miga.evaluation.submission import (
    check_track1,
    check_track2,
    read_track1,
    read_track2,
    sequence_number,
    track1_frame,
    track2_frame,
    write_track1,
    write_track2,
)


def manifest(rows):
    base = {"dataset": "x", "split": "test", "subject": 1, "video": None, "label": None, "fps": 30.0, "width": 1, "height": 1}
    return pl.DataFrame([{**base, "sample_id": s, "start_frame": a, "end_frame": b} for s, a, b in rows], schema=MANIFEST_SCHEMA)


IMIGUE_TEST = manifest([("0001_0", 0, 10), ("0001_1", 11, 20), ("0002_0", 0, 5)])
SMG_TEST = manifest([("Sample0036", 0, 99), ("Sample0037", 0, 49)])


def write(tmp_path, text, name="sub.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- writers and readers


def test_track1_round_trip(tmp_path):
    frame = track1_frame(["0001_0", "0001_1", "0002_0"], np.array([3, 0, 31]))
    path = tmp_path / "out" / "track1.csv"
    write_track1(frame, path)
    assert path.read_text().splitlines() == ["Id,Target", "0001_0,3", "0001_1,0", "0002_0,31"]
    assert read_track1(path).equals(frame)
    assert check_track1(path, IMIGUE_TEST, num_classes=32) == []


def test_track1_frame_rejects_mismatch_and_duplicates():
    with pytest.raises(ValueError):
        track1_frame(["a", "b"], [1])
    with pytest.raises(ValueError, match="unique"):
        track1_frame(["a", "a"], [1, 2])


def test_track2_frame_ids_classes_and_order():
    dets = pl.DataFrame(
        [("Sample0037", 2, 5, 9, 0.1), ("Sample0036", 0, 40, 49, 0.5), ("Sample0036", 16, 3, 8, 0.9)],
        schema=DETECTIONS_SCHEMA, orient="row",
    )
    frame = track2_frame(dets)
    assert frame.columns == ["ID", "class", "start_frame", "end_frame", "sample_id"]
    assert frame.rows() == [(1, 17, 3, 8, 36), (2, 1, 40, 49, 36), (3, 3, 5, 9, 37)]
    assert track2_frame(dets, class_base=0, first_id=0)["class"].to_list() == [16, 0, 2]
    assert track2_frame(dets, class_base=0, first_id=0)["ID"].to_list() == [0, 1, 2]


@pytest.mark.parametrize("class_base", [0, 1])
def test_track2_round_trip(tmp_path, class_base):
    dets = pl.DataFrame(
        [("Sample0036", 0, 0, 10, 0.3), ("Sample0036", 16, 20, 99, 0.2), ("Sample0037", 5, 49, 49, 0.1)],
        schema=DETECTIONS_SCHEMA, orient="row",
    )
    path = tmp_path / "track2.csv"
    write_track2(track2_frame(dets, class_base=class_base), path)
    assert path.read_text().splitlines()[0] == "ID,class,start_frame,end_frame,sample_id"
    back = read_track2(path, class_base=class_base)
    assert back.drop("score").equals(dets.drop("score"))
    assert back["score"].null_count() == back.height
    assert check_track2(path, SMG_TEST, num_classes=17, class_base=class_base) == []


def test_header_only_track2_is_valid(tmp_path):
    path = write(tmp_path, "ID,class,start_frame,end_frame,sample_id\n")
    assert check_track2(path, SMG_TEST, 17) == []
    assert read_track2(path).height == 0


def test_writer_requires_exact_columns(tmp_path):
    with pytest.raises(ValueError, match="Id,Target"):
        write_track1(pl.DataFrame({"id": ["a"], "Target": [1]}), tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_sequence_number():
    assert sequence_number("Sample0005") == 5
    with pytest.raises(ValueError):
        sequence_number("SampleX")


# ---------------------------------------------------------------- checkers


@pytest.mark.parametrize(("text", "expected"), [
    ("id,target\n0001_0,1\n", "header"),
    ("Id,Target\n0001_0,1\n0001_1,2\n", "1 test Ids have no row: 0002_0"),
    ("Id,Target\n0001_0,1\n0001_1,2\n0001_0,3\n0002_0,1\n", "row 3 (line 4): Id '0001_0' already appears in row 1"),
    ("Id,Target\n0001_0,1\n0001_1,2\n0002_0,1\n0009_0,1\n", "row 4 (line 5): Id '0009_0' is not a test sample"),
    ("Id,Target\n0001_0,1\n0001_1,2.0\n0002_0,1\n", "row 2 (line 3): Target '2.0' is not an integer"),
    ("Id,Target\n0001_0,1\n0001_1,x\n0002_0,1\n", "row 2 (line 3): Target 'x' is not an integer"),
    ("Id,Target\n0001_0,1\n0001_1,32\n0002_0,1\n", "row 2 (line 3): Target 32 is outside 0..31"),
    ("Id,Target\n0001_0,-1\n0001_1,2\n0002_0,1\n", "row 1 (line 2): Target -1 is outside 0..31"),
    ("Id,Target\n0001_0,1,5\n0001_1,2\n0002_0,1\n", "row 1 (line 2): expected 2 fields"),
    ("", "empty"),
])
def test_check_track1_rejects(tmp_path, text, expected):
    problems = check_track1(write(tmp_path, text), IMIGUE_TEST, num_classes=32)
    assert any(expected in p for p in problems), problems


HEADER2 = "ID,class,start_frame,end_frame,sample_id\n"


@pytest.mark.parametrize(("body", "expected", "readable"), [
    ("1,1,0,10,36\n1,2,0,10,36\n", "row 2 (line 3): ID 1 already appears in row 1", False),
    ("1,1,0,10,36\n2,one,0,10,36\n", "row 2 (line 3): class 'one' is not an integer", False),
    ("1,1,0,10.5,36\n", "row 1 (line 2): end_frame '10.5' is not an integer", False),
    ("1,1,0,10,Sample0036\n", "row 1 (line 2): sample_id 'Sample0036' is not an integer", False),
    ("1,0,0,10,36\n", "row 1 (line 2): class 0 is below the class base 1", False),
    ("1,1,20,10,36\n", "row 1 (line 2): need 0 <= start_frame <= end_frame, got 20 and 10", False),
    ("1,1,-1,10,36\n", "row 1 (line 2): need 0 <= start_frame", False),
    ("1,1,0,10\n", "row 1 (line 2): expected 5 fields, got 4", False),
    # only the manifest and class count can tell these apart: read_track2 accepts them
    ("1,18,0,10,36\n", "row 1 (line 2): class 18 is outside 1..17", True),
    ("1,1,0,10,36\n2,1,40,50,37\n", "row 2 (line 3): frames 40..50 fall outside sequence 37 (0..49)", True),
    ("1,1,0,10,41\n", "row 1 (line 2): sample_id 41 is not a test sequence", True),
])
def test_check_track2_rejects(tmp_path, body, expected, readable):
    path = write(tmp_path, HEADER2 + body)
    problems = check_track2(path, SMG_TEST, num_classes=17, class_base=1)
    assert any(expected in p for p in problems), problems
    with contextlib.nullcontext() if readable else pytest.raises(ValueError, match="sub.csv"):
        read_track2(path)


def test_check_track2_wrong_header_and_class_base_zero(tmp_path):
    problems = check_track2(write(tmp_path, "ID,class,start,end,sample\n1,1,0,1,36\n"), SMG_TEST, 17)
    assert len(problems) == 1 and "header" in problems[0]
    assert check_track2(write(tmp_path, HEADER2 + "1,0,0,10,36\n"), SMG_TEST, 17, class_base=0) == []
    assert any("class 17 is outside 0..16" in p for p in check_track2(write(tmp_path, HEADER2 + "1,17,0,10,36\n"), SMG_TEST, 17, class_base=0))


def test_unreadable_files_are_one_problem(tmp_path):
    missing = tmp_path / "nope.csv"
    assert len(check_track1(missing, IMIGUE_TEST, 32)) == 1 and "nope.csv" in check_track1(missing, IMIGUE_TEST, 32)[0]
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"Id,Target\n\xff\xfe,1\n")
    assert len(check_track1(binary, IMIGUE_TEST, 32)) == 1
    assert len(check_track2(tmp_path, SMG_TEST, 17)) == 1  # a directory


def test_readers_raise_naming_the_file(tmp_path):
    path = write(tmp_path, "Id,Target\na,b\n", "bad1.csv")
    with pytest.raises(ValueError, match="bad1.csv.*row 1"):
        read_track1(path)
    with pytest.raises(ValueError, match="header"):
        read_track2(write(tmp_path, "Id,Target\n", "bad2.csv"))
