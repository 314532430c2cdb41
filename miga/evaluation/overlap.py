"""Temporal overlap, the one home of its rules (DESIGN: docs/design.md, "Track 2 scoring").

- `overlap_ratio`: **the challenge's matching rule**, used wherever a detection is judged against ground truth
  (evaluation, the baselines' tuning, decoding tuning): `(min(ends) - max(starts)) / (max(ends) - min(starts))` on
  the frame numbers as written, no +1 (the organisers' tester_SMG).
- `frame_iou`: the IoU of the frame *sets* of inclusive ranges (+1 per range), used only to suppress or merge a
  detector's own overlapping candidates (NMS, the online detector's merge), where a one-frame segment must
  overlap itself fully.
"""

from __future__ import annotations

import numpy as np


def overlap_ratio(gt_starts: np.ndarray, gt_ends: np.ndarray, pred_starts: np.ndarray, pred_ends: np.ndarray) -> np.ndarray:
    """(G, P) overlap of every ground truth with every prediction, as the organisers compute it.

    tester_SMG: `alpha = (min(end_frame[pred_i], gt_end_frame) - max(begin_frame[pred_i],
    gt_begin_frame)) / (max(end_frame[pred_i], gt_end_frame) - min(begin_frame[pred_i],
    gt_begin_frame))`. It is taken as written on the frame numbers, with no +1 for inclusive
    ends, so that scores match the official ones exactly (a one-frame overlap scores 0, and
    disjoint segments score below 0). When both are the same single frame it is 0/0, NaN in
    the organisers' NumPy code, which never passes the threshold; here it is -inf.
    """
    gs, ge = np.asarray(gt_starts)[:, None].astype(np.int64), np.asarray(gt_ends)[:, None].astype(np.int64)
    ps, pe = np.asarray(pred_starts)[None, :].astype(np.int64), np.asarray(pred_ends)[None, :].astype(np.int64)
    inter = (np.minimum(ge, pe) - np.maximum(gs, ps)).astype(np.float64)
    span = (np.maximum(ge, pe) - np.minimum(gs, ps)).astype(np.float64)
    out = np.full(inter.shape, -np.inf)
    np.divide(inter, span, out=out, where=span > 0)
    return out


def frame_iou(starts: np.ndarray, ends: np.ndarray, start: int, end: int) -> np.ndarray:
    """IoU of the inclusive frame ranges [starts, ends] with [start, end] (lengths count frames)."""
    inter = np.clip(np.minimum(ends, end) - np.maximum(starts, start) + 1, 0, None)
    union = (ends - starts + 1) + (end - start + 1) - inter
    return inter / union
