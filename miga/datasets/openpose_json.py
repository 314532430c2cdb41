"""OpenPose's own JSON output (`--write_json`): one folder per video, one file per frame.

    {name}_{frame:012d}_keypoints.json   {"version": 1.3, "people": [{"pose_keypoints_2d": [...], ...}, ...]}

The frame number is the number in the file name (not the file's rank): a frame without a file,
and a frame whose `people` is empty, is untracked (every point scores 0). Each person gives the
137 points of layout `openpose137` in OpenPose's order: `pose_keypoints_2d` (BODY_25, 25 points),
`face_keypoints_2d` (70), `hand_left_keypoints_2d` (21), `hand_right_keypoints_2d` (21), each a
flat list of x, y, confidence in pixels. A part OpenPose was not asked for (no `--face` / `--hand`)
is an empty list and reads as untracked; OpenPose 1.0-1.1's key names without `_2d` are read too.
`name` is free (the authors' release of interview 0298 writes `298_...`), but one folder holds one
video: two names, or one frame twice, is an error.

One person per video, the same rule as the video pose backends' (`miga.skeleton.tracking`): each
candidate's box is the extent of its points scoring >= 0.1; candidates are linked into tracks by
box IoU (>= 0.3) with the track's last box, which stays live however long the track is unseen (a
whole interview has long gaps; the seated subject comes back where they were); the subject is the
track scoring highest on size (mean box area relative to the largest track's) + centre (1 - mean
distance of the box centre from the frame centre, in half-diagonals) + presence (share of frames).
In frames where that track is absent, the subject is untracked, even if someone else was seen.
The frame size, when the video is unknown, is the extent of all points seen (centre term only).

Parsing uses orjson where installed (it comes with DVC), else the standard library; numbers are
turned into arrays one frame at a time. Measured: `benchmarks/openpose_json.py`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miga.datasets.csvtable import DatasetFormatError
from miga.layouts import OPENPOSE137
from miga.skeleton.tracking import SubjectChoice, frame_boxes, link_tracks, pick_subject


try:  # a DVC dependency; several times faster than json on these files
    from orjson import JSONDecodeError as _JSONError, loads as _loads
except ImportError:  # pragma: no cover - exercised only without orjson
    from json import JSONDecodeError as _JSONError, loads as _loads

NUM_POINTS = OPENPOSE137.num_joints
# (key, OpenPose 1.0-1.1 key, points) in the order of layout openpose137
PARTS = (
    ("pose_keypoints_2d", "pose_keypoints", 25),
    ("face_keypoints_2d", "face_keypoints", 70),
    ("hand_left_keypoints_2d", "hand_left_keypoints", 21),
    ("hand_right_keypoints_2d", "hand_right_keypoints", 21),
)
assert sum(n for _, _, n in PARTS) == NUM_POINTS
MIN_SCORE = 0.1  # a point counts towards a candidate's box from this confidence (as in miga.skeleton.tracking)
IOU_THRESHOLD = 0.3
_FILE = re.compile(r"^(?P<name>.*)_(?P<frame>\d+)_keypoints\.json$")


def list_frames(folder: Path) -> tuple[np.ndarray, list[Path]]:
    """The folder's `{name}_{frame}_keypoints.json` files: frame numbers (sorted) and paths.

    Hidden files and files not ending in `.json` are ignored; any other `.json` name, two video
    names or one frame twice is a DatasetFormatError naming the file.
    """
    numbers, names = _frame_files(Path(folder))
    return numbers, [Path(folder) / name for name in names]


def _frame_files(folder: Path) -> tuple[np.ndarray, list[str]]:
    if not folder.is_dir():
        raise DatasetFormatError(f"{folder}: folder not found (OpenPose JSON: {{name}}_{{frame:012d}}_keypoints.json files)")
    frames: dict[int, str] = {}
    name = None
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue
            match = _FILE.match(entry.name)
            if match is None:
                raise DatasetFormatError(f"{folder / entry.name}: not an OpenPose frame file ({{name}}_{{frame:012d}}_keypoints.json)")
            if name is None:
                name = match["name"]
            elif match["name"] != name:
                raise DatasetFormatError(f"{folder / entry.name}: a second video name ({match['name']!r}, also {name!r}) "
                                         "in one OpenPose JSON folder")
            frame = int(match["frame"])
            if frame in frames:
                raise DatasetFormatError(f"{folder / entry.name}: frame {frame} twice (also {frames[frame]})")
            frames[frame] = entry.name
    numbers = np.array(sorted(frames), dtype=np.int64)
    return numbers, [frames[f] for f in numbers.tolist()]


_KEYS = tuple(key for key, _, _ in PARTS)
_LENGTHS = tuple(3 * points for _, _, points in PARTS)


def _person(person: dict, path: Path) -> list:
    """One person's 411 numbers in openpose137 order (absent parts as zeros)."""
    try:  # the usual case: OpenPose >= 1.2 with body, face and hands
        flat = person[_KEYS[0]] + person[_KEYS[1]] + person[_KEYS[2]] + person[_KEYS[3]]
        if len(flat) == 3 * NUM_POINTS and all(len(person[k]) == n for k, n in zip(_KEYS, _LENGTHS)):
            return flat
    except (KeyError, TypeError):
        pass
    flat = []
    for key, old_key, points in PARTS:
        values = person.get(key)
        if values is None:
            values = person.get(old_key)
        if not values:
            flat.extend([0.0] * (3 * points))
        elif isinstance(values, list) and len(values) == 3 * points:
            flat.extend(values)
        else:
            raise DatasetFormatError(f"{path}: {key} has {len(values) if isinstance(values, list) else 'no list of'} numbers, "
                                     f"expected {3 * points} ({points} points x (x, y, confidence))")
    return flat


