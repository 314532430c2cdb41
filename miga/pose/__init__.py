"""Pose backends: each turns the samples of a manifest into keypoints `(M, T, V, 3)` in one layout.

A backend is a callable `(format, raw_root, manifest) -> PoseResult` (format: a dataset reader name). `provided` reads the
dataset's own skeletons; video backends (mediapipe, mmpose) plug in under the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import polars as pl

from miga.datasets import reader
from miga.errors import ConfigError
from miga.layouts import convert


@dataclass(frozen=True)
class PoseResult:
    layout: str
    keypoints: dict[str, tuple[int, np.ndarray]]  # sample_id -> (first frame, (M, T, V, 3))
    source: dict = field(default_factory=dict)  # provenance (JSON): backend, settings, per-video notes


PoseBackend = Callable[[str, Path, pl.DataFrame], PoseResult]


def provided(fmt: str, raw_root: Path, manifest: pl.DataFrame, *, entry: dict | None = None) -> PoseResult:
    """The skeletons that ship with the dataset (OpenPose for iMiGUE, Kinect colour-frame joints for SMG)."""
    module = reader(fmt)
    keypoints = module.provided_keypoints(Path(raw_root), manifest, entry)
    source = {"backend": "provided", "format": fmt}
    if entry is not None and entry["skeleton"]:
        source["skeleton"] = str(entry["skeleton"])
    return PoseResult(module.layout_of(Path(raw_root), entry), keypoints, source)


def mediapipe(fmt: str, raw_root: Path, manifest: pl.DataFrame, **options) -> PoseResult:
    """MediaPipe Pose / Holistic on the videos (optional dependency; a clear error names the install when absent)."""
    from miga.pose.mediapipe_backend import mediapipe_backend

    return mediapipe_backend(fmt, raw_root, manifest, **options)


def mmpose(fmt: str, raw_root: Path, manifest: pl.DataFrame, **options) -> PoseResult:
    """An MMPose top-down model (RTMPose / RTMW) on the videos (optional extra: scripts/install-mmpose.sh)."""
    from miga.pose.mmpose_backend import mmpose_backend

    return mmpose_backend(fmt, raw_root, manifest, **options)


BACKENDS: dict[str, PoseBackend] = {"provided": provided, "mediapipe": mediapipe, "mmpose": mmpose}


def mirrored(result: PoseResult) -> PoseResult:
    """Swap left/right joint names (Kinect colour frames call the image's right side "left")."""
    keypoints = {sid: (start, convert(kp, result.layout, result.layout, mirror=True)) for sid, (start, kp) in result.keypoints.items()}
    return replace(result, keypoints=keypoints, source={**result.source, "mirrored": not result.source.get("mirrored", False)})


def get_backend(name: str) -> PoseBackend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UnknownBackendError(f"unknown pose backend {name!r}; available: {sorted(BACKENDS)}") from None


class UnknownBackendError(ConfigError):
    """A pose backend name that is not one of BACKENDS."""
