import av
import numpy as np
import polars as pl
import pytest

from miga.track1.rgb import clip_frame_indices, crop_and_resize, extract_crops, load_crops, save_crops, square_box
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


def test_crop_cuts_the_box_around_its_centre():
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 50, 3), dtype=np.uint8)
    crop = crop_and_resize(frames, (20.0, 15.0, 16.0), 16)  # x 12..27, y 7..22; same size, so no resampling
    np.testing.assert_array_equal(crop, frames[:, 7:23, 12:28])


WIDTH, HEIGHT = 96, 64
QUADRANTS = {"top_left": (0, 0, 1), "top_right": (0, 1, 0), "bottom_left": (1, 0, 0), "bottom_right": (1, 1, 1)}  # RGB masks


def _level(frame: int) -> int:
    """The brightness of frame `frame`, so that crops show which frames they come from."""
    return 40 + 10 * frame


def _write_quadrant_video(path, frames: int) -> None:
    """Lossless mp4: quadrants blue, green, red and grey at the brightness `_level(k)` of frame k."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"qp": "0"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv444p"
        for k in range(frames):
            image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
            for (row, col), mask in zip([(0, 0), (0, 1), (1, 0), (1, 1)], QUADRANTS.values()):
                image[row * HEIGHT // 2: (row + 1) * HEIGHT // 2, col * WIDTH // 2: (col + 1) * WIDTH // 2] = np.multiply(mask, _level(k))
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _joints_around(cx: float, cy: float) -> np.ndarray:
    """Two valid joints 16 px apart around (cx, cy): a 20 px box at padding 0.25, inside one quadrant."""
    kp = np.zeros((1, 10, 2, 3), np.float32)
    kp[0, :, 0], kp[0, :, 1] = (cx - 8, cy - 8, 1), (cx + 8, cy + 8, 1)
    return kp


def test_crops_show_the_box_of_the_clip_frames_in_order(tmp_path):
    _write_quadrant_video(tmp_path / "v.mp4", frames=30)
    manifest = pl.DataFrame({
        "sample_id": ["a", "b", "c"], "video": ["v.mp4"] * 3,
        "start_frame": [0, 10, 30], "end_frame": [9, 19, 39], "video_start": [None, None, 20],  # c: frames 10..19 of the file
    })
    keypoints = {"a": _joints_around(72, 16), "b": _joints_around(24, 48), "c": _joints_around(72, 48)}
    crops = extract_crops(manifest, keypoints, frames=4, size=8, padding=0.25, root=tmp_path)
    expected = {"a": ("top_right", clip_frame_indices(0, 9, 4)), "b": ("bottom_left", clip_frame_indices(10, 19, 4)),
                "c": ("bottom_right", clip_frame_indices(10, 19, 4))}
    for sample_id, (quadrant, frames) in expected.items():
        colours = np.multiply.outer([_level(k) for k in frames], QUADRANTS[quadrant])  # (4, 3)
        np.testing.assert_allclose(crops[sample_id], np.broadcast_to(colours[:, None, None], (4, 8, 8, 3)), atol=2, err_msg=sample_id)
