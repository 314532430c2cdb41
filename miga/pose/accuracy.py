"""Pose accuracy as PCK: a joint is correct when it lies within `alpha` x the torso size of the truth.

Torso = left shoulder to right hip (COCO-17 joints 5 and 12), as in the PoseConv3D / MiGA reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

COCO_LSHOULDER, COCO_RHIP = 5, 12
COCO_ARMS = slice(5, 11)  # shoulders, elbows, wrists


def correct_joints(pred: np.ndarray, truth: np.ndarray, torso: np.ndarray | float, alpha: float = 0.2) -> np.ndarray:
    """Boolean (..., J): within `alpha` x torso of the truth, and found (score > 0) where `pred` carries scores.

    pred/truth (..., J, 2+); torso broadcastable to pred's leading shape (...)."""
    dist = np.linalg.norm(pred[..., :2] - truth[..., :2], axis=-1)
    found = pred[..., 2] > 0 if pred.shape[-1] > 2 else True
    return (dist < alpha * np.asarray(torso)[..., None]) & found


def pck(pred: np.ndarray, truth: np.ndarray, torso: np.ndarray | float, mask: np.ndarray, alpha: float = 0.2) -> float:
    """Fraction of the `mask`ed joints that are correct (`correct_joints`)."""
    return float(correct_joints(pred, truth, torso, alpha)[mask].mean())


def coco_person_crops(coco: Mapping, min_keypoints: int = 5, padding: float = 0.25) -> Iterator[tuple[str, tuple[int, int, int, int], np.ndarray]]:
    """(image file name, padded box x0, y0, x1, y1 before clipping to the image, (17, 3) truth) per usable COCO person.

    Usable: at least `min_keypoints` labelled joints, the torso ends among them."""
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    for ann in coco["annotations"]:
        truth = np.asarray(ann["keypoints"], np.float64).reshape(17, 3)
        if ann["num_keypoints"] < min_keypoints or not (truth[COCO_LSHOULDER, 2] and truth[COCO_RHIP, 2]):
            continue
        x, y, w, h = ann["bbox"]
        yield files[ann["image_id"]], (int(x - padding * w), int(y - padding * h), int(x + (1 + padding) * w), int(y + (1 + padding) * h)), truth


def coco_crops_pck(coco: Mapping, read_image: Callable[[str], np.ndarray], estimate: Callable[[np.ndarray], np.ndarray],
                   alpha: float = 0.2) -> tuple[list[bool], list[bool]]:
    """Per labelled joint of every usable COCO person: correct or not, for all joints and for the arms.

    Each person's box, padded by 25%, is cut from its image (`read_image(file name)`, RGB) and given to
    `estimate(crop) -> (17, 3)` COCO-17 keypoints in crop pixels with scores."""
    correct, arms = [], []
    for name, (x0, y0, x1, y1), truth in coco_person_crops(coco):
        image = read_image(name)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(image.shape[1], x1), min(image.shape[0], y1)
        kp = np.array(estimate(image[y0:y1, x0:x1]), np.float64)
        kp[:, :2] += (x0, y0)
        ok = correct_joints(kp, truth, np.linalg.norm(truth[COCO_LSHOULDER, :2] - truth[COCO_RHIP, :2]), alpha)
        labelled = truth[:, 2] > 0
        correct += ok[labelled].tolist()
        arms += ok[COCO_ARMS][labelled[COCO_ARMS]].tolist()
    return correct, arms
