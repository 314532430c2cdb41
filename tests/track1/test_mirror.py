"""Classes seen in a mirror (miga/track1/mirror.py): every stream's training flips and mirrored test views swap the
labels of `track1.mirror_classes`, and a stream then tells a left-hand gesture from its right-hand twin."""

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from miga.errors import ConfigError
from miga.io import InMemoryKeypoints
from miga.layouts import get_layout
from miga.params import defaults, validated
from miga.track1 import recipe
from miga.track1.clips import PairedClips, PoseClips, RgbClips, pose_pipeline
from miga.track1.mirror import class_mirror, mirrored_label, unmirrored
from miga.track1.pipeline import class_mirror as configured_class_mirror
from miga.track1.skeleton import SkeletonClipConfig, SkeletonClips
from miga.training import TrainConfig, fit, seed_everything
from tests.track1.test_track1 import _tiny_sources

LAYOUT = "mediapipe_upper25"
SWAP_0_1 = np.array([1, 0, 2, 3, 4])


def test_class_mirror_swaps_each_pair_and_keeps_every_other_class():
    np.testing.assert_array_equal(class_mirror([], 3), [0, 1, 2])
    np.testing.assert_array_equal(class_mirror([[3, 0], [1, 4]], 5), [3, 4, 2, 0, 1])
    for pairs, message in (([[0, 5]], "classes are 0 .. 4"), ([[2, 2]], "once"), ([[0, 1], [1, 2]], "once")):
        with pytest.raises(ValueError, match=message):
            class_mirror(pairs, 5)


def test_mirrored_label_follows_the_flip_and_keeps_unlabelled_clips():
    assert mirrored_label(0, True, SWAP_0_1) == 1 and mirrored_label(0, False, SWAP_0_1) == 0
    assert mirrored_label(3, True, SWAP_0_1) == 3 and mirrored_label(1, True, None) == 1
    assert mirrored_label(-1, True, SWAP_0_1) == -1  # an unlabelled test clip, not class 4


def test_unmirrored_maps_each_mirrored_view_back_to_the_clips_classes():
    probs = torch.tensor([[[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]]])  # one clip: its view, then its mirror
    out = unmirrored(probs, [False, True], np.array([1, 0, 2]))
    torch.testing.assert_close(out, torch.tensor([[[0.7, 0.2, 0.1], [0.6, 0.1, 0.3]]]))
    assert unmirrored(probs, [False, True], None) is probs
    with pytest.raises(ValueError, match="3 mirror flags"):
        unmirrored(probs, [False, True, True], np.array([1, 0, 2]))


def test_the_setting_is_checked_against_the_datasets_classes():
    config = validated({"track1": {"mirror_classes": [[0, 7]]}})
    with pytest.raises(ConfigError, match=r"track1.mirror_classes: mirror pair \[0, 7\]: classes are 0 .. 4"):
        configured_class_mirror(config, 5)
    np.testing.assert_array_equal(configured_class_mirror(config, 8), [7, 1, 2, 3, 4, 5, 6, 0])
    with pytest.raises(ConfigError, match="mirror_classes"):
        validated({"track1": {"mirror_classes": [[0, 1, 2]]}})


@pytest.mark.parametrize("stream", sorted(recipe.STREAMS))
def test_every_stream_relabels_only_the_mirror_classes_and_keeps_its_views(stream):
    """The same seed draws the same views with or without mirror classes; only classes 0 and 1 change label, on some
    epochs and not others (the flip is a coin toss), and the dataset names its mirrored test views."""
    store, crops = _tiny_sources()
    heatmap = defaults("track1.heatmap") | {"clip_len": 4, "resize_to": 20, "size": 16, "test_clips": 1}
    skeleton = defaults("track1.skeleton") | {"clip_len": 8, "test_clips": 1}
    rgb = recipe.rgb_recipe(defaults("track1.model"), defaults("track1.rgb") | {"frames": 4, "size": 24})
    labels = np.array([0, 1, 2, 3])
    make = lambda mirror, train=True: recipe.clip_dataset(stream, list(store.ids), labels, heatmap, train=train, seed=0,  # noqa: E731
                                                          store=store, crops=crops, skeleton=skeleton, rgb=rgb, class_mirror=mirror)
    plain, swapping, changed = make(None), make(SWAP_0_1), set()
    for epoch in range(6):
        plain.set_epoch(epoch), swapping.set_epoch(epoch)
        for i in range(4):
            (view, label), (same_view, new_label) = plain[i], swapping[i]
            for a, b in zip(*(v if isinstance(v, tuple) else (v,) for v in (view, same_view))):
                torch.testing.assert_close(a, b)
            assert new_label in ({0, 1} if label in (0, 1) else {label})
            changed.add((i, new_label != label))
    assert {(0, True), (0, False), (1, True), (1, False)} <= changed and not {(2, True), (3, True)} & changed
    test = make(SWAP_0_1, train=False)
    views = test[0][0]
    assert test.view_mirrored.tolist() == [False, True] and len(views[0] if isinstance(views, tuple) else views) == 2


