"""Track 1 (clip classification on iMiGUE-style data): train, predict, evaluate, ensemble (miga.track1.pipeline)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.track1 import pipeline
from miga.training import relaunch
from stages.common import PARAMS_OPTION, clean_errors, load_params
from stages.live import EpochLogger

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def train(params: Path = PARAMS_OPTION) -> None:
    """Train what model.fusion needs (each of model.streams, or the joint cross-attention model), validating every epoch."""
    config = load_params(params)
    if relaunch(config["launch"], ["-m", "stages.track1", "train", "--params", str(params)]):
        return  # launch.launcher: torchrun ran this command in launch.nproc processes
    data = pipeline.Track1Data.load(config)
    with EpochLogger("dvclive/track1") as logger:
        streams = pipeline.train(config, data, on_history=lambda stream, history: logger.log_history(history, prefix=f"{stream}/"),
                                 say=typer.echo)
    typer.echo(f"track1: trained {', '.join(streams)} on {data.split('train').height} clips -> {pipeline.MODEL_DIR}")


@app.command()
@clean_errors
def predict(params: Path = PARAMS_OPTION) -> None:
    """Score val and test clips (several clips x flip per sample), fuse the streams, write submissions/track1.csv."""
    config = load_params(params)
    table = pipeline.predict(config, pipeline.Track1Data.load(config), say=typer.echo)
    test = table.filter(table["split"] == "test").height
    typer.echo(f"track1: scored {table.height} clips with fusion={config['track1']['model']['fusion']}; {test} test rows -> {pipeline.SUBMISSION}")


@app.command()
@clean_errors
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Top-1, top-5, mean class, head and tail accuracy on evaluate.split; confusion matrix for dvc plots."""
    config = load_params(params)
    result = pipeline.evaluate(config, pipeline.Track1Data.load(config, with_crops=False))
    typer.echo(f"track1 {result['split']}: top-1 {result['top1']:.4f}, top-5 {result['top5']:.4f}, mean class "
               f"{result['mean_class_accuracy']:.4f} (majority class rate {result['majority_class_rate']:.4f}); streams: "
               + ", ".join(f"{name} {m['top1']:.4f}" for name, m in result["streams"].items())
               + "; baselines: " + ", ".join(f"{name} {v:.4f}" for name, v in result["baselines"].items()))


@app.command()
@clean_errors
def ensemble(params: Path = PARAMS_OPTION, out: Path = typer.Option(Path("submissions/track1_ensemble.csv"), help="Submission to write.")) -> None:
    """Weighted average of saved score files (`ensemble.members` in params.yaml: file, column, weight), e.g. the
    joint, limb and RGB models of several experiments; scores it on evaluate.split and writes a test submission."""
    config = load_params(params)
    pipeline.ensemble(config, pipeline.Track1Data.load(config, with_crops=False),
                      out, say=typer.echo)


if __name__ == "__main__":
    app()
