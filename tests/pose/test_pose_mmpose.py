"""The mmpose pose backend: layout conversion, errors and laziness always; the model only where mmpose is installed.

MMPose is an optional extra (`bash scripts/install-mmpose.sh`, mmcv without its compiled ops;
BENCHMARKS.md "MMPose install"), so the model test skips without it ("mmpose not installed");
where mmpose is installed but does not import, the skip says so and gives the import's error.
With it, an untrained RTMPose-t is built from a config dict (no checkpoint, nothing downloaded)
and run through the backend on a small video.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from miga.layouts import COCO17, OPENPOSE25_HANDS10, convert
from miga.pose import get_backend
from miga.pose import mmpose_backend as mm
from tests.conftest import write_test_video

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_backend_does_not_import_mmpose_or_torch():
    code = "import sys, miga.pose, miga.pose.mmpose_backend; assert not {'mmpose', 'mmcv', 'mmengine', 'torch'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_missing_mmpose_names_the_install_script(monkeypatch):
    monkeypatch.setitem(sys.modules, "mmpose", None)
    monkeypatch.setitem(sys.modules, "mmpose.apis", None)
    assert not mm.mmpose_installed()
    with pytest.raises(ImportError, match="needs mmpose.*bash scripts/install-mmpose.sh"):
        mm.import_mmpose()
    config = Path(__file__)  # any existing file: the settings check comes first, then the import
    manifest = pl.DataFrame({"sample_id": ["s"], "video": ["v.mp4"], "start_frame": [0], "end_frame": [1]})
    with pytest.raises(ImportError, match="install-mmpose"):
        get_backend("mmpose")("imigue", REPO, manifest, config=str(config), progress=False)


def test_settings_name_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="pose.mmpose.config is required"):
        mm.MmposeSettings(None)
    with pytest.raises(FileNotFoundError, match="nope.py"):
        mm.MmposeSettings(str(tmp_path / "nope.py"))
    config = tmp_path / "rtm.py"
    config.write_text("model = dict()\n")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        mm.MmposeSettings(str(config), checkpoint=str(tmp_path / "w.pth"))
    key = mm.MmposeSettings(str(config)).key()
    config.write_text("model = dict(type='X')\n")
    assert mm.MmposeSettings(str(config)).key() != key  # the shard key follows the config's content
    assert mm.MmposeSettings({"model": {}}).key() != mm.MmposeSettings({"model": {"a": 1}}).key()


def test_checkpoints_load_weights_only(tmp_path):
    """Weights, containers and numpy metadata (MMPose keeps OKS sigmas there) load; any other object is refused."""
    import os

    import torch

    weights = {"head.weight": torch.arange(6.0).reshape(2, 3)}
    torch.save({"state_dict": weights, "meta": {"dataset_meta": {"sigmas": np.linspace(0.1, 0.2, 17)}, "epoch": np.int64(3)}},
               tmp_path / "ok.pth")
    state = mm.load_checkpoint(tmp_path / "ok.pth")
    assert torch.equal(state["state_dict"]["head.weight"], weights["head.weight"])
    assert state["meta"]["dataset_meta"]["sigmas"].shape == (17,) and state["meta"]["epoch"] == 3

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    torch.save({"state_dict": weights, "meta": Payload()}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="bad.pth.*weights_only=True"):
        mm.load_checkpoint(tmp_path / "bad.pth")
    assert not (tmp_path / "ran").exists()


def test_the_model_runs_on_a_fixed_torch_thread_count():
    """Whichever executor runs it (this process, a worker process, a Ray actor), with the caller's count put back after."""
    import torch

    before = torch.get_num_threads()
    with mm.torch_threads():
        assert torch.get_num_threads() == mm.TORCH_THREADS == 1
    assert torch.get_num_threads() == before


def test_a_cspnext_backbone_from_mmdet_is_built_from_mmposes_copy():
    config = {"model": {"backbone": {"_scope_": "mmdet", "type": "CSPNeXt", "arch": "P5"}, "head": {"_scope_": "mmdet", "type": "X"}}}
    mm.own_backbone(config)
    assert config["model"]["backbone"] == {"type": "CSPNeXt", "arch": "P5"}
    assert config["model"]["head"] == {"_scope_": "mmdet", "type": "X"}  # nothing else changes
    other = {"model": {"backbone": {"_scope_": "mmdet", "type": "ResNet"}}}
    mm.own_backbone(other)
    assert other["model"]["backbone"]["_scope_"] == "mmdet"


def test_coco17_points_to_layouts():
    raw = np.zeros((2, 17, 3), np.float32)
    raw[..., 0] = np.arange(17)
    raw[..., 1] = 100 + np.arange(17)
    raw[..., 2] = 0.8
    raw[1, COCO17.index("LHip"), 2] = 0  # a hip missing in frame 1: no MidHip there
    op = mm.to_layout(raw)
    j = OPENPOSE25_HANDS10.index
    assert op.shape == (2, 35, 3)
    assert op[0, j("LWrist")].tolist() == pytest.approx([COCO17.index("LWrist"), 100 + COCO17.index("LWrist"), 0.8])
    assert op[0, j("Neck"), 0] == (COCO17.index("LShoulder") + COCO17.index("RShoulder")) / 2
    assert op[0, j("MidHip"), 2] > 0 and op[1, j("MidHip"), 2] == 0
    assert not op[:, j("LThumbTip")].any()  # a body model has no fingertips
    expected = np.where(raw[..., 2:] > 0, raw, 0)  # a missing point is all zero, not x, y with score 0
    assert np.array_equal(mm.to_layout(raw, "coco17"), expected)
    assert np.array_equal(mm.to_layout(raw, "coco17", mirror=True), expected[:, COCO17.flip_index])


