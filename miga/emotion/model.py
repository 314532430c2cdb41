"""The emotion models over per-video features, person-disjoint cross-validation, the baselines and the metrics.

Models (`emotion.model`): `logreg` (standardised L2 logistic regression over the bag of MGs and the timing features),
`gbdt` (scikit-learn's histogram gradient boosting over the timing features: on 102 real videos it generalised across
people where trees over the 65 sparse bag features did not), `blend` (the mean of the two models' P(win): the class
mix through the logistic regression, the timing through both), `auto` (whichever of the three has the best ROC AUC
in person-disjoint cross-validation on the training videos; inside cross-validation the choice is made again
in every fold, on that fold's training videos only). Baselines: `majority` (the training videos' more frequent state)
and `bag_logreg` (the same logistic regression over the bag of MGs alone: class shares, time shares, MGs per minute).
Every model weights the two states equally (`class_weight='balanced'`), so a fold's state mix does not decide its
predictions. The target is 1 = win; probabilities are P(win).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from miga.emotion.features import TIMING_NAMES
from miga.errors import ConfigError

MODEL_PARTS = {"logreg": ("bag", "timing"), "gbdt": ("timing",), "blend": ("bag", "timing")}
BASELINE_PARTS = {"majority": (), "bag_logreg": ("bag",)}
CANDIDATES = tuple(MODEL_PARTS)


@dataclass(frozen=True)
class Settings:
    """What a model needs from params (`emotion`): its hyper-parameters, the folds and the seed."""

    C: float
    depth: int
    learning_rate: float
    iterations: int
    min_leaf: int
    folds: int
    seed: int

    @classmethod
    def of(cls, emotion: Mapping) -> "Settings":
        gbdt = emotion["gbdt"]
        return cls(float(emotion["logreg"]["C"]), int(gbdt["depth"]), float(gbdt["learning_rate"]), int(gbdt["iterations"]),
                   int(gbdt["min_leaf"]), int(emotion["folds"]), int(emotion["seed"]))


class Constant:
    """P(win) = the training videos' share of wins: the majority baseline (and a fold whose training videos share one state)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Constant":
        self.p = float(np.mean(y)) if len(y) else 0.5
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.tile([1.0 - self.p, self.p], (len(x), 1))


