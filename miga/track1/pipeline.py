"""Track 1 on a project's files: train the configured streams, predict and fuse them, evaluate, ensemble score files.

The counterpart of `miga.track2.pipeline`; shared by the `track1` stage and the benchmarks, knows nothing of DVC or the
CLI (`on_history` receives each stream's per-epoch history, `say` each progress line). Paths are relative to `project`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from miga.baselines import clip_baselines_on
from miga.contracts import validate_manifest
from miga.datasets import imigue
from miga.errors import ConfigError
from miga.evaluation.metrics import below_baseline_note, classification_metrics, head_classes_from_counts
from miga.evaluation.submission import track1_frame, write_track1
from miga.io import KeypointStore, atomic_path, file_digest, read_parquet, write_json, write_parquet
from miga.models import load_trained
from miga.project import interim
from miga.track1 import mirror, pretrain, recipe
from miga.track1.rgb import load_crops
from miga.training import TrainConfig, fingerprint, fit, save_checkpoint, seed_everything

MODEL_DIR = Path("models/track1")
CHECKPOINTS = Path("checkpoints/track1")
SCORES = Path("data/predictions/track1_scores.parquet")
FUSION_TUNING = Path("metrics/track1_fusion.json")
SUBMISSION = Path("submissions/track1.csv")
METRICS = Path("metrics/track1.json")
PER_CLASS = Path("metrics/track1_per_class.json")
CONFUSION = Path("plots/track1/confusion.csv")
ENSEMBLE_METRICS = Path("metrics/track1_ensemble.json")

Say = Callable[[str], None]


def _quiet(line: str) -> None:
    """The default `say`: drop progress lines."""


def uses_rgb(config: Mapping) -> bool:
    """Does Track 1 read RGB: cross-attention fusion, or `rgb` among the streams late fusion (or `none`: the first) trains?"""
    fusion, streams = config["track1"]["model"]["fusion"], list(config["track1"]["model"]["streams"])
    return fusion == "crossattn" or "rgb" in (streams if fusion == "late" else streams[:1])


def streams_of(config: Mapping) -> tuple[str, ...]:
    return recipe.streams_for(config["track1"]["model"]["fusion"], tuple(config["track1"]["model"]["streams"]))


@dataclass
class Track1Data:
    """The iMiGUE-style dataset of a project: manifest, keypoints and (when a stream reads RGB) the crop cache."""

    manifest: pl.DataFrame
    store: object  # KeypointStore or miga.io.InMemoryKeypoints: store[sample_id] -> (M, T, V, 3), store.layout
    crops: dict | None = None
    num_classes: int = imigue.NUM_CLASSES

    @classmethod
    def load(cls, config: Mapping, project: Path = Path("."), *, with_crops: bool = True) -> "Track1Data":
        """The project's data; the RGB crops only when a configured stream reads them (and `with_crops`)."""
        folder = interim("imigue", project)
        manifest = validate_manifest(read_parquet(folder / "manifest.parquet"), str(folder / "manifest.parquet"), imigue.NUM_CLASSES)
        crops = load_crops(folder / "rgb_crops") if with_crops and uses_rgb(config) else None
        if crops is not None:
            missing = sorted(set(manifest["sample_id"]) - set(crops))
            if missing:
                raise ConfigError(f"{folder / 'rgb_crops'}: {len(missing)} clips have no RGB crops (no video?), e.g. {missing[:3]}; "
                                  "the rgb stream needs every clip's video (or leave rgb out of model.streams)")
        return cls(manifest, KeypointStore(folder / "keypoints.parquet"), crops)

    def split(self, *splits: str) -> pl.DataFrame:
        return self.manifest.filter(pl.col("split").is_in(splits))


def labels_of(rows: pl.DataFrame) -> np.ndarray:
    """The rows' labels as integers (-1 where a row has none: an unlabelled test split)."""
    return rows["label"].fill_null(-1).to_numpy().astype(np.int64)


