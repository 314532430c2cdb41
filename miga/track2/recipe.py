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
from miga.layouts import get_layout
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


def _fill_missing(xy: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Carry the last valid position of each joint forward (and the first one backward)."""
    out = xy.copy()
    for joint in range(xy.shape[1]):
        ok = valid[:, joint]
        if not ok.any():
            out[:, joint] = 0
            continue
        index = np.where(ok, np.arange(len(ok)), -1)
        np.maximum.accumulate(index, out=index)
        index[index < 0] = np.argmax(ok)
        out[:, joint] = xy[index, joint]
    return out


def frame_features(keypoints: np.ndarray, layout: str) -> np.ndarray:
    """(M, T, V, 3) keypoints -> float32 (T, F): body-normalised joints, velocities, hand-to-body distances, scores."""
    spec = get_layout(layout)
    person = keypoints[0]
    valid = person[..., 2] > 1e-3
    xy = _fill_missing(person[..., :2].astype(np.float64), valid)
    names = spec.joints
    centre_joint = names.index("SpineShoulder") if "SpineShoulder" in names else names.index("Neck")
    centre = np.median(xy[valid[:, centre_joint], centre_joint], axis=0) if valid[:, centre_joint].any() else xy.reshape(-1, 2).mean(0)
    shoulders = [names.index(n) for n in ("LShoulder", "RShoulder")]
    both = valid[:, shoulders].all(axis=1)
    width = np.linalg.norm(xy[both, shoulders[0]] - xy[both, shoulders[1]], axis=-1) if both.any() else np.array([1.0])
    scale = float(np.median(width)) or 1.0
    norm = (xy - centre) / scale
    velocity = np.diff(norm, axis=0, prepend=norm[:1]) * 10
    hands = [names.index(n) for n in _HANDS if n in names]
    targets = [names.index(n) for n in _HAND_TARGETS if n in names]
    distances = np.linalg.norm(norm[:, hands, None, :] - norm[:, None, targets, :], axis=-1).reshape(len(norm), -1)
    parts = [norm.reshape(len(norm), -1), velocity.reshape(len(norm), -1), distances, valid.astype(np.float64)]
    return np.concatenate(parts, axis=1).astype(np.float32)


def mirrored(keypoints: np.ndarray, layout: str) -> np.ndarray:
    """(..., V, 3) keypoints of the same recording seen in a mirror: left and right joints swapped, x negated.

    `frame_features` centres and scales each sequence, so negating x is a mirror about the body."""
    out = keypoints[..., get_layout(layout).flip_index, :].copy()
    out[..., 0] = -out[..., 0]
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
    the draw depends only on (seed, epoch, index). Subclasses turn (sequence, start) into a sample."""

    def __init__(self, features: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int):
        self.features, self.window, self.per_epoch, self.seed = features, window, per_epoch, seed
        self.lengths = np.array([len(f) for f in features])
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_epoch

    def draw(self, index: int) -> tuple[int, int]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        seq = int(rng.choice(len(self.features), p=self.lengths / self.lengths.sum()))
        return seq, int(rng.integers(0, max(1, self.lengths[seq] - self.window + 1)))

    def window_features(self, seq: int, start: int) -> np.ndarray:
        """(F, window) features, zero-padded past the end of a short sequence."""
        part = self.features[seq][start: start + self.window]
        return np.pad(part, ((0, self.window - len(part)), (0, 0))).T.copy()


class WindowDataset(RandomWindows):
    """Random windows with per-frame labels (-100 = padding, ignored by the loss)."""

    def __init__(self, features: Sequence[np.ndarray], labels: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int):
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed)
        self.labels = labels

    def __getitem__(self, index: int):
        seq, start = self.draw(index)
        labels = self.labels[seq][start: start + self.window]
        labels = np.pad(labels, (0, self.window - len(labels)), constant_values=-100)
        return torch.from_numpy(self.window_features(seq, start)), torch.from_numpy(labels)


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


def tune_for_f1(decode_at: Callable[[float], pl.DataFrame], segments: pl.DataFrame, thresholds: Sequence[float],
                num_classes: int, iou: float) -> tuple[float, list[dict]]:
    """The score threshold (from `thresholds`) whose detections maximise F1 (official rule) against `segments`."""
    trials = []
    for threshold in thresholds:
        result = detection_metrics(segments, decode_at(float(threshold)), num_classes=num_classes, iou_threshold=iou)
        trials.append({"threshold": float(threshold), "f1": result["official"]["f1"], "f1_one_to_one": result["one_to_one"]["f1"]})
    best = max(trials, key=lambda t: (t["f1"], t["f1_one_to_one"], -t["threshold"]))
    return best["threshold"], trials


