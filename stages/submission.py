"""`miga submission check` and `miga score`: a submission file against the test manifest (and its ground truth)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from miga.contracts import validate_manifest, validate_segments
from miga.datasets import format_of, reader
from miga.evaluation.scoring import score_track1, score_track2
from miga.evaluation.submission import check_track1, check_track2
from miga.io import read_parquet, write_json
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, interim, load_params

submission_app = typer.Typer(no_args_is_help=True, help="Submission files: check them against a manifest.")


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


def _submission_context(track: int, path: Path, manifest: Path | None, params: Path) -> tuple[dict, str, pl.DataFrame, int]:
    """(params, the track's dataset, its test manifest rows, its class count) for a submission file that exists."""
    config = load_params(params)
    dataset = _track_dataset(track, config)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: submission file not found")
    return config, dataset, _test_manifest(dataset, manifest), _num_classes(dataset, config)


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
    config, dataset, test, num_classes = _submission_context(track, path, manifest, params)
    base = config["submission"]["track2_class_base"] if class_base is None else class_base
    problems = check_track1(path, test, num_classes) if track == 1 else check_track2(path, test, num_classes, base)
    for problem in problems:
        typer.echo(f"{path}: {problem}")
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{path}: valid Track {track} submission")


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
    config, dataset, test, num_classes = _submission_context(track, path, manifest, params)
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
