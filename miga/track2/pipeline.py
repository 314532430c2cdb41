"""Track 2 on a project's files: its dataset, training the configured detector, loading it, tuned decoding,
prediction and evaluation (the counterpart of `miga.track1.pipeline`).

Shared by the `track2` and `online` stages and the benchmarks; knows nothing of DVC or the CLI
(the stage logs the returned training history to dvclive).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import polars as pl
import torch

from miga.contracts import check_sample_id, validate_manifest, validate_segments
from miga.datasets import DatasetFormatError, format_of, reader
from miga.errors import ConfigError
from miga.baselines import fitted_window_baseline, window_baseline_detections, window_frame_probabilities
from miga.contracts import DETECTIONS_SCHEMA, validate_detections
from miga.evaluation.metrics import below_baseline_note, detection_metrics
from miga.evaluation.submission import track2_frame, write_track2
from miga.io import KeypointStore, read_parquet, write_json, write_parquet
from miga.plots import timeline
from miga.models import load_trained
from miga.project import TRACK2_CANDIDATES, TRACK2_CHECKPOINT, TRACK2_DETECTIONS, TRACK2_MODEL, TRACK2_TUNING, interim
from miga.skeleton import class_mirror
from miga.evaluation.significance import f1_win_rate
from miga.track2 import pretrain, relabel
from miga.track2 import recipe as track2
from miga.track2.detectors import frame_decoder
from miga.training import fingerprint, fit, read_torch_file, save_checkpoint, seed_everything


def dataset_name(config: dict) -> str:
    return str(config["track2"]["dataset"])


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
        return self.features_of(self.manifest.filter(pl.col("split") == split)["sample_id"].to_list(), config)

    def features_of(self, ids: list[str], config: track2.FeatureConfig = track2.FeatureConfig()) -> dict[str, np.ndarray]:
        """Per-frame features of the sequences `ids`, by sample id."""
        return {sample_id: track2.frame_features(self.store[sample_id], self.store.layout, config) for sample_id in ids}


def _class_mirror(options: Mapping, num_classes: int) -> np.ndarray:
    try:
        return class_mirror(options["train"]["mirror_classes"], num_classes)
    except ValueError as error:
        raise ConfigError(f"track2.train.mirror_classes: {error}") from None


def fit_detector(config: dict, data: Track2Data, checkpoint: Path = TRACK2_CHECKPOINT):
    """Train the `track2.detector` on the training split of `data`, resuming from `checkpoint`.

    Returns (model, standardizer, layout, history, training frames by sample id). The raw features are dropped as
    they are standardised: at SMG's size (0.85 M frames) each copy of the training features is gigabytes."""
    options = config["track2"]
    track2.detector_of(options)
    train_config = track2.train_config(options)
    seed_everything(train_config.seed)
    torch.set_num_threads(int(options["train"]["threads"]))  # BENCHMARKS.md: 1 thread is as fast as 2 here
    feature_config = track2.feature_config(options)
    features = data.features("train", feature_config)
    if not features:
        raise DatasetFormatError(f"{dataset_name(config)}: no training sequences in the manifest")
    twins = _class_mirror(options, data.num_classes)  # checked even when unused: a bad pair is an error either way
    if options["train"]["mirror_classes"] and not options["train"]["mirror"]:
        warnings.warn("track2.train.mirror_classes is set but track2.train.mirror is false: there are no mirrored copies, "
                      "so the pairs are unused", stacklevel=1)
    standardize = track2.Standardizer.fit(list(features.values()))
    lengths = {sid: len(f) for sid, f in features.items()}
    inputs, ids = [standardize(features.pop(sid)) for sid in list(lengths)], list(lengths)
    features = lengths
    if options["train"]["mirror"]:
        store = data.store
        inputs += [standardize(track2.frame_features(track2.mirrored(store[sid], store.layout), store.layout, feature_config)) for sid in features]
        ids += list(features)
    copies, rng = int(options["train"]["affine_copies"]), np.random.default_rng(train_config.seed)
    for _ in range(copies):
        store = data.store
        strength = float(options["train"]["affine_strength"])
        inputs += [standardize(track2.frame_features(track2.affine_copy(store[sid], rng, strength), store.layout, feature_config))
                   for sid in features]
        ids += list(features)
    per_sequence = [data.segments.filter(pl.col("sample_id") == sid) for sid in ids]
    if options["train"]["mirror"]:  # the mirrored copies follow the originals; their side classes swap
        per_sequence[len(features): 2 * len(features)] = [
            s.with_columns(pl.Series("label", twins[s["label"].to_numpy()], dtype=pl.Int64)) for s in per_sequence[len(features): 2 * len(features)]]
    model = track2.build_detector(options, inputs[0].shape[1], data.num_classes)
    run_id = fingerprint(options, sorted(features), [len(f) for f in inputs])
    unlabelled = _pretraining_frames(options, data, standardize, feature_config, inputs[: len(features)])
    if not isinstance(model, track2.Averaged):
        _pretrain(model, options, unlabelled, train_config, seed=train_config.seed, checkpoint=Path(checkpoint), run_id=run_id)
        dataset, loss_fn = track2.training_set(options, inputs, per_sequence, data.num_classes, train_config.seed)
        history = fit(model, dataset, config=train_config, loss_fn=loss_fn, checkpoint=checkpoint, run_id=run_id,
                      description="track2", on_epoch=lambda epoch, stats: {})
        return model, standardize, data.store.layout, history, features
    histories = []
    for index, member in enumerate(model.members):  # member i: seed track2.seed + i (data draw and initial weights)
        seed = train_config.seed + index
        seed_everything(seed)
        member.load_state_dict(track2.build_detector({**options, "model": {**options["model"], "ensemble": 1}}, inputs[0].shape[1], data.num_classes).state_dict())
        path = Path(checkpoint)
        _pretrain(member, options, unlabelled, train_config, seed=seed, checkpoint=path.with_name(f"{path.stem}.{index}{path.suffix}"),
                  run_id=f"{run_id}.{index}")
        dataset, loss_fn = track2.training_set(options, inputs, per_sequence, data.num_classes, seed)
        histories.append(fit(member, dataset, config=dataclasses.replace(train_config, seed=seed), loss_fn=loss_fn,
                             checkpoint=path.with_name(f"{path.stem}.{index}{path.suffix}"), run_id=f"{run_id}.{index}",
                             description=f"track2 member {index}", on_epoch=lambda epoch, stats: {}))
    history = [{k: (float(np.mean([h[i][k] for h in histories])) if k != "epoch" and isinstance(v, float) else v) for k, v in row.items()}
               for i, row in enumerate(histories[0])]  # the members' mean per epoch
    return model, standardize, data.store.layout, history, features


