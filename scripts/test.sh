#!/usr/bin/env bash
# Set up the environment, install the optional MMPose extra (so its tests run instead of skipping;
# about a minute the first time, ~20 s when it is already there; MIGA_TEST_MMPOSE=0 leaves it out),
# and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "${MIGA_TEST_MMPOSE:-1}" != "0" ]; then
    log=".venv/install-mmpose.log"
    if ! bash scripts/install-mmpose.sh > "$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "test.sh: scripts/install-mmpose.sh failed (log: $log); MIGA_TEST_MMPOSE=0 runs the tests without the extra" >&2
        exit 1
    fi
    tail -n 1 "$log"
fi
export PATH="$PWD/.venv/bin:$PATH"
python -m pytest "$@"
