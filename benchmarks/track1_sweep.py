"""Which Track 1 stream settings reach what accuracy, at what training cost?

Two steps, so the sweep can run on a machine that holds the `miga` package and its Python requirements
but not the project (no DVC, no videos):

    python -m benchmarks.track1_sweep prepare --out sweep.npz        # here, after `dvc repro pose@imigue`
    python -m benchmarks.track1_sweep run sweep.npz --configs configs.json --jobs 4

`prepare` packs the iMiGUE keypoints (in the keypoints' own layout, so every stream can read them),
labels, splits and class count of the current pipeline's interim data into one npz. `run` trains one
stream per config: a JSON list of {"name": ..., "stream": ..., "heatmap": {...}, "skeleton": {...},
"model": {...}, "train": {...}}, overrides of params.yaml's `track1` sections; `stream` is any of
`track1.model.streams`' vocabulary (pose, rgb, tcn, tcn_bone, joint, bone, joint_motion, bone_motion) or
`fused` (the cross-attention model); rgb and fused need `--crops`, the rgb stage's rgb_crops folder
(`miga.track1.rgb.load_crops`). Each config is trained and scored by what the Track 1 stage calls,
over a `miga.track1.pipeline.Track1Data` of the packed tables (`miga.io.InMemoryKeypoints`):
`train_stream` (the stream's `train.per_stream` recipe over `train`, val top-1 every epoch) and
`stream_scores` (every test view averaged, as `predict`); on CUDA when present, `--jobs` configs at a
time in separate processes. It prints val and test top-1 and the training throughput in clips/s.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import yaml

from miga.params import load_params, merged, validated

REPO = Path(__file__).resolve().parents[1]


def prepare(out: Path, params: Path) -> None:
    from miga.track1.pipeline import Track1Data

    data = Track1Data.load(load_params(params), REPO, with_crops=False)
    ids = data.manifest["sample_id"].to_list()
    clips = [data.store[s] for s in ids]
    lengths = np.array([c.shape[1] for c in clips])
    persons = {c.shape[0] for c in clips}
    if len(persons) != 1:
        raise SystemExit(f"prepare expects one person count per clip, got {sorted(persons)}")
    np.savez_compressed(
        out, keypoints=np.concatenate(clips, axis=1), lengths=lengths, layout=np.array(data.store.layout),
        labels=data.manifest["label"].fill_null(-1).to_numpy(), splits=np.array(data.manifest["split"].to_list()),
        ids=np.array(ids), num_classes=np.array(data.num_classes),
    )
    print(f"{out}: {len(ids)} clips, {lengths.sum()} frames, layout {data.store.layout}, {data.num_classes} classes")


def packed_data(npz: str, crops: str | None = None):
    """The Track1Data of a `prepare`d npz (and `crops`, an rgb_crops folder): its clips in an InMemoryKeypoints."""
    import polars as pl

    from miga.datasets import imigue
    from miga.io import InMemoryKeypoints
    from miga.track1.pipeline import Track1Data
    from miga.track1.rgb import load_crops

    with np.load(npz) as saved:
        ends, lengths, keypoints = np.cumsum(saved["lengths"]), saved["lengths"], saved["keypoints"]
        ids = [str(s) for s in saved["ids"]]
        store = InMemoryKeypoints({s: keypoints[:, e - n:e] for s, e, n in zip(ids, ends, lengths)}, str(saved["layout"]), name=npz)
        labels = [int(x) if x >= 0 else None for x in saved["labels"]]
        manifest = pl.DataFrame({"sample_id": ids, "split": [str(s) for s in saved["splits"]], "label": labels},
                                schema={"sample_id": pl.String, "split": pl.String, "label": pl.Int64})
        num_classes = int(saved["num_classes"]) if "num_classes" in saved.files else imigue.NUM_CLASSES  # npz of before
    return Track1Data(manifest, store, load_crops(Path(crops)) if crops else None, num_classes)


def _top1(probs: np.ndarray, labels: np.ndarray) -> float:
    labelled = labels >= 0
    return float((probs[labelled].argmax(1) == labels[labelled]).mean()) if labelled.any() else float("nan")


def _train_one(npz: str, config: dict, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from miga.track1 import pipeline, recipe

    data = packed_data(npz, config["crops"])
    params = validated(config["params"])  # every key, the schema's defaults filled in
    stream = config["stream"]
    if recipe.STREAMS[stream].uses_rgb and data.crops is None:
        raise SystemExit(f"{config['name']}: stream {stream} reads RGB crops: pass --crops")
    options = recipe.train_config(stream, params["track1"]["train"])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        history = pipeline.train_stream(stream, params, data, project=Path(tmp), options=options)
        seconds = time.perf_counter() - start
        rows = data.split("val", "test")
        scores = pipeline.stream_scores(params, data, rows, project=Path(tmp))[stream]
    in_split = {split: (rows["split"] == split).to_numpy() for split in ("val", "test")}
    probs = {split: scores[mask] for split, mask in in_split.items()}
    labels = {split: pipeline.labels_of(rows)[mask] for split, mask in in_split.items()}
    if config.get("scores_dir"):  # for late fusion of separately trained streams afterwards
        np.savez(Path(config["scores_dir"]) / f"{config['name']}.npz", val=probs["val"], test=probs["test"],
                 val_labels=labels["val"], test_labels=labels["test"])
    return {
        "name": config["name"], "stream": stream, "val_top1": _top1(probs["val"], labels["val"]),
        "best_val": max(h.get("val_top1", 0) for h in history),
        "test_top1": _top1(probs["test"], labels["test"]), "train_s": round(seconds, 1),
        "clips_per_s": round(data.split("train").height * options.epochs / seconds, 1),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def sweep_params(base: dict, config: dict) -> dict:
    """params.yaml with a config's `track1` overrides, and the fusion that trains and scores its one stream."""
    stream = config.get("stream", "pose")
    overrides = {k: v for k, v in config.items() if k not in ("name", "stream")}
    fusion = {"fusion": "crossattn"} if stream == "fused" else {"fusion": "none", "streams": [stream]}
    return merged(base, {"track1": merged(overrides, {"model": fusion})})


