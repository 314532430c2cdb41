"""pose: manifest -> keypoints.parquet with the backend named in params.yaml (pose.backend)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.io import read_parquet, write_keypoints
from miga.contracts import validate_manifest
from miga.pose import get_backend, mirrored
from miga.datasets import format_of
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params, section

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(
    dataset: str = typer.Option(..., help="A dataset named under `datasets` in params.yaml."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Extract (or read) the keypoints of every sample of the dataset's manifest."""
    config = load_params(params)
    options = section(config, "pose")
    backend = get_backend(options["backend"])
    entry = dataset_entry(config, dataset)
    manifest_path = interim(dataset) / "manifest.parquet"
    manifest = validate_manifest(read_parquet(manifest_path), str(manifest_path))
    backend_options = dict(options.get(options["backend"]) or {})
    if options["backend"] != "provided":
        backend_options.setdefault("shard_dir", str(Path("data/cache/pose") / dataset))  # finished videos survive a kill
    result = backend(format_of(dataset, entry), Path(entry["root"]), manifest, **backend_options)
    if entry.get("mirror", False):
        result = mirrored(result)
    out = interim(dataset) / "keypoints.parquet"
    write_keypoints(result.keypoints, result.layout, out)
    frames = sum(array.shape[1] for _, array in result.keypoints.values())
    typer.echo(f"pose {dataset}: {len(result.keypoints)} samples, {frames} frames, layout {result.layout} -> {out}")


if __name__ == "__main__":
    app()
