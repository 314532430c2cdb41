"""The pooled-statistics baselines on small generated skeletons (openpose25_hands10)."""

import numpy as np
import pytest

from miga import baselines as bl
from miga.evaluation.metrics import instance_f1
from miga.evaluation.overlap import overlap_ratio
from miga.layouts import get_layout

LAYOUT = "openpose25_hands10"
SPEC = get_layout(LAYOUT)

# A standing person in pixel coordinates (y down), about 100 px shoulder to shoulder.
_REST = {
    "Nose": (0, -60), "Neck": (0, 0), "RShoulder": (-50, 0), "RElbow": (-60, 70), "RWrist": (-60, 130),
    "LShoulder": (50, 0), "LElbow": (60, 70), "LWrist": (60, 130), "MidHip": (0, 160), "RHip": (-30, 160),
    "RKnee": (-30, 260), "RAnkle": (-30, 350), "LHip": (30, 160), "LKnee": (30, 260), "LAnkle": (30, 350),
    "REye": (-10, -70), "LEye": (10, -70), "REar": (-20, -65), "LEar": (20, -65),
    "LBigToe": (40, 360), "LSmallToe": (45, 358), "LHeel": (30, 355), "RBigToe": (-40, 360), "RSmallToe": (-45, 358), "RHeel": (-30, 355),
    **{f"L{f}Tip": (60 + 5 * i, 150) for i, f in enumerate(("Thumb", "Index", "Middle", "Ring", "Pinky"))},
    **{f"R{f}Tip": (-60 - 5 * i, 150) for i, f in enumerate(("Thumb", "Index", "Middle", "Ring", "Pinky"))},
}
REST = np.array([_REST[name] for name in SPEC.joints], dtype=np.float64)
RIGHT_HAND = [SPEC.index(n) for n in SPEC.joints if n.startswith("R") and (n.endswith("Tip") or n == "RWrist")]


def rest_frames(rng, length):
    xy = REST[None] + rng.normal(0, 2.0, (length, SPEC.num_joints, 2))
    return xy


def gesture(rng, kind, length):
    """Right hand motion: 0 = up-down at chest height, 1 = side to side at chest height."""
    t = np.arange(length)
    phase = rng.uniform(0, 2 * np.pi)
    freq = rng.uniform(0.15, 0.3)
    amp = rng.uniform(20, 35)
    offset = np.zeros((length, 2))
    offset[:, 1] = -60  # hand raised
    axis = 1 if kind == 0 else 0
    offset[:, axis] += amp * np.sin(freq * t + phase)
    return offset


def clip(rng, kind, length=40):
    xy = rest_frames(rng, length)
    xy[:, RIGHT_HAND] += gesture(rng, kind, length)[:, None]
    scale, shift = rng.uniform(0.5, 2.0), rng.uniform(-300, 300, 2) + 500
    xy = xy * scale + shift
    kp = np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)
    return kp[None].astype(np.float32)


def dataset(seed, n):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    return np.stack([bl.pooled_features(clip(rng, k), LAYOUT) for k in labels]), labels


def test_feature_length_is_fixed_per_layout():
    rng = np.random.default_rng(0)
    a = bl.pooled_features(clip(rng, 0, 40), LAYOUT)
    b = bl.pooled_features(clip(rng, 1, 7), LAYOUT)
    c = bl.pooled_features(clip(rng, 1, 1), LAYOUT)
    assert a.shape == b.shape == c.shape == (bl.feature_length(LAYOUT),)
    for name in ("openpose137", "imigue22", "kinect25", "kinect20", "coco17"):
        v = get_layout(name).num_joints
        kp = np.random.default_rng(1).uniform(0, 100, (1, 12, v, 3)).astype(np.float32)
        assert bl.pooled_features(kp, name).shape == (bl.feature_length(name),)


def test_features_invariant_to_translation_and_scale():
    rng = np.random.default_rng(1)
    kp = clip(rng, 0, 30).astype(np.float64)
    kp[0, 5:9, SPEC.index("LWrist"), 2] = 0  # a gap too
    moved = kp.copy()
    moved[..., :2] = kp[..., :2] * 3.7 + np.array([-812.0, 233.0])
    a, b = bl.pooled_features(kp, LAYOUT), bl.pooled_features(moved, LAYOUT)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    # but not to moving one hand
    other = kp.copy()
    other[0, :, SPEC.index("RWrist"), 0] += 40
    assert np.abs(bl.pooled_features(other, LAYOUT) - a).max() > 0.1


