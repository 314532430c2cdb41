"""The emotion stage's figures: MG rates of the two states per class, and the model's evidence for a few videos."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from miga.io import atomic_path  # noqa: E402

SHOWN_VIDEOS = 6
SHOWN_FEATURES = 8


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def rates_figure(names: Sequence[str], win: np.ndarray, lose: np.ndarray, path: Path) -> None:
    """Horizontal bars: each class's mean MGs per minute in won and in lost matches, most frequent classes on top."""
    order = np.argsort(-(win + lose))[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(names) + 1.2))
    y = np.arange(len(order))
    ax.barh(y + 0.2, win[order], height=0.4, color="tab:green", label="win")
    ax.barh(y - 0.2, lose[order], height=0.4, color="tab:red", label="lose")
    ax.set(yticks=y, xlabel="MGs per minute (mean over training videos)", title="MG rates after won and lost matches")
    ax.set_yticklabels([names[c] for c in order], fontsize=7)
    ax.legend(loc="lower right", frameon=False)
    _save(fig, path)


def evidence_figure(videos: Sequence[str], splits: Sequence[str], p_win: np.ndarray, groups: Sequence[str], contribution: np.ndarray,
                    path: Path) -> None:
    """For the first videos, the feature groups that moved the log-odds of win most (green: towards win, red: towards lose)."""
    shown = min(len(videos), SHOWN_VIDEOS)
    columns = min(shown, 3) or 1
    rows = max(1, -(-shown // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 2.6 * rows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= shown:
            ax.axis("off")
            continue
        top = np.argsort(-np.abs(contribution[k]))[:SHOWN_FEATURES][::-1]
        values = contribution[k, top]
        ax.barh(np.arange(len(top)), values, color=np.where(values >= 0, "tab:green", "tab:red"))
        ax.axvline(0, color="black", linewidth=0.5)
        ax.set_yticks(np.arange(len(top)))
        ax.set_yticklabels([groups[j] for j in top], fontsize=6)
        ax.set_title(f"{videos[k]} ({splits[k]}): P(win) {p_win[k]:.2f}", fontsize=8)
        ax.tick_params(axis="x", labelsize=6)
    fig.supxlabel("change in log-odds of win (feature vs the training mean)", fontsize=8)
    _save(fig, path)
