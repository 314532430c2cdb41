"""Track 1: how the streams (`miga.track1.streams`, the registry) train and fuse.

Each stream may train with its own recipe (`track1.train.per_stream`, `train_config`). Late fusion is a weighted geometric mean of the streams' class
probabilities with weights tuned on val (`tune_stream_weights`: the grid includes every single
stream, so the fusion is never worse on val than its best stream); `crossattn` instead trains one
joint model over heatmaps and RGB (`fused`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from miga.errors import ConfigError
from miga.models import LoadReport, freeze_batchnorm, freeze_stages, load_rgb_checkpoint, param_groups
from miga.models.fusion import CrossAttentionFusion, PrototypeClassifier
from miga.track1.clips import pose_channels, pose_pipeline, rgb_backbone_name, rgb_recipe
from miga.track1.mirror import unmirrored
from miga.track1.streams import SELECTABLE, STREAMS, StreamInputs, build_stream, clip_dataset
from miga.training import TrainConfig

__all__ = [  # the recipe's own functions, and the stream vocabulary (clips, registry) it gathers in one import
    "FUSIONS", "SELECTABLE", "STREAMS", "StreamInputs", "build_stream", "clip_dataset", "ensemble", "fuse", "fusion_choice",
    "init_rgb_weights", "make_loss", "optimizer_groups", "pose_channels", "pose_pipeline", "rgb_backbone_name", "rgb_recipe",
    "streams_for", "to_device", "train_config", "tune_stream_weights", "view_averaged_probabilities", "weight_grid",
    "weighted_fusion",
]

FUSIONS = ("none", "late", "crossattn")


def train_config(stream: str, train: Mapping) -> TrainConfig:
    """A stream's training options: the `train` params, with its own entry of `train.per_stream` over them
    (the temporal conv net trains with AdamW for more epochs than the heatmap and RGB networks' SGD)."""
    own = dict(train["per_stream"].get(stream) or {})  # a stream without its own entry trains on `train`
    unknown = sorted(set(own) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"train.per_stream.{stream}: unknown keys {unknown}; known: {sorted(TrainConfig.__dataclass_fields__)}")
    return TrainConfig.from_params({**train, **own})


def _rgb_prefix(network: torch.nn.Module, stream: str) -> str:
    """Where a stream's RGB classifier sits: the network itself (`rgb`), or its `rgb` branch (`fused`), under
    a `PrototypeClassifier`'s `base` when prototypes are on."""
    base = "base." if isinstance(network, PrototypeClassifier) else ""
    return base + ("rgb." if stream == "fused" else "")


def init_rgb_weights(network: torch.nn.Module, stream: str, model: Mapping) -> list[str]:
    """Before training: load `model.rgb_checkpoint` (a local pytorchvideo model-zoo file, weights only) into the RGB
    classifier, then freeze its BatchNorms (`rgb_freeze_bn`) and first stages (`rgb_freeze_stages`). Returns
    what was done, one line each (nothing for streams without RGB)."""
    if not STREAMS[stream].uses_rgb:
        return []
    prefix = _rgb_prefix(network, stream).rstrip(".")
    rgb = network.get_submodule(prefix) if prefix else network
    name = rgb_backbone_name(model)
    done = []
    if model["rgb_checkpoint"]:
        report: LoadReport = load_rgb_checkpoint(rgb, model["rgb_checkpoint"], name=name)
        done.append(str(report))
    if model["rgb_freeze_bn"]:
        done.append(f"{name}: {freeze_batchnorm(rgb)} BatchNorm layers frozen")
    if int(model["rgb_freeze_stages"]):
        done.append(f"{name}: first {int(model['rgb_freeze_stages'])} stages frozen ({freeze_stages(rgb, int(model['rgb_freeze_stages']))} parameters)")
    return done


def optimizer_groups(network: torch.nn.Module, stream: str, model: Mapping, *, lr: float) -> list[dict] | None:
    """Fine-tuning from `model.rgb_checkpoint`: the RGB backbone at `lr * rgb_backbone_lr_scale`, the rest (its new
    classifier, the pose branch and fusion of `fused`) at `lr`; BatchNorm weights at `rgb_norm_weight_decay` when
    set. None (one group, the optimizer's default) when nothing is pretrained."""
    if not STREAMS[stream].uses_rgb or not model["rgb_checkpoint"]:
        return None
    norm_decay = model["rgb_norm_weight_decay"]
    return param_groups(network, lr=lr, backbone_lr_scale=float(model["rgb_backbone_lr_scale"]),
                        norm_weight_decay=None if norm_decay is None else float(norm_decay),
                        backbone=_rgb_prefix(network, stream) + "backbone")


def to_device(inputs, dev: torch.device):
    return tuple(x.to(dev) for x in inputs) if isinstance(inputs, (tuple, list)) else inputs.to(dev)


def make_loss(model_params: Mapping):
    """Cross-entropy on the (fused) logits, plus the per-stream auxiliary losses of the fused
    model (`stream_loss_weight`) and the prototype loss (`prototype_weight`) when enabled."""
    stream_weight = float(model_params["stream_loss_weight"])
    prototype_weight = float(model_params["prototype_weight"])

    def loss_fn(model: torch.nn.Module, batch, dev: torch.device) -> torch.Tensor:
        inputs, labels = batch
        inputs, labels = to_device(inputs, dev), labels.to(dev)
        base = model.base if isinstance(model, PrototypeClassifier) else model
        if isinstance(base, CrossAttentionFusion):
            embedding, stream_logits = base.embed_with_stream_logits(inputs)
        else:
            embedding, stream_logits = base.embed(inputs), []
        loss = F.cross_entropy(model.classify(embedding).float(), labels)
        for logits in stream_logits:
            loss = loss + stream_weight * F.cross_entropy(logits.float(), labels)
        if isinstance(model, PrototypeClassifier):
            loss = loss + prototype_weight * model.prototype_loss(embedding, labels)
        return loss

    return loss_fn



def _flatten_views(views):
    """(N, V, ...) -> (N*V, ...), for a tensor or a (pose, rgb) pair."""
    if isinstance(views, (tuple, list)):
        return tuple(v.flatten(0, 1) for v in views)
    return views.flatten(0, 1)


@torch.no_grad()
def view_averaged_probabilities(model: torch.nn.Module, dataset: Dataset, batch_size: int = 16) -> np.ndarray:
    """Softmax averaged over the test views (clips x flips) of each sample -> (N, K). A dataset that mirrors some views
    says which (`view_mirrored`) and what its classes become there (`class_mirror`); those views' classes are mapped
    back first (`miga.track1.mirror.unmirrored`)."""
    dev = next(model.parameters()).device
    view_mirrored, classes = getattr(dataset, "view_mirrored", None), getattr(dataset, "class_mirror", None)
    model.eval()
    out = []
    for views, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        n = len(labels)
        logits = model(to_device(_flatten_views(views), dev)).float()
        probs = unmirrored(torch.softmax(logits, dim=1).view(n, -1, logits.shape[1]).cpu(), view_mirrored, classes)
        out.append(probs.mean(1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def weighted_fusion(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted geometric mean of the streams' class probabilities (N, K), renormalised; weights sum to 1.

    On the synthetic default the validation split preferred it to the weighted arithmetic mean
    (BENCHMARKS.md, "Fusion on the larger synthetic split")."""
    names = [n for n, w in weights.items() if w > 0]
    if not names:
        raise ValueError("stream weights must have a positive entry")
    total = sum(weights[n] for n in names)
    log = sum(weights[n] / total * np.log(np.clip(scores[n], 1e-12, None)) for n in names)
    fused = np.exp(log - log.max(axis=1, keepdims=True))
    return fused / fused.sum(axis=1, keepdims=True)


def weight_grid(names: Sequence[str], steps: int = 4) -> list[dict[str, float]]:
    """Every weighting of `names` in multiples of 1/steps summing to 1 (each stream alone included)."""
    def splits(n: int, left: int):
        if n == 1:
            yield (left,)
            return
        for first in range(left, -1, -1):
            for rest in splits(n - 1, left - first):
                yield (first,) + rest
    return [{name: c / steps for name, c in zip(names, combo)} for combo in splits(len(names), steps)]


def tune_stream_weights(scores: Mapping[str, np.ndarray], labels: np.ndarray, *, steps: int = 4) -> tuple[dict[str, float], list[dict]]:
    """The stream weights (from `weight_grid`) with the best top-1 on labelled clips, ties broken by the lower log loss.

    The grid holds every stream alone, so the choice is never worse on these clips than the best single stream."""
    if len(labels) == 0:
        raise ValueError("tuning the stream weights needs labelled validation clips")
    names = list(scores)
    trials = []
    for weights in weight_grid(names, steps if len(names) > 1 else 1):
        fused = weighted_fusion(scores, weights)
        trials.append({"weights": weights, "top1": float((fused.argmax(1) == labels).mean()),
                       "log_loss": float(-np.log(np.clip(fused[np.arange(len(labels)), labels], 1e-12, None)).mean())})
    best = max(trials, key=lambda t: (t["top1"], -t["log_loss"]))
    return best["weights"], trials


def shrunk_stream_weights(scores: Mapping[str, np.ndarray], labels: np.ndarray, *, steps: int = 4,
                          z: float = 1.0) -> tuple[dict[str, float], list[dict]]:
    """Equal weights, unless a grid point (a single stream included) beats them on the labelled clips by more than
    chance would: `wins - losses > z * sqrt(wins + losses)`, counting the clips one gets right and the other wrong
    (a McNemar-style margin). Of those that do, the best top-1 (ties: the lower log loss) wins.

    With a few dozen val clips the plain grid argmax (`tune_stream_weights`) picks weights that fit those clips'
    noise; this prior keeps every stream in unless val shows, beyond its noise, that a weighting is better."""
    if len(labels) == 0:
        raise ValueError("tuning the stream weights needs labelled validation clips")
    names = list(scores)
    equal = {name: 1 / len(names) for name in names}
    right_equal = weighted_fusion(scores, equal).argmax(1) == labels
    trials = []
    for weights in weight_grid(names, steps if len(names) > 1 else 1):
        fused = weighted_fusion(scores, weights)
        right = fused.argmax(1) == labels
        wins, losses = int((right & ~right_equal).sum()), int((~right & right_equal).sum())
        trials.append({"weights": weights, "top1": float(right.mean()), "wins_over_equal": wins, "losses_to_equal": losses,
                       "beats_equal": bool(wins - losses > z * np.sqrt(wins + losses)),
                       "log_loss": float(-np.log(np.clip(fused[np.arange(len(labels)), labels], 1e-12, None)).mean())})
    better = [t for t in trials if t["beats_equal"]]
    if not better:
        return equal, trials
    return max(better, key=lambda t: (t["top1"], -t["log_loss"]))["weights"], trials


def fusion_choice(weights: Mapping[str, float]) -> str:
    """What stream weights amount to: `<stream> only` or `fused`."""
    used = [n for n, w in weights.items() if w > 0]
    return f"{used[0]} only" if len(used) == 1 else "fused"


def fuse(scores: Mapping[str, np.ndarray], fusion: str, weights: Mapping[str, float] | None) -> np.ndarray:
    if fusion == "none":
        return next(iter(scores.values()))
    if fusion == "late":
        return weighted_fusion(scores, weights)
    if fusion == "crossattn":
        return scores["fused"]
    raise ValueError(f"unknown fusion {fusion!r}; choose one of {FUSIONS}")


def streams_for(fusion: str, streams: Sequence[str] = ("pose", "rgb")) -> tuple[str, ...]:
    """The models `model.fusion` trains: each of `model.streams` for late fusion, the first alone for `none`,
    one joint model for cross-attention."""
    if fusion not in FUSIONS:
        raise ConfigError(f"unknown track1.model.fusion {fusion!r}; choose one of {FUSIONS}")
    unknown = [s for s in streams if s not in SELECTABLE]
    if unknown or not streams or len(set(streams)) != len(streams):
        raise ConfigError(f"track1.model.streams must list distinct streams from {SELECTABLE}, got {list(streams)}")
    return {"none": tuple(streams[:1]), "late": tuple(streams), "crossattn": ("fused",)}[fusion]


def ensemble(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted average of per-model class scores (N, K); weights need not sum to 1."""
    missing = set(weights) - set(scores)
    if missing:
        raise ValueError(f"ensemble weights name score sets that do not exist: {sorted(missing)}; have {sorted(scores)}")
    total = sum(float(w) for w in weights.values())
    if total <= 0:
        raise ValueError("ensemble weights must sum to a positive number")
    return sum(float(w) * scores[name] for name, w in weights.items()) / total
