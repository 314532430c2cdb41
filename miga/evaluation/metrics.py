"""Challenge metrics: Track 1 classification and Track 2 detection (docs/design.md section 4).

Every public function is pure and returns plain Python numbers in dicts (JSON-ready; class
ids become string keys). A Track 1 rate with nothing to count is None; Track 2 precision,
recall and F1 with nothing to count are 0, as the challenge reports them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from miga.contracts import DETECTIONS_SCHEMA, SEGMENTS_SCHEMA, validate_detections, validate_segments
from miga.evaluation.overlap import overlap_ratio

MatchMode = Literal["official", "one_to_one"]
MATCH_MODES: tuple[MatchMode, ...] = ("official", "one_to_one")


# ---------------------------------------------------------------- Track 1


def classification_metrics(
    labels: np.ndarray, scores: np.ndarray, *, head_classes: Sequence[int] | None = None
) -> dict:
    """Top-1/top-5, mean class accuracy, per-class accuracy and, given `head_classes`, head/tail.

    Ties in `scores` go to the lower class id (as `argmax` does).
    """
    labels, scores = _check_classification_inputs(labels, scores)
    num_classes = scores.shape[1]
    ranking = np.argsort(-scores, axis=1, kind="stable")
    hit1 = ranking[:, 0] == labels
    hit5 = (ranking[:, : min(5, num_classes)] == labels[:, None]).any(axis=1)
    result = {
        "num_samples": int(labels.size),
        "top1": _mean(hit1),
        "top5": _mean(hit5),
        "mean_class_accuracy": _mean_class_accuracy(labels, hit1),
        "per_class": _per_class_accuracy(labels, hit1),
    }
    if head_classes is not None:
        result.update(_head_tail(labels, hit1, head_classes))
    return result


def head_classes_from_counts(train_labels: np.ndarray, k: int) -> list[int]:
    """The `k` most frequent classes in `train_labels`, most frequent first (ties: lower id)."""
    classes, counts = np.unique(np.asarray(train_labels, dtype=np.int64), return_counts=True)
    order = np.lexsort((classes, -counts))
    return [int(c) for c in classes[order[:k]]]


def _check_classification_inputs(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 2 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"expected labels (N,) and scores (N, K); got {labels.shape} and {scores.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in 0..{scores.shape[1] - 1}")
    return labels.astype(np.int64), scores


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if values.size else None


def _mean_class_accuracy(labels: np.ndarray, hit: np.ndarray) -> float | None:
    """Mean over the classes present in `labels` of each class's accuracy."""
    classes = np.unique(labels)
    if classes.size == 0:
        return None
    return float(np.mean([hit[labels == c].mean() for c in classes]))


def _per_class_accuracy(labels: np.ndarray, hit: np.ndarray) -> dict[str, dict]:
    return {
        str(int(c)): {"accuracy": float(hit[labels == c].mean()), "count": int((labels == c).sum())}
        for c in np.unique(labels)
    }


def _head_tail(labels: np.ndarray, hit: np.ndarray, head_classes: Sequence[int]) -> dict:
    in_head = np.isin(labels, np.asarray(list(head_classes), dtype=np.int64))
    result = {"head_classes": sorted(int(c) for c in head_classes)}
    for group, mask in (("head", in_head), ("tail", ~in_head)):
        result[f"{group}_num_samples"] = int(mask.sum())
        result[f"{group}_accuracy"] = _mean(hit[mask])
        result[f"{group}_mean_class_accuracy"] = _mean_class_accuracy(labels[mask], hit[mask])
    return result


# ---------------------------------------------------------------- Track 2


@dataclass(frozen=True)
class Matching:
    """How ground-truth rows and prediction rows matched (arrays follow the input row order).

    `gt_match[i]` is the prediction row that found ground truth `i` (-1 if none);
    `pred_matched[j]` says prediction `j` found at least one ground truth.
    """

    mode: MatchMode
    gt_match: np.ndarray
    pred_matched: np.ndarray

    @property
    def found(self) -> int:
        """Ground-truth instances found: the numerator of both precision and recall."""
        return int((self.gt_match >= 0).sum())

    @property
    def num_gt(self) -> int:
        return int(self.gt_match.size)

    @property
    def num_pred(self) -> int:
        return int(self.pred_matched.size)