def _pretraining_frames(options: Mapping, data: Track2Data, standardize: track2.Standardizer, feature_config,
                        train_inputs: list[np.ndarray]) -> list[np.ndarray] | None:
    """The standardised feature sequences of `track2.pretrain.splits` (the training ones already at hand), or None
    when pretraining is off; only the frame detector has the trunk it pretrains."""
    pretraining = options["pretrain"]
    if not int(pretraining["epochs"]):
        return None
    if track2.detector_of(options) != "frame":
        raise ConfigError(f"track2.pretrain pretrains the frame detector's trunk; detector {track2.detector_of(options)!r} has "
                          "none (set track2.pretrain.epochs: 0)")
    frames = list(train_inputs) if "train" in pretraining["splits"] else []
    for split in dict.fromkeys(s for s in pretraining["splits"] if s != "train"):
        frames += [standardize(f) for f in data.features(split, feature_config).values()]
    return frames


def _pretrain(detector: torch.nn.Module, options: Mapping, frames: list[np.ndarray] | None, train_config, *, seed: int,
              checkpoint: Path, run_id: str) -> None:
    """Masked-frame pretraining of `detector`'s trunk on `frames` (labels unread), resuming from its own checkpoint
    beside `checkpoint`; nothing when `frames` is None."""
    if frames is None:
        return
    pretraining = options["pretrain"]
    seed_everything(seed)
    dataset = pretrain.MaskedFrames(frames, window=int(options["train"]["window"]), per_epoch=int(options["train"]["windows_per_epoch"]),
                                    seed=seed, mask_ratio=float(pretraining["mask_ratio"]), span=int(pretraining["mask_span"]))
    config = dataclasses.replace(train_config, epochs=int(pretraining["epochs"]), lr=float(pretraining["lr"]), seed=seed,
                                 optimizer="adamw")
    fit(pretrain.MaskedFrameModel(detector), dataset, config=config, loss_fn=pretrain.masked_frame_loss,
        checkpoint=checkpoint.with_name(f"{checkpoint.stem}.pretrain{checkpoint.suffix}"), run_id=f"{run_id}.pretrain",
        description="track2 pretrain", on_epoch=lambda epoch, stats: {})
    seed_everything(seed)


def detector_state(model: torch.nn.Module, standardize: track2.Standardizer, layout: str, history: list[dict]) -> dict:
    """What `models/track2/model.pt` holds."""
    return {"model": model.state_dict(), "in_features": len(standardize.mean), "layout": layout,
            "mean": torch.from_numpy(standardize.mean), "std": torch.from_numpy(standardize.std), "history": history}


def load_detector(options: dict, num_classes: int, path: Path = TRACK2_MODEL) -> tuple[torch.nn.Module, track2.Standardizer, str | None]:
    """The trained detector, its feature standardizer and the keypoint layout it was trained on (CPU threads per `track2.threads`)."""
    track2.detector_of(options)
    torch.set_num_threads(int(options["train"]["threads"]))
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: trained detector not found (run train_track2: dvc repro)")
    saved = read_torch_file(path, "delete it and retrain Track 2 (dvc repro)")
    if "in_features" not in saved:
        raise ConfigError(f"{path}: not a Track 2 detector file (no in_features); delete it and retrain Track 2 (dvc repro)")
    model = track2.build_detector(options, int(saved["in_features"]), num_classes)
    state = load_trained(model, path)
    return model, track2.Standardizer(state["mean"].numpy(), state["std"].numpy()), state.get("layout")


