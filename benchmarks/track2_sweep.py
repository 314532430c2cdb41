"""Which Track 2 settings reach what F1? Trains one detector per variant on a project's interim data.

Run inside (or point `--project` at) a project where `dvc repro` has ingested the Track 2 dataset:

    python -m benchmarks.track2_sweep --project . '{}' '{"detector": "window"}' '{"layers": 6, "mirror": true}'

Each argument is a JSON object of `track2` overrides on the project's params.yaml. A variant is
trained and decoded with the functions the `train_track2` and `predict_track2` stages use
(`fit_detector`, `tuned_detections`: threshold tuned on val for F1), in a temporary checkpoint,
and scored on the test split at `evaluate.iou_threshold`. Prints one line per variant: val F1 at the
tuned threshold, test F1 (official rule, P / R), one-to-one F1 and training seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `stages` of this checkout, whatever the project directory


def run_variant(config: dict, overrides: dict, checkpoint: Path) -> dict:
    from miga.metrics import detection_metrics
    from stages import track2 as stage

    config = copy.deepcopy(config)
    config["track2"].update(overrides)
    started = time.perf_counter()
    model, standardize, _, _, _ = stage.fit_detector(config, checkpoint=checkpoint, log_dir=None)
    train_s = time.perf_counter() - started
    detections, threshold, trials, _, test_ids = stage.tuned_detections(config, model, standardize)
    data = stage.Track2Data(config)
    result = detection_metrics(data.segments.filter(pl.col("sample_id").is_in(test_ids)),
                               detections.filter(pl.col("sample_id").is_in(test_ids)), num_classes=data.num_classes,
                               iou_threshold=float(config["evaluate"]["iou_threshold"]))
    val_f1 = max((t["f1"] for t in trials), default=float("nan"))
    return {"threshold": threshold, "val_f1": val_f1, "test": result["official"], "one_to_one": result["one_to_one"], "train_s": train_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("variants", nargs="+", help="JSON objects of track2 overrides ('{}' = params.yaml as is)")
    args = parser.parse_args()
    os.chdir(args.project)
    config = yaml.safe_load(Path("params.yaml").read_text())
    print(f"track2 sweep on {config['track2'].get('dataset', 'smg')} ({args.project.resolve()})", flush=True)
    for text in args.variants:
        overrides = json.loads(text)
        with tempfile.TemporaryDirectory() as tmp:
            r = run_variant(config, overrides, Path(tmp) / "last.pt")
        test, strict = r["test"], r["one_to_one"]
        print(f"{json.dumps(overrides)}: val F1 {r['val_f1']:.3f} (threshold {r['threshold']}); test F1 {test['f1']:.3f} "
              f"(P {test['precision']:.3f} / R {test['recall']:.3f}), one-to-one {strict['f1']:.3f}; train {r['train_s']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