def class_mirror(config: Mapping, num_classes: int) -> np.ndarray:
    """`track1.mirror_classes` as the class each class becomes in a mirrored clip (`miga.track1.mirror`)."""
    try:
        return mirror.class_mirror(config["track1"]["mirror_classes"], num_classes)
    except ValueError as error:
        raise ConfigError(f"track1.mirror_classes: {error}") from None


def _dataset(stream: str, rows: pl.DataFrame, config: Mapping, data: Track1Data, *, train: bool, seed: int):
    return recipe.clip_dataset(stream, rows["sample_id"].to_list(), labels_of(rows), config["track1"]["heatmap"], train=train, seed=seed,
                               store=data.store, crops=data.crops, skeleton=config["track1"]["skeleton"],
                               rgb=recipe.rgb_recipe(config["track1"]["model"], config["track1"]["rgb"]),
                               class_mirror=class_mirror(config, data.num_classes))


def _stream_inputs(config: Mapping, data: Track1Data) -> recipe.StreamInputs:
    return recipe.StreamInputs(recipe.pose_channels(config["track1"]["heatmap"]), data.num_classes, data.store.layout)


def build(stream: str, config: Mapping, data: Track1Data):
    return recipe.build_stream(stream, config["track1"]["model"], _stream_inputs(config, data), config["track1"]["skeleton"])


def _one_view(config: Mapping) -> dict:
    """The per-epoch validation curve reads one view per clip (no extra clips, no mirror): a signal for the curve
    at a fraction of the cost; `predict` scores val and test with every view."""
    single = {"test_clips": 1, "flip_test": False}
    track1 = config["track1"]
    return dict(config) | {"track1": dict(track1) | {"heatmap": dict(track1["heatmap"]) | single, "skeleton": dict(track1["skeleton"]) | single}}


def _stream_params(stream: str, config: Mapping) -> list:
    """The params sections a stream's input depends on, the mirror classes and where its weights start: the content of
    its starting checkpoint, its pretraining (its run fingerprint)."""
    track1, reads = config["track1"], recipe.STREAMS[stream].reads
    checkpoint = track1["model"]["rgb_checkpoint"]
    start = [file_digest(Path(checkpoint))] if checkpoint and "rgb" in reads and Path(checkpoint).is_file() else []
    pretrained = [track1["pretrain"]] if pretrains(stream, config) else []
    return [track1[section] for section in reads] + [track1["mirror_classes"]] + start + pretrained


def pretrains(stream: str, config: Mapping) -> bool:
    """Is `stream` pretrained self-supervised first (`track1.pretrain.epochs` > 0; the skeleton streams only)?"""
    return int(config["track1"]["pretrain"]["epochs"]) > 0 and recipe.STREAMS[stream].reads == ("skeleton",)


def pretrain_stream(stream: str, model, config: Mapping, data: Track1Data, *, project: Path = Path("."), say: Say = _quiet) -> list[dict]:
    """Contrastive pretraining of a skeleton stream's encoder (`miga.track1.pretrain`) on the clips of
    `track1.pretrain.splits`, labels unread; resumes from its checkpoint. Returns its per-epoch history."""
    options = config["track1"]["pretrain"]
    rows = data.split(*options["splits"])
    seed = int(config["track1"]["train"]["seed"])
    clips = pretrain.TwoViewClips(_dataset(stream, rows, config, data, train=True, seed=seed))
    contrastive = pretrain.ContrastiveModel(model, int(options["projection_dim"]))
    say(f"track1 {stream}: contrastive pretraining on {len(clips)} clips of {list(options['splits'])} (labels unread)")
    train_options = TrainConfig(epochs=int(options["epochs"]), batch_size=int(options["batch_size"]), lr=float(options["lr"]),
                                weight_decay=float(options["weight_decay"]), seed=seed, optimizer="adamw")
    run_id = fingerprint(stream, "pretrain", _stream_params(stream, config), rows["sample_id"].to_list())
    return fit(contrastive, clips, config=train_options, loss_fn=pretrain.contrastive_loss(float(options["temperature"])),
               checkpoint=Path(project) / CHECKPOINTS / f"{stream}_pretrain.pt", run_id=run_id, description=f"track1 {stream} pretrain")


