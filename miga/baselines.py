"""Strong simple baselines: pooled skeleton statistics + logistic regression / k-NN.

Track 1 (clip classification):

- `pooled_features(keypoints, layout)`: one clip `(M, T, V, 3)` (x, y, score; score 0 = missing;
  person 0 is used) -> a fixed-length vector per layout. The skeleton is body-normalised frame by
  frame (centred on the neck / shoulder midpoint, else the mean of the confident joints) and scaled
  by one clip-level body size (median shoulder width, else torso length, else the spread of the
  confident joints, else 1), so the features do not change when the whole skeleton is moved or
  scaled. Missing joints carry their last confident value (the first one before it is seen; 0, the
  centre, if never seen). Pooled over time: mean, std, min, max of the normalised coordinates, the
  means of `parts` equal temporal parts (the order of the motion), the mean absolute velocity, the
  fraction of frames each joint was seen, hand-to-face / hand-to-body / hand-to-hand distances
  (mean, std, min) where the layout has wrists (hands, fingertips) and a nose or head, and the
  body centre's own motion in body sizes (per-part mean relative to the clip mean, std, mean
  absolute velocity: walking, sitting down).
- `fit_clip_baselines(features, labels, seed=...)`: standardised logistic regression and k-NN.
- `clip_baseline_metrics(models, features, labels, train_labels)`: top-1 per baseline and the
  majority-class rate.

Track 2 (detection in continuous sequences):

- `window_features(keypoints, layout, window=..., stride=...)`: pooled statistics of sliding windows
  (the sequence is normalised once, then each window is pooled).
- `fit_window_baseline(...)`: a logistic regression on windows that lie inside ground-truth
  segments (labelled with their class) plus background windows (no overlap with any segment) as an
  extra class `BACKGROUND`.
- `window_baseline_detections(...)`: classify each window, merge consecutive windows of the same
  class into segments `(start, end, label, score)` with score >= threshold.
- `tune_threshold(...)`: the score threshold with the best F1 on validation sequences, scored by the
  challenge's own rule (`miga.evaluation.metrics.instance_f1`).

Everything is deterministic for a given `seed`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from miga.evaluation.metrics import instance_f1
from miga.layouts import Layout, get_layout
from miga.skeleton.normalise import HANDS as _HANDS
from miga.skeleton.normalise import HEAD as _HEAD
from miga.skeleton.normalise import NECK as _NECK
from miga.skeleton.normalise import PELVIS as _PELVIS
from miga.skeleton.normalise import clip_normalised as normalise
from miga.skeleton.normalise import first_joint as _first

BACKGROUND = -1  # the extra class of the window baseline
# ---------------------------------------------------------------- pooling


@dataclass(frozen=True)
class _Pairs:
    """Index pairs whose distances are pooled (hand-face, hand-body, hand-hand)."""

    pairs: tuple[tuple[int, int], ...]
    names: tuple[str, ...]


def _distance_pairs(spec: Layout) -> _Pairs:
    pairs, names = [], []
    head = _first(spec, _HEAD)
    body = [i for i in (_first(spec, _NECK), _first(spec, _PELVIS)) if i is not None]
    hands = {side: [spec.index(n) for n in names_ if n in spec.joints] for side, names_ in _HANDS.items()}
    for side in "LR":
        for h in hands[side]:
            for other, what in ([(head, "head")] if head is not None else []) + [(b, "body") for b in body]:
                pairs.append((h, other))
                names.append(f"{spec.joints[h]}-{spec.joints[other]}")
    for hl, hr in zip(hands["L"], hands["R"]):
        pairs.append((hl, hr))
        names.append(f"{spec.joints[hl]}-{spec.joints[hr]}")
    return _Pairs(tuple(pairs), tuple(names))


def feature_length(layout: str, *, parts: int = 3) -> int:
    """Length of `pooled_features` for `layout`."""
    spec = get_layout(layout)
    v = spec.num_joints
    return v * 2 * (4 + parts + 1) + v + 3 * len(_distance_pairs(spec).pairs) + 2 * (parts + 2)


def _pool(norm: np.ndarray, seen: np.ndarray, path: np.ndarray, spec: Layout, parts: int) -> np.ndarray:
    t_len, v = norm.shape[:2]
    if t_len == 0:
        return np.zeros(feature_length(spec.name, parts=parts), np.float32)
    flat = norm.reshape(t_len, v * 2)
    stats = [flat.mean(axis=0), flat.std(axis=0), flat.min(axis=0), flat.max(axis=0)]
    path = path - path.mean(axis=0)  # the body's own motion, whatever window of it this is
    bounds = np.linspace(0, t_len, parts + 1)
    part_paths = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        lo = min(int(np.floor(a)), t_len - 1)
        hi = max(int(np.floor(b)), lo + 1)
        stats.append(flat[lo:hi].mean(axis=0))
        part_paths.append(path[lo:hi].mean(axis=0))
    stats.append(np.abs(np.diff(flat, axis=0)).mean(axis=0) if t_len > 1 else np.zeros(v * 2))
    stats.append(seen.mean(axis=0))
    pairs = _distance_pairs(spec).pairs
    if pairs:
        a = np.array([p[0] for p in pairs])
        b = np.array([p[1] for p in pairs])
        dist = np.linalg.norm(norm[:, a] - norm[:, b], axis=-1)  # (T, P)
        stats += [dist.mean(axis=0), dist.std(axis=0), dist.min(axis=0)]
    stats += part_paths + [path.std(axis=0), np.abs(np.diff(path, axis=0)).mean(axis=0) if t_len > 1 else np.zeros(2)]
    return np.concatenate(stats).astype(np.float32)


def pooled_features(keypoints: np.ndarray, layout: str, *, parts: int = 3, min_score: float = 0.0) -> np.ndarray:
    """One clip `(M, T, V, 3)` -> pooled statistics, float32 of `feature_length(layout)` (see the module doc)."""
    norm, seen, path = normalise(keypoints, layout, min_score=min_score)
    return _pool(norm, seen, path, get_layout(layout), parts)


# ---------------------------------------------------------------- Track 1


def fit_clip_baselines(train_features: np.ndarray, train_labels: np.ndarray, *, seed: int = 0, C: float = 1.0,
                       ks: Sequence[int] = (1, 5)) -> dict[str, Pipeline]:
    """Standardised logistic regression (`logreg`) and k-NN (`{k}nn`) fitted on the training clips."""
    x = np.asarray(train_features, dtype=np.float64)
    y = np.asarray(train_labels)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need (N, D) features and N labels, got {x.shape} and {y.shape}")
    models: dict[str, Pipeline] = {}
    if len(np.unique(y)) > 1:
        models["logreg"] = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=C, random_state=seed)).fit(x, y)
    for k in ks:
        models[f"{k}nn"] = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=min(k, len(x)))).fit(x, y)
    return models


def majority_class_rate(labels: np.ndarray, train_labels: np.ndarray | None = None) -> float:
    """Top-1 of always answering the most frequent training class (the evaluated split's own if no training labels)."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return float("nan")
    reference = labels if train_labels is None else np.asarray(train_labels)
    values, counts = np.unique(reference, return_counts=True)
    return float(np.mean(labels == values[np.argmax(counts)]))


def clip_baseline_metrics(models: Mapping[str, Pipeline], features: np.ndarray, labels: np.ndarray,
                          train_labels: np.ndarray | None = None) -> dict[str, float]:
    """Top-1 of each baseline on a split, plus `majority_class_rate` and the number of clips `n`."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels)
    out = {name: float(np.mean(model.predict(x) == y)) if len(y) else float("nan") for name, model in models.items()}
    out["majority_class_rate"] = majority_class_rate(y, train_labels)
    out["n"] = int(len(y))
    return out


# ---------------------------------------------------------------- Track 2


@dataclass(frozen=True)
class Windows:
    """Sliding windows of one sequence: frames [starts[i], ends[i]] (inclusive) and their features."""

    starts: np.ndarray
    ends: np.ndarray
    features: np.ndarray
    length: int


def window_features(keypoints: np.ndarray, layout: str, *, window: int, stride: int, parts: int = 3,
                    min_score: float = 0.0) -> Windows:
    """Pooled statistics of each window [s, s + window) for s = 0, stride, ...; one window if the sequence is shorter."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    spec = get_layout(layout)
    norm, seen, path = normalise(keypoints, layout, min_score=min_score)
    t_len = norm.shape[0]
    starts = np.arange(0, max(t_len - window, 0) + 1, stride) if t_len else np.zeros(0, np.int64)
    if t_len and t_len > window and starts[-1] + window < t_len:  # cover the tail
        starts = np.append(starts, t_len - window)
    ends = np.minimum(starts + window, t_len) - 1
    feats = np.stack([_pool(norm[s: e + 1], seen[s: e + 1], path[s: e + 1], spec, parts) for s, e in zip(starts, ends)]) if len(starts) \
        else np.zeros((0, feature_length(layout, parts=parts)), np.float32)
    return Windows(starts.astype(np.int64), ends.astype(np.int64), feats, t_len)


def window_labels(windows: Windows, segments: Sequence[tuple[int, int, int]], *, min_inside: float = 0.5) -> np.ndarray:
    """Training label of each window: the class of a segment holding >= `min_inside` of the window
    (the largest share), `BACKGROUND` where it overlaps no segment, and -2 (ambiguous: not used) otherwise."""
    labels = np.full(len(windows.starts), BACKGROUND, np.int64)
    best = np.zeros(len(windows.starts))
    touched = np.zeros(len(windows.starts), bool)
    size = windows.ends - windows.starts + 1
    for start, end, label in segments:
        inter = np.minimum(windows.ends, end) - np.maximum(windows.starts, start) + 1
        share = np.clip(inter, 0, None) / size
        touched |= inter > 0
        take = (share >= min_inside) & (share > best)
        labels[take] = label
        best[take] = share[take]
    labels[touched & (best < min_inside)] = -2
    return labels


@dataclass
class WindowBaseline:
    """The window classifier and its decoding settings: class probabilities are averaged over
    `smooth` neighbouring windows, and merged segments shorter than `min_windows` windows are dropped."""

    model: Pipeline
    window: int
    stride: int
    threshold: float = 0.5
    smooth: int = 1
    min_windows: int = 1


def fit_window_baseline(train_windows: Mapping[str, Windows], train_segments: Mapping[str, Sequence[tuple[int, int, int]]], *,
                        window: int, stride: int, seed: int = 0, C: float = 1.0, min_inside: float = 0.5,
                        background_weight: float = 1.0) -> WindowBaseline:
    """Logistic regression on the training windows (classes + `BACKGROUND`); `background_weight`
    scales the background windows' sample weight."""
    xs, ys = [], []
    for key, win in train_windows.items():
        labels = window_labels(win, train_segments.get(key, ()), min_inside=min_inside)
        keep = labels != -2
        xs.append(win.features[keep])
        ys.append(labels[keep])
    x = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys)
    if len(np.unique(y)) < 2:
        raise ValueError("the window baseline needs at least two classes among the training windows")
    weight = np.where(y == BACKGROUND, background_weight, 1.0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=C, random_state=seed))
    model.fit(x, y, logisticregression__sample_weight=weight)
    return WindowBaseline(model, window, stride)


