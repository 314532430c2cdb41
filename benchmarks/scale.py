"""Every stage at the real datasets' sizes: wall time and peak memory per stage on `quarter`, `half` and `full`.

    OMP_NUM_THREADS=1 python -m benchmarks.scale --scales quarter half full --out /tmp/miga-scale.json

For each scale a scratch project (`--workdir/<scale>`) gets this checkout's params.yaml with the synthetic preset
set to the scale and training cut to one epoch (Track 1: tcn, tcn_bone and pose on every clip; Track 2: one
detector, one epoch); then each stage's command from dvc.yaml runs in dvc.yaml's order, as `dvc repro` would run
it. The RGB stream needs every clip's video, and the presets render only a few interviews (rendering costs ~17x
the skeletons), so `rgb` and one epoch of the rgb stream also run on a second project holding just those
interviews ("video part"). Per stage: wall seconds and the peak resident memory of the process tree (the stage and
its workers, sampled every 0.2 s, as proportional set size: pages shared between forked workers count once).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]

MAIN_STAGES = [  # (name, command) in dvc.yaml's order
    ("synth", "python -m stages.synth"),
    ("ingest@imigue", "python -m stages.ingest --dataset imigue"),
    ("ingest@smg", "python -m stages.ingest --dataset smg"),
    ("pose@imigue", "python -m stages.pose --dataset imigue"),
    ("pose@smg", "python -m stages.pose --dataset smg"),
    ("train_track1", "python -m stages.track1 train"),
    ("predict_track1", "python -m stages.track1 predict"),
    ("evaluate_track1", "python -m stages.track1 evaluate"),
    ("train_track2", "python -m stages.track2 train"),
    ("predict_track2", "python -m stages.track2 predict"),
    ("evaluate_track2", "python -m stages.track2 evaluate"),
    ("emotion_events_labels", "python -m stages.emotion events --source labels"),
    ("emotion_events_track1", "python -m stages.emotion events --source track1"),
    ("emotion_events_track2", "python -m stages.emotion events --source track2"),
    ("emotion", "python -m stages.emotion run"),
]
VIDEO_STAGES = [
    ("ingest@imigue (video part)", "python -m stages.ingest --dataset imigue"),
    ("pose@imigue (video part)", "python -m stages.pose --dataset imigue"),
    ("rgb (video part)", "python -m stages.rgb"),
    ("train_track1 rgb (video part)", "python -m stages.track1 train"),
    ("predict_track1 rgb (video part)", "python -m stages.track1 predict"),
]


def set_key(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[last] = value


def scale_params(scale: str, workers: int) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in {
        "synth.preset": scale, "synth.workers": workers, "synth.imigue_edition": "2023",
        "track1.model.streams": ["tcn", "tcn_bone", "pose"], "track1.train.epochs": 1,
        "track1.train.per_stream.tcn.epochs": 1, "track1.train.per_stream.tcn_bone.epochs": 1,
        "track2.train.epochs": 1, "track2.train.warmup_epochs": 0, "track2.model.ensemble": 1,
    }.items():
        set_key(params, key, value)
    return params


def video_part_params(params: dict) -> dict:
    params = json.loads(json.dumps(params))
    set_key(params, "track1.model.streams", ["rgb"])
    set_key(params, "track1.model.fusion", "none")
    return params


def run_stage(command: str, project: Path, log) -> tuple[float, float]:
    """Run one stage command in `project`; (wall seconds, peak PSS of its process tree in MiB)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    process = subprocess.Popen(f"{command} --params params.yaml", shell=True, cwd=project, env=env, stdout=log, stderr=log)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        peak = max(peak, tree_memory(root))
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    if process.returncode:
        raise RuntimeError(f"{command} failed in {project} (exit {process.returncode}); see {log.name}")
    return seconds, peak / 2**20


def tree_memory(root: psutil.Process) -> int:
    """Proportional set size (PSS) of a process and its descendants, in bytes: pages shared between the stage and
    its forked workers count once in all, not once per process as RSS would."""
    total = 0
    try:
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in tree:
        try:
            total += process.memory_full_info().pss
        except psutil.Error:  # exited between listing and reading
            pass
    return total


def video_part_root(full_root: Path, part_root: Path) -> int:
    """A 2023-layout iMiGUE release of just the interviews that have an mp4 (links into `full_root`); their number."""
    if part_root.exists():
        shutil.rmtree(part_root)
    part_root.mkdir(parents=True)
    kept = set()
    for split_dir in sorted(full_root.glob("imigue_skeleton_*")):
        (part_root / split_dir.name).mkdir()
        for video in sorted(split_dir.iterdir()):
            if (video / f"{video.name}.mp4").exists():
                (part_root / split_dir.name / video.name).mkdir()
                for file in video.iterdir():  # hard links: the readers walk real folders
                    os.link(file, part_root / split_dir.name / video.name / file.name)
                kept.add(video.name)
    truth = full_root / "imigue_test_truth"
    (part_root / truth.name).mkdir()
    for label in truth.iterdir():
        if label.name.split("_")[0] in kept:
            os.link(label, part_root / truth.name / label.name)
    for table in ("video_subjects.csv", "video_emotions.csv"):
        lines = (full_root / table).read_text().splitlines()
        (part_root / table).write_text("\n".join([lines[0]] + [l for l in lines[1:] if l.split(",")[0] in kept]) + "\n")
    return len(kept)


def sizes(project: Path) -> dict:
    summary = {}
    for name in ("imigue", "smg"):
        path = project / f"data/raw/{name}/synth_summary.json"
        if path.exists():
            splits = json.loads(path.read_text())["splits"]
            summary[name] = {split: {k: v for k, v in part.items() if k in ("videos", "clips", "frames", "instances")}
                             for split, part in splits.items()}
    return summary


def measure(scale: str, workdir: Path, workers: int) -> dict:
    project = workdir / scale
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    params = scale_params(scale, workers)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    rows = []
    with open(project / "stages.log", "w") as log:
        for name, command in MAIN_STAGES:
            seconds, mib = run_stage(command, project, log)
            rows.append({"stage": name, "seconds": round(seconds, 1), "peak_mib": round(mib)})
            print(f"{scale:8s} {name:32s} {seconds:8.1f} s {mib:8.0f} MiB", flush=True)
        part = workdir / f"{scale}-video"
        if part.exists():
            shutil.rmtree(part)
        part.mkdir()
        videos = video_part_root(project / "data/raw/imigue", part / "data/raw/imigue")
        part_params = video_part_params(params)
        set_key(part_params, "datasets.smg.root", str(project / "data/raw/smg"))
        (part / "params.yaml").write_text(yaml.safe_dump(part_params, sort_keys=False))
        for name, command in VIDEO_STAGES:
            seconds, mib = run_stage(command, part, log)
            rows.append({"stage": name, "seconds": round(seconds, 1), "peak_mib": round(mib)})
            print(f"{scale:8s} {name:32s} {seconds:8.1f} s {mib:8.0f} MiB", flush=True)
    return {"scale": scale, "sizes": sizes(project), "video_part_interviews": videos, "stages": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", default=["quarter", "half", "full"])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/miga-scale"))
    parser.add_argument("--workers", type=int, default=2, help="synth worker processes")
    parser.add_argument("--out", type=Path, default=Path("/tmp/miga-scale.json"))
    args = parser.parse_args(argv)
    results = []
    for scale in args.scales:
        results.append(measure(scale, args.workdir, args.workers))
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
