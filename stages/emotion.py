"""Emotion: each video's hidden state (iMiGUE: after a won or lost match) from its micro-gestures (miga.emotion.pipeline)."""

from __future__ import annotations

from pathlib import Path

import typer

from miga.emotion import pipeline
from stages.common import PARAMS_OPTION, clean_errors, load_params

app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
@clean_errors
def events(
    source: str = typer.Option(None, help="labels | track1 | track2 (default: emotion.source)."),
    params: Path = PARAMS_OPTION,
) -> None:
    """One row per video: its MG events from SOURCE and its emotion (video_emotions.csv) -> data/interim/emotion/SOURCE.parquet."""
    config = load_params(params)
    source = source or config["emotion"]["source"]
    table = pipeline.events(config, source)
    counts = table.group_by("split").len().sort("split").iter_rows()
    labelled = int(table["emotion"].is_not_null().sum())
    typer.echo(f"emotion events ({source}): " + ", ".join(f"{n} {split}" for split, n in counts)
               + f" videos, {labelled} with an emotion label -> {pipeline.events_path(source)}")


@app.command()
@clean_errors
def run(params: Path = PARAMS_OPTION) -> None:
    """Cross-validate (person-disjoint) the model and the baselines, fit, predict val and test, write the submission, metrics and plots."""
    config = load_params(params)
    result = pipeline.run(config, say=typer.echo)
    cv = result["cv"]
    line = (f"emotion ({result['source']}, {result['model']}): cross-validated on {cv['videos']} training videos "
            f"({cv['people']} people): accuracy {cv['model']['accuracy']:.3f}, ROC AUC {_f(cv['model']['roc_auc'])}; baselines "
            + ", ".join(f"{name} {m['accuracy']:.3f}" for name, m in cv["baselines"].items()))
    if "test" in result:
        test = result["test"]
        line += (f"; test ({test['model']['videos']} videos): accuracy {test['model']['accuracy']:.3f}, ROC AUC {_f(test['model']['roc_auc'])}"
                 f" (bag_logreg {test['baselines']['bag_logreg']['accuracy']:.3f})")
    typer.echo(line + f" -> {pipeline.METRICS}, {pipeline.SUBMISSION}")


def _f(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    app()
