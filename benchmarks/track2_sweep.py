"""Which Track 2 settings reach what F1? Trains one detector per variant and seed on a project's interim data.

Run inside (or point `--project` at) a project where `dvc repro` has ingested the Track 2 dataset:

    python -m benchmarks.track2_sweep --project . '{}' '{"model": {"detector": "window"}}' '{"model": {"layers": 6}, "train": {"mirror": true}}'

Each argument is a JSON object of `track2` overrides on the project's params.yaml, nested as the `track2`
section is (`model`, `features`, `train`, `decode`). A variant is
trained and decoded with the functions the `train_track2` and `predict_track2` stages use
(`fit_detector`, `compare_candidates`: thresholds tuned on val for F1, the candidate chosen on val), in a temporary
checkpoint, and scored on the test split at `evaluate.iou_threshold`. Prints one line per variant and seed: the
detector's val F1 at the tuned threshold, test F1 (official rule, P / R), one-to-one F1, every candidate's val and
test F1 (the window logistic regression is the bar), the chosen one and training seconds.
`--train-sequences N` trains on only N of the training sequences (one per person in turn; the window logistic
regression gets the same ones): issue 29's few-labels protocol on the synthetic SMG.

The synthetic SMG test split holds 5 sequences (~90 gestures, as the real one); seeds move its F1 by
several points. For comparisons finer than that:

- `--seeds 0 1 2 ...` trains every variant at each `track2.train.seed` and ends with the mean and spread of
  each variant, and each variant's per-seed difference from the first;
- `--holdout DIR` also scores every model, and the window logistic regression, on a pool of unseen synthetic
  sequences (new people, new gestures: `synth.seed` = `--holdout-seed`), at the threshold and decoding tuned on the
  project's val split. DIR
  is built on first use (`--holdout-sequences` SMG sequences, ingested with the provided skeletons)
  and reused after;
- `--jobs N` trains N models at a time (each with `track2.train.threads` torch threads);
- `--models DIR` keeps each trained detector there, keyed by the training settings (every `track2` section but
  `decode`), the seed, the project and `--train-sequences`: variants that differ only in decoding reuse it
  (`train 0 s` in their line), so their differences are the decoding's own (the key includes a digest of `miga/`'s
  code, so a code change trains afresh); with
  `--jobs` > 1 two variants of one seed may both train it.
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `miga` and `stages` of this checkout, whatever the project directory
HOLDOUT_FIRST_SAMPLE = 101  # past the official 1-40, so no sample number is shared with the project


def build_holdout(folder: Path, config: dict, seed: int, sequences: int) -> None:
    """Synthetic SMG sequences under `folder` (a project layout), ingested and keypoint-cached as `dvc repro` does."""
    from miga.synth import generate_smg, get_preset
    from miga.io import atomic_directory

    base = get_preset("benchmark").smg
    smg = type(base)(**{**base.__dict__, "samples": {"train": (HOLDOUT_FIRST_SAMPLE, sequences), "val": (0, 0), "test": (0, 0)}})
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_directory(folder / "data/raw/smg") as tmp:
        generate_smg(tmp, smg, seed)
    params = copy.deepcopy(config)
    params["datasets"]["smg"]["root"] = "data/raw/smg"
    params["datasets"]["smg"]["test_truth"] = None  # the pool is all train samples
    params["pose"]["backend"] = "provided"
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for stage in ("stages.ingest", "stages.pose"):
        subprocess.run([sys.executable, "-m", stage, "--dataset", "smg", "--params", "params.yaml"], cwd=folder, env=env, check=True)


def _score(truth: pl.DataFrame, detections: pl.DataFrame, num_classes: int, iou: float) -> dict:
    from miga.evaluation.metrics import detection_metrics

    result = detection_metrics(truth, detections, num_classes=num_classes, iou_threshold=iou)
    return {mode: {k: result[mode][k] for k in ("f1", "precision", "recall")} for mode in ("official", "one_to_one")}


def fewer_train_sequences(data, count: int | None):
    """`data` with only `count` of its training sequences (one per person in turn: `few_train_sequences`), or as is."""
    from benchmarks.real_sequences import few_train_sequences

    if count is None:
        return data
    train = data.manifest.filter(pl.col("split") == "train")
    subject = dict(train.select("sample_id", "subject").iter_rows())
    kept = few_train_sequences(subject, sorted(set(subject.values())), count)
    return data.with_splits({sid: split for sid, split in data.manifest.select("sample_id", "split").iter_rows()
                             if split != "train" or sid in kept})


def run_variant(config: dict, overrides: dict, checkpoint: Path, holdout: Path | None = None, train_sequences: int | None = None,
                models: Path | None = None) -> dict:
    """Train one variant (on `train_sequences` of the training sequences, default all), compare the candidates on val
    as predict_track2 does; scores on test (and the detector's on the holdout pool)."""
    from miga.params import merged, validated
    from miga.track2 import pipeline as stage
    from miga.track2 import recipe as track2

    config = validated(merged(config, {"track2": overrides}))  # every key, the schema's defaults filled in
    iou = float(config["evaluate"]["iou_threshold"])
    data = fewer_train_sequences(stage.Track2Data(config), train_sequences)
    started = time.perf_counter()
    if models is None:
        model, standardize, _, _, _ = stage.fit_detector(config, data, checkpoint=checkpoint)
    else:
        from benchmarks.real_track2 import trained_detector

        model, standardize, _ = trained_detector(config, data, models, {"project": str(Path.cwd()), "train_sequences": train_sequences})
    train_s = time.perf_counter() - started
    found = stage.compare_candidates(config, model, standardize, data, blend=True)  # blend reported, chosen only when listed
    threshold, in_test = found.settings["detector"]["threshold"], pl.col("sample_id").is_in(found.test_ids)
    val_f1 = found.val_f1["detector"]
    scored = {name: _score(data.segments.filter(in_test), frame.filter(in_test), data.num_classes, iou) for name, frame in found.detections.items()}
    result = {"threshold": threshold, "val_f1": float("nan") if val_f1 is None else val_f1, "train_s": train_s, "test": scored["detector"],
              "train_sequences": int((data.manifest["split"] == "train").sum()), "chosen": found.chosen, "switch_win_rate": found.switch_win_rate,
              "candidates": {name: {"val_f1": found.val_f1[name], "test": scored[name]} for name in found.detections}}
    if holdout is not None:
        pool = stage.Track2Data(config, project=holdout)
        if pool.class_names != data.class_names:
            raise SystemExit(f"{holdout}: its classes differ from the project's")
        features = {sid: standardize(track2.frame_features(pool.store[sid], pool.store.layout, track2.feature_config(config["track2"]))) for sid in pool.manifest["sample_id"]}
        decode_pool = track2.make_decoder(model, found.options, features)
        pooled = {"detector": decode_pool(threshold, **found.settings["detector"]["decoding"]),
                  "window_logreg": _window_logreg_on(config, data, pool)}
        result["holdout"] = _score(pool.segments, pooled["detector"], pool.num_classes, iou)
        result["holdout"]["sequences"], result["holdout"]["gestures"] = len(features), pool.segments.height
        for name, frame in pooled.items():
            result["candidates"][name]["holdout"] = _score(pool.segments, frame, pool.num_classes, iou)
        thresholds, grid = track2.decode_trials(found.options)  # the grid the val trials were drawn from
        _, on_pool = track2.tune_for_f1(decode_pool, pool.segments, thresholds, pool.num_classes, iou, grid)
        result["trials"] = [{**val, "holdout_f1": held["f1"]} for val, held in zip(found.trials, on_pool)]  # rules over val trials, checked offline
    return result


def _window_logreg_on(config: dict, data, pool) -> pl.DataFrame:
    """The window_logreg candidate (fit on `data`'s train, decoding tuned on its val) on every sequence of `pool`."""
    from miga.baselines import window_features
    from miga.track2.pipeline import fitted_window_logreg, window_detections

    baseline, _, settings = fitted_window_logreg(config, data, [])
    return window_detections(baseline, {sid: window_features(pool.store[sid], pool.store.layout, window=settings["window"],
                                                             stride=settings["stride"]) for sid in pool.manifest["sample_id"]})


def _job(args: tuple) -> tuple[str, int, dict]:
    project, config, text, seed, holdout, train_sequences, models = args
    os.chdir(project)
    from miga.params import merged

    overrides = merged(json.loads(text), {"train": {"seed": seed}})
    with tempfile.TemporaryDirectory() as tmp:
        return text, seed, run_variant(config, overrides, Path(tmp) / "last.pt", holdout, train_sequences, models)


def _line(text: str, seed: int, r: dict) -> str:
    test, strict = r["test"]["official"], r["test"]["one_to_one"]
    line = (f"{text} seed {seed}: val F1 {r['val_f1']:.3f} (threshold {r['threshold']}); test F1 {test['f1']:.3f} "
            f"(P {test['precision']:.3f} / R {test['recall']:.3f}), one-to-one {strict['f1']:.3f}")
    if "holdout" in r:
        h = r["holdout"]
        line += (f"; holdout F1 {h['official']['f1']:.3f} (P {h['official']['precision']:.3f} / R {h['official']['recall']:.3f}), "
                 f"one-to-one {h['one_to_one']['f1']:.3f}")
    candidates = ", ".join(f"{name} {c['val_f1'] if c['val_f1'] is None else round(c['val_f1'], 3)} / {c['test']['official']['f1']:.3f}"
                           + (f" / {c['holdout']['official']['f1']:.3f}" if "holdout" in c else "") for name, c in r["candidates"].items())
    scored = "val / test" + (" / holdout" if "holdout" in r else "")
    return line + f"; {r['train_sequences']} training sequences; {scored} F1: {candidates}; chosen {r['chosen']}; train {r['train_s']:.0f} s"


FIGURES = {"val F1": lambda r: r["val_f1"], "test F1": lambda r: r["test"]["official"]["f1"],
           "test 1-1": lambda r: r["test"]["one_to_one"]["f1"],
           "window_logreg test F1": lambda r: r["candidates"]["window_logreg"]["test"]["official"]["f1"],
           "chosen test F1": lambda r: r["candidates"][r["chosen"]]["test"]["official"]["f1"]}
HOLDOUT_FIGURES = {"holdout F1": lambda r: r["holdout"]["official"]["f1"], "holdout 1-1": lambda r: r["holdout"]["one_to_one"]["f1"],
                   "window_logreg holdout F1": lambda r: r["candidates"]["window_logreg"]["holdout"]["official"]["f1"]}


def summary(results: dict[str, dict[int, dict]], seeds: list[int]) -> list[str]:
    """Mean ± sample standard deviation over seeds per variant; then each variant minus the first, per seed."""
    figures = {**FIGURES, **(HOLDOUT_FIGURES if "holdout" in next(iter(results.values()))[seeds[0]] else {})}
    spread = lambda xs: f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"  # noqa: E731
    lines = [f"over seeds {seeds} (mean ± sd):"]
    for text, by_seed in results.items():
        lines.append(f"  {text}: " + ", ".join(f"{name} {spread([f(by_seed[s]) for s in seeds])}" for name, f in figures.items()))
    first, *others = list(results)
    for text in others:
        parts = []
        for name, f in figures.items():
            diffs = [f(results[text][s]) - f(results[first][s]) for s in seeds]
            parts.append(f"{name} {statistics.mean(diffs):+.3f} (higher on {sum(d > 0 for d in diffs)}/{len(diffs)} seeds)")
        lines.append(f"  {text} minus {first}: " + ", ".join(parts))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--seeds", type=int, nargs="+", help="track2.train.seed values (default: the project's)")
    parser.add_argument("--holdout", type=Path, help="a pool of unseen synthetic SMG sequences (built here if absent)")
    parser.add_argument("--holdout-seed", type=int, default=7, help="synth.seed of the pool (the default data uses 2024)")
    parser.add_argument("--holdout-sequences", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=1, help="models trained at a time")
    parser.add_argument("--train-sequences", type=int, help="train on only this many of the training sequences (one per person in turn)")
    parser.add_argument("--out", type=Path, help="also write every result as JSON here")
    parser.add_argument("--models", type=Path, help="keep each trained detector here; decode-only variants reuse it")
    parser.add_argument("variants", nargs="+",
                        help="JSON objects of track2 overrides, nested as the section ('{\"model\": {\"layers\": 4}}'; '{}' = params.yaml as is)")
    args = parser.parse_args()
    project = args.project.resolve()
    os.chdir(project)
    from miga.params import validated

    config = yaml.safe_load(Path("params.yaml").read_text())  # as written: the holdout project's params.yaml is a copy
    track2_params = validated(config)["track2"]
    seeds = args.seeds or [int(track2_params["train"]["seed"])]
    holdout = args.holdout.resolve() if args.holdout else None
    if holdout is not None and track2_params["dataset"] != "smg":
        raise SystemExit("--holdout is a synthetic SMG pool: it needs track2.dataset smg")
    if holdout is not None and not (holdout / "data/interim/smg/keypoints.parquet").exists():
        print(f"building the holdout pool: {args.holdout_sequences} sequences, synth seed {args.holdout_seed} -> {holdout}", flush=True)
        build_holdout(holdout, config, args.holdout_seed, args.holdout_sequences)
    print(f"track2 sweep on {track2_params['dataset']} ({project}), seeds {seeds}"
          + (f", holdout {holdout}" if holdout else ""), flush=True)
    models = args.models.resolve() if args.models else None
    if models is not None:
        models.mkdir(parents=True, exist_ok=True)
    jobs = [(project, config, text, seed, holdout, args.train_sequences, models) for text in args.variants for seed in seeds]
    results: dict[str, dict[int, dict]] = {text: {} for text in args.variants}
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            finished = pool.map(_job, jobs)
            for text, seed, r in finished:
                results[text][seed] = r
                print(_line(text, seed, r), flush=True)
    else:
        for job in jobs:
            text, seed, r = _job(job)
            results[text][seed] = r
            print(_line(text, seed, r), flush=True)
    if len(seeds) > 1 or len(results) > 1:
        print("\n".join(summary(results, seeds)), flush=True)
    if args.out:
        args.out.write_text(json.dumps({text: {str(s): r for s, r in by_seed.items()} for text, by_seed in results.items()}, indent=1))


if __name__ == "__main__":
    main()
