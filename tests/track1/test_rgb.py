import av
import numpy as np
import polars as pl
import pytest

from miga.track1.rgb import CropCache, build_crop_cache, clip_frame_indices, crop_and_resize, extract_crops, plan_crops, square_box
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


def _two_videos(tmp_path):
    """Two videos of 20 frames, two clips each, with their keypoints."""
    rows = []
    for name in ("v", "w"):
        write_test_video(tmp_path / f"{name}.mp4", frames=20)
        rows += [(f"{name}a", f"{name}.mp4", 0, 9), (f"{name}b", f"{name}.mp4", 10, 19)]
    manifest = pl.DataFrame(rows, schema=["sample_id", "video", "start_frame", "end_frame"], orient="row")
    kp = np.zeros((1, 10, 2, 3), np.float32)
    kp[0, :, 0], kp[0, :, 1] = (10, 10, 1), (40, 30, 1)
    return manifest, {sample_id: kp for sample_id in manifest["sample_id"]}


def test_extract_crops_decodes_each_video_once_and_the_cache_round_trips(tmp_path):
    manifest, keypoints = _two_videos(tmp_path)
    crops = extract_crops(manifest, keypoints, frames=4, size=16, padding=0.25, root=tmp_path)
    assert crops["va"].shape == (4, 16, 16, 3) and crops["va"].dtype == np.uint8
    plan = plan_crops(manifest, keypoints, frames=4, padding=0.25, root=tmp_path)
    assert build_crop_cache(plan, tmp_path / "cache", size=16, progress=False) == 4
    cache = CropCache(tmp_path / "cache")
    assert set(cache) == {"va", "vb", "wa", "wb"}
    assert isinstance(cache["wb"].base, np.memmap) or isinstance(cache["wb"], np.memmap)  # read lazily, not loaded
    for sample_id, crop in crops.items():
        np.testing.assert_array_equal(cache[sample_id], crop)


def test_crop_cache_resumes_from_finished_videos_and_redoes_them_when_the_boxes_change(tmp_path, monkeypatch):
    import miga.track1.rgb as rgb

    manifest, keypoints = _two_videos(tmp_path)
    plan = plan_crops(manifest, keypoints, frames=4, padding=0.25, root=tmp_path)
    calls = []
    real = rgb.crop_video

    def failing_second(video, clips, size):
        calls.append(video.name)
        if video.name == "w.mp4":
            raise KeyboardInterrupt  # killed while cropping the second video
        return real(video, clips, size)

    monkeypatch.setattr(rgb, "crop_video", failing_second)
    with pytest.raises(KeyboardInterrupt):
        build_crop_cache(plan, tmp_path / "cache", size=16, shard_dir=tmp_path / "shards", progress=False)
    assert not (tmp_path / "cache").exists()  # nothing half-written in place
    monkeypatch.setattr(rgb, "crop_video", lambda video, clips, size: (calls.append(video.name), real(video, clips, size))[1])
    calls.clear()
    build_crop_cache(plan, tmp_path / "cache", size=16, shard_dir=tmp_path / "shards", progress=False)
    assert calls == ["w.mp4"]  # v.mp4's shard was finished and is reused
    moved = {k: v.copy() for k, v in keypoints.items()}
    moved["wa"][..., :2] += 5
    calls.clear()
    build_crop_cache(plan_crops(manifest, moved, frames=4, padding=0.25, root=tmp_path), tmp_path / "cache", size=16,
                     shard_dir=tmp_path / "shards", progress=False)
    assert sorted(calls) == ["v.mp4", "w.mp4"]  # new boxes: no stale shard is reused


def test_crop_cache_with_workers_equals_one_process(tmp_path):
    manifest, keypoints = _two_videos(tmp_path)
    plan = plan_crops(manifest, keypoints, frames=4, padding=0.25, root=tmp_path)
    build_crop_cache(plan, tmp_path / "one", size=16, progress=False)
    build_crop_cache(plan, tmp_path / "two", size=16, workers=2, progress=False)
    one, two = CropCache(tmp_path / "one"), CropCache(tmp_path / "two")
    assert list(one) == list(two)
    for sample_id in one:
        np.testing.assert_array_equal(one[sample_id], two[sample_id])


def test_damaged_crop_cache_is_one_line_naming_the_folder(tmp_path):
    from miga.contracts import ContractError

    manifest, keypoints = _two_videos(tmp_path)
    build_crop_cache(plan_crops(manifest, keypoints, frames=4, padding=0.25, root=tmp_path), tmp_path / "cache", size=16,
                     progress=False)
    (tmp_path / "cache" / "crops.npy").write_bytes(b"\x93NUMPY broken")
    with pytest.raises(ContractError, match="cache"):
        CropCache(tmp_path / "cache")


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
