"""miga's Track 1 streams and their fusion on the real dev sets, next to the pooled-statistics baselines.

Same folds as `benchmarks/real_clips.py`:
- biisc_dev: person-disjoint 5-fold CV (3 test people per fold); of the other 12 people the next
  fold's 3 are val (stream weights, nothing else), the 9 left train the streams. The baselines are
  fitted on all 12 (train + val): they get more data than the models.
- ground_guide: leave-one-person-out (5 folds); val = the next person, the other 3 train.

Each fold is a `miga.track1.pipeline.Track1Data` over the set's clips (`miga.io.InMemoryKeypoints`,
the fold's splits in its manifest), and the streams are trained, scored and fused by what the Track 1
stage calls: `train_stream` (each stream's `train.per_stream` recipe over `train`), `stream_scores`
(every test view averaged) and `stream_weights` (`model.stream_weights`: val-tuned by default), with
params.yaml's `track1` sections unless overridden here (`--streams` is `track1.model.streams`, late
fusion). Streams read keypoints only (no RGB).

    python -m benchmarks.real_clips --extract-only --workers 2      # biisc_dev poses once (cached in /tmp/miga_real)
    OMP_NUM_THREADS=2 python -m benchmarks.real_track1 --set biisc_dev --streams joint bone
    OMP_NUM_THREADS=1 python -m benchmarks.real_track1 --set ground_guide --streams tcn --folds 0 --set-param train.per_stream.tcn.epochs=5
    OMP_NUM_THREADS=1 python -m benchmarks.real_track1 --streams tcn tcn_bone --set-param train.seed=1 --scores-dir /tmp/biisc_seeds/s1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from benchmarks.real_clips import CACHE, GROUND_GUIDE, _summary
from benchmarks.realdata import require
from miga.baselines import clip_baseline_metrics, fit_clip_baselines, pooled_features
from miga.io import InMemoryKeypoints, atomic_path
from miga.params import merged, validated
from miga.track1 import pipeline, recipe
from miga.track1.pipeline import Track1Data

REPO = Path(__file__).resolve().parents[1]


def biisc_clips(cache: Path, layout: str) -> tuple[InMemoryKeypoints, np.ndarray, np.ndarray, list[str], list[list[str]]]:
    from miga.pose.mediapipe_backend import to_layout

    combined = cache / "biisc_dev_mediapipe.npz"
    if not combined.exists():
        raise SystemExit(f"{combined}: not found; run `python -m benchmarks.real_clips --extract-only` first")
    data = np.load(combined)
    names = [str(n) for n in data["names"]]
    parts = [n.split("_") for n in names]
    actions = sorted({p[2] for p in parts})
    store = InMemoryKeypoints({n: to_layout(data[f"raw_{n}"], layout)[None] for n in names}, layout, name=str(combined))
    labels = np.array([actions.index(p[2]) for p in parts])
    groups = np.array([p[0] for p in parts])
    people = sorted(set(groups))
    return store, labels, groups, actions, [people[i: i + 3] for i in range(0, len(people), 3)]


def ground_guide_clips() -> tuple[InMemoryKeypoints, np.ndarray, np.ndarray, list[str], list[list[str]]]:
    from miga.datasets import ground_guide as gg

    clips, labels, groups = {}, [], []
    for rec in gg.load(require(GROUND_GUIDE)):
        for start, end, label in gg.segments(rec.labels):
            clips[f"{rec.name}_{start}"] = rec.keypoints[:, start: end + 1]
            labels.append(label)
            groups.append(rec.person)
    people = sorted(set(groups))
    return (InMemoryKeypoints(clips, gg.LAYOUT, name=str(GROUND_GUIDE)), np.array(labels), np.array(groups), list(gg.CLASSES),
            [[p] for p in people])


MEDIAPIPE_HANDS = {"left": [15, 17, 19, 21], "right": [16, 18, 20, 22]}  # MediaPipe pose: wrist, pinky, index, thumb
FACE = list(range(11))  # MediaPipe pose: nose, eyes, ears, mouth


def crop_box(raw: np.ndarray, region: str, padding: float) -> tuple[float, float, float]:
    """The clip's square box: `person` round every pose point; `hand` round the more travelled hand's points and the
    face (where that hand goes: head, mouth, ear) over the whole clip."""
    from miga.track1.rgb import square_box

    pose = raw[:, :33]
    if region == "person":
        return square_box(pose, padding=padding)
    travel = {side: float(np.nanstd(pose[:, idx[0], :2], axis=0).sum()) for side, idx in MEDIAPIPE_HANDS.items()}
    side = max(travel, key=travel.get)
    return square_box(pose[:, MEDIAPIPE_HANDS[side] + FACE], padding=padding)


def biisc_crops(cache: Path, names: list[str], region: str, *, frames: int, size: int, padding: float) -> dict[str, np.ndarray]:
    """uint8 (frames, size, size, 3) per biisc_dev clip, cut from its video around `crop_box` (cached per setting)."""
    from benchmarks.real_clips import BIISC
    from miga.track1.rgb import ClipCrop, clip_frame_indices, crop_video

    path = cache / f"biisc_dev_crops_{region}_{frames}x{size}_p{padding}.npz"
    if path.exists():
        saved = np.load(path)
        return {n: saved[n] for n in names}
    data, out = np.load(cache / "biisc_dev_mediapipe.npz"), {}
    for name in names:
        raw = data[f"raw_{name}"]
        indices = tuple(int(i) for i in clip_frame_indices(0, raw.shape[0] - 1, frames))
        out[name] = crop_video(require(BIISC / f"{name}.avi"), [ClipCrop(name, indices, crop_box(raw, region, padding))], size)[0]
    with atomic_path(path) as tmp:  # an interrupted run leaves no half-written cache behind
        np.savez_compressed(tmp, **out)
    return out


def fold_data(store: InMemoryKeypoints, labels: np.ndarray, groups: np.ndarray, held, val_people, num_classes: int,
              crops: dict | None = None) -> Track1Data:
    """The fold as a Track1Data: test = `held`, val = `val_people`, train = the rest (manifest rows in store order)."""
    split = np.where(np.isin(groups, held), "test", np.where(np.isin(groups, val_people), "val", "train"))
    manifest = pl.DataFrame({"sample_id": store.ids, "split": split.tolist(), "label": labels.tolist()},
                            schema={"sample_id": pl.String, "split": pl.String, "label": pl.Int64})
    return Track1Data(manifest, store, crops, num_classes)


def run_fold(config, data: Track1Data, features: np.ndarray, refit: bool = False, scores_to: Path | None = None) -> dict:
    """One fold: baselines on `features` (pooled statistics, one row per clip of `data.store`), then each stream, then fusion.
    `refit`: also train every stream again on train + val and score test with those (`refit_*`; fusion weights from val).
    `scores_to`: also save every stream's val and test probabilities there (`.npz`: per stream, `truth`, `in_val`, `sample_id`),
    e.g. to average runs of several seeds afterwards."""
    split = data.manifest["split"].to_numpy()
    labels = pipeline.labels_of(data.manifest)
    test = split == "test"
    models = fit_clip_baselines(features[~test], labels[~test], seed=int(config["track1"]["train"]["seed"]))
    row = clip_baseline_metrics(models, features[test], labels[test], labels[~test])
    rows = data.split("val", "test")
    with tempfile.TemporaryDirectory() as tmp:
        for stream in pipeline.streams_of(config):
            start = time.perf_counter()
            pipeline.train_stream(stream, config, data, project=Path(tmp))
            row[f"seconds_{stream}"] = time.perf_counter() - start
        scores = pipeline.stream_scores(config, data, rows, project=Path(tmp))
    in_val, evaluated = (rows["split"] == "val").to_numpy(), pipeline.labels_of(rows)
    if scores_to is not None:
        with atomic_path(scores_to) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, truth=evaluated, in_val=in_val, sample_id=np.array(rows["sample_id"].to_list()), **scores)
    for stream, probs in scores.items():
        row[stream] = float((probs[~in_val].argmax(1) == evaluated[~in_val]).mean())
        row[f"val_{stream}"] = float((probs[in_val].argmax(1) == evaluated[in_val]).mean())
    weights, _ = pipeline.stream_weights(config["track1"]["model"], scores, rows)
    tested = {s: p[~in_val] for s, p in scores.items()}
    fused = recipe.fuse(tested, "late", weights).argmax(1)
    row["fused"] = float((fused == evaluated[~in_val]).mean())
    num_classes = next(iter(scores.values())).shape[1]
    row["confusion_fused"] = np.bincount(evaluated[~in_val] * num_classes + fused, minlength=num_classes ** 2).reshape(
        num_classes, num_classes).tolist()  # rows: true class, columns: predicted
    row["fusion_weights"] = weights
    row["equal_weights"] = float((recipe.weighted_fusion(tested, {s: 1.0 for s in scores}).argmax(1) == evaluated[~in_val]).mean())
    shrunk, _ = recipe.shrunk_stream_weights({s: p[in_val] for s, p in scores.items()}, evaluated[in_val])
    row["shrunk"] = float((recipe.weighted_fusion(tested, shrunk).argmax(1) == evaluated[~in_val]).mean())
    row["shrunk_weights"] = shrunk
    best_val = max(scores, key=lambda s: row[f"val_{s}"])  # "best single stream on val", the yardstick
    row["best_val_stream"], row["best_val_stream_test"] = best_val, row[best_val]
    if refit:
        row.update(_refit_scores(config, data, weights))
    return row


def _refit_scores(config, data: Track1Data, weights: dict) -> dict:
    """Each stream trained on train + val (same recipe and seed, as `track1.train.refit` does) and scored on test: alone,
    fused with the weights val chose for the train-only streams, and with equal weights."""
    joined = pipeline.with_val_in_train(data)  # what `track1.train.refit` trains on
    rows = joined.split("test")
    with tempfile.TemporaryDirectory() as tmp:
        for stream in pipeline.streams_of(config):
            pipeline.train_stream(stream, config, joined, project=Path(tmp))
        scores = pipeline.stream_scores(config, joined, rows, project=Path(tmp))
    truth = pipeline.labels_of(rows)
    row = {f"refit_{s}": float((p.argmax(1) == truth).mean()) for s, p in scores.items()}
    row["refit_fused"] = float((recipe.fuse(scores, "late", weights).argmax(1) == truth).mean())
    row["refit_equal"] = float((recipe.weighted_fusion(scores, {s: 1.0 for s in scores}).argmax(1) == truth).mean())
    return row


def _most_confused(confusion: np.ndarray, true_class: int) -> int:
    """The class most often predicted for `true_class` other than itself."""
    wrong = np.array(confusion[true_class], dtype=float)
    wrong[true_class] = -1
    return int(wrong.argmax())


def _nested(path: str, value) -> dict:
    """`a.b.c`, v -> {a: {b: {c: v}}}."""
    for name in reversed(path.split(".")):
        value = {name: value}
    return value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("biisc_dev", "ground_guide"), default="biisc_dev")
    parser.add_argument("--streams", nargs="+", default=["joint", "bone"], help="track1.model.streams (late fusion; keypoint streams)")
    parser.add_argument("--layout", default=None,
                        help="biisc_dev keypoint layout (from the raw MediaPipe points); default: params.yaml's pose.mediapipe.layout, "
                             "the layout the pipeline gives MediaPipe poses")
    parser.add_argument("--skeleton-layout", default=None, help="track1.skeleton.layout (default: the keypoint layout)")
    parser.add_argument("--epochs", type=int, default=None, help="track1.train.epochs (a stream's track1.train.per_stream entry wins)")
    parser.add_argument("--lr", type=float, default=None, help="track1.train.lr (likewise)")
    parser.add_argument("--folds", type=int, nargs="*", default=None, help="only these fold numbers")
    parser.add_argument("--set-param", nargs="*", default=[],
                        help="section.key=value overrides of track1 (YAML values), e.g. model.tcn_channels=64 train.per_stream.tcn.epochs=5")
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--rgb", choices=("person", "hand"), default=None,
                        help="biisc_dev RGB crops for the rgb stream: round the person, or round the more travelled hand and the face")
    parser.add_argument("--refit", action="store_true",
                        help="also train every stream on train + val and score test with those (refit_*: the val people join training)")
    parser.add_argument("--scores-dir", type=Path, default=None,
                        help="save each fold's val and test probabilities per stream here (fold<N>.npz), e.g. to average seeds")
    parser.add_argument("--out", type=Path, default=None)
    a = parser.parse_args(argv)
    rgb = [s for s in a.streams if s in recipe.STREAMS and recipe.STREAMS[s].uses_rgb]
    if rgb and (a.set != "biisc_dev" or a.rgb is None):
        parser.error(f"--streams: {rgb} read RGB crops: biisc_dev with --rgb person|hand only (ground_guide has keypoints only)")
    if a.set == "biisc_dev":
        layout = a.layout or validated(yaml.safe_load((REPO / "params.yaml").read_text()) or {})["pose"]["mediapipe"]["layout"]
        store, labels, groups, classes, folds = biisc_clips(a.cache, layout)
    else:
        store, labels, groups, classes, folds = ground_guide_clips()
    track1 = {"model": {"fusion": "late", "streams": list(a.streams)}, "skeleton": {"layout": a.skeleton_layout}}
    for item in a.set_param:
        key, value = item.split("=", 1)
        track1 = merged(track1, _nested(key.removeprefix("track1."), yaml.safe_load(value)))
    if a.epochs is not None:
        track1 = merged(track1, {"train": {"epochs": a.epochs}})
    if a.lr is not None:
        track1 = merged(track1, {"train": {"lr": a.lr}})
    config = validated(merged(yaml.safe_load((REPO / "params.yaml").read_text()) or {}, {"track1": track1}), REPO / "params.yaml")
    params = config["track1"]
    features = np.stack([pooled_features(store[i], store.layout) for i in store.ids])  # once for every fold
    rgb_params = params["rgb"]
    crops = biisc_crops(a.cache, list(store.ids), a.rgb, frames=int(rgb_params["frames"]), size=int(rgb_params["size"]),
                        padding=float(rgb_params["padding"])) if rgb else None
    rows = []
    started = time.perf_counter()
    for index, held in enumerate(folds):
        if a.folds and index not in a.folds:
            continue
        val_people = folds[(index + 1) % len(folds)]
        scores_to = a.scores_dir / f"fold{index}.npz" if a.scores_dir else None
        row = run_fold(config, fold_data(store, labels, groups, held, val_people, len(classes), crops), features, refit=a.refit,
                       scores_to=scores_to)
        row["held_out"] = held
        rows.append(row)
        print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    metrics = ["logreg", "1nn", "5nn", "majority_class_rate", *a.streams, "fused", "equal_weights", "shrunk", "best_val_stream_test"]
    if a.refit:
        metrics += [f"refit_{s}" for s in a.streams] + ["refit_fused", "refit_equal"]
    summary = _summary(rows, metrics)
    train = dict(params["train"])
    print(f"{a.set}: {len(rows)} folds, streams {a.streams}, layout {store.layout} -> {params['skeleton']['layout'] or store.layout}, "
          f"epochs {train['epochs']} (train.per_stream: {train['per_stream']}), {time.perf_counter() - started:.0f} s")
    for name in metrics:
        s = summary[name]
        print(f"  {name:>20}: {s['mean']:.3f} +- {s['std']:.3f} ({s['min']:.2f}-{s['max']:.2f})")
    confusion = np.sum([row["confusion_fused"] for row in rows], axis=0)
    print("  fused, recall per class over the folds (most confused with): " + ", ".join(
        f"{name} {confusion[c, c] / max(confusion[c].sum(), 1):.2f} ({classes[_most_confused(confusion, c)]})"
        for c, name in enumerate(classes)))
    out = a.out or a.cache / f"track1_models_{a.set}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"folds": rows, "summary": summary, "classes": classes, "confusion_fused": confusion.tolist(), "streams": a.streams, "layout": store.layout,
                               "skeleton": params["skeleton"], "model": params["model"], "train": train, "rgb": a.rgb}, indent=2, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
