import numpy as np
import pytest

from miga.errors import ConfigError
import torch

from miga.params import defaults

from miga.models import input_recipe
from miga.track1 import recipe as track1
from miga.heatmap import rasterize
from miga.layouts import get_layout
from miga.models.fusion import CrossAttentionFusion, PrototypeClassifier
from miga.track1.transforms import PoseClipConfig, flip_volume

MODEL = defaults("track1.model") | dict(stage_blocks=[1, 1], dropout=0.0, pose_base_channels=8, rgb_base_channels=8, fusion_dim=16,
                                fusion_heads=2, fusion_layers=1, prototype_scale=10.0, prototype_margin=0.2)
INPUTS = track1.StreamInputs(in_channels=22, num_classes=5)


def _batch(stream: str, n: int = 4):
    pose = torch.randn(n, 22, 4, 16, 16)
    rgb = torch.randn(n, 3, 4, 24, 24)
    return {"pose": pose, "rgb": rgb, "fused": (pose, rgb)}[stream], torch.arange(n) % 5


@pytest.mark.parametrize("prototypes", [False, True])
@pytest.mark.parametrize("stream", ["pose", "rgb", "fused"])
def test_every_variant_trains_one_step(stream, prototypes):
    torch.manual_seed(0)
    model = track1.build_stream(stream, dict(MODEL, prototypes=prototypes), INPUTS)
    assert isinstance(model, PrototypeClassifier) == prototypes
    inputs, labels = _batch(stream)
    logits = model(inputs)
    assert logits.shape == (4, 5) and torch.isfinite(logits).all()
    loss = track1.make_loss(dict(MODEL, prototypes=prototypes))(model, (inputs, labels), torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss)
    named = dict(model.named_parameters())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in named.values())
    if stream == "fused":  # gradients reach the first conv of both backbones
        for prefix in ("pose", "rgb"):
            stem = next(p for name, p in named.items() if f"{prefix}.backbone.stem" in name)
            assert stem.grad.abs().sum() > 0
    if prototypes:
        assert named["prototypes"].grad.abs().sum() > 0


