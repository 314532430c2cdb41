"""How sure is a small val set that one detector beats another? A paired block bootstrap of detection F1.

Val sets of real gesture data are small (one person, a dozen gestures): a val F1 difference of one or two gestures is
often noise. `f1_win_rate` resamples stretches of the val sequences (a block runs from one ground-truth gesture's start
to the next's, so each gesture stays with the detections around it) and says in what share of the resamples the
challenger's F1 (official rule) is higher.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from miga.evaluation.metrics import match_detections


def f1_win_rate(gt: pl.DataFrame, first: pl.DataFrame, challenger: pl.DataFrame, ids: list[str], *,
                iou_threshold: float = 0.3, resamples: int = 2000, seed: int = 0) -> float:
    """The share of block-bootstrap resamples of the sequences `ids` in which `challenger`'s F1 is above `first`'s.

    `gt`: ground-truth segments; `first` / `challenger`: detections (rows of sequences not in `ids` are ignored).
    Blocks: per sequence, from each gesture's start frame to the next's (the first block from frame 0; a sequence
    without gestures is one block); a detection belongs to the block holding its middle frame. Deterministic for a
    given `seed`; 0.0 without sequences."""
    if not ids:
        return 0.0
    gt, first, challenger = (frame.filter(pl.col("sample_id").is_in(ids)) for frame in (gt, first, challenger))
    starts = {sid: group["start_frame"].to_numpy() for (sid,), group in gt.group_by(["sample_id"])}
    bounds = {sid: np.sort(starts.get(sid, np.zeros(1, np.int64)))[1:] for sid in ids}
    offsets = dict(zip(ids, np.cumsum([0] + [len(bounds[sid]) + 1 for sid in ids]).tolist()))
    blocks = sum(len(b) + 1 for b in bounds.values())

    def block_of(frame: pl.DataFrame, frames: np.ndarray) -> np.ndarray:
        sids = frame["sample_id"].to_list()
        return np.array([offsets[sid] + int(np.searchsorted(bounds[sid], f, side="right")) for sid, f in zip(sids, frames)],
                        dtype=np.int64)

    gt_block = block_of(gt, gt["start_frame"].to_numpy())
    counts = {"gt": np.bincount(gt_block, minlength=blocks)}
    for name, frame in (("first", first), ("challenger", challenger)):
        found = match_detections(gt, frame, iou_threshold=iou_threshold, mode="official").gt_match >= 0
        middle = (frame["start_frame"].to_numpy() + frame["end_frame"].to_numpy()) // 2
        counts[f"{name}_found"] = np.bincount(gt_block[found], minlength=blocks)
        counts[f"{name}_pred"] = np.bincount(block_of(frame, middle), minlength=blocks)
    picks = np.random.default_rng(seed).integers(0, blocks, size=(resamples, blocks))
    total = {key: value[picks].sum(axis=1) for key, value in counts.items()}
    f1 = {name: 2 * total[f"{name}_found"] / np.maximum(total[f"{name}_pred"] + total["gt"], 1) for name in ("first", "challenger")}
    return float(np.mean(f1["challenger"] > f1["first"]))
