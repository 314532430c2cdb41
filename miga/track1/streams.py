"""Track 1's streams, one registered `Stream` each: the params sections its input reads, its clips and its network.

`STREAMS` is the registry (`track1.model.streams` names entries of it; `fused` is the joint model that
`track1.model.fusion: crossattn` trains). Adding a stream is one entry here; the tests are parametrized over the
registry, so a new stream is built, trained a step and scored there without listing it.

- `pose`: PoseConv3D-style SlowOnly over joint heatmaps rasterised on the fly (`miga.heatmap`).
- `rgb`: a 3D CNN over person-centred frame crops (`track1.model.rgb_backbone`).
- `joint`, `bone`, `joint_motion`, `bone_motion`: ST-GCN++ over body-normalised keypoint sequences.
- `tcn`, `tcn_bone`: a dilated temporal conv net over the flattened joints or bones and their motion.
- `fused`: both 3D-CNN backbones joined by cross-attention.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from miga.layouts import get_layout
from miga.models import InputRecipe, build_model, input_recipe
from miga.models.fusion import CrossAttentionFusion, PrototypeClassifier
from miga.params import defaults as schema_defaults
from miga.track1.clips import PairedClips, PoseClips, RgbClips, pose_pipeline, rgb_backbone_name
from miga.track1.rgb import CropSelection
from miga.track1.skeleton import FEATURES as SKELETON_FEATURES
from miga.track1.skeleton import SkeletonClipConfig, SkeletonClips


@dataclass(frozen=True)
class StreamInputs:
    """What a stream needs to build its model: heatmap channels, classes, the keypoints' layout."""

    in_channels: int
    num_classes: int
    keypoint_layout: str | None = None


@dataclass(frozen=True)
class ClipSources:
    """Where a stream's clips come from: keypoints (`store[sample_id]`, `store.layout`), RGB crops by sample id, and
    the params that shape them (`track1.heatmap`, the `track1.skeleton` clip config, the RGB input recipe, the
    classes' mirror twins)."""

    store: object = None
    crops: Mapping[str, np.ndarray] | None = None
    heatmap: Mapping | None = None
    skeleton: SkeletonClipConfig | None = None
    rgb: InputRecipe | None = None
    class_mirror: np.ndarray | None = None  # the class each class becomes in a mirrored clip (miga.track1.mirror)


ClipsFn = Callable[[ClipSources, list, np.ndarray, bool, int], Dataset]  # (sources, ids, labels, train, seed)
NetworkFn = Callable[[Mapping, StreamInputs, SkeletonClipConfig], torch.nn.Module]  # (track1.model, inputs, skeleton)


@dataclass(frozen=True)
class Stream:
    name: str
    reads: tuple[str, ...]  # the `track1` params sections its input depends on: heatmap, rgb, skeleton
    clips: ClipsFn
    network: NetworkFn
    selectable: bool = True  # may be listed in `track1.model.streams`

    @property
    def uses_rgb(self) -> bool:
        return "rgb" in self.reads


def skeleton_config(skeleton: Mapping | None) -> SkeletonClipConfig:
    """The `track1.skeleton` params as a clip config; None = the schema's defaults."""
    return SkeletonClipConfig.from_params(schema_defaults("track1.skeleton") if skeleton is None else skeleton)


# ---------------------------------------------------------------- clips


def _pose_clips(sources: ClipSources, ids: list, labels: np.ndarray, train: bool, seed: int) -> PoseClips:
    return PoseClips(sources.store, ids, labels, layout=sources.heatmap["layout"], pipeline=pose_pipeline(sources.heatmap),
                     train=train, seed=seed, class_mirror=sources.class_mirror)


def _rgb_clips(sources: ClipSources, ids: list, labels: np.ndarray, train: bool, seed: int, flip_prob: float | None = None) -> RgbClips:
    recipe = sources.rgb or input_recipe("slowonly_small")
    return RgbClips(CropSelection(sources.crops, tuple(ids)), labels, recipe=recipe, train=train,
                    seed=seed, flip_prob=recipe.flip_prob if flip_prob is None else flip_prob, class_mirror=sources.class_mirror)


def _paired_clips(sources: ClipSources, ids: list, labels: np.ndarray, train: bool, seed: int) -> PairedClips:
    return PairedClips(_pose_clips(sources, ids, labels, train, seed), _rgb_clips(sources, ids, labels, train, seed, flip_prob=0.0))


def _skeleton_clips(feature: str) -> ClipsFn:
    def clips(sources: ClipSources, ids: list, labels: np.ndarray, train: bool, seed: int) -> SkeletonClips:
        return SkeletonClips([sources.store[i] for i in ids], sources.store.layout, labels, config=sources.skeleton,
                             feature=feature, train=train, seed=seed, class_mirror=sources.class_mirror)
    return clips