def _merge(win: Windows, classes: np.ndarray, scores: np.ndarray, stride: int, threshold: float,
           min_windows: int = 1) -> list[tuple[int, int, int, float]]:
    """Consecutive foreground windows of one class -> (start, end, label, mean score); each window stands
    for the `stride` frames around its centre (the first and last windows reach the sequence's ends)."""
    n = len(win.starts)
    if n == 0:
        return []
    centres = (win.starts + win.ends) / 2
    own_start = np.maximum(np.floor(centres - stride / 2), 0).astype(np.int64)
    own_end = np.minimum(np.ceil(centres + stride / 2) - 1, win.length - 1).astype(np.int64)
    own_start[0], own_end[-1] = 0, win.length - 1
    own_end = np.maximum(own_end, own_start)
    fg = (classes != BACKGROUND) & (scores >= threshold)
    out = []
    i = 0
    while i < n:
        if not fg[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and fg[j + 1] and classes[j + 1] == classes[i]:
            j += 1
        if j - i + 1 >= min_windows:
            out.append((int(own_start[i]), int(own_end[j]), int(classes[i]), float(scores[i: j + 1].mean())))
        i = j + 1
    return out


def _smooth(proba: np.ndarray, width: int) -> np.ndarray:
    """Moving average over `width` neighbouring windows (centred; shorter at the ends)."""
    if width <= 1 or len(proba) < 2:
        return proba
    kernel = np.ones(width)
    pad = width // 2
    sums = np.stack([np.convolve(proba[:, c], kernel, mode="full")[pad: pad + len(proba)] for c in range(proba.shape[1])], axis=1)
    counts = np.convolve(np.ones(len(proba)), kernel, mode="full")[pad: pad + len(proba)]
    return sums / counts[:, None]


def window_class_probabilities(baseline: WindowBaseline, win: Windows) -> np.ndarray:
    """Class probabilities `(windows, classes)` (order: `baseline.model.classes_`), before smoothing."""
    if len(win.starts) == 0:
        return np.zeros((0, len(baseline.model.classes_)))
    return baseline.model.predict_proba(win.features.astype(np.float64))


def _best(proba: np.ndarray, classes: np.ndarray, smooth: int) -> tuple[np.ndarray, np.ndarray]:
    if len(proba) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    proba = _smooth(proba, smooth)
    best = proba.argmax(axis=1)
    return classes[best].astype(np.int64), proba[np.arange(len(best)), best]


def window_probabilities(baseline: WindowBaseline, win: Windows) -> tuple[np.ndarray, np.ndarray]:
    """(best class, its smoothed probability) per window."""
    if len(win.starts) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    proba = _smooth(window_class_probabilities(baseline, win), baseline.smooth)
    classes = baseline.model.classes_
    best = proba.argmax(axis=1)
    return classes[best].astype(np.int64), proba[np.arange(len(best)), best]


def window_baseline_detections(features_per_sequence: Mapping[str, Windows], baseline: WindowBaseline, *,
                               threshold: float | None = None) -> dict[str, list[tuple[int, int, int, float]]]:
    """Detections `(start, end, label, score)` per sequence (threshold: the baseline's unless given)."""
    threshold = baseline.threshold if threshold is None else threshold
    out = {}
    for key, win in features_per_sequence.items():
        classes, scores = window_probabilities(baseline, win)
        out[key] = _merge(win, classes, scores, baseline.stride, threshold, baseline.min_windows)
    return out


def tune_threshold(baseline: WindowBaseline, val_windows: Mapping[str, Windows], val_segments: Mapping[str, Sequence[tuple]], *,
                   thresholds: Sequence[float] = tuple(np.round(np.arange(0.0, 1.0, 0.05), 2)),
                   smooths: Sequence[int] = (1,), min_windows: Sequence[int] = (1,), iou: float = 0.3) -> tuple[float, float]:
    """(score threshold with the best val F1, that F1), over the grid thresholds x smooths x min_windows
    (the first best in that order: lowest threshold, least smoothing, shortest minimum); the chosen
    settings are stored on `baseline`."""
    raw = {key: window_class_probabilities(baseline, win) for key, win in val_windows.items()}
    best = (float(thresholds[0]), int(smooths[0]), int(min_windows[0]), -1.0)
    for smooth in smooths:
        cached = {key: _best(p, baseline.model.classes_, int(smooth)) for key, p in raw.items()}
        for t in thresholds:
            for m in min_windows:
                preds = {key: _merge(val_windows[key], c, s, baseline.stride, float(t), int(m)) for key, (c, s) in cached.items()}
                f1 = instance_f1(preds, val_segments, iou=iou)["f1"]
                if f1 > best[3] + 1e-12:
                    best = (float(t), int(smooth), int(m), f1)
    baseline.threshold, baseline.smooth, baseline.min_windows = best[:3]
    return best[0], best[3]


# ---------------------------------------------------------------- reports next to the models


def clip_baselines_on(keypoints: Mapping[str, np.ndarray], layout: str, train: Mapping[str, int],
                      evaluated: Mapping[str, int], *, seed: int = 0) -> dict[str, float]:
    """Top-1 of the clip baselines fitted on `train` ({sample_id: label}) and scored on `evaluated`."""
    features = {sid: pooled_features(keypoints[sid], layout) for sid in {**train, **evaluated}}
    models = fit_clip_baselines(np.stack([features[s] for s in train]), np.fromiter(train.values(), np.int64), seed=seed)
    scores = clip_baseline_metrics(models, np.stack([features[s] for s in evaluated]), np.fromiter(evaluated.values(), np.int64))
    return {name: value for name, value in scores.items() if name in models}


def fitted_window_baseline(keypoints: Mapping[str, np.ndarray], layout: str, segments: Mapping[str, Sequence[tuple[int, int, int]]],
                           splits: Mapping[str, Sequence[str]], *, window: int, stride: int, seed: int = 0,
                           smooths: Sequence[int] = (1, 5, 9), min_windows: Sequence[int] = (1, 2, 4, 8),
                           iou: float = 0.3) -> tuple[WindowBaseline, dict[str, Windows], dict]:
    """The window baseline fitted on `splits['train']`, its decoding tuned on `splits['val']` (F1); returns it, the
    windows of every listed sequence and the chosen settings (`val_f1`: NaN without val sequences)."""
    windows = {sid: window_features(keypoints[sid], layout, window=window, stride=stride) for ids in splits.values() for sid in ids}
    train = {sid: windows[sid] for sid in splits["train"]}
    baseline = fit_window_baseline(train, {sid: segments.get(sid, ()) for sid in train}, window=window, stride=stride, seed=seed)
    val = {sid: windows[sid] for sid in splits.get("val", ())}
    val_f1 = float("nan")
    if val:
        _, val_f1 = tune_threshold(baseline, val, {sid: segments.get(sid, ()) for sid in val}, smooths=smooths,
                                   min_windows=min_windows, iou=iou)
    settings = {"window": window, "stride": stride, "threshold": baseline.threshold, "smooth": baseline.smooth,
                "min_windows": baseline.min_windows, "val_f1": val_f1}
    return baseline, windows, settings


def window_baseline_on(keypoints: Mapping[str, np.ndarray], layout: str, segments: Mapping[str, Sequence[tuple[int, int, int]]],
                       splits: Mapping[str, Sequence[str]], **options) -> tuple[dict[str, list[tuple[int, int, int, float]]], dict]:
    """Fit the window baseline on `splits['train']`, tune its decoding on `splits['val']` (F1), detect on every
    other listed sequence (`options`: those of `fitted_window_baseline`). Returns ({sample_id: [(start, end, label,
    score)]}, the chosen settings)."""
    baseline, windows, settings = fitted_window_baseline(keypoints, layout, segments, splits, **options)
    evaluated = {sid: w for sid, w in windows.items() if sid not in splits["train"]}
    return window_baseline_detections(evaluated, baseline), settings


def window_frame_probabilities(baseline: WindowBaseline, win: Windows, num_classes: int) -> np.ndarray:
    """(T, K + 1) per-frame class probabilities in the frame detectors' order (column 0 = background, c + 1 = class c):
    each frame gets the mean of the windows covering it, before any smoothing; classes the training windows lacked get 0."""
    total, counts = np.zeros((win.length, num_classes + 1)), np.zeros(win.length)
    classes = baseline.model.classes_
    columns = np.where(classes == BACKGROUND, 0, classes + 1)
    for start, end, proba in zip(win.starts, win.ends, window_class_probabilities(baseline, win)):
        total[start: end + 1, columns] += proba
        counts[start: end + 1] += 1
    total[counts == 0, 0] = 1.0
    return total / np.maximum(counts, 1)[:, None]
