"""Per-epoch curves through dvclive (rendered by `dvc plots show`)."""

from __future__ import annotations

from dvclive import Live


class EpochLogger:
    """Writes a training history (list of per-epoch dicts) as dvclive step metrics under `directory`."""

    def __init__(self, directory: str):
        self.directory = directory
        self.live: Live | None = None

    def __enter__(self) -> "EpochLogger":
        self.live = Live(dir=self.directory, dvcyaml=None, save_dvc_exp=False, report=None)
        return self

    def log_history(self, history: list[dict]) -> None:
        assert self.live is not None
        for stats in history:
            for name, value in stats.items():
                if name != "epoch" and isinstance(value, (int, float)):
                    self.live.log_metric(name, float(value))
            self.live.next_step()

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.end()
