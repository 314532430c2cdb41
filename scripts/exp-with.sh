#!/usr/bin/env bash
# Run `dvc exp run` with every leaf of a YAML overrides file as -S key=value.
#   ./scripts/exp-with.sh configs/imigue_full.yaml [more dvc exp run arguments]
set -euo pipefail
overrides=${1:?usage: $0 OVERRIDES.yaml [dvc exp run args]}; shift
here=$(cd "$(dirname "$0")/.." && pwd)
mapfile -t sets < <("$here/.venv/bin/python" - "$overrides" <<'PY'
import json, sys, yaml
def leaves(node, prefix=""):
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from leaves(value, name + ".")
        else:
            yield f"{name}={json.dumps(value)}"
for item in leaves(yaml.safe_load(open(sys.argv[1])) or {}):
    print(item)
PY
)
args=()
for s in "${sets[@]}"; do args+=(-S "$s"); done
exec "$here/.venv/bin/dvc" exp run "${args[@]}" "$@"
