import numpy as np
import polars as pl
import pytest

from miga.contracts import DETECTIONS_SCHEMA
from miga.evaluation.overlap import frame_iou
from miga.track2.segments import frame_scores_to_segments, moving_average, nms_1d


def curve(*pieces, num_columns=3):
    """Stack (frames, column, prob) pieces into a (T, num_columns) curve; the rest goes to column 0."""
    rows = []
    for frames, column, prob in pieces:
        row = np.full(num_columns, (1 - prob) / (num_columns - 1))
        row[column] = prob
        rows += [row] * frames
    return np.array(rows)


def rows(frame):
    return [(r["label"], r["start_frame"], r["end_frame"], round(r["score"], 6)) for r in frame.iter_rows(named=True)]


PROBS = curve((5, 0, 0.9), (5, 1, 0.8), (5, 2, 0.7), (2, 1, 0.9), (3, 0, 0.9))


def test_runs_split_at_class_changes():
    out = frame_scores_to_segments(PROBS, sample_id="Sample0036", threshold=0.5)
    assert out.schema == pl.Schema(DETECTIONS_SCHEMA)
    assert out["sample_id"].unique().to_list() == ["Sample0036"]
    assert rows(out) == [(0, 5, 9, 0.8), (1, 10, 14, 0.7), (0, 15, 16, 0.9)]


def test_min_length_threshold_and_offset():
    out = frame_scores_to_segments(PROBS, sample_id="S", threshold=0.5, min_length=3, frame_offset=100)
    assert rows(out) == [(0, 105, 109, 0.8), (1, 110, 114, 0.7)]
    assert frame_scores_to_segments(PROBS, sample_id="S", threshold=0.75).height == 2  # 0.7 run is not above
    assert frame_scores_to_segments(PROBS, sample_id="S", threshold=0.9).height == 0  # strictly above


def test_smoothing_removes_a_one_frame_spike():
    probs = curve((10, 0, 1.0), (1, 1, 1.0), (10, 0, 1.0))
    assert rows(frame_scores_to_segments(probs, sample_id="S", threshold=0.5)) == [(0, 10, 10, 1.0)]
    assert frame_scores_to_segments(probs, sample_id="S", threshold=0.5, smooth=3).height == 0


def test_smoothing_and_min_length_per_class():
    # a 3-frame gesture of class 1 beside a 12-frame one of class 0
    probs = curve((6, 0, 0.9), (12, 1, 0.9), (6, 0, 0.9), (3, 2, 0.9), (6, 0, 0.9), num_columns=3)
    one_width = frame_scores_to_segments(probs, sample_id="S", threshold=0.5, smooth=7, min_length=4)
    assert [r[:3] for r in rows(one_width)] == [(0, 6, 17)]  # the short gesture is smoothed away
    per_class = frame_scores_to_segments(probs, sample_id="S", threshold=0.5, smooth=np.array([7, 1]), min_length=np.array([4, 2]))
    assert [r[:3] for r in rows(per_class)] == [(0, 6, 17), (1, 24, 26)]
    too_short = frame_scores_to_segments(probs, sample_id="S", threshold=0.5, smooth=np.array([7, 1]), min_length=np.array([4, 4]))
    assert [r[:3] for r in rows(too_short)] == [(0, 6, 17)]
    with pytest.raises(ValueError, match="one smooth width per gesture class"):
        frame_scores_to_segments(probs, sample_id="S", threshold=0.5, smooth=np.array([7, 1, 1]))
    with pytest.raises(ValueError, match="one min_length per gesture class"):
        frame_scores_to_segments(probs, sample_id="S", threshold=0.5, min_length=np.array([4]))


def test_no_background_column_and_empty_input():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    out = frame_scores_to_segments(probs, sample_id="S", threshold=0.5, background=None)
    assert rows(out) == [(0, 0, 0, 0.9), (1, 1, 2, 0.75)]
    assert frame_scores_to_segments(np.zeros((0, 3)), sample_id="S", threshold=0.5).height == 0


def test_moving_average_matches_convolution_inside_and_averages_available_frames_at_edges():
    values = np.arange(10.0)[:, None] ** 2
    smoothed = moving_average(values, 3)[:, 0]
    np.testing.assert_allclose(smoothed[1:-1], np.convolve(values[:, 0], np.ones(3) / 3, mode="valid"))
    assert smoothed[0] == pytest.approx((0 + 1) / 2) and smoothed[-1] == pytest.approx((64 + 81) / 2)
    assert moving_average(values, 4).shape == values.shape


def test_temporal_iou_counts_inclusive_frames():
    iou = frame_iou(np.array([0, 5, 10, 20]), np.array([0, 14, 19, 29]), 0, 9)
    assert iou.tolist() == [pytest.approx(1 / 10), pytest.approx(5 / 15), 0.0, 0.0]


def detections(*items):
    return pl.DataFrame(list(items), schema=DETECTIONS_SCHEMA, orient="row")


def test_nms_per_sample_and_class():
    segs = detections(
        ("A", 0, 2, 11, 0.8),   # IoU 8/12 with the best: dropped
        ("A", 0, 0, 9, 0.9),
        ("A", 0, 5, 14, 0.7),   # IoU 5/15 with the best: kept at threshold 1/3
        ("A", 0, 20, 29, 0.6),
        ("A", 1, 0, 9, 0.5),    # other class
        ("B", 0, 0, 9, 0.4),    # other sample
    )
    kept = nms_1d(segs, 1 / 3)
    assert kept.schema == pl.Schema(DETECTIONS_SCHEMA)
    assert kept.select("sample_id", "label", "start_frame").rows() == [("A", 0, 0), ("A", 1, 0), ("A", 0, 5), ("A", 0, 20), ("B", 0, 0)]
    assert nms_1d(segs, 0.2).height == 4
    assert nms_1d(detections(), 0.5).height == 0
