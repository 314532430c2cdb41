"""Readers for the official dataset layouts; each turns a release into the manifest/segments contracts.

A dataset in params.yaml names its root and its `format` (a key of READERS; default: its own
name). Every reader module offers `scan_release(root, options) -> (manifest, segments)`,
`class_names(root)`, `layout_of(root)` and `provided_keypoints(root, manifest)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from miga.datasets import imigue, smg, stream
from miga.datasets.csvtable import DatasetFormatError

READERS: dict[str, ModuleType] = {"imigue": imigue, "smg": smg, "stream": stream}


def reader(fmt: str) -> ModuleType:
    try:
        return READERS[fmt]
    except KeyError:
        raise ValueError(f"unknown dataset format {fmt!r}; known: {sorted(READERS)}") from None


def format_of(name: str, entry: Mapping) -> str:
    return str(entry.get("format", name))


__all__ = ["READERS", "DatasetFormatError", "format_of", "imigue", "reader", "smg", "stream"]