REFIT = "_refit"  # the file-name suffix of a stream trained again on train + val (`track1.train.refit`)


def refits(config: Mapping, data: Track1Data) -> bool:
    """Are the streams trained again on train + val to score test (`track1.train.refit`, and a val split to add)?"""
    return bool(config["track1"]["train"]["refit"]) and not data.split("val").is_empty()


def with_val_in_train(data: Track1Data) -> Track1Data:
    """The same data with the val clips moved into train (and no val split): what a refit trains on."""
    return replace(data, manifest=data.manifest.with_columns(pl.col("split").replace("val", "train")))


def train_stream(stream: str, config: Mapping, data: Track1Data, *, project: Path = Path("."), options: TrainConfig | None = None,
                 say: Say = _quiet, suffix: str = "") -> list[dict]:
    """Train one stream on the train split (validating on val every epoch, resuming from its checkpoint) and save it
    to `models/track1/<stream><suffix>.pt`; returns its per-epoch history."""
    options = options or recipe.train_config(stream, config["track1"]["train"])
    rows, val_rows = data.split("train"), data.split("val")
    seed_everything(options.seed)
    model = build(stream, config, data)
    for line in recipe.init_rgb_weights(model, stream, config["track1"]["model"]):
        say(f"track1 {stream}: {line}")
    if pretrains(stream, config):
        pretrain_stream(stream, model, config, data, project=project, say=say)
        seed_everything(options.seed)
    train_set = _dataset(stream, rows, config, data, train=True, seed=options.seed)
    val_set = _dataset(stream, val_rows, _one_view(config), data, train=False, seed=options.seed)
    val_labels = labels_of(val_rows)

    def validate(epoch: int, stats: dict) -> dict:  # one view per clip
        if not len(val_set) or (val_labels < 0).all():
            return {}
        probs = recipe.view_averaged_probabilities(model, val_set)
        labelled = val_labels >= 0
        return {"val_top1": float((probs[labelled].argmax(1) == val_labels[labelled]).mean())}

    recipe_params = {k: v for k, v in config["track1"]["train"].items() if k != "refit"}  # refit adds a model, changes none
    run_id = fingerprint(stream, _stream_params(stream, config), config["track1"]["model"], recipe_params, rows["sample_id"].to_list())
    history = fit(model, train_set, config=options, loss_fn=recipe.make_loss(config["track1"]["model"]),
                  checkpoint=Path(project) / CHECKPOINTS / f"{stream}{suffix}.pt", run_id=run_id, labels=labels_of(rows), on_epoch=validate,
                  description=f"track1 {stream}{suffix}", param_groups=recipe.optimizer_groups(model, stream, config["track1"]["model"], lr=options.lr))
    save_checkpoint(Path(project) / MODEL_DIR / f"{stream}{suffix}.pt", {"model": model.state_dict(), "history": history})
    return history


def train(config: Mapping, data: Track1Data, *, project: Path = Path("."), on_history: Callable[[str, list[dict]], None] | None = None,
          say: Say = _quiet) -> tuple[str, ...]:
    """Train every stream `model.fusion` needs; returns their names."""
    if data.split("train").is_empty():
        raise ConfigError("track1: the manifest has no training clips")
    refit = refits(config, data)
    for stream in streams_of(config):
        history = train_stream(stream, config, data, project=project, say=say)
        if on_history:
            on_history(stream, history)
        if refit:
            say(f"track1 {stream}: again on train + val (track1.train.refit): this model scores test")
            history = train_stream(stream, config, with_val_in_train(data), project=project, say=say, suffix=REFIT)
            if on_history:
                on_history(f"{stream}{REFIT}", history)
    return streams_of(config)


