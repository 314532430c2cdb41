"""miga's Track 2 detectors on UTKinect-Action3D, leave-two-people-out 5-fold CV, next to the baselines.

The same folds as `benchmarks/real_sequences.py` (fold k tests people 2k+1, 2k+2; the next fold's
two people are its validation people; the other 6 train). Each variant is a JSON object of `track2`
overrides on the repo's params.yaml (after `--base`, the UTKinect settings). Per fold it runs exactly
what the Track 2 stages run: `miga.track2.project.fit_detector` (train split), `tuned_detections`
(score threshold tuned on the val people for F1, official rule), then the test people are scored
with `miga.evaluation.metrics.detection_metrics` at `evaluate.iou_threshold` (official rule and
one-to-one). The sliding-window logistic regression (`benchmarks.real_sequences.run`) runs on the
same folds unless `--no-lr`; miga's window baseline is the variant '{"detector": "window"}'.

    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 '{}' '{"detector": "window"}' '{"detector": "frame"}'
    OMP_NUM_THREADS=1 python -m benchmarks.real_track2 --no-lr --folds 0 1 '{"epochs": 20}'   # quick look

Results -> --out (default /tmp/miga_real/real_track2.json), one entry per variant, appended.
"""

from __future__ import annotations

import argparse
import copy
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
BASE = {"dataset": "utkinect", "window": 128, "min_length": 4}  # UTKinect's sequences are 525-1282 rows, segments 5-110


def _source() -> Path:
    for root in (REPO.parent / "shared", Path("/work/shared")):
        if (root / "realdata/sequences/utkinect").exists():
            return root / "realdata/sequences/utkinect"
    raise SystemExit("UTKinect not found under ../shared/realdata/sequences/utkinect")


class MemoryStore(dict):
    """{sample_id: (M, T, V, 3)} with the `layout` a KeypointStore has."""

    def __init__(self, items, layout: str):
        super().__init__(items)
        self.layout = layout


def load_data(cache: Path):
    """(Track2Data over all 20 sequences, subject by sample id)."""
    from miga.datasets import stream, utkinect
    from miga.track2.project import Track2Data

    root = cache / "utkinect_stream"
    if not (root / "dataset.yaml").exists():
        utkinect.convert(_source(), root)
    manifest, segments = stream.scan(root)
    meta = stream.read_meta(root)
    store = MemoryStore({k: v[1] for k, v in stream.provided_keypoints(root, manifest).items()}, meta["layout"])
    data = Track2Data.from_tables(list(meta["classes"]), manifest, segments, store)
    return data, dict(manifest.select("sample_id", "subject").iter_rows())


def folds_of(subject: dict[str, int]) -> list[tuple[list[int], list[int], list[int]]]:
    """(test people, val people, train people) of each fold, as in benchmarks/real_sequences.py."""
    people = sorted(set(subject.values()))
    groups = [people[i: i + 2] for i in range(0, len(people), 2)]
    out = []
    for k, test in enumerate(groups):
        val = groups[(k + 1) % len(groups)]
        out.append((test, val, [p for p in people if p not in test and p not in val]))
    return out


def run_fold(config: dict, data, subject: dict[str, int], fold) -> dict:
    from miga.evaluation.metrics import detection_metrics
    from miga.track2.project import fit_detector, tuned_detections
    from miga.track2.recipe import best_trial

    test, val, train = fold
    split_of = {sid: "test" if who in test else "val" if who in val else "train" for sid, who in subject.items()}
    fold_data = data.with_splits(split_of)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        model, standardize, _, history, _ = fit_detector(config, fold_data, checkpoint=Path(tmp) / "ckpt.pt")
    train_s = time.perf_counter() - t0
    detections, threshold, trials, _, test_ids = tuned_detections(config, model, standardize, fold_data)
    seconds = time.perf_counter() - t0
    iou = float(config["evaluate"]["iou_threshold"])
    scored = detection_metrics(fold_data.segments.filter(pl.col("sample_id").is_in(test_ids)),
                               detections.filter(pl.col("sample_id").is_in(test_ids)), num_classes=fold_data.num_classes, iou_threshold=iou)
    best = best_trial(trials) if trials else {"f1": None}
    return {"test_people": test, "val_people": val, "threshold": threshold, "val_f1": best["f1"],
            "decoding": {k: best[k] for k in ("smooth", "min_length") if k in best},
            "f1": scored["official"]["f1"], "precision": scored["official"]["precision"], "recall": scored["official"]["recall"],
            "f1_one_to_one": scored["one_to_one"]["f1"], "train_s": train_s, "seconds": seconds,
            "final_loss": history[-1].get("loss") if history else None}


