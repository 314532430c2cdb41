"""Synthetic iMiGUE: interview videos of seated people, cut into labelled clips (official layout).

    <root>/imigue_skeleton_{train,validate,test}/{vid}/{vid}_label.csv        raw class,start,end
    <root>/imigue_skeleton_{train,validate,test}/{vid}/{vid}_light_hand.csv   frame + 35 x (x, y, conf)
    <root>/imigue_skeleton_{train,validate,test}/{vid}/{vid}.mp4
    <root>/video_subjects.csv                                                 video,subject (header)
    <root>/video_emotions.csv                                                 video,emotion (header; win | lose: miga.synth.emotion)

A video is one subject's sequence of consecutive clips (clip k = row k of the label file) with
short idle gaps; subjects are disjoint between the three folders (cross-subject).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from miga.io import write_json, write_text
from miga.synth.calibration import IMIGUE_APPROACH
from miga.synth.editions import arrange_imigue
from miga.synth.emotion import class_log_ratios, draw_emotions, write_emotions
from miga.synth.files import write_numeric_csv, write_rows
from miga.synth.frequencies import IMIGUE_TRAIN_COUNTS, sample_classes
from miga.synth.gestures import IMIGUE_PROGRAMS
from miga.synth.motion import Instance, animate
from miga.synth.presets import ImigueConfig, get_preset
from miga.synth.render import render_video
from miga.synth.sensors import openpose_keypoints, sample_camera
from miga.synth.subjects import sample_subject
from miga.synth.timeline import acting_side, gesture_frames

SPLIT_FOLDERS = {"train": "imigue_skeleton_train", "val": "imigue_skeleton_validate", "test": "imigue_skeleton_test"}
NON_MG_RAW = 99
_KEY = 1  # separates this dataset's random streams from SMG's for the same seed


@dataclass(frozen=True)
class VideoPlan:
    split: str
    number: int
    subject_id: int
    instances: tuple[Instance, ...]
    num_frames: int

    @property
    def name(self) -> str:
        return f"{self.number:04d}"


def raw_class(label: int) -> int:
    """0-based label -> the release's raw class (1..31, 99 = non-MG 'illustrative')."""
    return NON_MG_RAW if label == len(IMIGUE_PROGRAMS) - 1 else label + 1


def _subjects(rng: np.random.Generator, config: ImigueConfig) -> dict[str, list[int]]:
    total = sum(config.subjects.values())
    ids = (rng.permutation(total) + 1).tolist()
    out, first = {}, 0
    for split in SPLIT_FOLDERS:
        out[split] = ids[first: first + config.subjects[split]]
        first += config.subjects[split]
    return out


def subject_of(seed: int, subject_id: int):
    return sample_subject(np.random.default_rng([seed, _KEY, 1, subject_id]), subject_id, seated=True)


def plan_imigue(config: ImigueConfig, seed: int) -> list[VideoPlan]:
    """Which subject, clips (class, frames) and length every video gets; cheap, renders nothing."""
    rng = np.random.default_rng([seed, _KEY, 0])
    subjects = _subjects(rng, config)
    low, high = config.clips_per_video
    drafts = []  # (split, subject id, clip count); a split's videos go round its subjects
    for split in SPLIT_FOLDERS:
        ids = subjects[split]
        drafts += [(split, ids[v % len(ids)], int(rng.integers(low, high + 1))) for v in range(config.videos[split])]
    labels = {}
    for split in SPLIT_FOLDERS:
        n = sum(count for s, _, count in drafts if s == split)
        drawn = sample_classes(rng, IMIGUE_TRAIN_COUNTS, n, power=config.power, cover=split == "train")
        labels[split] = iter(drawn.tolist())
    numbers = rng.permutation(len(drafts)) + 1
    plans = []
    for (split, subject_id, count), number in zip(drafts, numbers):
        subject = subject_of(seed, subject_id)
        clips = [next(labels[split]) for _ in range(count)]
        plans.append(_video_plan(rng, config, split, int(number), subject, clips))
    return plans


def _video_plan(rng, config: ImigueConfig, split: str, number: int, subject, clips: list[int]) -> VideoPlan:
    instances, cursor = [], 0
    for label in clips:
        cursor += int(rng.integers(config.gap_frames[0], config.gap_frames[1] + 1))
        length = gesture_frames(rng, IMIGUE_PROGRAMS[label], subject, config.fps, config.duration_scale, config.clip_frames)
        instances.append(Instance(label, cursor, cursor + length - 1, acting_side(rng, subject)))
        cursor += length
    cursor += int(rng.integers(config.gap_frames[0], config.gap_frames[1] + 1))
    return VideoPlan(split, number, subject.id, tuple(instances), max(cursor, 1))


