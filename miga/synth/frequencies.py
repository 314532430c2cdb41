"""Class frequencies of the real label lists, and tempered class sampling from them.

The counts are facts measured from the official lists (docs/design.md section 4), embedded so the
synthetic data is long-tailed the way the real data is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# iMiGUE official train labels, 0-based class -> clips (13,670 clips).
IMIGUE_TRAIN_COUNTS = (
    10, 418, 39, 207, 80, 23, 64, 858, 87, 3, 302, 154, 97, 41, 28, 27,
    322, 83, 2, 942, 170, 373, 657, 700, 11, 287, 87, 60, 1237, 6, 2272, 4023,
)
# SMG official test labels, 0-based class -> instances; classes 14 ("pulling shirt collar")
# and 15 ("playing with jewelry") do not occur there.
SMG_TEST_COUNTS = (13, 3, 15, 2, 49, 1, 3, 191, 243, 34, 8, 30, 4, 5, 0, 0, 9)
ABSENT_CLASS_COUNT = 1.0  # weight given to classes a list lacks, so they still occur rarely


def tempered_probabilities(counts: Sequence[float], power: float) -> np.ndarray:
    """p_c proportional to count_c ** power (power 1: the real frequencies, 0: uniform)."""
    counts = np.maximum(np.asarray(counts, dtype=np.float64), ABSENT_CLASS_COUNT)
    weights = counts**power
    return weights / weights.sum()


def sample_classes(
    rng: np.random.Generator, counts: Sequence[float], n: int, *, power: float, cover: bool = False
) -> np.ndarray:
    """Draw n classes from the tempered frequencies; `cover` makes every class appear at least once.

    Covering replaces draws of the currently most frequent classes, so the head stays the head.
    """
    probabilities = tempered_probabilities(counts, power)
    num_classes = probabilities.size
    labels = rng.choice(num_classes, size=n, p=probabilities)
    if not cover:
        return labels
    if n < num_classes:
        raise ValueError(f"cannot cover {num_classes} classes with {n} draws")
    for missing in np.flatnonzero(np.bincount(labels, minlength=num_classes) == 0):
        histogram = np.bincount(labels, minlength=num_classes)
        head = np.flatnonzero(labels == np.argmax(histogram))
        labels[rng.choice(head)] = missing
    return labels
