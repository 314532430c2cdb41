"""Track 2 from its params: the configured detector kind (`miga.track2.detectors`), built, trained and decoded as the
`track2` params say, the decoding grid tuned on val, ensembles of seeds, and the past a streaming decision needs.

`options` is the validated `track2` params tree throughout (`model`, `features`, `train`, `decode`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import torch

from miga.errors import ConfigError
from miga.track2.decoding import DecodeConfig, best_trial, decode, ints, tune_class_thresholds, tune_for_f1
from miga.track2.detectors import DETECTORS, Decoder, Detector, pyramid_for
from miga.track2.features import (DEFAULT_FEATURES, FEATURE_PARTS, FeatureConfig, Standardizer, affine_copy,
                                  feature_config, frame_features, frame_labels, frame_loss_weights, mirrored)
from miga.training import TrainConfig

__all__ = [  # the recipe's own functions, and the parts of the Track 2 vocabulary it gathers in one import
    "DETECTORS", "DEFAULT_FEATURES", "FEATURE_PARTS", "Averaged", "DecodeConfig", "Decoder", "Detector", "FeatureConfig",
    "Standardizer", "affine_copy", "best_trial", "build_detector", "decode", "decode_grid", "decode_trials", "detector", "detector_of",
    "feature_config", "frame_features", "frame_labels", "frame_loss_weights", "ints", "make_decoder", "mirrored", "past_context", "pyramid_for",
    "single", "train_config", "training_set", "tune_class_thresholds", "tune_for_f1",
]


def detector_of(options: Mapping) -> str:
    """The configured detector kind's name (`track2.model.detector`), checked against the registry."""
    return detector(options).name


def detector(options: Mapping) -> Detector:
    kind = options["model"]["detector"]
    if kind not in DETECTORS:
        raise ConfigError(f"unknown track2.model.detector {kind!r}; choose one of {list(DETECTORS)}")
    return DETECTORS[kind]


def decode_grid(options: Mapping) -> list[dict]:
    """Decoding settings tried on val beside the thresholds: `decode.smooth` (detectors that smooth frame scores) and
    `decode.min_length` may each be one value or a list; a list is tuned on val with the threshold."""
    smooths = ints(options["decode"]["smooth"]) if detector(options).tunes_smoothing else [None]
    lengths = ints(options["decode"]["min_length"])
    grid = [{k: v for k, v in (("smooth", smooth), ("min_length", length)) if v is not None}
            for smooth in smooths for length in lengths]
    return grid if len(grid) > 1 else [{}]


def decode_trials(options: Mapping) -> tuple[list[float], list[dict]]:
    """What tuning on val tries: (`decode.thresholds` as floats, the decoding settings `decode_grid`); `tune_for_f1`
    tries every threshold at every setting."""
    return [float(t) for t in options["decode"]["thresholds"]], decode_grid(options)


def make_decoder(model: torch.nn.Module, options: Mapping, features: Mapping[str, np.ndarray]) -> Decoder:
    """Runs the model once over each standardised feature sequence; returns `decode_at(threshold, smooth=, min_length=)
    -> detections` (smooth and min_length default to the first of `decode.smooth` / `decode.min_length`)."""
    return detector(options).decoder(model, options, features)


def past_context(options: Mapping, class_scale: Sequence[float] | None = None, smooth: int | None = None) -> int:
    """Frames before a frame that its decoded score depends on: the causal body normalisation (`norm_window`),
    the velocities, the network's temporal context and half the smoothing (the tuned `smooth`, else the widest of
    `decode.smooth`; the widest class's, with the tuned `class_scale`). `miga.track2.online` decides nothing that
    starts closer than this to its window's oldest frame."""
    features = feature_config(options)
    widest = (smooth or max(ints(options["decode"]["smooth"]))) * max(1.0, max(class_scale or [1.0]))
    return (int(features.norm_window) + max(features.velocity_steps) + detector(options).network_context(options)
            + int(round(widest)) // 2)


def train_config(options: Mapping) -> TrainConfig:
    """The optimisation settings of the `track2` options (the data loader stays in-process)."""
    train = options["train"]
    return TrainConfig(
        epochs=int(train["epochs"]), batch_size=int(train["batch_size"]), lr=float(train["lr"]),
        weight_decay=float(train["weight_decay"]), seed=int(train["seed"]), workers=0,
        optimizer=train["optimizer"], warmup_epochs=int(train["warmup_epochs"]),
    )


class Averaged(torch.nn.Module):
    """`track2.model.ensemble` members trained alike from different seeds; the outputs (logits, distances) are averaged."""

    def __init__(self, members: Sequence[torch.nn.Module]):
        super().__init__()
        self.members = torch.nn.ModuleList(members)

    @property
    def max_stride(self) -> int:
        return self.members[0].max_stride

    def forward(self, x: torch.Tensor):
        outputs = [member(x) for member in self.members]
        if isinstance(outputs[0], tuple):
            return tuple(torch.stack(parts).mean(0) for parts in zip(*outputs))
        return torch.stack(outputs).mean(0)


def single(options: Mapping) -> dict:
    """The same options for one member of an ensemble."""
    return {**options, "model": {**options["model"], "ensemble": 1}}


def build_detector(options: Mapping, in_features: int, num_classes: int) -> torch.nn.Module:
    """The network of the configured detector (untrained); `model.ensemble` > 1 of them averaged."""
    size = int(options["model"]["ensemble"])
    if size > 1:
        return Averaged([build_detector(single(options), in_features, num_classes) for _ in range(size)])
    return detector(options).build(options, in_features, num_classes)


def training_set(options: Mapping, inputs: Sequence[np.ndarray], segments: Sequence[pl.DataFrame], num_classes: int, seed: int):
    """(dataset, loss function) that train the configured detector on standardised feature sequences and their segments."""
    kind = detector(options)
    if options["train"]["frame_weights"] != "none" and kind.name != "frame":
        raise ConfigError(f"track2.train.frame_weights: {options['train']['frame_weights']!r} weighs the frame detector's "
                          f"per-frame loss; detector {kind.name!r} has none (set it to none)")
    return kind.training_set(options, inputs, segments, num_classes, seed)
