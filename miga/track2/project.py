"""Track 2 on a project's files: its dataset, training the configured detector, loading it, tuned decoding.

Shared by the `track2` and `online` stages and the benchmarks; knows nothing of DVC or the CLI
(the stage logs the returned training history to dvclive).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import torch

from miga.contracts import validate_manifest, validate_segments
from miga.datasets import DatasetFormatError, format_of, reader
from miga.io import KeypointStore, read_parquet
from miga.models import load_trained
from miga.project import TRACK2_CHECKPOINT, TRACK2_MODEL, TRACK2_TUNING, interim
from miga.track2 import recipe as track2
from miga.training import fingerprint, fit, seed_everything


def dataset_name(config: dict) -> str:
    return str(config["track2"].get("dataset", "smg"))


def class_names(config: dict, project: Path = Path(".")) -> list[str]:
    """Class names of the dataset named by `track2.dataset`, from its reader."""
    name = dataset_name(config)
    entry = config["datasets"][name]
    return reader(format_of(name, entry)).class_names(Path(project) / entry["root"], entry)


class Track2Data:
    """The Track 2 dataset named by `track2.dataset`: manifest, ground-truth segments, keypoints, classes.

    `project` is the directory the config's relative paths start from (the working directory by default)."""

    def __init__(self, config: dict, project: Path = Path(".")):
        self.class_names = class_names(config, project)
        self.num_classes = len(self.class_names)
        folder = interim(dataset_name(config), project)
        self.manifest = validate_manifest(read_parquet(folder / "manifest.parquet"), str(folder / "manifest.parquet"))
        self.segments = validate_segments(read_parquet(folder / "segments.parquet"), str(folder / "segments.parquet"), self.num_classes)
        self.store = KeypointStore(folder / "keypoints.parquet")

    def features(self, split: str) -> dict[str, np.ndarray]:
        """Per-frame features of every sequence of `split`, by sample id."""
        ids = self.manifest.filter(pl.col("split") == split)["sample_id"].to_list()
        return {sample_id: track2.frame_features(self.store[sample_id], self.store.layout) for sample_id in ids}


def fit_detector(config: dict, data: Track2Data, checkpoint: Path = TRACK2_CHECKPOINT):
    """Train the `track2.detector` on the training split of `data`, resuming from `checkpoint`.

    Returns (model, standardizer, layout, history, training features by sample id)."""
    options = config["track2"]
    track2.detector_of(options)
    train_config = track2.train_config(options)
    seed_everything(train_config.seed)
    torch.set_num_threads(int(options.get("threads", 1)))  # BENCHMARKS.md: 1 thread is as fast as 2 here
    features = data.features("train")
    if not features:
        raise DatasetFormatError(f"{dataset_name(config)}: no training sequences in the manifest")
    standardize = track2.Standardizer.fit(list(features.values()))
    inputs, ids = [standardize(f) for f in features.values()], list(features)
    if options.get("mirror", False):
        store = data.store
        inputs += [standardize(track2.frame_features(track2.mirrored(store[sid], store.layout), store.layout)) for sid in features]
        ids += list(features)
    per_sequence = [data.segments.filter(pl.col("sample_id") == sid) for sid in ids]
    dataset, loss_fn = track2.training_set(options, inputs, per_sequence, data.num_classes, train_config.seed)
    model = track2.build_detector(options, inputs[0].shape[1], data.num_classes)
    run_id = fingerprint(options, sorted(features), [len(f) for f in inputs])
    history = fit(model, dataset, config=train_config, loss_fn=loss_fn, checkpoint=checkpoint, run_id=run_id,
                  description="track2", on_epoch=lambda epoch, stats: {})
    return model, standardize, data.store.layout, history, features


def detector_state(model: torch.nn.Module, standardize: track2.Standardizer, layout: str, history: list[dict]) -> dict:
    """What `models/track2/model.pt` holds."""
    return {"model": model.state_dict(), "in_features": len(standardize.mean), "layout": layout,
            "mean": torch.from_numpy(standardize.mean), "std": torch.from_numpy(standardize.std), "history": history}


def load_detector(options: dict, num_classes: int, path: Path = TRACK2_MODEL) -> tuple[torch.nn.Module, track2.Standardizer, str | None]:
    """The trained detector, its feature standardizer and the keypoint layout it was trained on (CPU threads per `track2.threads`)."""
    track2.detector_of(options)
    torch.set_num_threads(int(options.get("threads", 1)))
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: trained detector not found (run train_track2: dvc repro)")
    in_features = int(torch.load(path, map_location="cpu", weights_only=True)["in_features"])
    model = track2.build_detector(options, in_features, num_classes)
    state = load_trained(model, path)
    return model, track2.Standardizer(state["mean"].numpy(), state["std"].numpy()), state.get("layout")


def tuned_threshold(options: dict, tuning: Path = TRACK2_TUNING) -> float:
    """The val-tuned score threshold `predict_track2` recorded, else the middle of `track2.thresholds`."""
    return json.loads(Path(tuning).read_text())["threshold"] if Path(tuning).exists() else float(np.median(options["thresholds"]))


def tuned_detections(config: dict, model: torch.nn.Module, standardize: track2.Standardizer, data: Track2Data):
    """Val and test detections of `data` at the score threshold that maximises val F1 (official rule).

    Returns (detections, threshold, val trials, val sample ids, test sample ids)."""
    options = config["track2"]
    iou = float(config["evaluate"]["iou_threshold"])
    val_features, test_features = data.features("val"), data.features("test")
    decode_at = track2.make_decoder(model, options, {sid: standardize(f) for sid, f in {**val_features, **test_features}.items()})
    thresholds = [float(t) for t in options["thresholds"]]
    if val_features:
        val_segments = data.segments.filter(pl.col("sample_id").is_in(list(val_features)))
        val_decode = lambda t: decode_at(t).filter(pl.col("sample_id").is_in(list(val_features)))  # noqa: E731
        threshold, trials = track2.tune_for_f1(val_decode, val_segments, thresholds, data.num_classes, iou)
    else:
        threshold, trials = float(np.median(thresholds)), []
    return decode_at(threshold), threshold, trials, list(val_features), list(test_features)
