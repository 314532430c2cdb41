"""params.yaml: its typed schema (every key, its type, range and its one default) and the loader stages use.

The schema is the single place a parameter's default lives: library code reads the validated tree with
`params["key"]`, never `.get(key, default)`. A wrong key, type or value is one `ConfigError` naming the key.
YAML aliases are refused (a few lines of anchors can expand into gigabytes).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from miga.errors import ConfigError

PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]
Probability = Annotated[float, Field(ge=0, le=1)]
OpenUnit = Annotated[float, Field(gt=0, lt=1)]
Split = Literal["train", "val", "test"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SynthParams(Section):
    preset: Literal["tiny", "default", "benchmark", "quarter", "half", "full"] = "default"
    seed: int = 2024
    imigue_edition: Literal["2023", "2024", "2025", "2025_precut", "full"] = "2025"
    smg_edition: Literal["organisers", "kaggle2024"] = "kaggle2024"
    imigue_root: str = "data/raw/imigue"
    smg_root: str = "data/raw/smg"
    workers: PositiveInt = 1


class DatasetParams(Section):
    """One release under `datasets`; `format` defaults to the dataset's own name (imigue, smg) and must be
    given for any other name (stream)."""

    root: str
    format: Literal["imigue", "smg", "stream"] | None = None
    skeleton_root: str | None = None
    video_root: str | None = None
    skeleton: Literal["light_hand", "openpose_xlsx", "openpose_json"] = "light_hand"
    light_hand_tips: Literal["left_first", "right_first"] = "left_first"
    test_labels: Literal["placeholder", "real"] = "placeholder"
    test_truth: str | None = None
    pose: Literal["provided", "mediapipe", "mmpose"] | None = None
    mirror: bool = False


class IngestParams(Section):
    imigue_default_fps: PositiveFloat = 25.0
    smg_default_fps: PositiveFloat = 30.0
    smg_splits: dict[Literal["val", "test"], Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]] = {
        "val": [31, 35], "test": [36, 40]}  # inclusive sample-number ranges


class MediapipeParams(Section):
    model: Literal["holistic", "pose"] = "holistic"
    layout: str = "mediapipe_upper25"
    workers: PositiveInt = 1


class MmposeParams(Section):
    config: str | None = None
    checkpoint: str | None = None
    device: str = "cpu"
    layout: str = "openpose25_hands10"
    workers: PositiveInt = 1


class RayParams(Section):
    address: str | None = None
    num_cpus: PositiveInt | None = None
    workers: PositiveInt | None = None
    cpus_per_worker: PositiveFloat = 1.0
    num_gpus: NonNegativeFloat = 0.0
    retries: NonNegativeInt = 2
    ship_videos: bool = False


class PoseParams(Section):
    backend: Literal["provided", "mediapipe", "mmpose"] = "provided"
    mediapipe: MediapipeParams = MediapipeParams()
    mmpose: MmposeParams = MmposeParams()
    executor: Literal["local", "ray"] = "local"
    ray: RayParams = RayParams()


class HeatmapParams(Section):
    layout: str = "imigue22"
    clip_len: PositiveInt = 16
    resize_to: PositiveInt = 24
    size: PositiveInt = 20
    sigma: PositiveFloat = 1.0
    padding: NonNegativeFloat = 0.25
    with_limbs: bool = False
    test_clips: PositiveInt = 2
    flip_test: bool = True
    flip_prob: Probability = 0.5


class SkeletonParams(Section):
    layout: str | None = None
    clip_len: PositiveInt = 32
    max_gap: NonNegativeInt = 5
    test_clips: PositiveInt = 4
    flip_test: bool = True
    scale: Fraction = 0.3
    rotate: NonNegativeFloat = 0.3
    shear: NonNegativeFloat = 0.1
    flip_prob: Probability = 0.5


class RgbParams(Section):
    frames: PositiveInt = 8
    sampling_rate: NonNegativeInt = 0
    size: PositiveInt = 48
    padding: NonNegativeFloat = 0.25
    workers: PositiveInt = 1
    executor: Literal["local", "ray"] = "local"
    flip_prob: Probability = 0.5


class ModelParams(Section):
    fusion: Literal["none", "late", "crossattn"] = "late"
    streams: Annotated[list[str], Field(min_length=1)] = ["tcn", "tcn_bone", "pose", "rgb"]
    stream_weights: Union[Literal["val", "shrunk"], dict[str, NonNegativeFloat]] = "val"
    fusion_dim: PositiveInt = 64
    fusion_heads: PositiveInt = 4
    fusion_layers: PositiveInt = 1
    stream_loss_weight: NonNegativeFloat = 0.5
    prototypes: bool = False
    prototype_weight: NonNegativeFloat = 1.0
    prototype_scale: PositiveFloat = 10.0
    prototype_margin: NonNegativeFloat = 0.2
    pose_base_channels: PositiveInt = 16
    rgb_base_channels: PositiveInt = 16
    rgb_backbone: str = "slowonly_small"
    rgb_checkpoint: str | None = None
    rgb_backbone_lr_scale: NonNegativeFloat = 0.1
    rgb_freeze_bn: bool = False
    rgb_freeze_stages: NonNegativeInt = 0
    rgb_norm_weight_decay: NonNegativeFloat | None = None
    stage_blocks: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 1, 1]
    dropout: Fraction = 0.1
    gcn_channels: PositiveInt = 32
    gcn_blocks: PositiveInt = 6
    gcn_inflate_at: list[NonNegativeInt] = [2, 4]
    tcn_channels: PositiveInt = 128
    tcn_blocks: PositiveInt = 4
    tcn_dropout: Fraction = 0.1


class StreamTrainParams(Section):
    """A stream's own recipe (`train.per_stream.<stream>`): any optimisation key of `train`, over it."""

    seed: int | None = None
    epochs: PositiveInt | None = None
    batch_size: PositiveInt | None = None
    lr: PositiveFloat | None = None
    momentum: Fraction | None = None
    weight_decay: NonNegativeFloat | None = None
    workers: NonNegativeInt | None = None
    balanced: bool | None = None
    optimizer: Literal["sgd", "adamw"] | None = None
    warmup_epochs: NonNegativeInt | None = None