def test_missing_joints_and_frames_give_finite_features():
    rng = np.random.default_rng(2)
    kp = clip(rng, 1, 25)
    kp[0, :, SPEC.index("Neck"), 2] = 0  # never seen: centre from the shoulders
    kp[0, :, SPEC.index("LThumbTip")] = 0  # never seen
    kp[0, 3:10, :, 2] = 0  # frames with nobody
    kp[0, 12, 4, :2] = np.nan
    for variant in (kp, np.zeros_like(kp), kp[:, :0], np.zeros((0, 25, SPEC.num_joints, 3))):
        out = bl.pooled_features(variant, LAYOUT)
        assert out.shape == (bl.feature_length(LAYOUT),) and np.isfinite(out).all()
    # a gap carries the last seen value: same features as the hand staying where it was
    held = clip(np.random.default_rng(3), 0, 20)
    gap = held.copy()
    gap[0, 8:12, SPEC.index("RWrist"), 2] = 0
    held[0, 8:12, SPEC.index("RWrist"), :2] = held[0, 7, SPEC.index("RWrist"), :2]
    np.testing.assert_allclose(bl.pooled_features(gap, LAYOUT)[: 2 * SPEC.num_joints * 8],
                               bl.pooled_features(held, LAYOUT)[: 2 * SPEC.num_joints * 8], atol=1e-5)


def test_logistic_regression_beats_chance_on_held_out_clips():
    x_train, y_train = dataset(10, 40)
    x_test, y_test = dataset(11, 40)
    models = bl.fit_clip_baselines(x_train, y_train, seed=0)
    assert set(models) == {"logreg", "1nn", "5nn"}
    metrics = bl.clip_baseline_metrics(models, x_test, y_test, y_train)
    assert metrics["majority_class_rate"] == pytest.approx(0.5)
    assert metrics["logreg"] >= 0.85
    again = bl.clip_baseline_metrics(bl.fit_clip_baselines(x_train, y_train, seed=0), x_test, y_test, y_train)
    assert again == metrics  # deterministic


def sequence(rng, placements, length=240):
    """A resting person with gestures (kind, start, end) inserted; pixel coordinates, random place and size."""
    xy = rest_frames(rng, length)
    for kind, start, end in placements:
        xy[start: end + 1, RIGHT_HAND] += gesture(rng, kind, end - start + 1)[:, None]
    xy = xy * rng.uniform(0.7, 1.5) + rng.uniform(100, 600, 2)
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1)[None]


def test_window_baseline_finds_inserted_gestures():
    rng = np.random.default_rng(5)
    window, stride = 16, 4

    def make(n):
        kps, segs = {}, {}
        for i in range(n):
            a = int(rng.integers(20, 60))
            b = int(rng.integers(130, 160))
            first, second = (0, 1) if i % 2 else (1, 0)
            placed = [(first, a, a + int(rng.integers(40, 60))), (second, b, b + int(rng.integers(40, 60)))]
            kps[f"s{i}"] = sequence(rng, placed)
            segs[f"s{i}"] = [(s, e, k) for k, s, e in placed]
        return {k: bl.window_features(v, LAYOUT, window=window, stride=stride) for k, v in kps.items()}, segs

    train, train_segs = make(6)
    val, val_segs = make(2)
    test, test_segs = make(2)
    model = bl.fit_window_baseline(train, train_segs, window=window, stride=stride, seed=0)
    threshold, val_f1 = bl.tune_threshold(model, val, val_segs)
    scores = instance_f1(bl.window_baseline_detections(test, model), test_segs)
    assert scores["truth"] == 4
    assert scores["f1"] > 0.5, scores


def test_track2_f1_rule():
    truth = {"a": [(10, 20, 1), (40, 60, 2)], "b": [(0, 9, 0)]}
    preds = {"a": [(12, 22, 1, 0.9), (40, 60, 1, 0.8), (100, 120, 2, 0.5)], "b": [(0, 3, 0, 0.9)]}
    # (10,20) vs (12,22): 8/12 > 0.3 found; (40,60) class 2 not predicted; (0,9) vs (0,3): 3/9 = 0.33 > 0.3 found
    out = instance_f1(preds, truth)
    assert out["found"] == 2 and out["predictions"] == 4 and out["truth"] == 3
    assert out["precision"] == pytest.approx(0.5) and out["recall"] == pytest.approx(2 / 3)
    assert overlap_ratio(np.array([0]), np.array([10]), np.array([20]), np.array([30]))[0, 0] < 0
    assert instance_f1({"b": [(0, 2, 0, 1.0)]}, {"b": [(0, 9, 0)]})["found"] == 0  # 2/9 < 0.3


def test_window_frame_probabilities_put_each_class_in_the_frame_detectors_column():
    rng = np.random.default_rng(7)
    window, stride = 16, 4
    kps = {f"s{i}": sequence(rng, [(1, 60, 110)]) for i in range(4)}  # only kind 1: class 0 is never seen in training
    windows = {k: bl.window_features(v, LAYOUT, window=window, stride=stride) for k, v in kps.items()}
    model = bl.fit_window_baseline({k: windows[k] for k in ("s0", "s1", "s2")}, {k: [(60, 110, 1)] for k in kps}, window=window, stride=stride)
    probs = bl.window_frame_probabilities(model, windows["s3"], num_classes=2)
    assert probs.shape == (240, 3)  # background, class 0, class 1
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert np.all(probs[:, 1] == 0)  # class 0: no training window, no probability
    assert probs[70:100, 2].mean() > 0.5 and probs[150:, 0].mean() > 0.5  # the gesture in class 1's column, rest in background's
