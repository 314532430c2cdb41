"""Track 1 (clip classification on iMiGUE-style data): train, predict, evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
import typer

from miga.baselines import clip_baselines_on
from miga.errors import ConfigError
from miga.track1 import recipe as track1
from miga.models import load_trained
from miga.contracts import validate_manifest
from miga.datasets import imigue
from miga.io import KeypointStore, atomic_path, file_digest, read_parquet, write_json, write_parquet
from miga.evaluation.metrics import classification_metrics, head_classes_from_counts
from miga.track1.rgb import load_crops
from miga.evaluation.submission import track1_frame, write_track1
from miga.training import TrainConfig, fingerprint, fit, relaunch, run_params, save_checkpoint, seed_everything
from stages.common import PARAMS_OPTION, clean_errors, interim, load_params, section, track1_uses_rgb
from stages.live import EpochLogger

app = typer.Typer(add_completion=False, help=__doc__)
MODEL_DIR = Path("models/track1")
CHECKPOINTS = Path("checkpoints/track1")
SCORES = Path("data/predictions/track1_scores.parquet")
FUSION_TUNING = Path("metrics/track1_fusion.json")
RGB_CROPS = interim("imigue") / "rgb_crops.npz"


def _manifest() -> pl.DataFrame:
    path = interim("imigue") / "manifest.parquet"
    return validate_manifest(read_parquet(path), str(path), imigue.NUM_CLASSES)


def _split(manifest: pl.DataFrame, *splits: str) -> pl.DataFrame:
    return manifest.filter(pl.col("split").is_in(splits))


def _datasets(stream: str, rows: pl.DataFrame, config: dict, *, train: bool, seed: int, store=None, crops=None):
    return track1.clip_dataset(stream, rows["sample_id"].to_list(), rows["label"].fill_null(-1).to_numpy(), config["heatmap"],
                               train=train, seed=seed, store=store, crops=crops, skeleton=config["skeleton"],
                               rgb=track1.rgb_recipe(config["model"], config["rgb"]))


def _streams(config: dict) -> tuple[str, ...]:
    return track1.streams_for(config["model"]["fusion"], tuple(config["model"]["streams"]))


def _needs_rgb(config: dict) -> bool:
    return track1_uses_rgb(config)


def _stream_inputs(config: dict, store: KeypointStore) -> track1.StreamInputs:
    return track1.StreamInputs(track1.pose_channels(config["heatmap"]), imigue.NUM_CLASSES, store.layout)


def _one_view(config: dict) -> dict:
    """The per-epoch validation curve reads one view per clip (no extra clips, no mirror): a signal for the curve
    at a fraction of the cost; `predict` scores val and test with every view."""
    single = {"test_clips": 1, "flip_test": False}
    return config | {"heatmap": config["heatmap"] | single, "skeleton": config["skeleton"] | single}


def _stream_params(stream: str, config: dict) -> list:
    """The params sections a stream's input depends on, and the content of its starting checkpoint (its run fingerprint)."""
    if stream in track1.SKELETON_STREAMS:
        return [config["skeleton"]]
    checkpoint = config["model"].get("rgb_checkpoint")
    start = [file_digest(Path(checkpoint))] if checkpoint and "rgb" in track1.inputs_for(stream) and Path(checkpoint).is_file() else []
    return [config["heatmap"] if name == "pose" else config["rgb"] for name in track1.inputs_for(stream)] + start


@app.command()
@clean_errors
def train(params: Path = PARAMS_OPTION) -> None:
    """Train what model.fusion needs (each of model.streams, or the joint cross-attention model), validating every epoch."""
    config = load_params(params)
    if relaunch(section(config, "train"), ["-m", "stages.track1", "train", "--params", str(params)]):
        return  # train.launcher: torchrun ran this command in train.nproc processes
    manifest = _manifest()
    rows, val_rows = _split(manifest, "train"), _split(manifest, "val")
    store = KeypointStore(interim("imigue") / "keypoints.parquet")
    crops = load_crops(RGB_CROPS) if _needs_rgb(config) else None
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    with EpochLogger("dvclive/track1") as logger:
        for stream in _streams(config):
            _train_stream(stream, config, track1.train_config(stream, section(config, "train")), rows, val_rows, store, crops, logger)
    typer.echo(f"track1: trained {', '.join(_streams(config))} on {rows.height} clips -> {MODEL_DIR}")