# ---------------------------------------------------------------- networks


def _pose_network(model: Mapping, inputs: StreamInputs, skeleton: SkeletonClipConfig) -> torch.nn.Module:
    return build_model("pose_slowonly", in_channels=inputs.in_channels, base_channels=int(model["pose_base_channels"]),
                       num_classes=inputs.num_classes, stage_blocks=tuple(model["stage_blocks"]), dropout=float(model["dropout"]))


def _rgb_network(model: Mapping, inputs: StreamInputs, skeleton: SkeletonClipConfig) -> torch.nn.Module:
    """`model.rgb_backbone` with a classifier for our classes: miga's small SlowOnly (sized by `rgb_base_channels`,
    `stage_blocks`) or a pytorchvideo backbone at its own size (random init; `init_rgb_weights` loads a checkpoint)."""
    name = rgb_backbone_name(model)
    if name == "slowonly_small":
        return build_model("rgb_slowonly_small", num_classes=inputs.num_classes, dropout=float(model["dropout"]),
                           base_channels=int(model["rgb_base_channels"]), stage_blocks=tuple(model["stage_blocks"]))
    return build_model(f"rgb_{name}", num_classes=inputs.num_classes)


def _fused_network(model: Mapping, inputs: StreamInputs, skeleton: SkeletonClipConfig) -> torch.nn.Module:
    return CrossAttentionFusion(_pose_network(model, inputs, skeleton), _rgb_network(model, inputs, skeleton), inputs.num_classes,
                                dim=int(model["fusion_dim"]), heads=int(model["fusion_heads"]), layers=int(model["fusion_layers"]),
                                dropout=float(model["dropout"]))


def _gcn_network(model: Mapping, inputs: StreamInputs, skeleton: SkeletonClipConfig) -> torch.nn.Module:
    return build_model("stgcn", layout=skeleton.layout_for(inputs.keypoint_layout), num_classes=inputs.num_classes,
                       base_channels=int(model["gcn_channels"]), num_blocks=int(model["gcn_blocks"]),
                       inflate_at=tuple(model["gcn_inflate_at"]), dropout=float(model["dropout"]))


def _tcn_network(model: Mapping, inputs: StreamInputs, skeleton: SkeletonClipConfig) -> torch.nn.Module:
    return build_model("skeleton_tcn", num_joints=get_layout(skeleton.layout_for(inputs.keypoint_layout)).num_joints,
                       num_classes=inputs.num_classes, channels=int(model["tcn_channels"]), blocks=int(model["tcn_blocks"]),
                       dropout=float(model["tcn_dropout"]))


STREAMS: dict[str, Stream] = {stream.name: stream for stream in (
    Stream("pose", ("heatmap",), _pose_clips, _pose_network),
    Stream("rgb", ("rgb",), _rgb_clips, _rgb_network),
    *(Stream(feature, ("skeleton",), _skeleton_clips(feature), _gcn_network) for feature in SKELETON_FEATURES),
    Stream("tcn", ("skeleton",), _skeleton_clips("joint"), _tcn_network),
    Stream("tcn_bone", ("skeleton",), _skeleton_clips("bone"), _tcn_network),
    Stream("fused", ("heatmap", "rgb"), _paired_clips, _fused_network, selectable=False),
)}
SELECTABLE = tuple(name for name, stream in STREAMS.items() if stream.selectable)


def clip_dataset(stream: str, ids: list[str], labels: np.ndarray, heatmap: Mapping, *, train: bool, seed: int,
                 store=None, crops: Mapping[str, np.ndarray] | None = None, skeleton: Mapping | None = None,
                 rgb: InputRecipe | None = None, class_mirror: np.ndarray | None = None) -> Dataset:
    """The clips a stream reads: pose heatmaps from `store` (keypoints by sample id), RGB `crops` transformed by the
    `rgb` recipe (`rgb_recipe`; None = the small SlowOnly's), both (`fused`), or one skeleton feature of the
    keypoints (`skeleton`: the `track1.skeleton` params). A mirrored training clip's label becomes
    `class_mirror[label]` (None: labels are kept)."""
    sources = ClipSources(store, crops, heatmap, skeleton_config(skeleton), rgb, class_mirror)
    return STREAMS[stream].clips(sources, ids, labels, train, seed)


def build_stream(stream: str, model: Mapping, inputs: StreamInputs, skeleton: Mapping | None = None) -> torch.nn.Module:
    """The network of a registered stream (untrained), with class prototypes when `model.prototypes`."""
    network = STREAMS[stream].network(model, inputs, skeleton_config(skeleton))
    if model["prototypes"]:
        network = PrototypeClassifier(network, inputs.num_classes, scale=float(model["prototype_scale"]),
                                      margin=float(model["prototype_margin"]))
    return network