def test_the_label_swaps_exactly_when_the_clip_is_mirrored():
    """flip_prob 1: every training clip is mirrored and takes its twin class; flip_prob 0: none is."""
    store, crops = _tiny_sources()
    labels = np.array([0, 1, 2, 0])
    heatmap = defaults("track1.heatmap") | {"clip_len": 4, "resize_to": 20, "size": 16}
    skeleton = SkeletonClipConfig(clip_len=8)
    rgb = recipe.rgb_recipe(defaults("track1.model"), defaults("track1.rgb") | {"frames": 4, "size": 24})
    for flip_prob, expected in ((1.0, [1, 0, 2, 1]), (0.0, [0, 1, 2, 0])):
        pose = pose_pipeline(heatmap)
        pose.config = replace(pose.config, flip_prob=flip_prob)
        datasets = [
            SkeletonClips([store[i] for i in store.ids], store.layout, labels, config=replace(skeleton, flip_prob=flip_prob),
                          feature="joint", train=True, seed=0, class_mirror=SWAP_0_1),
            PoseClips(store, store.ids, labels, layout=heatmap["layout"], pipeline=pose, train=True, seed=0, class_mirror=SWAP_0_1),
            RgbClips([crops[i] for i in store.ids], labels, recipe=rgb, train=True, seed=0, flip_prob=flip_prob, class_mirror=SWAP_0_1),
            PairedClips(PoseClips(store, store.ids, labels, layout=heatmap["layout"], pipeline=pose_pipeline(heatmap), train=True,
                                  seed=0, class_mirror=SWAP_0_1),
                        RgbClips([crops[i] for i in store.ids], labels, recipe=rgb, train=True, seed=0, flip_prob=0.0),
                        flip_prob=flip_prob),
        ]
        for data in datasets:
            assert [data[i][1] for i in range(4)] == expected, type(data).__name__
    unflipped = RgbClips([crops[i] for i in store.ids], labels, recipe=rgb, train=True, seed=0, flip_prob=0.0)
    flipped = RgbClips([crops[i] for i in store.ids], labels, recipe=rgb, train=True, seed=0, flip_prob=1.0)
    torch.testing.assert_close(flipped[0][0], unflipped[0][0].flip(-1))


@pytest.mark.parametrize("stream, section", [("pose", "track1.heatmap"), ("rgb", "track1.rgb"), ("fused", "track1.heatmap")])
def test_the_pose_and_rgb_mirrors_follow_their_params_keys(stream, section):
    """`track1.heatmap.flip_prob` (pose, and the crossattn pair) and `track1.rgb.flip_prob` (rgb) set how often a training
    clip is mirrored: at 1 every clip of a mirror class takes its twin, at 0 none does."""
    store, crops = _tiny_sources()
    labels = np.array([0, 1, 0, 1])
    sections = {"track1.heatmap": defaults("track1.heatmap") | {"clip_len": 4, "resize_to": 20, "size": 16},
                "track1.rgb": defaults("track1.rgb") | {"frames": 4, "size": 24}}
    for flip_prob, expected in ((1.0, [1, 0, 1, 0]), (0.0, [0, 1, 0, 1])):
        params = dict(sections) | {section: sections[section] | {"flip_prob": flip_prob}}
        data = recipe.clip_dataset(stream, list(store.ids), labels, params["track1.heatmap"], train=True, seed=0, store=store,
                                   crops=crops, rgb=recipe.rgb_recipe(defaults("track1.model"), params["track1.rgb"]),
                                   class_mirror=SWAP_0_1)
        for epoch in range(3):
            data.set_epoch(epoch)
            assert [data[i][1] for i in range(4)] == expected, (stream, flip_prob, epoch)


