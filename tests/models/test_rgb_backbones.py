"""RGB backbones (issue 17): the registry, zoo-checkpoint loading, fine-tuning helpers and clip transforms.

Zoo files are stood in for by pytorchvideo nets saved here the way the zoo ships them ({"model_state": ...},
400 Kinetics classes); tiny clips (4-8 frames, 64 px) keep the whole file well under a minute on 2 cores.
"""

import pickle

import numpy as np
import pytest
import torch

from miga.errors import ConfigError
from miga.models import (
    RGB_BACKBONES, CheckpointError, build_model, create_rgb_backbone, freeze_batchnorm, freeze_stages, input_recipe,
    load_rgb_checkpoint, param_groups, rgb_clip_transform, sample_frame_indices,
)
from miga.models.fusion import CrossAttentionFusion, PrototypeClassifier
from miga.models.rgb_backbones import InputRecipe, backbone_stages

NUM_CLASSES = 7


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on 2 shared cores, two OpenMP threads beside another job run several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_clip(name: str, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 8 if name == "slowfast_r50" else 4, 64, 64)


def zoo_net(name: str) -> torch.nn.Module:
    """A pytorchvideo net as the zoo's file holds it (400 classes), built by pytorchvideo itself."""
    from pytorchvideo.models.resnet import create_resnet
    from pytorchvideo.models.slowfast import create_slowfast
    from pytorchvideo.models.x3d import create_x3d

    builders = {
        "x3d_xs": lambda: create_x3d(input_clip_length=4, input_crop_size=64, head_activation=None),
        "slow_r50": lambda: create_resnet(stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(4, 2, 2)),
        "slowfast_r50": lambda: create_slowfast(slowfast_fusion_conv_kernel_size=(7, 1, 1),
                                                head_pool_kernel_sizes=((2, 2, 2), (8, 2, 2))),
    }
    return builders[name]()


def save_zoo_file(net: torch.nn.Module, path, layout: str = "pyth"):
    state = net.state_dict()
    if layout == "pyth":
        torch.save({"model_state": state, "epoch": 196}, path)
    elif layout == "ddp":
        torch.save({f"module.{k}": v for k, v in state.items()}, path)
    return path


@pytest.mark.parametrize("name", sorted(RGB_BACKBONES))
def test_every_backbone_runs_forward_backward(name):
    torch.manual_seed(0)
    model = create_rgb_backbone(name, num_classes=NUM_CLASSES)
    clip = tiny_clip(name)
    logits = model(clip)
    assert logits.shape == (2, NUM_CLASSES) and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():  # the Classifier3d interface fusion and prototypes use
        features = model.backbone(clip)
        embedding = model.head.embed(features)
        assert features.shape[:2] == (2, model.embedding_size) and embedding.shape == (2, model.embedding_size)
        assert torch.allclose(model.classify(embedding), model(clip), atol=1e-5)
        assert torch.allclose(model.head(features), model.classify(embedding))


@pytest.mark.parametrize("name", ["x3d_xs", "slowfast_r50"])
def test_pretrained_backbones_fit_fusion_and_prototypes(name):
    pose = build_model("pose_slowonly", in_channels=5, num_classes=NUM_CLASSES, base_channels=8)
    rgb = create_rgb_backbone(name, num_classes=NUM_CLASSES)
    fused = PrototypeClassifier(CrossAttentionFusion(pose, rgb, NUM_CLASSES, dim=16, heads=2), NUM_CLASSES)
    out = fused((torch.randn(2, 5, 8, 16, 16), tiny_clip(name)))
    assert out.shape == (2, NUM_CLASSES)


