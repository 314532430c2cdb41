"""Where the benchmarks find the real recordings (never copied into the repository): the folder `MIGA_REALDATA`
names, else `../shared/realdata` beside the checkout (a clone elsewhere sets the variable)."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REALDATA = Path(os.environ.get("MIGA_REALDATA", REPO.parent / "shared" / "realdata"))


def require(path: Path) -> Path:
    """`path` if it exists; otherwise stop with one line naming it and the variable that moves it."""
    if not path.exists():
        raise SystemExit(f"{path}: real recordings not found (set MIGA_REALDATA to the realdata folder; "
                         f"default ../shared/realdata beside the checkout)")
    return path
