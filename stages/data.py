"""`miga convert` (other datasets into a format the pipeline reads) and `miga data check` (what a release holds)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.datasets import format_of, needs_video
from stages.common import PARAMS_OPTION, clean_errors, dataset_entry, load_params

convert_app = typer.Typer(no_args_is_help=True, help="Convert other datasets to a format the pipeline reads.")


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


@convert_app.command("imigue-labels")
@clean_errors
def convert_imigue_labels(
    table: Path = typer.Argument(..., help="iMiGUE's label table (video_id,label_id,...,class,subject_id,...,win_or_lose)."),
    out: Path = typer.Argument(..., help="Output folder: an iMiGUE 2024-layout release of label files (no skeletons, no videos)."),
    protocol: Path = typer.Option(None, help="protocol.csv (kind,split,id): its emotion_video rows give the emotion split, "
                                  "else its subject rows the cross-subject split."),
) -> None:
    """iMiGUE's label table -> label files, video_subjects.csv and video_emotions.csv (the emotion stage's input with emotion.source: labels)."""
    from miga.datasets import imigue_labels

    result = imigue_labels.convert(table, out, protocol)
    parts = ", ".join(f"{s['videos']} {split} videos ({s['clips']} clips; {s['win']} win, {s['lose']} lose)"
                      for split, s in result["splits"].items() if s["videos"])
    lacking = result["protocol_videos_not_in_table"]
    typer.echo(f"wrote {out} ({result['rule']} split): {parts}"
               + (f"; {lacking} protocol videos are not in the table" if lacking else "")
               + f"; use it with datasets.imigue.root: {out}, datasets.imigue.test_labels: real, test_truth: null")


data_app = typer.Typer(no_args_is_help=True, help="Dataset releases: what a root holds, before a long run.")


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
                           require_video=needs_video(entry, config["pose"]))
    typer.echo("\n".join(report.lines()))
    if report.fatal:
        raise typer.Exit(1)
