"""A generic segment-annotated skeleton stream format, so any continuous dataset can feed Track 2.

    <root>/dataset.yaml       layout: <joint layout name>, fps: <float>, classes: [name, ...]
    <root>/samples.csv        sample_id,subject,split          (split: train | val | test)
    <root>/segments.csv       sample_id,label,start_frame,end_frame   (0-based label, inclusive frames)
    <root>/<sample_id>.csv    frame,<joint>_x,<joint>_y,<joint>_score,...  (one row per frame index;
                              missing frames are untracked)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from miga.contracts import MANIFEST_SCHEMA, SEGMENTS_SCHEMA, check_sample_id, validate_manifest, validate_segments
from miga.datasets.csvtable import DatasetFormatError, read_numeric_csv
from miga.io import atomic_path
from miga.layouts import get_layout

DATASET = "stream"


def read_meta(root: Path) -> dict:
    path = Path(root) / "dataset.yaml"
    if not path.exists():
        raise DatasetFormatError(f"{path}: file not found (stream datasets need layout, fps and classes)")
    meta = yaml.safe_load(path.read_text()) or {}
    missing = {"layout", "fps", "classes"} - set(meta)
    if missing:
        raise DatasetFormatError(f"{path}: missing keys {sorted(missing)}")
    get_layout(meta["layout"])
    return meta


def class_names(root: Path, entry: Mapping | None = None) -> list[str]:
    return list(read_meta(root)["classes"])


def joint_columns(layout: str) -> list[str]:
    return ["frame"] + [f"{joint}_{c}" for joint in get_layout(layout).joints for c in ("x", "y", "score")]


def read_sequence(path: Path, layout: str) -> np.ndarray:
    """`<sample_id>.csv` -> float32 (1, T, V, 3), T = last frame + 1."""
    spec = get_layout(layout)
    table = read_numeric_csv(path, columns=1 + 3 * spec.num_joints, what=f"stream sequence: frame + {spec.num_joints} x (x, y, score)")
    frames = table[:, 0].astype(np.int64)
    out = np.zeros((int(frames.max()) + 1 if frames.size else 0, spec.num_joints, 3), np.float32)
    out[frames] = np.nan_to_num(table[:, 1:]).reshape(-1, spec.num_joints, 3)
    return out[None]


def scan(root: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    root = Path(root)
    meta = read_meta(root)
    samples = pl.read_csv(root / "samples.csv", schema_overrides={"sample_id": pl.String})
    manifest_rows = []
    for sample_id, subject, split in samples.select("sample_id", "subject", "split").iter_rows():
        check_sample_id(sample_id, str(root / "samples.csv"))
        length = read_sequence(root / f"{sample_id}.csv", meta["layout"]).shape[1]
        manifest_rows.append({
            "sample_id": sample_id, "dataset": DATASET, "split": split, "subject": subject, "video": None,
            "start_frame": 0, "end_frame": length - 1, "label": None, "fps": float(meta["fps"]), "width": None, "height": None,
        })
    manifest = validate_manifest(pl.DataFrame(manifest_rows, schema=MANIFEST_SCHEMA), f"{root} (stream manifest)")
    segments = validate_segments(pl.read_csv(root / "segments.csv", schema=SEGMENTS_SCHEMA), str(root / "segments.csv"), len(meta["classes"]))
    ends = segments.join(manifest.select("sample_id", pl.col("end_frame").alias("last")), on="sample_id", how="left")
    bad = ends.filter(pl.col("last").is_null() | (pl.col("end_frame") > pl.col("last")))
    if not bad.is_empty():
        raise DatasetFormatError(f"{root / 'segments.csv'}: segment outside its sequence or unknown sample: {bad.head(1).to_dicts()}")
    return manifest, segments


def scan_release(root: Path, options: dict, entry: Mapping | None = None, *, require_video: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    if require_video:
        raise DatasetFormatError(f"{root}: a stream dataset has no videos; its pose must be `provided` (datasets.<name>.pose)")
    return scan(root)


def layout_of(root: Path, entry: Mapping | None = None) -> str:
    return read_meta(root)["layout"]


def provided_keypoints(root: Path, manifest: pl.DataFrame, entry: Mapping | None = None) -> dict[str, tuple[int, np.ndarray]]:
    layout = layout_of(root)
    return {sid: (0, read_sequence(Path(root) / f"{check_sample_id(sid, 'manifest')}.csv", layout)) for sid in manifest["sample_id"]}


def write(root: Path, *, layout: str, fps: float, classes: Sequence[str], sequences: Mapping[str, np.ndarray],
          samples: pl.DataFrame, segments: pl.DataFrame) -> None:
    """Write a dataset in this format; `sequences` maps sample_id -> (T, V, 3) (frame = row index)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / "dataset.yaml") as tmp:
        tmp.write_text(yaml.safe_dump({"layout": layout, "fps": float(fps), "classes": list(classes)}, sort_keys=False))
    for sample_id, array in sequences.items():
        frame = np.arange(len(array), dtype=np.float64)[:, None]
        table = np.concatenate([frame, array.reshape(len(array), -1)], axis=1)
        with atomic_path(root / f"{sample_id}.csv") as tmp:
            header = ",".join(joint_columns(layout))
            np.savetxt(tmp, table, delimiter=",", header=header, comments="", fmt="%.6g")
    with atomic_path(root / "samples.csv") as tmp:
        samples.select("sample_id", "subject", "split").write_csv(tmp)
    with atomic_path(root / "segments.csv") as tmp:
        segments.select(*SEGMENTS_SCHEMA).write_csv(tmp)
