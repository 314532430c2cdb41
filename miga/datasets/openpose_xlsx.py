"""iMiGUE `{vid}_openpose.xlsx`: one row per frame, 137 OpenPose points x (x, y, c) = 411 columns, no header.

Point order (layout `openpose137`): OpenPose's JSON order, BODY_25 (0-24), face 70 (25-94), left
hand 21 (95-115), right hand 21 (116-136); `miga.layouts` gives the evidence (a reader of the real
workbooks takes mouth points at 73-82 and fingertips at 99-115 / 120-136; no real workbook has been
seen here). So a row holds one frame's JSON lists `pose_keypoints_2d + face_keypoints_2d +
hand_left_keypoints_2d + hand_right_keypoints_2d` end to end (`miga.datasets.openpose_json` reads
the JSON). Read with polars over calamine (fastexcel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from miga.datasets.csvtable import DatasetFormatError
from miga.layouts import OPENPOSE137

COLUMNS = OPENPOSE137.num_joints * 3


def read_openpose_xlsx(path: Path, num_frames: int | None = None) -> np.ndarray:
    """float32 (T, 137, 3), frame = row index; failed frames (all zero or empty) score 0; T = num_frames if given."""
    path = Path(path)
    if not path.exists():
        raise DatasetFormatError(f"{path}: file not found (iMiGUE OpenPose workbook, 411 columns)")
    try:
        frame = pl.read_excel(path, engine="calamine", has_header=False)
    except Exception as err:  # calamine raises its own exception types for damaged workbooks
        raise DatasetFormatError(f"{path}: not a readable .xlsx workbook ({type(err).__name__}: {err})") from None
    if frame.width != COLUMNS:
        raise DatasetFormatError(f"{path}: {frame.width} columns, expected {COLUMNS} (137 OpenPose points x (x, y, c))")
    try:
        table = frame.select(pl.all().cast(pl.Float64, strict=True)).to_numpy()
    except pl.exceptions.InvalidOperationError as err:
        raise DatasetFormatError(f"{path}: a cell is not a number ({err})") from None
    points = np.nan_to_num(table).reshape(len(table), OPENPOSE137.num_joints, 3).astype(np.float32)
    length = len(points) if num_frames is None else num_frames
    out = np.zeros((length, OPENPOSE137.num_joints, 3), np.float32)
    out[: min(length, len(points))] = points[:length]
    return out


def write_openpose_xlsx(path: Path, keypoints: np.ndarray) -> None:
    """(T, 137, 3) -> a headerless workbook in the release's format (tests, synthetic presets)."""
    import xlsxwriter  # only where workbooks are written

    flat = np.asarray(keypoints, np.float64).reshape(len(keypoints), -1)
    workbook = xlsxwriter.Workbook(str(path))
    sheet = workbook.add_worksheet()
    for row, values in enumerate(flat):
        sheet.write_row(row, 0, values.tolist())
    workbook.close()
