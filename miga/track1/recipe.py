"""Track 1: clip classification from several streams, fused.

Streams (`model.streams`): `pose` (PoseConv3D-style SlowOnly over joint heatmaps rasterized on
the fly), `rgb` (SlowOnly over person-centred frame crops), and the skeleton-sequence streams
over body-normalised keypoints (`miga.track1.skeleton`): `joint`, `bone`, `joint_motion`, `bone_motion`
(ST-GCN++) and `tcn`, `tcn_bone` (a dilated temporal conv net over the flattened joints or bones and
their motion: few parameters, the strongest stream on small real sets, BENCHMARKS.md). Each stream may
train with its own recipe (`train.per_stream`, `train_config`). Late fusion is a weighted geometric mean of the streams' class
probabilities with weights tuned on val (`tune_stream_weights`: the grid includes every single
stream, so the fusion is never worse on val than its best stream); `crossattn` instead trains one
joint model over heatmaps and RGB (`fused`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from miga.errors import ConfigError
from miga.io import KeypointStore
from miga.layouts import convert, get_layout
from miga.models import (InputRecipe, LoadReport, build_model, create_rgb_backbone, freeze_batchnorm, freeze_stages,
                         input_recipe, load_rgb_checkpoint, param_groups, rgb_clip_transform)
from miga.models.fusion import CrossAttentionFusion, PrototypeClassifier
from miga.params import defaults as schema_defaults
from miga.track1.skeleton import FEATURES as GCN_STREAMS
from miga.track1.skeleton import SkeletonClipConfig, SkeletonClips
from miga.training import TrainConfig
from miga.track1.transforms import PoseClipConfig, PoseClipPipeline, flip_volume

FUSIONS = ("none", "late", "crossattn")
TCN_STREAMS = {"tcn": "joint", "tcn_bone": "bone"}  # stream -> the skeleton feature it reads
SKELETON_STREAMS = GCN_STREAMS + tuple(TCN_STREAMS)
STREAMS = ("pose", "rgb") + SKELETON_STREAMS


def skeleton_feature(stream: str) -> str:
    """The `miga.track1.skeleton` feature a skeleton stream reads (`joint` for `joint` and `tcn`, ...)."""
    return TCN_STREAMS.get(stream, stream)


def _skeleton_config(skeleton: Mapping | None) -> SkeletonClipConfig:
    """The `skeleton` params as a clip config; None = the schema's defaults."""
    return SkeletonClipConfig.from_params(schema_defaults("skeleton") if skeleton is None else skeleton)


def train_config(stream: str, train: Mapping) -> TrainConfig:
    """A stream's training options: the `train` params, with its own entry of `train.per_stream` over them
    (the temporal conv net trains with AdamW for more epochs than the heatmap and RGB networks' SGD)."""
    own = dict(train["per_stream"].get(stream) or {})  # a stream without its own entry trains on `train`
    unknown = sorted(set(own) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"train.per_stream.{stream}: unknown keys {unknown}; known: {sorted(TrainConfig.__dataclass_fields__)}")
    return TrainConfig.from_params({**train, **own})


@dataclass(frozen=True)
class StreamInputs:
    """What a stream needs to build its model: heatmap channels, classes, the keypoints' layout."""

    in_channels: int
    num_classes: int
    keypoint_layout: str | None = None


def pose_pipeline(heatmap: Mapping) -> PoseClipPipeline:
    layout = get_layout(heatmap["layout"])
    return PoseClipPipeline(PoseClipConfig(
        clip_len=int(heatmap["clip_len"]), resize_to=int(heatmap["resize_to"]), crop_size=int(heatmap["size"]),
        sigma=float(heatmap["sigma"]), padding=float(heatmap["padding"]), with_limbs=bool(heatmap["with_limbs"]),
        num_test_clips=int(heatmap["test_clips"]), flip_test=bool(heatmap["flip_test"]),
        limbs=layout.limbs, flip_index=layout.flip_index,
    ))


