"""Track 1 clip baselines (pooled skeleton statistics + logistic regression / k-NN) on real data.

- biisc_dev (../shared/realdata/video/biisc_dev): 240 clips, 15 people x 8 actions x 2 views.
  MediaPipe Holistic's raw points are extracted once per clip (`miga.pose.mediapipe_backend`) and
  cached under --cache (default /tmp/miga_real, never inside the repo); the table reads them in
  `--layout` (default openpose25_hands10). Person-disjoint 5-fold CV (3 people per fold).
- ground_guide (../shared/realdata/sequences/ground_guide): real 2-D upper-body joints,
  5 people, 11 classes; leave-one-person-out.

    python -m benchmarks.real_clips --extract-only --workers 2   # the pose extraction (slow)
    python -m benchmarks.real_clips                              # the table + track1_baselines.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.realdata import REALDATA, require

REPO = Path(__file__).resolve().parents[1]
BIISC = REALDATA / "video" / "biisc_dev"
GROUND_GUIDE = REALDATA / "sequences" / "ground_guide"
CACHE = Path("/tmp/miga_real")


# ---------------------------------------------------------------- biisc: pose extraction


def _biisc_videos(root: Path = BIISC) -> list[Path]:
    require(root)
    return sorted(root.glob("S*_*_*_STD_*.avi"))


def _extract_one(video: str, out: str) -> tuple[str, float, int]:
    """MediaPipe Holistic's raw 75 points per frame (33 pose, 21 + 21 hand landmarks): any layout is made from them."""
    from miga.pose.mediapipe_backend import MediapipeExtractor, MediapipeSettings
    from miga.video import probe_video

    start = time.perf_counter()
    frames = np.arange(probe_video(video).num_frames)
    arrays, meta = MediapipeExtractor(MediapipeSettings())(Path(video), frames, lambda n: None)
    frames = arrays["frames"]
    tmp = out + ".tmp.npz"
    np.savez_compressed(tmp, frames=frames, raw=arrays["raw"], meta=json.dumps(meta))
    os.replace(tmp, out)
    return video, time.perf_counter() - start, len(frames)


def extract_biisc(cache: Path = CACHE, workers: int = 1) -> Path:
    """MediaPipe Holistic on every biisc_dev clip -> cache/biisc_dev_mediapipe.npz (resumable per clip)."""
    per_clip = cache / "biisc_dev_clips"
    per_clip.mkdir(parents=True, exist_ok=True)
    todo = [(str(v), str(per_clip / (v.stem + ".npz"))) for v in _biisc_videos() if not (per_clip / (v.stem + ".npz")).exists()]
    print(f"biisc_dev: {len(todo)} clips to extract ({workers} workers)", flush=True)
    t0 = time.perf_counter()
    if todo:
        with ProcessPoolExecutor(workers) as pool:
            for i, (video, seconds, n) in enumerate(pool.map(_extract_one, *zip(*todo)), 1):
                print(f"[{i}/{len(todo)}] {Path(video).name}: {n} frames {seconds:.1f}s ({time.perf_counter() - t0:.0f}s)", flush=True)
    combined = cache / "biisc_dev_mediapipe.npz"
    names, arrays = [], {}
    for v in _biisc_videos():
        data = np.load(per_clip / (v.stem + ".npz"))
        names.append(v.stem)
        arrays[v.stem] = data["raw"]
    np.savez_compressed(combined, names=np.array(names), **{f"raw_{n}": a for n, a in arrays.items()})
    return combined


# ---------------------------------------------------------------- the baselines


def _summary(folds: list[dict], names: list[str]) -> dict:
    """Per metric: mean, std (over folds), min, max, and the clip-weighted (pooled) rate."""
    out = {}
    n = np.array([f["n"] for f in folds], float)
    for name in names:
        values = np.array([f[name] for f in folds], float)
        out[name] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                     "min": float(values.min()), "max": float(values.max()), "pooled": float((values * n).sum() / n.sum())}
    return out


def cross_validate(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, folds: list[list], *, seed: int = 0,
                   C: float = 1.0) -> dict:
    from miga.baselines import clip_baseline_metrics, fit_clip_baselines

    results = []
    for held in folds:
        test = np.isin(groups, held)
        models = fit_clip_baselines(features[~test], labels[~test], seed=seed, C=C)
        metrics = clip_baseline_metrics(models, features[test], labels[test], labels[~test])
        results.append({"held_out": [str(h) for h in held], **metrics})
    names = [k for k in results[0] if k not in ("held_out", "n")]
    return {"folds": results, "summary": _summary(results, names)}


