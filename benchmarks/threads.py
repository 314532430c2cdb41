"""Training step time of the default Track 1 pose model (Conv3d) and Track 2 detector (Conv1d)
on 1 and on 2 torch threads, each in a fresh process (the thread pool is per process).

    python benchmarks/threads.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STEP = r"""
import sys, time, torch
from miga.track1 import recipe as track1
from miga.models import build_model
from miga.params import load_params
torch.set_num_threads(int(sys.argv[1]))
params = load_params(sys.argv[2])
if sys.argv[3] == "track1":
    heatmap = params["heatmap"]
    model = track1.build_stream("pose", params["model"], track1.StreamInputs(track1.pose_channels(heatmap), 32))
    batch = int(params["train"]["batch_size"])
    x = torch.randn(batch, track1.pose_channels(heatmap), int(heatmap["clip_len"]), int(heatmap["size"]), int(heatmap["size"]))
    run = lambda: model(x).sum().backward()
else:
    t2 = params["track2"]
    model = build_model("temporal_detector", in_features=200, num_classes=17, channels=int(t2["channels"]), layers=int(t2["layers"]), levels=int(t2["levels"]))
    batch = int(t2["batch_size"])
    x = torch.randn(batch, 200, int(t2["window"]))
    def run():
        logits, distances = model(x)
        (logits.sum() + distances.sum()).backward()
run()
start = time.perf_counter()
for _ in range(5):
    run()
print(f"{(time.perf_counter() - start) / 5 * 1000:.1f}")
"""


def main() -> None:
    print("model                         batch  1 thread ms/step  2 threads ms/step")
    for name in ("track1", "track2"):
        times = [float(subprocess.run([sys.executable, "-c", STEP, str(n), str(REPO / "params.yaml"), name], capture_output=True,
                                      text=True, check=True, cwd=REPO).stdout.strip()) for n in (1, 2)]
        label = "track1 pose SlowOnly (Conv3d)" if name == "track1" else "track2 detector (Conv1d)"
        print(f"{label:30s}       {times[0]:16.1f}  {times[1]:17.1f}   (2 threads: {times[0] / times[1]:.2f}x the speed of 1)")


if __name__ == "__main__":
    main()
