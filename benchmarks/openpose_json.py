"""How fast does the OpenPose JSON reader (miga.datasets.openpose_json) read a whole iMiGUE interview?

Reads all 21,068 frames of the authors' OpenPose output of interview 298
(../shared/realdata/imigue_real/298_openpose_json.tar.gz, extracted once to --cache; never into the
repository) `--repeats` times and prints the best and median frames/s, split into listing + parsing
(`read_people`) and choosing the subject (`choose_person`). The best run is the least disturbed
(shared 2-core VM).

    python benchmarks/openpose_json.py
    python benchmarks/openpose_json.py --repeats 5 --cache /tmp/miga_openpose298
"""

from __future__ import annotations

import argparse
import statistics
import tarfile
import time
from pathlib import Path

from miga.datasets.openpose_json import _loads, choose_person, read_people

from benchmarks.realdata import REALDATA

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = REALDATA / "imigue_real" / "298_openpose_json.tar.gz"


def extracted(archive: Path, cache: Path) -> Path:
    folder = cache / "298"
    if folder.is_dir() and sum(1 for _ in folder.glob("*_keypoints.json")) == 21068:
        return folder
    if not archive.is_file():
        raise SystemExit(f"real iMiGUE OpenPose output not found at {archive}")
    cache.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as members:
        members.extractall(cache, filter="data")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=ARCHIVE)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/miga_openpose298"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = extracted(args.archive, args.cache)
    totals, reads, chooses = [], [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        people = read_people(folder)
        middle = time.perf_counter()
        points, choice = choose_person(people)
        end = time.perf_counter()
        reads.append(middle - start)
        chooses.append(end - middle)
        totals.append(end - start)
    frames = len(points)
    print(f"{folder}: {frames} frames, {sum(len(p) for p in people)} people, parser {_loads.__module__}")
    print(f"subject: {choice.reason}")
    for name, times in (("read_openpose_json", totals), ("  read_people", reads), ("  choose_person", chooses)):
        print(f"{name:20s} best {min(times):6.2f} s = {frames / min(times):8.0f} frames/s, "
              f"median {statistics.median(times):6.2f} s = {frames / statistics.median(times):8.0f} frames/s")


if __name__ == "__main__":
    main()
