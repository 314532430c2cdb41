"""Which Track 1 pose-stream settings reach what accuracy, at what training cost?

Two steps, so the sweep can run on a machine that holds only torch, numba and numpy:

    python -m benchmarks.track1_sweep prepare --out sweep.npz        # here, after `dvc repro pose@imigue`
    python -m benchmarks.track1_sweep run sweep.npz --configs configs.json --jobs 4

`prepare` packs the iMiGUE keypoints (in the heatmap layout), labels and splits of the current
pipeline's interim data into one npz. `run` trains a stream once per config (a JSON list of
{"name": ..., "stream": "pose" | "rgb" | "fused", "heatmap": {...}, "model": {...}, "train": {...}},
overrides of params.yaml; rgb and fused need `--crops`, the rgb stage's rgb_crops.npz),
with the library the `train_track1` stage uses (PoseClips, build_stream, make_loss, fit), on
CUDA when present, `--jobs` configs at a time in separate processes, and prints val and test
top-1 (test views averaged as in `predict`) and the training throughput in clips/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import yaml
from miga.params import load_params, merged, validated

REPO = Path(__file__).resolve().parents[1]




def prepare(out: Path, params: Path) -> None:
    import polars as pl

    from miga.io import KeypointStore
    from miga.layouts import convert

    layout = load_params(params)["heatmap"]["layout"]
    manifest = pl.read_parquet(REPO / "data/interim/imigue/manifest.parquet").filter(pl.col("split") != "unused")
    store = KeypointStore(REPO / "data/interim/imigue/keypoints.parquet")
    ids = manifest["sample_id"].to_list()
    clips = [convert(store[s], store.layout, layout) for s in ids]
    lengths = np.array([c.shape[1] for c in clips])
    persons = {c.shape[0] for c in clips}
    if len(persons) != 1:
        raise SystemExit(f"prepare expects one person count per clip, got {sorted(persons)}")
    np.savez_compressed(
        out, keypoints=np.concatenate(clips, axis=1), lengths=lengths, layout=np.array(layout),
        labels=manifest["label"].fill_null(-1).to_numpy(), splits=np.array(manifest["split"].to_list()),
        ids=np.array(ids),
    )
    print(f"{out}: {len(ids)} clips, {lengths.sum()} frames, layout {layout}")


class _ArrayStore:
    """What PoseClips reads from a KeypointStore: `store[sample_id]` and `store.layout`."""

    def __init__(self, data):
        self.layout = str(data["layout"])
        ends = np.cumsum(data["lengths"])
        keypoints = data["keypoints"]
        self.clips = {s: keypoints[:, e - n:e] for s, e, n in zip(data["ids"], ends, data["lengths"])}

    def __getitem__(self, sample_id):
        return self.clips[sample_id]


class _Stub(types.ModuleType):
    """Stands in for polars where it is not installed: miga.io names its types at import time."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return type(name, (), {})


def _train_one(npz: str, config: dict, threads: int) -> dict:
    import torch

    if os.environ.get("SWEEP_NO_POLARS"):  # to try the stub where polars is installed
        sys.modules["polars"] = None
    if not isinstance(sys.modules.get("polars"), types.ModuleType):
        try:
            import polars  # noqa: F401
        except ImportError:  # miga.io imports polars at module level; the sweep never calls it
            sys.modules["polars"] = _Stub("polars")

    torch.set_num_threads(threads)
    from miga.track1 import recipe as track1
    from miga.training import TrainConfig, fit, seed_everything

    data = np.load(npz)
    store = _ArrayStore(data)
    labels, splits, ids = data["labels"], data["splits"], data["ids"]
    params = validated(config["params"])  # every key, the schema's defaults filled in
    stream = config.get("stream", "pose")
    heatmap, model_params, train = params["heatmap"], params["model"], params["train"]
    options = TrainConfig.from_params(train)
    crops = None
    if stream != "pose":
        with np.load(config["crops"], allow_pickle=False) as saved:  # the format of miga.rgb.load_crops
            crops = dict(zip(saved["sample_ids"].tolist(), saved["crops"]))

    def clips(split, is_train):
        mask = splits == split
        data = track1.clip_dataset(stream, list(ids[mask]), labels[mask], heatmap, train=is_train, seed=options.seed,
                                   store=store, crops=crops)
        return data, labels[mask]

    seed_everything(options.seed)
    model = track1.build_stream(stream, model_params, track1.StreamInputs(track1.pose_channels(heatmap), 32))
    train_set, train_labels = clips("train", True)
    val_set, val_labels = clips("val", False)
    test_set, test_labels = clips("test", False)

    def validate(epoch, stats):
        return {"val_top1": float((track1.view_averaged_probabilities(model, val_set).argmax(1) == val_labels).mean())}

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        history = fit(model, train_set, config=options, loss_fn=track1.make_loss(model_params),
                      checkpoint=Path(tmp) / "ckpt.pt", run_id=config["name"], labels=train_labels,
                      on_epoch=validate, description=config["name"])
    seconds = time.perf_counter() - start
    val_probs = track1.view_averaged_probabilities(model, val_set)
    test_probs = track1.view_averaged_probabilities(model, test_set)
    if config.get("scores_dir"):  # for late fusion of separately trained streams afterwards
        np.savez(Path(config["scores_dir"]) / f"{config['name']}.npz", val=val_probs, test=test_probs,
                 val_labels=val_labels, test_labels=test_labels)
    return {
        "name": config["name"], "stream": stream, "val_top1": float((val_probs.argmax(1) == val_labels).mean()),
        "best_val": max(h.get("val_top1", 0) for h in history),
        "test_top1": float((test_probs.argmax(1) == test_labels).mean()), "train_s": round(seconds, 1),
        "clips_per_s": round(len(train_set) * options.epochs / seconds, 1),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }


def run(npz: Path, configs: Path, params: Path, jobs: int, threads: int, crops: Path | None, scores_dir: Path | None) -> None:
    base = yaml.safe_load(params.read_text())
    extra = {"name", "stream"}
    sweep = [{"name": c["name"], "stream": c.get("stream", "pose"), "crops": str(crops) if crops else None,
              "scores_dir": str(scores_dir) if scores_dir else None,
              "params": merged(base, {k: v for k, v in c.items() if k not in extra})}
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
            except Exception as error:  # one bad config does not stop the sweep
                print(json.dumps({"name": config["name"], "error": repr(error)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--out", type=Path, default=Path("sweep.npz"))
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    r = sub.add_parser("run")
    r.add_argument("npz", type=Path)
    r.add_argument("--configs", type=Path, required=True)
    r.add_argument("--params", type=Path, default=REPO / "params.yaml")
    r.add_argument("--jobs", type=int, default=1)
    r.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 1) // 4))
    r.add_argument("--crops", type=Path, help="rgb_crops.npz of the rgb stage (for configs with stream rgb or fused)")
    r.add_argument("--scores-dir", type=Path, help="save each config's val/test probabilities here")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.out, args.params)
    else:
        run(args.npz, args.configs, args.params, args.jobs, args.threads, args.crops, args.scores_dir)


if __name__ == "__main__":
    main()
