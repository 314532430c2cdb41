from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
import yaml

from miga.errors import ConfigError
from miga.params import defaults, load_params, merged
from miga.track2 import detectors, windows
from miga.track2 import recipe as track2
from miga.layouts import COCO17, KINECT25


def _track2(**sections) -> dict:
    """The schema's `track2` defaults with `sections` ({"model": {...}, "decode": {...}}) laid over them."""
    return merged(defaults("track2"), sections)


def _stream(frames=60):
    rng = np.random.default_rng(0)
    base = rng.uniform(100, 200, (25, 2))
    kp = np.zeros((1, frames, 25, 3), np.float32)
    kp[0, :, :, :2] = base + rng.normal(0, 0.5, (frames, 25, 2))
    kp[0, :, :, 2] = 1
    return kp


def test_features_are_invariant_to_translation_and_scale():
    kp = _stream()
    moved = kp.copy()
    moved[..., :2] = moved[..., :2] * 2.5 + 40
    a, b = track2.frame_features(kp, "kinect25"), track2.frame_features(moved, "kinect25")
    assert a.shape[0] == 60 and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_features_of_a_layout_without_a_neck_centre_on_the_shoulders():
    from miga.layouts import convert

    kp = convert(_stream(), "kinect25", "coco17")  # no Neck / SpineShoulder point
    moved = kp.copy()
    moved[..., :2] = moved[..., :2] * 2.5 + 40
    config = track2.FeatureConfig(parts=("joints", "path"))
    a, b = track2.frame_features(kp, "coco17", config), track2.frame_features(moved, "coco17", config)
    assert a.shape == (60, 17 * 2 + 2) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-4)
    joints = a[:, :34].reshape(60, 17, 2)
    shoulders = joints[:, [COCO17.index("LShoulder"), COCO17.index("RShoulder")]].mean(axis=1)
    np.testing.assert_allclose(a[:, 34:], shoulders, atol=1e-5)  # the path is the shoulders' midpoint


def test_mirrored_swaps_sides_and_negates_x_in_the_features():
    kp = _stream()
    assert np.array_equal(track2.mirrored(track2.mirrored(kp, "kinect25"), "kinect25"), kp)
    plain = track2.frame_features(kp, "kinect25")[:, : 25 * 2].reshape(60, 25, 2)
    seen = track2.frame_features(track2.mirrored(kp, "kinect25"), "kinect25")[:, : 25 * 2].reshape(60, 25, 2)
    left, right = KINECT25.index("LHand"), KINECT25.index("RHand")
    np.testing.assert_allclose(seen[:, left], plain[:, right] * [-1, 1], atol=1e-5)
    np.testing.assert_allclose(seen[:, KINECT25.index("Head")], plain[:, KINECT25.index("Head")] * [-1, 1], atol=1e-5)


def test_training_depends_on_every_track2_section_but_decode():
    root = Path(__file__).resolve().parents[2]
    stage = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["train_track2"]
    trained = {p.removeprefix("track2.") for p in stage["params"] if p.startswith("track2.")}
    sections = set(yaml.safe_load((root / "params.yaml").read_text())["track2"])
    assert "decode" not in trained
    assert trained | {"decode"} == sections  # a new training section must be listed in dvc.yaml


def _positions(features: np.ndarray) -> np.ndarray:
    """The body-normalised (x, y) of each joint: the first 25 * 2 feature columns, as (T, 25, 2)."""
    return features[:, : 25 * 2].reshape(len(features), 25, 2)


def test_missing_joints_are_carried_forward_and_flagged():
    kp = _stream()
    hand, elbow = KINECT25.index("RHand"), KINECT25.index("LElbow")
    kp[0, 10:20, hand] = 0
    kp[0, :5, elbow] = 0  # missing from the start: the first valid position is carried backward
    feats = track2.frame_features(kp, "kinect25")
    ok = track2.frame_features(_stream(), "kinect25")
    score_col = feats.shape[1] - 25 + hand
    assert (feats[10:20, score_col] == 0).all() and (feats[:10, score_col] == 1).all()
    assert np.isfinite(feats).all()
    assert feats.shape == ok.shape
    seen, truth = _positions(feats), _positions(ok)
    np.testing.assert_allclose(seen[10:20, hand], np.repeat(truth[9:10, hand], 10, axis=0), atol=1e-6)
    np.testing.assert_allclose(seen[:5, elbow], np.repeat(truth[5:6, elbow], 5, axis=0), atol=1e-6)
    missing = np.zeros(seen.shape[:2], bool)
    missing[10:20, hand] = missing[:5, elbow] = True
    np.testing.assert_allclose(seen[~missing], truth[~missing], atol=1e-6)  # every valid joint is as recorded


def test_frame_labels_mark_segments():
    segments = pl.DataFrame({"label": [2, 0], "start_frame": [3, 8], "end_frame": [5, 9]})
    assert track2.frame_labels(12, segments).tolist() == [0, 0, 0, 3, 3, 3, 0, 0, 1, 1, 0, 0]


def test_window_dataset_is_deterministic_per_epoch():
    feats = [np.random.default_rng(i).random((300, 5), dtype=np.float32) for i in range(2)]
    labels = [np.zeros(300, np.int64) for _ in range(2)]
    data = windows.WindowDataset(feats, labels, window=64, per_epoch=4, seed=1)
    x, y = data[0]
    assert x.shape == (5, 64) and y.shape == (64,)
    torch.testing.assert_close(data[0][0], x)
    data.set_epoch(1)
    assert not torch.equal(data[0][0], x)


