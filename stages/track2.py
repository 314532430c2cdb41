"""Track 2 (online recognition on SMG-style sequences): train, predict, evaluate (miga.track2.pipeline)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.project import TRACK2_MODEL
from miga.track2 import pipeline, recipe
from miga.training import relaunch
from stages.common import PARAMS_OPTION, clean_errors, load_params
from stages.live import EpochLogger

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the detector (`track2.detector`) on random windows of the training sequences."""
    config = load_params(params)
    if relaunch(config["launch"], ["-m", "stages.track2", "train", "--params", str(params)]):
        return  # launch.launcher: torchrun ran this command in launch.nproc processes
    with EpochLogger("dvclive/track2") as logger:
        history, lengths = pipeline.train(config, pipeline.Track2Data(config))
        logger.log_history(history)
    mirrored = " (each also mirrored)" if config["track2"]["train"]["mirror"] else ""
    typer.echo(f"track2: trained on {len(lengths)} sequences{mirrored} ({sum(lengths.values())} frames) -> {TRACK2_MODEL}")


@app.command()
@clean_errors
def predict(params: Path = PARAMS_OPTION) -> None:
    """Tune the decoding on the validation split for F1, detect on val and test; the candidate with the best val F1 wins."""
    config = load_params(params)
    tuning = pipeline.predict(config, pipeline.Track2Data(config))
    val = ", ".join(f"{name} {_f1(c['val_f1'])}" for name, c in tuning["candidates"].items())
    per_class = tuning["decoding"].get("class_thresholds")
    threshold = f"thresholds per class {per_class}" if per_class else f"threshold {tuning['threshold']}"
    win_rate = tuning["switch_win_rate"]
    kept = "" if win_rate is None or win_rate >= config["track2"]["decode"]["switch_confidence"] else \
        f" (another's val gain won only {win_rate:.0%} of val resamples, below track2.decode.switch_confidence)"
    typer.echo(f"track2 ({recipe.detector_of(config['track2'])}): {threshold} (tuned on {tuning['val_sequences']} "
               f"val sequences); val F1 {val}: {tuning['chosen']} chosen{kept}; {tuning['test_detections']} test detections -> "
               f"{pipeline.SUBMISSION}")


def _f1(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


@app.command()
@clean_errors
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Precision, recall and F1 at temporal overlap > iou_threshold, official and one-to-one matching."""
    config = load_params(params)
    result = pipeline.evaluate(config, pipeline.Track2Data(config))
    official, strict = result["official"], result["one_to_one"]
    bar = result["baselines"]["window_logreg"]["official"]["f1"]
    typer.echo(f"track2 {result['split']}: F1 {official['f1']:.4f} (P {official['precision']:.3f}, R {official['recall']:.3f}; "
               f"{result['selection']['chosen']} chosen on val); one-to-one F1 {strict['f1']:.4f}; window-logreg baseline F1 {bar:.4f}")


if __name__ == "__main__":
    app()
