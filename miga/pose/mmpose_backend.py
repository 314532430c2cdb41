"""Pose from raw video with MMPose top-down models (RTMPose / RTMW), an optional extra for GPUs.

`mmpose_backend(fmt, raw_root, manifest, config=..., checkpoint=..., device=...)` is a pose
backend (see `miga.pose`) behind the same interface and shards as the MediaPipe one: the
frames the manifest's clips cover are decoded with PyAV and each goes through the model with
one person box per frame, the whole frame (interviews: one seated person filling the picture;
no person detector is run). Output layouts:

- a 17-point COCO model (RTMPose body): `coco17` as is; `openpose25_hands10` / `imigue22` with
  Neck and MidHip rebuilt from the shoulders and hips, no feet, no fingertips (score 0).
- a 133-point COCO-WholeBody model (RTMW, RTMPose wholebody): every point of
  `openpose25_hands10` (BODY_25 with the feet, and the 10 fingertips).

A CSPNeXt backbone that a config takes from mmdet (`_scope_='mmdet'`, as mmpose's RTMPose
configs do) is built from mmpose's own copy of it (`own_backbone`), so those configs build
without mmcv's compiled ops.

MMPose is never imported by `import miga`: it is imported when the backend runs, and a clear
ImportError names the install script when it is absent (or installed but failing to import, with
the import's own error). `bash scripts/install-mmpose.sh` installs it with mmcv's pure-Python part
(no compiled ops, which this backend does not use; BENCHMARKS.md "MMPose install").

The model runs with torch on `TORCH_THREADS` (1) CPU thread in every worker, whichever executor
runs it (the local process or pool, or a Ray actor; the previous count is restored after): the
thread count changes the floating-point sums of the CPU kernels, so a fixed one keeps the
keypoints the same bytes on every executor. Parallelism comes from `workers` (processes or
actors), one video each.

Checkpoints are read by miga with `torch.load(..., weights_only=True)` (tensors and plain
containers only) and loaded into the model built from the config; mmengine's own loader,
which unpickles arbitrary objects, is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from miga.errors import ConfigError, MissingExtraError
from miga.io import file_digest
from miga.layouts import COCO17, OPENPOSE25_HANDS10, convert, get_layout
from miga.pose.extract import extract_manifest, points_to_openpose
from miga.video import iter_frames

INSTALL = "bash scripts/install-mmpose.sh"
TORCH_THREADS = 1  # torch CPU threads per worker: the same in every executor, so the same keypoints (module doc)
LAYOUTS = ("openpose25_hands10", "coco17", "imigue22")
RAW_FORMAT = 1

# COCO-WholeBody (133 points): 0-16 COCO body, 17-22 feet, 23-90 face, 91-111 left hand, 112-132 right hand.
_WB_LEFT_HAND, _WB_RIGHT_HAND = 91, 112
_TIPS = (4, 8, 12, 16, 20)
_WHOLEBODY_TO_OPENPOSE: dict[str, int | tuple[int, int]] = {
    **{name: COCO17.index(name) for name in COCO17.joints},
    "Neck": (COCO17.index("LShoulder"), COCO17.index("RShoulder")),
    "MidHip": (COCO17.index("LHip"), COCO17.index("RHip")),
    "LBigToe": 17, "LSmallToe": 18, "LHeel": 19, "RBigToe": 20, "RSmallToe": 21, "RHeel": 22,
    **{f"L{f}Tip": _WB_LEFT_HAND + t for f, t in zip(("Thumb", "Index", "Middle", "Ring", "Pinky"), _TIPS)},
    **{f"R{f}Tip": _WB_RIGHT_HAND + t for f, t in zip(("Thumb", "Index", "Middle", "Ring", "Pinky"), _TIPS)},
}
assert set(_WHOLEBODY_TO_OPENPOSE) == set(OPENPOSE25_HANDS10.joints)


def mmpose_installed() -> bool:
    """Whether an `mmpose` package is there to import (found, not imported)."""
    import importlib.util

    try:
        return importlib.util.find_spec("mmpose") is not None
    except (ImportError, ValueError):
        return False


_broken_import: str | None = None  # why an installed mmpose failed to import in this process


def import_mmpose():
    """`mmpose.apis`, or an ImportError that names the install script (and the import's error, if mmpose is there).

    An installed mmpose that failed to import once fails every later call in the process with the
    same error: a second `import` after a failed one can find the half-imported modules and pass.
    """
    global _broken_import
    if _broken_import is not None:
        raise MissingExtraError(_broken_import)
    try:
        import mmpose.apis  # noqa: F401
    except ImportError as err:
        if mmpose_installed():
            _broken_import = (
                f"mmpose is installed but `import mmpose.apis` fails: {type(err).__name__}: {err} "
                f"(rerun {INSTALL}: it installs mmcv, mmdet and mmengine with it and makes mmpose's EDPose "
                f"import optional when mmcv has no compiled ops; BENCHMARKS.md 'MMPose install')"
            )
            raise MissingExtraError(_broken_import) from err
        raise MissingExtraError(
            f"the mmpose pose backend needs mmpose, mmengine, mmdet and mmcv: {INSTALL} "
            f"(README, 'Pose from video'; BENCHMARKS.md 'MMPose install') ({err})"
        ) from err
    import mmpose.apis

    return mmpose.apis


@contextlib.contextmanager
def torch_threads(threads: int = TORCH_THREADS):
    """torch's CPU intra-op threads set to `threads` for the duration, then put back as they were."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def to_layout(raw: np.ndarray, layout: str = "openpose25_hands10", *, mirror: bool = False) -> np.ndarray:
    """Raw model points `(..., K, 3)` (K = 17 COCO or 133 COCO-WholeBody) -> `(..., V, 3)` float32 in `layout`."""
    raw = np.asarray(raw, dtype=np.float32)
    if layout not in LAYOUTS:
        raise ConfigError(f"the mmpose backend writes layouts {LAYOUTS}, not {layout!r}")
    points = raw.shape[-2] if raw.ndim >= 2 else None
    if raw.ndim < 2 or raw.shape[-1] != 3 or points not in (17, 133):
        raise ValueError(f"mmpose points must be (..., 17 or 133, 3) (COCO or COCO-WholeBody), got {raw.shape}")
    if points == 17:
        return convert(np.where(raw[..., 2:3] > 0, raw, 0).astype(np.float32), COCO17.name, layout, mirror=mirror)
    return convert(points_to_openpose(raw, _WHOLEBODY_TO_OPENPOSE), OPENPOSE25_HANDS10.name, layout, mirror=mirror)


@dataclass(frozen=True)
class MmposeSettings:
    """What changes the output (the shard key). `config`: a config file path or a config dict."""

    config: str | Mapping = field(default="")
    checkpoint: str | None = None
    device: str = "cpu"

    def __post_init__(self):
        if not self.config:
            raise ConfigError("pose.mmpose.config is required: an MMPose config file (e.g. an RTMPose or RTMW .py config)")
        if isinstance(self.config, (str, os.PathLike)) and not Path(self.config).is_file():
            raise FileNotFoundError(f"{self.config}: MMPose config file not found")
        if self.checkpoint and not Path(self.checkpoint).is_file():
            raise FileNotFoundError(f"{self.checkpoint}: MMPose checkpoint not found (a local path; nothing is downloaded)")

    def key(self) -> str:
        config = (file_digest(self.config) if isinstance(self.config, (str, os.PathLike))
                  else hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest())
        return json.dumps({"extractor": "mmpose", "raw_format": RAW_FORMAT, "config": config,
                           "checkpoint": file_digest(self.checkpoint) if self.checkpoint else None}, sort_keys=True)

    def build(self):
        """The model, on `device`, in eval mode, with the checkpoint's weights (or untrained without one)."""
        apis = import_mmpose()
        from mmengine.config import Config

        config = Config.fromfile(str(self.config)) if isinstance(self.config, (str, os.PathLike)) else Config(dict(self.config))
        model_config = config.get("model")
        if not isinstance(model_config, Mapping) or "type" not in model_config or "backbone" not in model_config:
            raise ConfigError(f"pose.mmpose.config {self.config if isinstance(self.config, (str, os.PathLike)) else '(a dict)'} "
                              f"is not an MMPose model config: it needs model = dict(type=..., backbone=..., head=...)")
        own_backbone(config)
        model = apis.init_model(config, checkpoint=None, device=self.device)
        if self.checkpoint:
            state = load_checkpoint(self.checkpoint)
            weights = state.get("state_dict", state) if isinstance(state, dict) else state
            model.load_state_dict(weights, strict=True)
            meta = state.get("meta", {}) if isinstance(state, dict) else {}
            if isinstance(meta, dict) and meta.get("dataset_meta"):
                model.dataset_meta = meta["dataset_meta"]
            model.to(self.device)
        return model


def own_backbone(config) -> None:
    """A CSPNeXt backbone taken from mmdet (`_scope_='mmdet'`, as in mmpose's own RTMPose configs) -> mmpose's CSPNeXt.

    mmdet's models import mmcv's compiled ops (NMS), which the default install lacks
    (scripts/install-mmpose.sh); mmpose 1.3.2 registers the same CSPNeXt (mmdet 3.3.0's code, with
    mmpose's registry: the same modules and parameter names, so the same checkpoints load). Changed
    in place; every other part of the config is kept as it is.
    """
    backbone = (config.get("model") or {}).get("backbone")
    if isinstance(backbone, Mapping) and backbone.get("type") == "CSPNeXt" and backbone.get("_scope_") == "mmdet":
        backbone.pop("_scope_")


def _numpy_globals() -> list:
    """What numpy arrays and scalars in a checkpoint's metadata need to unpickle (MMPose keeps e.g. OKS sigmas there)."""
    core = getattr(np, "_core", None) or np.core
    dtypes = [getattr(np.dtypes, name) for name in dir(np.dtypes) if name.endswith("DType")]
    return [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype, *dtypes]


def load_checkpoint(path: str | os.PathLike):
    """A checkpoint read with `weights_only=True`: tensors, plain containers and numpy arrays/scalars, nothing else."""
    import pickle

    import torch

    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: the checkpoint holds objects beyond tensors, containers and numpy arrays, so it is not loaded "
            f"(weights_only=True). Keep only its weights, from a trusted source: "
            f"torch.save({{'state_dict': torch.load(path, weights_only=False)['state_dict']}}, new_path) ({err})"
        ) from None


