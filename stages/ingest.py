"""ingest: a dataset release, in any of its known layouts -> manifest.parquet + segments.parquet (docs/design.md section 2)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.datasets import format_of, needs_video, reader
from miga.io import write_parquet
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(
    dataset: str = typer.Option(..., help="A dataset named under `datasets` in params.yaml (imigue, smg, ...)."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Read the dataset's root (datasets.<name>.root) with its format's reader; write its manifest and segments."""
    config = load_params(params)
    entry = dataset_entry(config, dataset)
    manifest, segments = reader(format_of(dataset, entry)).scan_release(
        Path(entry["root"]), config["ingest"], entry, require_video=needs_video(entry, config["pose"]))
    out = interim(dataset)
    write_parquet(manifest, out / "manifest.parquet")
    write_parquet(segments, out / "segments.parquet")
    counts = manifest.group_by("split").len().sort("split").rows()
    videos = manifest["video"].drop_nulls().n_unique()
    typer.echo(f"ingest {dataset}: {manifest.height} samples {dict(counts)}, {videos} videos, {segments.height} segments -> {out}")


if __name__ == "__main__":
    app()