def stream_scores(config: Mapping, data: Track1Data, rows: pl.DataFrame, *, project: Path = Path(".")) -> dict[str, np.ndarray]:
    """Class probabilities of every trained stream on `rows` (all test views averaged). With `track1.train.refit` the
    val rows are scored by the streams trained on train (val tunes the fusion on clips they did not see) and the
    other rows by the streams trained again on train + val."""
    refit = (rows["split"] != "val").to_numpy() if refits(config, data) else np.zeros(rows.height, dtype=bool)
    scores = {}
    for stream in streams_of(config):
        parts = {suffix: _scored(stream, f"{stream}{suffix}.pt", rows.filter(pl.Series(chosen)), config, data, project)
                 for chosen, suffix in ((~refit, ""), (refit, REFIT)) if chosen.any()}
        if len(parts) == 1:
            scores[stream] = next(iter(parts.values()))
            continue
        scores[stream] = np.zeros((rows.height, parts[""].shape[1]), dtype=parts[""].dtype)
        scores[stream][~refit], scores[stream][refit] = parts[""], parts[REFIT]
    return scores


def _scored(stream: str, file: str, rows: pl.DataFrame, config: Mapping, data: Track1Data, project: Path) -> np.ndarray:
    model = build(stream, config, data)
    load_trained(model, Path(project) / MODEL_DIR / file)
    return recipe.view_averaged_probabilities(model, _dataset(stream, rows, config, data, train=False, seed=0))


def _val_rows(rows: pl.DataFrame) -> np.ndarray:
    return (rows["split"] == "val").to_numpy() & rows["label"].is_not_null().to_numpy()


def _val_top1(probs: np.ndarray, rows: pl.DataFrame) -> float | None:
    val = _val_rows(rows)
    return float((probs[val].argmax(1) == labels_of(rows)[val]).mean()) if val.any() else None


TUNED_WEIGHTS = {"val": recipe.tune_stream_weights, "shrunk": recipe.shrunk_stream_weights}


def stream_weights(model_params: Mapping, scores: Mapping[str, np.ndarray], rows: pl.DataFrame) -> tuple[dict | None, list]:
    """Late fusion's stream weights: `model.stream_weights` as {stream: weight}; "val": the grid point with the best
    val top-1; "shrunk": equal weights unless a grid point beats them on val beyond chance (each with its trials).
    None when `model.fusion` is not late."""
    setting = model_params["stream_weights"]
    if model_params["fusion"] != "late":
        return None, []
    if setting in TUNED_WEIGHTS:
        val = _val_rows(rows)
        try:
            return TUNED_WEIGHTS[setting]({s: v[val] for s, v in scores.items()}, labels_of(rows)[val])
        except ValueError as error:
            raise ConfigError(f"model.stream_weights: {setting}: {error}") from None
    if set(setting) != set(scores) or not sum(setting.values()) > 0:
        raise ConfigError(f"model.stream_weights must be 'val', 'shrunk' or a non-negative weight for each of {list(scores)}, not {dict(setting)!r}")
    total = float(sum(setting.values()))
    return {s: float(setting[s]) / total for s in scores}, []


def predict(config: Mapping, data: Track1Data, *, project: Path = Path("."), say: Say = _quiet) -> pl.DataFrame:
    """Score val and test, fuse the streams, write the score table, the fusion tuning and the test submission."""
    fusion = config["track1"]["model"]["fusion"]
    rows = data.split("val", "test")
    scores = stream_scores(config, data, rows, project=project)
    weights, trials = stream_weights(config["track1"]["model"], scores, rows)
    if weights is not None and config["track1"]["model"]["stream_weights"] in TUNED_WEIGHTS:
        say(f"track1: stream weights {weights}: {recipe.fusion_choice(weights)} (tuned on {int(_val_rows(rows).sum())} val clips)")
    fused = recipe.fuse(scores, fusion, weights)
    val_top1 = {s: _val_top1(v, rows) for s, v in scores.items()} | ({"fused": _val_top1(fused, rows)} if fusion == "late" else {})
    write_json({"fusion": fusion, "streams": list(scores), "weights": weights,
                "choice": recipe.fusion_choice(weights) if fusion == "late" else None, "val_top1": val_top1, "val_trials": trials},
               Path(project) / FUSION_TUNING)
    table = rows.select("sample_id", "split", "label").with_columns(
        pl.Series("scores", fused.astype(np.float32).tolist(), dtype=pl.List(pl.Float32)),
        *(pl.Series(f"scores_{s}", v.astype(np.float32).tolist(), dtype=pl.List(pl.Float32)) for s, v in scores.items()),
    )
    write_parquet(table, Path(project) / SCORES)
    test = table.filter(pl.col("split") == "test")
    predicted = np.array(test["scores"].to_list()).argmax(1) if test.height else np.zeros(0, np.int64)
    write_track1(track1_frame(test["sample_id"].to_list(), predicted), Path(project) / SUBMISSION)
    return table