def performed(plan: VideoPlan, fps: float) -> tuple[Instance, ...]:
    """The gestures as performed: each widened by its hand's approach and retreat around the labelled clip
    (`IMIGUE_APPROACH` of its length, at most 1 s each side), so a clip starts with the hand on its way."""
    out = []
    for inst in plan.instances:
        lead = min(int(round(IMIGUE_APPROACH * inst.length)), int(fps))
        out.append(replace(inst, start=max(inst.start - lead, 0), end=min(inst.end + lead, plan.num_frames - 1)))
    return tuple(out)


def write_video(root: Path, plan: VideoPlan, config: ImigueConfig, seed: int, *, render: bool = True) -> None:
    """Animate, observe and render one video; write its label, skeleton and (when `render`) mp4 files."""
    rng = np.random.default_rng([seed, _KEY, 2, plan.number])
    subject = subject_of(seed, plan.subject_id)
    body = animate(subject, performed(plan, config.fps), plan.num_frames, config.fps, IMIGUE_PROGRAMS, rng)
    camera = sample_camera(rng, subject, config.size)
    keypoints = openpose_keypoints(body, camera, subject, rng)
    folder = Path(root) / SPLIT_FOLDERS[plan.split] / plan.name
    folder.mkdir(parents=True, exist_ok=True)
    write_rows(folder / f"{plan.name}_label.csv", [(raw_class(i.label), i.start, i.end) for i in plan.instances])
    columns = [np.arange(plan.num_frames)] + list(keypoints.reshape(plan.num_frames, -1).T)
    write_numeric_csv(folder / f"{plan.name}_light_hand.csv", columns, decimals=config.decimals)
    if not render:  # rendering is the last use of `rng`: the other files are the same either way
        return
    frames = render_video(folder / f"{plan.name}.mp4", body, camera, subject, config.fps, rng)
    if frames != plan.num_frames:
        raise RuntimeError(f"{folder}: rendered {frames} frames for a {plan.num_frames}-frame skeleton")


def summarize(plans: list[VideoPlan]) -> dict:
    out = {}
    for split in SPLIT_FOLDERS:
        mine = [p for p in plans if p.split == split]
        classes = Counter(i.label for p in mine for i in p.instances)
        out[split] = {
            "videos": len(mine), "subjects": len({p.subject_id for p in mine}), "clips": sum(classes.values()),
            "frames": sum(p.num_frames for p in mine), "classes": {int(c): classes[c] for c in sorted(classes)},
        }
    return out


def generate_imigue(root: str | Path, config: ImigueConfig | str = "default", seed: int = 0, *, map_fn=map,
                    edition: str = "2023") -> dict:
    """Write a synthetic iMiGUE release under `root` in an edition's layout; returns (and writes) a summary per split.

    `config` is an ImigueConfig or a preset name. `map_fn` runs the per-video work (e.g. a
    process pool's map); videos are independent, so the output does not depend on it.
    """
    root = Path(root)
    config = get_preset(config).imigue if isinstance(config, str) else config
    plans = plan_imigue(config, seed)
    rendered = rendered_videos(plans, config)
    for _ in map_fn(_VideoJob(root, config, seed, rendered), plans):
        pass
    lines = ["video,subject"] + [f"{p.name},{p.subject_id}" for p in sorted(plans, key=lambda p: p.number)]
    write_text("\n".join(lines) + "\n", root / "video_subjects.csv")
    # The hidden won/lost state, from its own random stream: every other file is the same with or without it.
    write_emotions(root, draw_emotions(np.random.default_rng([seed, _KEY, 3]), [p.name for p in plans],
                                       [[i.label for i in p.instances] for p in plans],
                                       [p.num_frames / config.fps / 60 for p in plans], log_ratios=class_log_ratios()))
    arrange_imigue(root, edition)
    summary = {"dataset": "imigue", "seed": seed, "edition": edition, "splits": summarize(plans)}
    write_json(summary, root / "synth_summary.json")
    return summary


def rendered_videos(plans: list[VideoPlan], config: ImigueConfig) -> frozenset[int]:
    """The numbers of the videos that get an mp4: all, or the first `config.rendered_videos[split]` of each split."""
    if config.rendered_videos is None:
        return frozenset(p.number for p in plans)
    return frozenset(p.number for split in SPLIT_FOLDERS
                     for p in [p for p in plans if p.split == split][: config.rendered_videos[split]])


@dataclass(frozen=True)
class _VideoJob:
    """A picklable `write_video` with its fixed arguments, for process pools."""

    root: Path
    config: ImigueConfig
    seed: int
    rendered: frozenset[int]

    def __call__(self, plan: VideoPlan) -> None:
        write_video(self.root, plan, self.config, self.seed, render=plan.number in self.rendered)
