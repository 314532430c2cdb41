"""miga's Track 1 streams and their fusion on the real dev sets, next to the pooled-statistics baselines.

Same folds as `benchmarks/real_clips.py`:
- biisc_dev: person-disjoint 5-fold CV (3 test people per fold); of the other 12 people the next
  fold's 3 are val (stream weights, nothing else), the 9 left train the streams. The baselines are
  fitted on all 12 (train + val): they get more data than the models.
- ground_guide: leave-one-person-out (5 folds); val = the next person, the other 3 train.

The streams are built, trained and fused by the library the Track 1 stage uses
(`miga.track1.recipe`: `clip_dataset`, `build_stream`, `make_loss`, `miga.training.fit`,
`view_averaged_probabilities`, `tune_stream_weights`), with the `skeleton` / `model` / `train`
sections of params.yaml unless overridden here.

    python -m benchmarks.real_clips --extract-only --workers 2      # biisc_dev poses once (cached in /tmp/miga_real)
    OMP_NUM_THREADS=2 python -m benchmarks.real_track1 --set biisc_dev --streams joint bone
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from benchmarks.real_clips import CACHE, GROUND_GUIDE, _summary
from miga.baselines import clip_baseline_metrics, fit_clip_baselines, pooled_features
from miga.params import validated
from miga.track1 import recipe
from miga.training import TrainConfig, fit, seed_everything

REPO = Path(__file__).resolve().parents[1]


class MemoryStore(dict):
    """Keypoints `(1, T, V, 3)` by sample id, with the `.layout` a KeypointStore has."""

    def __init__(self, clips: dict, layout: str):
        super().__init__(clips)
        self.layout = layout


def biisc_clips(cache: Path, layout: str) -> tuple[MemoryStore, np.ndarray, np.ndarray, list[str], list[list[str]]]:
    from miga.pose.mediapipe_backend import to_layout

    combined = cache / "biisc_dev_mediapipe.npz"
    if not combined.exists():
        raise SystemExit(f"{combined}: not found; run `python -m benchmarks.real_clips --extract-only` first")
    data = np.load(combined)
    names = [str(n) for n in data["names"]]
    parts = [n.split("_") for n in names]
    actions = sorted({p[2] for p in parts})
    store = MemoryStore({n: to_layout(data[f"raw_{n}"], layout)[None] for n in names}, layout)
    labels = np.array([actions.index(p[2]) for p in parts])
    groups = np.array([p[0] for p in parts])
    people = sorted(set(groups))
    return store, labels, groups, actions, [people[i: i + 3] for i in range(0, len(people), 3)]


def ground_guide_clips() -> tuple[MemoryStore, np.ndarray, np.ndarray, list[str], list[list[str]]]:
    from miga.datasets import ground_guide as gg

    clips, labels, groups = {}, [], []
    for rec in gg.load(GROUND_GUIDE):
        for start, end, label in gg.segments(rec.labels):
            clips[f"{rec.name}_{start}"] = rec.keypoints[:, start: end + 1]
            labels.append(label)
            groups.append(rec.person)
    people = sorted(set(groups))
    return MemoryStore(clips, gg.LAYOUT), np.array(labels), np.array(groups), list(gg.CLASSES), [[p] for p in people]


def train_stream(stream: str, store: MemoryStore, ids: list[str], labels: np.ndarray, eval_ids: list[str],
                 params: dict, num_classes: int, options: TrainConfig, workdir: Path) -> np.ndarray:
    """Train one stream on `ids`, return its view-averaged probabilities on `eval_ids`."""
    seed_everything(options.seed)
    inputs = recipe.StreamInputs(recipe.pose_channels(params["heatmap"]), num_classes, store.layout)
    model = recipe.build_stream(stream, params["model"], inputs, params["skeleton"])
    data = recipe.clip_dataset(stream, ids, labels, params["heatmap"], train=True, seed=options.seed, store=store,
                               skeleton=params["skeleton"])
    fit(model, data, config=options, loss_fn=recipe.make_loss(params["model"]), checkpoint=workdir / f"{stream}.pt",
        run_id=stream, description=stream)
    evaluated = recipe.clip_dataset(stream, eval_ids, np.zeros(len(eval_ids), int), params["heatmap"], train=False, seed=0,
                                    store=store, skeleton=params["skeleton"])
    return recipe.view_averaged_probabilities(model, evaluated)


def run_fold(store, features, labels, groups, held, val_people, streams, params, num_classes, train_params) -> dict:
    """One fold: baselines on `features` (pooled statistics, one row per clip of `store`), then each stream, then fusion."""
    ids = np.array(list(store))
    test = np.isin(groups, held)
    val = np.isin(groups, val_people)
    train = ~test & ~val
    models = fit_clip_baselines(features[~test], labels[~test], seed=int(train_params["seed"]))
    row = clip_baseline_metrics(models, features[test], labels[test], labels[~test])
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stream in streams:
            start = time.perf_counter()
            probs = train_stream(stream, store, list(ids[train]), labels[train], list(ids[val | test]), params, num_classes,
                                 recipe.train_config(stream, train_params), Path(tmp))
            scores[stream] = probs
            row[f"seconds_{stream}"] = time.perf_counter() - start
    in_val = val[val | test]
    for stream, probs in scores.items():
        row[stream] = float((probs[~in_val].argmax(1) == labels[test]).mean())
        row[f"val_{stream}"] = float((probs[in_val].argmax(1) == labels[val]).mean())
    weights, _ = recipe.tune_stream_weights({s: p[in_val] for s, p in scores.items()}, labels[val])
    fused = recipe.weighted_fusion({s: p[~in_val] for s, p in scores.items()}, weights)
    row["fused"] = float((fused.argmax(1) == labels[test]).mean())
    row["fusion_weights"] = weights
    row["equal_weights"] = float((recipe.weighted_fusion({s: p[~in_val] for s, p in scores.items()},
                                                         {s: 1.0 for s in scores}).argmax(1) == labels[test]).mean())
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("biisc_dev", "ground_guide"), default="biisc_dev")
    parser.add_argument("--streams", nargs="+", default=["joint", "bone"])
    parser.add_argument("--layout", default="openpose25_hands42", help="biisc_dev keypoint layout (from the raw MediaPipe points)")
    parser.add_argument("--skeleton-layout", default=None, help="skeleton.layout (default: the keypoint layout)")
    parser.add_argument("--epochs", type=int, default=None, help="train.epochs (a stream's train.per_stream entry wins)")
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--folds", type=int, nargs="*", default=None, help="only these fold numbers")
    parser.add_argument("--set-param", nargs="*", default=[], help="section.key=value overrides (YAML values)")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--out", type=Path, default=None)
    a = parser.parse_args(argv)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if a.set == "biisc_dev":
        store, labels, groups, classes, folds = biisc_clips(a.cache, a.layout)
    else:
        store, labels, groups, classes, folds = ground_guide_clips()
    params.setdefault("skeleton", {})["layout"] = a.skeleton_layout
    for item in a.set_param:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        params.setdefault(section, {})[name] = yaml.safe_load(value)
    if a.epochs is not None:
        params.setdefault("train", {})["epochs"] = a.epochs
    if a.lr is not None:
        params.setdefault("train", {})["lr"] = a.lr
    params = validated(params)  # every key, the schema's defaults filled in
    train = dict(params["train"])
    features = np.stack([pooled_features(store[i], store.layout) for i in store])  # once for every fold
    rows = []
    started = time.perf_counter()
    for index, held in enumerate(folds):
        if a.folds and index not in a.folds:
            continue
        val_people = folds[(index + 1) % len(folds)]
        row = run_fold(store, features, labels, groups, held, val_people, a.streams, params, len(classes), train)
        row["held_out"] = held
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    metrics = ["logreg", "1nn", "5nn", "majority_class_rate", *a.streams, "fused", "equal_weights"]
    summary = _summary(rows, metrics)
    print(f"{a.set}: {len(rows)} folds, streams {a.streams}, layout {store.layout} -> {params['skeleton']['layout'] or store.layout}, "
          f"epochs {train['epochs']} (train.per_stream: {train['per_stream']}), {time.perf_counter() - started:.0f} s")
    for name in metrics:
        s = summary[name]
        print(f"  {name:>20}: {s['mean']:.3f} +- {s['std']:.3f} ({s['min']:.2f}-{s['max']:.2f})")
    out = a.out or a.cache / f"track1_models_{a.set}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"folds": rows, "summary": summary, "streams": a.streams, "layout": store.layout,
                               "skeleton": params["skeleton"], "model": params["model"], "train": train}, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
