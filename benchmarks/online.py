"""Streaming Track 2 (`miga online`) on this CPU: ms per frame, decision delay, and F1 against offline.

Run inside a project where `dvc repro` has trained and evaluated Track 2 (the embedded default):

    python benchmarks/online.py --project . --split test

For every sequence of the split it feeds the skeleton frame by frame through the online
detector (window/hop/guard as `miga online` uses them), then scores the streamed detections
and the offline ones (`data/predictions/track2_detections.parquet`) against the ground truth.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `miga` and `stages` of this checkout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--split", default="test")
    parser.add_argument("--window", type=int, default=512)
    parser.add_argument("--hop", type=int, default=16)
    parser.add_argument("--guard", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a live stream gets one core)")
    args = parser.parse_args()
    os.chdir(args.project)

    import torch

    torch.set_num_threads(args.threads)
    from miga.evaluation.metrics import detection_metrics
    from miga.io import read_parquet
    from miga.params import load_params
    from miga.project import TRACK2_DETECTIONS as DETECTIONS
    from miga.track2.online import build_online, emitted_table, run_stream
    from miga.track2.pipeline import Track2Data

    config = load_params(Path("params.yaml"))
    data = Track2Data(config)
    ids = data.manifest.filter(pl.col("split") == args.split)["sample_id"].to_list()
    streamed, frames, seconds, delays = [], 0, 0.0, []
    for sample_id in ids:
        detector, layout = build_online(config, window=args.window, hop=args.hop, guard=args.guard)
        if layout != data.store.layout:
            raise SystemExit(f"model layout {layout} != keypoint layout {data.store.layout}")
        keypoints = data.store[sample_id]
        started = time.perf_counter()
        list(run_stream(detector, keypoints[0]))
        seconds += time.perf_counter() - started
        frames += keypoints.shape[1]
        delays += detector.stats.delays
        streamed.append(emitted_table(sample_id, detector.emitted))
    truth = data.segments.filter(pl.col("sample_id").is_in(ids))
    offline = read_parquet(DETECTIONS).filter(pl.col("sample_id").is_in(ids))
    iou = float(config["evaluate"]["iou_threshold"])
    score = lambda d: detection_metrics(truth, d, num_classes=data.num_classes, iou_threshold=iou)  # noqa: E731
    online, batch = score(pl.concat(streamed)), score(offline)
    ms = 1000 * seconds / frames
    print(f"sequences {len(ids)} ({args.split}), frames {frames}, window {args.window}, hop {args.hop}, guard {args.guard}, "
          f"torch threads {args.threads}")
    print(f"streaming: {ms:.2f} ms/frame ({1000 / ms:.0f} frames/s; real time at 30 fps needs <= 33.3 ms/frame)")
    print(f"decision delay after a gesture ends: mean {np.mean(delays):.1f}, median {np.median(delays):.0f}, max {np.max(delays)} frames")
    for name, result in (("offline", batch), ("streaming", online)):
        print(f"{name:9s} F1 {result['official']['f1']:.4f} (P {result['official']['precision']:.3f}, R {result['official']['recall']:.3f}), "
              f"one-to-one F1 {result['one_to_one']['f1']:.4f}, detections {result['official']['num_pred']}")


if __name__ == "__main__":
    main()