def _pooled_streams(model: CrossAttentionFusion, inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled pose and RGB tokens as they reach the fusion's final norm (before it mixes them)."""
    seen = []
    handle = model.norm.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            model(inputs)
    finally:
        handle.remove()
    return seen[0].split(model.embedding_size // 2, dim=1)


def test_cross_attention_mixes_the_streams():
    torch.manual_seed(0)
    model = track1.build_stream("fused", MODEL, INPUTS).eval()
    assert isinstance(model, CrossAttentionFusion)
    (pose, rgb), _ = _batch("fused", 2)
    pose_tokens, rgb_tokens = _pooled_streams(model, (pose, rgb))
    pose_tokens_other_rgb, _ = _pooled_streams(model, (pose, torch.randn_like(rgb)))
    _, rgb_tokens_other_pose = _pooled_streams(model, (torch.randn_like(pose), rgb))
    # Each stream's tokens depend on the other stream's input: pooling the streams and concatenating would not.
    assert (pose_tokens - pose_tokens_other_rgb).abs().max() > 1e-3
    assert (rgb_tokens - rgb_tokens_other_pose).abs().max() > 1e-3


def test_prototype_loss_is_low_at_the_own_prototype_and_high_at_a_wrong_one():
    base = track1.build_stream("pose", MODEL, INPUTS)
    model = PrototypeClassifier(base, 5, margin=0.2)
    labels = torch.tensor([0, 1])
    at_own = model.prototypes.detach()[labels].clone()
    at_wrong = model.prototypes.detach()[torch.tensor([2, 3])].clone()
    assert model.prototype_loss(at_own, labels) < 1e-5
    assert model.prototype_loss(at_wrong, labels) > 1.0


def test_flip_volume_equals_rasterizing_the_flipped_keypoints():
    layout = get_layout("imigue22")
    rng = np.random.default_rng(0)
    keypoints = np.concatenate([rng.uniform(0, 20, (1, 3, 22, 2)), rng.uniform(0.2, 1, (1, 3, 22, 1))], -1).astype(np.float32)
    for with_limbs in (False, True):
        config = PoseClipConfig(limbs=layout.limbs, flip_index=layout.flip_index, with_limbs=with_limbs, with_joints=True)
        common = dict(size=(20, 20), limbs=layout.limbs, sigma=1.0, with_joints=True, with_limbs=with_limbs, flip_index=layout.flip_index)
        plain = rasterize(keypoints, **common)
        mirrored = rasterize(keypoints, flip=True, **common)
        flipped = flip_volume(plain, config.channel_flip_index(22))
        # Identical except where the 3-sigma window's integer edge rounds the other way (values <= exp(-4.5)).
        np.testing.assert_allclose(flipped, mirrored, atol=np.exp(-4.5))
        assert np.mean(np.abs(flipped - mirrored) < 1e-6) > 0.95


def test_ensemble_weights_and_errors():
    scores = {"joint": np.array([[0.8, 0.2]]), "limb": np.array([[0.2, 0.8]])}
    np.testing.assert_allclose(track1.ensemble(scores, {"joint": 3, "limb": 1}), [[0.65, 0.35]])
    with pytest.raises(ValueError, match="rgb"):
        track1.ensemble(scores, {"rgb": 1})


def test_late_fusion_is_a_weighted_geometric_mean():
    pose = np.array([[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]])
    rgb = np.array([[0.1, 0.8, 0.1], [0.9, 0.05, 0.05]])
    scores = {"pose": pose, "rgb": rgb}
    fused = track1.weighted_fusion(scores, {"pose": 0.5, "rgb": 0.5})
    expected = np.sqrt(pose * rgb)
    np.testing.assert_allclose(fused, expected / expected.sum(1, keepdims=True))
    np.testing.assert_allclose(track1.weighted_fusion(scores, {"pose": 1.0, "rgb": 0.0}), pose / pose.sum(1, keepdims=True))
    np.testing.assert_allclose(track1.weighted_fusion(scores, {"pose": 2.0, "rgb": 2.0}), fused)  # weights are normalised
    assert np.isfinite(track1.weighted_fusion({"pose": pose, "rgb": np.zeros_like(rgb)}, {"pose": 0.5, "rgb": 0.5})).all()
    np.testing.assert_allclose(track1.fuse(scores, "late", {"pose": 0.5, "rgb": 0.5}), fused)


def test_weight_grid_covers_every_single_stream_and_sums_to_one():
    grid = track1.weight_grid(["a", "b", "c"], steps=4)
    assert len(grid) == 15  # compositions of 4 into 3 parts
    assert all(abs(sum(w.values()) - 1) < 1e-9 for w in grid)
    for name in "abc":
        assert {n: float(n == name) for n in "abc"} in grid


def test_tuned_fusion_never_loses_to_its_best_stream_on_val():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 40)
    good = np.full((40, 4), 0.1)
    good[np.arange(40), labels] = 0.7  # this stream always right
    noise = [rng.dirichlet(np.ones(4), 40) ** 4 for _ in range(2)]  # two pure-noise streams, confident enough to spoil a mixture
    noise = [n / n.sum(1, keepdims=True) for n in noise]
    scores = {"rgb": noise[0], "joint": good, "bone": noise[1]}
    weights, trials = track1.tune_stream_weights(scores, labels)
    fused = track1.weighted_fusion(scores, weights).argmax(1)
    assert (fused == labels).mean() == 1.0
    assert weights == {"rgb": 0.0, "joint": 1.0, "bone": 0.0} and track1.fusion_choice(weights) == "joint only"


def test_stream_weights_tuned_on_labelled_clips_prefer_the_lower_log_loss_on_ties():
    # clip 0: pose right, rgb confidently wrong; clip 1: pose unsure and wrong, rgb right.
    pose = np.array([[0.6, 0.4], [0.45, 0.55]])
    rgb = np.array([[0.2, 0.8], [0.9, 0.1]])
    labels = np.array([0, 0])
    weights, trials = track1.tune_stream_weights({"pose": pose, "rgb": rgb}, labels)
    assert [t["weights"]["pose"] for t in trials] == [1.0, 0.75, 0.5, 0.25, 0.0]
    best = [t for t in trials if t["top1"] == max(x["top1"] for x in trials)]
    assert len(best) == 5  # every weighting gets one of the two clips right here: the log loss decides
    assert weights == min(best, key=lambda t: t["log_loss"])["weights"] == {"pose": 0.75, "rgb": 0.25}
    assert track1.fusion_choice(weights) == "fused"
    with pytest.raises(ValueError, match="labelled"):
        track1.tune_stream_weights({"pose": pose[:0], "rgb": rgb[:0]}, labels[:0])


def test_shrunk_weights_keep_equal_weights_unless_val_shows_more_than_noise():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, 40)
    good = np.full((40, 4), 0.1)
    good[np.arange(40), labels] = 0.7
    noise = [rng.dirichlet(np.ones(4), 40) ** 4 for _ in range(2)]
    noise = [n / n.sum(1, keepdims=True) for n in noise]
    scores = {"rgb": noise[0], "joint": good, "bone": noise[1]}
    weights, trials = track1.shrunk_stream_weights(scores, labels)
    assert track1.fusion_choice(weights) == "joint only"  # equal weights lose many clips to it: far beyond noise
    assert any(t["beats_equal"] for t in trials)

    # Two streams as good as each other, each right on a different 80% of the clips: the grid can find weights that
    # win a clip or two over equal weights on val, which is noise; shrunk keeps equal weights, the grid argmax does not.
    a, b = np.full((40, 4), 0.1), np.full((40, 4), 0.1)
    a[np.arange(40), labels], b[np.arange(40), labels] = 0.55, 0.55
    wrong = (labels + 1) % 4
    a[np.arange(8), wrong[:8]], b[np.arange(8, 16), wrong[8:16]] = 0.8, 0.8
    a[17], a[17, labels[17]], a[17, wrong[17]] = 0.0, 0.1, 0.9  # one clip a gets badly wrong: equal weights miss it, b-leaning ones do not
    shrunk, _ = track1.shrunk_stream_weights({"a": a, "b": b}, labels)
    tuned, _ = track1.tune_stream_weights({"a": a, "b": b}, labels)
    assert shrunk == {"a": 0.5, "b": 0.5}
    assert tuned != shrunk


