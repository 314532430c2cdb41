"""synth: write the embedded synthetic iMiGUE + SMG datasets in their official layouts (params: synth)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.synth.project import write_releases
from stages.common import PARAMS_OPTION, clean_errors, load_params

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(params: Path = PARAMS_OPTION) -> None:
    """Generate both datasets from the `synth` section; each root is replaced only once it is complete."""
    synth = load_params(params)["synth"]
    clips, instances = write_releases(synth)
    typer.echo(f"synth: iMiGUE clips {clips} -> {synth['imigue_root']}; SMG gestures {instances} -> {synth['smg_root']}")


if __name__ == "__main__":
    app()