def tuned_decoding(options: dict, tuning: Path = TRACK2_TUNING, num_classes: int | None = None) -> tuple[float, dict]:
    """(threshold, decoding setting: smooth / min_length when `track2` lists several, per-class thresholds when tuned)
    that `predict_track2` tuned on val (`read_tuning`); per-class lists are checked against `num_classes` when given."""
    if not Path(tuning).exists():
        return float(np.median(options["decode"]["thresholds"])), {}
    recorded = read_tuning(Path(tuning), num_classes)
    if float(options["decode"]["relabel_weight"]):
        warnings.warn("track2.decode.relabel_weight is set, but streaming does not relabel: its detections take the "
                      "detector's classes, as with relabel_weight 0", stacklevel=2)
    if recorded["chosen"] != "detector":
        warnings.warn(f"{tuning}: predict chose {recorded['chosen']} over the trained detector on val; this streams the "
                      "trained detector (its val F1 is lower)", stacklevel=2)
    return float(recorded["threshold"]), dict(recorded["decoding"])


def read_tuning(path: Path, num_classes: int | None = None) -> dict:
    """`metrics/track2_tuning.json` as predict wrote it, every value `miga online` decodes with or `evaluate` reports
    checked (the threshold and decoding of the detector and of each candidate, their val F1, the choice); per-class
    lists against `num_classes` when given. A ConfigError naming the file and the way out otherwise."""
    try:
        tuning = json.loads(Path(path).read_text())
        missing = {"candidates", "chosen", "threshold", "decoding"} - set(tuning)
        if missing or not isinstance(tuning["candidates"], dict):
            raise KeyError(", ".join(sorted(missing)) or "candidates")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; run predict_track2 first (dvc repro)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigError(f"{path}: not the tuning predict_track2 writes ({type(error).__name__}); "
                          "delete it and rerun predict_track2 (dvc repro)") from None
    _check_decoding(path, "", tuning["threshold"], tuning["decoding"], num_classes)
    if tuning["chosen"] not in tuning["candidates"]:
        raise ConfigError(f"{path}: the chosen candidate {tuning['chosen']!r:.40} is not among its candidates "
                          f"{sorted(map(str, tuning['candidates']))}; rerun predict_track2 (dvc repro)")
    for key in ("switch_margin_f1", "switch_win_rate"):
        value = tuning.get(key)
        if value is not None and not _is_number_in(value, 0.0, 1.0):
            raise ConfigError(f"{path}: {key} must be a number in [0, 1], not {value!r:.40}; rerun predict_track2 (dvc repro)")
    for name, settings in tuning["candidates"].items():
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}: candidate {name!r:.40}: not a table of settings; rerun predict_track2 (dvc repro)")
        if settings.get("val_f1") is not None and not _is_number_in(settings["val_f1"], 0.0, 1.0):
            raise ConfigError(f"{path}: candidate {name}: val_f1 must be an F1 in [0, 1] (or null without val), not "
                              f"{settings['val_f1']!r:.40}; rerun predict_track2 (dvc repro)")
        factor = settings.get("length_factor", 1.0)
        if not _is_number_in(factor, 1.0, float("inf")):
            raise ConfigError(f"{path}: candidate {name}: length_factor must be a number >= 1, not {factor!r:.40}; "
                              "rerun predict_track2 (dvc repro)")
        if "threshold" in settings:  # the window baseline's decoding keys sit beside its threshold
            _check_decoding(path, f"candidate {name}: ", settings["threshold"], settings.get("decoding", settings), num_classes)
    return tuning


def _check_decoding(path: Path, where: str, threshold, decoding, num_classes: int | None) -> None:
    """A ConfigError naming `path` unless the threshold is a probability, smooth / min_length whole numbers >= 1 and
    the per-class lists probabilities / positive numbers (of `num_classes` each, when given)."""
    rerun = "rerun predict_track2 (dvc repro)"
    if not _is_number_in(threshold, 0.0, 1.0):
        raise ConfigError(f"{path}: {where}threshold {threshold!r:.40} is not a probability in [0, 1]; {rerun}")
    if not isinstance(decoding, dict):
        raise ConfigError(f"{path}: {where}decoding must be a table, not {decoding!r:.40}; {rerun}")
    for key in ("smooth", "min_length", "window", "stride", "min_windows"):
        value = decoding.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{path}: {where}decoding {key} must be a whole number >= 1, not {value!r:.40}; {rerun}")
    for key, what in (("class_thresholds", "per-class thresholds"), ("class_scale", "per-class length scales")):
        per_class = decoding.get(key)
        if per_class is None:
            continue
        if not _is_per_class_list(per_class, upper=1.0 if key == "class_thresholds" else None):
            bound = "probabilities in [0, 1]" if key == "class_thresholds" else "positive numbers"
            raise ConfigError(f"{path}: {where}{what} must be a list of {bound}, not {per_class!r:.80}; {rerun}")
        if num_classes is not None and len(per_class) != num_classes:
            raise ConfigError(f"{path}: {where}{what} for {len(per_class)} classes, but the detector has {num_classes}; {rerun}")


