"""Which detected person is the subject: link per-frame candidates into tracks, then pick one.

A multi-person pose model (mmpose) gives, per frame, any number of candidate people; the
micro-gesture datasets film one seated or standing subject, with others (an interviewer, a
passer-by) at the edges or for a few frames. The subject is the track that is large, near the
frame centre and present in most frames. `pick_subject` makes that choice and says why, in a
sentence for the keypoints' metadata. A single-person model (mediapipe) has at most one
candidate per frame, so its choice is trivial, but it goes through the same function and
records the same kind of reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SubjectChoice:
    """The chosen track and, per frame, the index of its candidate in that frame (-1: absent)."""

    track: int                 # id of the chosen track (-1: nobody was ever detected)
    candidate: np.ndarray      # (T,) int: index into that frame's candidates, -1 where absent
    reason: str                # one sentence for the metadata
    num_tracks: int


def boxes_from_keypoints(keypoints: np.ndarray, min_score: float = 0.1) -> np.ndarray:
    """Boxes `(N, 4)` x0, y0, x1, y1 around the joints of `(N, V, 3)` keypoints scoring >= min_score.

    A candidate with no such joint gets an empty box (all NaN).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    boxes = np.full((keypoints.shape[0], 4), np.nan)
    for i, person in enumerate(keypoints):
        ok = person[:, 2] >= min_score
        if ok.any():
            xy = person[ok, :2]
            boxes[i] = (*xy.min(axis=0), *xy.max(axis=0))
    return boxes


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    if np.isnan(a).any() or np.isnan(b).any():
        return 0.0
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def link_tracks(boxes: Sequence[np.ndarray], *, iou_threshold: float = 0.3, max_gap: int = 15) -> list[np.ndarray]:
    """Greedy IoU tracking: per frame, an int array of track ids, one per candidate box.

    A candidate joins the track whose last box (seen at most `max_gap` frames ago) overlaps it
    most, if that IoU is at least `iou_threshold`; otherwise it starts a new track.
    """
    ids: list[np.ndarray] = []
    last_box: dict[int, np.ndarray] = {}
    last_seen: dict[int, int] = {}
    next_id = 0
    for t, frame_boxes in enumerate(boxes):
        frame_boxes = np.asarray(frame_boxes, dtype=np.float64).reshape(-1, 4)
        live = [k for k in last_box if t - last_seen[k] <= max_gap]
        pairs = sorted(
            ((_iou(frame_boxes[i], last_box[k]), i, k) for i in range(len(frame_boxes)) for k in live),
            reverse=True,
        )
        assigned = np.full(len(frame_boxes), -1, dtype=np.int64)
        taken: set[int] = set()
        for iou, i, k in pairs:
            if iou < iou_threshold:
                break
            if assigned[i] < 0 and k not in taken:
                assigned[i] = k
                taken.add(k)
        for i in range(len(frame_boxes)):
            if assigned[i] < 0:
                assigned[i] = next_id
                next_id += 1
            if not np.isnan(frame_boxes[i]).any():
                last_box[int(assigned[i])] = frame_boxes[i]
                last_seen[int(assigned[i])] = t
        ids.append(assigned)
    return ids


def pick_subject(
    boxes: Sequence[np.ndarray],
    frame_size: tuple[int, int],
    *,
    track_ids: Sequence[np.ndarray] | None = None,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    iou_threshold: float = 0.3,
) -> SubjectChoice:
    """Choose the subject among per-frame candidate boxes (`boxes[t]`: `(N_t, 4)` x0, y0, x1, y1).

    `frame_size` is (width, height). Tracks are linked by IoU unless `track_ids` gives them.
    Each track is scored on three terms in [0, 1], summed with `weights` (size, centre,
    persistence): its mean box area relative to the largest track's, 1 minus the mean distance
    of its box centre from the frame centre (in half-diagonals), and the fraction of frames it
    is present in. The highest score wins; ties go to the lower track id.
    """
    width, height = frame_size
    frames = len(boxes)
    boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
    if track_ids is None:
        track_ids = link_tracks(boxes, iou_threshold=iou_threshold)
    track_ids = [np.asarray(t, dtype=np.int64).reshape(-1) for t in track_ids]
    if len(track_ids) != frames or any(len(t) != len(b) for t, b in zip(track_ids, boxes)):
        raise ValueError("track_ids must give one id per candidate box in every frame")

    stats: dict[int, dict[str, list[float]]] = {}
    half_diag = 0.5 * float(np.hypot(width, height)) or 1.0
    for t, (frame_boxes, frame_ids) in enumerate(zip(boxes, track_ids)):
        for box, tid in zip(frame_boxes, frame_ids):
            if np.isnan(box).any():
                continue
            s = stats.setdefault(int(tid), {"area": [], "offset": [], "frames": set()})
            s["area"].append(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))
            centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
            s["offset"].append(float(np.hypot(*(centre - (width / 2, height / 2)))) / half_diag)
            s["frames"].add(t)
    if not stats:
        return SubjectChoice(-1, np.full(frames, -1, dtype=np.int64), f"nobody detected in {frames} frames", 0)

    biggest = max(np.mean(s["area"]) for s in stats.values()) or 1.0
    scored = []
    for tid, s in stats.items():
        size = float(np.mean(s["area"]) / biggest)
        centre = float(max(0.0, 1.0 - np.mean(s["offset"])))
        present = len(s["frames"]) / max(frames, 1)
        score = weights[0] * size + weights[1] * centre + weights[2] * present
        scored.append((score, -tid, tid, size, centre, present))
    scored.sort(reverse=True)
    best = scored[0]
    tid = best[2]
    candidate = np.array(
        [int(np.flatnonzero(ids == tid)[0]) if (ids == tid).any() else -1 for ids in track_ids], dtype=np.int64
    )
    present_frames = int((candidate >= 0).sum())
    reason = (
        f"track {tid} of {len(stats)}: present in {present_frames}/{frames} frames, "
        f"mean box {100 * np.mean(stats[tid]['area']) / max(width * height, 1):.1f}% of the frame, "
        f"centre offset {np.mean(stats[tid]['offset']):.2f} half-diagonals (score {best[0]:.2f}"
    )
    if len(scored) > 1:
        reason += f"; runner-up track {scored[1][2]} scored {scored[1][0]:.2f})"
    else:
        reason += "; the only track)"
    return SubjectChoice(tid, candidate, reason, len(stats))


def select_subject(
    keypoints: Sequence[np.ndarray], frame_size: tuple[int, int], *, min_score: float = 0.1, **kwargs
) -> tuple[np.ndarray, SubjectChoice]:
    """Per-frame candidate keypoints (`keypoints[t]`: `(N_t, V, 3)`) -> the subject's `(T, V, 3)` and the choice.

    Frames where the subject is absent get all-zero keypoints (score 0 = missing).
    """
    keypoints = [np.asarray(k, dtype=np.float32) for k in keypoints]
    joints = next((k.shape[1] for k in keypoints if k.ndim == 3 and len(k)), None)
    boxes = [boxes_from_keypoints(k, min_score) if len(k) else np.zeros((0, 4)) for k in keypoints]
    choice = pick_subject(boxes, frame_size, **kwargs)
    out = np.zeros((len(keypoints), joints or 0, 3), np.float32)
    for t, index in enumerate(choice.candidate):
        if index >= 0:
            out[t] = keypoints[t][index]
    return out, choice
