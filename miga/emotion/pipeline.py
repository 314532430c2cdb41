"""The emotion stage on a project's files: each source's MG sequences per video, then the model, its metrics and plots.

`events(config, source)` writes `data/interim/emotion/<source>.parquet` (miga.emotion.events) from the ingest outputs
and, for `track1` / `track2`, the track's predictions; `run(config)` reads the table of `emotion.source`, cross-validates
the model and the baselines person-disjointly on the training videos (same folds; the labelled videos of the other
`emotion.train_splits` join every training part), fits on all of them, predicts the val (unless trained on) and test
videos, scores every split whose emotion labels exist and writes:

    submissions/emotion.csv      video,emotion,probability  (test videos; probability = P(win))
    metrics/emotion.json         accuracy, balanced accuracy, ROC AUC: cross-validated, and on val / test when labelled
    plots/emotion/class_rates.csv, .png   MGs per minute of each class in won and lost matches (training videos)
    plots/emotion/evidence.csv, .png      per video, how much each class (and each timing feature) moved its log-odds of win

Knows nothing of DVC or the CLI; paths are relative to `project`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import polars as pl

from miga.contracts import ContractError, validate_detections, validate_manifest, validate_segments
from miga.emotion import events as ev
from miga.datasets import format_of, reader
from miga.datasets.imigue import CLASS_NAMES as IMIGUE_CLASS_NAMES
from miga.emotion.features import TIMING_NAMES, MgSequence, class_rates, feature_matrix
from miga.emotion.labels import EMOTIONS, read_video_emotions
from miga.emotion.model import BASELINE_PARTS, Design, Settings, cross_validate, fit, occlusion, scores, select
from miga.errors import ConfigError
from miga.evaluation.metrics import below_baseline_note
from miga.io import atomic_path, read_parquet, write_json, write_parquet
from miga.project import TRACK2_DETECTIONS, interim

EVENTS_DIR = Path("data/interim/emotion")
TRACK1_SCORES = Path("data/predictions/track1_scores.parquet")
SUBMISSION = Path("submissions/emotion.csv")
METRICS = Path("metrics/emotion.json")
PLOTS = Path("plots/emotion")
IMIGUE_NON_MG = len(IMIGUE_CLASS_NAMES) - 1  # 'illustrative' (raw class 99)

Say = Callable[[str], None]


def _quiet(line: str) -> None:
    """The default `say`: drop progress lines."""


def events_path(source: str, project: Path = Path(".")) -> Path:
    return Path(project) / EVENTS_DIR / f"{source}.parquet"


def source_dataset(config: Mapping, source: str) -> str:
    """The dataset (a name under `datasets`) a source's videos come from: iMiGUE, or `track2.dataset`."""
    if source not in ev.SOURCES:
        raise ConfigError(f"emotion.source: unknown source {source!r}; known: {', '.join(ev.SOURCES)}")
    return str(config["track2"]["dataset"]) if source == "track2" else "imigue"


def events(config: Mapping, source: str, *, project: Path = Path(".")) -> pl.DataFrame:
    """Build and write `data/interim/emotion/<source>.parquet` (miga.emotion.events) and return it."""
    project = Path(project)
    dataset = source_dataset(config, source)
    if dataset not in config["datasets"]:
        raise ConfigError(f"track2.dataset: no dataset {dataset!r} under 'datasets'")
    entry = config["datasets"][dataset]
    fmt = format_of(dataset, entry)
    folder = interim(dataset, project)
    manifest_path = folder / "manifest.parquet"
    manifest = validate_manifest(read_parquet(manifest_path), str(manifest_path))
    emotions = read_video_emotions(project / entry["root"], fmt, known=ev.manifest_videos(manifest, source != "track2"))
    if source in ("labels", "track1"):
        if fmt != "imigue":
            raise ConfigError(f"emotion.source: {source} reads iMiGUE clips, but datasets.imigue has format {fmt}")
        predicted = None
        if source == "track1":
            path = project / TRACK1_SCORES
            predicted = ev.track1_predictions(read_parquet(path), str(path), len(IMIGUE_CLASS_NAMES))
        table = ev.clip_videos(manifest, emotions, class_names=list(IMIGUE_CLASS_NAMES), non_mg=IMIGUE_NON_MG, predicted=predicted,
                               source=source, manifest_name=str(manifest_path))
    else:
        if manifest["sample_id"].str.contains("_").any() and fmt == "imigue":
            raise ConfigError("emotion.source: track2 needs long sequences; track2.dataset names an iMiGUE (clip) dataset")
        names = list(reader(fmt).class_names(project / entry["root"], entry))
        num_classes = len(names)
        segments = validate_segments(read_parquet(folder / "segments.parquet"), str(folder / "segments.parquet"), num_classes)
        path = project / TRACK2_DETECTIONS
        detections = validate_detections(read_parquet(path), str(path), num_classes)
        table = ev.sequence_videos(manifest, segments, emotions, class_names=names, detections=detections, source=source,
                                   manifest_name=str(manifest_path))
    if table.is_empty():
        raise ContractError(f"{manifest_path}: no videos")
    write_parquet(table, events_path(source, project))
    return table


