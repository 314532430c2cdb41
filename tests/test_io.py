import numpy as np
import polars as pl
import pytest

from miga.contracts import ContractError, MANIFEST_SCHEMA, validate_manifest
from miga.io import KeypointStore, atomic_path, read_parquet, write_keypoints


def test_keypoints_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    samples = {"a": (3, rng.random((1, 5, 35, 3)).astype(np.float32)), "b": (0, rng.random((2, 7, 35, 3)).astype(np.float32))}
    path = tmp_path / "kp.parquet"
    write_keypoints(samples, "openpose25_hands10", path)
    store = KeypointStore(path)
    assert store.layout == "openpose25_hands10"
    assert store.ids == ["a", "b"]
    for sample_id, (start, array) in samples.items():
        np.testing.assert_array_equal(store[sample_id], array)
        assert store.start_frame(sample_id) == start


def test_keypoints_keep_their_pose_source(tmp_path):
    """Which backend made the keypoints (and how) rides in the file's metadata; old files read as {}."""
    import pyarrow.parquet as pq

    from miga.io import SOURCE_KEY

    kp = {"a": (0, np.zeros((1, 2, 17, 3), np.float32))}
    source = {"backend": "mediapipe", "settings": {"model": "holistic", "model_complexity": 1}, "videos": {"x/1.mp4": {"frames": 2}}}
    write_keypoints(kp, "coco17", tmp_path / "kp.parquet", source=source)
    assert KeypointStore(tmp_path / "kp.parquet").source == source
    write_keypoints(kp, "coco17", tmp_path / "plain.parquet")
    assert KeypointStore(tmp_path / "plain.parquet").source == {}
    table = pq.read_table(tmp_path / "kp.parquet")
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, SOURCE_KEY: b"{oops"}), tmp_path / "bad.parquet")
    with pytest.raises(ContractError, match="bad.parquet.*pose source"):
        KeypointStore(tmp_path / "bad.parquet")


def test_keypoints_shape_is_checked_against_the_layout(tmp_path):
    with pytest.raises(ContractError, match="expected"):
        write_keypoints({"a": (0, np.zeros((1, 5, 17, 3)))}, "openpose25_hands10", tmp_path / "kp.parquet")


def test_keypoints_without_layout_metadata_is_rejected(tmp_path):
    path = tmp_path / "kp.parquet"
    pl.DataFrame({"sample_id": ["a"]}).write_parquet(path)
    with pytest.raises(ContractError, match="layout"):
        KeypointStore(path)


def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_corrupt_parquet_names_the_file(tmp_path):
    path = tmp_path / "m.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(ContractError, match="m.parquet"):
        read_parquet(path)


def _manifest(**overrides):
    row = {"sample_id": "0001_0", "dataset": "imigue", "split": "train", "subject": 1, "video": None,
           "start_frame": 0, "end_frame": 10, "label": 3, "fps": 25.0, "width": 320, "height": 180}
    row.update(overrides)
    return pl.DataFrame([row], schema=MANIFEST_SCHEMA)


def test_manifest_validation_catches_contract_breaks():
    validate_manifest(_manifest(), num_classes=32)
    with pytest.raises(ContractError, match="split"):
        validate_manifest(_manifest(split="dev"))
    with pytest.raises(ContractError, match="start_frame"):
        validate_manifest(_manifest(start_frame=11))
    with pytest.raises(ContractError, match="label out of range"):
        validate_manifest(_manifest(label=40), num_classes=32)
    with pytest.raises(ContractError, match="missing columns"):
        validate_manifest(_manifest().drop("fps"))


def test_in_memory_keypoints_read_like_the_file_store(tmp_path):
    """InMemoryKeypoints answers as KeypointStore does: arrays, layout, ids, start frames, a missing id."""
    from miga.io import InMemoryKeypoints, MissingKeypointsError

    rng = np.random.default_rng(2)
    samples = {"a": (3, rng.random((1, 5, 17, 3))), "b": (0, rng.random((2, 7, 17, 3)).astype(np.float32))}
    write_keypoints(samples, "coco17", tmp_path / "kp.parquet")
    on_disk, in_memory = KeypointStore(tmp_path / "kp.parquet"), InMemoryKeypoints(samples, "coco17")
    assert (in_memory.layout, in_memory.ids, len(in_memory)) == (on_disk.layout, on_disk.ids, len(on_disk))
    for sample_id in samples:
        assert sample_id in in_memory
        assert in_memory[sample_id].dtype == np.float32
        np.testing.assert_array_equal(in_memory[sample_id], on_disk[sample_id])
        assert in_memory.start_frame(sample_id) == on_disk.start_frame(sample_id)
    assert "c" not in in_memory
    for store in (on_disk, in_memory):
        with pytest.raises(MissingKeypointsError, match="'c'"):
            store["c"]
    assert InMemoryKeypoints({"x": np.zeros((1, 2, 17, 3))}, "coco17").start_frame("x") == 0  # a bare array starts at 0
    with pytest.raises(ContractError, match="keypoints for x: expected"):
        InMemoryKeypoints({"x": np.zeros((1, 2, 35, 3))}, "coco17")