def test_wholebody_points_to_layouts():
    raw = np.zeros((1, 133, 3), np.float32)
    raw[..., 0] = np.arange(133)
    raw[..., 2] = 0.9
    op = mm.to_layout(raw)[0]
    j = OPENPOSE25_HANDS10.index
    assert op[j("Nose"), 0] == 0 and op[j("RWrist"), 0] == 10 and op[j("LHip"), 0] == 11
    assert op[j("LBigToe"), 0] == 17 and op[j("RSmallToe"), 0] == 21 and op[j("RHeel"), 0] == 22
    assert op[j("LThumbTip"), 0] == 95 and op[j("LPinkyTip"), 0] == 111
    assert op[j("RThumbTip"), 0] == 116 and op[j("RPinkyTip"), 0] == 132
    assert op[j("Neck"), 0] == 5.5 and op[j("MidHip"), 0] == 11.5
    assert (op[:, 2] > 0).all()  # every openpose25_hands10 point has a source
    assert np.array_equal(mm.to_layout(raw, "imigue22")[0], convert(op, "openpose25_hands10", "imigue22"))
    mirrored = mm.to_layout(raw, mirror=True)[0]
    assert mirrored[j("RThumbTip"), 0] == 95
    with pytest.raises(ValueError, match="17 or 133"):
        mm.to_layout(np.zeros((1, 26, 3)))
    with pytest.raises(ValueError, match="layouts"):
        mm.to_layout(raw, "kinect25")


# ---------------------------------------------------------------- with mmpose installed


def require_mmpose():
    """`mmpose.apis`; else a skip: "mmpose not installed", or, where it is installed, the error its import raised."""
    if not mm.mmpose_installed():
        pytest.skip("mmpose not installed (optional extra: bash scripts/install-mmpose.sh)")
    try:
        return mm.import_mmpose()
    except ImportError as err:
        pytest.skip(str(err))  # "mmpose is installed but `import mmpose.apis` fails: <the error> ..."


CODEC = dict(type="SimCCLabel", input_size=(192, 256), sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False, use_dark=False)
RTMPOSE_T = dict(  # RTMPose-t (COCO, 256x192), untrained: the architecture of the official config
    default_scope="mmpose",
    model=dict(
        type="TopdownPoseEstimator",
        data_preprocessor=dict(type="PoseDataPreprocessor", mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
        backbone=dict(type="CSPNeXt", arch="P5", expand_ratio=0.5, deepen_factor=0.167, widen_factor=0.375, out_indices=(4,),
                      channel_attention=True, norm_cfg=dict(type="BN"), act_cfg=dict(type="SiLU")),
        head=dict(type="RTMCCHead", in_channels=384, out_channels=17, input_size=CODEC["input_size"],
                  in_featuremap_size=tuple(s // 32 for s in CODEC["input_size"]), simcc_split_ratio=CODEC["simcc_split_ratio"],
                  final_layer_kernel_size=7,
                  gau_cfg=dict(hidden_dims=256, s=128, expansion_factor=2, dropout_rate=0.0, drop_path=0.0, act_fn="SiLU",
                               use_rel_bias=False, pos_enc=False),
                  loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=10.0, label_softmax=True), decoder=CODEC),
        test_cfg=dict(flip_test=False),
    ),
    test_dataloader=dict(dataset=dict(pipeline=[
        dict(type="LoadImage"), dict(type="GetBBoxCenterScale"),
        dict(type="TopdownAffine", input_size=CODEC["input_size"]), dict(type="PackPoseInputs"),
    ])),
)


def test_untrained_rtmpose_runs_through_the_backend(tmp_path):
    require_mmpose()
    video = tmp_path / "clip.mp4"
    write_test_video(video, 3, size=(96, 64))
    manifest = pl.DataFrame({"sample_id": ["s"], "video": ["clip.mp4"], "start_frame": [1], "end_frame": [2]})
    result = get_backend("mmpose")("x", tmp_path, manifest, config=RTMPOSE_T, device="cpu", shard_dir=tmp_path / "shards",
                                   progress=False)
    assert result.layout == "openpose25_hands10" and result.source["backend"] == "mmpose"
    start, kp = result.keypoints["s"]
    assert start == 1 and kp.shape == (1, 2, 35, 3) and np.isfinite(kp).all()
    xy = kp[0][kp[0, :, :, 2] > 0][:, :2]
    assert ((xy >= 0) & (xy <= [95, 63])).all()  # pixels of the frame, whatever an untrained model says
    assert result.source["videos"]["clip.mp4"]["frames"] == 2


def test_mmposes_own_rtmpose_and_rtmw_configs_build_and_run():
    """The config files mmpose ships (RTMPose-t takes its CSPNeXt from mmdet's scope), untrained: one frame each."""
    apis = require_mmpose()
    import mmpose

    configs = Path(mmpose.__file__).parent / ".mim" / "configs"
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    for name, points in (("body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py", 17),
                         ("wholebody_2d_keypoint/rtmpose/cocktail14/rtmw-m_8xb1024-270e_cocktail14-256x192.py", 133)):
        with mm.torch_threads():
            out = mm.estimate_frame(apis, mm.MmposeSettings(str(configs / name)).build(), frame)
        assert out.shape == (points, 3) and np.isfinite(out).all()


def test_a_config_that_is_not_a_model_is_named(tmp_path):
    require_mmpose()
    config = tmp_path / "params.yaml"
    config.write_text("model:\n  fusion: late\n")
    with pytest.raises(ValueError, match="params.yaml is not an MMPose model config"):
        mm.MmposeSettings(str(config)).build()
