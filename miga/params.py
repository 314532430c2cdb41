"""Parameter trees (params.yaml sections, experiment overrides) as plain nested dicts."""

from __future__ import annotations

import copy
from collections.abc import Mapping


def merged(base: Mapping, override: Mapping) -> dict:
    """A deep copy of `base` with `override` laid over it: nested mappings merge, every other value replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out
