"""miga's Track 2 detectors on the real sequence sets, person-disjoint 5-fold CV, next to the baselines.

`--set utkinect` (default): UTKinect-Action3D, leave two people out. `--set ground_guide`: the Ground Guide
recordings as continuous sequences (`miga.datasets.ground_guide.convert_stream`), leave one person out.

The same folds as `benchmarks/real_sequences.py` (fold k tests people 2k+1, 2k+2; the next fold's
two people are its validation people; the other 6 train). Each variant is a JSON object of `track2`
overrides on the repo's params.yaml, nested as the `track2` section is (`{"model": {"layers": 4}}`,
`{"train": {"epochs": 20}}`, `{"decode": {"min_length": [4, 8]}}`), laid over `--base` (the set's settings). Per fold it runs exactly
what the Track 2 stages run: `miga.track2.pipeline.fit_detector` (train split), `compare_candidates`
(each candidate's score threshold tuned on the val people for F1, official rule; the choice), then the test people are scored
with `miga.evaluation.metrics.detection_metrics` at `evaluate.iou_threshold` (official rule and
one-to-one). The sliding-window logistic regression (`benchmarks.real_sequences.run`) runs on the
same folds unless `--no-lr`; miga's window baseline is the variant '{"model": {"detector": "window"}}'.
The keypoints are held in a `miga.io.InMemoryKeypoints`.

    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 '{}' '{"model": {"detector": "window"}}' '{"model": {"detector": "frame"}}'
    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 --no-lr --folds 0 1 '{"train": {"epochs": 20}}'   # quick look
    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 --no-lr --stream 512 16 32 '{}'   # + streaming F1 and delay
    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 --set ground_guide --stream 2048 16 32 '{}'
    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 --train-sequences 3 '{}'   # few labels: 3 training sequences per fold

Per fold it also reports the `blend` candidate (detector + window baseline, per-frame probabilities averaged), which
candidate `track2.decode.candidates` would submit, and recall by gesture length (detector; chosen candidate).

With `--stream WINDOW HOP GUARD` every test sequence is also fed frame by frame through `miga online`'s
detector (`miga.track2.online.online_detector`, the fold's model at its val-tuned decoding), and the
streamed detections are scored like the offline ones; the decision delay is (frame at emission) - (end).

Results -> --out (default /tmp/miga_real/real_track2.json), one entry per variant, appended.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
CACHE = Path("/tmp/miga_real")
BASE = {  # per set, applied to params.yaml's track2 before a variant
    "utkinect": {"dataset": "utkinect", "train": {"window": 128}},  # sequences 525-1282 rows, segments 5-110
    "ground_guide": {"dataset": "ground_guide", "train": {"window": 512}},  # sequences 467-10007 rows, segments 43-1118
}
LR = {  # the sliding-window logistic regression's (windows, stride) per set (benchmarks.real_sequences)
    "utkinect": ([8, 12, 16, 24], 2),
    "ground_guide": ([16, 32, 64], 4),
}


def load_data(cache: Path, name: str = "utkinect"):
    """(Track2Data over all the set's sequences, subject by sample id)."""
    from benchmarks.real_sequences import stream_root
    from miga.datasets import stream
    from miga.io import InMemoryKeypoints
    from miga.track2.pipeline import Track2Data

    root = stream_root(cache, name)
    manifest, segments = stream.scan(root)
    meta = stream.read_meta(root)
    store = InMemoryKeypoints(stream.provided_keypoints(root, manifest), meta["layout"], name=str(root))
    data = Track2Data.from_tables(list(meta["classes"]), manifest, segments, store)
    return data, dict(manifest.select("sample_id", "subject").iter_rows())


def folds_of(subject: dict[str, int], name: str = "utkinect") -> list[tuple[list[int], list[int], list[int]]]:
    """(test people, val people, train people) of each fold, as in benchmarks/real_sequences.py."""
    from benchmarks.real_sequences import person_groups

    people = sorted(set(subject.values()))
    groups = person_groups(subject, name)
    out = []
    for k, test in enumerate(groups):
        val = groups[(k + 1) % len(groups)]
        out.append((test, val, [p for p in people if p not in test and p not in val]))
    return out


def streamed(config: dict, model, standardize, data, test_ids: list[str], threshold: float, setting: dict, stream) -> dict:
    """Streaming F1 / delay / speed on the test sequences (OnlineDetector with window, hop, guard = `stream`)."""
    from miga.evaluation.metrics import detection_metrics
    from miga.track2.online import emitted_table, online_detector, run_stream

    window, hop, guard = stream
    tables, delays, frames, seconds = [], [], 0, 0.0
    for sample_id in test_ids:
        detector = online_detector(model, standardize, data.store.layout, config["track2"], threshold, setting,
                                   window=window, hop=hop, guard=guard)
        keypoints = data.store[sample_id]
        list(run_stream(detector, keypoints[0]))
        tables.append(emitted_table(sample_id, detector.emitted))
        delays += detector.stats.delays
        frames, seconds = frames + keypoints.shape[1], seconds + detector.stats.seconds
    scored = detection_metrics(data.segments.filter(pl.col("sample_id").is_in(test_ids)), pl.concat(tables),
                               num_classes=data.num_classes, iou_threshold=float(config["evaluate"]["iou_threshold"]))
    return {"stream_f1": scored["official"]["f1"], "stream_f1_one_to_one": scored["one_to_one"]["f1"],
            "stream_delay_mean": float(np.mean(delays)) if delays else None,
            "stream_delay_max": int(np.max(delays)) if delays else None, "stream_ms_per_frame": 1000 * seconds / frames}


def trained_detector(config: dict, fold_data, models: Path | None, key: dict):
    """(model, standardizer, training history) of `fit_detector` on the fold's train split; with `models`, kept there
    under a name from everything that decides the training (`key`, `config`'s track2 sections other than decode, and
    the code of `miga/`), and read back instead of training when present, so decode-only variants reuse the same
    detector and a code change trains afresh."""
    from miga.training import save_checkpoint
    from miga.track2.pipeline import detector_state, fit_detector, load_detector

    training = {k: v for k, v in config["track2"].items() if k != "decode"}
    name = hashlib.sha256(json.dumps([training, key, code_version()], sort_keys=True, default=str).encode()).hexdigest()[:16]
    path = models / f"{name}.pt" if models else None
    if path is not None and path.exists():
        model, standardize, _ = load_detector(config["track2"], fold_data.num_classes, path)
        return model, standardize, torch_load_history(path)
    with tempfile.TemporaryDirectory() as tmp:
        model, standardize, layout, history, _ = fit_detector(config, fold_data, checkpoint=Path(tmp) / "ckpt.pt")
    if path is not None:
        save_checkpoint(path, detector_state(model, standardize, layout, history))
    return model, standardize, history


def code_version() -> str:
    """A digest of every Python file of the `miga` package: trained detectors kept under `--models` are tied to it."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "miga").rglob("*.py")):
        digest.update(path.relative_to(REPO).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def torch_load_history(path: Path) -> list[dict]:
    from miga.training import read_torch_file

    return read_torch_file(path, "delete it").get("history", [])


def run_fold(config: dict, data, subject: dict[str, int], fold, stream=None, train_sequences: int | None = None,
             models: Path | None = None, refit: bool = False) -> dict:
    from benchmarks.real_sequences import few_train_sequences
    from miga.evaluation.metrics import detection_metrics
    from miga.track2.pipeline import compare_candidates

    test, val, train = fold
    split_of = {sid: "test" if who in test else "val" if who in val else "train" for sid, who in subject.items()}
    train_ids = few_train_sequences(subject, train, train_sequences)
    split_of = {sid: split for sid, split in split_of.items() if split != "train" or sid in train_ids}
    fold_data = data.with_splits(split_of)
    t0 = time.perf_counter()
    model, standardize, history = trained_detector(config, fold_data, models, {"set": str(data.store.name), "fold": fold,
                                                                                "train": sorted(train_ids)})
    train_s = time.perf_counter() - t0
    found = compare_candidates(config, model, standardize, fold_data, blend=True)  # what predict_track2 runs, blend always
    seconds = time.perf_counter() - t0
    test_ids, iou = found.test_ids, float(config["evaluate"]["iou_threshold"])
    test_truth = fold_data.segments.filter(pl.col("sample_id").is_in(test_ids))
    scored = {name: detection_metrics(test_truth, frame.filter(pl.col("sample_id").is_in(test_ids)), num_classes=fold_data.num_classes,
                                      iou_threshold=iou) for name, frame in found.detections.items()}
    detector, submitted = scored["detector"]["official"], scored[found.chosen]["official"]
    trials = trials_with_test_f1({**config, "track2": found.options}, found.detector_decode_at, fold_data.num_classes, found.trials,
                                 test_ids, test_truth)
    threshold, decoding = found.settings["detector"]["threshold"], found.settings["detector"]["decoding"]
    refitted = refit_test_f1(config, data, fold_data, found, test_truth, models, {"set": str(data.store.name), "fold": fold,
                                                                              "train": sorted(train_ids), "refit": True}) if refit else {}
    online = {}
    for k, setting in enumerate(stream or []):
        suffix = "" if k == 0 else f"_{'_'.join(map(str, setting))}"
        online.update({key + suffix: v for key, v in streamed(config, model, standardize, fold_data, test_ids, threshold, decoding, setting).items()})
    return {**online, **refitted, "test_people": test, "val_people": val, "threshold": threshold, "val_f1": found.val_f1["detector"],
            "decoding": decoding, "length_factor": found.settings["detector"]["length_factor"],
            "f1": detector["f1"], "precision": detector["precision"], "recall": detector["recall"],
            "f1_one_to_one": scored["detector"]["one_to_one"]["f1"], "train_s": train_s, "seconds": seconds,
            "window_logreg_f1": scored["window_logreg"]["official"]["f1"], "window_logreg_val_f1": found.val_f1["window_logreg"],
            "chosen": found.chosen, "switch_margin_f1": found.switch_margin_f1, "switch_win_rate": found.switch_win_rate,
            "blend_f1": scored["blend"]["official"]["f1"] if "blend" in scored else None, "blend_val_f1": found.val_f1.get("blend"),
            "selected_f1": submitted["f1"], "train_sequences": sorted(train_ids),
            "recall_by_length": detector["recall_by_length"], "selected_recall_by_length": submitted["recall_by_length"],
            "final_loss": history[-1].get("loss") if history else None, "trials": trials,
            "test_detections": found.detections["detector"].filter(pl.col("sample_id").is_in(test_ids)).to_dicts(),
            "test_truth": test_truth.to_dicts()}  # which gestures the detector splits, misses or invents


def refit_test_f1(config: dict, data, fold_data, found, test_truth: pl.DataFrame, models: Path | None, key: dict) -> dict:
    """The detector trained again on train + val (same recipe and seed), scoring test at the threshold and decoding the
    train-only detector was tuned to on val: what a refit would submit when the detector is chosen."""
    from miga.evaluation.metrics import detection_metrics
    from miga.track2.pipeline import detector_outputs

    pooled = data.with_splits({sid: "train" if split == "val" else split
                               for sid, split in fold_data.manifest.select("sample_id", "split").iter_rows()})
    model, standardize, _ = trained_detector(config, pooled, models, key)
    decode_at, _ = detector_outputs(config["track2"], model, standardize, fold_data, found.test_ids)
    detector = found.settings["detector"]
    scored = detection_metrics(test_truth, decode_at(detector["threshold"], **detector["decoding"]), num_classes=fold_data.num_classes,
                               iou_threshold=float(config["evaluate"]["iou_threshold"]))["official"]
    return {"refit_f1": scored["f1"], "refit_precision": scored["precision"], "refit_recall": scored["recall"],
            "refit_recall_by_length": scored["recall_by_length"]}


def trials_with_test_f1(config: dict, decode_at, num_classes: int, trials: list[dict], test_ids: list[str],
                        test_truth: pl.DataFrame) -> list[dict]:
    """The detector's val trials (threshold x decoding setting), each with the test F1 it would have given: a rule
    that chooses among val trials can then be checked without training again. `decode_at`: the detector's decoder
    that `compare_candidates` kept (`Candidates.detector_decode_at`, over val and test; the model does not run again)."""
    from miga.track2 import recipe as track2

    thresholds, grid = track2.decode_trials(config["track2"])
    test_decode = lambda t, **kw: decode_at(t, **kw).filter(pl.col("sample_id").is_in(test_ids))  # noqa: E731
    _, on_test = track2.tune_for_f1(test_decode, test_truth, thresholds, num_classes, float(config["evaluate"]["iou_threshold"]), grid)
    return [{**val, "test_f1": test["f1"], "test_f1_one_to_one": test["f1_one_to_one"]} for val, test in zip(trials, on_test)]


def summary(folds: list[dict], keys=("f1", "f1_one_to_one", "precision", "recall", "seconds")) -> dict:
    return {k: {"mean": float(np.mean([f[k] for f in folds])), "std": float(np.std([f[k] for f in folds], ddof=1)) if len(folds) > 1 else 0.0}
            for k in keys if all(f.get(k) is not None for f in folds)}


def lr_baseline(cache: Path, fold_ids: list[int], name: str = "utkinect", train_sequences: int | None = None) -> dict:
    """The sliding-window logistic regression of benchmarks/real_sequences.py (windows and stride per `LR`) on the same folds."""
    from benchmarks.real_sequences import run

    t0 = time.perf_counter()
    windows, stride = LR[name]
    result = run(cache, windows, stride, 0, 1.0, 1.0, name=name, train_sequences=train_sequences)
    folds = [f for k, f in enumerate(result["folds"]) if k in fold_ids]
    seconds = (time.perf_counter() - t0) / len(result["folds"])
    for f in folds:
        f["seconds"] = seconds
    return {"folds": folds, "summary": summary(folds, ("f1", "precision", "recall", "seconds"))}


def pooled_recall_by_length(folds: list[dict], key: str = "selected_recall_by_length") -> dict[str, dict]:
    """Recall per gesture-length bucket over all folds' test gestures (found / count)."""
    out: dict[str, dict] = {}
    for f in folds:
        for bucket, v in f[key].items():
            total = out.setdefault(bucket, {"num_gt": 0, "found": 0})
            total["num_gt"] += v["num_gt"]
            total["found"] += v["found"]
    return {b: {**v, "recall": v["found"] / v["num_gt"] if v["num_gt"] else None} for b, v in out.items()}


def length_line(name: str, buckets: dict[str, dict]) -> str:
    cells = " | ".join(f"{v['recall']:.3f} ({v['found']}/{v['num_gt']})" if v["num_gt"] else "n/a" for v in buckets.values())
    return f"| {name} | {cells} |"


def line(name: str, result: dict) -> str:
    s = result["summary"]
    per_fold = " ".join(f"{f['f1']:.3f}" for f in result["folds"])
    strict = f"{s['f1_one_to_one']['mean']:.3f} ± {s['f1_one_to_one']['std']:.3f}" if "f1_one_to_one" in s else "n/a"
    p, r = (f"{s[k]['mean']:.3f}" if k in s else "n/a" for k in ("precision", "recall"))
    return f"| {name} | {s['f1']['mean']:.3f} ± {s['f1']['std']:.3f} | {strict} | {p} | {r} | {per_fold} | {s['seconds']['mean']:.0f} |"


def _as(result: dict, key: str) -> dict:
    """`result` with `key` (a per-fold test F1) as its F1 column, for `line` (P, R, one-to-one: n/a)."""
    folds = [dict(f, f1=f[key]) for f in result["folds"]]
    summary = {"f1": result["summary"][key], "seconds": result["summary"]["seconds"]}
    return {"folds": folds, "summary": summary}


def _stream_suffixes(settings) -> list[tuple[list[int], str]]:
    return [(setting, "" if k == 0 else f"_{'_'.join(map(str, setting))}") for k, setting in enumerate(settings or [])]


def _folds_then_variants(folds: list[str], variants: list[str] | None, parser: argparse.ArgumentParser) -> tuple[list[int], list[str]]:
    """`--folds 4 '{...}'`: argparse gives the JSON to --folds; the numbers are folds, what follows them is a variant."""
    numbers = [f for f in folds if f.lstrip("-").isdigit()]
    if folds[: len(numbers)] != numbers:
        parser.error(f"--folds takes fold numbers, then JSON variants: got {folds}")
    return [int(f) for f in numbers], (variants or []) + folds[len(numbers):] or ["{}"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=None,
                        help="JSON objects of track2 overrides, nested as the section ('{\"model\": {\"layers\": 4}}'), after --base")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--set", dest="name", choices=sorted(BASE), default="utkinect")
    parser.add_argument("--base", default=None, help="JSON track2 overrides applied first, nested likewise (default: the set's BASE)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--folds", nargs="+", default=["0", "1", "2", "3", "4"],
                        help="fold numbers (0-based); JSON variants may follow them")
    parser.add_argument("--stream", type=int, nargs=3, metavar=("WINDOW", "HOP", "GUARD"), action="append", default=None,
                        help="also stream the test sequences through miga online's detector (repeatable: several settings)")
    parser.add_argument("--no-lr", action="store_true", help="skip the logistic-regression baseline")
    parser.add_argument("--train-sequences", type=int, default=None,
                        help="train every method on only this many of the fold's training sequences (one per person in turn)")
    parser.add_argument("--out", type=Path, default=None, help="default: CACHE/real_track2.json (appended)")
    parser.add_argument("--refit", action="store_true",
                        help="also train the detector again on train + val and score test at the val-tuned decoding")
    parser.add_argument("--models", type=Path, default=None,
                        help="keep each fold's trained detector here and reuse it when the training settings repeat")
    a = parser.parse_args(argv)
    a.folds, a.variants = _folds_then_variants(a.folds, a.variants, parser)
    from miga.params import merged, validated

    config = yaml.safe_load(a.params.read_text())
    base = json.loads(a.base) if a.base else BASE[a.name]
    config = merged(config, {"track2": base})
    data, subject = load_data(a.cache, a.name)
    folds = [f for k, f in enumerate(folds_of(subject, a.name)) if k in a.folds]
    out = a.out or a.cache / ("real_track2.json" if a.name == "utkinect" else f"real_track2_{a.name}.json")
    saved = json.loads(out.read_text()) if out.exists() else []
    rows = ["| variant | F1 (official) | F1 (one-to-one) | P | R | per-fold F1 | s / fold |", "|---|---|---|---|---|---|---|"]
    if not a.no_lr:
        result = lr_baseline(a.cache, a.folds, a.name, a.train_sequences)
        rows.append(line("window logistic regression (baselines)", result))
        print(rows[-1], flush=True)
        saved.append({"variant": "lr_baseline", "date": time.strftime("%Y-%m-%d"), **result})
    for variant in a.variants:
        options = validated(merged(config, {"track2": json.loads(variant)}), a.params)  # every key, the schema's defaults filled in
        results = []
        for fold in folds:
            results.append(run_fold(options, data, subject, fold, a.stream, a.train_sequences, a.models, a.refit))
            f = results[-1]
            online = "".join(f"; streaming {setting}: F1 {f['stream_f1' + sfx]:.3f} delay mean {f['stream_delay_mean' + sfx]:.1f} "
                             f"max {f['stream_delay_max' + sfx]} ({f['stream_ms_per_frame' + sfx]:.2f} ms/frame)"
                             for setting, sfx in _stream_suffixes(a.stream))
            print(f"  {variant} test {f['test_people']}: val F1 {f['val_f1']:.3f} @ {f['threshold']} {f['decoding']}, test F1 {f['f1']:.3f} "
                  f"(P {f['precision']:.3f}, R {f['recall']:.3f}), 1:1 {f['f1_one_to_one']:.3f}, {f['seconds']:.0f} s{online}; "
                  f"window_logreg val F1 {f['window_logreg_val_f1']:.3f}, test F1 {f['window_logreg_f1']:.3f}; "
                  + (f"blend val F1 {f['blend_val_f1']:.3f}, test F1 {f['blend_f1']:.3f}; " if f["blend_f1"] is not None else "") +
                  f"chosen {f['chosen']} (val margin {f['switch_margin_f1']:.3f}"
                  + ("" if f["switch_win_rate"] is None else f", win rate {f['switch_win_rate']:.2f}") + f"): test F1 {f['selected_f1']:.3f}"
                  + (f"; refit on train + val: test F1 {f['refit_f1']:.3f} (P {f['refit_precision']:.3f}, R {f['refit_recall']:.3f})"
                     if a.refit else ""), flush=True)
        keys = ("f1", "f1_one_to_one", "precision", "recall", "seconds", "window_logreg_f1", "blend_f1", "selected_f1", "refit_f1")
        for _, sfx in _stream_suffixes(a.stream):
            keys += tuple(k + sfx for k in ("stream_f1", "stream_f1_one_to_one", "stream_delay_mean", "stream_ms_per_frame"))
        result = {"folds": results, "summary": summary(results, keys), "stream": a.stream, "train_sequences": a.train_sequences,
                  "recall_by_length": pooled_recall_by_length(results, "recall_by_length"),
                  "selected_recall_by_length": pooled_recall_by_length(results)}
        for setting, sfx in _stream_suffixes(a.stream):
            s = result["summary"]
            print(f"  streaming (window, hop, guard {setting}): F1 {s['stream_f1' + sfx]['mean']:.3f} ± {s['stream_f1' + sfx]['std']:.3f} "
                  f"against offline {s['f1']['mean']:.3f}; delay {s['stream_delay_mean' + sfx]['mean']:.1f} frames; "
                  f"{s['stream_ms_per_frame' + sfx]['mean']:.2f} ms/frame", flush=True)
        rows.append(line(variant, result))
        rows.append(line(f"{variant}: window_logreg candidate", _as(result, "window_logreg_f1")))
        if "blend_f1" in result["summary"]:
            rows.append(line(f"{variant}: blend candidate", _as(result, "blend_f1")))
        if "refit_f1" in result["summary"]:
            rows.append(line(f"{variant}: detector refit on train + val", _as(result, "refit_f1")))
            result["refit_recall_by_length"] = pooled_recall_by_length(results, "refit_recall_by_length")
        rows.append(line(f"{variant}: chosen on val ({', '.join(f['chosen'] for f in results)})", _as(result, "selected_f1")))
        print("\n".join(rows[-4:]), flush=True)
        buckets = result["selected_recall_by_length"]
        print(f"| recall by gesture length (frames) | {' | '.join(buckets)} |\n|---|{'---|' * len(buckets)}\n"
              + length_line(f"{variant}: detector", result["recall_by_length"]) + "\n"
              + length_line(f"{variant}: chosen on val", buckets), flush=True)
        saved.append({"variant": variant, "set": a.name, "base": base, "date": time.strftime("%Y-%m-%d"), **result})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(saved, indent=2))
    print("\n".join(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