class TrainParams(Section):
    seed: int = 0
    epochs: PositiveInt = 20
    batch_size: PositiveInt = 16
    lr: PositiveFloat = 0.1
    momentum: Fraction = 0.9
    weight_decay: NonNegativeFloat = 0.0001
    workers: NonNegativeInt = 2
    balanced: bool = False
    optimizer: Literal["sgd", "adamw"] = "sgd"
    warmup_epochs: NonNegativeInt = 0
    per_stream: dict[str, StreamTrainParams] = {}
    refit: bool = False


class SelfSupervisedParams(Section):
    """What every self-supervised pretraining has: its epochs (0 = off), the splits whose unlabelled data it reads, its lr."""

    epochs: NonNegativeInt = 0
    splits: Annotated[list[Split], Field(min_length=1)] = ["train", "val"]
    lr: PositiveFloat = 0.001


class PretrainParams(SelfSupervisedParams):
    """Self-supervised (contrastive) pretraining of the skeleton streams before `train` (miga/track1/pretrain.py)."""

    batch_size: PositiveInt = 32
    weight_decay: NonNegativeFloat = 0.0001
    temperature: PositiveFloat = 0.2
    projection_dim: PositiveInt = 64


class EnsembleMember(Section):
    file: str
    column: str = "scores"
    weight: NonNegativeFloat = 1.0


class EnsembleParams(Section):
    members: list[EnsembleMember] = []


ClassPair = Annotated[list[NonNegativeInt], Field(min_length=2, max_length=2)]


class Track1Params(Section):
    mirror_classes: list[ClassPair] = []
    heatmap: HeatmapParams = HeatmapParams()
    skeleton: SkeletonParams = SkeletonParams()
    rgb: RgbParams = RgbParams()
    model: ModelParams = ModelParams()
    pretrain: PretrainParams = PretrainParams()
    train: TrainParams = TrainParams()
    ensemble: EnsembleParams = EnsembleParams()


class DetectorParams(Section):
    detector: Literal["anchorfree", "frame", "window"] = "frame"
    channels: PositiveInt = 64
    layers: PositiveInt = 6
    levels: PositiveInt = 5
    radius: PositiveFloat = 3.0
    base_range: PositiveFloat = 8.0
    dropout: Fraction = 0.2
    window_length: PositiveInt = 32
    ensemble: PositiveInt = 3


