"""Track 2 sliding-window logistic-regression baseline on the real sequence sets.

`--set utkinect` (default): UTKinect-Action3D (../shared/realdata/sequences/utkinect, real Kinect v1
skeletons), converted once with `miga.datasets.utkinect.convert` into a stream-format dataset under
--cache (default /tmp/miga_real/utkinect_stream, never inside the repo). 10 people x 2 sequences, 10 actions.
`--set ground_guide`: the Ground Guide recordings as continuous sequences
(`miga.datasets.ground_guide.convert_stream`: 12 sequences of 5 people, 10 signals, standby is background).

Protocol: people in groups (UTKinect: 2 people, 5 folds; ground_guide: 1 person, 5 folds); fold k tests
group k, the next group (cyclically) is the validation people: the window
classifier is trained on the other people, the decoding (score threshold, probability smoothing width, shortest kept segment; with several
--windows also the window length) is the one with the best validation F1, and the test F1 uses the official
Track 2 rule (same class and temporal IoU > 0.3; precision = found / predictions, recall =
found / ground truth; `miga.evaluation.metrics.instance_f1`).

    python -m benchmarks.real_sequences                  # table + /tmp/miga_real/track2_baselines.json
    python -m benchmarks.real_sequences --windows 12 --smooths 1 --min-windows 1   # no decoding search
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from miga.evaluation.metrics import instance_f1

from benchmarks.realdata import REALDATA, require

REPO = Path(__file__).resolve().parents[1]
SEQUENCES = REALDATA / "sequences"
CACHE = Path("/tmp/miga_real")
GROUP = {"utkinect": 2, "ground_guide": 1}  # people per fold


def stream_root(cache: Path, name: str = "utkinect") -> Path:
    """The set `name` as a stream-format dataset under `cache` (converted on first use)."""
    from miga.datasets import ground_guide, utkinect

    convert = {"utkinect": utkinect.convert, "ground_guide": ground_guide.convert_stream}[name]
    root = cache / f"{name}_stream"
    if not (root / "dataset.yaml").exists():
        convert(require(SEQUENCES / name), root)
    return root


def person_groups(subject: dict[str, int], name: str = "utkinect") -> list[list[int]]:
    people = sorted(set(subject.values()))
    return [people[i: i + GROUP[name]] for i in range(0, len(people), GROUP[name])]


def few_train_sequences(subject: dict[str, int], train_people: list[int], count: int | None) -> set[str]:
    """The training sequences of a fold, or only `count` of them (one per person in turn, in sorted order):
    the "few annotated sequences" protocol of issue 29, the same choice for every method."""
    per_person = [sorted(s for s, who in subject.items() if who == p) for p in sorted(train_people)]
    ids = [seq[k] for k in range(max(map(len, per_person), default=0)) for seq in per_person if k < len(seq)]
    return set(ids if count is None else ids[:count])


def load(cache: Path, name: str = "utkinect"):
    """(keypoints {id: (1, T, V, 3)}, segments {id: [(start, end, label)]}, subject {id: int}, classes, layout)."""
    from miga.datasets import stream

    root = stream_root(cache, name)
    manifest, segments = stream.scan(root)
    meta = stream.read_meta(root)
    keypoints = {k: v[1] for k, v in stream.provided_keypoints(root, manifest).items()}
    subject = dict(manifest.select("sample_id", "subject").iter_rows())
    segs: dict[str, list] = {k: [] for k in keypoints}
    for sample_id, label, start, end in segments.select("sample_id", "label", "start_frame", "end_frame").iter_rows():
        segs[sample_id].append((int(start), int(end), int(label)))
    return keypoints, segs, subject, list(meta["classes"]), meta["layout"]


def run(cache: Path, windows: list[int], stride: int, seed: int, C: float, background_weight: float,
        smooths=(1, 5, 9, 15, 21), min_windows=(1, 2, 4, 6, 8), name: str = "utkinect", train_sequences: int | None = None) -> dict:
    from miga import baselines as bl

    keypoints, segs, subject, classes, layout = load(cache, name)
    feats = {w: {k: bl.window_features(v, layout, window=w, stride=stride) for k, v in keypoints.items()} for w in windows}
    people = sorted(set(subject.values()))
    groups = person_groups(subject, name)
    folds = []
    for k, test_people in enumerate(groups):
        val_people = groups[(k + 1) % len(groups)]
        pick = lambda d, who: {s: v for s, v in d.items() if subject[s] in who}
        train_people = [p for p in people if p not in test_people and p not in val_people]
        train_ids = few_train_sequences(subject, train_people, train_sequences)
        best = None
        for w in windows:
            train_feats = {s: v for s, v in pick(feats[w], train_people).items() if s in train_ids}
            model = bl.fit_window_baseline(train_feats, segs, window=w, stride=stride, seed=seed, C=C,
                                           background_weight=background_weight)
            threshold, val_f1 = bl.tune_threshold(model, pick(feats[w], val_people), pick(segs, val_people),
                                                  smooths=smooths, min_windows=min_windows)
            if best is None or val_f1 > best[2] + 1e-12:
                best = (w, model, val_f1)
        w, model, val_f1 = best
        test = instance_f1(bl.window_baseline_detections(pick(feats[w], test_people), model), pick(segs, test_people))
        pooled = {**{s: v for s, v in pick(feats[w], train_people).items() if s in train_ids}, **pick(feats[w], val_people)}
        refit = dataclasses.replace(bl.fit_window_baseline(pooled, segs, window=w, stride=stride, seed=seed, C=C,
                                                           background_weight=background_weight),
                                    threshold=model.threshold, smooth=model.smooth, min_windows=model.min_windows)
        refit_f1 = instance_f1(bl.window_baseline_detections(pick(feats[w], test_people), refit), pick(segs, test_people))["f1"]
        folds.append({"test_people": test_people, "val_people": val_people, "train_people": train_people,
                      "train_sequences": sorted(train_ids), "window": w,
                      "threshold": model.threshold, "smooth": model.smooth, "min_windows": model.min_windows, "val_f1": val_f1, **test,
                      "refit_f1": refit_f1})  # refit on train + val at the window and decoding val chose
    f1 = np.array([f["f1"] for f in folds])
    summary = {key: {"mean": float(np.mean([f[key] for f in folds])), "std": float(np.std([f[key] for f in folds], ddof=1)),
                     "min": float(np.min([f[key] for f in folds])), "max": float(np.max([f[key] for f in folds]))}
               for key in ("f1", "precision", "recall", "refit_f1")}
    found = sum(f["found"] for f in folds)
    n_pred = sum(f["predictions"] for f in folds)
    n_true = sum(f["truth"] for f in folds)
    p, r = found / max(n_pred, 1), found / max(n_true, 1)
    summary["pooled"] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}
    return {
        "data": f"{name} as a stream dataset ({stream_root.__module__}.stream_root), layout {layout}",
        "classes": classes, "sequences": len(keypoints), "segments": sum(len(v) for v in segs.values()),
        "protocol": f"leave-{GROUP[name]}-people-out CV; val = the next fold's people; train = the others",
        "windows": windows, "stride": stride, "smooths": list(smooths), "min_windows": list(min_windows), "seed": seed, "C": C, "background_weight": background_weight,
        "rule": "same class and temporal IoU (min(ends)-max(starts))/(max(ends)-min(starts)) > 0.3",
        "folds": folds, "summary": {k: v for k, v in summary.items()}, "f1_values": f1.tolist(),
    }


def markdown(result: dict) -> str:
    lines = ["| test people | val people | window | threshold / smooth / min windows | val F1 | test P | test R | test F1 | found / pred / truth | test F1, refit on train + val |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for f in result["folds"]:
        lines.append(f"| {f['test_people']} | {f['val_people']} | {f['window']} | {f['threshold']:.2f} / {f['smooth']} / {f['min_windows']} | {f['val_f1']:.3f} | "
                     f"{f['precision']:.3f} | {f['recall']:.3f} | {f['f1']:.3f} | {f['found']} / {f['predictions']} / {f['truth']} | {f['refit_f1']:.3f} |")
    s = result["summary"]
    lines.append(f"| **mean +- std** | | | | | {s['precision']['mean']:.3f} +- {s['precision']['std']:.3f} | "
                 f"{s['recall']['mean']:.3f} +- {s['recall']['std']:.3f} | {s['f1']['mean']:.3f} +- {s['f1']['std']:.3f} | | {s['refit_f1']['mean']:.3f} +- {s['refit_f1']['std']:.3f} |")
    lines.append(f"| pooled over folds | | | | | {s['pooled']['precision']:.3f} | {s['pooled']['recall']:.3f} | {s['pooled']['f1']:.3f} | | |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--set", dest="name", choices=sorted(GROUP), default="utkinect")
    parser.add_argument("--windows", type=int, nargs="+", default=[8, 12, 16, 24], help="window lengths (frames); several: chosen on val per fold")
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--background-weight", type=float, default=1.0)
    parser.add_argument("--smooths", type=int, nargs="+", default=[1, 5, 9, 15, 21], help="probability smoothing widths (windows) tried on val")
    parser.add_argument("--min-windows", type=int, nargs="+", default=[1, 2, 4, 6, 8], help="shortest kept segments (windows) tried on val")
    parser.add_argument("--out", type=Path, default=None, help="default: CACHE/track2_baselines.json")
    a = parser.parse_args(argv)
    t0 = time.perf_counter()
    result = run(a.cache, a.windows, a.stride, a.seed, a.C, a.background_weight, a.smooths, a.min_windows, a.name)
    result["seconds"] = time.perf_counter() - t0
    print(markdown(result))
    out = a.out or a.cache / ("track2_baselines.json" if a.name == "utkinect" else f"track2_baselines_{a.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out} ({result['seconds']:.0f}s)")


if __name__ == "__main__":
    main()