def pose_channels(heatmap: Mapping) -> int:
    layout = get_layout(heatmap["layout"])
    return len(layout.limbs) if heatmap["with_limbs"] else layout.num_joints


class PoseClips(Dataset):
    """Keypoints of each clip -> heatmap volume (C, T, H, W) (train) or (views, C, T, H, W) (test)."""

    def __init__(self, store: KeypointStore, sample_ids: Sequence[str], labels: np.ndarray, *, layout: str,
                 pipeline: PoseClipPipeline, train: bool, seed: int):
        self.keypoints = [convert(store[s], store.layout, layout) for s in sample_ids]
        self.labels, self.pipeline, self.train, self.seed, self.epoch = labels, pipeline, train, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.keypoints)

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        volume = self.pipeline(self.keypoints[index], train=self.train, rng=rng)
        return torch.from_numpy(volume[0] if self.train else volume), int(self.labels[index])


def _rgb_backbone_name(model: Mapping) -> str:
    return str(model["rgb_backbone"])


def rgb_recipe(model: Mapping, rgb: Mapping) -> InputRecipe:
    """The RGB input of `model.rgb_backbone`: its published recipe (crop, test crop, short-side jitter) scaled to the
    cached crop side `rgb.size`, with `rgb.frames` frames every `rgb.sampling_rate` source frames (0 = spread
    over the whole clip). At the recipe's own cache size (configs/rgb_*.yaml) this is the published recipe."""
    published = input_recipe(_rgb_backbone_name(model))
    size = int(rgb["size"])
    scale = size / published.cache_size
    side = lambda pixels: max(1, int(round(pixels * scale)))  # noqa: E731
    return InputRecipe(int(rgb["frames"]), int(rgb["sampling_rate"]), min(size, side(published.size)),
                       published.mean, published.std, test_size=min(size, side(published.eval_size)),
                       scale_range=tuple(side(p) for p in published.scale_range) if published.scale_range else None)


class RgbClips(Dataset):
    """Cached uint8 crops (T, S, S, 3) -> (3, T, s, s) by `recipe` (`rgb_clip_transform`): in training a random
    short-side scale and crop, a horizontal flip with p = 0.5 and brightness jitter; at test the centre crop,
    as two views (original, mirrored)."""

    def __init__(self, crops: Sequence[np.ndarray], labels: np.ndarray, *, recipe: InputRecipe, train: bool, seed: int,
                 flip_prob: float = 0.5):
        self.crops, self.labels, self.train, self.seed, self.epoch, self.flip_prob = crops, labels, train, seed, 0, flip_prob
        self.transform = rgb_clip_transform(recipe, train=train, flip_prob=flip_prob, intensity_jitter=0.2 if train else 0.0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.crops)

    def frames(self, index: int) -> torch.Tensor:
        return self.transform(self.crops[index], np.random.default_rng([self.seed, self.epoch, index, 1]))

    def __getitem__(self, index: int):
        clip = self.frames(index)
        return (clip if self.train else torch.stack([clip, clip.flip(-1)])), int(self.labels[index])


