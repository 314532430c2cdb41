"""rgb: decode a few frames of every Track 1 clip and cache person-centred crops (a memory-mapped uint8 cache)."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import typer

from miga.contracts import validate_manifest
from miga.io import KeypointStore, read_parquet
from miga.videowork.ray_executor import executor_of
from miga.track1.rgb import build_crop_cache, plan_crops
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(params: Path = PARAMS_OPTION) -> None:
    """Crop `rgb.frames` frames per clip (every `rgb.sampling_rate`-th of the centred window; 0 = spread over the
    clip) around the pose box, resized to `rgb.size`; one shard per video (`rgb.workers` processes, or Ray)."""
    config = load_params(params)
    options = config["track1"]["rgb"]
    manifest_path = interim("imigue") / "manifest.parquet"
    manifest = validate_manifest(read_parquet(manifest_path), str(manifest_path))
    store = KeypointStore(interim("imigue") / "keypoints.parquet")
    with_video = manifest.filter(pl.col("video").is_not_null())
    if with_video.height < manifest.height:
        warnings.warn(f"{manifest_path}: {manifest.height - with_video.height} of {manifest.height} clips have no video: "
                      "no RGB crops for them (model.fusion none does not need them)", stacklevel=1)
    plan = plan_crops(with_video, store, frames=options["frames"], padding=options["padding"],
                      sampling_rate=options["sampling_rate"], root=Path(dataset_entry(config, "imigue")["root"]))
    out = interim("imigue") / "rgb_crops"
    executor = executor_of({"executor": options["executor"], "ray": config["pose"]["ray"]})
    count = build_crop_cache(plan, out, size=options["size"], shard_dir=Path("data/cache/rgb/imigue"),
                             workers=options["workers"], executor=executor)
    typer.echo(f"rgb: {count} clips of {len(plan)} videos x {options['frames']} frames at {options['size']}px -> {out}")


if __name__ == "__main__":
    app()
