import numpy as np
import polars as pl
import pytest

from miga.online import OnlineDetector, emitted_table, run_stream
from miga.segments import _detections


def _raised_hand_detector(keypoints: np.ndarray) -> pl.DataFrame:
    """A real function of the keypoints: runs of frames where joint 0 is above y = 0.5 (min 5 frames)."""
    up = keypoints[0, :, 0, 1] > 0.5
    edges = np.flatnonzero(np.diff(np.concatenate([[0], up.astype(int), [0]])))
    starts, ends = edges[0::2], edges[1::2] - 1
    keep = ends - starts + 1 >= 5
    return _detections("w", [0] * int(keep.sum()), starts[keep], ends[keep], [1.0] * int(keep.sum()))


def _sequence(length: int, segments: list[tuple[int, int]]) -> np.ndarray:
    keypoints = np.zeros((1, length, 3, 3), np.float32)
    keypoints[..., 2] = 1
    for start, end in segments:
        keypoints[0, start: end + 1, 0, 1] = 1.0
    return keypoints


def test_streaming_finds_what_offline_finds_each_once_with_bounded_delay():
    truth = [(30, 60), (100, 180), (300, 309), (590, 640), (980, 999)]
    keypoints = _sequence(1000, truth)
    offline = _raised_hand_detector(keypoints).select("start_frame", "end_frame").rows()
    detector = OnlineDetector(_raised_hand_detector, window=128, hop=16, guard=8)
    streamed = list(run_stream(detector, keypoints[0]))
    assert [(e.start_frame, e.end_frame) for e in streamed] == offline == truth
    before_flush = [e for e in streamed if e.end_frame < 990]
    assert all(8 <= e.delay < 8 + 16 for e in before_flush)
    assert detector.stats.frames == 1000 and detector.stats.runs == 1000 // 16 + 1
    assert emitted_table("S", detector.emitted).height == len(truth)


def test_a_gesture_longer_than_the_window_is_not_emitted_twice():
    keypoints = _sequence(400, [(10, 300)])
    detector = OnlineDetector(_raised_hand_detector, window=64, hop=8, guard=4)
    streamed = list(run_stream(detector, keypoints[0]))
    assert len(streamed) == 1  # the window only ever sees a part of it, decided once it ends


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="hop"):
        OnlineDetector(_raised_hand_detector, window=32, hop=64)
