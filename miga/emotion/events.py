"""Each video's micro-gesture sequence from one source, with its emotion label: the emotion stage's input table.

Sources (`emotion.source`):
- `labels`: iMiGUE's ground-truth clips (the manifest): needs only the label files.
- `track1`: iMiGUE's clips with Track 1's predicted class (`data/predictions/track1_scores.parquet`: its argmax, the
  probability as the score) for the videos Track 1 scored (val and test).
- `track2`: the Track 2 dataset's long sequences (one "video" each) with Track 2's detections
  (`data/predictions/track2_detections.parquet`) for the sequences it detected on (val and test).
Training videos always carry their ground-truth events (the tracks' models trained on them; their own predictions
there would be no test of anything), so a predicted source changes what the model is evaluated on, not what it
learns from. A video whose classes are unknown (an unlabelled test split with `labels`) keeps its row with null events.

One row per video: `video, dataset, split, subject, fps, frames` (the video's length: its last labelled frame + 1 for
iMiGUE clips, the sequence's length for long sequences), `emotion` (win / lose / null), `events_from` (labels, track1
or track2), `class_names` (the dataset's), `non_mg` (the non-MG class, null where the dataset has none) and the events as lists sorted
by start: `classes` (0-based), `starts`, `ends`, `scores`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from miga.contracts import ContractError

SOURCES = ("labels", "track1", "track2")
SCHEMA: dict[str, pl.DataType] = {
    "video": pl.String, "dataset": pl.String, "split": pl.String, "subject": pl.Int64, "fps": pl.Float64, "frames": pl.Int64,
    "emotion": pl.String, "events_from": pl.String, "class_names": pl.List(pl.String), "non_mg": pl.Int64,
    "classes": pl.List(pl.Int64), "starts": pl.List(pl.Int64), "ends": pl.List(pl.Int64), "scores": pl.List(pl.Float64),
}


def _video_of(sample_id: str) -> str:
    return sample_id.split("_")[0]


def manifest_videos(manifest: pl.DataFrame, clips: bool) -> set[str]:
    """The videos of a manifest: the `{video}` of its clip ids (`clips`), else its sample ids (one sequence each)."""
    ids = manifest["sample_id"].to_list()
    return {_video_of(sid) for sid in ids} if clips else set(ids)


def _one(values: list, what: str, video: str, source: str):
    distinct = sorted(set(values), key=str)
    if len(distinct) != 1:
        raise ContractError(f"{source}: the clips of video {video} disagree on {what}: {distinct[:3]}")
    return distinct[0]


def clip_videos(manifest: pl.DataFrame, emotions: Mapping[str, str], *, class_names: list[str], non_mg: int | None,
                predicted: Mapping[str, tuple[int, float]] | None = None, source: str = "labels",
                manifest_name: str = "manifest") -> pl.DataFrame:
    """Videos of a clip manifest (iMiGUE: sample id `{video}_{k}`), events = the clips.

    `predicted` {sample_id: (class, score)} replaces the clips' classes in the val and test videos (`track1`); every
    clip of those videos must have one."""
    rows = []
    clips = manifest.with_columns(pl.col("sample_id").map_elements(_video_of, return_dtype=pl.String).alias("_video"))
    for (video,), group in clips.sort("_video", "start_frame", "end_frame").group_by(["_video"], maintain_order=True):
        split = _one(group["split"].to_list(), "the split", video, manifest_name)
        subject = _one(group["subject"].to_list(), "the subject", video, manifest_name)
        fps = float(group["fps"].drop_nulls().first() or 25.0)
        starts, ends = group["start_frame"].to_list(), group["end_frame"].to_list()
        events_from = source if predicted is not None and split != "train" else "labels"
        if events_from == "labels":
            labels = group["label"].to_list()
            classes = None if any(label is None for label in labels) else labels
            scores = None if classes is None else [1.0] * len(classes)
        else:
            missing = [sid for sid in group["sample_id"].to_list() if sid not in predicted]
            if missing:
                raise ContractError(f"{source}: no prediction for clip {missing[0]} of {split} video {video} "
                                    f"({len(missing)} clips of it missing; rerun the {source} prediction)")
            classes = [predicted[sid][0] for sid in group["sample_id"].to_list()]
            scores = [predicted[sid][1] for sid in group["sample_id"].to_list()]
        rows.append(_row(video, str(group["dataset"].first()), split, subject, fps, int(max(ends)) + 1, emotions.get(video),
                         events_from, class_names, non_mg, classes, starts, ends, scores))
    return _frame(rows, emotions, manifest_name)


def sequence_videos(manifest: pl.DataFrame, segments: pl.DataFrame, emotions: Mapping[str, str], *, class_names: list[str],
                    detections: pl.DataFrame | None = None, source: str = "labels", manifest_name: str = "manifest") -> pl.DataFrame:
    """Videos of a long-sequence manifest (one row per sequence): events = the ground-truth segments in train (and, without
    `detections`, everywhere), `detections` (sample_id, label, start_frame, end_frame, score) in val and test."""
    truth = {sid: g for (sid,), g in segments.group_by(["sample_id"])}
    found = {sid: g for (sid,), g in detections.group_by(["sample_id"])} if detections is not None else {}
    rows = []
    for row in manifest.sort("sample_id").iter_rows(named=True):
        sid, split = row["sample_id"], row["split"]
        predicted = detections is not None and split != "train"
        events = found.get(sid) if predicted else truth.get(sid)
        if events is None:
            events = pl.DataFrame(schema={"label": pl.Int64, "start_frame": pl.Int64, "end_frame": pl.Int64, "score": pl.Float64})
        events = events.sort("start_frame", "end_frame")
        scores = events["score"].to_list() if "score" in events.columns else [1.0] * events.height
        rows.append(_row(sid, row["dataset"], split, row["subject"], float(row["fps"] or 30.0), int(row["end_frame"]) + 1,
                         emotions.get(sid), source if predicted else "labels", class_names, None, events["label"].to_list(),
                         events["start_frame"].to_list(), events["end_frame"].to_list(), scores))
    return _frame(rows, emotions, manifest_name)


def track1_predictions(scores: pl.DataFrame, source: str, num_classes: int) -> dict[str, tuple[int, float]]:
    """{sample_id: (argmax class, its probability)} of Track 1's score table (columns sample_id and scores)."""
    if "sample_id" not in scores.columns or "scores" not in scores.columns:
        raise ContractError(f"{source}: needs columns sample_id and scores (has {scores.columns})")
    try:
        values = np.array(scores["scores"].to_list(), dtype=np.float64)
    except (ValueError, TypeError):
        raise ContractError(f"{source}: column scores is not a list of class scores per clip") from None
    if values.ndim != 2 or values.shape[1] != num_classes or not np.isfinite(values).all():
        raise ContractError(f"{source}: column scores must hold {num_classes} finite class scores per clip (got shape {values.shape})")
    best = values.argmax(1)
    return {sid: (int(c), float(values[i, c])) for i, (sid, c) in enumerate(zip(scores["sample_id"].to_list(), best))}


