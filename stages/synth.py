"""synth: write the embedded synthetic iMiGUE + SMG datasets in their official layouts (params: synth)."""

from __future__ import annotations

import contextlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import typer

from miga.contracts import ContractError
from miga.synth import generate_imigue, generate_smg, get_preset
from miga.synth.files import replacing_directory
from stages.common import PARAMS_OPTION, clean_errors, load_params, section

app = typer.Typer(add_completion=False, help=__doc__)


def _mapper(workers: int):
    """`map`, or a process pool's map when more than one worker is asked for (the output is the same)."""
    if workers <= 1:
        return contextlib.nullcontext(map)
    return _pool_map(workers)


@contextlib.contextmanager
def _pool_map(workers: int):
    with ProcessPoolExecutor(workers) as pool:
        yield pool.map


@app.command()
@clean_errors
def main(params: Path = PARAMS_OPTION) -> None:
    """Generate both datasets from the `synth` section; each root is replaced only once it is complete."""
    config = section(load_params(params), "synth", params)
    try:
        preset = get_preset(str(config.get("preset", "default")))
    except ValueError as err:
        raise ContractError(f"{params}: synth.preset: {err}") from None
    seed = int(config.get("seed", 0))
    imigue_root = Path(config.get("imigue_root", "data/raw/imigue"))
    smg_root = Path(config.get("smg_root", "data/raw/smg"))
    with _mapper(int(config.get("workers", 1))) as map_fn:
        with replacing_directory(imigue_root) as tmp:
            imigue = generate_imigue(tmp, preset.imigue, seed, map_fn=map_fn, edition=str(config.get("imigue_edition", "2023")))["splits"]
        with replacing_directory(smg_root) as tmp:
            smg = generate_smg(tmp, preset.smg, seed, map_fn=map_fn, edition=str(config.get("smg_edition", "organisers")))["splits"]
    clips = {split: part["clips"] for split, part in imigue.items()}
    instances = {split: part["instances"] for split, part in smg.items()}
    typer.echo(f"synth: iMiGUE clips {clips} -> {imigue_root}; SMG gestures {instances} -> {smg_root}")


if __name__ == "__main__":
    app()
