import numpy as np
import pytest

from miga.video import VideoError, probe_video, read_frames
from tests.conftest import write_test_video


def test_probe_and_read_frames_by_index(tmp_path):
    path = tmp_path / "v.mp4"
    images = write_test_video(path, frames=12)
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height) == (12, 64, 48)
    assert info.fps == pytest.approx(25)
    frames = read_frames(path, np.array([7, 2, 7]))
    assert frames.shape == (3, 48, 64, 3)
    for got, k in zip(frames, (7, 2, 7)):  # the square sits where frame k drew it (lossy codec)
        assert np.abs(got.astype(int) - images[k].astype(int)).mean() < 8


def test_reading_past_the_end_names_the_file(tmp_path):
    path = tmp_path / "v.mp4"
    write_test_video(path, frames=5)
    with pytest.raises(VideoError, match="v.mp4.*frame 9"):
        read_frames(path, np.array([9]))


def test_garbage_and_truncated_videos_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    with pytest.raises(VideoError, match="garbage.mp4"):
        probe_video(garbage)
    good = tmp_path / "good.mp4"
    write_test_video(good, frames=20)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(VideoError, match="truncated.mp4"):
        probe_video(truncated)
