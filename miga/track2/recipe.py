"""Track 2: per-frame features from skeleton streams, a per-frame classifier, and decoding to segments."""

from __future__ import annotations


from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from miga.track2 import detection
from miga.errors import ConfigError
from miga import skeleton
from miga.layouts import get_layout
from miga.skeleton import causal_normalised
from miga.evaluation.metrics import detection_metrics
from miga.models import build_model
from miga.track2.segments import frame_scores_to_segments, nms_1d
from miga.training import TrainConfig

DETECTORS = ("anchorfree", "frame", "window")
# `track2` params that only decoding reads: changing them re-runs predict, not training (dvc.yaml, tested).
DECODE_PARAMS = ("window_stride", "pre_threshold", "top_k", "nms", "nms_iou", "min_length", "smooth", "thresholds")

# Joints a hand may touch during a micro-gesture, by name in the layout (missing names are skipped).
_HAND_TARGETS = ("Head", "Nose", "Neck", "SpineShoulder", "SpineMid", "LShoulder", "RShoulder", "LElbow", "RElbow", "LHip", "RHip")
_HANDS = ("LHand", "RHand", "LWrist", "RWrist")


FEATURE_PARTS = ("joints", "posture", "path", "velocity", "distances", "scores")
DEFAULT_FEATURES = ("joints", "velocity", "distances", "scores")


@dataclass(frozen=True)
class FeatureConfig:
    """Which per-frame features `frame_features` builds (`track2.features`, `track2.velocity_steps`).

    joints: every joint centred on the sequence's median body centre, in shoulder widths;
    posture: every joint centred on the frame's own body centre (position removed);
    path: the frame's body centre relative to the sequence's (one point);
    velocity: of `joints`, (joints[t + k] - joints[t - k]) / (2k) for each k in `velocity_steps` (k = 1 as
    before: the backward difference);
    distances: each hand to the head / torso / shoulders / elbows / hips; scores: the joint-seen mask.

    `norm_window` N > 0 makes the body normalisation causal: frame t is centred and scaled by the medians over
    frames t - N + 1 .. t, so a stream (`miga.track2.online`) that has seen those frames computes the very
    features the offline pass does (with the whole sequence it cannot: BENCHMARKS.md "Track 2 streaming")."""

    parts: tuple[str, ...] = DEFAULT_FEATURES
    velocity_steps: tuple[int, ...] = (1,)
    norm_window: int = 0  # body centre and size: medians over the whole sequence (0) or over each frame's last N frames

    def __post_init__(self):
        unknown = [p for p in self.parts if p not in FEATURE_PARTS]
        if unknown or not self.parts:
            raise ConfigError(f"track2.features: unknown or no parts {unknown}; choose from {list(FEATURE_PARTS)}")
        if not self.velocity_steps or any(int(k) < 1 for k in self.velocity_steps):
            raise ConfigError(f"track2.velocity_steps must be positive frame steps, got {list(self.velocity_steps)}")
        if int(self.norm_window) < 0:
            raise ConfigError(f"track2.norm_window must be 0 (whole sequence) or a number of frames, got {self.norm_window}")


def feature_config(options: Mapping) -> FeatureConfig:
    return FeatureConfig(tuple(options["features"]), tuple(int(k) for k in options["velocity_steps"]), int(options["norm_window"]))


def _velocity(values: np.ndarray, step: int) -> np.ndarray:
    """Per-frame velocity along axis 0 (x 10): backward difference for step 1, else centred over +-step (edges clamped)."""
    if step == 1:
        return np.diff(values, axis=0, prepend=values[:1]) * 10
    index = np.arange(len(values))
    ahead, behind = np.minimum(index + step, len(values) - 1), np.maximum(index - step, 0)
    return (values[ahead] - values[behind]) / (2 * step) * 10


