"""rgb: decode a few frames of every Track 1 clip and cache person-centred crops (uint8 .npz)."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import typer

from miga.contracts import validate_manifest
from miga.io import KeypointStore, read_parquet
from miga.track1.rgb import extract_crops, save_crops
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(params: Path = PARAMS_OPTION) -> None:
    """Crop `rgb.frames` frames per clip (every `rgb.sampling_rate`-th of the centred window; 0 = spread over the
    clip) around the pose box, resized to `rgb.size`."""
    config = load_params(params)
    options = config["track1"]["rgb"]
    manifest_path = interim("imigue") / "manifest.parquet"
    manifest = validate_manifest(read_parquet(manifest_path), str(manifest_path))
    store = KeypointStore(interim("imigue") / "keypoints.parquet")
    with_video = manifest.filter(pl.col("video").is_not_null())
    if with_video.height < manifest.height:
        warnings.warn(f"{manifest_path}: {manifest.height - with_video.height} of {manifest.height} clips have no video: "
                      "no RGB crops for them (model.fusion none does not need them)", stacklevel=1)
    manifest = with_video
    keypoints = {sample_id: store[sample_id] for sample_id in manifest["sample_id"]}
    crops = extract_crops(manifest, keypoints, frames=int(options["frames"]), size=int(options["size"]), padding=float(options["padding"]),
                          root=Path(dataset_entry(config, "imigue")["root"]), sampling_rate=int(options["sampling_rate"]))
    out = interim("imigue") / "rgb_crops.npz"
    save_crops(crops, out)
    typer.echo(f"rgb: {len(crops)} clips x {options['frames']} frames at {options['size']}px -> {out}")


if __name__ == "__main__":
    app()