def _is_number_in(value, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def _is_per_class_list(values, upper: float | None) -> bool:
    """A list of finite numbers, each > 0 (scales) or in [0, `upper`] (thresholds)."""
    if not isinstance(values, list) or not values:
        return False
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)]
    if len(numbers) != len(values):
        return False
    return all(0.0 <= v <= upper for v in numbers) if upper is not None else all(v > 0 for v in numbers)


def split_ids(data: Track2Data, split: str) -> list[str]:
    return data.manifest.filter(pl.col("split") == split)["sample_id"].to_list()


def detector_outputs(options: dict, model: torch.nn.Module, standardize: track2.Standardizer, data: Track2Data,
                     ids: list[str]):
    """(decode_at over the sequences `ids`, their per-frame probabilities or None for kinds without them): the model
    runs once per sequence."""
    kind = track2.detector(options)
    features = {sid: standardize(f) for sid, f in data.features_of(ids, track2.feature_config(options)).items()}
    probs = kind.frame_probabilities(model, options, features)
    return (frame_decoder(probs, options) if probs is not None else kind.decoder(model, options, features)), probs


def _tuned_on_val(decode_at, data: Track2Data, val_ids: list[str], options: dict, iou: float) -> tuple[float, list[dict], dict, float | None]:
    """(threshold, val trials, decoding setting, val F1) of `decode_at` that maximise val F1 (official rule): the
    threshold with smooth / min_length, then, with `decode.class_thresholds_from`, per-class thresholds
    (`class_thresholds` in the setting) where they raise val F1. Without val sequences: the median threshold, no
    trials, the first setting and no val F1."""
    thresholds, grid = track2.decode_trials(options)
    if not val_ids:
        return float(np.median(thresholds)), [], {}, None
    val_segments = data.segments.filter(pl.col("sample_id").is_in(val_ids))
    val_decode = lambda t, **kw: decode_at(t, **kw).filter(pl.col("sample_id").is_in(val_ids))  # noqa: E731
    threshold, trials = track2.tune_for_f1(val_decode, val_segments, thresholds, data.num_classes, iou, grid)
    best = track2.best_trial(trials)
    setting = {k: best[k] for k in ("smooth", "min_length") if k in best}
    min_gestures = int(options["decode"]["class_thresholds_from"])
    if min_gestures:
        per_class, val_f1 = track2.tune_class_thresholds(val_decode, val_segments, thresholds, data.num_classes, iou, threshold,
                                                         setting, min_gestures, shared_f1=best["f1"])
        if per_class is not None:
            setting["class_thresholds"] = per_class
            return threshold, trials, setting, val_f1
    return threshold, trials, setting, best["f1"]


def tuned_detections(config: dict, model: torch.nn.Module, standardize: track2.Standardizer, data: Track2Data):
    """Val and test detections of `data` at the score threshold and decoding setting (`track2.decode_grid`) that maximise
    val F1 (official rule).

    Returns (detections, threshold, val trials, val sample ids, test sample ids); `track2.best_trial(trials)` holds the setting."""
    options = config["track2"]
    val_ids, test_ids = split_ids(data, "val"), split_ids(data, "test")
    decode_at, _ = detector_outputs(options, model, standardize, data, val_ids + test_ids)
    threshold, trials, setting, _ = _tuned_on_val(decode_at, data, val_ids, options, float(config["evaluate"]["iou_threshold"]))
    return decode_at(threshold, **setting), threshold, trials, val_ids, test_ids


@dataclasses.dataclass
class Candidates:
    """Every candidate's detections on val and test, its settings (`val_f1`, and threshold / decoding where tuned), the
    detector's val trials, and the one kept (with the val F1 margin it needed and, where another than the first won on
    val F1, that one's bootstrap win rate).

    `detector_decode_at`: the detector's `decode_at(threshold, **setting)` over the val and test sequences (what
    `detector_outputs` returned), to decode them at other settings without running the model again; `options`: the
    track2 options its trials were drawn from (`with_length_factor`)."""

    detections: dict[str, pl.DataFrame]
    settings: dict[str, dict]
    trials: list[dict]
    val_ids: list[str]
    test_ids: list[str]
    chosen: str
    switch_margin_f1: float
    detector_decode_at: track2.Decoder | None = None
    switch_win_rate: float | None = None  # where val F1 chose another than the first: how often it wins val resamples
    options: dict | None = None  # the track2 options as tuned: `decode.smooth` / `min_length` times the length factor

    @property
    def val_f1(self) -> dict[str, float | None]:
        return {name: settings["val_f1"] for name, settings in self.settings.items()}