def _row(video, dataset, split, subject, fps, frames, emotion, events_from, class_names, non_mg, classes, starts, ends, scores) -> dict:
    return {"video": video, "dataset": dataset, "split": split, "subject": int(subject), "fps": fps, "frames": frames,
            "emotion": emotion, "events_from": events_from, "class_names": list(class_names), "non_mg": non_mg,
            "classes": classes, "starts": None if classes is None else starts, "ends": None if classes is None else ends,
            "scores": scores}


def _frame(rows: list[dict], emotions: Mapping[str, str], manifest_name: str) -> pl.DataFrame:
    table = pl.DataFrame(rows, schema=SCHEMA, orient="row") if rows else pl.DataFrame(schema=SCHEMA)
    unknown = sorted(set(emotions) - set(table["video"].to_list()))
    if unknown:
        raise ContractError(f"{len(unknown)} videos of video_emotions.csv are not in {manifest_name} (first: {unknown[0]})")
    return table


def validate_events(table: pl.DataFrame, source: str) -> pl.DataFrame:
    """The events table as written by the events stage, or a ContractError naming `source`."""
    missing = [c for c in SCHEMA if c not in table.columns]
    if missing:
        raise ContractError(f"{source}: missing columns {missing} (rerun the emotion events stage)")
    try:
        table = table.select([pl.col(c).cast(t, strict=True) for c, t in SCHEMA.items()])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as error:
        raise ContractError(f"{source}: column types do not match the events table: {' '.join(str(error).split())[:200]}") from None
    if table["video"].n_unique() != table.height:
        raise ContractError(f"{source}: a video appears twice")
    bad = table.filter(~pl.col("emotion").is_null() & ~pl.col("emotion").is_in(["win", "lose"]))
    if bad.height:
        raise ContractError(f"{source}: emotion of video {bad['video'][0]} is {bad['emotion'][0]!r}, not win or lose")
    if table.height and (table["class_names"].list.len().n_unique() != 1 or not table["class_names"].list.len().min()):
        raise ContractError(f"{source}: its videos disagree on the class names (or have none)")
    num_classes = int(table["class_names"].list.len().min() or 0)
    classes = table["classes"].explode().drop_nulls()
    if classes.len() and (classes.min() < 0 or classes.max() >= num_classes):
        raise ContractError(f"{source}: event classes must lie in 0..{num_classes - 1}")
    return table
