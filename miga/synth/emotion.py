"""The synthetic videos' hidden emotion (won or lost match): drawn from what each video's MGs show, as the real table relates them.

The generators plan every video's clips first and never look at an emotion, so the emotion cannot steer the clips
without changing every generated file. Instead each video's state is drawn afterwards, from its own random stream,
with the probability the real table gives a won match for such a sequence: log-odds of win = the sum over its clips
of each class's log ratio (share in won matches over share in lost ones) + the standardised shift of its MG rate and
its MG count, centred over the release. Videos labelled win then show, to first order, the class mix and rates that
won matches show in the real table, while every other file stays byte-identical.

The numbers are facts measured on `shared/realdata/imigue_real/labels_dev.csv` (the iMiGUE label table: 259 videos,
208 won / 51 lost matches, 13,617 clips; the 100 emotion-test videos are not in it), embedded as
`miga.synth.frequencies` embeds its counts:
- clips per 0-based class (raw 1..31 -> 0..30, raw 99 -> 31) over the videos of each state;
- per video, log(MGs per minute) (clips over the last clip's end time in minutes) and log(clips): the difference of
  the won and lost means in pooled standard deviations (Cohen's d). Lost-match interviews are shorter: fewer clips
  (d = 0.30); their MG rate is almost the same (d = 0.09).
A class's log ratio comes from the counts with `SMOOTHING` pseudo-clips spread as the pooled class mix over each state
(rare classes stay close to no evidence). The synthetic videos hold far fewer clips than real interviews (10-14 against
~53), so each carries less evidence than a real one: the synthetic emotion is as hard to read per clip as the real one,
harder per video. SMG has no emotion table: its sequences' states use the rate and count shifts only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from miga.io import write_text

# Clips per 0-based iMiGUE class in the videos of won (208) and lost (51) matches of labels_dev.csv.
IMIGUE_WIN_COUNTS = (
    6, 305, 37, 170, 55, 17, 59, 641, 66, 2, 260, 111, 99, 31, 28, 24,
    286, 76, 1, 760, 136, 319, 696, 615, 10, 235, 70, 21, 928, 6, 1898, 3472,
)
IMIGUE_LOSE_COUNTS = (
    4, 87, 6, 32, 8, 5, 14, 178, 28, 1, 48, 22, 12, 19, 8, 3,
    30, 17, 0, 127, 25, 64, 57, 98, 6, 51, 3, 53, 221, 0, 351, 599,
)
D_LOG_RATE = 0.089  # won minus lost mean of log(MGs per minute), in pooled standard deviations (0.61)
D_LOG_COUNT = 0.301  # won minus lost mean of log(clips per video), in pooled standard deviations (0.87)
SMOOTHING = 100.0  # pseudo-clips per state, spread as the pooled class mix
FILE = "video_emotions.csv"


def class_log_ratios(win: Sequence[float] = IMIGUE_WIN_COUNTS, lose: Sequence[float] = IMIGUE_LOSE_COUNTS,
                     smoothing: float = SMOOTHING) -> np.ndarray:
    """log(share of a class among won-match clips / its share among lost-match clips), smoothed towards 0."""
    win, lose = np.asarray(win, np.float64), np.asarray(lose, np.float64)
    pooled = (win + lose) / (win + lose).sum()
    p_win = (win + smoothing * pooled) / (win.sum() + smoothing)
    p_lose = (lose + smoothing * pooled) / (lose.sum() + smoothing)
    return np.log(p_win / p_lose)


def _z(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def win_log_odds(classes: Sequence[Sequence[int]], minutes: Sequence[float], *, log_ratios: np.ndarray | None) -> np.ndarray:
    """Each video's log-odds of a won match, centred over the videos: class evidence (when `log_ratios`) + rate and count shifts."""
    counts = np.array([max(len(c), 1) for c in classes], np.float64)
    rate = counts / np.maximum(np.asarray(minutes, np.float64), 1e-9)
    score = D_LOG_RATE * _z(np.log(rate)) + D_LOG_COUNT * _z(np.log(counts))
    if log_ratios is not None:
        score = score + np.array([log_ratios[np.asarray(c, np.int64)].sum() for c in classes])
    return score - score.mean()


def draw_emotions(rng: np.random.Generator, names: Sequence[str], classes: Sequence[Sequence[int]], minutes: Sequence[float], *,
                  log_ratios: np.ndarray | None) -> dict[str, str]:
    """{video: win | lose}, each drawn with P(win) = sigmoid(its log-odds)."""
    p_win = 1.0 / (1.0 + np.exp(-win_log_odds(classes, minutes, log_ratios=log_ratios)))
    drawn = rng.random(len(names)) < p_win
    return {name: "win" if won else "lose" for name, won in zip(names, drawn)}


def write_emotions(root: Path, emotions: dict[str, str]) -> None:
    """`<root>/video_emotions.csv` (header video,emotion), sorted by video."""
    lines = ["video,emotion"] + [f"{video},{emotions[video]}" for video in sorted(emotions)]
    write_text("\n".join(lines) + "\n", Path(root) / FILE)
