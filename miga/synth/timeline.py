"""Choices shared by the dataset planners: how long a gesture lasts and which hand does it."""

from __future__ import annotations

import numpy as np

from miga.synth.body import OTHER, Subject
from miga.synth.calibration import DURATION_LOG_SIGMA
from miga.synth.gestures import Program

DOMINANT_HAND_SHARE = 0.8  # one-hand gestures done with the dominant hand


def gesture_frames(rng: np.random.Generator, program: Program, subject: Subject, fps: float, scale: float, bounds) -> int:
    """A duration from the program's typical range, slower or faster with the person, within `bounds`."""
    seconds = rng.uniform(*program.seconds) * scale / subject.speed
    if DURATION_LOG_SIGMA > 0:
        seconds *= float(np.exp(rng.normal(0.0, DURATION_LOG_SIGMA)))
    return int(np.clip(round(seconds * fps), bounds[0], bounds[1]))


def acting_side(rng: np.random.Generator, subject: Subject) -> str:
    return subject.dominant if rng.random() < DOMINANT_HAND_SHARE else OTHER[subject.dominant]