def test_instance_weights_make_every_gesture_weigh_as_much_as_one_of_median_length():
    labels = [np.array([0, 1, 1, 0, 2, 2, 2, 2, 2, 2, 0, 1, 1, 1, 1]), np.array([0, 0, 3, 3, 3, 3])]  # lengths 2, 6, 4, 4
    weights = track2.frame_loss_weights(labels, "instance")
    assert weights[0].tolist() == pytest.approx([1, 2, 2, 1] + [4 / 6] * 6 + [1] + [1] * 4)
    assert weights[1].tolist() == pytest.approx([1, 1, 1, 1, 1, 1])
    per_gesture = [weights[0][1:3].sum(), weights[0][4:10].sum(), weights[0][11:].sum(), weights[1][2:].sum()]
    assert per_gesture == pytest.approx([4.0] * 4)
    assert track2.frame_loss_weights(labels, "none") is None


def test_class_weights_make_every_gesture_class_weigh_alike():
    labels = [np.array([0, 1, 1, 1, 1, 1, 1, 0, 2, 2]), np.array([0, 0])]
    weights = track2.frame_loss_weights(labels, "class")
    assert weights[0].tolist() == pytest.approx([1] + [8 / 2 / 6] * 6 + [1] + [8 / 2 / 2] * 2)
    assert weights[0][1:7].sum() == pytest.approx(weights[0][8:].sum()) and weights[1].tolist() == [1, 1]
    with pytest.raises(ValueError, match="'length'"):
        track2.frame_loss_weights(labels, "length")


def test_weighted_frame_loss_is_the_plain_loss_at_unit_weights_and_follows_the_weights():
    features = [np.random.default_rng(0).normal(size=(120, 4)).astype(np.float32)]
    labels = [np.where((np.arange(120) >= 30) & (np.arange(120) < 40), 1, 0)]
    model = track2.build_detector(_track2(model={"detector": "frame", "channels": 8, "layers": 1, "ensemble": 1}), 4, 2).eval()
    plain = windows.WindowDataset(features, labels, window=100, per_epoch=2, seed=0)
    unit = windows.WindowDataset(features, labels, window=100, per_epoch=2, seed=0, weights=[np.ones(120, np.float32)])
    batch = torch.utils.data.default_collate([plain[i] for i in range(2)])
    weighted = torch.utils.data.default_collate([unit[i] for i in range(2)])
    torch.testing.assert_close(weighted[1], batch[1])
    cpu = torch.device("cpu")
    torch.testing.assert_close(detectors.window_loss(model, weighted, cpu), detectors.window_loss(model, batch, cpu))
    gesture_only = (*weighted[:2], (weighted[1] > 0).float())
    frame_loss = torch.nn.functional.cross_entropy(model(batch[0]), batch[1], reduction="none")
    torch.testing.assert_close(detectors.window_loss(model, gesture_only, cpu), frame_loss[batch[1] > 0].mean())


def test_frame_weights_belong_to_the_frame_detector():
    options = _track2(model={"detector": "window", "channels": 8, "layers": 1}, train={"frame_weights": "instance"})
    truth = pl.DataFrame({"sample_id": ["S"], "label": [0], "start_frame": [4], "end_frame": [9]})
    with pytest.raises(ConfigError, match="frame_weights.*'window'"):
        track2.training_set(options, [np.zeros((50, 3), np.float32)], [truth], num_classes=1, seed=0)
    dataset, _ = track2.training_set(options | {"model": options["model"] | {"detector": "frame"}, "train": options["train"] | {"window": 32}},
                                     [np.zeros((50, 3), np.float32)], [truth], num_classes=1, seed=0)
    x, y, w = dataset[0]
    assert w.shape == y.shape and (w[y == 0] == 1).all()


def test_decode_and_tune_find_a_clean_segment():
    probs = np.full((100, 4), 0.0)
    probs[:, 0] = 1
    probs[30:60] = [0.1, 0.0, 0.9, 0.0]
    truth = pl.DataFrame({"sample_id": ["S"], "label": [1], "start_frame": [30], "end_frame": [59]})
    decode_at = lambda t: track2.decode({"S": probs}, track2.DecodeConfig(threshold=t, min_length=5, smooth=1))  # noqa: E731
    threshold, trials = track2.tune_for_f1(decode_at, truth, [0.5, 0.95], 3, 0.3)
    assert threshold == 0.5 and trials[0]["f1"] == pytest.approx(1.0) and trials[1]["f1"] == 0
    found = decode_at(threshold)
    assert found.select("label", "start_frame", "end_frame").rows() == [(1, 30, 59)]