class Blend:
    """The mean P(win) of `logreg` over every column and `gbdt` over the last `timing` columns (the timing part)."""

    def __init__(self, settings: Settings, timing: int):
        self.logreg, self.gbdt, self.timing = make("logreg", settings), make("gbdt", settings), timing

    def fit(self, x: np.ndarray, y: np.ndarray) -> "Blend":
        self.logreg.fit(x, y)
        self.gbdt.fit(x[:, -self.timing:], y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return (self.logreg.predict_proba(x) + self.gbdt.predict_proba(x[:, -self.timing:])) / 2


def make(name: str, settings: Settings):
    if name == "majority":
        return Constant()
    if name in ("logreg", "bag_logreg"):
        return make_pipeline(StandardScaler(), LogisticRegression(C=settings.C, class_weight="balanced", max_iter=5000))
    if name == "gbdt":
        return HistGradientBoostingClassifier(max_depth=settings.depth, learning_rate=settings.learning_rate, max_iter=settings.iterations,
                                              min_samples_leaf=settings.min_leaf, class_weight="balanced", random_state=settings.seed)
    if name == "blend":
        return Blend(settings, len(TIMING_NAMES))
    raise ConfigError(f"emotion.model: unknown model {name!r}; known: auto, {', '.join(CANDIDATES)}")


@dataclass
class Design:
    """The feature matrices of a set of videos by part (`bag`, `timing`), their targets (1 = win) and people.

    `scored` marks the videos cross-validation scores (default: all). The others only ever train: they join every
    training part whose held-out people they do not share (`emotion.train_splits`: the val videos)."""

    parts: Mapping[str, np.ndarray]
    y: np.ndarray
    groups: np.ndarray
    scored: np.ndarray | None = None

    def __post_init__(self):
        self.scored = np.ones(len(self.y), bool) if self.scored is None else np.asarray(self.scored, bool)

    def x(self, parts: Sequence[str], rows=slice(None)) -> np.ndarray:
        blocks = [self.parts[p][rows] for p in parts]
        return np.hstack(blocks) if blocks else np.zeros((len(self.y[rows]), 0))

    def subset(self, rows: np.ndarray) -> "Design":
        return Design({k: v[rows] for k, v in self.parts.items()}, self.y[rows], self.groups[rows], self.scored[rows])


@dataclass
class Fitted:
    """A fitted model: its name (the candidate `auto` chose), the parts it reads, the estimator."""

    name: str
    parts: tuple[str, ...]
    estimator: object

    def proba(self, design: Design, rows=slice(None)) -> np.ndarray:
        return self.estimator.predict_proba(design.x(self.parts, rows))[:, 1]


def fit(name: str, design: Design, settings: Settings) -> Fitted:
    """Fit `name` (a candidate, a baseline or `auto`) on every video of `design`."""
    if name == "auto":
        name = select(design, settings)[0]
    parts = MODEL_PARTS.get(name, BASELINE_PARTS.get(name))
    if parts is None:
        make(name, settings)  # the error naming the known models
    estimator = Constant() if np.unique(design.y).size < 2 and name != "majority" else make(name, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator.fit(design.x(parts), design.y)
    return Fitted(name, tuple(parts), estimator)


def person_folds(design: Design, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Person-disjoint folds over the scored videos (no person's videos on both sides), each state spread over the folds
    as evenly as the people allow. A fold trains on every video, scored or not, of a person it does not hold out."""
    scored = np.flatnonzero(design.scored)
    y, groups = design.y[scored], design.groups[scored]
    people = np.unique(groups).size
    k = min(folds, people)
    if k < 2:
        raise ConfigError(f"emotion: the training videos show {people} person(s); person-disjoint cross-validation needs 2 or more")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the least populated class has fewer members than n_splits"
        splits = list(StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(y, y, groups))
    return [(np.flatnonzero(~np.isin(design.groups, groups[test])), scored[test]) for _, test in splits]


def select(design: Design, settings: Settings) -> tuple[str, dict[str, float]]:
    """The candidate with the best person-disjoint CV ROC AUC on `design` (threshold-free, so steadier than accuracy on a
    few dozen videos; balanced accuracy where a fold set holds one state only). Ties: the first of CANDIDATES."""
    folds = person_folds(design, settings.folds, settings.seed)
    y = design.y[design.scored]
    both = np.unique(y).size == 2
    scores = {}
    for name in CANDIDATES:
        predicted = out_of_fold(name, design, folds, settings)[design.scored]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores[name] = float(roc_auc_score(y, predicted) if both else balanced_accuracy_score(y, predicted >= 0.5))
    return max(CANDIDATES, key=lambda n: scores[n]), scores


def out_of_fold(name: str, design: Design, folds, settings: Settings, chosen: list | None = None) -> np.ndarray:
    """P(win) of every held-out video from the model fitted on its fold's training part (`auto` chooses inside each
    training part); 0 for the videos no fold holds out."""
    out = np.zeros(len(design.y))
    for train, test in folds:
        model = fit(name, design.subset(train), settings)
        if chosen is not None:
            chosen.append(model.name)
        out[test] = model.proba(design, test)
    return out


def scores(y: np.ndarray, p: np.ndarray) -> dict:
    """Accuracy, balanced accuracy (P(win) >= 0.5 is win) and ROC AUC (None when only one state is present)."""
    predicted = p >= 0.5
    both = np.unique(y).size == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        balanced = float(balanced_accuracy_score(y, predicted)) if len(y) else None
    return {"accuracy": float(np.mean(predicted == y)) if len(y) else None, "balanced_accuracy": balanced,
            "roc_auc": float(roc_auc_score(y, p)) if both else None, "videos": int(len(y))}


def cross_validate(design: Design, model: str, settings: Settings, repeats: int, baselines: Sequence[str] = tuple(BASELINE_PARTS)) -> dict:
    """Person-disjoint CV of `model` and the baselines on the same folds, `repeats` times (seeds seed, seed + 1, ...).

    Returns the mean and standard deviation over repeats of each metric, per model, the folds, and (for `auto`) how
    often each candidate was chosen; `oof` holds the first repeat's out-of-fold P(win) per model (scored videos)."""
    runs: dict[str, list[dict]] = {name: [] for name in (model, *baselines)}
    chosen: list[str] = []
    oof: dict[str, np.ndarray] = {}
    k = 0
    scored = design.scored
    for r in range(repeats):
        folds = person_folds(design, settings.folds, settings.seed + r)
        k = len(folds)
        for name in runs:
            p = out_of_fold(name, design, folds, settings, chosen if name == model else None)[scored]
            runs[name].append(scores(design.y[scored], p))
            oof.setdefault(name, p)
    out = {"folds": k, "repeats": repeats, "videos": int(scored.sum()), "people": int(np.unique(design.groups[scored]).size),
           "train_only_videos": int((~scored).sum()), "models": {name: summarise(results) for name, results in runs.items()}}
    if model == "auto":
        out["chosen"] = {name: chosen.count(name) for name in CANDIDATES}
    out["oof"] = oof
    return out


def summarise(results: list[dict]) -> dict:
    out = {}
    for key in ("accuracy", "balanced_accuracy", "roc_auc"):
        values = [r[key] for r in results if r[key] is not None]
        out[key] = float(np.mean(values)) if values else None
        out[f"{key}_std"] = float(np.std(values)) if len(values) > 1 else None
    return out


def occlusion(model: Fitted, x: np.ndarray, mean: np.ndarray, groups: Mapping[str, Sequence[int]]) -> np.ndarray:
    """(videos, groups): the log-odds of win of each row of `x` minus those with a group's columns set to `mean`
    (the training videos' mean): what that group of features contributed, in the model's own terms."""
    def logit(p):
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    base = logit(model.estimator.predict_proba(x)[:, 1])
    out = np.zeros((len(x), len(groups)))
    for j, columns in enumerate(groups.values()):
        masked = x.copy()
        masked[:, list(columns)] = mean[list(columns)]
        out[:, j] = base - logit(model.estimator.predict_proba(masked)[:, 1])
    return out