def test_slowonly_small_is_the_current_rgb_stream():
    torch.manual_seed(3)
    ours = create_rgb_backbone("slowonly_small", num_classes=NUM_CLASSES, dropout=0.1, stage_blocks=(1, 1, 1))
    torch.manual_seed(3)
    current = build_model("rgb_slowonly_small", num_classes=NUM_CLASSES, dropout=0.1, base_channels=16, stage_blocks=(1, 1, 1))
    a, b = ours.state_dict(), current.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_recipes_are_the_published_ones():
    assert [(r.frames, r.sampling_rate, r.size, r.test_size) for r in map(input_recipe, ("x3d_xs", "x3d_s", "x3d_m"))] == [
        (4, 12, 160, 182), (13, 6, 160, 182), (16, 5, 224, 256)]
    assert (input_recipe("slow_r50").frames, input_recipe("slow_r50").sampling_rate) == (8, 8)
    assert (input_recipe("slowfast_r50").frames, input_recipe("slowfast_r50").sampling_rate) == (32, 2)
    assert all(input_recipe(n).mean == (0.45,) * 3 and input_recipe(n).std == (0.225,) * 3 for n in RGB_BACKBONES)
    assert input_recipe("x3d_xs").cache_size == 182 and input_recipe("x3d_xs").cache_bytes() == 4 * 182 * 182 * 3
    with pytest.raises(ConfigError, match="unknown RGB backbone"):
        input_recipe("x3d_xxl")