class FeatureParams(Section):
    parts: Annotated[list[Literal["joints", "posture", "path", "velocity", "distances", "scores"]], Field(min_length=1)] = [
        "joints", "posture", "velocity", "distances", "scores"]
    velocity_steps: Annotated[list[PositiveInt], Field(min_length=1)] = [1, 4]
    norm_window: NonNegativeInt = 64


class DetectorTrainParams(Section):
    window: PositiveInt = 256
    windows_per_epoch: PositiveInt = 128
    time_stretch: NonNegativeFloat = 0.0
    frame_weights: Literal["none", "instance", "class"] = "none"
    mirror: bool = False
    mirror_classes: list[ClassPair] = []
    affine_copies: NonNegativeInt = 2
    affine_strength: NonNegativeFloat = 0.1
    seed: int = 0
    threads: PositiveInt = 1
    epochs: PositiveInt = 80
    batch_size: PositiveInt = 8
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: PositiveFloat = 0.002
    warmup_epochs: NonNegativeInt = 2
    weight_decay: NonNegativeFloat = 0.0001


class DetectorPretrainParams(SelfSupervisedParams):
    """Masked-frame pretraining of the frame detector's trunk before `train` (miga/track2/pretrain.py)."""

    mask_ratio: OpenUnit = 0.3
    mask_span: PositiveInt = 8


