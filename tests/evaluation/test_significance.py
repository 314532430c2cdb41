import polars as pl
import pytest

from miga.evaluation.significance import f1_win_rate


def _segments(rows) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"sample_id": pl.String, "label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64},
                        orient="row")


def _detections(rows) -> pl.DataFrame:
    return _segments(rows).with_columns(score=pl.lit(0.9))


TRUTH = _segments([("a", k % 2, 100 * k, 100 * k + 40) for k in range(6)] + [("b", k % 2, 100 * k, 100 * k + 40) for k in range(6)])
ALL = _detections(TRUTH.rows())


def test_a_detector_that_finds_every_gesture_beats_one_that_finds_none_in_every_resample():
    nothing = ALL.clear()
    assert f1_win_rate(TRUTH, nothing, ALL, ["a", "b"]) == 1.0
    assert f1_win_rate(TRUTH, ALL, nothing, ["a", "b"]) == 0.0
    assert f1_win_rate(TRUTH, ALL, ALL, ["a", "b"]) == 0.0  # a tie is no win


def test_one_gesture_more_of_twelve_is_not_a_sure_win():
    missing_one = ALL.filter(~((pl.col("sample_id") == "a") & (pl.col("start_frame") == 300)))
    rate = f1_win_rate(TRUTH, missing_one, ALL, ["a", "b"], seed=3)
    # the one block that differs is left out of a resample of 12 blocks with probability (11/12)^12 = 0.35
    assert rate == pytest.approx(1 - (11 / 12) ** 12, abs=0.04)
    assert rate == f1_win_rate(TRUTH, missing_one, ALL, ["a", "b"], seed=3)  # deterministic for a seed


def test_false_detections_in_a_sequence_without_gestures_count():
    invented = pl.concat([ALL, _detections([("c", 0, 10, 50), ("c", 1, 60, 90)])])
    assert f1_win_rate(TRUTH, invented, ALL, ["a", "b", "c"]) == pytest.approx(1 - (12 / 13) ** 13, abs=0.04)
    assert f1_win_rate(TRUTH, invented, ALL, ["a", "b"]) == 0.0  # "c" not among the sequences compared
    assert f1_win_rate(TRUTH, invented, ALL, []) == 0.0