def frame_features(keypoints: np.ndarray, layout: str, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """(M, T, V, 3) keypoints -> float32 (T, F): the parts of `config` (body-normalised joints, velocities, hand-to-body distances, scores)."""
    names = get_layout(layout).joints
    body = causal_normalised(keypoints, layout, int(config.norm_window))
    norm, valid, path, t = body.joints, body.seen, body.path, len(body.joints)
    parts = []
    for part in config.parts:
        if part == "joints":
            parts.append(norm.reshape(t, -1))
        elif part == "posture":
            parts.append((norm - path[:, None]).reshape(t, -1))
        elif part == "path":
            parts.append(path)
        elif part == "velocity":
            for step in config.velocity_steps:
                parts.append(_velocity(norm, step).reshape(t, -1))
        elif part == "distances":
            hands = [names.index(n) for n in _HANDS if n in names]
            targets = [names.index(n) for n in _HAND_TARGETS if n in names]
            parts.append(np.linalg.norm(norm[:, hands, None, :] - norm[:, None, targets, :], axis=-1).reshape(t, -1))
        else:
            parts.append(valid.astype(np.float64))
    return np.concatenate(parts, axis=1).astype(np.float32)


def mirrored(keypoints: np.ndarray, layout: str) -> np.ndarray:
    """(..., V, 3) keypoints of the same recording seen in a mirror: left and right joints swapped, x negated.

    `frame_features` centres and scales each sequence, so negating x is a mirror about the body."""
    return skeleton.mirrored(keypoints, get_layout(layout).flip_index)


def affine_copy(keypoints: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """(..., V, 3) keypoints under one random 2-D affine map: rotation in +-strength rad, scale per axis in
    1 +- strength, shear in +-strength. Scores unchanged."""
    angle, shear = rng.uniform(-strength, strength, 2)
    scale = 1 + rng.uniform(-strength, strength, 2)
    out = keypoints.copy()
    out[..., :2] = keypoints[..., :2] @ skeleton.affine_matrix(angle, scale, (shear, 0.0)).T.astype(keypoints.dtype)
    return out


def frame_labels(num_frames: int, segments: pl.DataFrame) -> np.ndarray:
    """Per-frame targets: 0 = background, c + 1 inside a segment of class c (later segments win)."""
    labels = np.zeros(num_frames, np.int64)
    for label, start, end in segments.select("label", "start_frame", "end_frame").iter_rows():
        labels[start: end + 1] = label + 1
    return labels


@dataclass
class Standardizer:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: Sequence[np.ndarray]) -> "Standardizer":
        stacked = np.concatenate(features)
        return cls(stacked.mean(0).astype(np.float32), (stacked.std(0) + 1e-6).astype(np.float32))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std


class RandomWindows(Dataset):
    """`per_epoch` random fixed-length windows over sequences (longer ones drawn more often);
    the draw depends only on (seed, epoch, index). Subclasses turn (sequence, start) into a sample.

    `stretch` > 0 (`track2.time_stretch`) plays each window at a random rate: `window * r` frames of the
    sequence, r log-uniform in [1 / (1 + stretch), 1 + stretch], resampled to `window` frames."""

    def __init__(self, features: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int, stretch: float = 0.0):
        self.features, self.window, self.per_epoch, self.seed, self.stretch = features, window, per_epoch, seed, float(stretch)
        self.lengths = np.array([len(f) for f in features])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_epoch

    def draw(self, index: int) -> tuple[int, int]:
        return self.draw_span(index)[:2]

    def draw_span(self, index: int) -> tuple[int, int, int]:
        """(sequence, first frame, frames read): `window` frames unless `stretch`."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        seq = int(rng.choice(len(self.features), p=self.lengths / self.lengths.sum()))
        span = self.window
        if self.stretch > 0:
            span = max(2, int(round(self.window * np.exp(rng.uniform(-1, 1) * np.log1p(self.stretch)))))
        return seq, int(rng.integers(0, max(1, self.lengths[seq] - span + 1))), span

    def window_features(self, seq: int, start: int, span: int | None = None) -> np.ndarray:
        """(F, window) features, zero-padded past the end of a short sequence; `span` frames resampled to `window`."""
        span = span or self.window
        part = self.features[seq][start: start + span]
        part = np.pad(part, ((0, span - len(part)), (0, 0)))
        if span != self.window:
            where = self.source_frames(span)
            low = np.floor(where).astype(np.int64)
            high, weight = np.minimum(low + 1, span - 1), (where - low)[:, None]
            part = (part[low] * (1 - weight) + part[high] * weight).astype(part.dtype)
        return part.T.copy()

    def source_frames(self, span: int) -> np.ndarray:
        """The (fractional) frame of a `span`-frame excerpt that each of the `window` output frames shows."""
        return np.clip((np.arange(self.window) + 0.5) * span / self.window - 0.5, 0, span - 1)


class WindowDataset(RandomWindows):
    """Random windows with per-frame labels (-100 = padding, ignored by the loss)."""

    def __init__(self, features: Sequence[np.ndarray], labels: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int,
                 stretch: float = 0.0):
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed, stretch=stretch)
        self.labels = labels

    def __getitem__(self, index: int):
        seq, start, span = self.draw_span(index)
        labels = self.labels[seq][start: start + span]
        labels = np.pad(labels, (0, span - len(labels)), constant_values=-100)
        if span != self.window:
            labels = labels[np.round(self.source_frames(span)).astype(np.int64)]
        return torch.from_numpy(self.window_features(seq, start, span)), torch.from_numpy(labels)


def window_loss(model: torch.nn.Module, batch, dev: torch.device) -> torch.Tensor:
    features, labels = batch
    logits = model(features.to(dev))
    return F.cross_entropy(logits.float(), labels.to(dev), ignore_index=-100)


@torch.no_grad()
def sequence_probabilities(model: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    """(T, F) standardised features -> (T, K + 1) per-frame class probabilities (column 0 = background)."""
    model.eval()
    dev = next(model.parameters()).device
    logits = model(torch.from_numpy(features).T[None].to(dev)).float()
    return torch.softmax(logits[0], dim=0).T.cpu().numpy()


@dataclass(frozen=True)
class DecodeConfig:
    threshold: float = 0.5
    min_length: int = 8
    smooth: int = 5
    nms_iou: float = 0.5


def decode(probabilities: Mapping[str, np.ndarray], config: DecodeConfig) -> pl.DataFrame:
    """Per-frame probabilities of each sequence -> detections (sample_id, label, start, end, score)."""
    parts = [
        frame_scores_to_segments(
            probs, sample_id=sample_id, threshold=config.threshold, min_length=config.min_length, smooth=config.smooth, background=0
        )
        for sample_id, probs in probabilities.items()
    ]
    detections = pl.concat(parts) if parts else None
    return nms_1d(detections, config.nms_iou)


def tune_for_f1(decode_at: Callable[..., pl.DataFrame], segments: pl.DataFrame, thresholds: Sequence[float],
                num_classes: int, iou: float, settings: Sequence[Mapping] = ({},)) -> tuple[float, list[dict]]:
    """The score threshold (from `thresholds`) and decoding setting (from `settings`, keyword arguments of
    `decode_at(threshold, **setting)`) whose detections maximise F1 (official rule) against `segments`.

    Returns the threshold and every trial; `best_trial(trials)` is the chosen one (its setting included)."""
    trials = []
    for setting in settings:
        for threshold in thresholds:
            result = detection_metrics(segments, decode_at(float(threshold), **setting), num_classes=num_classes, iou_threshold=iou)
            trials.append({**setting, "threshold": float(threshold), "f1": result["official"]["f1"], "f1_one_to_one": result["one_to_one"]["f1"]})
    best = best_trial(trials)
    return best["threshold"], trials


def best_trial(trials: Sequence[dict]) -> dict:
    """The trial with the best val F1 (official, then one-to-one; then the lowest threshold, the first setting)."""
    return max(reversed(trials), key=lambda t: (t["f1"], t["f1_one_to_one"], -t["threshold"]))


def _ints(value) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def decode_grid(options: Mapping) -> list[dict]:
    """Decoding settings tried on val beside the thresholds: `track2.smooth` (frame / window detectors) and
    `track2.min_length` may each be one value or a list; a list is tuned on val with the threshold."""
    smooths = _ints(options["smooth"]) if detector_of(options) != "anchorfree" else [None]
    lengths = _ints(options["min_length"])
    grid = [{k: v for k, v in (("smooth", smooth), ("min_length", length)) if v is not None}
            for smooth in smooths for length in lengths]
    return grid if len(grid) > 1 else [{}]


# ---------------------------------------------------------------- anchor-free detector


class DetectionWindows(RandomWindows):
    """Random windows with pyramid targets: (features (F, W), classes (K, P), distances (2, P))."""

    def __init__(self, features: Sequence[np.ndarray], segments: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int,
                 pyramid: detection.Pyramid, num_classes: int, radius: float, stretch: float = 0.0):
        if window % pyramid.strides[-1]:
            raise ValueError(f"track2.window {window} must be a multiple of the largest stride {pyramid.strides[-1]}")
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed, stretch=stretch)
        self.segments, self.pyramid, self.num_classes, self.radius = segments, pyramid, num_classes, radius

    def __getitem__(self, index: int):
        seq, start, span = self.draw_span(index)
        inside = detection.window_segments(self.segments[seq], start, span)
        if span != self.window and len(inside):
            inside = inside.copy()
            rate = self.window / span
            inside[:, 1] = np.floor(inside[:, 1] * rate)
            inside[:, 2] = np.clip(np.ceil((inside[:, 2] + 1) * rate) - 1, inside[:, 1], self.window - 1)
        classes, distances = detection.assign_targets(inside, self.window, self.pyramid, self.num_classes, self.radius)
        return torch.from_numpy(self.window_features(seq, start, span)), torch.from_numpy(classes), torch.from_numpy(distances)


def detector_loss(model: torch.nn.Module, batch, dev: torch.device) -> torch.Tensor:
    features, classes, distances = (t.to(dev) for t in batch)
    logits, predicted = model(features)
    return detection.detection_loss(logits, predicted, classes, distances)


@torch.no_grad()
def detector_outputs(model: torch.nn.Module, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, F) standardised features -> class probabilities (K, P) and distances (2, P) over the padded sequence."""
    model.eval()
    dev = next(model.parameters()).device
    padded = detection.pad_to_stride(features, model.max_stride)
    logits, distances = model(torch.from_numpy(padded).T[None].to(dev))
    return torch.sigmoid(logits[0].float()).cpu().numpy(), distances[0].float().cpu().numpy()


def decode_detector(outputs: Mapping[str, tuple[np.ndarray, np.ndarray, int]], pyramid: detection.Pyramid,
                    config: detection.DetectorDecodeConfig) -> pl.DataFrame:
    """{sample_id: (scores, distances, length)} -> detections of every sequence (before the final threshold when it is 0)."""
    parts = [detection.decode_sequence(sid, scores, distances, pyramid, length, config) for sid, (scores, distances, length) in outputs.items()]
    return pl.concat(parts) if parts else detection.decode_sequence("", np.zeros((0, 0)), np.zeros((2, 0)), pyramid, 0, config)


# ---------------------------------------------------------------- sliding-window baseline


class ClassifiedWindows(Dataset):
    """Random fixed-length windows, each labelled with its most frequent frame label (0 = background)."""

    def __init__(self, features: Sequence[np.ndarray], labels: Sequence[np.ndarray], *, length: int, per_epoch: int, seed: int,
                 num_classes: int, stretch: float = 0.0):
        self.windows = WindowDataset(features, labels, window=length, per_epoch=per_epoch, seed=seed, stretch=stretch)
        self.num_classes = num_classes

    def set_epoch(self, epoch: int) -> None:
        self.windows.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int):
        features, labels = self.windows[index]
        labels = labels[labels >= 0]
        return features, int(np.bincount(labels.numpy(), minlength=self.num_classes + 1).argmax()) if len(labels) else 0


