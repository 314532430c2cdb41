"""Per-epoch curves through dvclive (rendered by `dvc plots show`)."""

from __future__ import annotations

import os

from dvclive import Live


class EpochLogger:
    """Writes a training history (list of per-epoch dicts) as dvclive step metrics under `directory`."""

    def __init__(self, directory: str):
        self.directory = directory
        self.live: Live | None = None

    def __enter__(self) -> "EpochLogger":
        if os.environ.get("RANK", "0") == "0":  # under torchrun rank 0 alone writes the curves
            self.live = Live(dir=self.directory, dvcyaml=None, save_dvc_exp=False, report=None)
        return self

    def log_history(self, history: list[dict], prefix: str = "") -> None:
        """One step per epoch; `prefix` puts each model's curves in its own folder (pose/loss.tsv, rgb/loss.tsv)."""
        if self.live is None:
            return
        for step, stats in enumerate(history):
            self.live.step = step
            for name, value in stats.items():
                if name != "epoch" and isinstance(value, (int, float)):
                    self.live.log_metric(f"{prefix}{name}", float(value))
            self.live.make_summary()

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.end()
