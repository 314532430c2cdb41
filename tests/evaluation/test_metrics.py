import json

import numpy as np
import polars as pl
import pytest

from miga.contracts import DETECTIONS_SCHEMA, SEGMENTS_SCHEMA
from miga.evaluation.metrics import (
    classification_metrics,
    detection_metrics,
    head_classes_from_counts,
    match_detections,
    overlap_ratio,
)

# ---------------------------------------------------------------- Track 1

LABELS = np.array([0, 1, 2, 2])
SCORES = np.array([
    [0.9, 0.1, 0.0, 0.0, 0.0, 0.0],  # label 0: top-1 hit
    [0.0, 0.5, 0.8, 0.0, 0.0, 0.0],  # label 1: second, top-5 hit only
    [0.1, 0.0, 0.7, 0.2, 0.0, 0.0],  # label 2: top-1 hit
    [0.5, 0.4, 0.0, 0.3, 0.2, 0.1],  # label 2: last of six, no hit
])


def test_topk_and_mean_class_accuracy():
    m = classification_metrics(LABELS, SCORES)
    assert m["num_samples"] == 4
    assert m["top1"] == 0.5
    assert m["top5"] == 0.75
    assert m["per_class"] == {"0": {"accuracy": 1.0, "count": 1}, "1": {"accuracy": 0.0, "count": 1}, "2": {"accuracy": 0.5, "count": 2}}
    assert m["mean_class_accuracy"] == pytest.approx(0.5)  # classes 3..5 are absent and not averaged
    assert "head_accuracy" not in m


def test_head_tail_split():
    m = classification_metrics(LABELS, SCORES, head_classes=[0])
    assert m["head_classes"] == [0]
    assert (m["head_num_samples"], m["head_accuracy"], m["head_mean_class_accuracy"]) == (1, 1.0, 1.0)
    assert m["tail_num_samples"] == 3
    assert m["tail_accuracy"] == pytest.approx(1 / 3)
    assert m["tail_mean_class_accuracy"] == pytest.approx((0.0 + 0.5) / 2)
    json.dumps(m, allow_nan=False)


def test_empty_group_is_none_and_json_ready():
    m = classification_metrics(LABELS, SCORES, head_classes=[5])
    assert m["head_num_samples"] == 0 and m["head_accuracy"] is None and m["head_mean_class_accuracy"] is None
    json.dumps(m, allow_nan=False)


def test_ties_go_to_lower_class_and_fewer_than_five_classes():
    m = classification_metrics(np.array([0, 1]), np.ones((2, 3)))
    assert m["top1"] == 0.5 and m["top5"] == 1.0


def test_classification_rejects_bad_inputs():
    with pytest.raises(ValueError):
        classification_metrics(np.array([0, 6]), np.zeros((2, 6)))
    with pytest.raises(ValueError):
        classification_metrics(np.array([0]), np.zeros((2, 6)))


def test_head_classes_from_counts_breaks_ties_by_id():
    train = np.array([3, 3, 1, 1, 2, 0, 0, 0])
    assert head_classes_from_counts(train, 2) == [0, 1]
    assert head_classes_from_counts(train, 3) == [0, 1, 3]
    assert head_classes_from_counts(train, 10) == [0, 1, 3, 2]


def gt_frame(*rows):
    return pl.DataFrame(list(rows), schema=SEGMENTS_SCHEMA, orient="row")


def pred_frame(*rows):
    rows = [r if len(r) == 5 else (*r, 1.0) for r in rows]
    return pl.DataFrame(rows, schema=DETECTIONS_SCHEMA, orient="row")


def official_and_greedy(gt, pred):
    return [match_detections(gt, pred, mode=mode).found for mode in ("official", "one_to_one")]


def test_one_prediction_over_two_ground_truths():
    gt = gt_frame(("Sample0036", 0, 0, 10), ("Sample0036", 0, 12, 22))
    pred = pred_frame(("Sample0036", 0, 0, 22))  # 10/22 with each
    m = detection_metrics(gt, pred, num_classes=2)
    assert (m["official"]["found"], m["official"]["precision"], m["official"]["recall"]) == (2, 2.0, 1.0)
    assert m["official"]["f1"] == pytest.approx(2 * 2.0 * 1.0 / 3.0)
    assert (m["one_to_one"]["found"], m["one_to_one"]["precision"], m["one_to_one"]["recall"]) == (1, 1.0, 0.5)