def window_loss_single(model: torch.nn.Module, batch, dev: torch.device) -> torch.Tensor:
    features, labels = batch
    return F.cross_entropy(model(features.to(dev)).float(), labels.to(dev))


@torch.no_grad()
def window_probabilities(model: torch.nn.Module, features: np.ndarray, *, length: int, stride: int, batch_size: int = 64) -> np.ndarray:
    """Slide a `length`-frame window by `stride`; each frame gets the mean class probabilities of the windows covering it."""
    model.eval()
    dev = next(model.parameters()).device
    padded = np.pad(features, ((0, max(0, length - len(features))), (0, 0)))
    starts = list(range(0, len(padded) - length + 1, stride))
    if starts[-1] != len(padded) - length:
        starts.append(len(padded) - length)
    total = None
    counts = np.zeros(len(padded))
    for i in range(0, len(starts), batch_size):
        chunk = starts[i: i + batch_size]
        batch = torch.from_numpy(np.stack([padded[s: s + length].T for s in chunk])).to(dev)
        probs = torch.softmax(model(batch).float(), dim=1).cpu().numpy()
        if total is None:
            total = np.zeros((len(padded), probs.shape[1]))
        for s, p in zip(chunk, probs):
            total[s: s + length] += p
            counts[s: s + length] += 1
    return (total / counts[:, None])[: len(features)]


