import pytest
import torch

from miga.models import MODELS, RGB_BACKBONES, build_model

CASES = {
    "pose_slowonly": (dict(in_channels=22, num_classes=32), (2, 22, 8, 32, 32)),
    "stgcn": (dict(layout="openpose25_hands10", num_classes=8, base_channels=8, num_blocks=3, inflate_at=(1,)), (2, 3, 16, 35)),
    "skeleton_tcn": (dict(num_joints=35, num_classes=8, channels=16, blocks=2), (2, 3, 16, 35)),
    "temporal_convnet": (dict(in_features=40, num_classes=18, layers=3), (2, 40, 50)),
    "temporal_detector": (dict(in_features=40, num_classes=17, layers=2, levels=3), (2, 40, 64)),
    "window_classifier": (dict(in_features=40, num_classes=18, layers=2), (2, 40, 32)),
}


RGB = {f"rgb_{name}" for name in RGB_BACKBONES}  # forward / backward of each: tests/models/test_rgb_backbones.py


def test_every_registered_model_has_a_case():
    assert set(CASES) | RGB == set(MODELS) and not set(CASES) & RGB


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_backward_no_nan(name):
    torch.manual_seed(0)
    kwargs, shape = CASES[name]
    model = build_model(name, **kwargs)
    out = model(torch.randn(*shape))
    if name == "temporal_detector":  # class logits and distances at every pyramid position
        out, distances = out
        assert out.shape[2] == distances.shape[2] == 64 + 32 + 16 and (distances >= 0).all()
        out = out + distances.sum(1, keepdim=True)
    classes = kwargs["num_classes"]
    assert out.shape[:2] == (shape[0], classes)
    if name == "temporal_convnet":
        assert out.shape[2] == shape[2]  # one prediction per frame
    out.float().logsumexp(1).mean().backward()
    assert torch.isfinite(out).all()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("nope")
