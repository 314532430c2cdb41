"""The data contracts between stages (docs/design.md section 2), validated where they are read.

Tables are polars DataFrames. Each `validate_*` returns the frame with canonical dtypes and
column order, or raises `ContractError` naming the source and the problem.
"""

from __future__ import annotations

import re

import polars as pl


class ContractError(ValueError):
    """A table or file does not meet its data contract."""


MANIFEST_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String,
    "dataset": pl.String,
    "split": pl.String,
    "subject": pl.Int64,
    "video": pl.String,  # relative to the dataset root (or absolute), null when there is none
    "video_start": pl.Int64,  # the sample-timeline frame at which that video file begins (pre-cut clips: start_frame)
    "start_frame": pl.Int64,
    "end_frame": pl.Int64,
    "label": pl.Int64,
    "fps": pl.Float64,
    "width": pl.Int64,
    "height": pl.Int64,
}
SEGMENTS_SCHEMA: dict[str, pl.DataType] = {
    "sample_id": pl.String,
    "label": pl.Int64,
    "start_frame": pl.Int64,
    "end_frame": pl.Int64,
}
DETECTIONS_SCHEMA: dict[str, pl.DataType] = {**SEGMENTS_SCHEMA, "score": pl.Float64}
SPLITS = ("train", "val", "test")


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def check_sample_id(sample_id: object, source: str) -> str:
    """A sample id names files (`<id>.csv`, `<id>.png`), so it must be a plain name: letters, digits, `_ . + -`,
    not starting with a dot, no `..`, no path separator; otherwise a ContractError naming `source`."""
    text = str(sample_id)
    _require(isinstance(sample_id, str) and bool(_PLAIN_NAME.fullmatch(text)) and ".." not in text, source,
             f"sample id {text!r} is not a plain name (letters, digits, _ . + -; no path separators or '..')")
    return text


def _check_sample_ids(frame: pl.DataFrame, source: str) -> None:
    for sample_id in frame["sample_id"].drop_nulls().unique().to_list():
        check_sample_id(sample_id, source)


def _conform(frame: pl.DataFrame, schema: dict[str, pl.DataType], source: str) -> pl.DataFrame:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise ContractError(f"{source}: missing columns {missing}")
    try:
        return frame.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as err:
        raise ContractError(f"{source}: column types do not match the contract: {err}") from err


def _require(ok: bool, source: str, problem: str) -> None:
    if not ok:
        raise ContractError(f"{source}: {problem}")


def _frames_ordered(frame: pl.DataFrame, source: str) -> None:
    bad = frame.filter((pl.col("start_frame") < 0) | (pl.col("end_frame") < pl.col("start_frame")))
    _require(bad.is_empty(), source, f"start_frame must be >= 0 and <= end_frame; first bad row: {bad.head(1).to_dicts()}")


def validate_manifest(frame: pl.DataFrame, source: str = "manifest", num_classes: int | None = None) -> pl.DataFrame:
    if "video_start" not in frame.columns:  # manifests written before pre-cut videos were read
        frame = frame.with_columns(pl.lit(0, pl.Int64).alias("video_start"))
    frame = _conform(frame, MANIFEST_SCHEMA, source)
    _require(frame["sample_id"].null_count() == 0, source, "sample_id has nulls")
    _require(frame["sample_id"].n_unique() == frame.height, source, "sample_id is not unique")
    _check_sample_ids(frame, source)
    bad_split = frame.filter(~pl.col("split").is_in(SPLITS))
    _require(bad_split.is_empty(), source, f"split must be one of {SPLITS}; got {bad_split['split'].unique().to_list()}")
    _frames_ordered(frame, source)
    if num_classes is not None:
        _check_labels(frame.drop_nulls("label"), source, num_classes)
    return frame


def validate_segments(frame: pl.DataFrame, source: str = "segments", num_classes: int | None = None) -> pl.DataFrame:
    frame = _conform(frame, SEGMENTS_SCHEMA, source)
    _require(frame.null_count().sum_horizontal().item() == 0, source, "segments may not contain nulls")
    _check_sample_ids(frame, source)
    _frames_ordered(frame, source)
    if num_classes is not None:
        _check_labels(frame, source, num_classes)
    return frame


def validate_detections(frame: pl.DataFrame, source: str = "detections", num_classes: int | None = None) -> pl.DataFrame:
    frame = _conform(frame, DETECTIONS_SCHEMA, source)
    _check_sample_ids(frame, source)
    _frames_ordered(frame, source)
    if num_classes is not None:
        _check_labels(frame, source, num_classes)
    return frame


def _check_labels(frame: pl.DataFrame, source: str, num_classes: int) -> None:
    bad = frame.filter((pl.col("label") < 0) | (pl.col("label") >= num_classes))
    _require(bad.is_empty(), source, f"label out of range 0..{num_classes - 1}; first bad row: {bad.head(1).to_dicts()}")


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)
