"""Track 2 on whatever torch device is present (CUDA with bf16 autocast, else the CPU), from a self-contained folder.

`prepare` runs in a project where `dvc repro` has ingested the Track 2 dataset; it writes a few
sequences' keypoints, their segments and the project's `track2` options to one folder. `run` needs
only the `miga` library (NumPy, polars, PyTorch: no DVC, no video decoding), so it also runs on a
machine with a GPU and little else installed:

    python -m benchmarks.track2_device prepare --project . --out sweep/track2_device --train 8 --val 2 --test 2
    python -m benchmarks.track2_device run sweep/track2_device --epochs 40                 # cuda if present
    CUDA_VISIBLE_DEVICES= python -m benchmarks.track2_device run sweep/track2_device --epochs 40   # the CPU

`run` trains `track2.detector` with the library the `train_track2` stage uses (`training_set`,
`build_detector`, `fit`), tunes the score threshold on the val sequences for F1 and scores the test
ones (official rule), and prints the device, seconds per epoch and the F1s.
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
    data.segments.filter(pl.col("sample_id").is_in(ids)).write_parquet(out / "segments.parquet")
    meta = {"splits": chosen, "layout": data.store.layout, "num_classes": data.num_classes,
            "options": config["track2"], "iou_threshold": float(config["evaluate"]["iou_threshold"])}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    print(f"{out}: {', '.join(f'{k} {len(v)}' for k, v in chosen.items())} sequences", flush=True)


def run(folder: Path, epochs: int | None, seed: int | None, detector: str | None = None) -> dict:
    import torch

    from miga.params import defaults
    from miga.track2 import recipe as track2
    from miga.evaluation.metrics import detection_metrics
    from miga.training import device, fingerprint, fit, seed_everything

    meta = json.loads((folder / "meta.json").read_text())
    options = {**defaults("track2"), **meta["options"], **({"epochs": epochs} if epochs else {}), **({"seed": seed} if seed is not None else {}),
               **({"detector": detector} if detector else {})}
    config = track2.train_config(options)
    seed_everything(config.seed)
    torch.set_num_threads(int(options["threads"]))
    keypoints = np.load(folder / "keypoints.npz")
    segments = pl.read_parquet(folder / "segments.parquet")
    features = {sid: track2.frame_features(keypoints[sid], meta["layout"], track2.feature_config(options)) for split in meta["splits"].values() for sid in split}
    train_ids = meta["splits"]["train"]
    standardize = track2.Standardizer.fit([features[sid] for sid in train_ids])
    inputs = [standardize(features[sid]) for sid in train_ids]
    per_sequence = [segments.filter(pl.col("sample_id") == sid) for sid in train_ids]
    dataset, loss_fn = track2.training_set(options, inputs, per_sequence, meta["num_classes"], config.seed)
    model = track2.build_detector(options, inputs[0].shape[1], meta["num_classes"])
    dev = device()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        history = fit(model, dataset, config=config, loss_fn=loss_fn, checkpoint=Path(tmp) / "last.pt",
                      run_id=fingerprint(options, train_ids), description="track2")
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - started
    scored = {sid: standardize(features[sid]) for split in ("val", "test") for sid in meta["splits"][split]}
    started = time.perf_counter()
    decode_at = track2.make_decoder(model, options, scored)
    infer_s = time.perf_counter() - started
    val, test = meta["splits"]["val"], meta["splits"]["test"]
    iou = meta["iou_threshold"]
    threshold, trials = track2.tune_for_f1(lambda t: decode_at(t).filter(pl.col("sample_id").is_in(val)),
                                           segments.filter(pl.col("sample_id").is_in(val)), [float(t) for t in options["thresholds"]],
                                           meta["num_classes"], iou)
    result = detection_metrics(segments.filter(pl.col("sample_id").is_in(test)), decode_at(threshold).filter(pl.col("sample_id").is_in(test)),
                               num_classes=meta["num_classes"], iou_threshold=iou)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)"
    summary = {
        "device": name, "torch": torch.__version__, "detector": track2.detector_of(options), "epochs": config.epochs,
        "train_s": round(train_s, 1), "s_per_epoch": round(train_s / config.epochs, 3), "inference_s": round(infer_s, 2),
        "final_loss": round(history[-1]["loss"], 4), "loss_finite": bool(all(np.isfinite(h["loss"]) for h in history)),
        "threshold": threshold, "val_f1": round(max(t["f1"] for t in trials), 4),
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
    r.add_argument("--epochs", type=int, help="instead of track2.epochs")
    r.add_argument("--seed", type=int, help="instead of track2.seed")
    r.add_argument("--detector", help="instead of track2.detector (anchorfree, window, frame)")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.project, args.out.resolve(), {"train": args.train, "val": args.val, "test": args.test})
    else:
        run(args.folder, args.epochs, args.seed, args.detector)


if __name__ == "__main__":
    main()