def compare_candidates(config: dict, model: torch.nn.Module, standardize: track2.Standardizer, data: Track2Data, *,
                       blend: bool | None = None) -> Candidates:
    """The trained detector (threshold and decoding tuned on val for F1), the sliding-window logistic regression and,
    when `blend` (default: when `track2.decode.candidates` lists it), the two's per-frame probabilities averaged, each
    on val and test; the one kept is `choose_candidate`'s among `track2.decode.candidates`, unless its val gain over the
    first listed wins fewer than `track2.decode.switch_confidence` of block-bootstrap resamples of val (`f1_win_rate`):
    then the first. The `decode.smooth` / `min_length` grids are scaled by `length_factor` first."""
    factor = length_factor(config["track2"], data)
    options, iou = with_length_factor(config["track2"], factor), float(config["evaluate"]["iou_threshold"])
    config = {**config, "track2": options}
    listed = list(options["decode"]["candidates"])
    val_ids, test_ids = split_ids(data, "val"), split_ids(data, "test")
    decode_at, probs = detector_outputs(options, model, standardize, data, val_ids + test_ids)
    decode_at = with_segment_classifier(config, data, decode_at, probs)
    scale = class_length_scale(data, prior=float(options["decode"]["class_relative_prior"])) \
        if options["decode"]["class_relative"] and probs is not None else None
    if scale is not None:
        decode_at = functools.partial(decode_at, class_scale=scale)
    threshold, trials, setting, val_f1 = _tuned_on_val(decode_at, data, val_ids, options, iou)
    if factor != 1.0:  # name the scaled widths: `miga online` reads the unscaled params beside the tuning file
        setting = {**first_widths(options), **setting}
    if scale is not None:
        setting["class_scale"] = scale  # in the tuning file: `miga online` decodes with it too
    detections = {"detector": decode_at(threshold, **setting)}
    settings = {"detector": {"val_f1": val_f1, "threshold": threshold, "decoding": setting, "length_factor": factor}}
    window_logreg = fitted_window_logreg(config, data, val_ids + test_ids)
    detections["window_logreg"], settings["window_logreg"] = window_candidate(config, data, val_ids + test_ids, window_logreg)
    if ("blend" in listed if blend is None else blend) and probs is not None:
        detections["blend"], settings["blend"] = blend_candidate(config, data, probs, window_logreg, val_ids, class_scale=scale)
    eligible = [name for name in listed if name in detections]
    if not eligible:
        raise ConfigError(f"track2.decode.candidates {listed}: blend needs a detector with per-frame "
                          f"probabilities (frame or window), not {track2.detector_of(options)}")
    found = Candidates(detections, settings, trials, val_ids, test_ids, chosen="", switch_margin_f1=switch_margin_f1(options, data, val_ids),
                       detector_decode_at=decode_at, options=options)
    found.chosen = choose_candidate(eligible, found.val_f1, found.switch_margin_f1)
    first = eligible[0]
    confidence = float(options["decode"]["switch_confidence"])
    if found.chosen != first and confidence:
        val_truth = data.segments.filter(pl.col("sample_id").is_in(val_ids))
        found.switch_win_rate = f1_win_rate(val_truth, detections[first], detections[found.chosen], val_ids, iou_threshold=iou,
                                            seed=int(options["train"]["seed"]))
        if found.switch_win_rate < confidence:
            found.chosen = first
    return found


def training_gesture_lengths(data: Track2Data) -> pl.DataFrame:
    """(label, length in frames) of every gesture of the training split."""
    return data.segments.filter(pl.col("sample_id").is_in(split_ids(data, "train"))).select(
        "label", length=pl.col("end_frame") - pl.col("start_frame") + 1)


def length_factor(options: dict, data: Track2Data) -> float:
    """How many times longer the training gestures are (median) than `decode.length_reference` frames, at least 1
    (1 when the reference is 0 or there are no training gestures): the decoding grid's frames are in units of it."""
    reference = float(options["decode"]["length_reference"])
    lengths = training_gesture_lengths(data)
    if not reference or lengths.is_empty():
        return 1.0
    return max(1.0, float(lengths.get_column("length").median()) / reference)


def with_length_factor(options: dict, factor: float) -> dict:
    """`options` with the `decode.smooth` and `decode.min_length` grids multiplied by `factor` (rounded; a value
    repeated by the rounding is tried once): decoding settings for gestures `factor` times longer than the grid's."""
    if factor == 1.0:
        return options
    scaled = lambda values: list(dict.fromkeys(max(1, round(v * factor)) if v else 0 for v in track2.ints(values)))  # noqa: E731
    decode = options["decode"]
    return {**options, "decode": {**decode, "smooth": scaled(decode["smooth"]), "min_length": scaled(decode["min_length"])}}


def first_widths(options: dict) -> dict[str, int]:
    """The `decode.smooth` (for detectors that smooth) and `decode.min_length` a decoder uses when a setting names none."""
    decode = options["decode"]
    widths = {"min_length": track2.ints(decode["min_length"])[0]}
    return {"smooth": track2.ints(decode["smooth"])[0], **widths} if track2.detector(options).tunes_smoothing else widths


