"""Track 2 (online recognition on SMG-style sequences): train, predict, evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
import typer

from miga import track2
from miga.contracts import validate_detections, validate_manifest, validate_segments
from miga.datasets import format_of, reader
from miga.io import KeypointStore, read_parquet, write_json, write_parquet
from miga.metrics import detection_metrics
from miga.models import build_model
from miga.plots import timeline
from miga.submission import track2_frame, write_track2
from miga.training import TrainConfig, fingerprint, fit, save_checkpoint, seed_everything
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params, section
from stages.live import EpochLogger

app = typer.Typer(add_completion=False, help=__doc__)
MODEL_DIR = Path("models/track2")
CHECKPOINT = Path("checkpoints/track2/last.pt")
DETECTIONS = Path("data/predictions/track2_detections.parquet")


class Track2Data:
    """The Track 2 dataset named by `track2.dataset`: manifest, ground-truth segments, keypoints, classes."""

    def __init__(self, config: dict):
        name = section(config, "track2").get("dataset", "smg")
        entry = dataset_entry(config, name)
        self.class_names = reader(format_of(name, entry)).class_names(Path(entry["root"]))
        self.num_classes = len(self.class_names)
        folder = interim(name)
        self.manifest = validate_manifest(read_parquet(folder / "manifest.parquet"), str(folder / "manifest.parquet"))
        self.segments = validate_segments(read_parquet(folder / "segments.parquet"), str(folder / "segments.parquet"), self.num_classes)
        self.store = KeypointStore(folder / "keypoints.parquet")


def _features(manifest: pl.DataFrame, store: KeypointStore, split: str) -> dict[str, np.ndarray]:
    ids = manifest.filter(pl.col("split") == split)["sample_id"].to_list()
    return {sample_id: track2.frame_features(store[sample_id], store.layout) for sample_id in ids}


def _build(options: dict, in_features: int, num_classes: int) -> torch.nn.Module:
    return build_model(
        "temporal_convnet", in_features=in_features, num_classes=num_classes + 1,
        channels=int(options["channels"]), layers=int(options["layers"]), dropout=float(options["dropout"]),
    )


@app.command()
@clean_errors
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the per-frame classifier on random windows of the training sequences."""
    params_all = load_params(params)
    options = section(params_all, "track2")
    config = TrainConfig(
        epochs=int(options["epochs"]), batch_size=int(options["batch_size"]), lr=float(options["lr"]),
        weight_decay=float(options["weight_decay"]), seed=int(options["seed"]), workers=0,
    )
    seed_everything(config.seed)
    data = Track2Data(params_all)
    manifest, segments, store = data.manifest, data.segments, data.store
    features = _features(manifest, store, "train")
    if not features:
        raise typer.BadParameter("no training sequences in the manifest")
    standardize = track2.Standardizer.fit(list(features.values()))
    inputs = [standardize(f) for f in features.values()]
    labels = [track2.frame_labels(len(f), segments.filter(pl.col("sample_id") == sid)) for sid, f in features.items()]
    dataset = track2.WindowDataset(inputs, labels, window=int(options["window"]), per_epoch=int(options["windows_per_epoch"]), seed=config.seed)
    model = _build(options, inputs[0].shape[1], data.num_classes)
    run_id = fingerprint(options, sorted(features), [len(f) for f in inputs])
    with EpochLogger("dvclive/track2") as logger:
        history = fit(model, dataset, config=config, loss_fn=track2.window_loss, checkpoint=CHECKPOINT, run_id=run_id,
                      description="track2", on_epoch=lambda epoch, stats: {})
        logger.log_history(history)
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    save_checkpoint(MODEL_DIR / "model.pt", {
        "model": model.state_dict(), "in_features": inputs[0].shape[1],
        "mean": torch.from_numpy(standardize.mean), "std": torch.from_numpy(standardize.std), "history": history,
    })
    typer.echo(f"track2: trained on {len(inputs)} sequences ({sum(len(f) for f in inputs)} frames) -> {MODEL_DIR}")


