import numpy as np
import polars as pl
import pytest

from miga.rgb import clip_frame_indices, crop_and_resize, extract_crops, load_crops, save_crops, square_box
from tests.conftest import write_test_video


def test_clip_frame_indices_cover_the_clip():
    idx = clip_frame_indices(10, 25, 8)
    assert len(idx) == 8 and idx.min() >= 10 and idx.max() <= 25 and (np.diff(idx) > 0).all()
    assert clip_frame_indices(5, 6, 4).tolist() == [5, 5, 6, 6]


def test_square_box_pads_and_ignores_missing_joints():
    kp = np.zeros((1, 2, 3, 3), np.float32)
    kp[0, :, 0] = (10, 20, 1)
    kp[0, :, 1] = (30, 30, 1)
    kp[0, :, 2] = (500, 500, 0)  # missing
    cx, cy, side = square_box(kp, padding=0.5)
    assert (cx, cy, side) == (20, 25, 30)
    with pytest.raises(ValueError):
        square_box(np.zeros((1, 1, 3, 3)), padding=0.2)


def test_crop_outside_the_frame_is_zero_padded():
    frames = np.full((1, 10, 10, 3), 200, np.uint8)
    crop = crop_and_resize(frames, (0.0, 0.0, 10.0), 10)
    assert crop.shape == (1, 10, 10, 3)
    assert crop[0, 0, 0].max() == 0 and crop[0, -1, -1].min() == 200


def test_extract_crops_decodes_each_video_once_and_round_trips(tmp_path):
    video = tmp_path / "v.mp4"
    write_test_video(video, frames=20)
    manifest = pl.DataFrame({"sample_id": ["a", "b"], "video": [str(video)] * 2, "start_frame": [0, 10], "end_frame": [9, 19]})
    kp = np.zeros((1, 10, 2, 3), np.float32)
    kp[0, :, 0], kp[0, :, 1] = (10, 10, 1), (40, 30, 1)
    crops = extract_crops(manifest, {"a": kp, "b": kp}, frames=4, size=16, padding=0.25)
    assert crops["a"].shape == (4, 16, 16, 3) and crops["a"].dtype == np.uint8
    save_crops(crops, tmp_path / "c.npz")
    loaded = load_crops(tmp_path / "c.npz")
    assert set(loaded) == {"a", "b"}
    np.testing.assert_array_equal(loaded["b"], crops["b"])
