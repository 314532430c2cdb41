"""Does the Track 1 loader keep the default pose model fed on this CPU?

Measures, in one run and with the params.yaml defaults (`track1`'s heatmap + model + train sections):
  - loader rate: clips/s delivered by the DataLoader over the pose stream's clips (`miga.track1.recipe.clip_dataset`,
    train mode: sampling, crop, flip, Numba rasterization) with `--workers` worker processes, over full epochs;
  - model rate: clips/s the default pose model trains at (forward + backward + SGD step) on
    ready tensors (no loading at all);
  - memory: resident set size of the main process + workers at the end of each epoch.

    python benchmarks/loader.py --clips 512 --epochs 3 --workers 2
    python benchmarks/loader.py --clips 64 --epochs 1 --overrides configs/imigue_full.yaml --batch 4 --model-batches 3
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from miga.datasets import imigue
from miga.io import InMemoryKeypoints
from miga.layouts import OPENPOSE25_HANDS10
from miga.params import merged, validated
from miga.track1 import recipe as track1

REPO = Path(__file__).resolve().parents[1]


def fake_clips(count: int, seed: int = 0) -> InMemoryKeypoints:
    """In-memory keypoints shaped like iMiGUE clips (1 person, 30-90 frames, 35 joints)."""
    rng = np.random.default_rng(seed)
    clips = {}
    for i in range(count):
        frames = int(rng.integers(30, 91))
        kp = np.zeros((1, frames, 35, 3), np.float32)
        kp[..., 0] = rng.uniform(100, 220, (1, 1, 35)) + rng.normal(0, 2, (1, frames, 35))
        kp[..., 1] = rng.uniform(20, 170, (1, 1, 35)) + rng.normal(0, 2, (1, frames, 35))
        kp[..., 2] = rng.uniform(0.3, 1, (1, frames, 35))
        clips[f"{i:04d}_0"] = kp
    return InMemoryKeypoints(clips, OPENPOSE25_HANDS10.name, name="fake iMiGUE clips")


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as handle:
                total += next(int(line.split()[1]) for line in handle if line.startswith("VmRSS"))
        except (FileNotFoundError, StopIteration):
            pass
    return total / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model-batches", type=int, default=12)
    parser.add_argument("--overrides", type=Path, help="YAML merged over params.yaml, e.g. configs/imigue_full.yaml")
    parser.add_argument("--batch", type=int, help="batch size (default: track1.train.batch_size)")
    args = parser.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    if args.overrides:
        params = merged(params, yaml.safe_load(args.overrides.read_text()))
    params = validated(params, args.overrides or REPO / "params.yaml")["track1"]  # every key, the schema's defaults filled in
    batch = args.batch or int(params["train"]["batch_size"])
    torch.set_num_threads(os.cpu_count() or 1)

    store = fake_clips(args.clips)
    ids = sorted(store.ids)
    data = track1.clip_dataset("pose", ids, np.zeros(len(ids), np.int64), params["heatmap"], train=True, seed=0, store=store)
    print(f"clips {args.clips}, batch {batch}, workers {args.workers}, clip shape {tuple(data[0][0].shape)}")

    for epoch in range(args.epochs):
        data.set_epoch(epoch)
        loader = DataLoader(data, batch_size=batch, shuffle=False, num_workers=args.workers, persistent_workers=False)
        start = time.perf_counter()
        iterator = iter(loader)
        delivered = 0
        for inputs, _ in iterator:
            delivered += len(inputs)
        elapsed = time.perf_counter() - start
        pids = [os.getpid()] + [w.pid for w in getattr(iterator, "_workers", [])]
        print(f"loader epoch {epoch + 1}: {delivered / elapsed:8.1f} clips/s  (rss main+workers {rss_mib(pids):7.1f} MiB)")

    model = track1.build_stream("pose", dict(params["model"], prototypes=False),
                                track1.StreamInputs(track1.pose_channels(params["heatmap"]), imigue.NUM_CLASSES, store.layout))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    inputs, labels = torch.stack([data[i][0] for i in range(batch)]), torch.zeros(batch, dtype=torch.long)
    for step in range(args.model_batches + 2):
        if step == 2:
            start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    rate = args.model_batches * batch / (time.perf_counter() - start)
    print(f"model train step:  {rate:8.1f} clips/s  ({sum(p.numel() for p in model.parameters()):,} parameters, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
