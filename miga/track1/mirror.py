"""Classes seen in a mirror. Track 1's flips (the training augmentation and the mirrored test views) swap a clip's
left and right joints; a class that names a side (turn left, turn right) then shows its twin, so its label must
follow: `track1.mirror_classes` lists those pairs.

`class_mirror` is the class each class becomes in the mirror (a permutation, the identity by default). Training
relabels a mirrored clip with it (`mirrored_label`); test views that were mirrored have their class probabilities
mapped back before they are averaged with the others (`unmirrored`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from miga.skeleton import class_mirror

__all__ = ["class_mirror", "mirrored_label", "unmirrored"]


def mirrored_label(label: int, mirrored: bool, classes: np.ndarray | None) -> int:
    """The label of a clip after the flip decision (unlabelled clips, label < 0, stay so)."""
    label = int(label)
    return int(classes[label]) if mirrored and classes is not None and label >= 0 else label


def unmirrored(probs: torch.Tensor, view_mirrored: Sequence[bool] | None, classes: np.ndarray | None) -> torch.Tensor:
    """`(N, V, K)` class probabilities of V test views, with each mirrored view's classes mapped back to the
    original clip's: p(clip is k) = p(mirrored view is classes[k])."""
    if classes is None or view_mirrored is None or not np.any(view_mirrored):
        return probs
    flags = torch.as_tensor(np.asarray(view_mirrored, dtype=bool))
    if flags.numel() != probs.shape[1]:
        raise ValueError(f"{probs.shape[1]} views but {flags.numel()} mirror flags")
    out = probs.clone()
    out[:, flags] = probs[:, flags][..., torch.as_tensor(classes)]
    return out