def biisc_table(cache: Path, seed: int, C: float, layout: str = "openpose25_hands10") -> dict:
    from miga.baselines import pooled_features
    from miga.pose.mediapipe_backend import to_layout

    combined = cache / "biisc_dev_mediapipe.npz"
    if not combined.exists():
        raise SystemExit(f"{combined}: not found; run `python -m benchmarks.real_clips --extract-only` first")
    data = np.load(combined)
    names = [str(n) for n in data["names"]]
    parts = [n.split("_") for n in names]  # Sxxx, G, ACTN, STD, VIEW
    subjects = np.array([p[0] for p in parts])
    actions = sorted({p[2] for p in parts})
    labels = np.array([actions.index(p[2]) for p in parts])
    views = np.array([p[4] for p in parts])
    kps = [to_layout(data[f"raw_{n}"], layout)[None] for n in names]  # (1, T, V, 3)
    features = np.stack([pooled_features(k, layout) for k in kps])
    seen = np.array([(k[0, :, :, 2] > 0).any(axis=1).mean() for k in kps])
    people = sorted(set(subjects))
    folds = [people[i: i + 3] for i in range(0, len(people), 3)]
    result = cross_validate(features, labels, subjects, folds, seed=seed, C=C)
    per_view = {}
    for view in sorted(set(views)):  # train on both views, score one
        rows = []
        for held in folds:
            from miga.baselines import clip_baseline_metrics, fit_clip_baselines
            test = np.isin(subjects, held)
            models = fit_clip_baselines(features[~test], labels[~test], seed=seed, C=C)
            rows.append(clip_baseline_metrics(models, features[test & (views == view)], labels[test & (views == view)], labels[~test]))
        per_view[view] = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "n"}
    result.update({
        "classes": actions, "clips": len(names), "people": len(people), "layout": layout,
        "pose": "MediaPipe Holistic (miga.pose.mediapipe_backend.MediapipeExtractor, model complexity 1)",
        "frames_with_person": {"mean": float(seen.mean()), "min": float(seen.min())},
        "protocol": "person-disjoint 5-fold CV, 3 people per fold (sorted subject ids, consecutive)",
        "per_view_mean_top1": per_view,
    })
    return result


def ground_guide_table(seed: int, C: float) -> dict:
    from miga.baselines import pooled_features
    from miga.datasets import ground_guide as gg

    feats, labels, groups = [], [], []
    for rec in gg.load(require(GROUND_GUIDE)):
        for start, end, label in gg.segments(rec.labels):
            feats.append(pooled_features(rec.keypoints[:, start: end + 1], gg.LAYOUT))
            labels.append(label)
            groups.append(rec.person)
    features, labels, groups = np.stack(feats), np.array(labels), np.array(groups)
    people = sorted(set(groups))
    result = cross_validate(features, labels, groups, [[p] for p in people], seed=seed, C=C)
    result.update({
        "classes": list(gg.CLASSES), "clips": int(len(labels)), "people": len(people), "layout": gg.LAYOUT,
        "clip_unit": "one run of a single class inside a recording (102 runs in 74 recordings)",
        "protocol": "leave-one-person-out (5 folds)",
    })
    return result


def markdown(results: dict) -> str:
    lines = ["| data set | protocol | clips | logreg top-1 | 1-NN top-1 | 5-NN top-1 | majority |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if not isinstance(r, dict) or "summary" not in r:
            continue
        s = r["summary"]
        cell = lambda k: f"{s[k]['mean']:.3f} +- {s[k]['std']:.3f} ({s[k]['min']:.2f}-{s[k]['max']:.2f})" if k in s else "-"
        lines.append(f"| {name} | {r['protocol']} | {r['clips']} | {cell('logreg')} | {cell('1nn')} | {cell('5nn')} | {cell('majority_class_rate')} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extract-only", action="store_true", help="only extract (and cache) the biisc_dev poses")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation of the logistic regression")
    parser.add_argument("--layout", default="openpose25_hands10", help="biisc_dev keypoint layout (from the raw MediaPipe points)")
    parser.add_argument("--skip-biisc", action="store_true")
    parser.add_argument("--skip-ground-guide", action="store_true")
    a = parser.parse_args(argv)
    if a.extract_only:
        print(extract_biisc(a.cache, a.workers))
        return
    results = {"seed": a.seed, "C": a.C}
    if not a.skip_biisc:
        results["biisc_dev"] = biisc_table(a.cache, a.seed, a.C, a.layout)
    if not a.skip_ground_guide:
        results["ground_guide"] = ground_guide_table(a.seed, a.C)
    print("values: mean +- std over folds (min-max)")
    print(markdown(results))
    a.cache.mkdir(parents=True, exist_ok=True)
    out = a.cache / "track1_baselines.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