# ---------------------------------------------------------------- from params to detections


def detector_of(options: Mapping) -> str:
    detector = options["detector"]
    if detector not in DETECTORS:
        raise ConfigError(f"unknown track2.detector {detector!r}; choose one of {list(DETECTORS)}")
    return detector


def pyramid_for(options: Mapping) -> detection.Pyramid:
    return detection.Pyramid(tuple(2**level for level in range(int(options["levels"]))), base_range=float(options["base_range"]))


def make_decoder(model: torch.nn.Module, options: Mapping, features: Mapping[str, np.ndarray]) -> Callable[..., pl.DataFrame]:
    """Runs the model once over each standardised feature sequence; returns `decode_at(threshold, smooth=, min_length=)
    -> detections` (smooth and min_length default to the first of `track2.smooth` / `track2.min_length`).

    `options` is the `track2` params section (detector kind and decoding settings)."""
    detector = detector_of(options)
    lengths = _ints(options["min_length"])
    if detector == "anchorfree":
        config = detection.DetectorDecodeConfig(
            threshold=0.0, pre_threshold=float(options["pre_threshold"]), top_k=int(options["top_k"]), nms=options["nms"],
            nms_iou=float(options["nms_iou"]), min_length=min(lengths))
        outputs = {sid: (*detector_outputs(model, f), len(f)) for sid, f in features.items()}
        everything = decode_detector(outputs, pyramid_for(options), config)

        def decode_anchorfree(threshold: float, min_length: int | None = None) -> pl.DataFrame:
            kept = everything.filter(pl.col("score") > threshold)
            if min_length is not None and min_length > config.min_length:
                kept = kept.filter(pl.col("end_frame") - pl.col("start_frame") + 1 >= min_length)
            return kept

        return decode_anchorfree
    if detector == "window":
        probs = {sid: window_probabilities(model, f, length=int(options["window_length"]), stride=int(options["window_stride"]))
                 for sid, f in features.items()}
    else:
        probs = {sid: sequence_probabilities(model, f) for sid, f in features.items()}
    first = dict(smooth=_ints(options["smooth"])[0], min_length=lengths[0])
    nms_iou = float(options["nms_iou"])

    def decode_frames(threshold: float, smooth: int | None = None, min_length: int | None = None) -> pl.DataFrame:
        chosen = {**first, **{k: v for k, v in (("smooth", smooth), ("min_length", min_length)) if v is not None}}
        return decode(probs, DecodeConfig(threshold=threshold, nms_iou=nms_iou, **chosen))

    return decode_frames


