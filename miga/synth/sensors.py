"""What the sensors see of a posed body: the camera, OpenPose-like 2-D keypoints, Kinect v2 rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from miga.layouts import KINECT25, OPENPOSE25_HANDS10
from miga.synth.body import Body, Subject, normalize
from miga.synth.calibration import POSE_NOISE_SCALE
from miga.synth.motion import smooth_noise


@dataclass(frozen=True)
class Camera:
    """Pinhole camera looking at the person; y up in camera space, image v grows downward.

    Camera space: X toward the image's right in the unmirrored view (the person's left, since they
    face the camera), Y up, Z the distance. `mirror` flips the image left-right (Kinect colour).
    """

    width: int
    height: int
    focal: float  # pixels
    origin: tuple[float, float, float]  # the body frame's origin in camera space
    mirror: bool = False

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        ox, oy, oz = self.origin
        return np.stack([points[..., 0] + ox, points[..., 1] + oy, oz - points[..., 2]], -1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body-frame points (..., 3) -> pixel coordinates (..., 2) and distance (...)."""
        cam = self.to_camera(points)
        u = self.focal * cam[..., 0] / cam[..., 2]
        u = (self.width - 1) / 2 + (-u if self.mirror else u)  # pixel centres at integers
        v = (self.height - 1) / 2 - self.focal * cam[..., 1] / cam[..., 2]
        return np.stack([u, v], -1), cam[..., 2]

    def inside(self, uv: np.ndarray) -> np.ndarray:
        return (uv[..., 0] >= 0) & (uv[..., 0] <= self.width - 1) & (uv[..., 1] >= 0) & (uv[..., 1] <= self.height - 1)


def sample_camera(rng: np.random.Generator, subject: Subject, size: tuple[int, int], *, mirror: bool = False) -> Camera:
    """Frame a seated person from the hips up (interview) or a standing person whole (Kinect)."""
    width, height = size
    if subject.seated:
        distance = rng.uniform(1.9, 2.1)
        focal = width / 320 * 390 * rng.uniform(0.9, 1.05)
        origin = (rng.uniform(-0.1, 0.1), -0.42 * subject.scale + rng.uniform(-0.03, 0.03), distance)
    else:
        distance = rng.uniform(2.4, 2.8)
        focal = width / 320 * 220 * rng.uniform(0.95, 1.05)
        origin = (rng.uniform(-0.2, 0.2), 0.08 + rng.uniform(-0.04, 0.04), distance)
    return Camera(width, height, focal, origin, mirror)


def _joint_array(body: Body, names) -> np.ndarray:
    return np.stack([body.joints[name] for name in names], 1)


def _joint_groups() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    names = OPENPOSE25_HANDS10.joints
    tips = np.array([name.endswith("Tip") for name in names])
    face = np.isin(names, ("Nose", "LEye", "REye", "LEar", "REar"))
    arms = np.array([name[1:] in ("Elbow", "Wrist") for name in names]) | tips
    return tips, face, arms


def openpose_keypoints(body: Body, camera: Camera, subject: Subject, rng: np.random.Generator) -> np.ndarray:
    """(T, 35, 3) x, y, confidence as OpenPose writes them: lost joints are (0, 0, 0), else conf in [0.3, 1)."""
    xyz = _joint_array(body, OPENPOSE25_HANDS10.joints)
    uv, _ = camera.project(xyz)
    n, v = uv.shape[:2]
    tips, face, arms = _joint_groups()
    sigma = POSE_NOISE_SCALE * subject.noise_px * camera.width / 320 * np.where(tips, 2.0, np.where(face, 0.7, 1.0))
    uv = uv + rng.normal(0.0, 1.0, uv.shape) * sigma[None, :, None]
    speed = np.linalg.norm(np.diff(uv, axis=0, prepend=uv[:1]), axis=-1) * 320 / camera.width
    behind = arms[None] & (xyz[..., 2] < -0.06)  # hands and elbows hidden behind the back
    base = np.where(tips, 0.62, np.where(face, 0.82, 0.78))
    confidence = base[None] + rng.normal(0.0, 0.07, (n, v)) - 0.02 * np.minimum(speed, 10.0) - 0.3 * behind
    lost = rng.random((n, v)) < subject.drop_rate * np.where(tips, 3.0, 1.0)
    lost |= behind & (rng.random((n, v)) < 0.6)
    lost |= ~camera.inside(uv)
    lost |= _tracking_glitches(rng, n, v, tips, arms)
    out = np.concatenate([uv, np.clip(confidence, 0.3, 0.99)[..., None]], -1)
    out[lost] = 0.0
    return out