# ---------------------------------------------------------------- the model


def _sequences(table: pl.DataFrame) -> list[MgSequence]:
    return [MgSequence.of(c, s, e, frames, fps) for c, s, e, frames, fps in
            table.select("classes", "starts", "ends", "frames", "fps").iter_rows()]


def _design(table: pl.DataFrame, num_classes: int, non_mg: int | None) -> Design:
    """The videos of `table`; cross-validation scores those of the train split (the others only train)."""
    sequences = _sequences(table)
    parts = {part: feature_matrix(sequences, [part], num_classes, non_mg) for part in ("bag", "timing")}
    y = (table["emotion"] == "win").cast(pl.Int64).to_numpy() if table.height else np.zeros(0, np.int64)
    return Design(parts, y, _people(table), (table["split"] == "train").to_numpy() if table.height else np.zeros(0, bool))


def training_videos(known: pl.DataFrame, train_splits) -> pl.DataFrame:
    """The labelled videos of `emotion.train_splits` (cross-validation scores those of the train split)."""
    if "train" not in train_splits:
        raise ConfigError(f"emotion.train_splits: {list(train_splits)}: must hold train (cross-validation scores its videos)")
    return known.filter(pl.col("split").is_in(list(train_splits)) & pl.col("emotion").is_not_null())


def _people(table: pl.DataFrame) -> np.ndarray:
    """Subject ids; an unknown subject (-1) becomes a person of its own per video."""
    subjects = table["subject"].to_numpy().astype(np.int64)
    unknown = subjects < 0
    subjects[unknown] = -1 - np.arange(int(unknown.sum()))
    return subjects


def _feature_groups(model_parts: tuple[str, ...], names: list[str]) -> dict[str, list[int]]:
    """{group: column indices in the model's input}: each class (its event share and time share), MGs per minute, each timing feature."""
    groups: dict[str, list[int]] = {}
    offset = 0
    for part in model_parts:
        if part == "bag":
            k = len(names)
            for c, name in enumerate(names):
                groups[name] = [offset + c, offset + k + c]
            groups["MGs per minute"] = [offset + 2 * k]
            offset += 2 * k + 1
        else:
            for j, name in enumerate(TIMING_NAMES):
                groups.setdefault(f"timing: {name}", []).append(offset + j)
            offset += len(TIMING_NAMES)
    return groups


def run(config: Mapping, *, project: Path = Path("."), say: Say = _quiet) -> dict:
    """Cross-validate, fit, predict, score and write the submission, metrics and plots (module docstring)."""
    project = Path(project)
    options = config["emotion"]
    source, model_name = str(options["source"]), str(options["model"])
    source_dataset(config, source)
    path = events_path(source, project)
    table = ev.validate_events(read_parquet(path), str(path))
    if table.is_empty():
        raise ContractError(f"{path}: no videos")
    names, non_mg = list(table["class_names"].first()), table["non_mg"].drop_nulls().first()
    num_classes = len(names)
    known = table.filter(pl.col("classes").is_not_null())
    fitted = training_videos(known, options["train_splits"])
    train = fitted.filter(pl.col("split") == "train")
    _check_training(train, table, path)
    settings = Settings.of(options)
    notes = []
    if (fitted["subject"] < 0).any():
        notes.append(f"{int((fitted['subject'] < 0).sum())} training videos have no known subject (no video_subjects.csv): "
                     "each counts as a person of its own, so those folds are not person-disjoint")
    design = _design(fitted, num_classes, non_mg)
    people, extra = np.unique(design.groups[design.scored]).size, fitted.height - train.height
    if extra:
        notes.append(f"the model and the baselines also learned from {extra} labelled videos outside the train split "
                     f"(emotion.train_splits: {list(options['train_splits'])}): not the protocol's training videos alone; say so when you report")
    say(f"emotion: cross-validating {model_name} on {train.height} training videos ({people} people), "
        f"{options['repeats']} x {min(settings.folds, people)} folds"
        + (f", {extra} labelled videos of other splits in every training part" if extra else ""))
    cv = cross_validate(design, model_name, settings, int(options["repeats"]))
    cv.pop("oof")
    result = {"source": source, "dataset": str(table["dataset"].first()), "model": model_name, "train_splits": list(options["train_splits"]),
              "cv": {k: v for k, v in cv.items() if k != "models"} | _arranged(cv["models"], model_name)}
    below = below_baseline_note("cross-validated accuracy", result["cv"]["model"]["accuracy"],
                                {name: m["accuracy"] for name, m in result["cv"]["baselines"].items()}, "the training videos")
    if below:
        notes.append(below)
    if model_name == "auto":
        chosen, selection = select(design, settings)
        result.update(selected=chosen, selection=selection)
    final = fit(model_name, design, settings)
    baselines = {name: fit(name, design, settings) for name in BASELINE_PARTS}
    predictions = {}
    for split in ("val", "test"):
        rows = known.filter(pl.col("split") == split)
        if rows.is_empty() or split in options["train_splits"]:
            continue
        split_design = _design(rows, num_classes, non_mg)
        p = final.proba(split_design)
        predictions[split] = (rows, p)
        labelled = rows["emotion"].is_not_null().to_numpy()
        if labelled.any():
            y = split_design.y[labelled]
            result[split] = {"events_from": sorted(set(rows["events_from"].to_list())), "model": scores(y, p[labelled]),
                             "baselines": {name: scores(y, b.proba(split_design)[labelled]) for name, b in baselines.items()}}
    notes += _unpredictable(table, known, source)
    evaluated = "test" if "test" in result else "cv"
    headline = result["test"]["model"] if evaluated == "test" else result["cv"]["model"]
    if evaluated == "cv":
        notes.append("the test split has no emotion labels (or no videos): the figures are person-disjoint cross-validation on the training videos")
    result.update({k: headline[k] for k in ("accuracy", "balanced_accuracy", "roc_auc")}, evaluated=evaluated,
                  note="; ".join(notes) or None)
    test_rows, test_p = predictions.get("test", (known.head(0), np.zeros(0)))
    _write_submission(test_rows["video"].to_list(), test_p, project / SUBMISSION)
    write_json(result, project / METRICS)
    _plot_rates(fitted, _sequences(fitted), names, num_classes, project / PLOTS)
    shown = predictions.get("test") or predictions.get("val") or (fitted, final.proba(design))
    _plot_evidence(final, design, shown[0], num_classes, non_mg, names, project / PLOTS)
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return result