def past_context(options: Mapping) -> int:
    """Frames before a frame that its decoded score depends on: the causal body normalisation (`norm_window`),
    the velocities, half the temporal receptive field of the network (dilations 1, 2, ..., 2^(layers-1)) and of the
    smoothing. `miga.track2.online` decides nothing that starts closer than this to its window's oldest frame."""
    features = feature_config(options)
    network = 2 ** int(options["layers"]) - 1 if detector_of(options) != "window" else int(options["window_length"])
    return int(features.norm_window) + max(features.velocity_steps) + network + max(_ints(options["smooth"])) // 2


def train_config(options: Mapping) -> TrainConfig:
    """The optimisation settings of the `track2` options (the data loader stays in-process)."""
    return TrainConfig(
        epochs=int(options["epochs"]), batch_size=int(options["batch_size"]), lr=float(options["lr"]),
        weight_decay=float(options["weight_decay"]), seed=int(options["seed"]), workers=0,
        optimizer=options["optimizer"], warmup_epochs=int(options["warmup_epochs"]),
    )


class Averaged(torch.nn.Module):
    """`track2.ensemble` members trained alike from different seeds; the outputs (logits, distances) are averaged."""

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


def ensemble_size(options: Mapping) -> int:
    size = int(options["ensemble"])
    if size < 1:
        raise ConfigError(f"track2.ensemble must be >= 1, got {size}")
    return size