def test_streams_for_reads_model_streams():
    assert track1.streams_for("late", ("joint", "bone", "pose")) == ("joint", "bone", "pose")
    assert track1.streams_for("none", ("bone", "rgb")) == ("bone",)
    assert track1.streams_for("crossattn", ("joint",)) == ("fused",)
    for bad in (("joint", "joint"), ("face",), ()):
        with pytest.raises(ConfigError, match="model.streams"):
            track1.streams_for("late", bad)


def test_a_stream_trains_with_its_own_recipe_over_the_train_params():
    train = defaults("track1.train") | {"epochs": 20, "lr": 0.1, "optimizer": "sgd", "batch_size": 16, "launcher": "local",
                                 "per_stream": {"tcn": {"optimizer": "adamw", "lr": 0.002, "epochs": 100}}}
    own = track1.train_config("tcn", train)
    assert (own.optimizer, own.lr, own.epochs, own.batch_size) == ("adamw", 0.002, 100, 16)
    other = track1.train_config("pose", train)
    assert (other.optimizer, other.lr, other.epochs) == ("sgd", 0.1, 20)
    with pytest.raises(ConfigError, match=r"train.per_stream.tcn: unknown keys \['learning_rate'\]"):
        track1.train_config("tcn", defaults("track1.train") | {"per_stream": {"tcn": {"learning_rate": 0.1}}})


