"""The `miga` command: every pipeline stage and tool in one place (`miga --help`)."""

from __future__ import annotations

import typer

from stages import data, emotion, ingest, online, pose, rgb, submission, synth, track1, track2

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
app.add_typer(emotion.app, name="emotion", help="Emotion (won or lost match) from each video's MG sequence: events, run.")
app.command("online", help="Streaming Track 2 over one skeleton CSV or video: gestures as JSON lines when decided.")(online.main)

app.add_typer(data.convert_app, name="convert")
app.add_typer(data.data_app, name="data")
app.add_typer(submission.submission_app, name="submission")
app.command("score", help="Score any submission CSV against ground truth (Track 1 accuracy, Track 2 F1 in both matching modes).")(
    submission.score)


if __name__ == "__main__":
    app()
