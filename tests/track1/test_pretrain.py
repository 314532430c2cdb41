"""Self-supervised pretraining of the skeleton streams (miga/track1/pretrain.py) and where the Track 1 pipeline runs it."""

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from miga.io import InMemoryKeypoints
from miga.params import defaults, validated
from miga.track1 import pipeline, recipe
from miga.track1.pretrain import ContrastiveModel, TwoViewClips, contrastive_loss, nt_xent
from miga.training import TrainConfig, fit, seed_everything


def test_nt_xent_is_low_when_each_view_matches_its_pair_and_high_when_it_does_not():
    z = torch.eye(4) * 5
    matched = nt_xent(z, z + 0.01, temperature=0.2)
    shuffled = nt_xent(z, z[[1, 2, 3, 0]], temperature=0.2)
    assert matched < 0.05 < 2.0 < shuffled


def _clips(n: int = 12):
    rng = np.random.default_rng(0)
    keypoints = {f"c{i}": np.concatenate([rng.uniform(50, 150, (1, 20, 35, 2)), np.ones((1, 20, 35, 1))], -1).astype(np.float32)
                 for i in range(n)}
    store = InMemoryKeypoints(keypoints, "openpose25_hands10")
    skeleton = defaults("track1.skeleton") | {"clip_len": 8}
    return recipe.clip_dataset("tcn", list(store.ids), np.full(n, -1), defaults("track1.heatmap"), train=True, seed=0, store=store,
                               skeleton=skeleton), skeleton, store


def test_two_views_of_a_clip_are_two_different_augmentations():
    clips, _, _ = _clips()
    views, _ = TwoViewClips(clips)[0]
    assert views.shape == (2, 3, 8, 35) and not torch.equal(views[0], views[1])
    with pytest.raises(ValueError, match="train=True"):
        TwoViewClips(_test_clips())


def _test_clips():
    _, skeleton, store = _clips(2)
    return recipe.clip_dataset("tcn", list(store.ids), np.zeros(2, np.int64), defaults("track1.heatmap"), train=False, seed=0,
                               store=store, skeleton=skeleton)


def test_pretraining_lowers_the_contrastive_loss_and_keeps_the_classifier():
    clips, skeleton, store = _clips()
    model_params = defaults("track1.model") | {"tcn_channels": 16, "tcn_blocks": 2}
    seed_everything(0)
    network = recipe.build_stream("tcn", model_params, recipe.StreamInputs(1, 3, store.layout), skeleton)
    fc, stem = network.fc.weight.detach().clone(), network.stem[0].weight.detach().clone()
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(ContrastiveModel(network, 16), TwoViewClips(clips), config=TrainConfig(epochs=8, batch_size=6, lr=0.003, optimizer="adamw"),
                      loss_fn=contrastive_loss(0.2), checkpoint=Path(tmp) / "p.pt", run_id="p", description="pretrain")
    assert history[-1]["loss"] < history[0]["loss"]
    assert torch.equal(network.fc.weight, fc) and not torch.equal(network.stem[0].weight, stem)


def test_only_the_skeleton_streams_pretrain_and_only_when_asked():
    on = validated({"track1": {"pretrain": {"epochs": 2}}})
    assert pipeline.pretrains("tcn", on) and pipeline.pretrains("joint", on)
    assert not pipeline.pretrains("pose", on) and not pipeline.pretrains("rgb", on)
    assert not pipeline.pretrains("tcn", validated({}))
    assert pipeline._stream_params("tcn", on) != pipeline._stream_params("tcn", validated({}))  # a resumed run never mixes them
