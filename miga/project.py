"""Where a miga project keeps its files (relative to the project folder, the working directory by default)."""

from __future__ import annotations

from pathlib import Path

INTERIM = Path("data/interim")
TRACK2_MODEL = Path("models/track2/model.pt")
TRACK2_CHECKPOINT = Path("checkpoints/track2/last.pt")
TRACK2_DETECTIONS = Path("data/predictions/track2_detections.parquet")
TRACK2_CANDIDATES = Path("data/predictions/track2_candidates.parquet")  # every candidate predict compared on val
TRACK2_TUNING = Path("metrics/track2_tuning.json")


def interim(dataset: str, project: Path = Path(".")) -> Path:
    """`data/interim/<dataset>`: the manifest, segments and keypoints of one dataset."""
    return Path(project) / INTERIM / dataset
