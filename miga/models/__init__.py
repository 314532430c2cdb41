"""Model builders (keyword-only, parts injected, as in pytorchvideo) and one registry of named models."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

from miga.models.detector import create_temporal_detector, create_window_classifier
from miga.models.slowonly import create_slowonly
from miga.models.temporal import create_temporal_convnet

MODELS: dict[str, Callable[..., nn.Module]] = {
    # Pose stream over joint (or limb) heatmaps: channels = joints, SlowOnly-style (no early temporal conv).
    "pose_slowonly": lambda *, in_channels, num_classes, base_channels=16, **kw: create_slowonly(
        in_channels=in_channels, num_classes=num_classes, base_channels=base_channels, **kw
    ),
    # RGB stream over person-centred frame crops.
    "rgb_slowonly": lambda *, num_classes, base_channels=16, in_channels=3, **kw: create_slowonly(
        in_channels=in_channels, num_classes=num_classes, base_channels=base_channels,
        stem_kernel=(1, 5, 5), stem_stride=(1, 2, 2), **kw
    ),
    # Track 2 per-frame classifier over per-frame features.
    "temporal_convnet": create_temporal_convnet,
    # Track 2 anchor-free detector (class per step + distances to start and end, feature pyramid).
    "temporal_detector": create_temporal_detector,
    # Track 2 sliding-window baseline: one label per window.
    "window_classifier": create_window_classifier,
}


def build_model(name: str, **kwargs) -> nn.Module:
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
    return builder(**kwargs)
