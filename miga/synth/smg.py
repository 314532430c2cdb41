"""Synthetic SMG: long Kinect v2 recordings of standing people telling a story (official layout).

    <root>/SampleXXXX/SampleXXXX_skeleton.csv     per frame: 25 joints x (world xyz, quaternion wxyz, colour xy, 0, 0)
    <root>/SampleXXXX/SampleXXXX_data.csv         numFrames,fps,maxDepth
    <root>/SampleXXXX/SampleXXXX_finelabels.csv   class,start,end (1-based classes)
    <root>/SampleXXXX/SampleXXXX_color.mp4        mirrored, as Kinect colour frames are
    <root>/video_emotions.csv                     video,emotion (header; a stand-in: SMG has no emotion labels, miga.synth.emotion)

One subject per sequence; gestures occur at random times between idle movement, sometimes
overlapping the previous one slightly or stopping short of their target (aborted).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from miga.io import write_json
from miga.synth.editions import arrange_smg
from miga.synth.emotion import draw_emotions, write_emotions
from miga.synth.files import write_numeric_csv, write_rows
from miga.synth.frequencies import SMG_TEST_COUNTS, sample_classes
from miga.synth.gestures import SMG_PROGRAMS
from miga.synth.motion import Instance, animate
from miga.synth.presets import SmgConfig, get_preset
from miga.synth.render import render_video
from miga.synth.sensors import kinect_rows, sample_camera
from miga.synth.subjects import sample_subject
from miga.synth.timeline import acting_side, gesture_frames

_KEY = 2  # separates this dataset's random streams from iMiGUE's for the same seed
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SequencePlan:
    split: str
    number: int
    instances: tuple[Instance, ...]
    num_frames: int

    @property
    def name(self) -> str:
        return f"Sample{self.number:04d}"


def subject_of(seed: int, number: int):
    return sample_subject(np.random.default_rng([seed, _KEY, 1, number]), number, seated=False)


def plan_smg(config: SmgConfig, seed: int) -> list[SequencePlan]:
    """Length, gestures (class, frames, hand) of every sequence; cheap, renders nothing."""
    rng = np.random.default_rng([seed, _KEY, 0])
    typical = np.mean([np.mean(p.seconds) for p in SMG_PROGRAMS]) * config.duration_scale * config.fps
    plans = []
    for split in SPLITS:
        first, count = config.samples[split]
        lengths = rng.integers(config.frames[0], config.frames[1] + 1, count)
        counts = np.maximum(1, np.round(lengths * config.gesture_fraction / typical)).astype(int)
        cover = split == "train" and counts.sum() >= len(SMG_PROGRAMS)
        labels = sample_classes(rng, SMG_TEST_COUNTS, int(counts.sum()), power=config.power, cover=cover)
        for number, length, part in zip(range(first, first + count), lengths, np.split(labels, np.cumsum(counts)[:-1])):
            plans.append(_sequence_plan(rng, config, split, number, int(length), part.tolist(), seed))
    return plans


def _sequence_plan(rng, config: SmgConfig, split: str, number: int, length: int, labels: list[int], seed: int) -> SequencePlan:
    """Lay the gestures out in order with random idle gaps that fill the rest of the sequence."""
    subject = subject_of(seed, number)
    scale, bounds = config.duration_scale, config.gesture_frames
    durations = [gesture_frames(rng, SMG_PROGRAMS[c], subject, config.fps, scale, bounds) for c in labels]
    aborted = rng.random(len(labels)) < config.abort_rate
    durations = [max(config.gesture_frames[0], int(d * 0.6)) if a else d for d, a in zip(durations, aborted)]
    idle = max(length - sum(durations), 0)
    gaps = np.floor(idle * rng.dirichlet(np.ones(len(labels) + 1))).astype(int).tolist()
    instances, cursor = [], 0
    for label, duration, gap, abort in zip(labels, durations, gaps, aborted):
        start = cursor + gap
        if instances and rng.random() < config.overlap_rate:
            start = max(instances[-1].start + 1, instances[-1].end + 1 - int(rng.integers(2, 11)))
        end = min(start + duration - 1, length - 1)
        if end - start + 1 < config.gesture_frames[0]:
            break
        peak = float(rng.uniform(0.4, 0.7)) if abort else 1.0
        instances.append(Instance(label, start, end, acting_side(rng, subject), peak))
        cursor = end + 1
    return SequencePlan(split, number, tuple(instances), length)


def write_sequence(root: Path, plan: SequencePlan, config: SmgConfig, seed: int) -> None:
    """Animate, observe and render one sequence; write its four files."""
    rng = np.random.default_rng([seed, _KEY, 2, plan.number])
    subject = subject_of(seed, plan.number)
    body = animate(subject, plan.instances, plan.num_frames, config.fps, SMG_PROGRAMS, rng)
    camera = sample_camera(rng, subject, config.size, mirror=True)
    rows = kinect_rows(body, camera, rng)
    folder = Path(root) / plan.name
    folder.mkdir(parents=True, exist_ok=True)
    write_numeric_csv(folder / f"{plan.name}_skeleton.csv", list(rows.T), decimals=config.decimals)
    max_depth_mm = int(np.ceil(rows[:, 2::11].max() * 1000))
    write_rows(folder / f"{plan.name}_data.csv", [(plan.num_frames, config.fps, max_depth_mm)])
    write_rows(folder / f"{plan.name}_finelabels.csv", [(i.label + 1, i.start, i.end) for i in plan.instances])
    if not config.render:  # rendering is the last use of `rng`: the other files are the same either way
        return
    frames = render_video(folder / f"{plan.name}_color.mp4", body, camera, subject, config.fps, rng)
    if frames != plan.num_frames:
        raise RuntimeError(f"{folder}: rendered {frames} frames for a {plan.num_frames}-frame skeleton")


def summarize(plans: list[SequencePlan]) -> dict:
    out = {}
    for split in SPLITS:
        mine = [p for p in plans if p.split == split]
        classes = Counter(i.label for p in mine for i in p.instances)
        frames = sum(p.num_frames for p in mine)
        inside = sum(i.length for p in mine for i in p.instances)
        out[split] = {
            "sequences": [p.name for p in mine], "instances": sum(classes.values()), "frames": frames,
            "gesture_fraction": round(inside / max(frames, 1), 3), "classes": {int(c): classes[c] for c in sorted(classes)},
        }
    return out


def generate_smg(root: str | Path, config: SmgConfig | str = "default", seed: int = 0, *, map_fn=map,
                 edition: str = "organisers") -> dict:
    """Write a synthetic SMG release under `root`; returns (and writes) a summary per split.

    `config` is an SmgConfig or a preset name. `map_fn` runs the per-sequence work (e.g. a
    process pool's map); sequences are independent, so the output does not depend on it.
    """
    root = Path(root)
    config = get_preset(config).smg if isinstance(config, str) else config
    plans = plan_smg(config, seed)
    for _ in map_fn(_SequenceJob(root, config, seed), plans):
        pass
    arrange_smg(root, edition, {plan.name: plan.split for plan in plans})
    # A stand-in state per sequence (rate and count shifts only), from its own random stream: the other files stay the same.
    write_emotions(root, draw_emotions(np.random.default_rng([seed, _KEY, 3]), [p.name for p in plans],
                                       [[i.label for i in p.instances] for p in plans],
                                       [p.num_frames / config.fps / 60 for p in plans], log_ratios=None))
    summary = {"dataset": "smg", "seed": seed, "edition": edition, "splits": summarize(plans)}
    write_json(summary, root / "synth_summary.json")
    return summary


@dataclass(frozen=True)
class _SequenceJob:
    """A picklable `write_sequence` with its fixed arguments, for process pools."""

    root: Path
    config: SmgConfig
    seed: int

    def __call__(self, plan: SequencePlan) -> None:
        write_sequence(self.root, plan, self.config, self.seed)
