"""One motion program per gesture class, for iMiGUE (32 classes) and SMG (17 classes).

A program says which body part the hand(s) visit (an anchor, see `body.ANCHORS`), how they move
there, with one hand or both, for how long, and how the trunk, shoulders, head and legs move.
Several classes share an anchor and differ only in motion (rub eyes vs touch forehead vs scratch
head), so the classes are learnable from pose but not trivially separable.

Hand vectors are side-relative: (medial, up, forward), medial pointing toward the body's midline
from the hand's own side, forward toward the camera; `body.to_body_frame` turns them into x, y, z.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from miga.synth.calibration import ILLUSTRATIVE_AMP, ILLUSTRATIVE_REACH

Vec = tuple[float, float, float]


@dataclass(frozen=True)
class HandAction:
    """Where one hand goes and what it does there."""

    anchor: str | tuple[str, ...]  # several: one is chosen per instance
    offset: Vec = (0.0, 0.0, 0.0)  # from the anchor, metres
    direction: Vec = (0.4, 1.0, -0.1)  # where the fingers point
    motion: str = "hold"  # hold | rub | tap | sweep | fiddle | free (see motion.hand_wave)
    freq: float = 0.0  # Hz
    amp: float = 0.0  # metres
    axis: Vec = (0.0, 1.0, 0.0)  # direction of rub / tap / sweep
    spread: float = 1.0  # finger fan, 1 = relaxed
    curl: float = 0.0  # 0 = straight fingers, 1 = fist
    elbow_out: float = 0.0  # how far the elbow swings out to the side
    reach: float = 1.0  # share of the way from where the hand is to the target that it travels


@dataclass(frozen=True)
class BodyMove:
    """A displacement of one body channel (see `body.BODY_CHANNELS`) over the gesture.

    `{own}` / `{other}` in the channel name become the acting side ("l"/"r") or its opposite.
    """

    channel: str
    amp: float
    motion: str = "hold"  # hold | cycle | sine | pulse (see motion.body_wave)
    freq: float = 0.0
    phase: float = 0.0


@dataclass(frozen=True)
class Program:
    name: str
    seconds: tuple[float, float]  # typical duration range at speed 1
    active: HandAction | None = None  # the acting hand (usually the dominant one)
    passive: HandAction | None = None  # what the other hand does meanwhile (None: it idles)
    both: bool = False  # both hands do `active`, each on its own side
    antiphase: bool = False  # with `both`: the second hand's oscillation is shifted by half a period
    body: tuple[BodyMove, ...] = ()


def _shoulders(amp: float, motion: str = "hold", freq: float = 0.0) -> tuple[BodyMove, ...]:
    return (BodyMove("raise_l", amp, motion, freq), BodyMove("raise_r", amp, motion, freq))


_FACE_UP = (0.35, 1.0, -0.15)  # fingers up toward the face, from in front of the chest
_UP, _FORWARD, _ACROSS = (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 0.0, 0.0)

TURTLE_NECK = Program("turtle neck", (1.2, 3.0), body=_shoulders(0.05) + (BodyMove("shrink", 0.035), BodyMove("pitch", -0.12)))
DEEP_BREATH = Program(
    "deep breath", (2.2, 3.6),
    body=_shoulders(0.03, "cycle")
    + (BodyMove("trunk_rise", 0.03, "cycle"), BodyMove("lean_z", -0.03, "cycle"), BodyMove("pitch", 0.08, "cycle")),
)
TOUCH_HAT = Program(
    "touch hat", (1.0, 2.0),
    HandAction("top", (0.0, 0.03, 0.0), (0.9, 0.5, 0.0), motion="tap", freq=1.5, amp=0.02, axis=_UP),
)
SCRATCH_HEAD = Program(
    "touch face (scratch head)", (1.2, 2.8),
    HandAction("temple", (-0.02, 0.0, 0.01), (0.3, 1.0, 0.0), motion="rub", freq=3.5, amp=0.02, axis=_UP, curl=0.5),
)
TOUCH_FOREHEAD = Program("touch forehead", (1.2, 2.6), HandAction("forehead", (0.0, 0.0, 0.03), (0.9, 0.5, -0.1), spread=1.2))
COVER_FACE = Program(
    "cover face", (1.4, 3.0), HandAction("nose", (-0.035, 0.0, 0.03), (0.15, 1.0, -0.1), spread=0.7), both=True,
)
RUB_EYES = Program(
    "rub eyes", (1.2, 2.6),
    HandAction("eyes", (0.0, 0.0, 0.025), (0.3, 1.0, -0.2), motion="rub", freq=2.2, amp=0.015, axis=_ACROSS, curl=0.5),
)
TOUCH_FACE_PART = Program(
    "touch other face part", (0.8, 1.8),
    HandAction("cheek", (0.0, 0.0, 0.025), _FACE_UP, motion="tap", freq=1.2, amp=0.012, axis=_FORWARD, spread=0.8),
)
TOUCH_EARS = Program(
    "touch ears", (1.0, 2.2),
    HandAction("ear", (-0.01, 0.0, 0.02), (0.1, 1.0, 0.0), motion="rub", freq=1.5, amp=0.01, curl=0.3),
)
BITE_NAILS = Program(
    "bite nails", (1.4, 3.2),
    HandAction("mouth", (0.0, -0.01, 0.03), (0.5, 1.0, -0.3), motion="fiddle", freq=5.0, amp=0.006, curl=0.8),
)
TOUCH_CHIN = Program("touch chin", (1.4, 3.4), HandAction("chin", (0.0, -0.02, 0.02), (0.2, 1.0, -0.1), curl=0.6))
TOUCH_NECK = Program(
    "touch neck", (1.2, 2.6), HandAction("neck_side", direction=(0.6, 1.0, -0.2), motion="rub", freq=1.6, amp=0.02),
)
PLAY_HAIR = Program(
    "play hair", (1.6, 3.4),
    HandAction("hair", direction=(0.5, 1.0, -0.3), motion="sweep", freq=0.7, amp=0.05, axis=(0.0, 0.3, 1.0), spread=1.3),
)
ADJUST_TIE = Program(
    "adjust tie", (1.2, 2.6),
    HandAction("tie", (0.02, 0.0, 0.02), (1.0, 0.6, 0.0), motion="sweep", freq=1.0, amp=0.025, axis=(0.0, 1.0, 0.3), curl=0.6),
    both=True,
)
TOUCH_CHEST = Program(
    "touch chest", (1.0, 2.4),
    HandAction("chest", (0.03, 0.0, 0.02), (1.0, 0.3, -0.1), motion="tap", freq=1.0, amp=0.015, axis=_FORWARD),
)
SCRATCH_BACK = Program(
    "scratch back", (1.4, 3.0),
    HandAction("nape", direction=(0.5, 0.8, -0.5), motion="rub", freq=3.0, amp=0.02, axis=_ACROSS, curl=0.4, elbow_out=0.8),
)
FOLD_ARM = Program("fold arm", (1.8, 3.6), HandAction("arm_other", direction=(0.2, 0.3, -0.6), spread=0.6), both=True)
TIDY_SLEEVE = Program(
    "tidy sleeve", (1.2, 2.8),
    HandAction("wrist_other", (0.0, 0.02, 0.02), (1.0, 0.0, 0.1), motion="sweep", freq=1.2, amp=0.03, axis=_ACROSS, curl=0.5),
    passive=HandAction("belly", (-0.1, 0.02, 0.02), (1.0, 0.1, 0.3)),  # the other forearm held out in front
)
PUT_ARM_BACK = Program("put arm back", (1.8, 3.6), HandAction("back", direction=(1.0, -0.2, 0.0), elbow_out=0.6), both=True)
MOVE_TORSO = Program(
    "move torso", (1.4, 3.0),
    body=(BodyMove("lean_x", 0.06, "sine", 0.5), BodyMove("lean_z", 0.04, "cycle"), BodyMove("root_x", 0.02, "cycle")),
)
SIT_STRAIGHT = Program(
    "sit straight", (1.2, 2.6),
    body=(BodyMove("trunk_rise", 0.04), BodyMove("root_y", 0.025), BodyMove("lean_z", -0.05), BodyMove("pitch", 0.05)),
)
SCRATCH_ARM = Program(
    "scratch arm", (1.2, 2.8),
    HandAction("forearm_other", (0.0, 0.03, 0.02), (1.0, 0.0, 0.2), motion="rub", freq=3.2, amp=0.02, axis=_FORWARD, curl=0.5),
)
RUB_HAND = Program(
    "rub hand", (1.4, 3.0),
    HandAction("belly", (-0.02, 0.02, 0.0), (1.0, 0.2, 0.3), motion="rub", freq=2.0, amp=0.03, axis=_FORWARD),
    both=True, antiphase=True,
)
CROSS_FINGER = Program(
    "cross finger", (1.6, 3.4), HandAction("belly", (-0.03, 0.03, 0.02), (1.0, 0.3, 0.1), spread=1.4, curl=0.3), both=True,
)
MINARET_HAND = Program(
    "minaret hand", (1.6, 3.4), HandAction("steeple", (-0.05, 0.0, 0.0), (0.35, 1.0, 0.1), spread=1.1), both=True,
)
PLAY_THINGS = Program(
    "play things", (1.4, 3.4),
    HandAction("belly", (-0.05, 0.0, 0.02), (1.0, -0.2, 0.4), motion="fiddle", freq=3.0, amp=0.02, curl=0.5), both=True,
)
WITHDRAW_ARMS = Program(
    "withdraw arms", (1.4, 3.0), HandAction("lap_inner", direction=(0.6, -0.6, 0.4)), both=True,
    body=_shoulders(0.015) + (BodyMove("lean_z", -0.02),),
)
HEAD_UP = Program("head up", (1.0, 2.4), body=(BodyMove("pitch", 0.4), BodyMove("lean_z", -0.015)))
BITE_LIP = Program(
    "bite lip", (1.0, 2.6), body=(BodyMove("pitch", -0.1), BodyMove("lip", 1.0), BodyMove("yaw", 0.05, "sine", 0.6)),
)
ARM_AKIMBO = Program(
    "arm akimbo", (1.8, 3.6), HandAction("waist", direction=(0.7, -0.5, 0.4), spread=0.8, elbow_out=1.0), both=True,
)
SHAKE_SHOULDER = Program(
    "shake shoulder", (1.2, 2.6),
    body=(
        BodyMove("raise_l", 0.035, "pulse", 2.0), BodyMove("raise_r", 0.035, "pulse", 2.0, math.pi),
        BodyMove("lean_x", 0.01, "sine", 2.0),
    ),
)
ILLUSTRATIVE = Program(
    "illustrative", (1.4, 3.6), HandAction("gesture_space", motion="free", freq=1.0, amp=ILLUSTRATIVE_AMP, spread=1.2,
                                    reach=ILLUSTRATIVE_REACH), both=True,
)

IMIGUE_PROGRAMS: tuple[Program, ...] = (
    TURTLE_NECK, DEEP_BREATH, TOUCH_HAT, SCRATCH_HEAD, TOUCH_FOREHEAD, COVER_FACE, RUB_EYES, TOUCH_FACE_PART,
    TOUCH_EARS, BITE_NAILS, TOUCH_CHIN, TOUCH_NECK, PLAY_HAIR, ADJUST_TIE, TOUCH_CHEST, SCRATCH_BACK,
    FOLD_ARM, TIDY_SLEEVE, PUT_ARM_BACK, MOVE_TORSO, SIT_STRAIGHT, SCRATCH_ARM, RUB_HAND, CROSS_FINGER,
    MINARET_HAND, PLAY_THINGS, WITHDRAW_ARMS, HEAD_UP, BITE_LIP, ARM_AKIMBO, SHAKE_SHOULDER, ILLUSTRATIVE,
)

SMG_PROGRAMS: tuple[Program, ...] = (
    replace(TURTLE_NECK, name="turtling neck and shoulder"),
    Program(
        "rubbing eyes and forehead", (1.2, 2.6),
        HandAction("eyes", (0.0, 0.02, 0.025), (0.6, 1.0, -0.2), motion="sweep", freq=1.5, amp=0.03, axis=_UP, curl=0.3),
    ),
    replace(FOLD_ARM, name="folding arms"),
    Program(
        "touching or covering suprasternal notch", (1.0, 2.4),
        HandAction("notch", (0.02, 0.0, 0.02), (0.8, 0.6, -0.1), spread=0.8),
    ),
    Program(
        "moving legs", (1.2, 2.8), body=(BodyMove("knee_{own}", 0.07, "pulse", 1.2), BodyMove("lean_x", 0.015, "sine", 0.6)),
    ),
    replace(TOUCH_NECK, name="touching or scratching neck"),
    replace(PUT_ARM_BACK, name="folding arms behind body"),
    Program(
        "rubbing hands and crossing fingers", (1.4, 3.0),
        HandAction("belly", (-0.02, 0.02, 0.0), (1.0, 0.2, 0.3), motion="rub", freq=1.6, amp=0.025, axis=_FORWARD, spread=1.3),
        both=True, antiphase=True,
    ),
    replace(ARM_AKIMBO, name="arms akimbo"),
    Program("crossing legs", (1.6, 3.4), body=(BodyMove("cross_{own}", 1.0), BodyMove("root_x", 0.02))),
    Program(
        "scratching some part of body", (1.0, 2.4),
        HandAction(
            ("arm_other", "chest", "thigh", "belly"), (0.0, 0.0, 0.02), (1.0, 0.2, 0.0),
            motion="rub", freq=3.5, amp=0.02, axis=_UP, curl=0.5,
        ),
    ),
    Program(
        "scratching or touching facial parts other than eyes", (0.8, 2.0),
        HandAction(("cheek", "nose", "chin", "mouth"), (0.0, 0.0, 0.025), _FACE_UP, motion="rub", freq=2.5, amp=0.01, curl=0.4),
    ),
    replace(PLAY_HAIR, name="playing or adjusting hair"),
    Program("holding arms", (1.6, 3.4), HandAction("arm_other", (0.0, 0.0, 0.02), (0.3, 0.2, -0.6), spread=0.7, curl=0.4)),
    Program(
        "pulling shirt collar", (1.0, 2.2),
        HandAction("collar", direction=(0.4, 1.0, 0.1), motion="sweep", freq=1.0, amp=0.03, axis=_FORWARD, curl=0.7),
    ),
    Program(
        "playing with jewelry or manipulating objects", (1.4, 3.4),
        HandAction("belly", (-0.04, 0.03, 0.03), (1.0, 0.0, 0.4), motion="fiddle", freq=3.0, amp=0.015, curl=0.5), both=True,
    ),
    replace(ILLUSTRATIVE, name="illustrative hand gestures"),
)

# Class names in the order of the programs; they match the readers' CLASS_NAMES (tested).
IMIGUE_CLASS_NAMES = tuple(program.name for program in IMIGUE_PROGRAMS)
SMG_CLASS_NAMES = tuple(program.name for program in SMG_PROGRAMS)
