"""Scoring a submission file against ground truth: the checks `miga submission check` runs, then the track's metric.

A file the checker accepts is always scored; a file it rejects is never scored (it would credit or blame rows silently).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from miga.evaluation.metrics import classification_metrics, detection_metrics
from miga.evaluation.submission import SubmissionError, check_track1, check_track2, read_track1, read_track2


def refuse_invalid(path: Path, problems: list[str]) -> None:
    if problems:
        raise SubmissionError(f"{path}: not scored, {len(problems)} problems (see `miga submission check`): {problems[0]}")


def score_track1(path: Path, test: pl.DataFrame, num_classes: int) -> dict:
    """Top-1 of a Track 1 file over the labelled test clips of `test` (manifest rows of the test split)."""
    refuse_invalid(path, check_track1(path, test, num_classes))
    labelled = test.drop_nulls("label")
    if labelled.is_empty():
        raise SubmissionError(f"{path}: the test split has no labels to score against (set datasets.<name>.test_truth)")
    submitted = read_track1(path).join(labelled.select(pl.col("sample_id").alias("Id"), "label"), on="Id", how="right")
    onehot = (submitted["Target"].to_numpy()[:, None] == np.arange(num_classes)).astype(float)
    return classification_metrics(submitted["label"].to_numpy(), onehot) | {"num_clips": labelled.height}


def score_track2(path: Path, test: pl.DataFrame, segments: pl.DataFrame, num_classes: int, *, class_base: int,
                 iou_threshold: float) -> dict:
    """Instance F1 (official and one-to-one) of a Track 2 file over the test sequences of `test`; the file's sequence
    numbers map back to the manifest's own ids (any dataset, not only SMG's `SampleNNNN`)."""
    refuse_invalid(path, check_track2(path, test, num_classes, class_base))
    ids = test["sample_id"].to_list()
    submitted = read_track2(path, class_base, sample_ids=ids)
    truth = segments.filter(pl.col("sample_id").is_in(ids))
    return detection_metrics(truth, submitted, num_classes=num_classes, iou_threshold=iou_threshold) | {"num_sequences": len(ids)}