def _tracking_glitches(rng: np.random.Generator, n: int, v: int, tips: np.ndarray, arms: np.ndarray) -> np.ndarray:
    """Short bursts where a hand (or an arm) is lost for a few frames."""
    lost = np.zeros((n, v), bool)
    names = np.array(OPENPOSE25_HANDS10.joints)
    for start in np.flatnonzero(rng.random(n) < 0.01):
        side = rng.choice(["L", "R"])
        group = (tips | (arms & (rng.random() < 0.3))) & np.char.startswith(names, side)
        lost[start: start + rng.integers(1, 7)] |= group[None]
    return lost


# Kinect v2 joints from the body model's points (several are in-between points).
_KINECT_SOURCES = {
    "SpineBase": ("MidHip", None, 0.0), "SpineMid": ("MidHip", "Neck", 0.55), "Neck": ("Neck", "HeadPivot", 0.9),
    "Head": ("HeadCentre", None, 0.0), "SpineShoulder": ("Neck", "MidHip", 0.04),
    **{f"{s}{j}": (f"{s}{j}", None, 0.0) for s in "LR" for j in ("Shoulder", "Elbow", "Wrist", "Knee", "Ankle")},
    **{f"{s}Hand": (f"{s}HandCentre", None, 0.0) for s in "LR"},
    **{f"{s}Hip": (f"{s}Hip", None, 0.0) for s in "LR"},
    **{f"{s}Foot": (f"{s}Ankle", f"{s}BigToe", 0.7) for s in "LR"},
    **{f"{s}HandTip": (f"{s}MiddleTip", None, 0.0) for s in "LR"},
    **{f"{s}Thumb": (f"{s}ThumbTip", None, 0.0) for s in "LR"},
}
# Kinect gives no orientation for end joints: their quaternion is all zeros.
_KINECT_LEAVES = ("Head", "LHandTip", "RHandTip", "LThumb", "RThumb", "LFoot", "RFoot")
_KINECT_PARENT = {child: parent for parent, child in ((KINECT25.joints[a], KINECT25.joints[b]) for a, b in KINECT25.limbs)}


def kinect_joints(body: Body) -> np.ndarray:
    """(T, 25, 3) body-frame points in the kinect25 order."""
    out = []
    for name in KINECT25.joints:
        a, b, t = _KINECT_SOURCES[name]
        point = body.joints[a]
        out.append(point if b is None else point + t * (body.joints[b] - point))
    return np.stack(out, 1)


def _bone_quaternions(world: np.ndarray) -> np.ndarray:
    """(T, 25, 4) w, x, y, z rotating +Y onto each joint's bone from its parent (zeros for leaves)."""
    names = KINECT25.joints
    quats = np.zeros(world.shape[:2] + (4,))
    for j, name in enumerate(names):
        if name in _KINECT_LEAVES:
            continue
        parent = _KINECT_PARENT.get(name)
        bone = world[:, j] - world[:, names.index(parent)] if parent else np.broadcast_to([0.0, 1.0, 0.0], world[:, j].shape)
        bone = normalize(bone)
        axis = np.cross(np.array([0.0, 1.0, 0.0]), bone)
        half = 0.5 * np.arccos(np.clip(bone[:, 1], -1.0, 1.0))
        quats[:, j] = np.concatenate([np.cos(half)[:, None], normalize(axis) * np.sin(half)[:, None]], -1)
    return quats


def kinect_rows(body: Body, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """(T, 275) SMG skeleton rows: per joint world xyz (m), quaternion wxyz, colour x, y (px), 0, 0.

    World space is Kinect's: X toward the sensor's left (the person's right), Y up, Z the distance.
    The colour x, y are where the (noisy) joint projects in the mirrored colour video.
    """
    points = kinect_joints(body)
    n = points.shape[0]
    tips = np.isin(KINECT25.joints, ("LHandTip", "RHandTip", "LThumb", "RThumb", "LHand", "RHand"))
    sigma = np.where(tips, 0.012, 0.005)[None, :, None]
    noisy = points + rng.normal(0.0, 1.0, points.shape) * sigma + smooth_drift(rng, n)
    cam = camera.to_camera(noisy)
    world = np.stack([-cam[..., 0], cam[..., 1], cam[..., 2]], -1)
    uv, _ = camera.project(noisy)
    rows = np.concatenate([world, _bone_quaternions(world), uv, np.zeros((n, 25, 2))], -1)
    lost = _lost_bodies(rng, n)
    rows[lost] = 0.0
    return rows.reshape(n, -1)


def smooth_drift(rng: np.random.Generator, n: int) -> np.ndarray:
    """A slow common wander of the whole skeleton (depth-sensor jitter), (T, 1, 3)."""
    return smooth_noise(rng, n, 30.0, 2.0, 0.004, 3)[:, None, :]


def _lost_bodies(rng: np.random.Generator, n: int) -> np.ndarray:
    """Rare runs of frames where the sensor lost the body (rows of zeros)."""
    lost = np.zeros(n, bool)
    for start in np.flatnonzero(rng.random(n) < 0.002):
        lost[start: start + rng.integers(1, 10)] = True
    return lost