class MmposeExtractor:
    """Shard extractor (picklable): video + frame indices -> raw points `(F, K, 3)` and metadata."""

    def __init__(self, settings: MmposeSettings):
        self.settings = settings

    def __call__(self, video: Path, frames: np.ndarray, progress: Callable[[int], None]) -> tuple[dict, dict]:
        """One video (the local executor: this process, or a worker process per video); `TORCH_THREADS` threads."""
        with torch_threads():
            return self._extract(import_mmpose(), self.settings.build(), video, frames, progress)

    @contextlib.contextmanager
    def loaded(self):
        """This extractor with the model built once for many videos (what a Ray actor holds; top-down: no state across
        frames), on `TORCH_THREADS` threads while it is held."""
        with torch_threads():
            apis, model = import_mmpose(), self.settings.build()
            yield lambda video, frames, progress: self._extract(apis, model, video, frames, progress)

    def _extract(self, apis, model, video: Path, frames: np.ndarray, progress: Callable[[int], None]) -> tuple[dict, dict]:
        frames = np.asarray(frames, dtype=np.int64)
        raw, size, done = None, (0, 0), np.zeros(len(frames), bool)
        for position, (_, image) in enumerate(iter_frames(Path(video), frames)):  # the wanted frames, in order
            height, width = image.shape[:2]
            size = (width, height)
            points = estimate_frame(apis, model, image)
            if raw is None:
                raw = np.zeros((len(frames),) + points.shape, np.float32)
            raw[position], done[position] = points, True
            progress(1)
        if raw is None:
            raw = np.zeros((len(frames), 17, 3), np.float32)
        missing = frames[~done]
        if len(missing):
            progress(len(missing))
        meta = {
            "width": size[0], "height": size[1], "frames": int(len(frames)),
            "frames_with_person": int((raw[..., 2] > 0).any(axis=1).sum()),
            "missing_frames": int(len(missing)),
            "first_missing_frame": int(missing[0]) if len(missing) else None,
            "subject": "top-down model on the whole frame as the person box (no detector)",
            "settings": json.loads(self.settings.key()),
        }
        return {"frames": frames, "raw": raw}, meta


