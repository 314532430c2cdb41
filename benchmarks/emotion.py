"""The emotion stage's models on the real iMiGUE label table: person-disjoint CV on the emotion protocol's training videos.

The real table (`../shared/realdata/imigue_real/labels_dev.csv`) goes through what the stage reads: `miga convert
imigue-labels` (`miga.datasets.imigue_labels.convert`, with `protocol.csv`: its 102 emotion-training videos, 51 win /
51 lose, are the train split) into a temporary label-only release, the iMiGUE reader (`scan_release`, as `ingest`), then
`miga.emotion.pipeline.events(source=labels)`: ground-truth MG classes. On the 102 training videos, every model is
cross-validated person-disjointly (`miga.emotion.model.person_folds`, 5 folds, `--repeats` fold draws, seeds `--seed`, + 1, ...)
on the same folds: the baselines `majority` and `bag_logreg` (logistic regression over the bag of MGs: class shares,
time shares, MGs per minute) and each `emotion.model` (logreg, gbdt, blend, auto; params.yaml's `emotion` section).
Figures are means (and standard deviations) over the fold draws of each draw's pooled out-of-fold accuracy, balanced
accuracy and ROC AUC.

    OMP_NUM_THREADS=1 python -m benchmarks.emotion --repeats 5 --out /tmp/emotion_benchmark.json
    OMP_NUM_THREADS=1 python -m benchmarks.emotion --repeats 10 --project PROJECT    # a project's own training videos
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from miga.datasets import imigue, imigue_labels
from miga.emotion import pipeline
from miga.emotion.model import BASELINE_PARTS, CANDIDATES, Settings, cross_validate
from miga.params import validated

from benchmarks.realdata import REALDATA

REPO = Path(__file__).resolve().parents[1]
REAL = REALDATA / "imigue_real"
MODELS = (*BASELINE_PARTS, *CANDIDATES, "auto")


def training_design(table: Path, protocol: Path, work: Path, params: dict, train_splits=("train",)):
    """The stage's Design of the protocol's training videos (source labels), built through the stage's own readers."""
    release = work / "release"
    imigue_labels.convert(table, release, protocol)
    config = validated(params)
    entry = dict(config["datasets"]["imigue"]) | {"root": str(release), "test_labels": "real", "test_truth": None}
    manifest, segments = imigue.scan_release(release, config["ingest"], entry)
    (work / "data/interim/imigue").mkdir(parents=True)
    manifest.write_parquet(work / "data/interim/imigue/manifest.parquet")
    segments.write_parquet(work / "data/interim/imigue/segments.parquet")
    config = validated(params | {"datasets": params["datasets"] | {"imigue": entry | {"root": "release"}}})
    pipeline.events(config, "labels", project=work)
    return project_design(work, train_splits)


def project_design(project: Path, train_splits=("train",)):
    """The Design of a project's training videos from its ground-truth MG events (`emotion.source: labels`): those of
    the train split (scored) and the labelled ones of the other `train_splits` (training parts only)."""
    events = pl.read_parquet(pipeline.events_path("labels", project))
    train = pipeline.training_videos(events.filter(pl.col("classes").is_not_null()), train_splits)
    return pipeline._design(train, len(train["class_names"].first()), train["non_mg"].first())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=REAL / "labels_dev.csv")
    parser.add_argument("--protocol", type=Path, default=REAL / "protocol.csv")
    parser.add_argument("--repeats", type=int, default=5, help="fold draws (seeds SEED, SEED + 1, ...)")
    parser.add_argument("--seed", type=int, default=0, help="the first fold draw's seed")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--project", type=Path, help="instead of the real table: a project's training videos, from its "
                        "data/interim/emotion/labels.parquet (what `dvc repro emotion` built; e.g. the synthetic default)")
    parser.add_argument("--train-splits", nargs="+", choices=("train", "val"), help="emotion.train_splits (default: params.yaml's); "
                        "the real table's val split is its videos outside the emotion protocol (all won matches)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    settings = Settings.of(params["emotion"] | {"seed": args.seed})
    train_splits = args.train_splits or params["emotion"]["train_splits"]
    if args.project:
        design = project_design(args.project, train_splits)
    else:
        with tempfile.TemporaryDirectory(prefix="miga_emotion_") as work, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "clips have no video": a label-only release
            design = training_design(args.table, args.protocol, Path(work), params, train_splits)
    scored = design.subset(np.flatnonzero(design.scored))
    wins, extra = int(scored.y.sum()), int((~design.scored).sum())
    print(f"{len(scored.y)} training videos ({wins} win, {len(scored.y) - wins} lose), {np.unique(scored.groups).size} people, "
          f"{settings.folds} person-disjoint folds x {args.repeats} draws; train_splits {list(train_splits)}: "
          f"{extra} more videos ({int(design.y[~design.scored].sum())} win) in the training parts")
    results = {}
    runs = [(name, name, design) for name in args.models]  # (row label, model, videos)
    if extra:  # the same folds (the scored videos decide them), the train split alone: the protocol's own reference
        runs.insert(0, ("bag_logreg, train split only", "bag_logreg", scored))
    for label, model, data in runs:
        start = time.perf_counter()
        cv = cross_validate(data, model, settings, args.repeats, baselines=())
        summary = cv["models"][model]
        if "chosen" in cv:
            summary["chosen"] = cv["chosen"]
        summary["seconds"] = round(time.perf_counter() - start, 1)
        results[label] = summary
        print(f"| {label} | {_f(summary, 'accuracy')} | {_f(summary, 'balanced_accuracy')} | {_f(summary, 'roc_auc')} | "
              f"{summary['seconds']} s |" + (f" chosen {summary['chosen']}" if "chosen" in summary else ""), flush=True)
    if args.out:
        args.out.write_text(json.dumps({"videos": len(scored.y), "train_only_videos": extra, "train_splits": list(train_splits),
                                        "people": int(np.unique(scored.groups).size), "folds": settings.folds, "seed": args.seed,
                                        "repeats": args.repeats, "params": params["emotion"], "models": results}, indent=2) + "\n")


def _f(summary: dict, key: str) -> str:
    value, spread = summary[key], summary[f"{key}_std"]
    return "n/a" if value is None else f"{value:.3f}" + (f" ± {spread:.3f}" if spread is not None else "")


if __name__ == "__main__":
    main()