def _probabilities(model, standardize, manifest, store, split) -> dict[str, np.ndarray]:
    return {sid: track2.sequence_probabilities(model, standardize(f)) for sid, f in _features(manifest, store, split).items()}


@app.command()
@clean_errors
def predict(params: Path = PARAMS_OPTION) -> None:
    """Tune the decoding threshold on the validation split for F1, then detect on val and test."""
    config = load_params(params)
    options, evaluation = section(config, "track2"), section(config, "evaluate")
    data = Track2Data(config)
    manifest, segments, store = data.manifest, data.segments, data.store
    state = torch.load(MODEL_DIR / "model.pt", map_location="cpu", weights_only=True)
    model = _build(options, int(state["in_features"]), data.num_classes)
    model.load_state_dict(state["model"])
    standardize = track2.Standardizer(state["mean"].numpy(), state["std"].numpy())
    base = track2.DecodeConfig(min_length=int(options["min_length"]), smooth=int(options["smooth"]), nms_iou=float(options["nms_iou"]))
    val_probs = _probabilities(model, standardize, manifest, store, "val")
    iou = float(evaluation["iou_threshold"])
    if val_probs:
        val_segments = segments.filter(pl.col("sample_id").is_in(list(val_probs)))
        decode_config, trials = track2.tune_threshold(val_probs, val_segments, base, options["thresholds"], data.num_classes, iou)
    else:
        decode_config, trials = base, []
    test_probs = _probabilities(model, standardize, manifest, store, "test")
    detections = track2.decode({**val_probs, **test_probs}, decode_config)
    write_parquet(detections, DETECTIONS)
    test_detections = detections.filter(pl.col("sample_id").is_in(list(test_probs)))
    write_track2(track2_frame(test_detections, class_base=int(evaluation["track2_class_base"])), Path("submissions/track2.csv"))
    write_json({"threshold": decode_config.threshold, "val_trials": trials}, Path("metrics/track2_tuning.json"))
    typer.echo(f"track2: threshold {decode_config.threshold} (tuned on {len(val_probs)} val sequences); "
               f"{test_detections.height} test detections -> submissions/track2.csv")


@app.command()
@clean_errors
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Precision, recall and F1 at temporal overlap > iou_threshold, official and one-to-one matching."""
    config = load_params(params)
    evaluation = section(config, "evaluate")
    data = Track2Data(config)
    manifest, segments = data.manifest, data.segments
    split = evaluation["split"]
    ids = manifest.filter(pl.col("split") == split)["sample_id"].to_list()
    detections = validate_detections(read_parquet(DETECTIONS), str(DETECTIONS), data.num_classes)
    result = detection_metrics(
        segments.filter(pl.col("sample_id").is_in(ids)), detections.filter(pl.col("sample_id").is_in(ids)),
        num_classes=data.num_classes, iou_threshold=float(evaluation["iou_threshold"]),
    )
    result.update({"split": split, "num_sequences": len(ids)})
    write_json(result, Path("metrics/track2.json"))
    _timelines(data, detections, ids, Path("plots/track2"))
    official, strict = result["official"], result["one_to_one"]
    typer.echo(f"track2 {split}: F1 {official['f1']:.4f} (P {official['precision']:.3f}, R {official['recall']:.3f}); "
               f"one-to-one F1 {strict['f1']:.4f}")


def _timelines(data: Track2Data, detections: pl.DataFrame, ids: list[str], folder: Path) -> None:
    lengths = dict(data.manifest.select("sample_id", "end_frame").iter_rows())
    for sample_id in ids:
        timeline(
            data.segments.filter(pl.col("sample_id") == sample_id), detections.filter(pl.col("sample_id") == sample_id),
            num_frames=lengths[sample_id] + 1, class_names=data.class_names, title=sample_id, path=folder / f"{sample_id}.png",
        )


if __name__ == "__main__":
    app()