def test_recall_by_length_counts_short_gestures_apart():
    gt = gt_frame(("s", 0, 0, 9), ("s", 0, 100, 118), ("s", 1, 200, 219), ("s", 1, 300, 399))  # 10, 19, 20, 100 frames
    pred = pred_frame(("s", 0, 100, 118), ("s", 1, 300, 399))
    buckets = detection_metrics(gt, pred, num_classes=2)["official"]["recall_by_length"]
    assert buckets["0-19"] == {"num_gt": 2, "found": 1, "recall": 0.5}
    assert buckets["20-39"] == {"num_gt": 1, "found": 0, "recall": 0.0}
    assert buckets["40-79"] == {"num_gt": 0, "found": 0, "recall": None}
    assert buckets["80+"] == {"num_gt": 1, "found": 1, "recall": 1.0}


@pytest.mark.parametrize(("pred", "found"), [
    ((4, 20), 0),  # (10 - 4) / (20 - 0) = 0.3 exactly: not a match (inclusive +1 would give 7/21)
    ((7, 10), 0),  # (10 - 7) / (10 - 0) = 0.3 exactly
    ((3, 20), 1),  # 7 / 20 = 0.35
])
def test_overlap_threshold_is_strict_and_uses_frame_numbers(pred, found):
    gt = gt_frame(("Sample0036", 0, 0, 10))
    assert official_and_greedy(gt, pred_frame(("Sample0036", 0, *pred))) == [found, found]


def test_overlap_ratio_values():
    ratio = overlap_ratio(np.array([0, 5]), np.array([10, 5]), np.array([4, 5, 20]), np.array([20, 5, 30]))
    assert ratio[0].tolist() == [0.3, pytest.approx(0.0), pytest.approx(-10 / 30)]
    assert ratio[1, 1] == -np.inf  # same single frame: 0/0, never a match


def test_class_and_sample_must_agree():
    gt = gt_frame(("Sample0036", 0, 0, 10))
    assert official_and_greedy(gt, pred_frame(("Sample0036", 1, 0, 10))) == [0, 0]
    assert official_and_greedy(gt, pred_frame(("Sample0037", 0, 0, 10))) == [0, 0]


def test_empty_predictions_and_empty_ground_truth():
    gt = gt_frame(("Sample0036", 0, 0, 10))
    empty_pred = pl.DataFrame(schema=DETECTIONS_SCHEMA)
    for m in (detection_metrics(gt, empty_pred, num_classes=1), detection_metrics(pl.DataFrame(schema=SEGMENTS_SCHEMA), empty_pred, num_classes=1)):
        for mode in ("official", "one_to_one"):
            assert (m[mode]["precision"], m[mode]["recall"], m[mode]["f1"]) == (0.0, 0.0, 0.0)
    json.dumps(m, allow_nan=False)


