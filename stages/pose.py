"""pose: manifest -> keypoints.parquet with the backend named in params.yaml (pose.backend)."""

from __future__ import annotations

from pathlib import Path

import typer

import polars as pl

from miga.io import KeypointStore, read_parquet, write_keypoints
from miga.contracts import validate_manifest
from miga.pose import get_backend, mirrored
from miga.videowork.ray_executor import executor_of
from miga.datasets import format_of, pose_source
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def main(
    dataset: str = typer.Option(..., help="A dataset named under `datasets` in params.yaml."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Extract (or read) the keypoints of every sample of the dataset's manifest."""
    config = load_params(params)
    options = config["pose"]
    entry = dataset_entry(config, dataset)
    name = pose_source(entry, options)
    backend = get_backend(name)
    executor = executor_of(options)  # None: local processes (pose.<backend>.workers); pose.executor: ray -> a RayExecutor
    manifest_path = interim(dataset) / "manifest.parquet"
    manifest = validate_manifest(read_parquet(manifest_path), str(manifest_path))
    if name == "provided":
        result = backend(format_of(dataset, entry), Path(entry["root"]), manifest, entry=entry)
    else:
        backend_options = dict(options[name])
        backend_options.setdefault("shard_dir", str(Path("data/cache/pose") / dataset))  # finished videos survive a kill
        result = backend(format_of(dataset, entry), Path(entry["root"]), manifest, executor=executor, **backend_options)
    if entry["mirror"]:
        result = mirrored(result)
    out = interim(dataset) / "keypoints.parquet"
    write_keypoints(result.keypoints, result.layout, out, source={"backend": name, **result.source})
    frames = sum(array.shape[1] for _, array in result.keypoints.values())
    typer.echo(f"pose {dataset}: {len(result.keypoints)} samples, {frames} frames, layout {result.layout} -> {out}")


@clean_errors
def render(
    out: Path = typer.Argument(..., help="The mp4 to write."),
    dataset: str | None = typer.Option(None, help="Draw a sample's cached keypoints (data/interim/<dataset>/keypoints.parquet)..."),
    sample: str | None = typer.Option(None, help="...of this sample_id, over its frames of the sample's video."),
    video: Path | None = typer.Option(None, exists=True, dir_okay=False, help="Or: run MediaPipe on this video and draw what it finds."),
    params: Path = PARAMS_OPTION,
) -> None:
    """QA: a video with the skeleton drawn over it (cached keypoints of a sample, or MediaPipe on any video)."""
    from miga.pose.render import render_video

    if video is not None:
        from miga.pose.mediapipe_backend import extract_video

        frames, keypoints, _ = extract_video(video)
        written = render_video(video, keypoints, "openpose25_hands10", out, start_frame=int(frames[0]) if len(frames) else 0)
    elif dataset and sample:
        entry = dataset_entry(load_params(params), dataset)
        manifest_path = interim(dataset) / "manifest.parquet"
        rows = validate_manifest(read_parquet(manifest_path), str(manifest_path)).filter(pl.col("sample_id") == sample)
        if rows.is_empty():
            raise typer.BadParameter(f"{manifest_path}: no sample {sample!r}")
        if rows["video"][0] is None:
            raise typer.BadParameter(f"{manifest_path}: sample {sample!r} has no video")
        store = KeypointStore(interim(dataset) / "keypoints.parquet")
        first = store.start_frame(sample) - int(rows["video_start"][0])  # frame of the video file
        written = render_video(Path(entry["root"]) / rows["video"][0], store[sample], store.layout, out, start_frame=first)
    else:
        raise typer.BadParameter("give --dataset and --sample (cached keypoints) or --video (MediaPipe)")
    typer.echo(f"render: {written}")


if __name__ == "__main__":
    app()