def match_detections(
    gt: pl.DataFrame, pred: pl.DataFrame, *, iou_threshold: float = 0.3, mode: MatchMode = "official"
) -> Matching:
    """Match predictions to ground truth of the same sample and class.

    `official` follows the organisers' tester_SMG: each ground truth is found by the first
    prediction (in row order) that overlaps it enough, and predictions are never used up, so
    one prediction may find several ground truths. `one_to_one` is greedy: predictions in
    descending score (ties and null scores: row order, nulls last) each take the unmatched
    ground truth they overlap most.
    """
    if mode not in MATCH_MODES:
        raise ValueError(f"mode must be one of {MATCH_MODES}, got {mode!r}")
    gt = validate_segments(gt, "ground truth")
    pred = validate_detections(pred, "predictions")
    if pred.drop("score").null_count().sum_horizontal().item():
        raise ValueError("predictions: only score may be null")
    gt_match = np.full(gt.height, -1, dtype=np.int64)
    pred_matched = np.zeros(pred.height, dtype=bool)
    gt_starts, gt_ends = gt["start_frame"].to_numpy(), gt["end_frame"].to_numpy()
    pred_starts, pred_ends = pred["start_frame"].to_numpy(), pred["end_frame"].to_numpy()
    pred_rank = _score_rank(pred)
    for gt_rows, pred_rows in _same_sample_and_class(gt, pred):
        ratio = overlap_ratio(gt_starts[gt_rows], gt_ends[gt_rows], pred_starts[pred_rows], pred_ends[pred_rows])
        if mode == "official":
            local = _match_official(ratio > iou_threshold)
        else:
            local = _match_greedy(ratio, iou_threshold, pred_rank[pred_rows])
        hit = local >= 0
        gt_match[gt_rows[hit]] = pred_rows[local[hit]]
    pred_matched[gt_match[gt_match >= 0]] = True
    return Matching(mode, gt_match, pred_matched)


def _score_rank(pred: pl.DataFrame) -> np.ndarray:
    """Rank of each prediction row in descending score; ties keep row order, nulls last."""
    order = (
        pred.select(pl.col("score").fill_nan(None))
        .with_row_index("row")
        .sort("score", descending=True, nulls_last=True, maintain_order=True)["row"]
        .to_numpy()
    )
    rank = np.empty(pred.height, dtype=np.int64)
    rank[order] = np.arange(pred.height)
    return rank


def _same_sample_and_class(gt: pl.DataFrame, pred: pl.DataFrame):
    """Yield (gt row indices, pred row indices), ascending, per (sample, class) present in both."""
    keys = ["sample_id", "label"]
    gt_groups = gt.with_row_index("gt_rows").group_by(keys).agg("gt_rows")
    pred_groups = pred.with_row_index("pred_rows").group_by(keys).agg("pred_rows")
    pairs = gt_groups.join(pred_groups, on=keys, how="inner")
    for gt_rows, pred_rows in zip(pairs["gt_rows"].to_list(), pairs["pred_rows"].to_list()):
        yield np.sort(np.asarray(gt_rows, dtype=np.int64)), np.sort(np.asarray(pred_rows, dtype=np.int64))


def _match_official(passes: np.ndarray) -> np.ndarray:
    """For each ground truth row, the first prediction column that passes (-1 if none)."""
    first = passes.argmax(axis=1)
    return np.where(passes.any(axis=1), first, -1)


def _match_greedy(ratio: np.ndarray, threshold: float, rank: np.ndarray) -> np.ndarray:
    """One-to-one: predictions by rank each take the best still-unmatched ground truth."""
    match = np.full(ratio.shape[0], -1, dtype=np.int64)
    candidates = ratio > threshold
    columns = np.flatnonzero(candidates.any(axis=0))
    for p in columns[np.argsort(rank[columns], kind="stable")]:
        free = candidates[:, p] & (match < 0)
        if free.any():
            match[np.argmax(np.where(free, ratio[:, p], -np.inf))] = p
    return match