def class_length_scale(data: Track2Data, *, prior: float = 0.0) -> list[float]:
    """Per gesture class, the median length of its training gestures over the median of all training gestures
    (1.0 for a class without any): `track2.decode.class_relative` scales each class's smoothing and shortest
    detection by it, so short classes are not smoothed away at a width tuned for the long ones. With `prior`, a
    class of n gestures takes that ratio to the power n / (n + prior): few gestures, a scale near 1."""
    gestures = training_gesture_lengths(data)
    if gestures.is_empty():
        return [1.0] * data.num_classes
    overall = float(gestures.get_column("length").median())
    by_class = {label: (float(median), count) for label, median, count in
                gestures.group_by("label").agg(pl.col("length").median(), pl.len()).iter_rows()}
    return [(by_class[c][0] / overall) ** (by_class[c][1] / (by_class[c][1] + prior)) if c in by_class else 1.0
            for c in range(data.num_classes)]


def with_segment_classifier(config: dict, data: Track2Data, decode_at: track2.Decoder, probs: dict[str, np.ndarray] | None) -> track2.Decoder:
    """`decode_at` whose detections take their class from the detector's probabilities mixed with a segment
    classifier fitted on the training gestures (`miga.track2.relabel`), `track2.decode.relabel_weight` on the
    classifier's; `decode_at` itself when the weight is 0, the detector has no per-frame probabilities or the training
    gestures hold fewer than two classes."""
    weight = float(config["track2"]["decode"]["relabel_weight"])
    if not weight or probs is None:
        return decode_at
    train_ids = split_ids(data, "train")
    classifier = relabel.fit_segment_classifier(data.store, data.store.layout, data.segments.filter(pl.col("sample_id").is_in(train_ids)),
                                                data.num_classes, seed=int(config["track2"]["train"]["seed"]))
    return decode_at if classifier is None else relabel.relabelling_decoder(decode_at, probs, classifier, data.store, weight)


def switch_margin_f1(options: dict, data: Track2Data, val_ids: list[str]) -> float:
    """The val F1 gain a candidate needs over the first listed to replace it: `decode.switch_margin` val instances'
    worth (one instance found or missed moves F1 by about 1 / the val ground-truth segments)."""
    instances = data.segments.filter(pl.col("sample_id").is_in(val_ids)).height
    return float(options["decode"]["switch_margin"]) / instances if instances else 0.0


SUBMISSION = Path("submissions/track2.csv")
METRICS = Path("metrics/track2.json")
PER_CLASS = Path("metrics/track2_per_class.json")
TIMELINES = Path("plots/track2")


def train(config: dict, data: Track2Data, *, project: Path = Path(".")) -> tuple[list[dict], dict[str, int]]:
    """Train `track2.detector` and save it to `models/track2/model.pt`; returns (history, training frames by id)."""
    model, standardize, layout, history, lengths = fit_detector(config, data, Path(project) / TRACK2_CHECKPOINT)
    save_checkpoint(Path(project) / TRACK2_MODEL, detector_state(model, standardize, layout, history))
    return history, lengths


def predict(config: dict, data: Track2Data, *, project: Path = Path(".")) -> dict:
    """Detect on val and test with every candidate (`compare_candidates`), keep `choose_candidate`'s, and write its
    detections and the test submission, every candidate's detections, and the tuning and choice."""
    options = config["track2"]
    model, standardize, _ = load_detector(options, data.num_classes, Path(project) / TRACK2_MODEL)
    found = compare_candidates(config, model, standardize, data)
    write_parquet(pl.concat([frame.with_columns(candidate=pl.lit(name)) for name, frame in found.detections.items()]),
                  Path(project) / TRACK2_CANDIDATES)
    chosen = found.detections[found.chosen]
    write_parquet(chosen, Path(project) / TRACK2_DETECTIONS)
    test_detections = chosen.filter(pl.col("sample_id").is_in(found.test_ids))
    write_track2(track2_frame(test_detections, class_base=int(config["submission"]["track2_class_base"])), Path(project) / SUBMISSION)
    detector = found.settings["detector"]
    tuning = {"detector": track2.detector_of(options), "threshold": detector["threshold"], "decoding": detector["decoding"],
              "chosen": found.chosen, "switch_margin_f1": found.switch_margin_f1, "switch_win_rate": found.switch_win_rate,
              "candidates": found.settings,
              "val_trials": found.trials}
    write_json(tuning, Path(project) / TRACK2_TUNING)
    return tuning | {"val_sequences": len(found.val_ids), "test_detections": test_detections.height}