class DecodeParams(Section):
    window_stride: PositiveInt = 8
    pre_threshold: Fraction = 0.05
    top_k: PositiveInt = 2000
    nms: Literal["soft", "hard"] = "soft"
    nms_iou: OpenUnit = 0.5
    min_length: Union[NonNegativeInt, Annotated[list[NonNegativeInt], Field(min_length=1)]] = [8, 12, 16, 20]
    smooth: Union[PositiveInt, Annotated[list[PositiveInt], Field(min_length=1)]] = [5, 9, 15, 21, 31]
    thresholds: Annotated[list[OpenUnit], Field(min_length=1)] = [0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    candidates: Annotated[list[Literal["detector", "window_logreg", "blend"]], Field(min_length=1, max_length=3)] = [
        "detector", "window_logreg"]
    switch_margin: NonNegativeFloat = 1.0
    switch_confidence: Probability = 0.9  # a switch must also win this share of block-bootstrap resamples of val (0: no check)
    class_thresholds_from: NonNegativeInt = 0
    class_relative: bool = True  # each class's smooth / min_length scaled by its median training length over all gestures'
    class_relative_prior: NonNegativeFloat = 20.0  # gestures' worth of pull towards scale 1: scale = ratio ** (n / (n + prior))
    relabel_weight: Probability = 0.0  # the segment classifier's share in each detection's class (miga.track2.relabel)
    length_reference: NonNegativeFloat = 0.0  # frames: smooth / min_length are scaled by (median training gesture) / this when above 1


class Track2Params(Section):
    dataset: str = "smg"
    model: DetectorParams = DetectorParams()
    features: FeatureParams = FeatureParams()
    pretrain: DetectorPretrainParams = DetectorPretrainParams()
    train: DetectorTrainParams = DetectorTrainParams()
    decode: DecodeParams = DecodeParams()


class LaunchParams(Section):
    launcher: Literal["local", "torchrun"] = "local"
    nproc: Union[PositiveInt, Literal["gpu", "cpu", "auto"]] = 2


class EvaluateParams(Section):
    split: Split = "test"
    head_k: PositiveInt = 10
    iou_threshold: OpenUnit = 0.3


class SubmissionParams(Section):
    track2_class_base: Literal[0, 1] = 1


class EmotionLogregParams(Section):
    C: PositiveFloat = 1.0  # inverse L2 strength (the bag-of-MG baseline uses it too)


class EmotionGbdtParams(Section):
    depth: PositiveInt = 2
    learning_rate: PositiveFloat = 0.05
    iterations: PositiveInt = 100
    min_leaf: PositiveInt = 10


class EmotionParams(Section):
    """The emotion stage (miga.emotion): a video's state (iMiGUE: won or lost match) from its MG sequence."""

    source: Literal["labels", "track1", "track2"] = "labels"
    model: Literal["auto", "logreg", "gbdt", "blend"] = "logreg"
    folds: Annotated[int, Field(ge=2)] = 5  # person-disjoint cross-validation on the training videos
    repeats: PositiveInt = 3  # fold draws (seeds seed, seed + 1, ...), averaged
    seed: int = 0
    # the labelled videos the model learns from; cross-validation scores the train split's only
    train_splits: Annotated[list[Literal["train", "val"]], Field(min_length=1)] = ["train"]
    logreg: EmotionLogregParams = EmotionLogregParams()
    gbdt: EmotionGbdtParams = EmotionGbdtParams()


class ProjectParams(Section):
    synth: SynthParams = SynthParams()
    datasets: dict[str, DatasetParams] = {
        "imigue": DatasetParams(root="data/raw/imigue", test_truth="data/raw/imigue/imigue_test_truth"),
        "smg": DatasetParams(root="data/raw/smg", test_truth="data/raw/smg/smg_test_truth"),
    }
    ingest: IngestParams = IngestParams()
    pose: PoseParams = PoseParams()
    track1: Track1Params = Track1Params()
    track2: Track2Params = Track2Params()
    launch: LaunchParams = LaunchParams()
    evaluate: EvaluateParams = EvaluateParams()
    submission: SubmissionParams = SubmissionParams()
    emotion: EmotionParams = EmotionParams()


class Params(dict):
    """A validated params tree: a missing key is a ConfigError naming its full path, not a KeyError."""

    def __init__(self, data: Mapping, path: str = "", source: Path = Path("params.yaml")):
        super().__init__({k: Params(v, f"{path}{k}.", source) if isinstance(v, Mapping) else v for k, v in data.items()})
        self._path, self._source = path, source

    def __missing__(self, key):
        raise ConfigError(f"{self._source}: missing key '{self._path}{key}'")


def defaults(section: str) -> dict:
    """The schema's defaults of one params section, by its dotted path (`track1.train`, `track2`, ...): what a key not
    in params.yaml takes."""
    node = validated({})
    for name in section.split("."):
        node = node[name]
    return copy.deepcopy(_plain(node))


def _plain(node):
    return {k: _plain(v) for k, v in node.items()} if isinstance(node, Mapping) else node


def validated(raw: Mapping, source: Path | str = "params.yaml") -> Params:
    """`raw` (a params.yaml tree) checked against the schema, every default filled in."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of sections, not {type(raw).__name__}")
    try:
        model = ProjectParams.model_validate(dict(raw))
    except ValidationError as error:
        raise ConfigError(f"{source}: {_first_problem(error)}") from None
    tree = model.model_dump(mode="python")
    train = tree["track1"]["train"]
    train["per_stream"] = {stream: {k: v for k, v in own.items() if v is not None}  # only what the stream sets
                           for stream, own in train["per_stream"].items()}
    return Params(tree, source=Path(source))


_UNION_BRANCHES = ("function-", "literal[", "list[", "dict[", "constrained-")  # pydantic's names of a union's branches
_TYPE_BRANCHES = {"int", "float", "str", "bool", "none"}


def _first_problem(error: ValidationError) -> str:
    problems = error.errors()
    first = problems[0]
    key = ".".join(str(part) for part in first["loc"] 
                   if not str(part).startswith(_UNION_BRANCHES) and str(part) not in _TYPE_BRANCHES)
    value = "" if first["type"] == "missing" else f" (got {first.get('input')!r})"
    more = f"; {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
    what = "missing key" if first["type"] == "missing" else "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{key}: {what}{value}{more}"


def read_yaml(path: Path) -> object:
    """Safe YAML without aliases: `yaml.safe_load` of `path`, a ConfigError for anchors/aliases or bad syntax."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: parameters file not found") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as error:
        raise ConfigError(f"{path}: cannot read: {error.__class__.__name__}") from None
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ConfigError(f"{path}: YAML aliases (*name) are not supported in params; write the value out")
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None


def load_params(path: Path) -> Params:
    """params.yaml, parsed (no aliases) and validated against the schema."""
    return validated(read_yaml(path) or {}, path)


def merged(base: Mapping, override: Mapping) -> dict:
    """A deep copy of `base` with `override` laid over it: nested mappings merge, every other value replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        out[key] = merged(out.get(key) or {}, value) if isinstance(value, Mapping) else copy.deepcopy(value)
    return out
