"""Random people: body size, habits (handedness, speed, rest posture) and colours."""

from __future__ import annotations

import numpy as np

from miga.synth.body import SEATED_RESTS, STANDING_RESTS, Subject

_SKIN = ((241, 194, 160), (224, 172, 128), (198, 134, 96), (160, 104, 70), (112, 74, 50), (235, 200, 175))
_HAIR = ((30, 24, 20), (70, 45, 30), (120, 90, 60), (160, 130, 90), (90, 90, 90), (20, 20, 25))
_CLOTH = (
    (40, 60, 110), (30, 30, 35), (200, 200, 205), (120, 30, 40), (60, 100, 70), (150, 120, 90), (80, 80, 90), (230, 230, 220),
)


def _pick(rng: np.random.Generator, palette) -> tuple[int, int, int]:
    base = np.array(palette[rng.integers(len(palette))], np.float64)
    return tuple(int(c) for c in np.clip(base + rng.normal(0.0, 8.0, 3), 0, 255))


def _colours(rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    wall = np.clip(rng.uniform(150, 225) + rng.normal(0.0, 15.0, 3), 0, 255)
    colours = {
        "skin": _pick(rng, _SKIN), "hair": _pick(rng, _HAIR), "shirt": _pick(rng, _CLOTH),
        "trousers": _pick(rng, _CLOTH[:2] + _CLOTH[5:7]), "shoes": (35, 30, 30), "eyes": (25, 25, 30),
        "lips": (150, 70, 70), "wall": tuple(int(c) for c in wall),
        "chair": _pick(rng, ((60, 40, 30), (30, 30, 30), (110, 20, 25))), "floor": tuple(int(c * 0.6) for c in wall),
    }
    if rng.random() < 0.4:  # short sleeves: bare forearms
        colours["sleeve"] = colours["skin"]
    return colours


def sample_subject(rng: np.random.Generator, subject_id: int, *, seated: bool) -> Subject:
    rests = SEATED_RESTS if seated else STANDING_RESTS
    return Subject(
        id=subject_id,
        scale=float(rng.uniform(0.9, 1.1)),
        shoulder_width=float(rng.uniform(0.9, 1.12)),
        seated=seated,
        dominant="r" if rng.random() < 0.8 else "l",
        speed=float(rng.uniform(0.8, 1.25)),
        rest=rests[rng.integers(len(rests))],
        head_pitch=float(rng.normal(0.0, 0.06)),
        noise_px=float(rng.uniform(0.4, 1.0)),
        drop_rate=float(rng.uniform(0.003, 0.015)),
        colours=_colours(rng),
    )
