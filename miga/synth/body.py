"""An articulated 3-D body (frontal, seated or standing) driven by per-frame control channels.

Body frame, metres: x toward the person's anatomical left, y up, z forward (toward the camera);
the origin is the mid-hip at rest. Every function works on whole sequences: a channel is a
`(T,)` array, a point a `(T, 3)` array.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

SIDES = ("l", "r")
SIGN = {"l": 1.0, "r": -1.0}  # x sign of each anatomical side
OTHER = {"l": "r", "r": "l"}
UPPER = {"l": "L", "r": "R"}

BODY_CHANNELS = (
    "root_x", "root_y", "lean_x", "lean_z", "trunk_rise", "raise_l", "raise_r", "shrink",
    "pitch", "yaw", "roll", "lip", "knee_l", "knee_r", "cross_l", "cross_r",
)

# Segment lengths at scale 1 (an adult of about 1.75 m).
TRUNK = 0.50  # mid-hip to neck (OpenPose "Neck", between the shoulders)
SHOULDER_HALF = 0.18
HIP_HALF = 0.10
NECK = 0.07  # neck to the head's pivot
HEAD_CENTRE = 0.12  # pivot to the centre of the head
HEAD_RADIUS = 0.10
UPPER_ARM = 0.29
FOREARM = 0.25
HAND_REACH = 0.17  # wrist to where the fingertips touch
THIGH = 0.44
SHIN = 0.43

# Points of the head in its own frame (x left, y up, z where the face looks), at scale 1.
HEAD_POINTS = {
    "Nose": (0.0, -0.01, 0.105), "LEye": (0.035, 0.025, 0.085), "REye": (-0.035, 0.025, 0.085),
    "LEar": (0.085, 0.0, 0.0), "REar": (-0.085, 0.0, 0.0), "Mouth": (0.0, -0.05, 0.09),
    "FaceCentre": (0.0, -0.012, 0.03), "HairCentre": (0.0, 0.025, -0.02),
}
# Fingertips: (name, length from the wrist, fan angle in rad at spread 1, how much curl shortens it).
FINGERS = (("Thumb", 0.12, 0.95, 0.25), ("Index", 0.175, 0.28, 0.45), ("Middle", 0.185, 0.06, 0.45),
           ("Ring", 0.175, -0.14, 0.45), ("Pinky", 0.15, -0.34, 0.45))

# Anchors: points a hand can visit, as (reference, (own-lateral, up, forward) offset at scale 1).
# References: "head" (offset turns with the head), "neck", "mid" (mid-hip), "hip" / "shoulder"
# (of the hand's own side), "other_shoulder", "other_hand"; a pair gives (seated, standing).
ANCHORS: dict[str, tuple[str, tuple[float, float, float]] | tuple[tuple, tuple]] = {
    "top": ("head", (0.0, 0.11, 0.0)),
    "hair": ("head", (0.07, 0.07, -0.02)),
    "temple": ("head", (0.075, 0.04, 0.03)),
    "forehead": ("head", (0.0, 0.065, 0.09)),
    "eyes": ("head", (0.025, 0.025, 0.09)),
    "nose": ("head", (0.0, -0.01, 0.11)),
    "cheek": ("head", (0.055, -0.03, 0.08)),
    "mouth": ("head", (0.0, -0.05, 0.095)),
    "chin": ("head", (0.0, -0.09, 0.07)),
    "ear": ("head", (0.09, 0.0, 0.0)),
    "nape": ("neck", (0.03, 0.05, -0.09)),
    "neck_side": ("neck", (0.045, 0.05, 0.04)),
    "notch": ("neck", (0.0, -0.01, 0.07)),
    "collar": ("neck", (0.07, -0.02, 0.07)),
    "tie": ("neck", (0.0, -0.07, 0.09)),
    "chest": ("neck", (0.04, -0.16, 0.11)),
    "belly": (("mid", (0.0, 0.17, 0.30)), ("mid", (0.0, 0.17, 0.22))),
    "steeple": (("mid", (0.0, 0.30, 0.30)), ("mid", (0.0, 0.30, 0.25))),
    "gesture_space": (("mid", (0.14, 0.30, 0.30)), ("mid", (0.16, 0.30, 0.25))),
    "lap_inner": (("mid", (0.05, 0.0, 0.18)), ("mid", (0.05, -0.05, 0.12))),
    "thigh": (("mid", (0.1, 0.04, 0.28)), ("mid", (0.11, -0.18, 0.09))),
    "waist": ("hip", (0.09, 0.08, 0.0)),
    "back": ("mid", (0.1, 0.2, -0.16)),
    "arm_other": ("other_shoulder", (0.01, -0.15, 0.09)),
    "wrist_other": ("other_hand", (0.0, 0.0, -0.02)),
    "forearm_other": ("other_hand", (0.0, 0.0, -0.11)),  # along the other hand's pointing direction
}

# Rest postures: (reference, (own-lateral, up, forward) contact point, (medial, up, forward) fingers).
REST_POSTURES = {
    "lap": ("mid", (0.12, 0.05, 0.34), (0.35, -0.2, 1.0)),
    "clasped": ("mid", (0.02, 0.09, 0.30), (1.0, -0.1, 0.5)),
    "armrest": ("mid", (0.25, 0.14, 0.22), (0.1, -0.1, 1.0)),
    "sides": ("shoulder", (0.05, -0.60, 0.03), (0.1, -1.0, 0.05)),
    "front": ("mid", (0.02, 0.0, 0.16), (1.0, -0.4, 0.2)),
}
SEATED_RESTS = ("lap", "clasped", "armrest")
STANDING_RESTS = ("sides", "front")


@dataclass(frozen=True)
class Subject:
    """One person: body, habits and looks, fixed across all of their videos."""

    id: int
    scale: float  # body size
    shoulder_width: float  # relative shoulder breadth
    seated: bool
    dominant: str  # "l" | "r": the hand that does one-hand gestures (mostly)
    speed: float  # > 1: faster gestures
    rest: str  # rest posture, a key of REST_POSTURES
    head_pitch: float  # habitual head tilt, rad
    noise_px: float  # tracking noise at 320 px width
    drop_rate: float  # chance a joint is lost in a frame
    colours: Mapping[str, tuple[int, int, int]] = field(default_factory=dict)


def to_body_frame(vec, side: str) -> np.ndarray:
    """(medial, up, forward) -> (x, y, z) for a hand on `side`."""
    out = np.array(vec, dtype=np.float64)
    out[..., 0] *= -SIGN[side]
    return out


def own_to_body_frame(vec, side: str) -> np.ndarray:
    """(own-lateral, up, forward) -> (x, y, z): own-lateral points away from the midline on `side`."""
    out = np.array(vec, dtype=np.float64)
    out[..., 0] *= SIGN[side]
    return out


def normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def head_rotation(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(T, 3, 3) = Ry(yaw) Rx(pitch) Rz(roll); +pitch looks up, +yaw turns toward the person's left."""
    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    zero, one = np.zeros_like(pitch), np.ones_like(pitch)
    rx = np.stack([one, zero, zero, zero, cp, sp, zero, -sp, cp], -1).reshape(-1, 3, 3)
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(-1, 3, 3)
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(-1, 3, 3)
    return ry @ rx @ rz


