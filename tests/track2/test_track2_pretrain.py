"""Masked-frame pretraining of the frame detector's trunk (miga/track2/pretrain.py) and its place in fit_detector."""

import numpy as np
import pytest
import torch

from miga.errors import ConfigError
from miga.models.temporal import create_temporal_convnet
from miga.params import merged
from miga.track2.pretrain import MaskedFrameModel, MaskedFrames, masked_frame_loss
from miga.training import TrainConfig, fit, seed_everything
from tests.track2.test_track2 import _waving_data


def _smooth_sequences(n: int = 4, length: int = 200, features: int = 6) -> list[np.ndarray]:
    t = np.arange(length)[:, None]
    return [np.sin(t / (8 + 3 * k) + np.arange(features)[None]).astype(np.float32) for k in range(n)]


def test_masked_frames_hide_spans_inside_the_sequence_and_keep_the_rest():
    data = MaskedFrames(_smooth_sequences(length=50), window=64, per_epoch=20, seed=0, mask_ratio=0.3, span=8)
    shares = []
    for index in range(len(data)):
        masked, target, hidden = data[index]
        assert masked.shape == target.shape == (6, 64) and hidden.shape == (64,)
        assert torch.all(masked[:, hidden] == 0) and torch.equal(masked[:, ~hidden], target[:, ~hidden])
        assert not hidden[50:].any()  # past the 50-frame sequence's end: padding, nothing to predict
        shares.append(hidden[:50].float().mean().item())
    assert 0.1 < np.mean(shares) < 0.6
    again = MaskedFrames(_smooth_sequences(length=50), window=64, per_epoch=20, seed=0, mask_ratio=0.3, span=8)
    assert torch.equal(again[3][2], data[3][2])  # the draw depends on (seed, epoch, index) only
    data.set_epoch(1)
    assert any(not torch.equal(again[i][2], data[i][2]) for i in range(5))


def test_pretraining_learns_to_fill_hidden_frames_and_trains_only_the_trunk(tmp_path):
    seed_everything(0)
    detector = create_temporal_convnet(in_features=6, num_classes=3, channels=16, layers=3, dropout=0.0)
    head_before = detector.out.weight.detach().clone()
    trunk_before = detector.inp.weight.detach().clone()
    data = MaskedFrames(_smooth_sequences(), window=64, per_epoch=32, seed=0, mask_ratio=0.3, span=4)
    history = fit(MaskedFrameModel(detector), data, config=TrainConfig(epochs=15, batch_size=8, lr=0.01, optimizer="adamw", workers=0),
                  loss_fn=masked_frame_loss, checkpoint=tmp_path / "pretrain.pt", run_id="t")
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert torch.equal(detector.out.weight, head_before)  # the classifier is untouched
    assert not torch.equal(detector.inp.weight, trunk_before)  # the trunk it shares with the detector learned


def test_masked_frame_model_needs_the_frame_detectors_trunk():
    with pytest.raises(TypeError, match="TemporalConvNet"):
        MaskedFrameModel(torch.nn.Linear(3, 3))


def test_fit_detector_pretrains_on_the_listed_splits_before_training(tmp_path, monkeypatch):
    from miga.track2 import pipeline

    data, config = _waving_data()
    config["track2"] = merged(config["track2"], {"pretrain": {"epochs": 2, "splits": ["train", "val", "test"]}})
    seen = {}
    original = pipeline._pretrain

    def recorded(detector, options, frames, train_config, **kwargs):
        seen["frames"] = None if frames is None else len(frames)
        return original(detector, options, frames, train_config, **kwargs)

    monkeypatch.setattr(pipeline, "_pretrain", recorded)
    pipeline.fit_detector(config, data, checkpoint=tmp_path / "c.pt")
    assert seen["frames"] == 4 and (tmp_path / "c.pretrain.pt").exists()  # 2 train + val + test sequences, labels unread
    config["track2"] = merged(config["track2"], {"pretrain": {"epochs": 0}})
    pipeline.fit_detector(config, data, checkpoint=tmp_path / "d.pt")
    assert seen["frames"] is None and not (tmp_path / "d.pretrain.pt").exists()


def test_pretraining_another_detector_kind_is_a_config_error(tmp_path):
    from miga.track2 import pipeline

    data, config = _waving_data()
    config["track2"] = merged(config["track2"], {"model": {"detector": "window"}, "pretrain": {"epochs": 2}})
    with pytest.raises(ConfigError, match="track2.pretrain pretrains the frame detector's trunk; detector 'window'"):
        pipeline.fit_detector(config, data, checkpoint=tmp_path / "c.pt")
