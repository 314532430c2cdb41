#!/usr/bin/env bash
# Set up the environment and run the whole pipeline (`dvc repro`) on the configured data
# (the embedded synthetic default unless params.yaml says otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
dvc repro "$@"
echo
dvc metrics show metrics/track1.json metrics/track2.json metrics/emotion.json