def evaluated_split(table: pl.DataFrame, split: str, source: str) -> tuple[str, pl.DataFrame, str | None]:
    """(split scored, its rows, a note) for `evaluate.split`: an unlabelled split (a real release's test) is reported
    on val instead, and the note says so; a split with no rows at all is an error."""
    rows = table.filter(pl.col("split") == split)
    if rows.is_empty():
        raise ConfigError(f"evaluate.split: no {split} samples in {source}")
    if not rows["label"].null_count():
        return split, rows, None
    if rows["label"].null_count() < rows.height:
        raise ConfigError(f"{source}: {rows['label'].null_count()} of {rows.height} {split} samples have no label; "
                          "a split is either labelled or not")
    note = f"the {split} split has no labels (test metrics need them: datasets.<name>.test_truth); these metrics are on val"
    val = table.filter((pl.col("split") == "val") & pl.col("label").is_not_null())
    if split == "val" or val.is_empty():
        raise ConfigError(f"{source}: neither the {split} split nor val has labels to evaluate")
    return "val", val, note


def evaluate(config: Mapping, data: Track1Data, *, project: Path = Path("."), say: Say = _quiet) -> dict:
    """Top-1, top-5, mean class, head and tail accuracy (each stream's too, and the pooled-statistics baselines) on
    `evaluate.split`; writes the metrics, per-class accuracy and the confusion table."""
    evaluation = config["evaluate"]
    split, scores, note = evaluated_split(read_parquet(Path(project) / SCORES), evaluation["split"], str(SCORES))
    if note:
        warnings.warn(note, stacklevel=1)
    labels, probs = labels_of(scores), np.array(scores["scores"].to_list())
    train_labels = labels_of(data.split("train"))
    result = classification_metrics(labels, probs, head_classes=head_classes_from_counts(train_labels, int(evaluation["head_k"])))
    counts = np.bincount(train_labels, minlength=data.num_classes)
    result.update({"split": split, "requested_split": evaluation["split"], "note": note,
                   "majority_class_rate": float((labels == counts.argmax()).mean())})
    refit = refits(config, data) and split != "val"  # val is always scored by the streams trained on train
    result["trained_on"] = "train + val (track1.train.refit)" if refit else "train"
    result["streams"] = _stream_metrics(scores, labels)
    result["baselines"] = _baselines(with_val_in_train(data) if refit else data, split)  # the baselines see what the streams saw
    below = below_baseline_note("top-1", result["top1"], result["baselines"], split)
    if below:
        warnings.warn(below, stacklevel=1)
        result["note"] = "; ".join(filter(None, [note, below]))
    write_json({"per_class": result.pop("per_class"), "head_classes": result.pop("head_classes")}, Path(project) / PER_CLASS)
    write_json(result, Path(project) / METRICS)
    _write_confusion(labels, probs.argmax(1), Path(project) / CONFUSION)
    return result


def _stream_metrics(scores: pl.DataFrame, labels: np.ndarray) -> dict:
    """Top-1, top-5 and mean class accuracy of each stream's own scores (`scores_<stream>` columns),
    so one fused run shows what fusion adds over each stream alone (and `dvc metrics diff` lines them up)."""
    out = {}
    for column in sorted(c for c in scores.columns if c.startswith("scores_")):
        result = classification_metrics(labels, np.array(scores[column].to_list()))
        out[column.removeprefix("scores_")] = {k: result[k] for k in ("top1", "top5", "mean_class_accuracy")}
    return out


