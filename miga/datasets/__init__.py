"""Readers for the official dataset layouts; each turns a release into the manifest/segments contracts.

A dataset in params.yaml names its root and its `format` (a key of READERS; default: its own
name). Every reader module offers `scan_release(root, options, entry, *, require_video) ->
(manifest, segments)`, `class_names(root, entry)`, `layout_of(root, entry)` and
`provided_keypoints(root, manifest, entry)`; `entry` is the dataset's params entry (optional
`skeleton_root`, `video_root`, `test_truth`, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType

from miga.datasets import imigue, smg, stream
from miga.datasets.csvtable import DatasetFormatError

READERS: dict[str, ModuleType] = {"imigue": imigue, "smg": smg, "stream": stream}


def reader(fmt: str) -> ModuleType:
    try:
        return READERS[fmt]
    except KeyError:
        raise DatasetFormatError(f"unknown dataset format {fmt!r}; known: {sorted(READERS)}") from None


def format_of(name: str, entry: Mapping) -> str:
    return str(entry["format"] or name)


def pose_source(entry: Mapping, pose_params: Mapping) -> str:
    """Where a dataset's keypoints come from: its own `pose`, else the project's `pose.backend`."""
    return str(entry["pose"] or pose_params["backend"])


def needs_video(entry: Mapping, pose_params: Mapping) -> bool:
    """A clip without video breaks the run when its pose comes from video (Track 1's RGB streams check their own crops)."""
    return pose_source(entry, pose_params) != "provided"


__all__ = ["READERS", "DatasetFormatError", "format_of", "imigue", "needs_video", "pose_source", "reader", "smg", "stream"]
