"""RGB backbones for the Track 1 RGB stream: one registry of named video classifiers, their input recipes,
loading of pytorchvideo model-zoo (Kinetics-400) weights from a local file, fine-tuning helpers and clip transforms.

Every model takes float clips (B, 3, T, H, W) and returns logits (B, num_classes). Each is a
`miga.models.slowonly.Classifier3d`: `backbone(x)` gives the feature map (B, C, T', H', W'), `head`
pools and classifies it, `embed` / `classify` / `embedding_size` are what `CrossAttentionFusion` and
`PrototypeClassifier` use, so a pretrained backbone fits wherever the small SlowOnly does.

Registry (`RGB_BACKBONES`; `create_rgb_backbone(name, num_classes=...)`, `input_recipe(name)`):

- `slowonly_small`: miga's own small SlowOnly (`create_rgb_slowonly`, the `rgb_slowonly_small` model), trained
  from scratch; the CPU default.
- `x3d_xs`, `x3d_s`, `x3d_m`: `pytorchvideo.models.x3d.create_x3d` (one network, 3.8 M parameters; the
  three differ only in frames, sampling rate and crop size, so their zoo files are interchangeable).
- `slow_r50`: `pytorchvideo.models.resnet.create_resnet` with the hub's Slow 8x8 R50 settings (32 M).
- `slowfast_r50`: `pytorchvideo.models.slowfast.create_slowfast` 8x8 R50 (34.6 M); the module takes the
  fast pathway's frames (T = 32) and picks the slow pathway's T / 4 inside (as the hub's `PackPathway`).

What is used from pytorchvideo and what is not:

- Models: pytorchvideo's own keyword-only `create_*` builders, so the zoo's state dicts map onto ours
  key by key. The classifier is rebuilt for our classes (`model_num_class`, no softmax) and the head's
  fixed-size `AvgPool3d` (sized for the zoo's crop) becomes a global average, so any clip size runs; at
  the recipe's size this is the same computation. X3D's head splits in two: its pre-pool 1x1x1 conv
  (conv5) ends the backbone, its post-pool 1x1x1 conv (2048 wide) starts our head's `classify`.
- Transforms: `pytorchvideo.transforms` does not import with torchvision >= 0.17 (it imports
  `torchvision.transforms.functional_tensor`, removed; we have torchvision 0.29). `rgb_clip_transform`
  uses `torchvision.transforms.v2.functional` kernels instead (`resize` with antialias on uint8,
  `crop`, `center_crop`, `horizontal_flip`, `normalize`) with the random parameters drawn from a numpy
  Generator, so a clip's augmentation depends on (seed, epoch, index) as miga's other datasets do.
  The recipe is pytorchvideo's / PySlowFast's: random short-side scale in `scale_range`, random crop of
  `size`, horizontal flip in training; short side `test_size` and a centre crop at test.
- Decoding: `miga.video` (PyAV), not `pytorchvideo.data`.
- Mixed precision: nothing here; `miga.training.autocast` already runs bf16 autocast on CUDA (the
  BatchNorm layers stay float32 under autocast).

Weights are never downloaded: `load_rgb_checkpoint` reads a local `.pyth` / `.pt` file (the zoo's file
names are in each entry's `zoo_file`, under https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from miga.errors import ConfigError
from miga.models.slowonly import Classifier3d, ClassifierHead, create_rgb_slowonly
from miga.video import sample_indices

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)
ZOO_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics/"
HEAD_FC = "head.fc."  # our classifier layer: never loaded from a checkpoint (its classes differ)


class CheckpointError(ConfigError):
    """A backbone checkpoint cannot be used: missing, not weights-only, or made for another architecture."""


# ----------------------------------------------------------------------------------------------------------------
# Input recipes


@dataclass(frozen=True)
class InputRecipe:
    """What a backbone was trained on: `frames` per clip, `sampling_rate` (source frames between two sampled
    frames; 0 = `frames` equal bins over the whole clip, miga's own sampling), the training crop `size`,
    the `mean` / `std` of the [0, 1] pixels, the test crop `test_size` and the training short-side jitter
    `scale_range` (pixels, before the crop)."""

    frames: int
    sampling_rate: int
    size: int
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    test_size: int | None = None
    scale_range: tuple[int, int] | None = None
    flip_prob: float = 0.5  # training: horizontal mirror (`track1.rgb.flip_prob`)

    @property
    def eval_size(self) -> int:
        return self.test_size or self.size

    @property
    def cache_size(self) -> int:
        """Side of a square uint8 crop that serves both the training jitter and the test crop."""
        return max(self.eval_size, self.scale_range[0] if self.scale_range else self.size)

    def cache_bytes(self) -> int:
        """Disk (or memory) cost of one clip cached as uint8 frames at `cache_size`."""
        return self.frames * self.cache_size**2 * 3


# ----------------------------------------------------------------------------------------------------------------
# Modules: pytorchvideo blocks as a Classifier3d


class BlockFeatures(nn.Module):
    """pytorchvideo `Net` blocks up to the head: clip (B, 3, T, H, W) -> feature map (B, C, T', H', W')."""

    def __init__(self, blocks: Sequence[nn.Module], out_channels: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class X3dFeatures(BlockFeatures):
    """X3D stem + 4 stages, then the head's pre-pool conv5 (1x1x1 conv, BN, ReLU)."""

    def __init__(self, blocks: Sequence[nn.Module], pre_conv: nn.Conv3d, pre_norm: nn.Module, pre_act: nn.Module):
        super().__init__(blocks, pre_conv.out_channels)
        self.pre_conv, self.pre_norm, self.pre_act = pre_conv, pre_norm or nn.Identity(), pre_act or nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pre_act(self.pre_norm(self.pre_conv(super().forward(x))))


class X3dHead(ClassifierHead):
    """Global average -> embedding (B, C); classify: X3D's post-pool 1x1x1 conv (C -> 2048), ReLU, dropout, fc."""

    def __init__(self, post_conv: nn.Conv3d, post_act: nn.Module, dropout: float, fc: nn.Linear):
        super().__init__(post_conv.in_channels, fc.out_features, dropout)
        self.post_conv, self.post_act, self.fc = post_conv, post_act or nn.Identity(), fc

    def classify(self, embedding: torch.Tensor) -> torch.Tensor:
        hidden = self.post_act(self.post_conv(embedding[:, :, None, None, None])).flatten(1)
        return self.fc(self.dropout(hidden))


class SlowFastFeatures(BlockFeatures):
    """SlowFast pathways from one clip: fast = all T frames, slow = T // alpha of them; the fast map is
    averaged over time to the slow map's length and the two are stacked on channels (global pooling of
    the result equals pytorchvideo's `PoolConcatPathway`)."""

    def __init__(self, blocks: Sequence[nn.Module], out_channels: int, *, alpha: int):
        super().__init__(blocks, out_channels)
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[2]
        if frames < self.alpha:
            raise ValueError(f"SlowFast needs at least alpha = {self.alpha} frames, got {frames}")
        slow_index = torch.linspace(0, frames - 1, frames // self.alpha, device=x.device).long()
        pathways = [x.index_select(2, slow_index), x]
        for block in self.blocks:
            pathways = block(pathways)
        slow, fast = pathways
        fast = F.adaptive_avg_pool3d(fast, slow.shape[2:])
        return torch.cat([slow, fast], dim=1)


def _head(fc: nn.Linear, dropout: float) -> ClassifierHead:
    head = ClassifierHead(fc.in_features, fc.out_features, dropout)
    head.fc = fc  # pytorchvideo's own initialisation of the new classifier
    return head


# ----------------------------------------------------------------------------------------------------------------
# Builders (keyword-only, as pytorchvideo's)


def create_x3d_classifier(*, num_classes: int, dropout: float = 0.5, clip_length: int = 4, crop_size: int = 160,
                          depth_factor: float = 2.2, **kwargs) -> Classifier3d:
    """X3D by `pytorchvideo.models.x3d.create_x3d` (XS/S/M: depth_factor 2.2; L: 5.0), head for `num_classes`."""
    from pytorchvideo.models.x3d import create_x3d

    kwargs.setdefault("inner_act", nn.SiLU)  # = pytorchvideo's Swish (x * sigmoid(x)), natively, without its custom autograd
    net = create_x3d(input_clip_length=clip_length, input_crop_size=crop_size, depth_factor=depth_factor,
                     model_num_class=num_classes, dropout_rate=dropout, head_activation=None, **kwargs)
    *stages, head = net.blocks
    projected = head.pool
    backbone = X3dFeatures(stages, projected.pre_conv, projected.pre_norm, projected.pre_act)
    return Classifier3d(backbone, X3dHead(projected.post_conv, projected.post_act, dropout, head.proj))


def create_slow_r50_classifier(*, num_classes: int, dropout: float = 0.5, depth: int = 50, **kwargs) -> Classifier3d:
    """Slow 8x8 R50 (the hub's `slow_r50` settings) by `pytorchvideo.models.resnet.create_resnet`."""
    from pytorchvideo.models.resnet import create_resnet

    net = create_resnet(model_depth=depth, stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 7, 7),
                        model_num_class=num_classes, dropout_rate=dropout, **kwargs)
    *stages, head = net.blocks
    return Classifier3d(BlockFeatures(stages, head.proj.in_features), _head(head.proj, dropout))


def create_slowfast_r50_classifier(*, num_classes: int, dropout: float = 0.5, depth: int = 50, alpha: int = 4,
                                   **kwargs) -> Classifier3d:
    """SlowFast 8x8 R50 (the hub's `slowfast_r50` settings) by `pytorchvideo.models.slowfast.create_slowfast`;
    input = the fast pathway's frames (`alpha` = the fast / slow frame ratio the fusion convs' stride assumes)."""
    from pytorchvideo.models.slowfast import create_slowfast

    net = create_slowfast(model_depth=depth, slowfast_fusion_conv_kernel_size=(7, 1, 1),
                          model_num_class=num_classes, dropout_rate=dropout, **kwargs)
    *stages, _pool_concat, head = net.blocks
    return Classifier3d(SlowFastFeatures(stages, head.proj.in_features, alpha=alpha), _head(head.proj, dropout))


# ----------------------------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class RgbBackbone:
    """A registry entry: its builder, published input recipe, and how a zoo checkpoint's keys map to ours
    (`key_map`: (file prefix, our prefix), first match wins; our own `backbone.` / `head.` keys always map)."""

    builder: Callable[..., Classifier3d]
    recipe: InputRecipe
    key_map: tuple[tuple[str, str], ...] = ()
    zoo_file: str | None = None
    kinetics_top1: float | None = None  # the zoo's Kinetics-400 top-1 (%)

    def build(self, *, num_classes: int, dropout: float | None = None, **kwargs) -> Classifier3d:
        if dropout is not None:
            kwargs["dropout"] = dropout
        return self.builder(num_classes=num_classes, **kwargs)


_X3D_KEYS = (("blocks.5.pool.pre_", "backbone.pre_"), ("blocks.5.pool.post_conv.", "head.post_conv."),
             ("blocks.5.proj.", HEAD_FC), ("blocks.", "backbone.blocks."))


def _x3d_entry(frames: int, rate: int, size: int, test_size: int, scale_range: tuple[int, int], zoo_file: str,
               top1: float) -> RgbBackbone:
    recipe = InputRecipe(frames, rate, size, test_size=test_size, scale_range=scale_range)
    return RgbBackbone(partial(create_x3d_classifier, clip_length=frames, crop_size=size), recipe, _X3D_KEYS, zoo_file, top1)


# Recipes: pytorchvideo's model zoo (frames x sampling rate, Kinetics-400 top-1) and PySlowFast's
# configs/Kinetics/pytorchvideo/*.yaml (TRAIN_JITTER_SCALES, TRAIN_CROP_SIZE, TEST_CROP_SIZE); mean / std
# from the torch hub pages (0.45 / 0.225 for every zoo model).
RGB_BACKBONES: dict[str, RgbBackbone] = {
    "slowonly_small": RgbBackbone(create_rgb_slowonly, InputRecipe(8, 0, 48, test_size=48), (("", ""),)),
    "x3d_xs": _x3d_entry(4, 12, 160, 182, (182, 228), "X3D_XS.pyth", 69.12),
    "x3d_s": _x3d_entry(13, 6, 160, 182, (182, 228), "X3D_S.pyth", 73.33),
    "x3d_m": _x3d_entry(16, 5, 224, 256, (256, 320), "X3D_M.pyth", 75.94),
    "slow_r50": RgbBackbone(create_slow_r50_classifier, InputRecipe(8, 8, 224, test_size=256, scale_range=(256, 320)),
                            (("blocks.5.proj.", HEAD_FC), ("blocks.", "backbone.blocks.")), "SLOW_8x8_R50.pyth", 74.58),
    "slowfast_r50": RgbBackbone(create_slowfast_r50_classifier,
                                InputRecipe(32, 2, 224, test_size=256, scale_range=(256, 320)),
                                (("blocks.6.proj.", HEAD_FC), ("blocks.", "backbone.blocks.")), "SLOWFAST_8x8_R50.pyth", 76.94),
}


def rgb_backbone(name: str) -> RgbBackbone:
    try:
        return RGB_BACKBONES[name]
    except KeyError:
        raise ConfigError(f"unknown RGB backbone {name!r}; known: {sorted(RGB_BACKBONES)}") from None


def create_rgb_backbone(name: str, *, num_classes: int, dropout: float | None = None, **kwargs) -> Classifier3d:
    """The named backbone with a fresh classifier for `num_classes` (random init; see `load_rgb_checkpoint`).
    `dropout` None = the builder's default (0.5 for the zoo models, as their recipes)."""
    return rgb_backbone(name).build(num_classes=num_classes, dropout=dropout, **kwargs)


def input_recipe(name: str) -> InputRecipe:
    return rgb_backbone(name).recipe


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints


@dataclass(frozen=True)
class LoadReport:
    """What `load_rgb_checkpoint` did: tensors `loaded` into the model, file tensors `skipped` (the
    classifier head, whose classes differ) and the model tensors left at their initialisation (`kept`)."""

    path: str
    name: str
    loaded: int
    skipped: tuple[str, ...]
    kept: tuple[str, ...]

    def __str__(self) -> str:
        return (f"{self.path}: loaded {self.loaded} tensors into {self.name}; skipped {len(self.skipped)} "
                f"(classifier head: {', '.join(self.skipped) or '-'}); {len(self.kept)} left at init")


_WRAPPERS = ("model_state", "state_dict", "model", "module")  # .pyth {"model_state"}, Lightning / mmaction, miga
_PREFIXES = ("module.", "model.")  # DistributedDataParallel, PySlowFast's PTV wrappers


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, read with `weights_only=True`; wrappers and prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found (nothing is downloaded: get the zoo file from {ZOO_URL})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path}: refused: not a weights-only checkpoint ({_first_line(err)})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({_first_line(err)})") from None
    for _ in range(3):
        inner = next((state[k] for k in _WRAPPERS if isinstance(state, Mapping) and isinstance(state.get(k), Mapping)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = list(state)[:5] if isinstance(state, Mapping) else type(state).__name__
        raise CheckpointError(f"{path}: no state dict of tensors found (top level: {keys})")
    state = dict(state)
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _our_key(key: str, key_map: Sequence[tuple[str, str]]) -> str | None:
    for theirs, ours in (*key_map, ("backbone.", "backbone."), ("head.", "head.")):
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


def _classifier_prefix(model: nn.Module) -> str:
    """Where the one RGB classifier sits in `model`: '' for a Classifier3d, 'base.' inside a PrototypeClassifier."""
    names = [name for name, module in model.named_modules() if isinstance(module, Classifier3d)]
    outer = [""] if "" in names else [n for n in names if not any(n.startswith(f"{o}.") for o in names if o != n)]
    if len(outer) != 1:
        found = ", ".join(outer) or "none"
        raise CheckpointError(f"{type(model).__name__}: expected one RGB classifier (backbone + head), found {found}; "
                              "pass the RGB stream's own module (e.g. the fused model's .rgb)")
    return f"{outer[0]}." if outer[0] else ""


def _example(items: Sequence, what: str) -> str:
    return f"{len(items)} {what} (first: {items[0]})" if items else ""


def load_rgb_checkpoint(model: nn.Module, path: str | Path, *, name: str) -> LoadReport:
    """Load a local checkpoint of backbone `name` (pytorchvideo zoo `.pyth` {"model_state": ...}, a bare state
    dict, "module." prefixes, or a miga model file) into `model`, all but the classifier head.

    Every backbone tensor of `model` must come from the file with its shape, and every file tensor must have
    a place: otherwise a one-line CheckpointError says what did not match (the file is another architecture)
    and the model is left untouched. `model`: from `create_rgb_backbone`, or a wrapper holding one
    (PrototypeClassifier); for a cross-attention model pass its `.rgb`."""
    spec = rgb_backbone(name)
    prefix = _classifier_prefix(model)
    state = read_state_dict(path)
    target = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    mapped, skipped, unexpected = {}, [], []
    for key, tensor in state.items():
        ours = _our_key(key, spec.key_map)
        if ours is not None and ours.startswith(HEAD_FC):
            skipped.append(key)
        elif ours is None or prefix + ours not in target:
            unexpected.append(key)
        else:
            mapped[prefix + ours] = tensor
    reshaped = [f"{k} {tuple(v.shape)} vs {tuple(target[k].shape)}" for k, v in mapped.items() if v.shape != target[k].shape]
    optional = lambda k: k.startswith(prefix + HEAD_FC) or k.endswith("num_batches_tracked")  # noqa: E731
    missing = [k for k in target if k not in mapped and not optional(k)]
    if reshaped or missing or unexpected:
        needed = len([k for k in target if not optional(k)])
        matched = needed - len(missing) - len(reshaped)
        problems = "; ".join(p for p in (_example(missing, "missing"), _example(reshaped, "of another shape"),
                                         _example(unexpected, "in the file without a place in the model")) if p)
        raise CheckpointError(f"{path}: not a {name} checkpoint ({spec.zoo_file or 'miga model'}): "
                              f"{matched}/{needed} tensors match; {problems}")
    model.load_state_dict(mapped, strict=False)
    kept = tuple(k[len(prefix):] for k in target if k not in mapped and not k.endswith("num_batches_tracked"))
    return LoadReport(str(path), name, len(mapped), tuple(skipped), kept)


# ----------------------------------------------------------------------------------------------------------------
# Fine-tuning


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def param_groups(model: nn.Module, *, lr: float, backbone_lr_scale: float = 0.1, weight_decay: float | None = None,
                 norm_weight_decay: float | None = None, backbone: str | None = None) -> list[dict]:
    """Optimizer parameter groups: the backbone's trainable parameters at `lr * backbone_lr_scale`, everything
    else (classifier head, fusion, prototypes) at `lr`. The backbone is every submodule named `backbone`, or
    only the one at `backbone` (e.g. "rgb.backbone" in a cross-attention model whose pose stream starts from
    scratch). `norm_weight_decay` (e.g. 0.0, as the X3D recipe) gives BatchNorm weights and biases their own
    groups; `weight_decay` None = the optimizer's. Each group has a `name`; frozen parameters are left out."""
    norm_params = {id(p) for m in model.modules() if _is_norm(m) for p in m.parameters(recurse=False)}
    in_backbone = ((lambda key: key.startswith(f"{backbone}.")) if backbone
                   else (lambda key: "backbone" in key.split(".")))
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for key, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "backbone" if in_backbone(key) else "head"
        norm = norm_weight_decay is not None and id(param) in norm_params
        groups.setdefault((part, norm), []).append(param)
    out = []
    for (part, norm), params in groups.items():
        group = {"params": params, "lr": lr * (backbone_lr_scale if part == "backbone" else 1.0),
                 "name": f"{part}_norm" if norm else part}
        decay = norm_weight_decay if norm else weight_decay
        if decay is not None:
            group["weight_decay"] = decay
        out.append(group)
    return out


def _stay_eval(module: nn.Module, _inputs) -> None:
    module.training = False


def _freeze_norms(modules: Iterator[nn.Module]) -> int:
    count = 0
    for module in modules:
        if _is_norm(module) and not getattr(module, "_miga_frozen", False):
            module.eval()
            for param in module.parameters(recurse=False):
                param.requires_grad_(False)
            module.register_forward_pre_hook(_stay_eval)  # .train() flips the flag back; the hook wins at each call
            module._miga_frozen = True
            count += 1
    return count


def freeze_batchnorm(model: nn.Module) -> int:
    """Every BatchNorm in eval mode (running statistics fixed) with no gradient on its affine parameters, for good:
    a later `model.train()` does not unfreeze them. Returns how many layers were frozen."""
    return _freeze_norms(model.modules())


def backbone_stages(model: nn.Module) -> list[nn.Module]:
    """The backbone's blocks in order: stem first, then each residual stage (and X3D's conv5 last)."""
    backbone = model.get_submodule(_classifier_prefix(model) + "backbone")
    if isinstance(backbone, X3dFeatures):
        return [*backbone.blocks, nn.ModuleList([backbone.pre_conv, backbone.pre_norm])]
    if isinstance(backbone, BlockFeatures):
        return list(backbone.blocks)
    return [backbone.stem, *backbone.stages]  # miga's Backbone3d


def freeze_stages(model: nn.Module, n: int) -> int:
    """Freeze the first `n` backbone stages (1 = the stem): no gradients, their BatchNorms frozen as
    `freeze_batchnorm` does. Returns the number of parameters frozen."""
    stages = backbone_stages(model)
    if not 0 <= n <= len(stages):
        raise ConfigError(f"freeze_stages: {n} is not in 0..{len(stages)} (the backbone's stages, stem included)")
    frozen = 0
    for stage in stages[:n]:
        for param in stage.parameters():
            if param.requires_grad:
                param.requires_grad_(False)
                frozen += param.numel()
        _freeze_norms(stage.modules())
    return frozen


# ----------------------------------------------------------------------------------------------------------------
# Clips: frame sampling and transforms


def sample_frame_indices(recipe: InputRecipe, start: int, end: int, *, train: bool,
                         rng: np.random.Generator | None = None) -> np.ndarray:
    """`recipe.frames` frame indices in [start, end] at `recipe.sampling_rate` (`miga.video.sample_indices`)."""
    return sample_indices(start, end, recipe.frames, recipe.sampling_rate, train=train, rng=rng)


def _as_video(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) numpy or (3, T, H, W) tensor -> (T, 3, H, W) tensor (torchvision's video layout)."""
    if isinstance(clip, np.ndarray):
        if clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(f"expected a (T, H, W, 3) array, got {clip.shape}")
        return torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)
    if clip.ndim != 4 or clip.shape[0] != 3:
        raise ValueError(f"expected a (3, T, H, W) tensor, got {tuple(clip.shape)}")
    return clip.permute(1, 0, 2, 3)


def rgb_clip_transform(recipe: InputRecipe, *, train: bool, flip_prob: float = 0.5,
                       intensity_jitter: float = 0.0) -> Callable[..., torch.Tensor]:
    """`transform(clip, rng=None) -> float (3, T, S, S)`, normalised by the recipe's mean / std.

    Train: short side scaled to a random size in `scale_range` (or kept at `size` when the recipe has none),
    a random `size` crop, a horizontal flip with `flip_prob` (0 when the caller flips, e.g. with the pose
    stream), optional brightness / offset jitter (x * U(1 - j, 1 + j) + U(-j, j), miga's RgbClips uses 0.2).
    Test: short side `test_size`, centre crop `test_size`. torchvision.transforms.v2.functional kernels."""
    import torchvision.transforms.v2.functional as TF

    mean, std = list(recipe.mean), list(recipe.std)

    def transform(clip: np.ndarray | torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        video = _as_video(clip)
        if train:
            rng = rng or np.random.default_rng()
            low, high = recipe.scale_range or (recipe.size, recipe.size)
            video = _resize_short(TF, video, max(recipe.size, int(rng.integers(low, high + 1))))
            height, width = video.shape[-2:]
            top, left = int(rng.integers(0, height - recipe.size + 1)), int(rng.integers(0, width - recipe.size + 1))
            video = TF.crop(video, top, left, recipe.size, recipe.size)
            if flip_prob and rng.random() < flip_prob:
                video = TF.horizontal_flip(video)
        else:
            video = TF.center_crop(_resize_short(TF, video, recipe.eval_size), [recipe.eval_size, recipe.eval_size])
        video = video.float().div_(255) if video.dtype == torch.uint8 else video.float()
        video = TF.normalize(video, mean, std)
        if train and intensity_jitter:
            video = video * float(rng.uniform(1 - intensity_jitter, 1 + intensity_jitter)) + float(rng.uniform(-intensity_jitter, intensity_jitter))
        return video.permute(1, 0, 2, 3).contiguous()

    return transform


def _resize_short(TF, video: torch.Tensor, side: int) -> torch.Tensor:
    return video if min(video.shape[-2:]) == side else TF.resize(video, [side], antialias=True)
