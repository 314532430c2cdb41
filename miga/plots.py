"""Figures: Track 2 timelines (ground truth above, predictions below, coloured by class)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from miga.io import atomic_path  # noqa: E402


def timeline(truth: pl.DataFrame, predicted: pl.DataFrame, *, num_frames: int, class_names: Sequence[str], title: str, path: Path) -> None:
    """Draw one sequence's ground-truth and predicted segments as two rows of coloured bars (PNG)."""
    colours = plt.get_cmap("tab20", max(len(class_names), 1))
    fig, ax = plt.subplots(figsize=(12, 2.2))
    for row, frame in ((1, truth), (0, predicted)):
        for label, start, end in frame.select("label", "start_frame", "end_frame").iter_rows():
            ax.broken_barh([(start, end - start + 1)], (row + 0.1, 0.8), color=colours(label))
    used = sorted(set(truth["label"].to_list()) | set(predicted["label"].to_list()))
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(c)) for c in used]
    ax.legend(handles, [f"{c}: {class_names[c]}" for c in used], loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    ax.set(xlim=(0, num_frames), ylim=(0, 2), yticks=[0.5, 1.5], yticklabels=["predicted", "ground truth"], xlabel="frame", title=title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
