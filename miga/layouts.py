"""Joint layouts: names, limbs and left/right flip pairs, defined once for the whole package.

A layout is identified by name in every keypoints file (docs/design.md section 2). Left/right are
the person's anatomical sides, except where a layout says otherwise.

`openpose137` follows OpenPose's JSON order: BODY_25 (0-24), face 70 (25-94), left hand 21
(95-115), right hand 21 (116-136). Evidence (issue 26): (1) OpenPose's `--write_json` files hold
`pose_keypoints_2d`, `face_keypoints_2d`, `hand_left_keypoints_2d`, `hand_right_keypoints_2d` in
that order; (2) a participant's reader of the real iMiGUE `{vid}_openpose.xlsx` takes mouth points
at groups 73-82 (= 25 + face 48-57, the outer lip) and fingertips at 99-115 and 120-136 (= 95 + 4k
and 116 + 4k), which fits that order and not BODY_25, hands, face (what this module assumed
before); (3) on the real OpenPose JSON of iMiGUE video 298 (2,089 one-person frames, every 10th),
the left hand's root (point 95) lies 57 px from LWrist and 226 px from RWrist (right hand: 37 px from RWrist,
225 px from LWrist), face points 36-41 and 68 average within 5 px of BODY_25's REye, 42-47 and
69 of LEye, and LShoulder is on the image's right of RShoulder (x 824 vs 428): face points 0-16,
17-21, 36-41 and 68 are the person's right side, as named below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layout:
    name: str
    joints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def flip_index(self) -> np.ndarray:
        """Permutation that swaps every Left*/Right* joint pair (identity for centre joints)."""
        index = {name: i for i, name in enumerate(self.joints)}
        perm = np.arange(self.num_joints)
        for i, name in enumerate(self.joints):
            for a, b in (("L", "R"), ("R", "L")):
                if name.startswith(a) and name[1:2].isupper():
                    twin = b + name[1:]
                    if twin in index:
                        perm[i] = index[twin]
        return perm

    def index(self, name: str) -> int:
        return self.joints.index(name)


def _limbs(joints: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    return tuple((joints.index(a), joints.index(b)) for a, b in pairs)


# OpenPose BODY_25 order.
_BODY25 = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
    "MidHip", "RHip", "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye",
    "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
)
_FINGERS = ("Thumb", "Index", "Middle", "Ring", "Pinky")
_HAND_TIPS = tuple(f"L{f}Tip" for f in _FINGERS) + tuple(f"R{f}Tip" for f in _FINGERS)

_BODY25_LIMBS = [
    ("Neck", "Nose"), ("Nose", "REye"), ("REye", "REar"), ("Nose", "LEye"), ("LEye", "LEar"),
    ("Neck", "RShoulder"), ("RShoulder", "RElbow"), ("RElbow", "RWrist"),
    ("Neck", "LShoulder"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"),
    ("Neck", "MidHip"), ("MidHip", "RHip"), ("RHip", "RKnee"), ("RKnee", "RAnkle"),
    ("MidHip", "LHip"), ("LHip", "LKnee"), ("LKnee", "LAnkle"),
    ("LAnkle", "LBigToe"), ("LBigToe", "LSmallToe"), ("LAnkle", "LHeel"),
    ("RAnkle", "RBigToe"), ("RBigToe", "RSmallToe"), ("RAnkle", "RHeel"),
]
_TIP_LIMBS = [(f"{s}Wrist", f"{s}{f}Tip") for s in "LR" for f in _FINGERS]

OPENPOSE25_HANDS10 = Layout(
    "openpose25_hands10", _BODY25 + _HAND_TIPS, _limbs(_BODY25 + _HAND_TIPS, _BODY25_LIMBS + _TIP_LIMBS)
)

# OpenPose's 137 points in the order of its JSON output (iMiGUE `_openpose.xlsx`, OpenPose `--write_json`):
# BODY_25 (0-24), face 70 (25-94), left hand 21 (95-115), right hand 21 (116-136). See the module docstring.
_HAND21 = ("HandRoot",) + tuple(f"{f}{p}" for f in _FINGERS for p in (("CMC", "MCP", "IP", "Tip") if f == "Thumb" else ("MCP", "PIP", "DIP", "Tip")))
_HANDS42 = tuple(f"L{p}" for p in _HAND21) + tuple(f"R{p}" for p in _HAND21)
# OpenPose's face: the 68 iBUG points + the two pupils, named by the person's side (point 0, the jaw's end on
# the image's left for a person facing the camera, is the right jaw) so that `flip_index` mirrors the face too.
_FACE70 = (
    *(f"RJaw{i}" for i in range(8)), "Chin", *(f"LJaw{i}" for i in range(7, -1, -1)),          # 0-16
    *(f"RBrow{i}" for i in range(5)), *(f"LBrow{i}" for i in range(4, -1, -1)),              # 17-26 (outer -> inner -> outer)
    *(f"NoseBridge{i}" for i in range(4)),                                                  # 27-30
    "RNostril1", "RNostril0", "NoseBase", "LNostril0", "LNostril1",                         # 31-35
    *(f"REyeRim{i}" for i in range(6)),                                                      # 36-41 (outer corner first)
    "LEyeRim3", "LEyeRim2", "LEyeRim1", "LEyeRim0", "LEyeRim5", "LEyeRim4",                 # 42-47 (inner corner first)
    "RMouth0", "RMouth1", "RMouth2", "UpperLipTop", "LMouth2", "LMouth1", "LMouth0",         # 48-54 (outer lip, corner to corner)
    "LMouth3", "LMouth4", "LowerLipBottom", "RMouth4", "RMouth3",                           # 55-59
    "RLipIn0", "RLipIn1", "UpperLipIn", "LLipIn1", "LLipIn0", "LLipIn2", "LowerLipIn", "RLipIn2",  # 60-67 (inner lip)
    "RPupil", "LPupil",                                                                      # 68-69
)
_HAND21_LIMBS = [("HandRoot", f"{f}{'CMC' if f == 'Thumb' else 'MCP'}") for f in _FINGERS] + [
    (f"{f}{a}", f"{f}{b}") for f in _FINGERS
    for a, b in (zip(("CMC", "MCP", "IP"), ("MCP", "IP", "Tip")) if f == "Thumb" else zip(("MCP", "PIP", "DIP"), ("PIP", "DIP", "Tip")))
]
_OPENPOSE137 = _BODY25 + _FACE70 + _HANDS42
OPENPOSE137 = Layout(
    "openpose137", _OPENPOSE137,
    _limbs(_OPENPOSE137, _BODY25_LIMBS + [(f"{s}{a}", f"{s}{b}") for s in "LR" for a, b in _HAND21_LIMBS]
           + [(f"{s}Wrist", f"{s}HandRoot") for s in "LR"]),
)

# BODY_25 and the 21 points of each hand (openpose137 without its face, points 0-24 and 95-136;
# MediaPipe Holistic's full hands): touching the face, scratching, biting nails are finger motions.
_OPENPOSE67 = _BODY25 + _HANDS42
OPENPOSE25_HANDS42 = Layout(
    "openpose25_hands42", _OPENPOSE67,
    _limbs(_OPENPOSE67, _BODY25_LIMBS + [(f"{s}{a}", f"{s}{b}") for s in "LR" for a, b in _HAND21_LIMBS]
           + [(f"{s}Wrist", f"{s}HandRoot") for s in "LR"]),
)

# MediaPipe Pose's upper body (landmarks 0-24, its order): the face points (eyes, ears, mouth
# corners) and its own hand points (pinky, index, thumb knuckles), which it predicts in every frame
# where it sees the person, unlike Holistic's hand landmarks (often lost on small, far people).
_MEDIAPIPE_UPPER25 = (
    "Nose", "LEyeInner", "LEye", "LEyeOuter", "REyeInner", "REye", "REyeOuter", "LEar", "REar", "LMouth", "RMouth",
    "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist", "LPinky", "RPinky", "LIndex", "RIndex",
    "LThumb", "RThumb", "LHip", "RHip",
)
_MEDIAPIPE_UPPER25_LIMBS = [
    ("Nose", "LEyeInner"), ("LEyeInner", "LEye"), ("LEye", "LEyeOuter"), ("LEyeOuter", "LEar"),
    ("Nose", "REyeInner"), ("REyeInner", "REye"), ("REye", "REyeOuter"), ("REyeOuter", "REar"),
    ("Nose", "LMouth"), ("Nose", "RMouth"), ("LMouth", "RMouth"),
    ("LShoulder", "Nose"), ("RShoulder", "Nose"), ("LShoulder", "RShoulder"),
    *[(f"{s}{a}", f"{s}{b}") for s in "LR" for a, b in (("Shoulder", "Elbow"), ("Elbow", "Wrist"), ("Wrist", "Pinky"),
                                                       ("Wrist", "Index"), ("Pinky", "Index"), ("Wrist", "Thumb"),
                                                       ("Shoulder", "Hip"))],
    ("LHip", "RHip"),
]
MEDIAPIPE_UPPER25 = Layout("mediapipe_upper25", _MEDIAPIPE_UPPER25, _limbs(_MEDIAPIPE_UPPER25, _MEDIAPIPE_UPPER25_LIMBS))
_MEDIAPIPE_UPPER67 = _MEDIAPIPE_UPPER25 + _HANDS42
MEDIAPIPE_UPPER67 = Layout(
    "mediapipe_upper67", _MEDIAPIPE_UPPER67,
    _limbs(_MEDIAPIPE_UPPER67, _MEDIAPIPE_UPPER25_LIMBS + [(f"{s}{a}", f"{s}{b}") for s in "LR" for a, b in _HAND21_LIMBS]
           + [(f"{s}Wrist", f"{s}HandRoot") for s in "LR"]),
)

# The iMiGUE 2023 preprocessed arrays: BODY_25 {0-7, 15-18} + the 10 fingertips.
_IMIGUE22 = tuple(_BODY25[i] for i in (0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18)) + _HAND_TIPS
IMIGUE22 = Layout(
    "imigue22",
    _IMIGUE22,
    _limbs(_IMIGUE22, [p for p in _BODY25_LIMBS + _TIP_LIMBS if p[0] in _IMIGUE22 and p[1] in _IMIGUE22]),
)

# Kinect v2 / NTU order. Left/right are Kinect's names (see docs/design.md: the colour image is mirrored).
_KINECT25 = (
    "SpineBase", "SpineMid", "Neck", "Head", "LShoulder", "LElbow", "LWrist", "LHand",
    "RShoulder", "RElbow", "RWrist", "RHand", "LHip", "LKnee", "LAnkle", "LFoot",
    "RHip", "RKnee", "RAnkle", "RFoot", "SpineShoulder", "LHandTip", "LThumb", "RHandTip", "RThumb",
)
KINECT25 = Layout(
    "kinect25",
    _KINECT25,
    _limbs(_KINECT25, [
        ("SpineBase", "SpineMid"), ("SpineMid", "SpineShoulder"), ("SpineShoulder", "Neck"), ("Neck", "Head"),
        ("SpineShoulder", "LShoulder"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"), ("LWrist", "LHand"),
        ("LHand", "LHandTip"), ("LWrist", "LThumb"),
        ("SpineShoulder", "RShoulder"), ("RShoulder", "RElbow"), ("RElbow", "RWrist"), ("RWrist", "RHand"),
        ("RHand", "RHandTip"), ("RWrist", "RThumb"),
        ("SpineBase", "LHip"), ("LHip", "LKnee"), ("LKnee", "LAnkle"), ("LAnkle", "LFoot"),
        ("SpineBase", "RHip"), ("RHip", "RKnee"), ("RKnee", "RAnkle"), ("RAnkle", "RFoot"),
    ]),
)

# Kinect v1 (UTKinect-Action3D and other 20-joint recordings).
_KINECT20 = (
    "SpineBase", "SpineMid", "SpineShoulder", "Head", "LShoulder", "LElbow", "LWrist", "LHand",
    "RShoulder", "RElbow", "RWrist", "RHand", "LHip", "LKnee", "LAnkle", "LFoot", "RHip", "RKnee", "RAnkle", "RFoot",
)
KINECT20 = Layout(
    "kinect20",
    _KINECT20,
    _limbs(_KINECT20, [
        ("SpineBase", "SpineMid"), ("SpineMid", "SpineShoulder"), ("SpineShoulder", "Head"),
        ("SpineShoulder", "LShoulder"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"), ("LWrist", "LHand"),
        ("SpineShoulder", "RShoulder"), ("RShoulder", "RElbow"), ("RElbow", "RWrist"), ("RWrist", "RHand"),
        ("SpineBase", "LHip"), ("LHip", "LKnee"), ("LKnee", "LAnkle"), ("LAnkle", "LFoot"),
        ("SpineBase", "RHip"), ("RHip", "RKnee"), ("RKnee", "RAnkle"), ("RAnkle", "RFoot"),
    ]),
)

_COCO17 = (
    "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
    "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle",
)
COCO17 = Layout(
    "coco17",
    _COCO17,
    _limbs(_COCO17, [
        ("Nose", "LEye"), ("Nose", "REye"), ("LEye", "LEar"), ("REye", "REar"),
        ("LShoulder", "RShoulder"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"),
        ("RShoulder", "RElbow"), ("RElbow", "RWrist"), ("LShoulder", "LHip"), ("RShoulder", "RHip"),
        ("LHip", "RHip"), ("LHip", "LKnee"), ("LKnee", "LAnkle"), ("RHip", "RKnee"), ("RKnee", "RAnkle"),
    ]),
)

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (OPENPOSE25_HANDS10, OPENPOSE25_HANDS42, MEDIAPIPE_UPPER25, MEDIAPIPE_UPPER67, OPENPOSE137, IMIGUE22, KINECT25, KINECT20, COCO17)}

# Joints of a source layout that stand for each joint of a target layout (same anatomical point).
_SAME_POINT = {
    ("openpose25_hands10", "coco17"): {n: n for n in _COCO17},
    ("openpose25_hands10", "imigue22"): {n: n for n in _IMIGUE22},
    ("openpose137", "openpose25_hands10"): {n: n for n in _BODY25 + _HAND_TIPS},
    ("openpose137", "imigue22"): {n: n for n in _IMIGUE22},
    ("openpose137", "openpose25_hands42"): {n: n for n in _OPENPOSE67},
    ("openpose25_hands42", "openpose25_hands10"): {n: n for n in _BODY25 + _HAND_TIPS},
    ("openpose25_hands42", "imigue22"): {n: n for n in _IMIGUE22},
    ("openpose25_hands42", "coco17"): {n: n for n in _COCO17},
    ("mediapipe_upper67", "mediapipe_upper25"): {n: n for n in _MEDIAPIPE_UPPER25},
    **{(mp, target): {n: n for n in names if n in _MEDIAPIPE_UPPER25} | {f"{s}{f}Tip": f"{s}{f}" for s in "LR" for f in ("Index", "Thumb", "Pinky")}
       for mp in ("mediapipe_upper25", "mediapipe_upper67") for target, names in (("imigue22", _IMIGUE22), ("openpose25_hands10", _BODY25))},
    **{(mp, "coco17"): {n: n for n in _COCO17 if n in _MEDIAPIPE_UPPER25} for mp in ("mediapipe_upper25", "mediapipe_upper67")},
    ("openpose137", "coco17"): {n: n for n in _COCO17},
    ("imigue22", "coco17"): {n: n for n in _COCO17 if n in _IMIGUE22},
    ("kinect25", "coco17"): {
        "Nose": "Head", "LShoulder": "LShoulder", "RShoulder": "RShoulder", "LElbow": "LElbow",
        "RElbow": "RElbow", "LWrist": "LWrist", "RWrist": "RWrist", "LHip": "LHip", "RHip": "RHip",
        "LKnee": "LKnee", "RKnee": "RKnee", "LAnkle": "LAnkle", "RAnkle": "RAnkle",
    },
}


# The reverse direction keeps the joints both layouts share; BODY_25's Neck and MidHip are
# midpoints that COCO lacks, rebuilt from the shoulders and hips.
_SAME_POINT[("coco17", "openpose25_hands10")] = {n: n for n in _COCO17}
_SAME_POINT[("coco17", "imigue22")] = {n: n for n in _COCO17 if n in _IMIGUE22}
_MIDPOINTS = {"Neck": ("LShoulder", "RShoulder"), "MidHip": ("LHip", "RHip")}

# Video poses (MediaPipe / OpenPose names) into Kinect v2's, for a detector trained on Kinect
# skeletons (`miga online VIDEO`). Approximations: OpenPose's Neck (between the shoulders) is
# Kinect's SpineShoulder, the nose stands for the head, the middle fingertip for the hand tip,
# the big toe for the foot; Kinect's Neck, SpineMid and hand centres are midpoints.
_SAME_POINT[("openpose25_hands10", "kinect25")] = {
    "SpineBase": "MidHip", "SpineShoulder": "Neck", "Head": "Nose",
    **{f"{s}{j}": f"{s}{j}" for s in "LR" for j in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle")},
    **{f"{s}HandTip": f"{s}MiddleTip" for s in "LR"}, **{f"{s}Thumb": f"{s}ThumbTip" for s in "LR"},
    **{f"{s}Foot": f"{s}BigToe" for s in "LR"},
}
_PAIR_MIDPOINTS = {
    ("openpose25_hands10", "kinect25"): {
        "Neck": ("Neck", "Nose"), "SpineMid": ("Neck", "MidHip"),
        "LHand": ("LWrist", "LMiddleTip"), "RHand": ("RWrist", "RMiddleTip"),
    },
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {sorted(LAYOUTS)}") from None


def convert(keypoints: np.ndarray, source: str, target: str, *, mirror: bool = False) -> np.ndarray:
    """Map `(..., V_source, C)` keypoints to the target layout; joints it lacks get score 0.

    `mirror=True` swaps left and right first (Kinect colour frames name the image's right
    side "left").
    """
    src = get_layout(source)
    if mirror:
        keypoints = keypoints[..., src.flip_index, :]
    if source == target:
        return keypoints.copy()
    dst = get_layout(target)
    try:
        mapping = _SAME_POINT[(source, target)]
    except KeyError:
        raise ValueError(f"no conversion from layout {source!r} to {target!r}") from None
    out = np.zeros(keypoints.shape[:-2] + (dst.num_joints, keypoints.shape[-1]), dtype=keypoints.dtype)
    for t_name, s_name in mapping.items():
        out[..., dst.index(t_name), :] = keypoints[..., src.index(s_name), :]
    midpoints = _PAIR_MIDPOINTS.get((source, target)) or {n: m for n, m in _MIDPOINTS.items() if n not in mapping}
    for t_name, (a, b) in midpoints.items():
        if t_name in dst.joints and a in src.joints and b in src.joints:
            pa, pb = keypoints[..., src.index(a), :], keypoints[..., src.index(b), :]
            both = (pa[..., 2] > 0) & (pb[..., 2] > 0)
            mid = (pa + pb) / 2
            mid[..., 2] = np.minimum(pa[..., 2], pb[..., 2])
            out[..., dst.index(t_name), :] = np.where(both[..., None], mid, 0)
    return out