@pytest.mark.parametrize("name", ["x3d_xs", "slow_r50"])
def test_zoo_checkpoint_loads_and_trains_one_step(name, tmp_path):
    torch.manual_seed(0)
    zoo = zoo_net(name)
    path = save_zoo_file(zoo, tmp_path / f"{name}.pyth")
    torch.manual_seed(1)
    model = create_rgb_backbone(name, num_classes=NUM_CLASSES)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    report = load_rgb_checkpoint(model, path, name=name)

    zoo_blocks = zoo.blocks[:-1]
    assert report.loaded == len(zoo.state_dict()) - 2  # everything but the 400-class proj
    assert sorted(report.skipped) == [f"blocks.{len(zoo.blocks) - 1}.proj.bias", f"blocks.{len(zoo.blocks) - 1}.proj.weight"]
    assert set(report.kept) == {"head.fc.weight", "head.fc.bias"}
    # the loaded tensors are the file's, not the random init
    for ours, theirs in zip(model.backbone.blocks, zoo_blocks):
        for (key, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
            assert torch.equal(a, b), key
    if name == "x3d_xs":
        pool = zoo.blocks[-1].pool
        assert torch.equal(model.backbone.pre_conv.weight, pool.pre_conv.weight)
        assert torch.equal(model.head.post_conv.weight, pool.post_conv.weight)
    stem = next(k for k in fresh if k.endswith("weight") and k.startswith("backbone.blocks.0"))
    assert not torch.equal(model.state_dict()[stem], fresh[stem])
    assert torch.equal(model.head.fc.weight, fresh["head.fc.weight"]) and model.head.fc.out_features == NUM_CLASSES

    optimizer = torch.optim.SGD(param_groups(model, lr=0.1, backbone_lr_scale=0.1), lr=0.1, momentum=0.9)
    before = model.state_dict()[stem].clone()
    loss = torch.nn.functional.cross_entropy(model(tiny_clip(name)), torch.tensor([0, 3]))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(model.state_dict()[stem], before)


@pytest.mark.parametrize("name", ["x3d_xs", "slowfast_r50"])
def test_loaded_backbone_computes_what_pytorchvideo_does(name, tmp_path):
    """Same weights, same logits: the key map and the head split (global pool, X3D's post-pool conv) are exact."""
    torch.manual_seed(0)
    zoo = zoo_net(name).eval()
    model = create_rgb_backbone(name, num_classes=400)
    report = load_rgb_checkpoint(model, save_zoo_file(zoo, tmp_path / "zoo.pyth"), name=name)
    assert "\n" not in str(report)
    model.head.fc.load_state_dict(zoo.blocks[-1].proj.state_dict())
    clip = tiny_clip(name)
    with torch.no_grad():
        theirs = zoo([clip.index_select(2, torch.tensor([0, 7])), clip] if name == "slowfast_r50" else clip)
        assert torch.allclose(model.eval()(clip), theirs, atol=1e-5)


def test_bare_and_ddp_state_dicts_load(tmp_path):
    zoo = zoo_net("x3d_xs")
    model = create_rgb_backbone("x3d_s", num_classes=NUM_CLASSES)  # X3D-XS and S share one network
    report = load_rgb_checkpoint(model, save_zoo_file(zoo, tmp_path / "ddp.pt", layout="ddp"), name="x3d_s")
    assert report.loaded > 500 and len(report.skipped) == 2
    torch.save(zoo.state_dict(), tmp_path / "bare.pt")
    assert load_rgb_checkpoint(model, tmp_path / "bare.pt", name="x3d_s").loaded == report.loaded


def test_checkpoint_of_another_architecture_fails_in_one_line(tmp_path):
    path = save_zoo_file(zoo_net("slow_r50"), tmp_path / "SLOW_8x8_R50.pyth")
    model = create_rgb_backbone("x3d_xs", num_classes=NUM_CLASSES)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as err:
        load_rgb_checkpoint(model, path, name="x3d_xs")
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "not a x3d_xs checkpoint" in message
    assert "tensors match" in message and "of another shape" in message
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # untouched

    torch.save(create_rgb_backbone("slowonly_small", num_classes=3).state_dict(), tmp_path / "miga.pt")
    with pytest.raises(CheckpointError, match=r"not a slow_r50 checkpoint.*missing") as err:
        load_rgb_checkpoint(create_rgb_backbone("slow_r50", num_classes=3), tmp_path / "miga.pt", name="slow_r50")
    assert "\n" not in str(err.value)


class _Payload:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('ran')",))


def test_loading_is_weights_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = create_rgb_backbone("slowonly_small", num_classes=3).state_dict()
    with open(tmp_path / "evil.pyth", "wb") as f:
        pickle.dump({"model_state": state, "hook": _Payload()}, f)
    torch.save({"model_state": state, "hook": _Payload()}, tmp_path / "evil2.pyth")
    model = create_rgb_backbone("slowonly_small", num_classes=3)
    for name in ("evil.pyth", "evil2.pyth"):
        with pytest.raises(CheckpointError) as err:
            load_rgb_checkpoint(model, tmp_path / name, name="slowonly_small")
        assert "\n" not in str(err.value) and name in str(err.value)
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(CheckpointError, match="nothing is downloaded"):
        load_rgb_checkpoint(model, tmp_path / "X3D_XS.pyth", name="x3d_xs")


def test_param_groups_give_the_backbone_the_lower_lr():
    model = PrototypeClassifier(create_rgb_backbone("x3d_xs", num_classes=NUM_CLASSES), NUM_CLASSES)
    groups = {g["name"]: g for g in param_groups(model, lr=0.2, backbone_lr_scale=0.1)}
    assert set(groups) == {"backbone", "head"}
    assert groups["backbone"]["lr"] == pytest.approx(0.02) and groups["head"]["lr"] == pytest.approx(0.2)
    head = {id(p) for p in groups["head"]["params"]}
    assert id(model.base.head.fc.weight) in head and id(model.prototypes) in head
    assert id(model.base.backbone.blocks[0].conv.conv_t.weight) in {id(p) for p in groups["backbone"]["params"]}
    total = sum(len(g["params"]) for g in groups.values())
    assert total == len(list(model.parameters()))
    split = {g["name"]: g for g in param_groups(model, lr=0.2, weight_decay=5e-5, norm_weight_decay=0.0)}
    assert set(split) == {"backbone", "backbone_norm", "head"} and split["backbone_norm"]["weight_decay"] == 0.0
    torch.optim.SGD(list(split.values()), lr=0.2)
    pose = build_model("pose_slowonly", in_channels=5, num_classes=NUM_CLASSES, base_channels=8)
    fused = CrossAttentionFusion(pose, create_rgb_backbone("x3d_xs", num_classes=NUM_CLASSES), NUM_CLASSES, dim=16, heads=2)
    only_rgb = {g["name"]: g for g in param_groups(fused, lr=0.2, backbone="rgb.backbone")}
    assert id(fused.pose.backbone.stem[0].weight) in {id(p) for p in only_rgb["head"]["params"]}
    with pytest.raises(CheckpointError, match="expected one RGB classifier"):
        load_rgb_checkpoint(fused, "unused.pyth", name="x3d_xs")


def test_freeze_batchnorm_keeps_running_stats_across_train():
    model = create_rgb_backbone("x3d_xs", num_classes=NUM_CLASSES)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert freeze_batchnorm(model) == len(norms) > 0
    model.train()
    stats = [(m.running_mean.clone(), m.running_var.clone()) for m in norms]
    model(tiny_clip("x3d_xs")).sum().backward()
    assert all(torch.equal(m.running_mean, a) and torch.equal(m.running_var, b) for m, (a, b) in zip(norms, stats))
    assert all(not p.requires_grad for m in norms for p in m.parameters())
    assert model.backbone.blocks[1].res_blocks[0].branch2.conv_a.weight.grad is not None


def test_freeze_stages_stops_the_first_stages():
    model = create_rgb_backbone("slowonly_small", num_classes=NUM_CLASSES)
    stages = backbone_stages(model)
    assert len(stages) == 4
    assert freeze_stages(model, 2) > 0
    model.train()
    model(tiny_clip("slowonly_small")).sum().backward()
    assert all(p.grad is None for s in stages[:2] for p in s.parameters())
    assert all(p.grad is not None for s in stages[2:] for p in s.parameters())
    assert len(backbone_stages(create_rgb_backbone("x3d_xs", num_classes=3))) == 6
    with pytest.raises(ConfigError):
        freeze_stages(model, 9)


def test_clip_transform_train_and_test():
    recipe = input_recipe("x3d_xs")
    clip = np.random.default_rng(0).integers(0, 256, (4, recipe.cache_size, recipe.cache_size, 3), dtype=np.uint8)
    train = rgb_clip_transform(recipe, train=True)
    a = train(clip, np.random.default_rng(5))
    assert a.shape == (3, 4, 160, 160) and a.dtype == torch.float32
    assert torch.equal(a, train(clip, np.random.default_rng(5)))  # deterministic given the rng
    as_tensor = torch.from_numpy(clip).permute(3, 0, 1, 2)  # (3, T, H, W) uint8
    assert torch.equal(train(as_tensor, np.random.default_rng(5)), a)
    test = rgb_clip_transform(recipe, train=False)(clip)
    assert test.shape == (3, 4, 182, 182)
    grey = np.full((2, 100, 140, 3), round(0.45 * 255), np.uint8)  # the mean: ~0 after normalising
    small = InputRecipe(2, 0, 64, test_size=64, scale_range=(72, 90))
    out = rgb_clip_transform(small, train=False)(grey)
    assert out.shape == (3, 2, 64, 64) and out.abs().max() < 0.01
    assert rgb_clip_transform(small, train=True, intensity_jitter=0.2)(grey, np.random.default_rng(0)).shape == (3, 2, 64, 64)


def test_frame_sampling_follows_the_recipe():
    recipe = input_recipe("x3d_xs")  # 4 x 12
    test = sample_frame_indices(recipe, 100, 199, train=False)
    assert np.all(np.diff(test) == 12) and test[0] >= 100 and test[-1] <= 199
    train = sample_frame_indices(recipe, 100, 199, train=True, rng=np.random.default_rng(0))
    assert np.all(np.diff(train) == 12) and 100 <= train[0] and train[-1] <= 199
    short = sample_frame_indices(recipe, 10, 19, train=True)  # shorter than the 37-frame window: spread over it
    assert len(short) == 4 and short.min() >= 10 and short.max() <= 19
    uniform = sample_frame_indices(input_recipe("slowonly_small"), 0, 79, train=False)
    assert uniform.tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
