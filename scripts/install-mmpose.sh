#!/usr/bin/env bash
# Install the optional MMPose extra (pose.backend: mmpose) into this checkout's ./.venv.
#
# What is installed (everything with --no-deps, into ./.venv only):
# - mmcv 2.1.0 from its sdist WITHOUT its compiled ops (default, MMCV_WITH_OPS=0): only the
#   pure-Python part, nothing is compiled (seconds). It installs as the distribution "mmcv-lite"
#   (imported as mmcv, mmcv.__version__ 2.1.0), with no mmcv.ops / mmcv._ext. mmpose 1.3.2 and
#   mmdet 3.3.0 want 2.0.0rc4 <= mmcv < 2.2.0, hence 2.1.0; there is no mmcv wheel for torch 2.14
#   on PyPI. An mmcv with ops (distribution "mmcv") from an earlier run is uninstalled first.
# - mmdet 3.3.0: mmpose.models imports mmdet.utils (rtmo_head.py:9), which needs no ops.
# - mmpose 1.3.2 and mmengine 0.10.7, and what they really import: addict, yapf, json-tricks, munkres,
#   shapely, terminaltables, pycocotools, xtcocotools 1.14.3 (compiled here against NumPy 2: its
#   wheels are built against NumPy 1; cython for that build), and setuptools 80.9 in front of the
#   shared environment's (mmengine imports pkg_resources, which setuptools >= 81 no longer ships).
#   --no-deps because their metadata asks for opencv-python, and the environment keeps exactly one
#   OpenCV (opencv-contrib-python, which mediapipe brings).
#
# What is patched, and why: ./.venv's site-packages/mmpose/models/heads/__init__.py, one import.
#   mmpose 1.3.2 imports its EDPose head unconditionally (`from .transformer_heads import EDPoseHead`),
#   and EDPose's modules import mmcv.ops.MultiScaleDeformableAttention at module level
#   (transformer_heads/edpose_head.py:14, transformers/deformable_detr_layers.py:7), so without the
#   ops `import mmpose.apis` fails ("No module named 'mmcv._ext'"). The patch wraps that import in
#   try/except ImportError: where mmcv has no ops, EDPoseHead is left out of the module and its
#   __all__ (so `from .heads import *` in mmpose.models still works); where mmcv has them, the error
#   is re-raised (with the ops the import succeeds, so the patch changes nothing). It is marked and
#   applied once (a rerun finds the mark). mmpose's other mmcv.ops imports are already in try blocks.
#
# What is lost without the ops (mmpose 1.3.2's code read and checked with this install,
# BENCHMARKS.md "MMPose install"):
# - EDPose: EDPoseHead is not registered, with the DETR / deformable-DETR layers of
#   mmpose.models.heads.transformer_heads that only it uses.
# - DEKR and PoseWarper: building DEKRHead (its AdaptiveActivationBlock) or PoseWarperNeck raises
#   "Please install the full version of mmcv to use `DeformConv2d`".
# - mmcv.ops itself (RoIAlign, NMS, deformable convolutions, ...), hence mmdet's models: mmdet.models
#   and mmdet.apis do not import (mmdet/models/layers/bbox_nms.py imports mmcv.ops), so mmpose's
#   MMPoseInferencer has no person detector (miga runs none: the whole frame is the person box),
#   and a config module taken from mmdet's scope does not build. mmpose's RTMPose configs take their
#   CSPNeXt backbone from there (`_scope_='mmdet'`, 62 of mmpose 1.3.2's configs, all CSPNeXt);
#   miga's backend builds mmpose's own CSPNeXt instead, the same code (miga.pose.mmpose_backend.own_backbone).
# What miga's backend uses is there: mmpose's top-down path (`init_model` + `inference_topdown`:
# CSPNeXt, RTMCCHead / RTMWHead, SimCC) for RTMPose and RTMW (and RTMO builds and runs, bottom-up,
# unused by miga). The check at the end imports mmpose.apis, and builds mmpose's own RTMPose-t and
# RTMW-m configs (untrained) through miga's backend and runs one frame through each.
#
# MMCV_WITH_OPS=1 bash scripts/install-mmpose.sh compiles the ops instead (for EDPose, DEKR,
# PoseWarper; CPU ops; set also FORCE_CUDA=1 and have nvcc for the CUDA ops), with no build
# isolation so they match the installed torch. mmcv's setup.py compiles with -std=c++14/17, which
# torch 2.14's headers refuse ("#error C++20 or later compatible compiler is required to use ATen"),
# so the sdist's flags are raised to -std=c++20 first. Never completed here: over an hour on 2 cores
# (77 objects; BENCHMARKS.md "MMPose install"). MAX_JOBS sets the compile jobs (default: all cores).
#
# Only ./.venv changes (the thin per-clone venv of scripts/setup.sh); the shared environment
# under ~/.cache/miga/envs stays as requirements.lock says. `bash scripts/setup.sh` after a change
# of requirements.lock makes a new ./.venv: run this script again then.
#
# Checkpoints are not downloaded: put the .pth of your RTMPose/RTMW model on disk and name it in
# params.yaml (pose.mmpose.checkpoint), with its config (pose.mmpose.config).
#
# Tests: .venv/bin/python -m pytest tests/pose/test_pose_mmpose.py tests/pose/test_pose_ray.py  (an untrained
# RTMPose-t through the backend, and through the pose stage on the local and the Ray executor)
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_OPS=${MMCV_WITH_OPS:-0}
case "$WITH_OPS" in 0|1) ;; *) echo "install-mmpose: MMCV_WITH_OPS must be 0 or 1, not '$WITH_OPS'" >&2; exit 2;; esac
bash scripts/setup.sh
PY=.venv/bin/python
PIP=("$PY" -m pip install --no-input --no-deps)
JOBS=${MAX_JOBS:-$(nproc)}

