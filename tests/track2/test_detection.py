import numpy as np
import polars as pl
import pytest
import torch

from miga.track2 import detection
from miga.track2.segments import soft_nms_1d

PYRAMID = detection.Pyramid((1, 2, 4, 8))


def _perfect_outputs(segments: np.ndarray, length: int, num_classes: int):
    classes, distances = detection.assign_targets(segments, length, PYRAMID, num_classes)
    return classes, np.where(distances < 0, 0, distances)


def test_targets_decode_back_to_the_segment():
    segments = np.array([[2, 40, 79]])
    classes, distances = detection.assign_targets(segments, 128, PYRAMID, num_classes=4)
    positive = distances[0] >= 0
    assert positive.sum() >= 2 and classes[2, positive].all() and classes.sum() == positive.sum()
    centres, strides, _, _ = PYRAMID.positions(128)
    starts = centres[positive] - distances[0, positive] * strides[positive]
    stops = centres[positive] + distances[1, positive] * strides[positive]
    np.testing.assert_allclose(starts, 40)
    np.testing.assert_allclose(stops, 80)  # end frame 79 is covered up to 80


def test_each_level_takes_its_own_size_and_the_shortest_segment_wins():
    short, long = np.array([[0, 60, 63]]), np.array([[1, 10, 117]])
    _, short_d = detection.assign_targets(short, 128, PYRAMID, 2)
    _, long_d = detection.assign_targets(long, 128, PYRAMID, 2)
    _, strides, _, _ = PYRAMID.positions(128)
    assert set(strides[short_d[0] >= 0]) == {1.0} and set(strides[long_d[0] >= 0]) == {8.0}
    classes, _ = detection.assign_targets(np.concatenate([short, long]), 128, PYRAMID, 2)
    nested = (strides == 1) & (classes.sum(0) > 0)
    assert classes[0, nested].all() and not classes[1, nested].any()


def test_perfect_outputs_decode_to_the_ground_truth_once():
    truth = np.array([[0, 10, 30], [1, 50, 109], [0, 80, 90]])
    scores, distances = _perfect_outputs(truth, 128, 2)
    config = detection.DetectorDecodeConfig(threshold=0.5, pre_threshold=0.5, nms="soft", nms_iou=0.5, min_length=1)
    found = detection.decode_sequence("S", scores, distances, PYRAMID, 128, config)
    assert sorted(found.select("label", "start_frame", "end_frame").rows()) == sorted(map(tuple, truth.tolist()))


def test_decoding_clips_to_the_real_length_of_a_padded_sequence():
    scores, distances = _perfect_outputs(np.array([[0, 90, 103]]), 104, 1)  # 100 frames padded to stride 8
    config = detection.DetectorDecodeConfig(threshold=0.5, pre_threshold=0.5, min_length=1)
    found = detection.decode_sequence("S", scores, distances, PYRAMID, 100, config)
    assert found["end_frame"].max() == 99
    with pytest.raises(ValueError, match="positions"):
        detection.decode_sequence("S", scores[:, :10], distances[:, :10], PYRAMID, 100, config)


def _table(rows):
    return pl.DataFrame(rows, schema={"sample_id": pl.String, "label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64,
                                      "score": pl.Float64}, orient="row")


def test_soft_nms_decays_overlaps_and_hard_nms_drops_them():
    rows = [("S", 0, 0, 99, 0.9), ("S", 0, 0, 89, 0.8), ("S", 0, 200, 250, 0.7), ("S", 1, 0, 99, 0.6)]
    soft = soft_nms_1d(_table(rows), sigma=0.5).sort("score", descending=True)
    decayed = soft.filter((pl.col("label") == 0) & (pl.col("end_frame") == 89))["score"].item()
    np.testing.assert_allclose(decayed, 0.8 * np.exp(-(0.9**2) / 0.5))
    assert soft.filter(pl.col("start_frame") == 200)["score"].item() == 0.7  # no overlap, untouched
    assert soft.filter(pl.col("label") == 1)["score"].item() == 0.6  # other class, untouched
    hard = soft_nms_1d(_table(rows), method="hard", sigma=0.5)
    assert hard.height == 3 and 89 not in hard["end_frame"].to_list()


def test_detection_loss_prefers_the_right_answer():
    truth = np.array([[1, 20, 59]])
    classes, distances = detection.assign_targets(truth, 64, PYRAMID, 3)
    classes_t, distances_t = torch.from_numpy(classes)[None], torch.from_numpy(distances)[None]
    good_logits = (classes_t * 2 - 1) * 8
    good = detection.detection_loss(good_logits, distances_t.clamp(min=0), classes_t, distances_t)
    bad = detection.detection_loss(-good_logits, distances_t.clamp(min=0) * 3 + 1, classes_t, distances_t)
    assert good < 0.05 < bad
    same = torch.tensor([[3.0, 5.0]])
    assert detection.diou_loss(same, same).abs().max() < 1e-6