def _arranged(models: Mapping[str, dict], model_name: str) -> dict:
    return {"model": models[model_name], "baselines": {k: v for k, v in models.items() if k != model_name}}


def _check_training(train: pl.DataFrame, table: pl.DataFrame, path: Path) -> None:
    counts = {e: int((train["emotion"] == e).sum()) for e in EMOTIONS}
    if min(counts.values()) < 2:
        labelled = int(table.filter(pl.col("split") == "train")["emotion"].is_not_null().sum())
        raise ConfigError(f"{path}: the train split has {train.height} videos with events and an emotion label "
                          f"({counts['win']} win, {counts['lose']} lose; {labelled} labelled in all): the model needs 2 or more of each "
                          "(video_emotions.csv in the dataset root names each video's emotion)")


def _unpredictable(table: pl.DataFrame, known: pl.DataFrame, source: str) -> list[str]:
    lost = table.filter(pl.col("classes").is_null() & (pl.col("split") != "train"))
    if lost.is_empty():
        return []
    splits = ", ".join(f"{n} {s}" for s, n in sorted(lost.group_by("split").len().iter_rows()))
    return [f"{splits} videos have no known MG classes (an unlabelled split with source {source}): not predicted; "
            "source track1 predicts them from Track 1's classes"]


def _write_submission(videos: list[str], p: np.ndarray, path: Path) -> None:
    frame = pl.DataFrame({"video": videos, "emotion": np.where(p >= 0.5, "win", "lose").tolist() if len(videos) else [],
                          "probability": np.round(p, 4).tolist()}, schema={"video": pl.String, "emotion": pl.String, "probability": pl.Float64})
    with atomic_path(path) as tmp:
        frame.write_csv(tmp)


def _plot_rates(train: pl.DataFrame, sequences: list[MgSequence], names: list[str], num_classes: int, folder: Path) -> None:
    rates = class_rates(sequences, num_classes)
    win = (train["emotion"] == "win").to_numpy()
    rows = [{"class": names[c], "state": state, "mgs_per_minute": float(rates[mask, c].mean()) if mask.any() else 0.0}
            for c in range(num_classes) for state, mask in (("win", win), ("lose", ~win))]
    with atomic_path(folder / "class_rates.csv") as tmp:
        pl.DataFrame(rows).write_csv(tmp)
    from miga.emotion.figures import rates_figure

    rates_figure(names, rates[win].mean(0) if win.any() else np.zeros(num_classes),
                 rates[~win].mean(0) if (~win).any() else np.zeros(num_classes), folder / "class_rates.png")


def _plot_evidence(final, design: Design, shown: pl.DataFrame, num_classes: int, non_mg, names: list[str], folder: Path) -> None:
    groups = _feature_groups(final.parts, names)
    x_train = design.x(final.parts)
    x = _design(shown, num_classes, non_mg).x(final.parts)
    contribution = occlusion(final, x, x_train.mean(0), groups)
    p = final.estimator.predict_proba(x)[:, 1]
    rows = [{"video": video, "split": split, "feature": group, "contribution": float(contribution[i, j])}
            for i, (video, split) in enumerate(shown.select("video", "split").iter_rows()) for j, group in enumerate(groups)]
    with atomic_path(folder / "evidence.csv") as tmp:
        pl.DataFrame(rows, schema={"video": pl.String, "split": pl.String, "feature": pl.String, "contribution": pl.Float64}).write_csv(tmp)
    from miga.emotion.figures import evidence_figure

    evidence_figure(shown["video"].to_list(), shown["split"].to_list(), p, list(groups), contribution, folder / "evidence.png")
