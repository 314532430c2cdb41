"""Training step time of the default Track 1 pose model (Conv3d) and Track 2 detector (Conv1d; one member of
`track2.model.ensemble`) on 1 and on 2 torch threads, each in a fresh process (the thread pool is per process).

    python benchmarks/threads.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STEP = r"""
import sys, time, torch
from miga.datasets import imigue
from miga.params import load_params
from miga.track1 import recipe as track1
from miga.track2 import recipe as track2
torch.set_num_threads(int(sys.argv[1]))
params = load_params(sys.argv[2])
if sys.argv[3] == "track1":
    heatmap = params["track1"]["heatmap"]
    model = track1.build_stream("pose", params["track1"]["model"], track1.StreamInputs(track1.pose_channels(heatmap), imigue.NUM_CLASSES))
    batch = int(params["track1"]["train"]["batch_size"])
    x = torch.randn(batch, track1.pose_channels(heatmap), int(heatmap["clip_len"]), int(heatmap["size"]), int(heatmap["size"]))
    run = lambda: model(x).sum().backward()
else:
    options = track2.single(params["track2"])  # one ensemble member: each trains on its own
    model = track2.build_detector(options, 200, 17)
    batch = int(options["train"]["batch_size"])
    x = torch.randn(batch, 200, int(options["train"]["window"]))
    def run():
        out = model(x)
        sum(o.sum() for o in (out if isinstance(out, tuple) else (out,))).backward()
run()
start = time.perf_counter()
for _ in range(5):
    run()
print(f"{(time.perf_counter() - start) / 5 * 1000:.1f}")
"""


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    print("model                         batch  1 thread ms/step  2 threads ms/step")
    for name in ("track1", "track2"):
        times = [float(subprocess.run([sys.executable, "-c", STEP, str(n), str(REPO / "params.yaml"), name], capture_output=True,
                                      text=True, check=True, cwd=REPO).stdout.strip()) for n in (1, 2)]
        label = "track1 pose SlowOnly (Conv3d)" if name == "track1" else "track2 detector (Conv1d)"
        print(f"{label:30s}       {times[0]:16.1f}  {times[1]:17.1f}   (2 threads: {times[0] / times[1]:.2f}x the speed of 1)")


if __name__ == "__main__":
    main()