def choose_candidate(eligible: list[str], val_f1: dict[str, float | None], margin: float = 0.0) -> str:
    """The first eligible candidate unless another's val F1 beats it by more than `margin` (then the best of those);
    without a val score for the first, the best val F1 (missing scores lose; ties go to the one listed first)."""
    eligible = list(dict.fromkeys(eligible))
    score = lambda name: -1.0 if val_f1.get(name) is None else val_f1[name]  # noqa: E731
    first = eligible[0]
    challengers = [name for name in eligible[1:] if val_f1.get(first) is None or score(name) > score(first) + margin]
    return max(challengers, key=score) if challengers and max(map(score, challengers)) > score(first) else first


def window_candidate(config: dict, data: Track2Data, ids: list[str], fitted=None) -> tuple[pl.DataFrame, dict]:
    """The sliding-window logistic regression on pooled joint statistics: fit on train, decoding tuned on val for F1,
    detections on `ids`; returns them and its settings (`val_f1` among them, None without val sequences).
    `fitted`: what `fitted_window_logreg(config, data, ids)` returned, when the caller has it."""
    baseline, windows, settings = fitted or fitted_window_logreg(config, data, ids)
    train_ids = set(split_ids(data, "train"))
    return window_detections(baseline, {sid: w for sid, w in windows.items() if sid in ids and sid not in train_ids}), dict(settings)


def window_detections(baseline, windows: dict) -> pl.DataFrame:
    """The fitted window baseline's detections on `windows` (`miga.baselines.Windows` by sample id), as a contract table."""
    found = window_baseline_detections(windows, baseline)
    rows = [(sid, label, start, end, score) for sid, segments in found.items() for start, end, label, score in segments]
    return pl.DataFrame(rows, schema=DETECTIONS_SCHEMA, orient="row")


def fitted_window_logreg(config: dict, data: Track2Data, ids: list[str]):
    """(the fitted window baseline, the windows of the train and val sequences and of `ids`, its settings: `val_f1`
    None without val sequences)."""
    options, iou = config["track2"], float(config["evaluate"]["iou_threshold"])
    splits = {name: data.manifest.filter(pl.col("split") == name)["sample_id"].to_list() for name in ("train", "val")}
    splits["evaluated"] = [sid for sid in ids if sid not in splits["train"]]
    segments = {sid: [(s, e, c) for c, s, e in group.select("label", "start_frame", "end_frame").iter_rows()]
                for (sid,), group in data.segments.group_by(["sample_id"])}
    keypoints = {sid: data.store[sid] for part in splits.values() for sid in part}
    baseline, windows, settings = fitted_window_baseline(
        keypoints, data.store.layout, segments, splits, window=int(options["model"]["window_length"]),
        stride=int(options["decode"]["window_stride"]), seed=int(options["train"]["seed"]), iou=iou)
    settings["val_f1"] = None if np.isnan(settings["val_f1"]) else float(settings["val_f1"])
    return baseline, windows, settings


def blend_candidate(config: dict, data: Track2Data, detector_probs: dict[str, np.ndarray], window_logreg,
                    val_ids: list[str], *, class_scale: list[float] | None = None) -> tuple[pl.DataFrame, dict]:
    """The detector's per-frame probabilities (`Detector.frame_probabilities`, by sample id) and the window baseline's
    averaged, then decoded like the frame detector (with the detector's per-class length scales when given),
    threshold and decoding tuned on val for F1. Returns (detections on the sequences of `detector_probs`, settings
    with `val_f1`: None without val sequences)."""
    options, iou = config["track2"], float(config["evaluate"]["iou_threshold"])
    baseline, windows, _ = window_logreg
    probs = {sid: (p + window_frame_probabilities(baseline, windows[sid], data.num_classes)) / 2 for sid, p in detector_probs.items()}
    decode_at = frame_decoder(probs, options)
    if class_scale is not None:
        decode_at = functools.partial(decode_at, class_scale=class_scale)
    threshold, trials, setting, val_f1 = _tuned_on_val(decode_at, data, val_ids, options, iou)
    if class_scale is not None:
        setting["class_scale"] = class_scale
    return decode_at(threshold, **setting), {"val_f1": val_f1, "threshold": threshold, "decoding": setting}


def evaluated_ids(data: Track2Data, split: str) -> tuple[str, list[str], str | None]:
    """(split scored, its sequence ids, a note) for `evaluate.split`. A split whose sequences have no ground-truth
    segments at all (a real release's test) is reported on val instead, with a note; an empty split is an error."""
    ids = data.manifest.filter(pl.col("split") == split)["sample_id"].to_list()
    if not ids:
        raise ConfigError(f"evaluate.split: no {split} sequences in the {dataset_name_of(data)} manifest")
    annotated = set(data.segments["sample_id"].to_list())
    if any(sid in annotated for sid in ids):
        return split, ids, None
    val = [sid for sid in data.manifest.filter(pl.col("split") == "val")["sample_id"].to_list() if sid in annotated]
    if split == "val" or not val:
        raise ConfigError(f"neither the {split} split nor val has ground-truth segments to evaluate against")
    return "val", val, (f"the {split} split has no labels (no ground-truth segments; test metrics need them: datasets.<name>.test_truth); "
                        "these metrics are on val")