"${PIP[@]}" "setuptools==80.9.0"
"${PIP[@]}" addict==2.4.0 yapf==0.43.0 json-tricks==3.17.3 munkres==3.0.0 shapely terminaltables "pycocotools>=2.0.8" cython
"${PIP[@]}" --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3
"${PIP[@]}" mmengine==0.10.7

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
"$PY" -m pip download --no-input --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0 -d "$src"
tar -xzf "$src/mmcv-2.1.0.tar.gz" -C "$src"
if [ "$WITH_OPS" = 1 ]; then
  echo "install-mmpose: building mmcv 2.1.0 WITH its ops (C++20) against torch $("$PY" -c 'import torch; print(torch.__version__)') with $JOBS jobs (77 objects; an hour or more on 2 cores)" >&2
  sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/mmcv-2.1.0/setup.py"
  grep -q -- '-std=c++20' "$src/mmcv-2.1.0/setup.py"
  other=mmcv-lite
else
  echo "install-mmpose: mmcv 2.1.0 without its compiled ops (MMCV_WITH_OPS=0, nothing compiled; MMCV_WITH_OPS=1 compiles them)" >&2
  other=mmcv
fi
"$PY" -m pip uninstall --no-input -y "$other" 2>/dev/null || true  # the other flavour (same files under mmcv/)
MMCV_WITH_OPS=$WITH_OPS MAX_JOBS=$JOBS "${PIP[@]}" --no-build-isolation "$src/mmcv-2.1.0"
"${PIP[@]}" mmdet==3.3.0 mmpose==1.3.2

# The patch: mmpose's EDPose import made optional (see the top of this file).
"$PY" - <<'PY'
import importlib.util
import sys
from pathlib import Path

spec = importlib.util.find_spec("mmpose")  # found, not imported (the import is what fails unpatched)
init = Path(spec.submodule_search_locations[0]) / "models" / "heads" / "__init__.py"
if not init.resolve().is_relative_to(Path(sys.prefix).resolve()):
    sys.exit(f"install-mmpose: {init} is outside ./.venv ({sys.prefix}): not patched")
MARK = "# miga scripts/install-mmpose.sh:"
ORIGINAL = "from .transformer_heads import EDPoseHead\n"
IMPORT = f"""{MARK} EDPose's modules import mmcv.ops (MultiScaleDeformableAttention), absent
# where mmcv is built without its compiled ops (MMCV_WITH_OPS=0): EDPoseHead is then left out (here and in
# __all__, at the end). Where mmcv has its ops, an ImportError here is a real one and is raised.
try:
    from .transformer_heads import EDPoseHead
except ImportError:
    import importlib.util as _util
    if _util.find_spec('mmcv._ext') is not None:
        raise
    EDPoseHead = None
"""
ALL = f"""
if EDPoseHead is None:  {MARK} see the EDPoseHead import above
    __all__.remove('EDPoseHead')
    del EDPoseHead
"""
text = init.read_text()
if MARK in text:
    print(f"install-mmpose: {init} already patched")
else:
    if text.count(ORIGINAL) != 1 or "__all__ = [" not in text:
        sys.exit(f"install-mmpose: {init} is not mmpose 1.3.2's (no single {ORIGINAL.strip()!r}): not patched")
    init.write_text(text.replace(ORIGINAL, IMPORT) + ALL)
    print(f"install-mmpose: patched {init} (EDPoseHead optional without mmcv's ops)")
PY

# The check: one OpenCV; mmcv's ops as asked; mmpose.apis imports; RTMPose-t and RTMW-m (mmpose's own configs,
# untrained) build through miga's backend and run one frame, on the fixed torch thread count of the backend.
MMCV_WITH_OPS=$WITH_OPS "$PY" - <<'PY'
import importlib.util
import os
from importlib.metadata import distributions
from pathlib import Path

import cv2
import mmcv
import mmdet
import mmengine
import mmpose
import mmpose.apis
import mmpose.models
import numpy as np
from mmpose.registry import MODELS

from miga.pose.mmpose_backend import MmposeSettings, estimate_frame, torch_threads

opencv = sorted(d.metadata["Name"] for d in distributions() if d.metadata["Name"].lower().startswith("opencv"))
assert len(opencv) == 1, f"more than one OpenCV package: {opencv}"
with_ops = os.environ["MMCV_WITH_OPS"] == "1"
assert (importlib.util.find_spec("mmcv._ext") is not None) == with_ops, "mmcv's compiled ops are not what was asked"
assert (MODELS.get("EDPoseHead") is not None) == with_ops, "EDPoseHead should be registered exactly when mmcv has its ops"
assert hasattr(mmpose.models, "EDPoseHead") == with_ops
configs = Path(mmpose.__file__).parent / ".mim" / "configs"
frame = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
with torch_threads():
    for name, points in (("body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py", 17),
                         ("wholebody_2d_keypoint/rtmpose/cocktail14/rtmw-m_8xb1024-270e_cocktail14-256x192.py", 133)):
        model = MmposeSettings(str(configs / name)).build()
        out = estimate_frame(mmpose.apis, model, frame)
        assert out.shape == (points, 3) and np.isfinite(out).all(), (name, out.shape)
        print(f"install-mmpose: {Path(name).stem} (untrained) built, one frame -> {out.shape[0]} points")
ops = "ops built" if with_ops else "no ops: EDPose, DEKR, PoseWarper unavailable"
print(f"install-mmpose: mmpose {mmpose.__version__}, mmcv {mmcv.__version__} ({ops}), mmdet {mmdet.__version__}, "
      f"mmengine {mmengine.__version__}, {opencv[0]} {cv2.__version__}")
PY
