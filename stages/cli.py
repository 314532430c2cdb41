"""The `miga` command: every pipeline stage and tool in one place (`miga --help`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from miga.contracts import validate_manifest, validate_segments
from miga.io import read_parquet, write_json
from miga.evaluation.scoring import score_track1, score_track2
from miga.evaluation.submission import check_track1, check_track2
from stages import ingest, online, pose, rgb, synth, track1, track2
from miga.datasets import format_of, reader
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params
from stages.ingest import needs_video

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="miga: micro-gesture analysis for the MiGA challenge. Pipeline stages (normally run by `dvc repro`) "
    "and tools to check and score submissions.",
)
app.command("synth", help="Write the embedded synthetic iMiGUE + SMG datasets in their official layouts.")(synth.main)
app.command("ingest", help="Official dataset layout -> manifest.parquet + segments.parquet.")(ingest.main)
app.command("pose", help="Manifest -> keypoints.parquet with the configured pose backend.")(pose.main)
app.command("render", help="QA: draw a sample's keypoints (or MediaPipe's on any video) over the video.")(pose.render)
app.command("rgb", help="Cache person-centred RGB crops of the Track 1 clips.")(rgb.main)
app.add_typer(track1.app, name="track1", help="Track 1 (clip classification): train, predict, evaluate.")
app.add_typer(track2.app, name="track2", help="Track 2 (online recognition): train, predict, evaluate.")
app.command("online", help="Streaming Track 2 over one skeleton CSV or video: gestures as JSON lines when decided.")(online.main)

convert_app = typer.Typer(no_args_is_help=True, help="Convert other datasets to a format the pipeline reads.")
app.add_typer(convert_app, name="convert")


@convert_app.command("utkinect")
@clean_errors
def convert_utkinect(
    source: Path = typer.Argument(..., help="Folder with joints_sXX_eYY.txt and the action label file."),
    out: Path = typer.Argument(..., help="Output folder (stream format; use it as a dataset with format: stream)."),
    label_file: str = typer.Option("actionLabel_modified.txt", help="actionLabel.txt or the corrected actionLabel_modified.txt."),
) -> None:
    """UTKinect-Action3D continuous sequences -> the generic stream format (subjects 7-8 val, 9-10 test)."""
    from miga.datasets import utkinect

    utkinect.convert(source, out, label_file=label_file)
    typer.echo(f"wrote {out}")


@convert_app.command("biisc")
@clean_errors
def convert_biisc(
    source: Path = typer.Argument(..., help="Folder of BIISC clips (Sxxx_G_ACTN_STD_VIEW.avi)."),
    out: Path = typer.Argument(..., help="Output folder: an iMiGUE-layout release (videos and labels, no skeletons)."),
    fold: int = typer.Option(0, help="Which group of people is the test split (the next group is val)."),
    folds: int = typer.Option(5, help="Person-disjoint groups."),
) -> None:
    """BIISC clips -> an iMiGUE release for Track 1 with a video pose backend (pose.backend: mediapipe)."""
    from miga.datasets import biisc

    counts = biisc.convert(source, out, fold=fold, folds=folds)
    typer.echo(f"wrote {out}: " + ", ".join(f"{n} {split}" for split, n in counts.items()) + " clips; use it with "
               f"datasets.imigue.root: {out}, datasets.imigue.test_labels: real, test_truth: null, pose.backend: mediapipe")


data_app = typer.Typer(no_args_is_help=True, help="Dataset releases: what a root holds, before a long run.")
app.add_typer(data_app, name="data")


@data_app.command("check")
@clean_errors
def data_check(
    dataset: str = typer.Argument(..., help="A dataset named under `datasets` in params.yaml (imigue, smg)."),
    root: Path = typer.Option(None, help="Check this folder instead of datasets.<name>.root."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Edition and layout found; per split videos, clips, frames, labels, missing parts, classes. Exit 1 on what would break a stage."""
    from miga.datasets.check import check_release

    config = load_params(params)
    entry = dict(dataset_entry(config, dataset))
    if root is not None:
        entry.update(root=str(root), skeleton_root=None, video_root=None)
    report = check_release(format_of(dataset, entry), Path(entry["root"]), entry, config["ingest"],
                           require_video=needs_video(dataset, config))
    typer.echo("\n".join(report.lines()))
    if report.fatal:
        raise typer.Exit(1)


