"""Track 2 on a project's files: its dataset, training the configured detector, loading it, tuned decoding.

Shared by the `track2` and `online` stages and the benchmarks; knows nothing of DVC or the CLI
(the stage logs the returned training history to dvclive).
"""

from __future__ import annotations

import dataclasses
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

    @classmethod
    def from_tables(cls, class_names: list[str], manifest: pl.DataFrame, segments: pl.DataFrame, store) -> "Track2Data":
        """The same view over tables in memory (`store[sample_id] -> (M, T, V, 3)`, `store.layout`): e.g. cross-validation
        folds that reassign the manifest's `split` column (benchmarks/real_track2.py)."""
        data = cls.__new__(cls)
        data.class_names, data.num_classes = list(class_names), len(class_names)
        data.manifest = validate_manifest(manifest, "manifest")
        data.segments = validate_segments(segments, "segments", data.num_classes)
        data.store = store
        return data

    def with_splits(self, splits: dict[str, str]) -> "Track2Data":
        """A copy whose manifest `split` is `splits[sample_id]` (sequences not named are dropped)."""
        manifest = self.manifest.filter(pl.col("sample_id").is_in(list(splits)))
        manifest = manifest.with_columns(pl.col("sample_id").replace_strict(splits).alias("split"))
        return Track2Data.from_tables(self.class_names, manifest, self.segments, self.store)

    def features(self, split: str, config: track2.FeatureConfig = track2.FeatureConfig()) -> dict[str, np.ndarray]:
        """Per-frame features (`config`: which parts, `track2.features`) of every sequence of `split`, by sample id."""
        ids = self.manifest.filter(pl.col("split") == split)["sample_id"].to_list()
        return {sample_id: track2.frame_features(self.store[sample_id], self.store.layout, config) for sample_id in ids}


def fit_detector(config: dict, data: Track2Data, checkpoint: Path = TRACK2_CHECKPOINT):
    """Train the `track2.detector` on the training split of `data`, resuming from `checkpoint`.

    Returns (model, standardizer, layout, history, training features by sample id)."""
    options = config["track2"]
    track2.detector_of(options)
    train_config = track2.train_config(options)
    seed_everything(train_config.seed)
    torch.set_num_threads(int(options.get("threads", 1)))  # BENCHMARKS.md: 1 thread is as fast as 2 here
    feature_config = track2.feature_config(options)
    features = data.features("train", feature_config)
    if not features:
        raise DatasetFormatError(f"{dataset_name(config)}: no training sequences in the manifest")
    standardize = track2.Standardizer.fit(list(features.values()))
    inputs, ids = [standardize(f) for f in features.values()], list(features)
    if options.get("mirror", False):
        store = data.store
        inputs += [standardize(track2.frame_features(track2.mirrored(store[sid], store.layout), store.layout, feature_config)) for sid in features]
        ids += list(features)
    copies, rng = int(options.get("affine_copies", 0)), np.random.default_rng(train_config.seed)
    for _ in range(copies):
        store = data.store
        strength = float(options.get("affine_strength", 0.1))
        inputs += [standardize(track2.frame_features(track2.affine_copy(store[sid], rng, strength), store.layout, feature_config))
                   for sid in features]
        ids += list(features)
    per_sequence = [data.segments.filter(pl.col("sample_id") == sid) for sid in ids]
    model = track2.build_detector(options, inputs[0].shape[1], data.num_classes)
    run_id = fingerprint(options, sorted(features), [len(f) for f in inputs])
    if not isinstance(model, track2.Averaged):
        dataset, loss_fn = track2.training_set(options, inputs, per_sequence, data.num_classes, train_config.seed)
        history = fit(model, dataset, config=train_config, loss_fn=loss_fn, checkpoint=checkpoint, run_id=run_id,
                      description="track2", on_epoch=lambda epoch, stats: {})
        return model, standardize, data.store.layout, history, features
    histories = []
    for index, member in enumerate(model.members):  # member i: seed track2.seed + i (data draw and initial weights)
        seed = train_config.seed + index
        seed_everything(seed)
        member.load_state_dict(track2.build_detector({**options, "ensemble": 1}, inputs[0].shape[1], data.num_classes).state_dict())
        dataset, loss_fn = track2.training_set(options, inputs, per_sequence, data.num_classes, seed)
        path = Path(checkpoint)
        histories.append(fit(member, dataset, config=dataclasses.replace(train_config, seed=seed), loss_fn=loss_fn,
                             checkpoint=path.with_name(f"{path.stem}.{index}{path.suffix}"), run_id=f"{run_id}.{index}",
                             description=f"track2 member {index}", on_epoch=lambda epoch, stats: {}))
    history = [{k: (float(np.mean([h[i][k] for h in histories])) if k != "epoch" and isinstance(v, float) else v) for k, v in row.items()}
               for i, row in enumerate(histories[0])]  # the members' mean per epoch
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
    return tuned_decoding(options, tuning)[0]


def tuned_decoding(options: dict, tuning: Path = TRACK2_TUNING) -> tuple[float, dict]:
    """(threshold, decoding setting: smooth / min_length when `track2` lists several) that `predict_track2` tuned on val."""
    if not Path(tuning).exists():
        return float(np.median(options["thresholds"])), {}
    recorded = json.loads(Path(tuning).read_text())
    return recorded["threshold"], dict(recorded.get("decoding", {}))


def tuned_detections(config: dict, model: torch.nn.Module, standardize: track2.Standardizer, data: Track2Data):
    """Val and test detections of `data` at the score threshold and decoding setting (`track2.decode_grid`) that maximise
    val F1 (official rule).

    Returns (detections, threshold, val trials, val sample ids, test sample ids); `track2.best_trial(trials)` holds the setting."""
    options = config["track2"]
    iou = float(config["evaluate"]["iou_threshold"])
    feature_config = track2.feature_config(options)
    val_features, test_features = data.features("val", feature_config), data.features("test", feature_config)
    decode_at = track2.make_decoder(model, options, {sid: standardize(f) for sid, f in {**val_features, **test_features}.items()})
    thresholds = [float(t) for t in options["thresholds"]]
    setting: dict = {}
    if val_features:
        val_segments = data.segments.filter(pl.col("sample_id").is_in(list(val_features)))
        val_decode = lambda t, **kw: decode_at(t, **kw).filter(pl.col("sample_id").is_in(list(val_features)))  # noqa: E731
        threshold, trials = track2.tune_for_f1(val_decode, val_segments, thresholds, data.num_classes, iou, track2.decode_grid(options))
        best = track2.best_trial(trials)
        setting = {k: best[k] for k in ("smooth", "min_length") if k in best}
    else:
        threshold, trials = float(np.median(thresholds)), []
    return decode_at(threshold, **setting), threshold, trials, list(val_features), list(test_features)
