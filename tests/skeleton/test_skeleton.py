"""The skeleton streams' input (miga/track1/skeleton.py) and the ST-GCN++ stream learning from it."""

import tempfile
from pathlib import Path

import numpy as np
import pytest

from miga.layouts import get_layout
from miga.params import defaults
from miga.track1 import recipe
from miga.track1.skeleton import (SkeletonClipConfig, SkeletonClipPipeline, SkeletonClips, fill_gaps, mirror,
                                  normalised_clip, parents, stream_features)
from miga.training import TrainConfig, fit, seed_everything

LAYOUT = "mediapipe_upper25"


def _person(t_len: int, rng: np.random.Generator, *, wave: float = 0.0) -> np.ndarray:
    """A standing upper body `(1, T, 25, 3)` in pixels; `wave` moves the right wrist and hand points up and down."""
    spec = get_layout(LAYOUT)
    base = {"Nose": (0, -60), "LShoulder": (25, -30), "RShoulder": (-25, -30), "LElbow": (30, 0), "RElbow": (-30, 0),
            "LWrist": (30, 30), "RWrist": (-30, 30), "LHip": (15, 40), "RHip": (-15, 40)}
    kp = np.zeros((t_len, spec.num_joints, 3))
    for j, name in enumerate(spec.joints):
        x, y = base.get(name, base.get(("L" if name.startswith("L") else "R") + "Wrist", (0, -60)) if name[1:] in ("Pinky", "Index", "Thumb") else (0, -60))
        kp[:, j] = (200 + x, 150 + y, 0.9)
    hand = [spec.index(n) for n in ("RWrist", "RPinky", "RIndex", "RThumb")]
    kp[:, hand, 1] -= wave * 40 * np.sin(np.linspace(0, 4 * np.pi, t_len))[:, None]
    kp[..., :2] += rng.normal(0, 1.0, kp[..., :2].shape)
    return kp[None].astype(np.float32)


def test_fill_gaps_interpolates_short_gaps_only():
    kp = np.zeros((10, 1, 3))
    kp[:, 0, 0] = np.arange(10) * 2.0
    kp[:, 0, 2] = 1.0
    kp[3:5, 0] = 0  # a 2-frame gap
    kp[6:10, 0, 2] = 0  # missing to the end: nothing to interpolate towards
    out = fill_gaps(kp, max_gap=2)
    np.testing.assert_allclose(out[3:5, 0, 0], [6.0, 8.0])
    assert (out[3:5, 0, 2] == 1).all() and (out[6:, 0, 2] == 0).all()
    assert (fill_gaps(kp, max_gap=1)[3:5, 0, 2] == 0).all()  # the gap is longer than max_gap


def test_normalised_clip_ignores_where_and_how_big_the_person_is():
    rng = np.random.default_rng(0)
    kp = _person(20, rng, wave=1.0)
    moved = kp.copy()
    moved[..., :2] = moved[..., :2] * 2.5 + 100
    np.testing.assert_allclose(normalised_clip(kp, LAYOUT, 5), normalised_clip(moved, LAYOUT, 5), atol=1e-5)


def test_mirror_swaps_sides_and_negates_x():
    spec = get_layout(LAYOUT)
    clip = normalised_clip(_person(8, np.random.default_rng(1), wave=1.0), LAYOUT, 5)
    flipped = mirror(clip, spec.flip_index)
    left, right = spec.index("LWrist"), spec.index("RWrist")
    np.testing.assert_allclose(flipped[:, left, 0], -clip[:, right, 0])
    np.testing.assert_allclose(flipped[:, left, 1], clip[:, right, 1])
    np.testing.assert_allclose(mirror(flipped, spec.flip_index), clip)