def build_detector(options: Mapping, in_features: int, num_classes: int) -> torch.nn.Module:
    """The network of `track2.detector` (untrained), sized by the `track2` options; `track2.ensemble` > 1 of them averaged."""
    if ensemble_size(options) > 1:
        return Averaged([build_detector({**options, "ensemble": 1}, in_features, num_classes) for _ in range(ensemble_size(options))])
    detector = detector_of(options)
    common = dict(in_features=in_features, channels=int(options["channels"]), layers=int(options["layers"]), dropout=float(options["dropout"]))
    if detector == "anchorfree":
        return build_model("temporal_detector", num_classes=num_classes, levels=int(options["levels"]), **common)
    if detector == "window":
        return build_model("window_classifier", num_classes=num_classes + 1, **common)
    return build_model("temporal_convnet", num_classes=num_classes + 1, **common)


def training_set(options: Mapping, inputs: Sequence[np.ndarray], segments: Sequence[pl.DataFrame], num_classes: int, seed: int):
    """(dataset, loss function) that train `track2.detector` on standardised feature sequences and their segments."""
    detector, window, per_epoch = detector_of(options), int(options["window"]), int(options["windows_per_epoch"])
    stretch = float(options["time_stretch"])
    if detector == "anchorfree":
        return DetectionWindows(inputs, [detection.segments_array(s) for s in segments], window=window, per_epoch=per_epoch,
                                seed=seed, pyramid=pyramid_for(options), num_classes=num_classes, radius=float(options["radius"]),
                                stretch=stretch), detector_loss
    labels = [frame_labels(len(f), s) for f, s in zip(inputs, segments)]
    if detector == "window":
        return ClassifiedWindows(inputs, labels, length=int(options["window_length"]), per_epoch=per_epoch, seed=seed,
                                 num_classes=num_classes, stretch=stretch), window_loss_single
    return WindowDataset(inputs, labels, window=window, per_epoch=per_epoch, seed=seed, stretch=stretch), window_loss
