import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from miga.params import defaults, merged
from miga.track2.online import OnlineDetector, emitted_table, run_stream
from miga.track2.segments import _detections


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


def test_trained_detector_streaming_agrees_with_offline():
    from miga.track2 import detection, detectors, windows
    from miga.evaluation.metrics import detection_metrics
    from miga.models import build_model
    from miga.training import TrainConfig, fit, seed_everything

    rng = np.random.default_rng(0)

    def sequence(length):
        features = rng.normal(0, 0.3, (length, 4)).astype(np.float32)
        segments, t = [], int(rng.integers(10, 40))
        while t + 60 < length:
            label, size = int(rng.integers(0, 2)), int(rng.integers(16, 48))
            features[t: t + size, label] += 2.0
            segments.append((label, t, t + size - 1))
            t += size + int(rng.integers(20, 60))
        return features, np.array(segments)

    train = [sequence(1024) for _ in range(4)]
    seed_everything(0)
    model = build_model("temporal_detector", in_features=4, num_classes=2, channels=16, layers=2, levels=4, dropout=0.0)
    pyramid = detection.Pyramid(model.strides)
    data = windows.DetectionWindows([f for f, _ in train], [s for _, s in train], window=128, per_epoch=64, seed=0,
                                   pyramid=pyramid, num_classes=2, radius=1.5)
    fit(model, data, config=TrainConfig(epochs=12, batch_size=8, lr=0.01, optimizer="adamw", weight_decay=0.0), loss_fn=detectors.detector_loss,
        checkpoint=Path(tempfile.mkdtemp()) / "ckpt.pt", run_id="online-test", description="online test")
    config = detection.DetectorDecodeConfig(threshold=0.3, min_length=4)

    def detect(keypoints):  # keypoints (1, W, 4, 1) carry the features
        features = keypoints[0, :, :, 0]
        scores, distances = detectors.detector_outputs(model, features)
        return detection.decode_sequence("w", scores, distances, pyramid, len(features), config)

    features, segments = sequence(1500)
    truth = pl.DataFrame({"sample_id": "S", "label": segments[:, 0], "start_frame": segments[:, 1], "end_frame": segments[:, 2]})
    offline = detect(features[None, :, :, None]).with_columns(pl.lit("S").alias("sample_id"))
    streamer = OnlineDetector(detect, window=128, hop=16, guard=16)
    streamed = emitted_table("S", run_stream(streamer, features[:, :, None]))
    f1 = {name: detection_metrics(truth, found, num_classes=2, iou_threshold=0.3)["one_to_one"]["f1"]
          for name, found in (("offline", offline), ("streaming", streamed))}
    assert f1["offline"] > 0.5, f1  # a short training run; the point is the agreement below
    assert f1["streaming"] > f1["offline"] - 0.15, f1


@pytest.mark.parametrize("norm_window, class_scale", [(0, None), (48, None), (48, [0.6, 3.0])])
def test_causal_features_make_the_frame_detector_stream_what_offline_decodes(norm_window, class_scale):
    import torch

    from miga.track2 import recipe as track2
    from miga.track2.online import online_detector
    from miga.evaluation.metrics import detection_metrics

    rng = np.random.default_rng(1)
    frames = 600
    kp = np.zeros((1, frames, 25, 3), np.float32)
    kp[0, :, :, :2] = rng.uniform(100, 200, (25, 2)) + rng.normal(0, 2, (frames, 25, 2))
    kp[0, :, :, 0] += np.linspace(0, 300, frames)[:, None]  # the person walks across the image
    kp[0, :, :, 2] = 1
    options = merged(defaults("track2"), {
        "model": {"detector": "frame", "channels": 16, "layers": 3, "dropout": 0.0, "ensemble": 1},
        "features": {"parts": ["joints", "posture", "velocity"], "velocity_steps": [1, 4], "norm_window": norm_window},
        "decode": {"smooth": 5, "min_length": 4, "nms_iou": 0.5}})
    features = track2.frame_features(kp, "kinect25", track2.feature_config(options))
    standardize = track2.Standardizer.fit([features])
    torch.manual_seed(0)
    model = track2.build_detector(options, features.shape[1], 2)
    with torch.no_grad():
        model.out.bias.copy_(torch.tensor([0.0, 0.3, 0.3]))  # an untrained model: some frames above threshold
    setting = {} if class_scale is None else {"class_scale": class_scale}  # per class: smoothed over 3 and 15 frames
    offline = track2.make_decoder(model, options, {"S": standardize(features)})(0.4, **setting).with_columns(pl.lit("S").alias("sample_id"))
    streamer = online_detector(model, standardize, "kinect25", options, 0.4, setting, window=192, hop=8, guard=24)
    streamed = emitted_table("S", run_stream(streamer, kp[0]))
    assert offline.height >= 5
    agreement = detection_metrics(offline.with_columns(pl.col("label")), streamed, num_classes=2, iou_threshold=0.9)["one_to_one"]["f1"]
    if norm_window:  # causal features: the stream decodes the frames the offline pass decodes
        assert agreement > 0.95, agreement
    else:  # whole-sequence normalisation: a prefix is normalised differently
        assert agreement < 0.9, agreement


def test_the_streams_look_back_covers_the_widest_class_smoothing():
    from miga.params import defaults, merged
    from miga.track2 import recipe

    options = merged(defaults("track2"), {"decode": {"smooth": [5, 31]}})
    plain = recipe.past_context(options)
    assert recipe.past_context(options, [0.5, 1.0]) == plain  # no class is smoothed wider than 31
    assert recipe.past_context(options, [0.5, 2.0]) == plain - 31 // 2 + 62 // 2
    # a tuned smoothing wider than the grid's (a length factor scaled it): the look-back covers it
    assert recipe.past_context(options, [0.5, 2.0], smooth=400) == plain - 31 // 2 + 800 // 2