def summary(folds: list[dict], keys=("f1", "f1_one_to_one", "precision", "recall", "seconds")) -> dict:
    return {k: {"mean": float(np.mean([f[k] for f in folds])), "std": float(np.std([f[k] for f in folds], ddof=1)) if len(folds) > 1 else 0.0}
            for k in keys if all(f.get(k) is not None for f in folds)}


def lr_baseline(cache: Path, fold_ids: list[int]) -> dict:
    """The sliding-window logistic regression of benchmarks/real_sequences.py (its defaults) on the same folds."""
    from benchmarks.real_sequences import run

    t0 = time.perf_counter()
    result = run(cache, [8, 12, 16, 24], 2, 0, 1.0, 1.0)
    folds = [f for k, f in enumerate(result["folds"]) if k in fold_ids]
    seconds = (time.perf_counter() - t0) / len(result["folds"])
    for f in folds:
        f["seconds"] = seconds
    return {"folds": folds, "summary": summary(folds, ("f1", "precision", "recall", "seconds"))}


def line(name: str, result: dict) -> str:
    s = result["summary"]
    per_fold = " ".join(f"{f['f1']:.3f}" for f in result["folds"])
    strict = f"{s['f1_one_to_one']['mean']:.3f} ± {s['f1_one_to_one']['std']:.3f}" if "f1_one_to_one" in s else "n/a"
    return (f"| {name} | {s['f1']['mean']:.3f} ± {s['f1']['std']:.3f} | {strict} | {s['precision']['mean']:.3f} | "
            f"{s['recall']['mean']:.3f} | {per_fold} | {s['seconds']['mean']:.0f} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", default=["{}"], help="JSON objects of track2 overrides (after --base)")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--base", default=json.dumps(BASE), help="JSON track2 overrides for UTKinect, applied first")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--no-lr", action="store_true", help="skip the logistic-regression baseline")
    parser.add_argument("--out", type=Path, default=None, help="default: CACHE/real_track2.json (appended)")
    a = parser.parse_args(argv)
    config = yaml.safe_load(a.params.read_text())
    config["track2"].update(json.loads(a.base))
    data, subject = load_data(a.cache)
    folds = [f for k, f in enumerate(folds_of(subject)) if k in a.folds]
    out = a.out or a.cache / "real_track2.json"
    saved = json.loads(out.read_text()) if out.exists() else []
    rows = ["| variant | F1 (official) | F1 (one-to-one) | P | R | per-fold F1 | s / fold |", "|---|---|---|---|---|---|---|"]
    if not a.no_lr:
        result = lr_baseline(a.cache, a.folds)
        rows.append(line("window logistic regression (baselines)", result))
        print(rows[-1], flush=True)
        saved.append({"variant": "lr_baseline", "date": time.strftime("%Y-%m-%d"), **result})
    for variant in a.variants:
        options = copy.deepcopy(config)
        options["track2"].update(json.loads(variant))
        results = []
        for fold in folds:
            results.append(run_fold(options, data, subject, fold))
            f = results[-1]
            print(f"  {variant} test {f['test_people']}: val F1 {f['val_f1']:.3f} @ {f['threshold']} {f['decoding']}, test F1 {f['f1']:.3f} "
                  f"(P {f['precision']:.3f}, R {f['recall']:.3f}), 1:1 {f['f1_one_to_one']:.3f}, {f['seconds']:.0f} s", flush=True)
        result = {"folds": results, "summary": summary(results)}
        rows.append(line(variant, result))
        print(rows[-1], flush=True)
        saved.append({"variant": variant, "base": json.loads(a.base), "date": time.strftime("%Y-%m-%d"), **result})
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(saved, indent=2))
    print("\n".join(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