class PairedClips(Dataset):
    """Pose heatmaps and RGB frames of the same clip, mirrored together: ((heatmaps, frames), label).

    Training flips both or neither (the pose pipeline's own flip is off; the heatmap volume is
    mirrored with its left/right channels swapped). Test views pair each pose view with the RGB
    view of the same orientation.
    """

    def __init__(self, pose: PoseClips, rgb: RgbClips, *, flip_prob: float = 0.5):
        if len(pose) != len(rgb):
            raise ValueError(f"pose and RGB clip counts differ: {len(pose)} != {len(rgb)}")
        if rgb.train and rgb.flip_prob:
            raise ValueError("PairedClips mirrors pose and RGB together: give it RgbClips with flip_prob 0")
        config = pose.pipeline.config
        self.pose, self.rgb, self.flip_prob = pose, rgb, flip_prob
        self.pose.pipeline = PoseClipPipeline(replace(config, flip_prob=0.0))
        self.channel_flip = config.channel_flip_index(pose.keypoints[0].shape[2]) if len(pose) else None

    def set_epoch(self, epoch: int) -> None:
        self.pose.set_epoch(epoch)
        self.rgb.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.pose)

    def __getitem__(self, index: int):
        heatmaps, label = self.pose[index]
        if self.pose.train:
            frames = self.rgb.frames(index)
            rng = np.random.default_rng([self.pose.seed, self.pose.epoch, index, 2])
            if rng.random() < self.flip_prob:
                heatmaps = torch.from_numpy(flip_volume(heatmaps.numpy(), self.channel_flip))
                frames = frames.flip(-1)
            return (heatmaps, frames), label
        rgb_views, _ = self.rgb[index]  # (2, ...): original, flipped
        config = self.pose.pipeline.config
        orientation = [0] * config.num_test_clips + ([1] * config.num_test_clips if config.flip_test else [])
        return (heatmaps, rgb_views[orientation]), label


def clip_dataset(stream: str, ids: list[str], labels: np.ndarray, heatmap: Mapping, *, train: bool, seed: int,
                 store=None, crops: Mapping[str, np.ndarray] | None = None, skeleton: Mapping | None = None,
                 rgb: InputRecipe | None = None) -> Dataset:
    """The clips a stream reads: pose heatmaps from `store` (keypoints by sample id), RGB `crops` transformed by the
    `rgb` recipe (`rgb_recipe`; None = the small SlowOnly's), both (`fused`), or one skeleton feature of the
    keypoints (`skeleton`: the `skeleton` params)."""
    if stream in SKELETON_STREAMS:
        return SkeletonClips([store[i] for i in ids], store.layout, labels, config=_skeleton_config(skeleton),
                             feature=skeleton_feature(stream), train=train, seed=seed)
    pose = lambda: PoseClips(store, ids, labels, layout=heatmap["layout"], pipeline=pose_pipeline(heatmap),  # noqa: E731
                             train=train, seed=seed)
    recipe = rgb or input_recipe("slowonly_small")
    frames = lambda flip_prob=0.5: RgbClips([crops[i] for i in ids], labels, recipe=recipe, train=train, seed=seed,  # noqa: E731
                                            flip_prob=flip_prob)
    return {"pose": pose, "rgb": frames, "fused": lambda: PairedClips(pose(), frames(0.0))}[stream]()


def build_stream(stream: str, model: Mapping, inputs: StreamInputs, skeleton: Mapping | None = None) -> torch.nn.Module:
    """`pose`, `rgb`, a skeleton stream (`joint`, `bone`, ...) or `fused` (heatmap and RGB backbones joined by
    cross-attention), with prototypes if asked."""
    common = dict(num_classes=inputs.num_classes, stage_blocks=tuple(model["stage_blocks"]), dropout=float(model["dropout"]))
    pose = lambda: build_model("pose_slowonly", in_channels=inputs.in_channels, base_channels=int(model["pose_base_channels"]), **common)  # noqa: E731
    rgb = lambda: _rgb_network(model, inputs.num_classes)  # noqa: E731
    if stream in TCN_STREAMS:
        layout = _skeleton_config(skeleton).layout_for(inputs.keypoint_layout)
        network = build_model("skeleton_tcn", num_joints=get_layout(layout).num_joints, num_classes=inputs.num_classes,
                              channels=int(model["tcn_channels"]), blocks=int(model["tcn_blocks"]),
                              dropout=float(model["tcn_dropout"]))
    elif stream in GCN_STREAMS:
        network = build_model("stgcn", layout=_skeleton_config(skeleton).layout_for(inputs.keypoint_layout), num_classes=inputs.num_classes,
                              base_channels=int(model["gcn_channels"]), num_blocks=int(model["gcn_blocks"]),
                              inflate_at=tuple(model["gcn_inflate_at"]), dropout=float(model["dropout"]))
    elif stream == "pose":
        network = pose()
    elif stream == "rgb":
        network = rgb()
    elif stream == "fused":
        network = CrossAttentionFusion(pose(), rgb(), inputs.num_classes, dim=int(model["fusion_dim"]),
                                       heads=int(model["fusion_heads"]), layers=int(model["fusion_layers"]),
                                       dropout=float(model["dropout"]))
    else:
        raise ConfigError(f"unknown stream {stream!r}; choose from {STREAMS}")
    if model["prototypes"]:
        network = PrototypeClassifier(network, inputs.num_classes, scale=float(model["prototype_scale"]),
                                      margin=float(model["prototype_margin"]))
    return network


