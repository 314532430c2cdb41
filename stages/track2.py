"""Track 2 (online recognition on SMG-style sequences): train, predict, evaluate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch
import typer

from miga import track2
from miga.models import load_trained
from miga.contracts import validate_detections, validate_manifest, validate_segments
from miga.datasets import format_of, reader
from miga.io import KeypointStore, read_parquet, write_json, write_parquet
from miga.metrics import detection_metrics
from miga.plots import timeline
from miga.submission import track2_frame, write_track2
from miga.training import fingerprint, fit, save_checkpoint, seed_everything
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params, section
from stages.live import EpochLogger

app = typer.Typer(add_completion=False, help=__doc__)
MODEL_DIR = Path("models/track2")
CHECKPOINT = Path("checkpoints/track2/last.pt")
DETECTIONS = Path("data/predictions/track2_detections.parquet")


class Track2Data:
    """The Track 2 dataset named by `track2.dataset`: manifest, ground-truth segments, keypoints, classes.

    `project` is the directory the config's relative paths start from (the working directory by default)."""

    def __init__(self, config: dict, project: Path = Path(".")):
        name = section(config, "track2").get("dataset", "smg")
        self.class_names = class_names(config, project)
        self.num_classes = len(self.class_names)
        folder = project / interim(name)
        self.manifest = validate_manifest(read_parquet(folder / "manifest.parquet"), str(folder / "manifest.parquet"))
        self.segments = validate_segments(read_parquet(folder / "segments.parquet"), str(folder / "segments.parquet"), self.num_classes)
        self.store = KeypointStore(folder / "keypoints.parquet")


def class_names(config: dict, project: Path = Path(".")) -> list[str]:
    """Class names of the dataset named by `track2.dataset`, from its reader."""
    name = section(config, "track2").get("dataset", "smg")
    entry = dataset_entry(config, name)
    return reader(format_of(name, entry)).class_names(project / entry["root"])


def _features(manifest: pl.DataFrame, store: KeypointStore, split: str) -> dict[str, np.ndarray]:
    ids = manifest.filter(pl.col("split") == split)["sample_id"].to_list()
    return {sample_id: track2.frame_features(store[sample_id], store.layout) for sample_id in ids}


def _detector(options: dict) -> str:
    return track2.detector_of(options)


def fit_detector(params_all: dict, checkpoint: Path = CHECKPOINT, log_dir: str | None = "dvclive/track2", data: Track2Data | None = None):
    """Train the `track2.detector` on the training split of `data` (default: the project's), resuming from `checkpoint`.

    Returns (model, standardizer, layout, history, training features by sample id)."""
    options = section(params_all, "track2")
    _detector(options)
    config = track2.train_config(options)
    seed_everything(config.seed)
    torch.set_num_threads(int(options.get("threads", 1)))  # BENCHMARKS.md: 1 thread is as fast as 2 here
    data = data if data is not None else Track2Data(params_all)
    manifest, segments, store = data.manifest, data.segments, data.store
    features = _features(manifest, store, "train")
    if not features:
        raise typer.BadParameter("no training sequences in the manifest")
    standardize = track2.Standardizer.fit(list(features.values()))
    inputs, ids = [standardize(f) for f in features.values()], list(features)
    if options.get("mirror", False):
        inputs += [standardize(track2.frame_features(track2.mirrored(store[sid], store.layout), store.layout)) for sid in features]
        ids += list(features)
    per_sequence = [segments.filter(pl.col("sample_id") == sid) for sid in ids]
    dataset, loss_fn = track2.training_set(options, inputs, per_sequence, data.num_classes, config.seed)
    model = track2.build_detector(options, inputs[0].shape[1], data.num_classes)
    run_id = fingerprint(options, sorted(features), [len(f) for f in inputs])
    train = lambda: fit(model, dataset, config=config, loss_fn=loss_fn, checkpoint=checkpoint, run_id=run_id,  # noqa: E731
                        description="track2", on_epoch=lambda epoch, stats: {})
    if log_dir is None:
        history = train()
    else:
        with EpochLogger(log_dir) as logger:
            history = train()
            logger.log_history(history)
    return model, standardize, store.layout, history, features