@pytest.mark.parametrize("detector", sorted(detectors.DETECTORS))
def test_every_detector_trains_and_decodes_from_the_track2_options(detector):
    # The untrained anchor-free head scores below the default pre_threshold and predicts near-empty extents:
    # with the defaults it would decode to nothing.
    options = merged(load_params(Path(__file__).resolve().parents[2] / "params.yaml")["track2"], {
        "model": {"detector": detector, "channels": 8, "layers": 1, "levels": 3, "window_length": 16},
        "train": {"window": 64, "windows_per_epoch": 4}, "decode": {"pre_threshold": 0.0, "min_length": 1}})
    torch.manual_seed(0)
    features = np.random.default_rng(0).normal(size=(200, 6)).astype(np.float32)
    truth = pl.DataFrame({"sample_id": ["S"], "label": [1], "start_frame": [40], "end_frame": [79]})
    dataset, loss_fn = track2.training_set(options, [features], [truth], num_classes=3, seed=0)
    model = track2.build_detector(options, in_features=6, num_classes=3)
    loss = loss_fn(model, torch.utils.data.default_collate([dataset[i] for i in range(2)]), torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    detections = track2.make_decoder(model, options, {"S": features})(0.0)
    assert len(detections) > 0 and set(detections["sample_id"].unique()) == {"S"}
    assert detections["label"].is_between(0, 2).all() and (detections["start_frame"] >= 0).all()
    assert (detections["start_frame"] <= detections["end_frame"]).all() and (detections["end_frame"] < 200).all()
    assert detections["score"].is_finite().all() and (detections["score"] > 0).all()


def test_an_unknown_detector_is_named_in_the_error():
    with pytest.raises(ValueError, match="'transformer'.*anchorfree"):
        track2.build_detector(_track2(model={"detector": "transformer", "channels": 8, "layers": 1, "dropout": 0.0}), 6, 3)


def test_feature_parts_posture_drops_the_body_path_and_velocity_steps_smooth():
    kp = _stream(80)
    moved = kp.copy()
    walk = np.linspace(0, 60, 80)[:, None]  # the whole body drifts right, frame by frame
    moved[0, :, :, 0] += walk
    posture = track2.FeatureConfig(parts=("posture",))
    np.testing.assert_allclose(track2.frame_features(kp, "kinect25", posture), track2.frame_features(moved, "kinect25", posture), atol=1e-4)
    joints = track2.FeatureConfig(parts=("joints",))
    assert not np.allclose(track2.frame_features(kp, "kinect25", joints), track2.frame_features(moved, "kinect25", joints), atol=1e-2)
    path = track2.frame_features(moved, "kinect25", track2.FeatureConfig(parts=("path",)))
    assert path.shape == (80, 2) and np.corrcoef(path[:, 0], walk[:, 0])[0, 1] > 0.99  # the centre's path follows the drift
    steps = track2.FeatureConfig(parts=("velocity",), velocity_steps=(1, 4))
    velocity = track2.frame_features(moved, "kinect25", steps)
    assert velocity.shape == (80, 2 * 25 * 2)
    one, four = velocity[:, :50].reshape(80, 25, 2), velocity[:, 50:].reshape(80, 25, 2)
    # the jitter averages out over +-4 frames: the step-4 velocity varies less along time than the step-1 one
    assert four[10:70, :, 0].std(axis=0).mean() < 0.5 * one[10:70, :, 0].std(axis=0).mean()
    np.testing.assert_allclose(four[10:70, :, 0].mean(), one[10:70, :, 0].mean(), rtol=0.05)
    default = track2.frame_features(kp, "kinect25")
    plain = _track2(features={"parts": list(track2.DEFAULT_FEATURES), "velocity_steps": [1], "norm_window": 0})
    assert track2.feature_config(plain) == track2.FeatureConfig()
    assert default.shape[1] == track2.frame_features(kp, "kinect25", track2.feature_config(plain)).shape[1]
    with pytest.raises(ValueError, match="unknown"):
        track2.FeatureConfig(parts=("joints", "depth"))


def test_smooth_and_min_length_lists_are_tuned_on_val():
    probs = np.zeros((120, 3))
    probs[:, 0] = 1
    probs[20:80] = [0.2, 0.8, 0.0]
    probs[48:51] = [0.6, 0.4, 0.0]  # a short dip splits the segment unless smoothed
    probs[100:103] = [0.1, 0.0, 0.9]  # a 3-frame blip: a false positive unless min_length > 3
    truth = pl.DataFrame({"sample_id": ["S"], "label": [0], "start_frame": [20], "end_frame": [79]})
    options = _track2(model={"detector": "frame"}, decode={"smooth": [1, 9], "min_length": [1, 5], "nms_iou": 0.5})
    grid = track2.decode_grid(options)
    assert grid == [{"smooth": 1, "min_length": 1}, {"smooth": 1, "min_length": 5}, {"smooth": 9, "min_length": 1},
                    {"smooth": 9, "min_length": 5}]
    assert track2.decode_grid(merged(options, {"decode": {"smooth": 5, "min_length": 8}})) == [{}]
    assert track2.decode_grid(merged(options, {"model": {"detector": "anchorfree"}})) == [{"min_length": 1}, {"min_length": 5}]

    def decode_at(threshold, smooth=1, min_length=1):
        return track2.decode({"S": probs}, track2.DecodeConfig(threshold=threshold, smooth=smooth, min_length=min_length))

    threshold, trials = track2.tune_for_f1(decode_at, truth, [0.5], 2, 0.3, grid)
    best = track2.best_trial(trials)
    assert (best["smooth"], best["min_length"], best["f1"]) == (9, 5, pytest.approx(1.0))
    assert min(t["f1"] for t in trials) < 0.7


def test_decode_trials_are_the_thresholds_as_floats_and_the_decode_grid():
    options = _track2(model={"detector": "frame"}, decode={"thresholds": [0.3, 1, 0.5], "smooth": [1, 9], "min_length": 4})
    thresholds, grid = track2.decode_trials(options)
    assert thresholds == [0.3, 1.0, 0.5] and all(type(t) is float for t in thresholds)
    assert grid == track2.decode_grid(options) == [{"smooth": 1, "min_length": 4}, {"smooth": 9, "min_length": 4}]
    assert track2.decode_trials(merged(options, {"decode": {"smooth": 5}}))[1] == [{}]


def _two_class_sequence():
    """Class 0's two gestures score 0.35 (a weak class); class 1's two score 0.9, and two blips of class 1 that are no
    gesture score 0.35 too: one shared threshold keeps both weak things or neither."""
    probs = np.zeros((400, 3))
    probs[:, 0] = 1.0
    truth = []
    for start, label, p in ((10, 0, 0.35), (60, 0, 0.35), (110, 1, 0.9), (160, 1, 0.9), (210, None, 0.35), (260, None, 0.35)):
        column = 1 + (1 if label is None else label)
        probs[start:start + 30] = 0.0
        probs[start:start + 30, column], probs[start:start + 30, 0] = p, 1 - p
        if label is not None:
            truth.append(("S", label, start, start + 29))
    segments = pl.DataFrame(truth, schema={"sample_id": pl.String, "label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64},
                            orient="row")
    return probs, segments


def test_per_class_thresholds_raise_val_f1_where_one_threshold_cannot():
    probs, truth = _two_class_sequence()
    decode_at = detectors.frame_decoder({"S": probs}, _track2(model={"detector": "frame"}, decode={"smooth": 1, "min_length": 4}))
    threshold, trials = track2.tune_for_f1(decode_at, truth, [0.3, 0.5], 2, 0.3)
    assert (threshold, track2.best_trial(trials)["f1"]) == (0.3, pytest.approx(0.8))  # 4 found, 2 false
    per_class, f1 = track2.tune_class_thresholds(decode_at, truth, [0.3, 0.5], 2, 0.3, threshold, {}, min_gestures=2)
    assert per_class == [0.3, 0.5] and f1 == pytest.approx(1.0)
    assert decode_at(threshold, class_thresholds=per_class).height == 4
    assert track2.tune_class_thresholds(decode_at, truth, [0.3, 0.5], 2, 0.3, threshold, {}, min_gestures=3) == (None, pytest.approx(0.8))
    given = track2.tune_class_thresholds(decode_at, truth, [0.3, 0.5], 2, 0.3, threshold, {}, min_gestures=2, shared_f1=0.8)
    assert given == (per_class, pytest.approx(1.0))


def test_val_tuning_keeps_per_class_thresholds_in_the_decoding_setting():
    """`decode.class_thresholds_from` puts them in the setting `decode_at` (and so predict, evaluate and `miga online`) reads."""
    from types import SimpleNamespace

    from miga.track2 import pipeline

    probs, truth = _two_class_sequence()
    data = SimpleNamespace(segments=truth, num_classes=2)
    for minimum, expected_setting, expected_f1 in ((0, {}, 0.8), (2, {"class_thresholds": [0.3, 0.5]}, 1.0)):
        options = _track2(model={"detector": "frame"}, decode={"smooth": 1, "min_length": 4, "thresholds": [0.3, 0.5],
                                                               "class_thresholds_from": minimum})
        decode_at = detectors.frame_decoder({"S": probs}, options)
        threshold, _, setting, val_f1 = pipeline._tuned_on_val(decode_at, data, ["S"], options, 0.3)
        assert (threshold, setting, val_f1) == (0.3, expected_setting, pytest.approx(expected_f1))


def test_one_threshold_per_class_must_match_the_classes():
    from miga.track2.segments import frame_scores_to_segments

    probs, _ = _two_class_sequence()
    found = frame_scores_to_segments(probs, sample_id="S", threshold=np.array([0.3, 0.5]), min_length=4)
    assert found["label"].to_list() == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="one threshold per gesture class"):
        frame_scores_to_segments(probs, sample_id="S", threshold=np.array([0.3, 0.5, 0.7]))


def test_best_trial_breaks_ties_by_the_lowest_threshold_then_the_last_setting():
    trial = lambda smooth, threshold, f1: {"smooth": smooth, "threshold": threshold, "f1": f1, "f1_one_to_one": f1}  # noqa: E731
    trials = [trial(5, 0.1, 0.8), trial(5, 0.2, 0.9), trial(9, 0.2, 0.9), trial(9, 0.3, 0.9), trial(15, 0.1, 0.7)]
    assert track2.best_trial(trials) == trial(9, 0.2, 0.9)
    assert track2.best_trial(trials + [trial(15, 0.5, 0.95)]) == trial(15, 0.5, 0.95)


def test_track2_data_folds_reassign_splits():
    from miga.track2.pipeline import Track2Data

    class Store(dict):
        layout = "kinect25"

    store = Store({f"s{i}": _stream(40) for i in range(3)})
    manifest = pl.DataFrame({"sample_id": list(store), "dataset": "stream", "split": "train", "subject": [1, 2, 3], "video": None,
                             "video_start": 0, "start_frame": 0, "end_frame": 39, "label": None, "fps": 15.0, "width": None, "height": None},
                            schema_overrides={"video": pl.String, "label": pl.Int64, "width": pl.Int64, "height": pl.Int64})
    segments = pl.DataFrame({"sample_id": ["s0", "s2"], "label": [0, 1], "start_frame": [5, 10], "end_frame": [20, 30]})
    data = Track2Data.from_tables(["a", "b"], manifest, segments, store)
    fold = data.with_splits({"s0": "test", "s1": "val", "s2": "train"})
    assert list(fold.features("test")) == ["s0"] and list(fold.features("val")) == ["s1"] and list(fold.features("train")) == ["s2"]
    assert data.manifest["split"].to_list() == ["train"] * 3 and fold.num_classes == 2


def test_time_stretch_resamples_features_labels_and_segments_together():
    t = 400
    features = [np.arange(t, dtype=np.float32)[:, None].repeat(2, axis=1)]  # feature = the source frame number
    labels = [np.where((np.arange(t) >= 100) & (np.arange(t) < 200), 2, 0).astype(np.int64)]
    data = windows.WindowDataset(features, labels, window=64, per_epoch=16, seed=0, stretch=0.5)
    spans = set()
    for i in range(16):
        seq, start, span = data.draw_span(i)
        spans.add(span)
        x, y = data[i]
        assert x.shape == (2, 64) and y.shape == (64,)
        frames = x[0].numpy()
        assert np.all(np.diff(frames) > 0) and abs((frames[-1] - frames[0]) - (span - 1) * 63 / 64) < 1.5
        inside = np.round(frames).astype(int)
        expected = np.where((inside >= 100) & (inside < 200), 2, 0)
        assert (y.numpy() == expected)[np.abs(frames - inside) < 0.3].all()  # label = that of the frame shown
    assert min(spans) < 64 < max(spans) and all(43 <= s <= 96 for s in spans)
    plain = windows.WindowDataset(features, labels, window=64, per_epoch=4, seed=0)
    assert all(plain.draw_span(i)[2] == 64 for i in range(4))
    from miga.track2 import detection

    pyramid = detection.Pyramid((1, 2, 4), base_range=4.0)
    boxes = windows.DetectionWindows(features, [np.array([[1, 100, 199]])], window=64, per_epoch=16, seed=0, pyramid=pyramid,
                                    num_classes=3, radius=1.5, stretch=0.5)
    for i in range(16):
        x, classes, distances = boxes[i]
        positive = classes.sum(0) > 0
        if positive.any():  # the class-1 target sits where the features show frames 100..199
            centres, strides, _, _ = pyramid.positions(64)
            shown = np.interp(centres[positive.numpy()], np.arange(64) + 0.5, x[0].numpy())
            assert ((shown > 95) & (shown < 205)).all() and (classes[1] == classes.sum(0)).all()


def test_affine_copy_keeps_scores_and_is_the_identity_at_strength_zero():
    kp = _stream()
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(track2.affine_copy(kp, rng, 0.0), kp, atol=1e-4)
    moved = track2.affine_copy(kp, rng, 0.2)
    assert moved.shape == kp.shape and np.array_equal(moved[..., 2], kp[..., 2])
    assert not np.allclose(moved[..., :2], kp[..., :2], atol=1e-2)
    bones = np.linalg.norm(kp[..., 1, :2] - kp[..., 0, :2], axis=-1)
    moved_bones = np.linalg.norm(moved[..., 1, :2] - moved[..., 0, :2], axis=-1)
    assert np.all(moved_bones < bones * 1.5) and np.all(moved_bones > bones * 0.5)  # a mild map, not a collapse


def test_causal_normalisation_gives_a_stream_the_offline_features():
    kp = _stream(120)
    kp[0, :, :, 0] += np.linspace(0, 80, 120)[:, None]  # the person walks: the whole-sequence centre is not causal
    causal = track2.FeatureConfig(parts=("joints", "posture", "velocity"), norm_window=32)
    full = track2.frame_features(kp, "kinect25", causal)
    np.testing.assert_allclose(track2.frame_features(kp[:, :70], "kinect25", causal), full[:70], atol=1e-5)  # a prefix
    window = track2.frame_features(kp[:, 50:], "kinect25", causal)  # a stream window that starts at frame 50
    np.testing.assert_allclose(window[32:], full[50 + 32:], atol=1e-5)  # once it holds each frame's last 32 frames
    whole = track2.FeatureConfig(parts=("joints", "posture", "velocity"))
    assert not np.allclose(track2.frame_features(kp[:, :70], "kinect25", whole), track2.frame_features(kp, "kinect25", whole)[:70], atol=1e-2)


@pytest.mark.parametrize(("eligible", "val_f1", "chosen"), [
    (["detector", "window_logreg"], {"detector": 0.5, "window_logreg": 0.6}, "window_logreg"),
    (["detector", "window_logreg"], {"detector": 0.5, "window_logreg": 0.5}, "detector"),  # a tie: the first listed
    (["window_logreg", "detector"], {"detector": 0.5, "window_logreg": 0.5}, "window_logreg"),
    (["detector"], {"detector": 0.2, "window_logreg": 0.9}, "detector"),  # only the eligible compete
    (["detector", "window_logreg"], {"detector": None, "window_logreg": None}, "detector"),  # no val split
    (["detector", "window_logreg"], {"detector": None, "window_logreg": 0.1}, "window_logreg"),
])
def test_the_candidate_with_the_best_val_f1_is_chosen(eligible, val_f1, chosen):
    from miga.track2.pipeline import choose_candidate

    assert choose_candidate(eligible, val_f1) == chosen


@pytest.mark.parametrize(("val_f1", "chosen"), [
    ({"detector": 0.90, "window_logreg": 0.95, "blend": 0.93}, "detector"),  # both within the margin: the first stays
    ({"detector": 0.90, "window_logreg": 0.97, "blend": 0.93}, "window_logreg"),
    ({"detector": 0.80, "window_logreg": 0.87, "blend": 0.93}, "blend"),  # of those past the margin, the best
    ({"detector": None, "window_logreg": 0.10, "blend": None}, "window_logreg"),
])
def test_a_later_candidate_must_beat_the_first_by_the_margin(val_f1, chosen):
    from miga.track2.pipeline import choose_candidate

    assert choose_candidate(["detector", "window_logreg", "blend"], val_f1, margin=0.0625) == chosen


def test_the_switch_margin_is_one_val_instance_of_f1():
    from miga.track2.pipeline import switch_margin_f1

    data, config = _waving_data()
    segments = pl.concat([data.segments, pl.DataFrame({"sample_id": ["s2"], "label": [1], "start_frame": [90], "end_frame": [110]})])
    data = type(data).from_tables(data.class_names, data.manifest, segments, data.store)
    options = merged(config["track2"], {"decode": {"switch_margin": 1.0}})
    assert switch_margin_f1(options, data, ["s2"]) == pytest.approx(0.5)  # two val segments
    assert switch_margin_f1(options, data, ["s2", "s3"]) == pytest.approx(1 / 3)
    assert switch_margin_f1(merged(options, {"decode": {"switch_margin": 0}}), data, ["s2"]) == 0.0
    assert switch_margin_f1(options, data, []) == 0.0


def _waving(seed: int, frames: int = 120, start: int = 40, end: int = 79) -> np.ndarray:
    """`_stream`'s resting person whose right hand (Kinect joints 10, 11) swings side to side in [start, end]."""
    kp = _stream(frames)
    rng = np.random.default_rng(seed)
    kp[0, :, :, :2] += rng.normal(0, 0.3, (frames, 25, 2))
    kp[0, start: end + 1, 10:12, 0] += 30 * np.sin(np.arange(end + 1 - start) / 3)[:, None]
    return kp


def _waving_data():
    """Four `_waving` sequences (train, train, val, test) as Track2Data, and a small frame-detector config."""
    from miga.track2.pipeline import Track2Data

    class Store(dict):
        layout = "kinect25"

    ids = ["s0", "s1", "s2", "s3"]
    store = Store({sid: _waving(i) for i, sid in enumerate(ids)})
    manifest = pl.DataFrame({"sample_id": ids, "dataset": "stream", "split": ["train", "train", "val", "test"], "subject": [1, 2, 3, 4],
                             "video": None, "video_start": 0, "start_frame": 0, "end_frame": 119, "label": None, "fps": 15.0,
                             "width": None, "height": None},
                            schema_overrides={"video": pl.String, "label": pl.Int64, "width": pl.Int64, "height": pl.Int64})
    segments = pl.DataFrame({"sample_id": ids, "label": [1] * 4, "start_frame": [40] * 4, "end_frame": [79] * 4})
    config = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    config["track2"] = merged(config["track2"], {
        "model": {"detector": "frame", "channels": 8, "layers": 1, "window_length": 16, "ensemble": 1},
        "train": {"epochs": 1, "window": 64, "windows_per_epoch": 4, "affine_copies": 0},
        "decode": {"window_stride": 4, "smooth": [1, 5], "min_length": [1], "thresholds": [0.3, 0.5]}})
    return Track2Data.from_tables(["still", "wave"], manifest, segments, store), config


def test_blend_candidate_decodes_the_mean_of_the_detector_and_window_probabilities():
    from miga.baselines import window_frame_probabilities
    from miga.track2.detectors import frame_decoder, sequence_probabilities
    from miga.track2.pipeline import blend_candidate, fitted_window_logreg

    data, config = _waving_data()
    options = config["track2"]
    width = next(iter(data.features_of(["s0"], track2.feature_config(options)).values())).shape[1]
    torch.manual_seed(0)
    model = track2.build_detector(options, in_features=width, num_classes=2)  # untrained: the window baseline carries the blend
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    fitted = fitted_window_logreg(config, data, ["s2", "s3"])

    features = data.features_of(["s2", "s3"], track2.feature_config(options))
    detector_probs = {sid: sequence_probabilities(model, standardize(f)) for sid, f in features.items()}

    found, settings = blend_candidate(config, data, detector_probs, fitted, ["s2"])

    mean = {sid: (p + window_frame_probabilities(fitted[0], fitted[1][sid], 2)) / 2 for sid, p in detector_probs.items()}
    assert found.equals(frame_decoder(mean, options)(settings["threshold"], **settings["decoding"]))
    assert settings["val_f1"] > 0.5 and set(found["sample_id"]) <= {"s2", "s3"}


def test_compare_candidates_has_no_blend_for_a_detector_without_frame_probabilities():
    from miga.errors import ConfigError
    from miga.track2.pipeline import compare_candidates

    data, config = _waving_data()
    config["track2"] = merged(config["track2"], {"model": {"detector": "anchorfree", "levels": 2}})
    width = next(iter(data.features_of(["s0"], track2.feature_config(config["track2"])).values())).shape[1]
    model = track2.build_detector(config["track2"], in_features=width, num_classes=2)
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    found = compare_candidates(config, model, standardize, data, blend=True)
    assert set(found.detections) == {"detector", "window_logreg"} and (found.val_ids, found.test_ids) == (["s2"], ["s3"])
    config["track2"]["decode"]["candidates"] = ["blend"]
    with pytest.raises(ConfigError, match="blend needs a detector with per-frame probabilities"):
        compare_candidates(config, model, standardize, data)


@pytest.mark.parametrize("kind", ["frame", "anchorfree"])
def test_compare_candidates_keeps_the_detector_decoder_over_val_and_test(kind):
    from miga.track2.pipeline import compare_candidates, detector_outputs

    data, config = _waving_data()
    config["track2"] = merged(config["track2"], {"model": {"detector": kind, "levels": 2},  # untrained: low thresholds find some
                                                 "decode": {"thresholds": [0.01, 0.4], "min_length": [1, 3], "pre_threshold": 0.0}})
    options = config["track2"]
    width = next(iter(data.features_of(["s0"], track2.feature_config(options)).values())).shape[1]
    torch.manual_seed(0)
    model = track2.build_detector(options, in_features=width, num_classes=2)
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    found = compare_candidates(config, model, standardize, data)
    setting = found.settings["detector"]
    assert found.detector_decode_at(setting["threshold"], **setting["decoding"]).equals(found.detections["detector"])
    on_test, _ = detector_outputs(options, model, standardize, data, found.test_ids)  # the model run on test alone
    thresholds, grid = track2.decode_trials(options)
    found_on_test = 0
    for threshold in thresholds:
        for kwargs in grid:
            kept = found.detector_decode_at(threshold, **kwargs).filter(pl.col("sample_id").is_in(found.test_ids))
            assert kept.equals(on_test(threshold, **kwargs))
            found_on_test += kept.height
    assert found_on_test > 0


def test_predict_submits_the_blend_when_listed_and_best_on_val(tmp_path):
    from miga.track2 import pipeline

    data, config = _waving_data()
    config["track2"]["decode"]["candidates"] = ["detector", "window_logreg", "blend"]
    config["track2"]["decode"]["switch_margin"] = 0.5
    pipeline.train(config, data, project=tmp_path)
    tuning = pipeline.predict(config, data, project=tmp_path)
    assert set(tuning["candidates"]) == {"detector", "window_logreg", "blend"}
    val_f1 = {name: c["val_f1"] for name, c in tuning["candidates"].items()}
    assert tuning["chosen"] == pipeline.choose_candidate(config["track2"]["decode"]["candidates"], val_f1, tuning["switch_margin_f1"])
    assert tuning["switch_margin_f1"] == pytest.approx(0.5)  # half of one val segment
    assert {"threshold", "decoding"} <= set(tuning["candidates"]["blend"])
    candidates = pl.read_parquet(tmp_path / pipeline.TRACK2_CANDIDATES)
    assert set(candidates["candidate"]) <= {"detector", "window_logreg", "blend"} and "blend" in set(candidates["candidate"])
    chosen = candidates.filter(pl.col("candidate") == tuning["chosen"]).drop("candidate")
    assert chosen.equals(pl.read_parquet(tmp_path / pipeline.TRACK2_DETECTIONS))
    config["track2"]["decode"]["candidates"] = ["detector", "window_logreg"]  # not listed: not computed
    assert set(pipeline.predict(config, data, project=tmp_path)["candidates"]) == {"detector", "window_logreg"}


@pytest.mark.parametrize("pairs, mirrored_labels", [([], [1, 1]), ([[0, 1]], [0, 0])])
def test_the_detectors_mirrored_copies_swap_the_side_classes(monkeypatch, tmp_path, pairs, mirrored_labels):
    """`train.mirror` trains on each sequence and its mirror; with `train.mirror_classes` the mirror's labels swap."""
    from miga.track2 import pipeline

    data, config = _waving_data()
    config["track2"] = merged(config["track2"], {"train": {"mirror": True, "mirror_classes": pairs}})
    seen = {}

    class Captured(Exception):
        pass

    def captured(options, inputs, per_sequence, num_classes, seed):
        seen["labels"] = [s["label"].to_list() for s in per_sequence]
        raise Captured

    monkeypatch.setattr(pipeline.track2, "training_set", captured)
    with pytest.raises(Captured):
        pipeline.fit_detector(config, data, checkpoint=tmp_path / "c.pt")
    assert seen["labels"] == [[1], [1]] + [[label] for label in mirrored_labels]  # two originals, then their mirrors
    config["track2"] = merged(config["track2"], {"train": {"mirror_classes": [[0, 2]]}})
    with pytest.raises(pipeline.ConfigError, match=r"track2.train.mirror_classes: mirror pair \[0, 2\]: classes are 0 .. 1"):
        pipeline.fit_detector(config, data, checkpoint=tmp_path / "c.pt")
    config["track2"] = merged(config["track2"], {"train": {"mirror": False}})  # a bad pair is an error with the mirror off too
    with pytest.raises(pipeline.ConfigError, match=r"track2.train.mirror_classes: mirror pair \[0, 2\]"):
        pipeline.fit_detector(config, data, checkpoint=tmp_path / "c.pt")


def test_mirror_classes_without_the_mirror_are_named_in_a_warning(monkeypatch, tmp_path):
    from miga.track2 import pipeline

    data, config = _waving_data()
    config["track2"] = merged(config["track2"], {"train": {"mirror": False, "mirror_classes": [[0, 1]]}})

    class Captured(Exception):
        pass

    def captured(options, inputs, per_sequence, num_classes, seed):
        raise Captured

    monkeypatch.setattr(pipeline.track2, "training_set", captured)
    with pytest.warns(UserWarning, match="track2.train.mirror_classes is set but track2.train.mirror is false"), pytest.raises(Captured):
        pipeline.fit_detector(config, data, checkpoint=tmp_path / "c.pt")


def test_streaming_reads_the_per_class_thresholds_predict_tuned(tmp_path):
    from miga.track2.pipeline import tuned_decoding

    tuning = tmp_path / "track2_tuning.json"
    tuning.write_text('{"threshold": 0.3, "decoding": {"smooth": 9, "class_thresholds": [0.3, 0.5]}, "chosen": "detector", "candidates": {"detector": {}}}')
    options = _track2(model={"detector": "frame"})
    assert tuned_decoding(options, tuning, num_classes=2) == (0.3, {"smooth": 9, "class_thresholds": [0.3, 0.5]})
    with pytest.raises(ConfigError, match="per-class thresholds for 2 classes, but the detector has 3"):
        tuned_decoding(options, tuning, num_classes=3)
    tuning.write_text('{"threshold": 0.3, "decoding": {"smooth": 9, "class_scale": [0.5, 1.5]}, "chosen": "detector", "candidates": {"detector": {}}}')
    assert tuned_decoding(options, tuning, num_classes=2) == (0.3, {"smooth": 9, "class_scale": [0.5, 1.5]})
    with pytest.raises(ConfigError, match="per-class length scales for 2 classes, but the detector has 3"):
        tuned_decoding(options, tuning, num_classes=3)


@pytest.mark.parametrize("edit, message", [
    ('"threshold": 7, "decoding": {}', "threshold 7 is not a probability"),
    ('"threshold": 0.3, "decoding": {"smooth": "nine"}', "decoding smooth must be a whole number"),
    ('"threshold": 0.3, "decoding": {"min_length": 0}', "decoding min_length must be a whole number"),
    ('"threshold": 0.3, "decoding": {"class_thresholds": [0.3, "high"]}', "per-class thresholds must be a list of probabilities"),
    ('"threshold": 0.3, "decoding": {"class_thresholds": [0.3, 1.5]}', "per-class thresholds must be a list of probabilities"),
    ('"threshold": 0.3, "decoding": {"class_scale": [0.5, -1]}', "per-class length scales must be a list of positive numbers"),
    ('"threshold": 0.3, "decoding": {"class_scale": 2}', "per-class length scales must be a list of positive numbers"),
    ('"threshold": 0.3, "decoding": {}, "switch_win_rate": 2', "switch_win_rate must be a number in"),
])
def test_a_hand_edited_tuning_file_is_one_error_naming_it(tmp_path, edit, message):
    from miga.track2.pipeline import tuned_decoding

    tuning = tmp_path / "track2_tuning.json"
    tuning.write_text("{" + edit + ', "chosen": "detector", "candidates": {"detector": {}}}')
    with pytest.raises(ConfigError, match=message) as raised:
        tuned_decoding(_track2(model={"detector": "frame"}), tuning, num_classes=2)
    assert str(tuning) in str(raised.value)


def test_class_relative_decoding_scales_each_class_by_its_training_length():
    from miga.track2.pipeline import Track2Data, class_length_scale, compare_candidates

    data, config = _waving_data()
    extra = pl.DataFrame({"sample_id": ["s0", "s1"], "label": [0, 0], "start_frame": [5, 5], "end_frame": [14, 24]})
    data = Track2Data.from_tables(data.class_names, data.manifest, pl.concat([data.segments, extra]), data.store)
    # training gestures: class 0 of 10 and 20 frames, class 1 of 40 and 40; the median of all four is 30
    assert class_length_scale(data) == pytest.approx([15 / 30, 40 / 30])
    # with a prior of 2 gestures, each class (2 gestures) keeps half the ratio, in logs
    assert class_length_scale(data, prior=2) == pytest.approx([(15 / 30) ** 0.5, (40 / 30) ** 0.5])
    options = config["track2"] = merged(config["track2"], {"decode": {"class_relative": True, "class_relative_prior": 0,
                                                                      "thresholds": [0.01, 0.4], "min_length": [1, 3]}})
    width = next(iter(data.features_of(["s0"], track2.feature_config(options)).values())).shape[1]
    torch.manual_seed(0)
    model = track2.build_detector(options, in_features=width, num_classes=2)
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    found = compare_candidates(config, model, standardize, data)
    setting = found.settings["detector"]["decoding"]
    assert setting["class_scale"] == pytest.approx([0.5, 4 / 3])  # recorded: `miga online` decodes with it too
    assert found.detector_decode_at(found.settings["detector"]["threshold"], **setting).equals(found.detections["detector"])
    config["track2"] = merged(options, {"decode": {"class_relative_prior": 2}})
    shrunk = compare_candidates(config, model, standardize, data).settings["detector"]["decoding"]["class_scale"]
    assert shrunk == pytest.approx([0.5 ** 0.5, (4 / 3) ** 0.5])  # track2.decode.class_relative_prior reaches the scales


def test_the_blend_candidate_decodes_with_the_class_scales(monkeypatch):
    from miga.track2 import pipeline

    data, config = _waving_data()
    options = config["track2"] = merged(config["track2"], {"decode": {"class_relative": True, "thresholds": [0.01, 0.4]}})
    width = next(iter(data.features_of(["s0"], track2.feature_config(options)).values())).shape[1]
    torch.manual_seed(0)
    model = track2.build_detector(options, in_features=width, num_classes=2)
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    scales_decoded = []
    real_frame_decoder = pipeline.frame_decoder

    def recording_frame_decoder(probs, options):
        decode_at = real_frame_decoder(probs, options)

        def recorded(threshold, **setting):
            scales_decoded.append(setting.get("class_scale"))
            return decode_at(threshold, **setting)
        return recorded

    monkeypatch.setattr(pipeline, "frame_decoder", recording_frame_decoder)
    found = pipeline.compare_candidates(config, model, standardize, data, blend=True)
    scale = pipeline.class_length_scale(data)
    assert found.settings["blend"]["decoding"]["class_scale"] == scale
    assert scales_decoded and all(decoded == scale for decoded in scales_decoded)  # the detector's and the blend's


def test_the_decoding_grid_scales_with_the_training_gestures_length():
    from miga.track2.pipeline import compare_candidates, length_factor, with_length_factor

    data, config = _waving_data()  # training gestures of 40 frames
    options = merged(config["track2"], {"decode": {"smooth": [1, 5, 9], "min_length": [0, 4, 6]}})
    assert length_factor(options, data) == 1.0  # length_reference 0: the grid as written
    assert with_length_factor(options, 1.0) is options
    assert length_factor(merged(options, {"decode": {"length_reference": 80}}), data) == 1.0  # never shrunk
    options = merged(options, {"decode": {"length_reference": 10}})
    assert length_factor(options, data) == 4.0
    scaled = with_length_factor(options, 4.0)["decode"]
    assert (scaled["smooth"], scaled["min_length"]) == ([4, 20, 36], [0, 16, 24])
    assert with_length_factor(options, 0.1)["decode"]["smooth"] == [1]  # one value once, never below 1
    config["track2"] = options
    width = next(iter(data.features_of(["s0"], track2.feature_config(options)).values())).shape[1]
    torch.manual_seed(0)
    model = track2.build_detector(options, in_features=width, num_classes=2)
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    found = compare_candidates(config, model, standardize, data)
    assert {(t["smooth"], t["min_length"]) for t in found.trials} == {(s, m) for s in (4, 20, 36) for m in (0, 16, 24)}
    assert found.settings["detector"]["length_factor"] == 4.0 and found.options["decode"]["smooth"] == [4, 20, 36]
    decoding = found.settings["detector"]["decoding"]
    assert decoding["smooth"] in (4, 20, 36) and decoding["min_length"] in (0, 16, 24)
    # one value per grid: nothing is tuned, but the setting still names the scaled widths, so that `miga online`,
    # which reads the unscaled params, decodes at what val tuned
    config["track2"] = merged(options, {"decode": {"smooth": 5, "min_length": 4}})
    single = compare_candidates(config, model, standardize, data).settings["detector"]["decoding"]
    assert (single["smooth"], single["min_length"]) == (20, 16)


@pytest.mark.parametrize("confidence, win_rate, chosen", [(0.9, 0.5, "detector"), (0.4, 0.5, "window_logreg"), (0.0, None, "window_logreg")])
def test_another_candidate_replaces_the_detector_only_with_a_confident_val_gain(monkeypatch, confidence, win_rate, chosen):
    from miga.track2 import pipeline

    data, config = _waving_data()
    options = config["track2"] = merged(config["track2"], {"decode": {"switch_confidence": confidence}})
    width = next(iter(data.features_of(["s0"], track2.feature_config(options)).values())).shape[1]
    torch.manual_seed(0)
    model = track2.build_detector(options, in_features=width, num_classes=2)
    standardize = track2.Standardizer(np.zeros(width, np.float32), np.ones(width, np.float32))
    compared = []
    monkeypatch.setattr(pipeline, "choose_candidate", lambda eligible, val_f1, margin: "window_logreg")  # val F1 prefers it

    def win_rate_of(truth, first, challenger, ids, **kwargs):
        compared.append((first, challenger, ids))
        return 0.5

    monkeypatch.setattr(pipeline, "f1_win_rate", win_rate_of)
    found = pipeline.compare_candidates(config, model, standardize, data)
    assert found.chosen == chosen and found.switch_win_rate == win_rate
    if confidence:  # the two candidates' own detections, on the val sequences
        (first, challenger, ids), = compared
        assert first.equals(found.detections["detector"]) and challenger.equals(found.detections["window_logreg"]) and ids == ["s2"]
    else:
        assert not compared