def _baselines(data: Track1Data, split: str) -> dict[str, float]:
    """Top-1 of pooled-joint-statistics baselines (logistic regression, 1-NN, 5-NN) on the same keypoints and split."""
    labelled = lambda name: dict(data.split(name).drop_nulls("label").select("sample_id", "label").iter_rows())  # noqa: E731
    train, evaluated = labelled("train"), labelled(split)
    return clip_baselines_on({sid: data.store[sid] for sid in {**train, **evaluated}}, data.store.layout, train, evaluated)


def _write_confusion(labels: np.ndarray, predicted: np.ndarray, path: Path) -> None:
    names = np.array(imigue.CLASS_NAMES)
    with atomic_path(path) as tmp:
        pl.DataFrame({"actual": names[labels], "predicted": names[predicted]}).write_csv(tmp)


def _member_scores(member: Mapping, index: int) -> tuple[str, pl.DataFrame, np.ndarray]:
    path, column = Path(member["file"]), member["column"]
    table = read_parquet(path)
    if column not in table.columns or "sample_id" not in table.columns or "split" not in table.columns:
        raise ConfigError(f"{path}: ensemble member needs sample_id, split and {column!r} columns (has {table.columns})")
    table = table.sort("sample_id")
    try:
        scores = np.array(table[column].to_list(), dtype=np.float64)
    except (ValueError, TypeError):
        raise ConfigError(f"{path}: column {column!r} is not a list of class scores per sample") from None
    if scores.ndim != 2 or scores.shape[1] != imigue.NUM_CLASSES:
        raise ConfigError(f"{path}: column {column!r} holds scores of shape {scores.shape}, expected (samples, {imigue.NUM_CLASSES})")
    if not np.isfinite(scores).all():
        raise ConfigError(f"{path}: column {column!r} has {int((~np.isfinite(scores)).sum())} non-finite scores")
    return f"{index}:{path.name}:{column}", table, scores


def ensemble(config: Mapping, data: Track1Data | None, out: Path, *, project: Path = Path("."), say: Say = _quiet) -> dict | None:
    """Weighted average of saved score files (`ensemble.members`: file, column, weight), e.g. the models of several
    experiments; scores it on `evaluate.split` when that split is labelled and writes a test submission to `out`."""
    members = config["track1"]["ensemble"]["members"]
    if not members:
        raise ConfigError("ensemble.members is empty: list {file, column (default scores), weight} entries in params.yaml")
    loaded = [_member_scores(member, index) for index, member in enumerate(members)]
    first_name, first, _ = loaded[0]
    for name, table, _ in loaded[1:]:
        if table["sample_id"].to_list() != first["sample_id"].to_list():
            raise ConfigError(f"ensemble member {name} scores other samples than {first_name}")
    scores = {name: values for name, _, values in loaded}
    fused = recipe.ensemble(scores, {name: float(member["weight"]) for (name, _, _), member in zip(loaded, members)})
    result = None
    split = (first["split"] == config["evaluate"]["split"]).to_numpy()
    if split.any() and not first.filter(pl.Series(split))["label"].null_count() and data is not None:
        train_labels = labels_of(data.split("train"))
        result = classification_metrics(labels_of(first)[split], fused[split],
                                        head_classes=head_classes_from_counts(train_labels, int(config["evaluate"]["head_k"])))
        result.pop("per_class")
        write_json(result, Path(project) / ENSEMBLE_METRICS)
        say(f"ensemble of {len(members)} on {config['evaluate']['split']}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f}")
    test = (first["split"] == "test").to_numpy()
    write_track1(track1_frame(first["sample_id"].filter(pl.Series(test)).to_list(), fused[test].argmax(1)), out)
    say(f"ensemble: {int(test.sum())} test rows -> {out}")
    return result