def _train_stream(stream: str, config: dict, options: TrainConfig, rows: pl.DataFrame, val_rows: pl.DataFrame,
                  store: KeypointStore, crops, logger: EpochLogger) -> None:
    seed_everything(options.seed)
    model = track1.build_stream(stream, config["model"], _stream_inputs(config, store), config["skeleton"])
    for line in track1.init_rgb_weights(model, stream, config["model"]):
        typer.echo(f"track1 {stream}: {line}")
    data = _datasets(stream, rows, config, train=True, seed=options.seed, store=store, crops=crops)
    val_data = _datasets(stream, val_rows, _one_view(config), train=False, seed=options.seed, store=store, crops=crops)
    val_labels = val_rows["label"].to_numpy()

    def validate(epoch: int, stats: dict, model=model, val_data=val_data, val_labels=val_labels) -> dict:  # one view
        if not len(val_data):
            return {}
        probs = track1.view_averaged_probabilities(model, val_data)
        return {"val_top1": float((probs.argmax(1) == val_labels).mean())}

    run_id = fingerprint(stream, _stream_params(stream, config), config["model"], run_params(section(config, "train")), rows["sample_id"].to_list())
    history = fit(model, data, config=options, loss_fn=track1.make_loss(config["model"]), checkpoint=CHECKPOINTS / f"{stream}.pt",
                  run_id=run_id, labels=rows["label"].to_numpy(), on_epoch=validate, description=f"track1 {stream}",
                  param_groups=track1.optimizer_groups(model, stream, config["model"], lr=options.lr))
    logger.log_history(history, prefix=f"{stream}/")
    save_checkpoint(MODEL_DIR / f"{stream}.pt", {"model": model.state_dict(), "history": history})


@app.command()
@clean_errors
def predict(params: Path = PARAMS_OPTION) -> None:
    """Score val and test clips (several clips x flip per sample), fuse the streams, write submissions/track1.csv."""
    config = load_params(params)
    fusion = config["model"]["fusion"]
    manifest = _manifest()
    rows = _split(manifest, "val", "test")
    store = KeypointStore(interim("imigue") / "keypoints.parquet")
    crops = load_crops(RGB_CROPS) if _needs_rgb(config) else None
    scores = {}
    for stream in _streams(config):
        model = track1.build_stream(stream, config["model"], _stream_inputs(config, store), config["skeleton"])
        load_trained(model, MODEL_DIR / f"{stream}.pt")
        data = _datasets(stream, rows, config, train=False, seed=0, store=store, crops=crops)
        scores[stream] = track1.view_averaged_probabilities(model, data)
    weights, trials = _stream_weights(config["model"], fusion, scores, rows)
    fused = track1.fuse(scores, fusion, weights)
    choice = track1.fusion_choice(weights) if fusion == "late" else None
    write_json({"fusion": fusion, "streams": list(scores), "weights": weights, "choice": choice,
                "val_top1": {s: _val_top1(v, rows) for s, v in scores.items()} | ({"fused": _val_top1(fused, rows)} if fusion == "late" else {}),
                "val_trials": trials}, FUSION_TUNING)
    table = rows.select("sample_id", "split", "label").with_columns(
        pl.Series("scores", fused.astype(np.float32).tolist(), dtype=pl.List(pl.Float32)),
        *(pl.Series(f"scores_{s}", v.astype(np.float32).tolist(), dtype=pl.List(pl.Float32)) for s, v in scores.items()),
    )
    write_parquet(table, SCORES)
    test = table.filter(pl.col("split") == "test")
    predicted = np.array(test["scores"].to_list()).argmax(1) if test.height else np.zeros(0, np.int64)
    write_track1(track1_frame(test["sample_id"].to_list(), predicted), Path("submissions/track1.csv"))
    typer.echo(f"track1: scored {table.height} clips with fusion={fusion}; {test.height} test rows -> submissions/track1.csv")


