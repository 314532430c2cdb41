#!/usr/bin/env bash
# Set up (or reuse) the Python environment for this checkout.
#
# The heavy packages (torch, a 5.6 GB CUDA build) live in ONE shared environment per
# requirements.lock, under ${MIGA_ENV_ROOT:-~/.cache/miga/envs}/<hash of the lock + python>,
# so every clone on a machine reuses it. Each clone gets a thin ./.venv that sees the shared
# packages through a .pth file and holds only the editable install of this project.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
ENV_ROOT=${MIGA_ENV_ROOT:-$HOME/.cache/miga/envs}
key=$( (cat requirements.lock; "$PYTHON" -c 'import sys; print(sys.version)') | sha256sum | cut -c1-16)
shared="$ENV_ROOT/$key"
mkdir -p "$ENV_ROOT"

(
  flock 9
  if [ ! -f "$shared/.complete" ]; then
    echo "miga: building the shared environment $shared (once per lock file; a few minutes)" >&2
    rm -rf "$shared"
    "$PYTHON" -m venv "$shared"
    "$shared/bin/python" -m pip install --quiet --no-input -r requirements.lock
    touch "$shared/.complete"
  fi
) 9>"$ENV_ROOT/.lock-$key"

site_of() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.shared 2>/dev/null)" != "$shared" ]; then
  rm -rf .venv
  "$PYTHON" -m venv --without-pip .venv
  site_of "$shared/bin/python" > "$(site_of .venv/bin/python)/_miga_shared_env.pth"
  echo "$shared" > .venv/.shared
  for tool in dvc pytest pip; do
    printf '#!/bin/sh\nexec "$(dirname "$0")/python" -m %s "$@"\n' "$tool" > ".venv/bin/$tool"
    chmod +x ".venv/bin/$tool"
  done
fi
.venv/bin/python -m pip install --quiet --no-input --no-deps --no-build-isolation -e . >/dev/null
echo "miga: environment ready (.venv -> $shared)" >&2