@app.command()
@clean_errors
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the detector (`track2.detector`) on random windows of the training sequences."""
    params_all = load_params(params)
    model, standardize, layout, history, features = fit_detector(params_all)
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    save_checkpoint(MODEL_DIR / "model.pt", {
        "model": model.state_dict(), "in_features": len(standardize.mean), "layout": layout,
        "mean": torch.from_numpy(standardize.mean), "std": torch.from_numpy(standardize.std), "history": history,
    })
    mirrored = " (each also mirrored)" if section(params_all, "track2").get("mirror", False) else ""
    typer.echo(f"track2: trained on {len(features)} sequences{mirrored} ({sum(len(f) for f in features.values())} frames) -> {MODEL_DIR}")


def load_detector(options: dict, num_classes: int) -> tuple[torch.nn.Module, track2.Standardizer, str | None]:
    """The trained detector, its feature standardizer and the keypoint layout it was trained on (CPU threads per `track2.threads`)."""
    _detector(options)
    torch.set_num_threads(int(options.get("threads", 1)))
    path = MODEL_DIR / "model.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: trained detector not found (run train_track2: dvc repro)")
    in_features = int(torch.load(path, map_location="cpu", weights_only=True)["in_features"])
    model = track2.build_detector(options, in_features, num_classes)
    state = load_trained(model, path)
    return model, track2.Standardizer(state["mean"].numpy(), state["std"].numpy()), state.get("layout")


def tuned_detections(config: dict, model: torch.nn.Module, standardize: track2.Standardizer, data: Track2Data | None = None):
    """Val and test detections of `data` (default: the project's) at the score threshold that maximises val F1 (official rule).

    Returns (detections, threshold, val trials, val sample ids, test sample ids)."""
    options, evaluation = section(config, "track2"), section(config, "evaluate")
    data = data if data is not None else Track2Data(config)
    manifest, segments, store = data.manifest, data.segments, data.store
    iou = float(evaluation["iou_threshold"])
    val_features = _features(manifest, store, "val")
    test_features = _features(manifest, store, "test")
    decode_at = track2.make_decoder(model, options, {sid: standardize(f) for sid, f in {**val_features, **test_features}.items()})
    thresholds = [float(t) for t in options["thresholds"]]
    if val_features:
        val_segments = segments.filter(pl.col("sample_id").is_in(list(val_features)))
        val_decode = lambda t: decode_at(t).filter(pl.col("sample_id").is_in(list(val_features)))  # noqa: E731
        threshold, trials = track2.tune_for_f1(val_decode, val_segments, thresholds, data.num_classes, iou)
    else:
        threshold, trials = float(np.median(thresholds)), []
    return decode_at(threshold), threshold, trials, list(val_features), list(test_features)


@app.command()
@clean_errors
def predict(params: Path = PARAMS_OPTION) -> None:
    """Tune the decoding threshold on the validation split for F1, then detect on val and test."""
    config = load_params(params)
    options, evaluation = section(config, "track2"), section(config, "evaluate")
    data = Track2Data(config)
    model, standardize, _ = load_detector(options, data.num_classes)
    detections, threshold, trials, val_ids, test_ids = tuned_detections(config, model, standardize, data)
    write_parquet(detections, DETECTIONS)
    test_detections = detections.filter(pl.col("sample_id").is_in(test_ids))
    write_track2(track2_frame(test_detections, class_base=int(evaluation["track2_class_base"])), Path("submissions/track2.csv"))
    write_json({"detector": _detector(options), "threshold": threshold, "val_trials": trials}, Path("metrics/track2_tuning.json"))
    typer.echo(f"track2 ({_detector(options)}): threshold {threshold} (tuned on {len(val_ids)} val sequences); "
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
    write_json({mode: result[mode].pop("per_class") for mode in ("official", "one_to_one")}, Path("metrics/track2_per_class.json"))
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
