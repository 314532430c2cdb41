"""Write both synthetic releases of a project (params section `synth`), each root replaced only once it is complete."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from miga.io import atomic_directory
from miga.synth.imigue import generate_imigue
from miga.synth.presets import get_preset
from miga.synth.smg import generate_smg


def _mapper(workers: int):
    """`map`, or a process pool's map when more than one worker is asked for (the output is the same)."""
    if workers <= 1:
        return contextlib.nullcontext(map)
    return _pool_map(workers)


@contextlib.contextmanager
def _pool_map(workers: int):
    with ProcessPoolExecutor(workers) as pool:
        yield pool.map


def write_releases(synth: Mapping, project: Path = Path(".")) -> tuple[dict, dict]:
    """Generate the iMiGUE and SMG releases the `synth` params describe; returns ({split: clips}, {split: gestures})."""
    preset = get_preset(synth["preset"])
    with _mapper(synth["workers"]) as map_fn:
        with atomic_directory(Path(project) / synth["imigue_root"]) as tmp:
            imigue = generate_imigue(tmp, preset.imigue, synth["seed"], map_fn=map_fn, edition=synth["imigue_edition"])["splits"]
        with atomic_directory(Path(project) / synth["smg_root"]) as tmp:
            smg = generate_smg(tmp, preset.smg, synth["seed"], map_fn=map_fn, edition=synth["smg_edition"])["splits"]
    return {split: part["clips"] for split, part in imigue.items()}, {split: part["instances"] for split, part in smg.items()}