def estimate_frame(apis, model, rgb: np.ndarray) -> np.ndarray:
    """One RGB frame -> `(K, 3)` pixel x, y, score of the person in the whole-frame box."""
    height, width = rgb.shape[:2]
    box = np.array([[0, 0, width, height]], np.float32)
    results = apis.inference_topdown(model, np.ascontiguousarray(rgb[..., ::-1]), box, bbox_format="xyxy")  # BGR, as mmcv reads
    instances = results[0].pred_instances
    xy = np.asarray(instances.keypoints, np.float32)[0]
    score = np.asarray(instances.keypoint_scores, np.float32)[0]
    points = np.concatenate([xy, score[:, None]], axis=1)
    outside = (xy[:, 0] < 0) | (xy[:, 0] > width - 1) | (xy[:, 1] < 0) | (xy[:, 1] > height - 1) | ~np.isfinite(xy).all(axis=1)
    points[outside] = 0.0
    return points


def mmpose_backend(
    fmt: str,
    raw_root: Path,
    manifest: pl.DataFrame,
    *,
    config: str | Mapping = "",
    checkpoint: str | None = None,
    device: str = "cpu",
    layout: str = "openpose25_hands10",
    mirror: bool = False,
    workers: int = 1,
    shard_dir: str | os.PathLike | None = None,
    progress: bool = True,
    executor=None,
):
    """Pose backend: an MMPose top-down model on the manifest's videos (see the module doc); `executor` as for mediapipe."""
    get_layout(layout)
    if layout not in LAYOUTS:
        raise ConfigError(f"the mmpose backend writes layouts {LAYOUTS}, not {layout!r}")
    settings = MmposeSettings(config, checkpoint or None, str(device))
    import_mmpose()  # fail before any work if it is missing
    key = settings.key()
    return extract_manifest(
        raw_root, manifest, MmposeExtractor(settings), key=key,
        to_layout=lambda raw: to_layout(raw, layout, mirror=mirror), layout=layout, workers=workers,
        shard_dir=shard_dir, progress=progress, desc="mmpose", what="the mmpose backend",
        source={"backend": "mmpose", "settings": json.loads(key), "mirror": bool(mirror)}, executor=executor,
    )
