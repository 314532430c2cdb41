"""The `miga` command: every pipeline stage and tool in one place (`miga --help`)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from miga.contracts import validate_manifest, validate_segments
from miga.datasets import imigue, smg
from miga.io import read_parquet, write_json
from miga.evaluation.metrics import classification_metrics, detection_metrics
from miga.evaluation.submission import SubmissionError, check_track1, check_track2, read_track1, read_track2
from stages import ingest, online, pose, rgb, synth, track1, track2
from miga.datasets import format_of
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params, section
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
    report = check_release(format_of(dataset, entry), Path(entry["root"]), entry, section(config, "ingest"),
                           require_video=needs_video(dataset, config))
    typer.echo("\n".join(report.lines()))
    if report.fatal:
        raise typer.Exit(1)


submission_app = typer.Typer(no_args_is_help=True, help="Submission files: check them against a manifest.")
app.add_typer(submission_app, name="submission")

TRACK = typer.Argument(..., help="1 or 2")
CLASS_BASE = typer.Option(1, help="Track 2 class numbering in the file (0 or 1).")


def _test_manifest(dataset: str, manifest: Path | None) -> pl.DataFrame:
    path = manifest or interim(dataset) / "manifest.parquet"
    frame = validate_manifest(read_parquet(path), str(path))
    return frame.filter(pl.col("split") == "test")


@submission_app.command("check")
@clean_errors
def submission_check(
    track: int = TRACK,
    path: Path = typer.Argument(..., help="The submission CSV."),
    manifest: Path = typer.Option(None, help="Manifest with the test split (default: data/interim/<dataset>/manifest.parquet)."),
    class_base: int = CLASS_BASE,
) -> None:
    """Validate a submission CSV: header, every test id once, classes and frames in range. Lists problems row by row."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: submission file not found")
    if track == 1:
        problems = check_track1(path, _test_manifest("imigue", manifest), imigue.NUM_CLASSES)
    elif track == 2:
        problems = check_track2(path, _test_manifest("smg", manifest), smg.NUM_CLASSES, class_base)
    else:
        raise typer.BadParameter("track must be 1 or 2")
    for problem in problems:
        typer.echo(f"{path}: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{path}: valid Track {track} submission")


def _refuse_invalid(path: Path, problems: list[str]) -> None:
    """Scoring a file with missing or out-of-range rows would credit or blame them silently: refuse it."""
    if problems:
        raise SubmissionError(f"{path}: not scored, {len(problems)} problems (see `miga submission check`): {problems[0]}")


@app.command("score")
@clean_errors
def score(
    track: int = TRACK,
    path: Path = typer.Argument(..., help="The submission CSV."),
    manifest: Path = typer.Option(None, help="Manifest with ground-truth labels of the test split."),
    segments: Path = typer.Option(Path("data/interim/smg/segments.parquet"), help="Track 2 ground-truth segments."),
    class_base: int = CLASS_BASE,
    iou_threshold: float = typer.Option(0.3, help="Track 2: temporal overlap a match must exceed."),
    out: Path = typer.Option(None, help="Also write the metrics as JSON here."),
) -> None:
    """Score any submission CSV against ground truth (Track 1 accuracy, Track 2 F1 in both matching modes)."""
    if track == 1:
        test = _test_manifest("imigue", manifest)
        _refuse_invalid(path, check_track1(path, test, imigue.NUM_CLASSES))
        test = test.drop_nulls("label")
        if test.is_empty():
            raise SubmissionError(f"{manifest or interim('imigue') / 'manifest.parquet'}: the test split has no labels to score against "
                                  "(set datasets.imigue.test_truth)")
        submitted = read_track1(path).join(test.select(pl.col("sample_id").alias("Id"), "label"), on="Id", how="right")
        onehot = (submitted["Target"].to_numpy()[:, None] == range(imigue.NUM_CLASSES)).astype(float)
        result = classification_metrics(submitted["label"].to_numpy(), onehot)
        typer.echo(f"top-1 {result['top1']:.4f} on {test.height} clips (top-5 is meaningless for a label-only file)")
    elif track == 2:
        test = _test_manifest("smg", manifest)
        _refuse_invalid(path, check_track2(path, test, smg.NUM_CLASSES, class_base))
        truth = validate_segments(read_parquet(segments), str(segments)).filter(pl.col("sample_id").is_in(test["sample_id"]))
        result = detection_metrics(truth, read_track2(path, class_base), num_classes=smg.NUM_CLASSES, iou_threshold=iou_threshold)
        typer.echo(f"F1 official {result['official']['f1']:.4f}, one-to-one {result['one_to_one']['f1']:.4f}")
    else:
        raise typer.BadParameter("track must be 1 or 2")
    if out:
        write_json(result, out)


if __name__ == "__main__":
    app()
