"""Model builders (keyword-only, parts injected, as in pytorchvideo) and the one registry of named models (`MODELS`):
the RGB backbones are in it as `rgb_<backbone>` (their input recipes and zoo files: `miga.models.rgb_backbones`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch.nn as nn

from miga.errors import ConfigError
from miga.models.detector import create_temporal_detector, create_window_classifier
from miga.models.rgb_backbones import (  # the RGB stream's backbones: registry, zoo weights, fine-tuning
    RGB_BACKBONES, CheckpointError, InputRecipe, LoadReport, create_rgb_backbone, freeze_batchnorm, freeze_stages,
    input_recipe, load_rgb_checkpoint, param_groups, rgb_clip_transform, sample_frame_indices,
)
from miga.models.slowonly import create_slowonly
from miga.models.skeleton_tcn import create_skeleton_tcn
from miga.models.stgcn import create_stgcn
from miga.models.temporal import create_temporal_convnet

__all__ = [
    "MODELS", "RGB_BACKBONES", "CheckpointError", "InputRecipe", "LoadReport", "build_model", "create_rgb_backbone",
    "create_skeleton_tcn", "create_slowonly", "create_stgcn", "create_temporal_convnet", "create_temporal_detector",
    "create_window_classifier", "freeze_batchnorm", "freeze_stages", "input_recipe", "load_rgb_checkpoint", "load_trained",
    "param_groups", "rgb_clip_transform", "sample_frame_indices",
]

MODELS: dict[str, Callable[..., nn.Module]] = {
    # Pose stream over joint (or limb) heatmaps: channels = joints, SlowOnly-style (no early temporal conv).
    "pose_slowonly": lambda *, in_channels, num_classes, base_channels=16, **kw: create_slowonly(
        in_channels=in_channels, num_classes=num_classes, base_channels=base_channels, **kw
    ),
    # Skeleton stream: ST-GCN++ graph convolutions over (C, T, V) joint / bone / motion features of a layout.
    "stgcn": create_stgcn,
    # Skeleton stream over time only: the flattened joints (and their motion) through a dilated temporal conv net.
    "skeleton_tcn": create_skeleton_tcn,
    # Track 2 per-frame classifier over per-frame features.
    "temporal_convnet": create_temporal_convnet,
    # Track 2 anchor-free detector (class per step + distances to start and end, feature pyramid).
    "temporal_detector": create_temporal_detector,
    # Track 2 sliding-window baseline: one label per window.
    "window_classifier": create_window_classifier,
    # RGB stream over person-centred frame crops: every backbone of `rgb_backbones.RGB_BACKBONES`.
    **{f"rgb_{name}": partial(create_rgb_backbone, name) for name in RGB_BACKBONES},
}


def load_trained(model: nn.Module, path, map_location: str = "cpu") -> dict:
    """Load a saved `{"model": state_dict, ...}` (weights_only) into `model`; ConfigError when the shapes do not
    match (the model file was trained with other params.yaml settings). Returns the whole saved dict."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: trained model not found (run its train stage: dvc repro)")
    from miga.training import read_torch_file

    state = read_torch_file(path, "delete it and retrain (dvc repro)", map_location)
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{path}: the saved model does not match params.yaml ({first}); retrain it (dvc repro)") from None
    return state


def build_model(name: str, **kwargs) -> nn.Module:
    try:
        builder = MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return builder(**kwargs)