submission_app = typer.Typer(no_args_is_help=True, help="Submission files: check them against a manifest.")
app.add_typer(submission_app, name="submission")

TRACK = typer.Argument(..., help="1 or 2")
CLASS_BASE = typer.Option(None, help="Track 2 class numbering in the file (0 or 1; default submission.track2_class_base).")


def _track_dataset(track: int, config: dict) -> str:
    if track not in (1, 2):
        raise typer.BadParameter("track must be 1 or 2")
    return "imigue" if track == 1 else config["track2"]["dataset"]


def _test_manifest(dataset: str, manifest: Path | None) -> pl.DataFrame:
    path = manifest or interim(dataset) / "manifest.parquet"
    frame = validate_manifest(read_parquet(path), str(path))
    return frame.filter(pl.col("split") == "test")


def _num_classes(dataset: str, config: dict) -> int:
    entry = dataset_entry(config, dataset)
    return len(reader(format_of(dataset, entry)).class_names(Path(entry["root"]), entry))


@submission_app.command("check")
@clean_errors
def submission_check(
    track: int = TRACK,
    path: Path = typer.Argument(..., help="The submission CSV."),
    manifest: Path = typer.Option(None, help="Manifest with the test split (default: data/interim/<dataset>/manifest.parquet)."),
    class_base: int = CLASS_BASE,
    params: Path = PARAMS_OPTION,
) -> None:
    """Validate a submission CSV: header, every test id once, classes and frames in range. Lists problems row by row."""
    config = load_params(params)
    dataset = _track_dataset(track, config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: submission file not found")
    test, num_classes = _test_manifest(dataset, manifest), _num_classes(dataset, config)
    base = config["submission"]["track2_class_base"] if class_base is None else class_base
    problems = check_track1(path, test, num_classes) if track == 1 else check_track2(path, test, num_classes, base)
    for problem in problems:
        typer.echo(f"{path}: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{path}: valid Track {track} submission")


@app.command("score")
@clean_errors
def score(
    track: int = TRACK,
    path: Path = typer.Argument(..., help="The submission CSV."),
    manifest: Path = typer.Option(None, help="Manifest with ground-truth labels of the test split."),
    segments: Path = typer.Option(None, help="Track 2 ground-truth segments (default: data/interim/<track2.dataset>/segments.parquet)."),
    class_base: int = CLASS_BASE,
    iou_threshold: float = typer.Option(None, help="Track 2: temporal overlap a match must exceed (default evaluate.iou_threshold)."),
    out: Path = typer.Option(None, help="Also write the metrics as JSON here."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Score any submission CSV against ground truth (Track 1 accuracy, Track 2 F1 in both matching modes)."""
    config = load_params(params)
    dataset = _track_dataset(track, config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: submission file not found")
    test, num_classes = _test_manifest(dataset, manifest), _num_classes(dataset, config)
    if track == 1:
        result = score_track1(path, test, num_classes)
        typer.echo(f"top-1 {result['top1']:.4f} on {result['num_clips']} clips (top-5 is meaningless for a label-only file)")
    else:
        segments = segments or interim(dataset) / "segments.parquet"
        truth = validate_segments(read_parquet(segments), str(segments), num_classes)
        iou = config["evaluate"]["iou_threshold"] if iou_threshold is None else iou_threshold
        if not 0 < iou < 1:
            raise typer.BadParameter(f"--iou-threshold must lie in (0, 1), not {iou}")
        base = config["submission"]["track2_class_base"] if class_base is None else class_base
        result = score_track2(path, test, truth, num_classes, class_base=base, iou_threshold=iou)
        typer.echo(f"F1 official {result['official']['f1']:.4f}, one-to-one {result['one_to_one']['f1']:.4f} "
                   f"on {result['num_sequences']} sequences")
    if out:
        write_json(result, out)


if __name__ == "__main__":
    app()