def detection_metrics(gt: pl.DataFrame, pred: pl.DataFrame, *, num_classes: int, iou_threshold: float = 0.3) -> dict:
    """Precision, recall and F1 pooled over all sequences, in both match modes, plus per class.

    Per mode: precision = found / predictions, recall = found / ground truth, where `found`
    counts ground-truth instances found. In `official` mode one prediction may find several
    ground truths, so precision can exceed 1, exactly as in the organisers' code.
    """
    gt = validate_segments(gt, "ground truth", num_classes=num_classes)
    pred = validate_detections(pred, "predictions", num_classes=num_classes)
    result: dict = {"iou_threshold": float(iou_threshold), "num_classes": int(num_classes)}
    gt_labels, pred_labels = gt["label"].to_numpy(), pred["label"].to_numpy()
    for mode in MATCH_MODES:
        found = match_detections(gt, pred, iou_threshold=iou_threshold, mode=mode).gt_match >= 0
        per_class = {
            str(c): _prf(int(found[gt_labels == c].sum()), int((pred_labels == c).sum()), int((gt_labels == c).sum()))
            for c in range(num_classes)
        }
        present = [v["f1"] for v in per_class.values() if v["num_gt"] > 0]
        result[mode] = {
            **_prf(int(found.sum()), pred.height, gt.height),
            "macro_f1": float(np.mean(present)) if present else None,
            "recall_by_length": recall_by_length(gt_lengths(gt), found),
            "per_class": per_class,
        }
    return result


LENGTH_BUCKETS = (0, 20, 40, 80)  # frames: [0, 20), [20, 40), [40, 80), [80, inf); real SMG gestures: median 44, 10% under 20


def gt_lengths(gt: pl.DataFrame) -> np.ndarray:
    """Frames per ground-truth instance (ends are inclusive)."""
    return (gt["end_frame"] - gt["start_frame"] + 1).to_numpy()


def recall_by_length(lengths: np.ndarray, found: np.ndarray, buckets: Sequence[int] = LENGTH_BUCKETS) -> dict[str, dict]:
    """Recall of the ground-truth instances in each length bucket (`"20-39"`, `"80+"`): are short gestures lost?"""
    edges = [*buckets, None]
    out = {}
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (lengths >= low) & (lengths < high) if high is not None else lengths >= low
        name = f"{low}-{high - 1}" if high is not None else f"{low}+"
        count = int(inside.sum())
        out[name] = {"num_gt": count, "found": int(found[inside].sum()), "recall": float(found[inside].mean()) if count else None}
    return out


def _prf(found: int, num_pred: int, num_gt: int) -> dict:
    # The organisers add 1e-7 to the F1 denominator; we return 0 when P + R is 0 instead.
    precision = found / num_pred if num_pred else 0.0
    recall = found / num_gt if num_gt else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "found": found, "num_pred": num_pred, "num_gt": num_gt}


def instance_f1(predictions: Mapping[str, Sequence[tuple]], truth: Mapping[str, Sequence[tuple]], *, iou: float = 0.3) -> dict:
    """Official Track 2 precision / recall / F1 (`match_detections`, official mode) of plain tuples:
    predictions `{sample_id: [(start, end, label, score), ...]}` against truth `{sample_id: [(start, end, label), ...]}`;
    also the counts `found`, `predictions`, `truth`."""
    pred = pl.DataFrame([(sid, int(p[2]), int(p[0]), int(p[1]), float(p[3]) if len(p) > 3 else None)
                         for sid, rows in predictions.items() for p in rows], schema=DETECTIONS_SCHEMA, orient="row")
    gt = pl.DataFrame([(sid, int(t[2]), int(t[0]), int(t[1])) for sid, rows in truth.items() for t in rows],
                      schema=SEGMENTS_SCHEMA, orient="row")
    found = match_detections(gt, pred, iou_threshold=iou, mode="official").found
    precision = found / pred.height if pred.height else 0.0
    recall = found / gt.height if gt.height else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "found": found, "predictions": pred.height, "truth": gt.height}


def below_baseline_note(metric: str, value: float, baselines: Mapping[str, float | None], where: str) -> str | None:
    """A sentence when a simple baseline beats the reported figure (the metrics file and the stage say it), else None."""
    better = {name: v for name, v in baselines.items() if v is not None and v > value + 1e-12}
    if not better:
        return None
    listed = ", ".join(f"{name} {v:.3f}" for name, v in sorted(better.items(), key=lambda item: -item[1]))
    return f"on {where} the model's {metric} ({value:.3f}) is below a simple baseline's ({listed}): report the baseline beside it"