def _waving(t_len: int, rng: np.random.Generator, side: str) -> np.ndarray:
    """An upper body `(1, T, 25, 3)` in pixels that waves its `side` ("L" or "R") hand up and down."""
    spec = get_layout(LAYOUT)
    base = {"Nose": (0, -60), "LShoulder": (25, -30), "RShoulder": (-25, -30), "LElbow": (30, 0), "RElbow": (-30, 0),
            "LWrist": (30, 30), "RWrist": (-30, 30), "LHip": (15, 40), "RHip": (-15, 40)}
    kp = np.zeros((t_len, spec.num_joints, 3))
    for j, name in enumerate(spec.joints):
        hand = name[1:] in ("Pinky", "Index", "Thumb")
        x, y = base.get(name, base[name[0] + "Wrist"] if hand else (0, -60))
        kp[:, j] = (200 + x, 150 + y, 0.9)
    wave = [spec.index(side + n) for n in ("Wrist", "Pinky", "Index", "Thumb")]
    kp[:, wave, 1] -= 40 * np.sin(np.linspace(0, 4 * np.pi, t_len))[:, None]
    kp[..., :2] += rng.normal(0, 1.0, kp[..., :2].shape)
    return kp[None].astype(np.float32)


def _left_right_set(n: int, seed: int):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2  # 0: waves the left hand, 1: the right
    return [_waving(int(rng.integers(20, 40)), rng, "LR"[label]) for label in labels], labels


@pytest.mark.parametrize("mirror_classes, least, most", [([[0, 1]], 0.9, 1.0), ([], 0.0, 0.6)])
def test_a_stream_tells_left_from_right_only_when_the_mirror_swaps_their_labels(mirror_classes, least, most):
    """Waving the left hand and waving the right are mirror twins. Mirrored with the labels kept, half the training
    clips of each class show the other class's gesture: the stream cannot tell them apart (the true class's mean
    probability stays near one half). With the pair in `mirror_classes` it learns them."""
    keypoints, labels = _left_right_set(32, 0)
    test_keypoints, test_labels = _left_right_set(16, 1)
    skeleton = defaults("track1.skeleton") | {"clip_len": 16, "test_clips": 1, "flip_prob": 0.5, "flip_test": True}
    model_params = defaults("track1.model") | {"dropout": 0.0, "tcn_channels": 16, "tcn_blocks": 2}
    store = InMemoryKeypoints({f"c{i}": k for i, k in enumerate(keypoints + test_keypoints)}, LAYOUT)
    ids, mirror = list(store.ids), class_mirror(mirror_classes, 2)
    seed_everything(0)
    model = recipe.build_stream("tcn", model_params, recipe.StreamInputs(1, 2, LAYOUT), skeleton)
    data = recipe.clip_dataset("tcn", ids[:32], labels, defaults("track1.heatmap"), train=True, seed=0, store=store,
                               skeleton=skeleton, class_mirror=mirror)
    with tempfile.TemporaryDirectory() as tmp:
        fit(model, data, config=TrainConfig(epochs=15, batch_size=8, lr=0.1), loss_fn=recipe.make_loss(model_params),
            checkpoint=Path(tmp) / "c.pt", run_id="t", description="tcn")
    evaluated = recipe.clip_dataset("tcn", ids[32:], test_labels, defaults("track1.heatmap"), train=False, seed=0, store=store,
                                    skeleton=skeleton, class_mirror=mirror)
    probs = recipe.view_averaged_probabilities(model, evaluated)
    true_class = float(probs[np.arange(len(test_labels)), test_labels].mean())
    assert least <= true_class <= most
