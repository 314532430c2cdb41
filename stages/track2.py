"""Track 2 (online recognition on SMG-style sequences): train, predict, evaluate."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import typer

from miga.baselines import window_baseline_on
from miga.contracts import DETECTIONS_SCHEMA, validate_detections
from miga.evaluation.metrics import detection_metrics
from miga.evaluation.submission import track2_frame, write_track2
from miga.io import read_parquet, write_json, write_parquet
from miga.plots import timeline
from miga.project import TRACK2_DETECTIONS, TRACK2_MODEL, TRACK2_TUNING
from miga.track2 import recipe as track2
from miga.track2.project import Track2Data, detector_state, fit_detector, load_detector, tuned_detections
from miga.training import relaunch, save_checkpoint
from stages.common import PARAMS_OPTION, clean_errors, load_params, section
from stages.live import EpochLogger

app = typer.Typer(add_completion=False, help=__doc__)
DETECTIONS = TRACK2_DETECTIONS


@app.command()
@clean_errors
def train(params: Path = PARAMS_OPTION) -> None:
    """Train the detector (`track2.detector`) on random windows of the training sequences."""
    params_all = load_params(params)
    track2.detector_of(params_all["track2"])  # a bad name fails before any data is read
    if relaunch(params_all.get("train") or {}, ["-m", "stages.track2", "train", "--params", str(params)]):
        return  # train.launcher: torchrun ran this command in train.nproc processes
    with EpochLogger("dvclive/track2") as logger:
        model, standardize, layout, history, features = fit_detector(params_all, Track2Data(params_all))
        logger.log_history(history)
    save_checkpoint(TRACK2_MODEL, detector_state(model, standardize, layout, history))
    mirrored = " (each also mirrored)" if section(params_all, "track2").get("mirror", False) else ""
    typer.echo(f"track2: trained on {len(features)} sequences{mirrored} ({sum(len(f) for f in features.values())} frames) -> {TRACK2_MODEL}")


@app.command()
@clean_errors
def predict(params: Path = PARAMS_OPTION) -> None:
    """Tune the decoding threshold on the validation split for F1, then detect on val and test."""
    config = load_params(params)
    options, evaluation = section(config, "track2"), section(config, "evaluate")
    data = Track2Data(config)
    model, standardize, _ = load_detector(options, data.num_classes)
    detections, threshold, trials, val_ids, test_ids = tuned_detections(config, model, standardize, data)
    write_parquet(detections, DETECTIONS)
    test_detections = detections.filter(pl.col("sample_id").is_in(test_ids))
    write_track2(track2_frame(test_detections, class_base=int(evaluation["track2_class_base"])), Path("submissions/track2.csv"))
    best = track2.best_trial(trials) if trials else {}
    decoding = {k: best[k] for k in ("smooth", "min_length") if k in best}
    write_json({"detector": track2.detector_of(options), "threshold": threshold, "decoding": decoding, "val_trials": trials}, TRACK2_TUNING)
    typer.echo(f"track2 ({track2.detector_of(options)}): threshold {threshold} (tuned on {len(val_ids)} val sequences); "
               f"{test_detections.height} test detections -> submissions/track2.csv")


@app.command()
@clean_errors
def evaluate(params: Path = PARAMS_OPTION) -> None:
    """Precision, recall and F1 at temporal overlap > iou_threshold, official and one-to-one matching."""
    config = load_params(params)
    evaluation = section(config, "evaluate")
    data = Track2Data(config)
    manifest, segments = data.manifest, data.segments
    split = evaluation["split"]
    ids = manifest.filter(pl.col("split") == split)["sample_id"].to_list()
    detections = validate_detections(read_parquet(DETECTIONS), str(DETECTIONS), data.num_classes)
    result = detection_metrics(
        segments.filter(pl.col("sample_id").is_in(ids)), detections.filter(pl.col("sample_id").is_in(ids)),
        num_classes=data.num_classes, iou_threshold=float(evaluation["iou_threshold"]),
    )
    result.update({"split": split, "num_sequences": len(ids)})
    result["baselines"] = {"window_logreg": _window_baseline(config, data, ids)}
    write_json({mode: result[mode].pop("per_class") for mode in ("official", "one_to_one")}, Path("metrics/track2_per_class.json"))
    write_json(result, Path("metrics/track2.json"))
    _timelines(data, detections, ids, Path("plots/track2"))
    official, strict = result["official"], result["one_to_one"]
    bar = result["baselines"]["window_logreg"]["official"]["f1"]
    typer.echo(f"track2 {split}: F1 {official['f1']:.4f} (P {official['precision']:.3f}, R {official['recall']:.3f}); "
               f"one-to-one F1 {strict['f1']:.4f}; window-logreg baseline F1 {bar:.4f}")


def _window_baseline(config: dict, data: Track2Data, ids: list[str]) -> dict:
    """The sliding-window logistic regression on pooled joint statistics, on the same keypoints and split: the bar."""
    options, iou = config["track2"], float(config["evaluate"]["iou_threshold"])
    splits = {name: data.manifest.filter(pl.col("split") == name)["sample_id"].to_list() for name in ("train", "val")}
    splits["evaluated"] = [sid for sid in ids if sid not in splits["train"]]
    segments = {sid: [(s, e, c) for c, s, e in group.select("label", "start_frame", "end_frame").iter_rows()]
                for (sid,), group in data.segments.group_by(["sample_id"])}
    keypoints = {sid: data.store[sid] for part in splits.values() for sid in part}
    found, settings = window_baseline_on(keypoints, data.store.layout, segments, splits, window=int(options["window_length"]),
                                         stride=int(options["window_stride"]), seed=int(options["seed"]), iou=iou)
    rows = [(sid, label, start, end, score) for sid in splits["evaluated"] for start, end, label, score in found.get(sid, [])]
    detections = pl.DataFrame(rows, schema=DETECTIONS_SCHEMA, orient="row")
    scored = detection_metrics(data.segments.filter(pl.col("sample_id").is_in(ids)), detections,
                               num_classes=data.num_classes, iou_threshold=iou)
    return {mode: {k: scored[mode][k] for k in ("precision", "recall", "f1")} for mode in ("official", "one_to_one")} | settings


def _timelines(data: Track2Data, detections: pl.DataFrame, ids: list[str], folder: Path) -> None:
    lengths = dict(data.manifest.select("sample_id", "end_frame").iter_rows())
    for sample_id in ids:
        timeline(
            data.segments.filter(pl.col("sample_id") == sample_id), detections.filter(pl.col("sample_id") == sample_id),
            num_frames=lengths[sample_id] + 1, class_names=data.class_names, title=sample_id, path=folder / f"{sample_id}.png",
        )


if __name__ == "__main__":
    app()