def _tiny_sources(n: int = 4):
    """n clips of random keypoints (openpose25_hands10) and RGB crops, for any registered stream."""
    from miga.io import InMemoryKeypoints

    rng = np.random.default_rng(0)
    keypoints = {f"c{i}": np.concatenate([rng.uniform(50, 150, (1, 12, 35, 2)), np.ones((1, 12, 35, 1))], -1).astype(np.float32)
                 for i in range(n)}
    crops = {sid: rng.integers(0, 255, (4, 24, 24, 3), dtype=np.uint8) for sid in keypoints}
    return InMemoryKeypoints(keypoints, "openpose25_hands10"), crops


@pytest.mark.parametrize("prototypes", [False, True])
@pytest.mark.parametrize("stream", sorted(track1.STREAMS))
def test_every_registered_stream_reads_its_clips_trains_a_step_and_scores(stream, prototypes):
    """The registry is the one place a stream is defined: each entry's clips feed its network, a training step has
    finite gradients, and test views average to one probability row per clip."""
    store, crops = _tiny_sources()
    heatmap = defaults("track1.heatmap") | {"clip_len": 4, "resize_to": 20, "size": 16, "test_clips": 1}
    skeleton = defaults("track1.skeleton") | {"clip_len": 8, "test_clips": 1}
    model = MODEL | {"tcn_channels": 8, "gcn_channels": 8, "gcn_blocks": 2, "gcn_inflate_at": [1], "prototypes": prototypes}
    recipe = track1.rgb_recipe(model, defaults("track1.rgb") | {"frames": 4, "size": 24})
    ids, labels = list(store.ids), np.arange(4) % 5
    make = lambda train: track1.clip_dataset(stream, ids, labels, heatmap, train=train, seed=0, store=store, crops=crops,  # noqa: E731
                                             skeleton=skeleton, rgb=recipe)
    torch.manual_seed(0)
    network = track1.build_stream(stream, model, track1.StreamInputs(track1.pose_channels(heatmap), 5, store.layout), skeleton)
    batch = torch.utils.data.default_collate([make(True)[i] for i in range(2)])
    loss = track1.make_loss(model)(network, batch, torch.device("cpu"))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in network.parameters() if p.grad is not None)
    probs = track1.view_averaged_probabilities(network, make(False))
    assert probs.shape == (4, 5) and np.allclose(probs.sum(1), 1, atol=1e-5)
    if stream in ("tcn", "tcn_bone"):
        assert make(True).pipeline.feature == {"tcn": "joint", "tcn_bone": "bone"}[stream]
    assert track1.STREAMS[stream].reads and (stream in track1.SELECTABLE) == (stream != "fused")


def test_streams_for_reads_model_streams_in_order():
    assert track1.streams_for("late", ("tcn", "pose")) == ("tcn", "pose")


def test_unknown_fusion_is_a_clear_error():
    with pytest.raises(ValueError, match="crossattn"):
        track1.streams_for("early")


