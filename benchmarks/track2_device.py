"""Track 2 on whatever torch device is present (CUDA with bf16 autocast, else the CPU), from a self-contained folder.

`prepare` runs in a project where `dvc repro` has ingested the Track 2 dataset; it writes a few
sequences' keypoints, their manifest rows and segments, the class names and the project's `track2`
options to one folder. `run` needs only the `miga` package and its Python requirements (no DVC, no
project files), so it also runs on a lent machine with a GPU:

    python -m benchmarks.track2_device prepare --project . --out sweep/track2_device --train 8 --val 2 --test 2
    python -m benchmarks.track2_device run sweep/track2_device --epochs 40                 # cuda if present
    CUDA_VISIBLE_DEVICES= python -m benchmarks.track2_device run sweep/track2_device --epochs 40   # the CPU

`run` calls what the Track 2 stages call: `miga.track2.pipeline.fit_detector` (the configured
`track2.model.detector`, with the stage's mirror and affine copies and its `model.ensemble` members)
on the train sequences, then `tuned_detections` (score threshold and decoding setting tuned on the val
sequences for F1, official rule); the test sequences are scored with `detection_metrics`. It prints the
device, the training seconds (all ensemble members; `s_per_epoch` = train_s / epochs), the decoding
seconds (features, inference and the val tuning: `inference_s`) and the F1s. A folder written by the
`prepare` of before the params regrouping (no manifest.parquet) must be prepared again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `miga` of this checkout


def prepare(project: Path, out: Path, counts: dict[str, int]) -> None:
    from miga.params import load_params
    from miga.track2.pipeline import Track2Data

    config = load_params(project / "params.yaml")
    data = Track2Data(config, project=project)
    chosen = {split: data.manifest.filter(pl.col("split") == split)["sample_id"].to_list()[:n] for split, n in counts.items()}
    ids = [sid for split in chosen.values() for sid in split]
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "keypoints.npz", **{sid: data.store[sid].astype(np.float32) for sid in ids})
    data.manifest.filter(pl.col("sample_id").is_in(ids)).write_parquet(out / "manifest.parquet")
    data.segments.filter(pl.col("sample_id").is_in(ids)).write_parquet(out / "segments.parquet")
    meta = {"splits": chosen, "layout": data.store.layout, "num_classes": data.num_classes, "class_names": data.class_names,
            "options": config["track2"], "iou_threshold": float(config["evaluate"]["iou_threshold"])}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"{out}: {', '.join(f'{k} {len(v)}' for k, v in chosen.items())} sequences", flush=True)


def load(folder: Path, epochs: int | None = None, seed: int | None = None, detector: str | None = None):
    """(validated config, Track2Data) of a prepared folder, the command line's overrides laid over its `track2` options."""
    from miga.io import InMemoryKeypoints
    from miga.params import merged, validated
    from miga.track2.pipeline import Track2Data

    meta = json.loads((folder / "meta.json").read_text())
    if not (folder / "manifest.parquet").exists() or "class_names" not in meta:
        raise SystemExit(f"{folder}: prepared by an older benchmarks/track2_device.py (no manifest.parquet); run prepare again")
    train = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
    options = merged(meta["options"], {"train": train, **({"model": {"detector": detector}} if detector else {})})
    config = validated({"track2": options, "evaluate": {"iou_threshold": float(meta["iou_threshold"])}}, folder / "meta.json")
    with np.load(folder / "keypoints.npz") as saved:
        store = InMemoryKeypoints({sid: saved[sid] for sid in saved.files}, meta["layout"], name=str(folder / "keypoints.npz"))
    data = Track2Data.from_tables(meta["class_names"], pl.read_parquet(folder / "manifest.parquet"),
                                  pl.read_parquet(folder / "segments.parquet"), store)
    return config, data


def run(folder: Path, epochs: int | None, seed: int | None, detector: str | None = None) -> dict:
    import torch

    from miga.evaluation.metrics import detection_metrics
    from miga.track2 import recipe as track2
    from miga.track2.pipeline import fit_detector, tuned_detections
    from miga.training import device

    config, data = load(folder, epochs, seed, detector)
    options = config["track2"]
    dev = device()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model, standardize, _, history, _ = fit_detector(config, data, checkpoint=Path(tmp) / "last.pt")
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - started
    started = time.perf_counter()
    detections, threshold, trials, _, test_ids = tuned_detections(config, model, standardize, data)
    infer_s = time.perf_counter() - started
    in_test = pl.col("sample_id").is_in(test_ids)
    result = detection_metrics(data.segments.filter(in_test), detections.filter(in_test), num_classes=data.num_classes,
                               iou_threshold=float(config["evaluate"]["iou_threshold"]))
    epochs_run = int(options["train"]["epochs"])
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    summary = {
        "device": name, "torch": torch.__version__, "detector": track2.detector_of(options), "epochs": epochs_run,
        "ensemble": int(options["model"]["ensemble"]),
        "train_s": round(train_s, 1), "s_per_epoch": round(train_s / epochs_run, 3), "inference_s": round(infer_s, 2),
        "final_loss": round(history[-1]["loss"], 4), "loss_finite": bool(all(np.isfinite(h["loss"]) for h in history)),
        "threshold": threshold, "val_f1": round(max((t["f1"] for t in trials), default=float("nan")), 4),
        "test_f1": round(result["official"]["f1"], 4), "test_f1_one_to_one": round(result["one_to_one"]["f1"], 4),
    }
    print(json.dumps(summary), flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("prepare")
    p.add_argument("--project", type=Path, default=Path("."))
    p.add_argument("--out", type=Path, required=True)
    for split, n in (("train", 8), ("val", 2), ("test", 2)):
        p.add_argument(f"--{split}", type=int, default=n)
    r = commands.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--epochs", type=int, help="instead of track2.train.epochs")
    r.add_argument("--seed", type=int, help="instead of track2.train.seed")
    r.add_argument("--detector", help="instead of track2.model.detector (anchorfree, window, frame)")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.project, args.out.resolve(), {"train": args.train, "val": args.val, "test": args.test})
    else:
        run(args.folder, args.epochs, args.seed, args.detector)


if __name__ == "__main__":
    main()