def trunk(subject: Subject, ch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Trunk, shoulders, hips and head points (plus 'HeadRot', (T, 3, 3)) from the body channels."""
    k = subject.scale
    zero = np.zeros_like(ch["root_x"])
    mid = np.stack([ch["root_x"], ch["root_y"], zero], -1)
    neck = mid + np.stack([ch["lean_x"], k * TRUNK + ch["trunk_rise"], ch["lean_z"]], -1)
    up = normalize(neck - mid)
    lateral = normalize(np.stack([up[:, 1], -up[:, 0], zero], -1))
    out = {"MidHip": mid, "Neck": neck}
    for side in SIDES:
        lift = np.stack([zero, ch[f"raise_{side}"] - 0.02 * k, zero - 0.01], -1)
        out[f"{UPPER[side]}Shoulder"] = neck + SIGN[side] * k * SHOULDER_HALF * subject.shoulder_width * lateral + lift
        out[f"{UPPER[side]}Hip"] = mid + np.array([SIGN[side] * k * HIP_HALF, 0.0, 0.0])
    pivot = neck + k * NECK * up - np.stack([zero, ch["shrink"], zero], -1)
    rotation = head_rotation(ch["pitch"], ch["yaw"], ch["roll"])
    out["HeadPivot"] = pivot
    out["HeadRot"] = rotation
    out["HeadCentre"] = pivot + rotation @ np.array([0.0, k * HEAD_CENTRE, 0.01])
    for name, local in HEAD_POINTS.items():
        out[name] = out["HeadCentre"] + rotation @ (k * np.array(local))
    return out


def resolve_reference(points: Mapping, hands: Mapping, reference: str, side: str, span: slice, scale: float) -> np.ndarray:
    """The (n, 3) point an anchor or rest posture of the hand on `side` is relative to, over `span`."""
    own, other = UPPER[side], UPPER[OTHER[side]]
    if reference == "head":
        return points["HeadCentre"][span]
    if reference == "other_hand":  # its wrist
        hand = hands[OTHER[side]]
        return hand.contact[span] - scale * HAND_REACH * hand.direction[span]
    names = {"neck": "Neck", "mid": "MidHip", "hip": f"{own}Hip", "shoulder": f"{own}Shoulder"}
    names["other_shoulder"] = f"{other}Shoulder"
    return points[names[reference]][span]


def anchor_point(name: str, side: str, points: Mapping[str, np.ndarray], hands: Mapping, span: slice, subject: Subject):
    """Where anchor `name` is, for the hand on `side`, over the frames of `span`: (n, 3)."""
    spec = ANCHORS[name]
    if isinstance(spec[0], tuple):
        spec = spec[0] if subject.seated else spec[1]
    reference, offset = spec
    base = resolve_reference(points, hands, reference, side, span, subject.scale)
    if reference == "head":
        return base + points["HeadRot"][span] @ own_to_body_frame(offset, side) * subject.scale
    if reference == "other_hand":
        # Offsets run along the other hand's pointing direction (toward its forearm when negative).
        return base + hands[OTHER[side]].direction[span] * offset[2] * subject.scale
    if reference == "other_shoulder":
        return base + own_to_body_frame(offset, OTHER[side]) * subject.scale
    return base + own_to_body_frame(offset, side) * subject.scale


@dataclass
class HandTrack:
    """What one hand does over the whole sequence: where the fingertips touch and how the hand is held."""

    contact: np.ndarray  # (T, 3)
    direction: np.ndarray  # (T, 3) unit, where the fingers point
    spread: np.ndarray  # (T,)
    curl: np.ndarray  # (T,)
    elbow_out: np.ndarray  # (T,)

    def blend(self, span: slice, weight: np.ndarray, contact, direction, spread, curl, elbow_out) -> None:
        """Move the hand toward a target over `span` by `weight` (0 = keep, 1 = target)."""
        w = weight[:, None]
        self.contact[span] += w * (contact - self.contact[span])
        self.direction[span] = normalize(self.direction[span] + w * (direction - self.direction[span]))
        for name, value in (("spread", spread), ("curl", curl), ("elbow_out", elbow_out)):
            track = getattr(self, name)
            track[span] += weight * (value - track[span])


def rest_hand(subject: Subject, points: Mapping[str, np.ndarray], side: str) -> HandTrack:
    """The hand held in the person's rest posture for the whole sequence."""
    reference, contact, direction = REST_POSTURES[subject.rest]
    span = slice(None)
    base = resolve_reference(points, {}, reference, side, span, subject.scale)
    n = len(base)
    return HandTrack(
        contact=base + own_to_body_frame(contact, side) * subject.scale,
        direction=np.repeat(normalize(to_body_frame(direction, side))[None], n, 0),
        spread=np.full(n, 0.8), curl=np.full(n, 0.3), elbow_out=np.zeros(n),
    )


def arm(shoulder: np.ndarray, hand: HandTrack, side: str, k: float) -> dict[str, np.ndarray]:
    """Two-link IK from the shoulder toward the wrist the hand needs, then the fingertips fanned around it."""
    l1, l2 = k * UPPER_ARM, k * FOREARM
    reach = hand.contact - k * HAND_REACH * hand.direction - shoulder
    dist = np.linalg.norm(reach, axis=-1, keepdims=True)
    axis = reach / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(l1 - l2) + 1e-3, 0.999 * (l1 + l2))
    out = hand.elbow_out[:, None]
    pole = np.concatenate([SIGN[side] * (0.35 + 1.2 * out), -np.ones_like(out), -0.2 - 0.3 * out], -1)
    pole = normalize(pole - np.sum(pole * axis, -1, keepdims=True) * axis)
    along = (l1**2 - l2**2 + dist**2) / (2 * dist)
    height = np.sqrt(np.maximum(l1**2 - along**2, 0.0))
    wrist = shoulder + dist * axis
    joints = {f"{UPPER[side]}Elbow": shoulder + along * axis + height * pole, f"{UPPER[side]}Wrist": wrist}
    joints.update(fingertips(wrist, hand, side, k))
    return joints