def test_per_class_f1():
    gt = gt_frame(("Sample0036", 0, 0, 10), ("Sample0036", 1, 20, 30), ("Sample0036", 1, 40, 50))
    pred = pred_frame(("Sample0036", 0, 0, 10), ("Sample0036", 0, 60, 70), ("Sample0036", 2, 20, 30))
    m = detection_metrics(gt, pred, num_classes=4)
    for mode in ("official", "one_to_one"):
        per_class = m[mode]["per_class"]
        assert per_class["0"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "found": 1, "num_pred": 2, "num_gt": 1}
        assert per_class["1"]["f1"] == 0.0 and per_class["1"]["num_gt"] == 2
        assert per_class["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "found": 0, "num_pred": 1, "num_gt": 0}
        assert per_class["3"]["num_pred"] == 0
        assert m[mode]["macro_f1"] == pytest.approx(1 / 3)  # classes with ground truth only
        assert (m[mode]["found"], m[mode]["num_pred"], m[mode]["num_gt"]) == (1, 3, 3)
        assert m[mode]["f1"] == pytest.approx(2 * (1 / 3) * (1 / 3) / (2 / 3))


def test_one_to_one_takes_predictions_by_score_and_best_overlap():
    gt = gt_frame(("S1", 0, 0, 30), ("S1", 0, 15, 45))
    pred = pred_frame(
        ("S1", 0, 0, 28, 0.2),   # 28/30 with gt 0, 13/45 with gt 1
        ("S1", 0, 10, 40, 0.9),  # 20/40 with gt 0, 25/35 with gt 1: takes gt 1
    )
    greedy = match_detections(gt, pred, mode="one_to_one")
    assert greedy.gt_match.tolist() == [0, 1] and greedy.pred_matched.tolist() == [True, True]
    official = match_detections(gt, pred, mode="official")
    assert official.gt_match.tolist() == [0, 1]  # first passing prediction in row order

    taken = pred_frame(("S1", 0, 0, 30, 0.1), ("S1", 0, 0, 35, 0.9))
    greedy = match_detections(gt_frame(("S1", 0, 0, 30)), taken, mode="one_to_one")
    assert greedy.gt_match.tolist() == [1] and greedy.pred_matched.tolist() == [False, True]


def organiser_found(gt, pred, threshold=0.3):
    """tester_SMG's loop, transcribed, as the reference for the official count."""
    found = 0
    for sample, label, gs, ge in gt.iter_rows():
        for psample, plabel, ps, pe, _ in pred.iter_rows():
            if psample == sample and plabel == label:
                span = max(pe, ge) - min(ps, gs)
                if span and (min(pe, ge) - max(ps, gs)) / span > threshold:
                    found += 1
                    break
    return found


def reference_greedy(gt, pred, threshold=0.3):
    used, found = set(), 0
    for psample, plabel, ps, pe, _ in pred.sort("score", descending=True, maintain_order=True).iter_rows():
        best, best_ratio = None, threshold
        for i, (sample, label, gs, ge) in enumerate(gt.iter_rows()):
            span = max(pe, ge) - min(ps, gs)
            ratio = (min(pe, ge) - max(ps, gs)) / span if span else -1
            if i not in used and sample == psample and label == plabel and ratio > best_ratio:
                best, best_ratio = i, ratio
        if best is not None:
            used.add(best)
            found += 1
    return found


def random_segments(rng, n, with_score):
    starts = rng.integers(0, 300, n)
    rows = {
        "sample_id": rng.choice(["Sample0036", "Sample0037"], n),
        "label": rng.integers(0, 3, n),
        "start_frame": starts,
        "end_frame": starts + rng.integers(0, 40, n),
    }
    if with_score:
        rows["score"] = rng.random(n)
    return pl.DataFrame(rows, schema=DETECTIONS_SCHEMA if with_score else SEGMENTS_SCHEMA)


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_loops(seed):
    rng = np.random.default_rng(seed)
    gt, pred = random_segments(rng, 40, False), random_segments(rng, 80, True)
    assert match_detections(gt, pred, mode="official").found == organiser_found(gt, pred)
    assert match_detections(gt, pred, mode="one_to_one").found == reference_greedy(gt, pred)


def test_rejects_unknown_mode():
    with pytest.raises(ValueError, match="mode"):
        match_detections(gt_frame(), pred_frame(), mode="loose")


def test_rejects_null_frames_in_predictions():
    pred = pl.DataFrame({"sample_id": ["S1"], "label": [0], "start_frame": [None], "end_frame": [5], "score": [None]}, schema=DETECTIONS_SCHEMA)
    with pytest.raises(ValueError, match="null"):
        match_detections(gt_frame(("S1", 0, 0, 5)), pred)


def test_a_baseline_above_the_figure_is_said():
    from miga.evaluation.metrics import below_baseline_note

    assert below_baseline_note("top-1", 0.80, {"logreg": 0.79, "1nn": None}, "test") is None
    note = below_baseline_note("top-1", 0.80, {"logreg": 0.85, "5nn": 0.82, "1nn": 0.7}, "test")
    assert note.startswith("on test the model's top-1 (0.800) is below") and "logreg 0.850, 5nn 0.820" in note and "1nn" not in note