# ---------------------------------------------------------------- anchor-free detector


class DetectionWindows(RandomWindows):
    """Random windows with pyramid targets: (features (F, W), classes (K, P), distances (2, P))."""

    def __init__(self, features: Sequence[np.ndarray], segments: Sequence[np.ndarray], *, window: int, per_epoch: int, seed: int,
                 pyramid: detection.Pyramid, num_classes: int, radius: float):
        if window % pyramid.strides[-1]:
            raise ValueError(f"track2.window {window} must be a multiple of the largest stride {pyramid.strides[-1]}")
        super().__init__(features, window=window, per_epoch=per_epoch, seed=seed)
        self.segments, self.pyramid, self.num_classes, self.radius = segments, pyramid, num_classes, radius

    def __getitem__(self, index: int):
        seq, start = self.draw(index)
        inside = detection.window_segments(self.segments[seq], start, self.window)
        classes, distances = detection.assign_targets(inside, self.window, self.pyramid, self.num_classes, self.radius)
        return torch.from_numpy(self.window_features(seq, start)), torch.from_numpy(classes), torch.from_numpy(distances)


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
                 num_classes: int):
        self.windows = WindowDataset(features, labels, window=length, per_epoch=per_epoch, seed=seed)
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
    detector = options.get("detector", "anchorfree")
    if detector not in DETECTORS:
        raise ConfigError(f"unknown track2.detector {detector!r}; choose one of {list(DETECTORS)}")
    return detector


def pyramid_for(options: Mapping) -> detection.Pyramid:
    return detection.Pyramid(tuple(2**level for level in range(int(options["levels"]))), base_range=float(options.get("base_range", 4.0)))


def make_decoder(model: torch.nn.Module, options: Mapping, features: Mapping[str, np.ndarray]) -> Callable[[float], pl.DataFrame]:
    """Runs the model once over each standardised feature sequence; returns `decode_at(threshold) -> detections`.

    `options` is the `track2` params section (detector kind and decoding settings)."""
    detector = detector_of(options)
    if detector == "anchorfree":
        config = detection.DetectorDecodeConfig(
            threshold=0.0, pre_threshold=float(options["pre_threshold"]), top_k=int(options["top_k"]), nms=options["nms"],
            nms_iou=float(options["nms_iou"]), min_length=int(options["min_length"]))
        outputs = {sid: (*detector_outputs(model, f), len(f)) for sid, f in features.items()}
        everything = decode_detector(outputs, pyramid_for(options), config)
        return lambda threshold: everything.filter(pl.col("score") > threshold)
    if detector == "window":
        probs = {sid: window_probabilities(model, f, length=int(options["window_length"]), stride=int(options["window_stride"]))
                 for sid, f in features.items()}
    else:
        probs = {sid: sequence_probabilities(model, f) for sid, f in features.items()}
    base = dict(min_length=int(options["min_length"]), smooth=int(options["smooth"]), nms_iou=float(options["nms_iou"]))
    return lambda threshold: decode(probs, DecodeConfig(threshold=threshold, **base))


def train_config(options: Mapping) -> TrainConfig:
    """The optimisation settings of the `track2` options (the data loader stays in-process)."""
    return TrainConfig(
        epochs=int(options["epochs"]), batch_size=int(options["batch_size"]), lr=float(options["lr"]),
        weight_decay=float(options["weight_decay"]), seed=int(options["seed"]), workers=0,
        optimizer=options.get("optimizer", "sgd"), warmup_epochs=int(options.get("warmup_epochs", 0)),
    )


def build_detector(options: Mapping, in_features: int, num_classes: int) -> torch.nn.Module:
    """The network of `track2.detector` (untrained), sized by the `track2` options."""
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
    if detector == "anchorfree":
        return DetectionWindows(inputs, [detection.segments_array(s) for s in segments], window=window, per_epoch=per_epoch,
                                seed=seed, pyramid=pyramid_for(options), num_classes=num_classes, radius=float(options["radius"])), detector_loss
    labels = [frame_labels(len(f), s) for f, s in zip(inputs, segments)]
    if detector == "window":
        return ClassifiedWindows(inputs, labels, length=int(options["window_length"]), per_epoch=per_epoch, seed=seed,
                                 num_classes=num_classes), window_loss_single
    return WindowDataset(inputs, labels, window=window, per_epoch=per_epoch, seed=seed), window_loss
