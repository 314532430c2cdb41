#!/usr/bin/env bash
# Install the optional MMPose extra (pose.backend: mmpose) into this checkout's ./.venv.
#
# What and why:
# - mmcv (with its compiled ops) is built from source against the torch already installed, with no
#   build isolation, so its C++/CUDA extensions match that torch (CPU ops; set FORCE_CUDA=1 and have nvcc
#   for the CUDA ops). mmpose 1.3.2 and mmdet 3.3.0 want mmcv < 2.2, hence 2.1.0. Its setup.py compiles
#   with -std=c++14/17, which torch 2.14's headers refuse ("#error C++20 or later compatible compiler is
#   required to use ATen"): the sdist is unpacked and its flags raised to -std=c++20 before the build.
#   Last run (BENCHMARKS.md "MMPose install"): unpatched it fails after 1.5 min; patched, the first 8 of
#   77 objects compiled without errors in 7 min on 2 busy cores, then it was stopped (> 1 h at that rate).
# - Everything goes in with --no-deps: their metadata asks for opencv-python, and the environment
#   keeps exactly one OpenCV (opencv-contrib-python, which mediapipe brings). The dependencies they
#   really import are listed below.
# - mmengine imports pkg_resources, which setuptools >= 81 no longer ships: setuptools 80.9 goes into
#   ./.venv, in front of the shared environment's.
# - xtcocotools's wheels are built against NumPy 1: it is compiled here against NumPy 2.
# - Only ./.venv changes (the thin per-clone venv of scripts/setup.sh); the shared environment
#   under ~/.cache/miga/envs stays as requirements.lock says. `bash scripts/setup.sh` after a change
#   of requirements.lock makes a new ./.venv: run this script again then.
#
# Checkpoints are not downloaded: put the .pth of your RTMPose/RTMW model on disk and name it in
# params.yaml (pose.mmpose.checkpoint), with its config (pose.mmpose.config).
#
# Check: .venv/bin/python -m pytest tests/test_pose_mmpose.py  (builds an untrained RTMPose-t, runs one video)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
PIP=(.venv/bin/python -m pip install --no-input --no-deps)
JOBS=${MAX_JOBS:-$(nproc)}

"${PIP[@]}" "setuptools==80.9.0"
"${PIP[@]}" addict==2.4.0 yapf==0.43.0 json-tricks==3.17.3 munkres==3.0.0 shapely terminaltables "pycocotools>=2.0.8" cython
"${PIP[@]}" --no-build-isolation --no-binary xtcocotools xtcocotools==1.14.3
"${PIP[@]}" mmengine==0.10.7
echo "install-mmpose: building mmcv 2.1.0 (C++20) against torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') with $JOBS jobs (77 objects; an hour or more on 2 cores)" >&2
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
.venv/bin/python -m pip download --no-input --no-deps --no-build-isolation --no-binary :all: mmcv==2.1.0 -d "$src"
tar -xzf "$src/mmcv-2.1.0.tar.gz" -C "$src"
sed -i 's/-std=c++1[47]/-std=c++20/g' "$src/mmcv-2.1.0/setup.py"
grep -q -- '-std=c++20' "$src/mmcv-2.1.0/setup.py"
MMCV_WITH_OPS=1 MAX_JOBS=$JOBS "${PIP[@]}" --no-build-isolation "$src/mmcv-2.1.0"
"${PIP[@]}" mmdet==3.3.0 mmpose==1.3.2

.venv/bin/python - <<'EOF'
import cv2, mmcv, mmcv.ops, mmengine, mmpose
from importlib.metadata import distributions

opencv = sorted(d.metadata["Name"] for d in distributions() if d.metadata["Name"].lower().startswith("opencv"))
assert len(opencv) == 1, f"more than one OpenCV package: {opencv}"
print(f"mmpose {mmpose.__version__}, mmcv {mmcv.__version__} (ops built), mmengine {mmengine.__version__}, {opencv[0]} {cv2.__version__}")
EOF