def _stream_weights(model_params: dict, fusion: str, scores: dict[str, np.ndarray], rows: pl.DataFrame) -> tuple[dict | None, list]:
    """Late fusion's stream weights: `model.stream_weights` as {stream: weight}, or, when it is "val", the grid
    point with the best val top-1 (with its trials). None when `fusion` is not late."""
    setting = model_params["stream_weights"]
    if fusion != "late":
        return None, []
    if setting == "val":
        return _tuned_stream_weights(scores, rows)
    if not isinstance(setting, dict) or set(setting) != set(scores) or not all(
            isinstance(w, (int, float)) and w >= 0 for w in setting.values()) or not sum(setting.values()) > 0:
        raise ConfigError(f"model.stream_weights must be 'val' or a non-negative weight for each of {list(scores)}, not {setting!r}")
    total = float(sum(setting.values()))
    return {s: float(setting[s]) / total for s in scores}, []


def _val_rows(rows: pl.DataFrame) -> np.ndarray:
    return (rows["split"] == "val").to_numpy() & rows["label"].is_not_null().to_numpy()


def _val_top1(probs: np.ndarray, rows: pl.DataFrame) -> float | None:
    val = _val_rows(rows)
    return float((probs[val].argmax(1) == rows["label"].to_numpy()[val]).mean()) if val.any() else None


def _tuned_stream_weights(scores: dict[str, np.ndarray], rows: pl.DataFrame) -> tuple[dict, list]:
    val = _val_rows(rows)
    try:
        weights, trials = track1.tune_stream_weights({s: v[val] for s, v in scores.items()}, rows["label"].to_numpy()[val])
    except ValueError as error:
        raise ConfigError(f"model.stream_weights: val: {error}") from None
    typer.echo(f"track1: stream weights {weights}: {track1.fusion_choice(weights)} (tuned on {int(val.sum())} val clips)")
    return weights, trials


