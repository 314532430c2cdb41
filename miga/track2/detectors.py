"""Track 2's detector kinds (`track2.model.detector`), one class each: how it is built, what it trains on, how its
outputs decode to segments and how much past a decision needs. `DETECTORS` is the registry; adding a kind is one class
here plus its case in the tests (they are parametrized over the registry).

- `frame`: per-frame class scores from a dilated temporal conv trunk; smoothed scores above a threshold become segments.
- `anchorfree` (ActionFormer-style): a feature pyramid with per-step class scores and distances to start and end.
- `window` (the baseline): one class per `window_length`-frame window, slid by `decode.window_stride`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from miga.models import build_model
from miga.track2 import detection
from miga.track2.decoding import DecodeConfig, decode, ints
from miga.track2.features import frame_labels, frame_loss_weights
from miga.track2.windows import ClassifiedWindows, DetectionWindows, WindowDataset

Decoder = Callable[..., pl.DataFrame]  # decode_at(threshold, smooth=..., min_length=...) -> detections


class Detector:
    """What a detector kind is. `options` is the `track2` params tree throughout."""

    name: str = ""
    tunes_smoothing = True  # does `decode.smooth` apply (a list of it is tuned on val)?

    def build(self, options: Mapping, in_features: int, num_classes: int) -> torch.nn.Module:
        raise NotImplementedError

    def training_set(self, options: Mapping, inputs: Sequence[np.ndarray], segments: Sequence[pl.DataFrame], num_classes: int,
                     seed: int) -> tuple[torch.utils.data.Dataset, Callable]:
        """(dataset, loss function) over standardised feature sequences and their segments."""
        raise NotImplementedError

    def decoder(self, model: torch.nn.Module, options: Mapping, features: Mapping[str, np.ndarray]) -> Decoder:
        """Runs the model once over each standardised sequence; returns `decode_at(threshold, smooth=, min_length=)`
        (smooth and min_length default to the first of `decode.smooth` / `decode.min_length`)."""
        raise NotImplementedError

    def frame_probabilities(self, model: torch.nn.Module, options: Mapping, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """(T, K + 1) per-frame class probabilities (column 0 = background) of each standardised sequence, for kinds that
        decode from them (the `blend` candidate averages them with the window baseline's); None for the others."""
        return None

    def network_context(self, options: Mapping) -> int:
        """Frames of past the network's output at a frame depends on (half its temporal receptive field and more)."""
        return 2 ** int(options["model"]["layers"]) - 1


def _common(options: Mapping, in_features: int) -> dict:
    model = options["model"]
    return dict(in_features=in_features, channels=int(model["channels"]), layers=int(model["layers"]), dropout=float(model["dropout"]))


def frame_decoder(probs: Mapping[str, np.ndarray], options: Mapping) -> Decoder:
    """`decode_at(threshold, smooth=, min_length=, class_thresholds=, class_scale=)` over per-frame probabilities
    (column 0 = background); `class_thresholds` (one per gesture class) replace `threshold` when given; with
    `class_scale` (one per gesture class), class c is smoothed and kept at `class_scale[c]` times smooth / min_length."""
    decoding = options["decode"]
    first = dict(smooth=ints(decoding["smooth"])[0], min_length=ints(decoding["min_length"])[0])
    nms_iou = float(decoding["nms_iou"])

    def decode_frames(threshold: float, smooth: int | None = None, min_length: int | None = None,
                      class_thresholds: Sequence[float] | None = None, class_scale: Sequence[float] | None = None) -> pl.DataFrame:
        chosen = {**first, **{k: v for k, v in (("smooth", smooth), ("min_length", min_length)) if v is not None}}
        per_class = None if class_thresholds is None else tuple(float(t) for t in class_thresholds)
        scale = None if class_scale is None else tuple(float(s) for s in class_scale)
        return decode(probs, DecodeConfig(threshold=threshold, nms_iou=nms_iou, class_thresholds=per_class, class_scale=scale, **chosen))

    return decode_frames


class FrameDetector(Detector):
    name = "frame"

    def build(self, options, in_features, num_classes):
        return build_model("temporal_convnet", num_classes=num_classes + 1, **_common(options, in_features))

    def training_set(self, options, inputs, segments, num_classes, seed):
        train = options["train"]
        labels = [frame_labels(len(f), s) for f, s in zip(inputs, segments)]
        return WindowDataset(inputs, labels, window=int(train["window"]), per_epoch=int(train["windows_per_epoch"]), seed=seed,
                             stretch=float(train["time_stretch"]), weights=frame_loss_weights(labels, train["frame_weights"])), window_loss

    def frame_probabilities(self, model, options, features):
        return {sid: sequence_probabilities(model, f) for sid, f in features.items()}

    def decoder(self, model, options, features):
        return frame_decoder(self.frame_probabilities(model, options, features), options)


class WindowDetector(Detector):
    name = "window"

    def build(self, options, in_features, num_classes):
        return build_model("window_classifier", num_classes=num_classes + 1, **_common(options, in_features))

    def training_set(self, options, inputs, segments, num_classes, seed):
        train = options["train"]
        labels = [frame_labels(len(f), s) for f, s in zip(inputs, segments)]
        return ClassifiedWindows(inputs, labels, length=int(options["model"]["window_length"]), per_epoch=int(train["windows_per_epoch"]),
                                 seed=seed, num_classes=num_classes, stretch=float(train["time_stretch"])), window_loss_single

    def frame_probabilities(self, model, options, features):
        length, stride = int(options["model"]["window_length"]), int(options["decode"]["window_stride"])
        return {sid: window_probabilities(model, f, length=length, stride=stride) for sid, f in features.items()}

    def decoder(self, model, options, features):
        return frame_decoder(self.frame_probabilities(model, options, features), options)

    def network_context(self, options):
        return int(options["model"]["window_length"])


class AnchorFreeDetector(Detector):
    name = "anchorfree"
    tunes_smoothing = False

    def build(self, options, in_features, num_classes):
        return build_model("temporal_detector", num_classes=num_classes, levels=int(options["model"]["levels"]), **_common(options, in_features))

    def training_set(self, options, inputs, segments, num_classes, seed):
        train = options["train"]
        return DetectionWindows(inputs, [detection.segments_array(s) for s in segments], window=int(train["window"]),
                                per_epoch=int(train["windows_per_epoch"]), seed=seed, pyramid=pyramid_for(options), num_classes=num_classes,
                                radius=float(options["model"]["radius"]), stretch=float(train["time_stretch"])), detector_loss

    def decoder(self, model, options, features):
        decoding = options["decode"]
        config = detection.DetectorDecodeConfig(
            threshold=0.0, pre_threshold=float(decoding["pre_threshold"]), top_k=int(decoding["top_k"]), nms=decoding["nms"],
            nms_iou=float(decoding["nms_iou"]), min_length=min(ints(decoding["min_length"])))
        outputs = {sid: (*detector_outputs(model, f), len(f)) for sid, f in features.items()}
        everything = decode_detector(outputs, pyramid_for(options), config)

        def decode_anchorfree(threshold: float, min_length: int | None = None, class_thresholds: Sequence[float] | None = None) -> pl.DataFrame:
            if class_thresholds is None:
                kept = everything.filter(pl.col("score") > threshold)
            else:
                above = everything["score"].to_numpy() > np.asarray(class_thresholds, np.float64)[everything["label"].to_numpy()]
                kept = everything.filter(pl.Series(above, dtype=pl.Boolean))
            if min_length is not None and min_length > config.min_length:
                kept = kept.filter(pl.col("end_frame") - pl.col("start_frame") + 1 >= min_length)
            return kept

        return decode_anchorfree


DETECTORS: dict[str, Detector] = {kind.name: kind for kind in (AnchorFreeDetector(), FrameDetector(), WindowDetector())}


def pyramid_for(options: Mapping) -> detection.Pyramid:
    model = options["model"]
    return detection.Pyramid(tuple(2**level for level in range(int(model["levels"]))), base_range=float(model["base_range"]))


# ---------------------------------------------------------------- losses and raw outputs

def window_loss(model: torch.nn.Module, batch, dev: torch.device) -> torch.Tensor:
    """Per-frame cross-entropy; with a third batch part (per-frame weights), the weighted mean over the labelled frames."""
    features, labels = batch[0], batch[1].to(dev)
    logits = model(features.to(dev)).float()
    if len(batch) == 2:
        return F.cross_entropy(logits, labels, ignore_index=-100)
    weights = batch[2].to(dev) * (labels != -100)
    frame_loss = F.cross_entropy(logits, labels, ignore_index=-100, reduction="none")
    return (frame_loss * weights).sum() / weights.sum().clamp_min(1e-12)


@torch.no_grad()
def sequence_probabilities(model: torch.nn.Module, features: np.ndarray) -> np.ndarray:
    """(T, F) standardised features -> (T, K + 1) per-frame class probabilities (column 0 = background)."""
    model.eval()
    dev = next(model.parameters()).device
    logits = model(torch.from_numpy(features).T[None].to(dev)).float()
    return torch.softmax(logits[0], dim=0).T.cpu().numpy()


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