def read_frame(path: Path | str) -> np.ndarray:
    """One frame file -> float32 `(people, 137, 3)`."""
    try:
        with open(path, "rb") as handle:
            data = _loads(handle.read())
        people = data["people"]
    except (OSError, _JSONError, ValueError) as err:
        raise DatasetFormatError(f"{path}: not a readable OpenPose JSON file ({type(err).__name__}: {err})") from None
    except (KeyError, TypeError):
        raise DatasetFormatError(f"{path}: no `people` list (not OpenPose --write_json output)") from None
    if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
        raise DatasetFormatError(f"{path}: `people` is not a list of people")
    if not people:
        return np.zeros((0, NUM_POINTS, 3), np.float32)
    try:
        if len(people) == 1:
            values = np.array(_person(people[0], path), dtype=np.float32)
        else:
            values = np.array([_person(p, path) for p in people], dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise DatasetFormatError(f"{path}: a keypoint value is not a number ({err})") from None
    if not np.isfinite(values).all():
        raise DatasetFormatError(f"{path}: a keypoint value is not finite")
    return values.reshape(len(people), NUM_POINTS, 3)


def read_people(folder: Path, num_frames: int | None = None) -> list[np.ndarray]:
    """Every frame's candidates: `out[t]` is float32 `(N_t, 137, 3)` (N_t = 0 where no file or nobody).

    T = num_frames if given (files of later frames are not read), else the last frame + 1.
    """
    folder = Path(folder)
    numbers, names = _frame_files(folder)
    length = num_frames if num_frames is not None else (int(numbers[-1]) + 1 if len(numbers) else 0)
    nobody = np.zeros((0, NUM_POINTS, 3), np.float32)
    out = [nobody] * length
    base = str(folder)
    for number, name in zip(numbers.tolist(), names):
        if number < length:
            out[number] = read_frame(os.path.join(base, name))
    return out


def choose_person(people: Sequence[np.ndarray], frame_size: tuple[int, int] | None = None) -> tuple[np.ndarray, SubjectChoice]:
    """The subject's float32 `(T, V, 3)` among per-frame candidates `(N_t, V, 3)`, and the choice (rule: module docstring)."""
    frames = len(people)
    joints = next((p.shape[1] for p in people if len(p)), NUM_POINTS)
    boxes = frame_boxes(people, MIN_SCORE)
    if frame_size is None:
        frame_size = _extent(boxes)
    tracks = link_tracks(boxes, iou_threshold=IOU_THRESHOLD, max_gap=max(frames, 1))
    choice = pick_subject(boxes, frame_size, track_ids=tracks)
    out = np.zeros((frames, joints, 3), np.float32)
    for t in np.flatnonzero(choice.candidate >= 0):
        out[t] = people[t][choice.candidate[t]]
    return out, choice


def _extent(boxes: Sequence[np.ndarray]) -> tuple[int, int]:
    """(width, height) reaching the rightmost and lowest box edge (at least 1 x 1)."""
    corners = np.concatenate([np.zeros((0, 4))] + [b for b in boxes if len(b)])
    corners = corners[np.isfinite(corners).all(axis=1)]
    width, height = (corners[:, 2].max(), corners[:, 3].max()) if len(corners) else (1.0, 1.0)
    return max(1, math.ceil(width)), max(1, math.ceil(height))


def read_openpose_json_with_choice(folder: Path, num_frames: int | None = None,
                                   frame_size: tuple[int, int] | None = None) -> tuple[np.ndarray, SubjectChoice]:
    """float32 `(T, 137, 3)` of the video's subject and how it was chosen (`SubjectChoice.reason`)."""
    return choose_person(read_people(folder, num_frames), frame_size)


def read_openpose_json(folder: Path, num_frames: int | None = None, frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """A folder of OpenPose JSON frames -> float32 `(T, 137, 3)` (layout openpose137), one person per video.

    T = num_frames if given, else the last frame + 1; `frame_size` (width, height) of the video when known.
    """
    return read_openpose_json_with_choice(folder, num_frames, frame_size)[0]