def dataset_name_of(data: Track2Data) -> str:
    names = data.manifest["dataset"].unique().to_list()
    return names[0] if len(names) == 1 else "Track 2"


def evaluate(config: dict, data: Track2Data, *, project: Path = Path(".")) -> dict:
    """Precision, recall and F1 at temporal overlap > `evaluate.iou_threshold` (official and one-to-one matching),
    recall by gesture length, on `evaluate.split`, of the chosen detections, beside every candidate predict compared
    (the sliding-window logistic regression is the bar); writes the metrics and a timeline per sequence."""
    requested = config["evaluate"]["split"]
    split, ids, note = evaluated_ids(data, requested)
    if note:
        warnings.warn(note, stacklevel=1)
    iou = float(config["evaluate"]["iou_threshold"])
    truth = data.segments.filter(pl.col("sample_id").is_in(ids))
    path = Path(project) / TRACK2_DETECTIONS
    detections = validate_detections(read_parquet(path), str(path), data.num_classes)
    result = detection_metrics(truth, detections.filter(pl.col("sample_id").is_in(ids)), num_classes=data.num_classes, iou_threshold=iou)
    result.update({"split": split, "requested_split": requested, "note": note, "num_sequences": len(ids)})
    tuning = read_tuning(Path(project) / TRACK2_TUNING, data.num_classes)
    frames = read_candidates(Path(project) / TRACK2_CANDIDATES, data.num_classes)
    _check_chosen(tuning["chosen"], frames, detections, Path(project))
    candidates = {}
    for name, frame in frames.items():
        scored = detection_metrics(truth, frame.filter(pl.col("sample_id").is_in(ids)), num_classes=data.num_classes, iou_threshold=iou)
        candidates[name] = {mode: {k: scored[mode][k] for k in ("precision", "recall", "f1", "recall_by_length")}
                            for mode in ("official", "one_to_one")} | tuning["candidates"].get(name, {})
    result["selection"] = {"chosen": tuning["chosen"], "eligible": list(config["track2"]["decode"]["candidates"]),
                           "switch_margin_f1": tuning.get("switch_margin_f1", 0.0),
                           "switch_win_rate": tuning.get("switch_win_rate"),
                           "switch_confidence": float(config["track2"]["decode"]["switch_confidence"]),
                           "val_f1": {name: c.get("val_f1") for name, c in candidates.items()},
                           f"{split}_f1": {name: c["official"]["f1"] for name, c in candidates.items()}}
    result["baselines"] = {"window_logreg": candidates["window_logreg"]}
    below = below_baseline_note("F1", result["official"]["f1"], {"window_logreg": candidates["window_logreg"]["official"]["f1"]}, split)
    if below:
        warnings.warn(below, stacklevel=1)
        result["note"] = "; ".join(filter(None, [note, below]))
    write_json({mode: result[mode].pop("per_class") for mode in ("official", "one_to_one")}, Path(project) / PER_CLASS)
    write_json(result, Path(project) / METRICS)
    _timelines(data, detections, ids, Path(project) / TIMELINES)
    return result


def _check_chosen(chosen: str, candidates: dict[str, pl.DataFrame], detections: pl.DataFrame, project: Path) -> None:
    """The detections evaluated are the chosen candidate's, as predict wrote them: a ConfigError otherwise (a hand edit
    of the choice, or files from different runs), so the metrics never name a candidate they do not score."""
    order = ["sample_id", "start_frame", "end_frame", "label"]
    same = chosen in candidates and candidates[chosen].sort(order).equals(detections.sort(order))
    if not same:
        raise ConfigError(f"{project / TRACK2_TUNING}: names {chosen!r:.40} as chosen, but {project / TRACK2_DETECTIONS} "
                          f"is not that candidate's detections in {project / TRACK2_CANDIDATES}; rerun predict_track2 (dvc repro)")


def read_candidates(path: Path, num_classes: int) -> dict[str, pl.DataFrame]:
    """Every candidate's detections as predict wrote them (`candidate` column), each checked against the contract."""
    table = read_parquet(path)
    if "candidate" not in table.columns:
        raise ConfigError(f"{path}: no 'candidate' column; rerun predict_track2 (dvc repro)")
    return {name: validate_detections(table.filter(pl.col("candidate") == name).drop("candidate"), f"{path} ({name})", num_classes)
            for name in table["candidate"].unique(maintain_order=True).to_list()}


def _timelines(data: Track2Data, detections: pl.DataFrame, ids: list[str], folder: Path) -> None:
    lengths = dict(data.manifest.select("sample_id", "end_frame").iter_rows())
    for sample_id in ids:
        timeline(
            data.segments.filter(pl.col("sample_id") == sample_id), detections.filter(pl.col("sample_id") == sample_id),
            num_frames=lengths[sample_id] + 1, class_names=data.class_names, title=sample_id,
            path=folder / f"{check_sample_id(sample_id, 'manifest')}.png",
        )
