"""Streaming Track 2: feed skeleton frames one at a time, emit each gesture once it is decided.

The detector runs every `hop` frames over the last `window` frames (a bounded, causal view:
nothing after the newest frame is used). A detection is decided when its end lies at least
`guard` frames before the newest frame, so the window has seen it finish; it is emitted unless
an already emitted detection of the same class overlaps it by more than `merge_iou`.
A detection that starts within `margin` frames of the window's oldest frame is not decided (unless
the window holds the stream's start): the features and the network there lack their past, and what
they find is an artefact of the cut. Streamed detections equal the offline ones when the features
are causal (`track2.norm_window` > 0: body normalisation over each frame's recent past) and `margin`
covers that past plus the network's receptive field (`online_detector` sets it so; BENCHMARKS.md
"Track 2 streaming on UTKinect").
The decision delay of a gesture is (frame at which it was emitted) - (its end frame).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from miga.errors import ConfigError
from miga.project import TRACK2_MODEL
from miga.evaluation.overlap import frame_iou

# window keypoints (1, W, V, 3) -> detections table with frames relative to the window
DetectFn = Callable[[np.ndarray], pl.DataFrame]


@dataclass(frozen=True)
class Emitted:
    label: int
    start_frame: int
    end_frame: int
    score: float
    decided_at: int  # the newest frame when it was emitted

    @property
    def delay(self) -> int:
        return self.decided_at - self.end_frame


@dataclass
class StreamStats:
    frames: int = 0
    runs: int = 0
    seconds: float = 0.0  # spent in push() (features + model + decoding)
    delays: list[int] = field(default_factory=list)

    @property
    def ms_per_frame(self) -> float:
        return 1000 * self.seconds / max(1, self.frames)


class OnlineDetector:
    def __init__(self, detect: DetectFn, *, window: int = 256, hop: int = 16, guard: int = 16, merge_iou: float = 0.0,
                 margin: int = 0):
        if not 0 < hop <= window or guard >= window or not 0 <= margin < window - guard:
            raise ValueError(f"need 0 < hop <= window, guard < window and 0 <= margin < window - guard "
                             f"(hop={hop}, guard={guard}, margin={margin}, window={window})")
        self.detect, self.window, self.hop, self.guard, self.merge_iou = detect, window, hop, guard, merge_iou
        self.margin = margin
        self.buffer: deque[np.ndarray] = deque(maxlen=window)
        self.emitted: list[Emitted] = []
        self.stats = StreamStats()

    @property
    def newest(self) -> int:
        return self.stats.frames - 1

    def push(self, keypoints: np.ndarray) -> list[Emitted]:
        """One frame of keypoints (V, 3) (or (M, V, 3)) -> the detections decided at this frame."""
        started = time.perf_counter()
        frame = np.asarray(keypoints, dtype=np.float32)
        self.buffer.append(frame[0] if frame.ndim == 3 else frame)
        self.stats.frames += 1
        decided = self._run(final=False) if self.stats.frames % self.hop == 0 else []
        self.stats.seconds += time.perf_counter() - started
        return decided

    def flush(self) -> list[Emitted]:
        """End of stream: everything still open in the window is decided now."""
        started = time.perf_counter()
        decided = self._run(final=True) if self.buffer else []
        self.stats.seconds += time.perf_counter() - started
        return decided

    def _run(self, *, final: bool) -> list[Emitted]:
        self.stats.runs += 1
        first = self.stats.frames - len(self.buffer)
        detections = self.detect(np.stack(self.buffer)[None])
        limit = self.newest if final else self.newest - self.guard
        oldest = first + self.margin if first > 0 else 0
        out = []
        for label, start, end, score in detections.select("label", "start_frame", "end_frame", "score").sort("score", descending=True).iter_rows():
            start, end = start + first, end + first
            if end > limit or start < oldest or self._overlaps_emitted(label, start, end):
                continue
            emitted = Emitted(int(label), int(start), int(end), float(score), self.newest)
            self.emitted.append(emitted)
            self.stats.delays.append(emitted.delay)
            out.append(emitted)
        return sorted(out, key=lambda e: (e.start_frame, e.label))

    def _overlaps_emitted(self, label: int, start: int, end: int) -> bool:
        same = [e for e in self.emitted if e.label == label]
        if not same:
            return False
        iou = frame_iou(np.array([e.start_frame for e in same]), np.array([e.end_frame for e in same]), start, end)
        return bool((iou > self.merge_iou).any())


def run_stream(detector: OnlineDetector, frames: Iterable[np.ndarray]) -> Iterator[Emitted]:
    for keypoints in frames:
        yield from detector.push(keypoints)
    yield from detector.flush()


def emitted_table(sample_id: str, emitted: Iterable[Emitted]) -> pl.DataFrame:
    from miga.track2.segments import _detections

    rows = list(emitted)
    return _detections(sample_id, [e.label for e in rows], [e.start_frame for e in rows], [e.end_frame for e in rows],
                       [e.score for e in rows]).sort(["start_frame", "end_frame", "label"])


def online_detector(model, standardize, layout: str, options: dict, threshold: float, setting: dict, *,
                    window: int, hop: int, guard: int) -> OnlineDetector:
    """A trained detector (`miga.track2.pipeline.fit_detector` / `load_detector`) as an OnlineDetector decoding
    at `threshold` and the decoding `setting` (smooth / min_length) tuned offline."""
    from miga.track2 import recipe as track2

    feature_config = track2.feature_config(options)

    def detect(keypoints: np.ndarray):
        features = standardize(track2.frame_features(keypoints, layout, feature_config))
        return track2.make_decoder(model, options, {"window": features})(threshold, **setting)

    margin = min(track2.past_context(options, setting.get("class_scale"), setting.get("smooth")), window - guard - 1)
    return OnlineDetector(detect, window=window, hop=hop, guard=guard, margin=margin)


def build_online(config: dict, *, window: int, hop: int, guard: int) -> tuple[OnlineDetector, str]:
    """The project's trained Track 2 detector as an OnlineDetector at its val-tuned threshold, and its keypoint layout."""
    from miga.track2.pipeline import class_names, load_detector, tuned_decoding

    options = config["track2"]
    num_classes = len(class_names(config))
    model, standardize, layout = load_detector(options, num_classes)
    if layout is None:
        raise ConfigError(f"{TRACK2_MODEL} does not record its keypoint layout: retrain Track 2")
    threshold, setting = tuned_decoding(options, num_classes=num_classes)
    return online_detector(model, standardize, layout, options, threshold, setting, window=window, hop=hop, guard=guard), layout
