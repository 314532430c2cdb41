"""ingest: an official dataset layout -> manifest.parquet + segments.parquet (DESIGN.md section 2)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.contracts import SEGMENTS_SCHEMA, empty
from miga.datasets import imigue, smg
from miga.io import write_parquet
from stages.common import PARAMS_OPTION, clean_errors, interim, load_params, section

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(
    dataset: str = typer.Option(..., help="imigue or smg"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Read the dataset root named in params.yaml (datasets.<name>.root) and write its manifest and segments."""
    config = load_params(params)
    root = Path(section(config, "datasets")[dataset]["root"])
    options = section(config, "ingest")
    if dataset == "imigue":
        manifest = imigue.scan(root, default_fps=float(options.get("imigue_default_fps", 25)))
        segments = empty(SEGMENTS_SCHEMA)
    elif dataset == "smg":
        manifest, segments = smg.scan(root, options["smg_splits"])
    else:
        raise typer.BadParameter(f"unknown dataset {dataset!r}")
    out = interim(dataset)
    write_parquet(manifest, out / "manifest.parquet")
    write_parquet(segments, out / "segments.parquet")
    counts = manifest.group_by("split").len().sort("split").rows()
    typer.echo(f"ingest {dataset}: {manifest.height} samples {dict(counts)}, {segments.height} segments -> {out}")


if __name__ == "__main__":
    app()