@app.command()
@clean_errors
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Top-1, top-5, mean class, head and tail accuracy on evaluate.split; confusion matrix for dvc plots."""
    evaluation = section(load_params(params), "evaluate")
    manifest = _manifest()
    split = evaluation["split"]
    scores = read_parquet(SCORES).filter(pl.col("split") == split)
    if scores.is_empty():
        raise ConfigError(f"no {split} clips in {SCORES}")
    if scores["label"].null_count():
        raise ConfigError(f"the {split} split has no labels (a real test split?): evaluate on val instead")
    labels = scores["label"].to_numpy()
    probs = np.array(scores["scores"].to_list())
    train_labels = _split(manifest, "train")["label"].to_numpy()
    result = classification_metrics(labels, probs, head_classes=head_classes_from_counts(train_labels, int(evaluation["head_k"])))
    counts = np.bincount(train_labels, minlength=imigue.NUM_CLASSES)
    result.update({"split": split, "majority_class_rate": float((labels == counts.argmax()).mean())})
    result["streams"] = _stream_metrics(scores, labels)
    result["baselines"] = _baselines(manifest, split)
    write_json({"per_class": result.pop("per_class"), "head_classes": result.pop("head_classes")}, Path("metrics/track1_per_class.json"))
    write_json(result, Path("metrics/track1.json"))
    _write_confusion(labels, probs.argmax(1), Path("plots/track1/confusion.csv"))
    typer.echo(f"track1 {split}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f}, mean class {result['mean_class_accuracy']:.4f} "
               f"(majority class rate {result['majority_class_rate']:.4f}); streams: "
               + ", ".join(f"{name} {m['top1']:.4f}" for name, m in result["streams"].items())
               + "; baselines: " + ", ".join(f"{name} {v:.4f}" for name, v in result["baselines"].items()))


def _baselines(manifest: pl.DataFrame, split: str) -> dict[str, float]:
    """Top-1 of pooled-joint-statistics baselines (logistic regression, 1-NN, 5-NN) on the same keypoints and split."""
    store = KeypointStore(interim("imigue") / "keypoints.parquet")
    labelled = lambda name: dict(_split(manifest, name).select("sample_id", "label").iter_rows())  # noqa: E731
    train, evaluated = labelled("train"), labelled(split)
    return clip_baselines_on({sid: store[sid] for sid in {**train, **evaluated}}, store.layout, train, evaluated)


@app.command()
@clean_errors
def ensemble(params: Path = PARAMS_OPTION, out: Path = typer.Option(Path("submissions/track1_ensemble.csv"), help="Submission to write.")) -> None:
    """Weighted average of saved score files (`ensemble.members` in params.yaml: file, column, weight), e.g. the
    joint, limb and RGB models of several experiments; scores it on evaluate.split and writes a test submission."""
    config = load_params(params)
    members = section(config, "ensemble").get("members") or []
    if not members:
        raise ConfigError("ensemble.members is empty: list {file, column (default scores), weight} entries in params.yaml")
    tables, scores = {}, {}
    for index, member in enumerate(members):
        path, column = Path(member["file"]), member.get("column", "scores")
        table = read_parquet(path)
        if column not in table.columns:
            raise ConfigError(f"{path}: no column {column!r} (has {table.columns})")
        name = f"{index}:{path.name}:{column}"
        tables[name] = table.sort("sample_id")
        scores[name] = np.array(tables[name][column].to_list())
    first = next(iter(tables.values()))
    for name, table in tables.items():
        if table["sample_id"].to_list() != first["sample_id"].to_list():
            raise ConfigError(f"ensemble member {name} scores other samples than {next(iter(tables))}")
    weights = {f"{i}:{Path(m['file']).name}:{m.get('column', 'scores')}": float(m.get("weight", 1.0)) for i, m in enumerate(members)}
    fused = track1.ensemble(scores, weights)
    evaluation = section(config, "evaluate")
    split = first["split"] == evaluation["split"]
    labels = first["label"].to_numpy()
    if split.any() and not first.filter(split)["label"].null_count():
        train_labels = _split(_manifest(), "train")["label"].to_numpy()
        result = classification_metrics(labels[split.to_numpy()], fused[split.to_numpy()],
                                        head_classes=head_classes_from_counts(train_labels, int(evaluation["head_k"])))
        result.pop("per_class")
        write_json(result, Path("metrics/track1_ensemble.json"))
        typer.echo(f"ensemble of {len(members)} on {evaluation['split']}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f}")
    test = (first["split"] == "test").to_numpy()
    write_track1(track1_frame(first["sample_id"].filter(pl.Series(test)).to_list(), fused[test].argmax(1)), out)
    typer.echo(f"ensemble: {int(test.sum())} test rows -> {out}")


def _stream_metrics(scores: pl.DataFrame, labels: np.ndarray) -> dict:
    """Top-1, top-5 and mean class accuracy of each stream's own scores (`scores_<stream>` columns),
    so one fused run shows what fusion adds over pose alone (and `dvc metrics diff` lines them up)."""
    out = {}
    for column in sorted(c for c in scores.columns if c.startswith("scores_")):
        result = classification_metrics(labels, np.array(scores[column].to_list()))
        out[column.removeprefix("scores_")] = {k: result[k] for k in ("top1", "top5", "mean_class_accuracy")}
    return out


def _write_confusion(labels: np.ndarray, predicted: np.ndarray, path: Path) -> None:
    names = np.array(imigue.CLASS_NAMES)
    with atomic_path(path) as tmp:
        pl.DataFrame({"actual": names[labels], "predicted": names[predicted]}).write_csv(tmp)


if __name__ == "__main__":
    app()