def fingertips(wrist: np.ndarray, hand: HandTrack, side: str, k: float) -> dict[str, np.ndarray]:
    """The five fingertips fanned around the pointing direction, shorter when curled, and the palm's centre."""
    d = hand.direction
    across = np.cross(d, np.array([0.0, 0.0, 1.0]))
    weak = np.linalg.norm(across, axis=-1, keepdims=True) < 0.2  # fingers pointing at the camera
    across = normalize(np.where(weak, np.cross(d, np.array([0.0, 1.0, 0.0])), across))
    thumb_side = SIGN[side]  # the thumb lies toward +across for the left hand, -across for the right
    out = {}
    for name, length, angle, curl_effect in FINGERS:
        a = (angle * hand.spread)[:, None]
        size = (k * length * (1.0 - curl_effect * hand.curl))[:, None]
        out[f"{UPPER[side]}{name}Tip"] = wrist + size * (np.cos(a) * d + np.sin(a) * thumb_side * across)
    out[f"{UPPER[side]}HandCentre"] = wrist + 0.08 * k * d
    return out


def legs(subject: Subject, points: Mapping[str, np.ndarray], ch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Knees, ankles and feet; `knee_*` lifts a knee forward (metres), `cross_*` (0..1) crosses that leg over."""
    k = subject.scale
    out = {}
    for side in SIDES:
        s, own = SIGN[side], UPPER[side]
        hip = points[f"{own}Hip"]
        lift, cross = ch[f"knee_{side}"][:, None], ch[f"cross_{side}"][:, None]
        if subject.seated:
            knee = hip + k * np.array([s * 0.03, -0.04, THIGH - 0.02])
            ankle = knee + k * np.array([0.0, -SHIN, 0.03])
        else:
            knee = hip + k * np.array([s * 0.005, -THIGH, 0.02])
            ankle = knee + k * np.array([0.0, -SHIN, -0.02])
        knee = knee + np.concatenate([-s * 0.08 * k * cross, 0.2 * lift + 0.05 * k * cross, lift + 0.03 * k * cross], -1)
        ankle = ankle + np.concatenate([-s * 0.22 * k * cross, 0.5 * lift, 0.2 * lift], -1)
        out[f"{own}Knee"], out[f"{own}Ankle"] = knee, ankle
        out[f"{own}BigToe"] = ankle + k * np.array([-s * 0.03, -0.06, 0.14])
        out[f"{own}SmallToe"] = ankle + k * np.array([s * 0.04, -0.06, 0.11])
        out[f"{own}Heel"] = ankle + k * np.array([0.0, -0.07, -0.04])
    return out


@dataclass(frozen=True)
class Body:
    """A posed sequence: every named point (T, 3) in the body frame, plus render-only channels."""

    joints: dict[str, np.ndarray]
    lip: np.ndarray  # (T,) 0..1, how much the lips are pressed in
    scale: float

    @property
    def num_frames(self) -> int:
        return len(self.lip)


def pose(subject: Subject, ch: Mapping[str, np.ndarray], points: Mapping[str, np.ndarray], hands: Mapping[str, HandTrack]):
    """The whole body from its channels, the trunk points made from them (`trunk`) and the hands."""
    joints = {name: value for name, value in points.items() if name != "HeadRot"}
    for side in SIDES:
        joints.update(arm(joints[f"{UPPER[side]}Shoulder"], hands[side], side, subject.scale))
    joints.update(legs(subject, joints, ch))
    return Body(joints, np.clip(ch["lip"], 0.0, 1.0), subject.scale)