class _PairedNoise(torch.utils.data.Dataset):
    """((heatmaps, frames), label) whose values depend on (epoch, index), like the augmenting datasets."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 12

    def __getitem__(self, index):
        g = torch.Generator().manual_seed(self.epoch * 100 + index)
        label = index % 5
        pose = torch.randn(22, 4, 16, 16, generator=g) + label
        return (pose, torch.randn(3, 4, 24, 24, generator=g)), label


def interrupt_at(step):
    def on_step(done):
        if done == step:
            raise KeyboardInterrupt(f"interrupted after step {step}")
    return on_step


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_fused_model_with_prototypes_resumes_mid_epoch_to_the_same_weights(tmp_path, optimizer):
    from miga.training import TrainConfig, fit, seed_everything

    params = dict(MODEL, prototypes=True, dropout=0.2)
    config = TrainConfig(epochs=3, batch_size=4, lr=0.01, seed=1, optimizer=optimizer, warmup_epochs=1)

    def run(checkpoint, on_step=None):
        seed_everything(0)
        model = track1.build_stream("fused", params, INPUTS)
        history = fit(model, _PairedNoise(), config=config, loss_fn=track1.make_loss(params), checkpoint=checkpoint, run_id="r",
                      on_step=on_step)
        return model, history

    reference, history = run(tmp_path / "a.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b.pt", on_step=interrupt_at(5))  # mid-epoch 2 (3 steps per epoch)
    resumed, resumed_history = run(tmp_path / "b.pt")
    assert resumed_history == history
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_rgb_recipe_is_the_backbones_published_one_scaled_to_the_cache():
    published = input_recipe("x3d_xs")
    x3d, rgb = defaults("track1.model") | {"rgb_backbone": "x3d_xs"}, defaults("track1.rgb")
    at_cache = track1.rgb_recipe(x3d, rgb | {"frames": 4, "sampling_rate": 12, "size": published.cache_size})
    assert (at_cache.frames, at_cache.sampling_rate, at_cache.size, at_cache.eval_size, at_cache.scale_range) == (4, 12, 160, 182, (182, 228))
    small = track1.rgb_recipe(x3d, rgb | {"frames": 8, "sampling_rate": 0, "size": 48})
    assert (small.size, small.eval_size, small.scale_range) == (42, 48, (48, 60))
    default = track1.rgb_recipe(defaults("track1.model"), rgb | {"frames": 8, "size": 48})  # slowonly_small, sampling_rate 0
    assert (default.size, default.eval_size, default.scale_range) == (48, 48, None)


def _zoo_x3d_file(path):
    """A stand-in for pytorchvideo's X3D_XS.pyth: pytorchvideo's own X3D (400 classes), saved as the zoo does."""
    from pytorchvideo.models.x3d import create_x3d

    torch.manual_seed(3)
    net = create_x3d(input_clip_length=4, input_crop_size=64, head_activation=None)
    torch.save({"model_state": net.state_dict()}, path)
    return net


@pytest.mark.parametrize("prototypes", [False, True])
@pytest.mark.parametrize("stream", ["rgb", "fused"])
def test_pretrained_rgb_backbone_loads_into_its_stream_and_fine_tunes_below_the_head(stream, prototypes, tmp_path):
    zoo = _zoo_x3d_file(tmp_path / "X3D_XS.pyth")
    model_params = dict(MODEL, prototypes=prototypes, rgb_backbone="x3d_xs", rgb_checkpoint=str(tmp_path / "X3D_XS.pyth"),
                        rgb_backbone_lr_scale=0.1, rgb_freeze_bn=True)
    torch.manual_seed(0)
    model = track1.build_stream(stream, model_params, INPUTS)
    done = track1.init_rgb_weights(model, stream, model_params)
    assert any("loaded" in line and "into x3d_xs" in line for line in done) and any("BatchNorm layers frozen" in line for line in done)
    base = model.base if prototypes else model
    rgb = base.rgb if stream == "fused" else base
    stem = zoo.blocks[0].conv.conv_t.weight
    assert torch.equal(rgb.backbone.blocks[0].conv.conv_t.weight, stem)  # the file's tensors, not the random init
    if stream == "fused":
        assert track1.init_rgb_weights(track1.build_stream("pose", model_params, INPUTS), "pose", model_params) == []

    groups = track1.optimizer_groups(model, stream, model_params, lr=0.1)
    by_name = {g["name"]: g for g in groups}
    assert by_name["backbone"]["lr"] == pytest.approx(0.01) and by_name["head"]["lr"] == pytest.approx(0.1)
    backbone_ids = {id(p) for p in by_name["backbone"]["params"]}
    assert id(rgb.backbone.blocks[0].conv.conv_t.weight) in backbone_ids and id(rgb.head.fc.weight) not in backbone_ids
    if stream == "fused":  # the pose branch starts from scratch: the head's lr
        assert not any(id(p) in backbone_ids for p in base.pose.parameters())
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for g in groups for p in g["params"]} == trainable
    assert track1.optimizer_groups(model, stream, dict(model_params, rgb_checkpoint=None), lr=0.1) is None

    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    inputs, labels = _batch(stream)
    loss = track1.make_loss(model_params)(model, (inputs, labels), torch.device("cpu"))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(rgb.backbone.blocks[0].conv.conv_t.weight, stem)