def _rgb_network(model: Mapping, num_classes: int) -> torch.nn.Module:
    """`model.rgb_backbone` with a classifier for our classes: miga's small SlowOnly (sized by `rgb_base_channels`,
    `stage_blocks`) or a pytorchvideo backbone at its own size (random init; `init_rgb_weights` loads a checkpoint)."""
    name = _rgb_backbone_name(model)
    if name == "slowonly_small":
        return create_rgb_backbone(name, num_classes=num_classes, dropout=float(model["dropout"]),
                                   base_channels=int(model["rgb_base_channels"]), stage_blocks=tuple(model["stage_blocks"]))
    return create_rgb_backbone(name, num_classes=num_classes)


def _rgb_prefix(network: torch.nn.Module, stream: str) -> str:
    """Where a stream's RGB classifier sits: the network itself (`rgb`), or its `rgb` branch (`fused`), under
    a `PrototypeClassifier`'s `base` when prototypes are on."""
    base = "base." if isinstance(network, PrototypeClassifier) else ""
    return base + ("rgb." if stream == "fused" else "")


def init_rgb_weights(network: torch.nn.Module, stream: str, model: Mapping) -> list[str]:
    """Before training: load `model.rgb_checkpoint` (a local pytorchvideo model-zoo file, weights only) into the RGB
    classifier, then freeze its BatchNorms (`rgb_freeze_bn`) and first stages (`rgb_freeze_stages`). Returns
    what was done, one line each (nothing for streams without RGB)."""
    if "rgb" not in inputs_for(stream):
        return []
    prefix = _rgb_prefix(network, stream).rstrip(".")
    rgb = network.get_submodule(prefix) if prefix else network
    name = _rgb_backbone_name(model)
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
    if "rgb" not in inputs_for(stream) or not model["rgb_checkpoint"]:
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
    """Softmax averaged over the test views (clips x flips) of each sample -> (N, K)."""
    dev = next(model.parameters()).device
    model.eval()
    out = []
    for views, labels in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        n = len(labels)
        logits = model(to_device(_flatten_views(views), dev)).float()
        out.append(torch.softmax(logits, dim=1).view(n, -1, logits.shape[1]).mean(1).cpu().numpy())
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
        raise ConfigError(f"unknown model.fusion {fusion!r}; choose one of {FUSIONS}")
    unknown = [s for s in streams if s not in STREAMS]
    if unknown or not streams or len(set(streams)) != len(streams):
        raise ConfigError(f"model.streams must list distinct streams from {STREAMS}, got {list(streams)}")
    return {"none": tuple(streams[:1]), "late": tuple(streams), "crossattn": ("fused",)}[fusion]


def inputs_for(stream: str) -> tuple[str, ...]:
    """What a stream reads: `pose` (keypoints), `rgb` (crops), or both."""
    if stream == "fused":
        return ("pose", "rgb")
    return ("rgb",) if stream == "rgb" else ("pose",)


def ensemble(scores: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted average of per-model class scores (N, K); weights need not sum to 1."""
    missing = set(weights) - set(scores)
    if missing:
        raise ValueError(f"ensemble weights name score sets that do not exist: {sorted(missing)}; have {sorted(scores)}")
    total = sum(float(w) for w in weights.values())
    if total <= 0:
        raise ValueError("ensemble weights must sum to a positive number")
    return sum(float(w) * scores[name] for name, w in weights.items()) / total
