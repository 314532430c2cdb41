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
    ok = keypoints[..., 2] >= min_score
    x, y = keypoints[..., 0], keypoints[..., 1]
    boxes = np.full((keypoints.shape[0], 4), np.nan)
    seen = ok.any(axis=1)
    if seen.any():
        x, y, ok = x[seen], y[seen], ok[seen]
        boxes[seen] = np.stack([np.where(ok, x, np.inf).min(axis=1), np.where(ok, y, np.inf).min(axis=1),
                                np.where(ok, x, -np.inf).max(axis=1), np.where(ok, y, -np.inf).max(axis=1)], axis=1)
    return boxes


def frame_boxes(keypoints: Sequence[np.ndarray], min_score: float = 0.1) -> list[np.ndarray]:
    """`boxes_from_keypoints` of every frame's candidates (`keypoints[t]`: `(N_t, V, 3)`), computed in one pass."""
    counts = [len(k) for k in keypoints]
    filled = [np.asarray(k) for k in keypoints if len(k)]
    if not filled:
        return [np.zeros((0, 4)) for _ in keypoints]
    return np.split(boxes_from_keypoints(np.concatenate(filled), min_score), np.cumsum(counts)[:-1])


def _iou(a, b) -> float:
    """IoU of two x0, y0, x1, y1 boxes (sequences of 4 numbers); 0 where either has a NaN."""
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    if any(v != v for v in (ax0, ay0, ax1, ay1, bx0, by0, bx1, by1)):
        return 0.0
    w = min(ax1, bx1) - max(ax0, bx0)
    h = min(ay1, by1) - max(ay0, by0)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


def link_tracks(boxes: Sequence[np.ndarray], *, iou_threshold: float = 0.3, max_gap: int = 15) -> list[np.ndarray]:
    """Greedy IoU tracking: per frame, an int array of track ids, one per candidate box.

    A candidate joins the track whose last box (seen at most `max_gap` frames ago) overlaps it
    most, if that IoU is at least `iou_threshold`; otherwise it starts a new track.
    """
    ids: list[np.ndarray] = []
    last_box: dict[int, list[float]] = {}
    last_seen: dict[int, int] = {}
    next_id = 0
    for t, boxes_t in enumerate(boxes):
        rows = np.asarray(boxes_t, dtype=np.float64).reshape(-1, 4).tolist()
        live = [k for k in last_box if t - last_seen[k] <= max_gap]
        pairs = sorted(((_iou(rows[i], last_box[k]), i, k) for i in range(len(rows)) for k in live), reverse=True)
        assigned = np.full(len(rows), -1, dtype=np.int64)
        taken: set[int] = set()
        for iou, i, k in pairs:
            if iou < iou_threshold:
                break
            if assigned[i] < 0 and k not in taken:
                assigned[i] = k
                taken.add(k)
        for i, row in enumerate(rows):
            if assigned[i] < 0:
                assigned[i] = next_id
                next_id += 1
            if not any(v != v for v in row):
                last_box[int(assigned[i])] = row
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

    # every candidate of every frame at once: its frame, track, box area and centre offset
    counts = np.array([len(b) for b in boxes], dtype=np.int64)
    flat = np.concatenate([np.zeros((0, 4))] + boxes)
    flat_ids = np.concatenate([np.zeros(0, np.int64)] + track_ids)
    flat_t = np.repeat(np.arange(frames), counts)
    ok = ~np.isnan(flat).any(axis=1)
    half_diag = 0.5 * float(np.hypot(width, height)) or 1.0
    area = np.maximum(flat[:, 2] - flat[:, 0], 0.0) * np.maximum(flat[:, 3] - flat[:, 1], 0.0)
    offset = np.hypot((flat[:, 0] + flat[:, 2]) / 2 - width / 2, (flat[:, 1] + flat[:, 3]) / 2 - height / 2) / half_diag
    stats: dict[int, dict[str, float]] = {}
    for tid in np.unique(flat_ids[ok]).tolist():
        mine = ok & (flat_ids == tid)
        stats[tid] = {"area": float(np.mean(area[mine])), "offset": float(np.mean(offset[mine])),
                      "frames": int(np.unique(flat_t[mine]).size)}
    if not stats:
        return SubjectChoice(-1, np.full(frames, -1, dtype=np.int64), f"nobody detected in {frames} frames", 0)

    biggest = max(s["area"] for s in stats.values()) or 1.0
    scored = []
    for tid, s in stats.items():
        size = float(s["area"] / biggest)
        centre = float(max(0.0, 1.0 - s["offset"]))
        present = s["frames"] / max(frames, 1)
        score = weights[0] * size + weights[1] * centre + weights[2] * present
        scored.append((score, -tid, tid, size, centre, present))
    scored.sort(reverse=True)
    best = scored[0]
    tid = best[2]
    candidate = np.full(frames, -1, dtype=np.int64)
    chosen = np.flatnonzero(flat_ids == tid)  # the first candidate of the track in each frame
    first_in_frame, first = np.unique(flat_t[chosen], return_index=True)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    candidate[first_in_frame] = chosen[first] - starts[first_in_frame]
    present_frames = int((candidate >= 0).sum())
    reason = (
        f"track {tid} of {len(stats)}: present in {present_frames}/{frames} frames, "
        f"mean box {100 * stats[tid]['area'] / max(width * height, 1):.1f}% of the frame, "
        f"centre offset {stats[tid]['offset']:.2f} half-diagonals (score {best[0]:.2f}"
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
    choice = pick_subject(frame_boxes(keypoints, min_score), frame_size, **kwargs)
    out = np.zeros((len(keypoints), joints or 0, 3), np.float32)
    for t, index in enumerate(choice.candidate):
        if index >= 0:
            out[t] = keypoints[t][index]
    return out, choice