def test_parents_follow_the_limbs_and_bones_are_differences():
    spec = get_layout(LAYOUT)
    parent = parents(spec)
    limbs = {frozenset(l) for l in spec.limbs}
    roots = [j for j in range(spec.num_joints) if parent[j] == j]
    assert len(roots) == 1  # the graph is connected
    assert all(frozenset((j, parent[j])) in limbs for j in range(spec.num_joints) if parent[j] != j)
    clip = normalised_clip(_person(6, np.random.default_rng(2)), LAYOUT, 5)
    bone = stream_features(clip, "bone", parent)
    np.testing.assert_allclose(bone[:2].transpose(1, 2, 0), clip[..., :2] - clip[:, parent, :2], atol=1e-6)
    motion = stream_features(clip, "joint_motion", parent)
    np.testing.assert_allclose(motion[:2, :-1].transpose(1, 2, 0), clip[1:, :, :2] - clip[:-1, :, :2], atol=1e-6)
    assert (motion[:, -1] == 0).all()


def test_pipeline_shapes_and_determinism():
    config = SkeletonClipConfig(clip_len=12, test_clips=3, flip_test=True)
    clip = normalised_clip(_person(30, np.random.default_rng(3)), LAYOUT, 5)
    pipeline = SkeletonClipPipeline(config, "joint", LAYOUT)
    train = pipeline(clip, train=True, rng=np.random.default_rng(5))
    assert train.shape == (3, 12, 25)
    np.testing.assert_array_equal(train, pipeline(clip, train=True, rng=np.random.default_rng(5)))
    assert not np.allclose(train, pipeline(clip, train=True, rng=np.random.default_rng(6)))  # augmented
    test = pipeline(clip, train=False)
    assert test.shape == (6, 3, 12, 25)
    np.testing.assert_array_equal(test, pipeline(clip, train=False))


def _waving_set(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    return [_person(int(rng.integers(20, 40)), rng, wave=float(label)) for label in labels], labels


@pytest.mark.parametrize("stream", ["joint", "bone", "tcn", "tcn_bone"])
def test_skeleton_stream_learns_better_than_chance(stream):
    keypoints, labels = _waving_set(32, 0)
    test_keypoints, test_labels = _waving_set(16, 1)
    skeleton = defaults("track1.skeleton") | {"clip_len": 16, "test_clips": 1, "flip_test": False}
    if stream in ("joint", "bone"):  # the ST-GCN++ recipe (configs/track1_skeleton.yaml) keeps the milder scale augmentation
        skeleton["scale"] = 0.1
    model_params = defaults("track1.model") | {"stage_blocks": [1], "dropout": 0.0, "pose_base_channels": 4, "rgb_base_channels": 4,
                                        "gcn_channels": 8, "gcn_blocks": 2, "gcn_inflate_at": [1], "tcn_channels": 16, "tcn_blocks": 2}
    store = {f"c{i}": k for i, k in enumerate(keypoints + test_keypoints)}
    store = type("Store", (dict,), {"layout": LAYOUT})(store)
    ids = list(store)
    seed_everything(0)
    model = recipe.build_stream(stream, model_params, recipe.StreamInputs(1, 2, LAYOUT), skeleton)
    data = recipe.clip_dataset(stream, ids[:32], labels, defaults("track1.heatmap"), train=True, seed=0, store=store, skeleton=skeleton)
    assert isinstance(data, SkeletonClips)
    with tempfile.TemporaryDirectory() as tmp:
        fit(model, data, config=TrainConfig(epochs=15, batch_size=8, lr=0.1), loss_fn=recipe.make_loss(model_params),
            checkpoint=Path(tmp) / "c.pt", run_id="t", description=stream)
    evaluated = recipe.clip_dataset(stream, ids[32:], test_labels, defaults("track1.heatmap"), train=False, seed=0, store=store, skeleton=skeleton)
    probs = recipe.view_averaged_probabilities(model, evaluated)
    assert probs.shape == (16, 2)
    assert (probs.argmax(1) == test_labels).mean() >= 0.8  # chance is 0.5