def run(npz: Path, configs: Path, params: Path, jobs: int, threads: int, crops: Path | None, scores_dir: Path | None) -> None:
    base = yaml.safe_load(params.read_text())
    sweep = [{"name": c["name"], "stream": c.get("stream", "pose"), "crops": str(crops) if crops else None,
              "scores_dir": str(scores_dir) if scores_dir else None, "params": sweep_params(base, c)}
             for c in json.loads(configs.read_text())]
    if scores_dir:
        scores_dir.mkdir(parents=True, exist_ok=True)
    print(f"# {len(sweep)} configs, {jobs} at a time, {threads} torch threads each", flush=True)
    with ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(_train_one, str(npz), config, threads): config for config in sweep}
        for future in as_completed(futures):
            config = futures[future]
            try:
                print(json.dumps(future.result()), flush=True)
            except (Exception, SystemExit) as error:  # one bad config does not stop the sweep
                print(json.dumps({"name": config["name"], "error": repr(error)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=Path("sweep.npz"))
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    r = sub.add_parser("run")
    r.add_argument("npz", type=Path)
    r.add_argument("--configs", type=Path, required=True, help="JSON list of {name, stream, and track1 section overrides}")
    r.add_argument("--params", type=Path, default=REPO / "params.yaml")
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // 4))
    r.add_argument("--crops", type=Path, help="rgb_crops folder of the rgb stage (for configs with stream rgb or fused)")
    r.add_argument("--scores-dir", type=Path, help="save each config's val/test probabilities here")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.params)
    else:
        run(args.npz, args.configs, args.params, args.jobs, args.threads, args.crops, args.scores_dir)


if __name__ == "__main__":
    main()
