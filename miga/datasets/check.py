"""A report on a release before a long run (`miga data check`): what was found, what is missing, what would break.

Problems are `fatal` when a stage would stop on them (an unreadable label file, a labelled split
without labels, a missing video the configured pose or fusion needs); the rest are warnings.

iMiGUE's provided skeletons also get a side check (`miga.datasets.sides`) on a few interviews
spread over the release: a warning, with the measured distances, when the fingertip blocks or
BODY_25's left/right disagree with the order the skeleton's layout assumes; a note otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from miga.contracts import SPLITS
from miga.datasets import imigue, smg
from miga.datasets.csvtable import DatasetFormatError
from miga.datasets.openpose_json import list_frames
from miga.datasets.sides import body_sides, hand_sides
from miga.video import VideoError, probe_video


@dataclass
class SplitReport:
    videos: int = 0
    clips: int = 0
    frames: int = 0
    labelled: int = 0
    unlabelled: int = 0
    without_video: int = 0
    without_skeleton: int = 0
    empty_skeletons: int = 0
    short_skeletons: int = 0
    past_video_end: int = 0
    unreadable_videos: int = 0
    classes: Counter = field(default_factory=Counter)


@dataclass
class Report:
    dataset: str
    edition: str
    splits: dict[str, SplitReport] = field(default_factory=lambda: {s: SplitReport() for s in SPLITS})
    fatal: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.dataset}: {self.edition}"]
        for split, part in self.splits.items():
            counts = {k: v for k, v in vars(part).items() if k != "classes"}
            out.append(f"  {split:5s} " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
            if part.classes:
                out.append("        classes " + " ".join(f"{c}:{n}" for c, n in sorted(part.classes.items())))
        out += [f"  note: {n}" for n in self.notes]
        out += [f"  warning: {w}" for w in self.warnings] + [f"  error: {f}" for f in self.fatal]
        out.append(f"  {'FAIL' if self.fatal else 'OK'}: {len(self.fatal)} errors, {len(self.warnings)} warnings")
        return out


def check_release(fmt: str, root: Path, entry: Mapping, options: Mapping, *, require_video: bool) -> Report:
    checks = {"imigue": _check_imigue, "smg": _check_smg}
    if fmt not in checks:
        raise DatasetFormatError(f"miga data check reads the iMiGUE and SMG layouts, not format {fmt!r}")
    return checks[fmt](Path(root), entry, options, require_video)


def _check_imigue(root: Path, entry: Mapping, options: Mapping, require_video: bool) -> Report:
    tree = imigue.release_tree(root, entry)
    report = Report("imigue", tree.edition)
    try:
        imigue.require_labels(tree)
    except DatasetFormatError as err:
        report.fatal.append(str(err))
    source = imigue.skeleton_source(entry)
    trust_test = str(entry["test_labels"]) == "real"
    truth = Path(entry["test_truth"]) if entry["test_truth"] else None
    for split in SPLITS:
        part = report.splits[split]
        for video in tree.videos(split):
            part.videos += 1
            labels = _labels(report, tree, video, placeholder=split == "test" and not trust_test, truth=truth)
            if labels is None:
                continue
            part.clips += len(labels)
            part.frames += int((labels[:, 2] - labels[:, 1] + 1).sum())
            known = labels[:, 0] >= 0
            part.labelled += int(known.sum())
            part.unlabelled += int((~known).sum())
            part.classes.update(labels[known, 0].tolist())
            _check_skeleton(report, part, tree.skeleton_file(video, source), labels)
            _check_imigue_video(report, part, tree, video, labels)
    check_sides(report, tree, source, imigue.layout_of(root, entry), tips=imigue.light_hand_tips(entry))
    if require_video:
        missing = sum(p.without_video for p in report.splits.values())
        if missing:
            report.fatal.append(f"{missing} clips have no video; the configured pose backend or RGB fusion needs one")
    return report


def _labels(report: Report, tree, video: str, *, placeholder: bool, truth: Path | None) -> np.ndarray | None:
    try:
        labels = imigue.read_labels(tree.label_file(video), placeholder=placeholder)
        if placeholder and truth is not None and (truth / f"{video}_label.csv").exists():
            labels = imigue.read_labels(truth / f"{video}_label.csv")
        return labels
    except DatasetFormatError as err:
        report.fatal.append(str(err))
        return None


def _check_skeleton(report: Report, part: SplitReport, path: Path, labels: np.ndarray) -> None:
    if not path.exists():
        part.without_skeleton += len(labels)
        return
    if path.is_dir():  # openpose_json: one file per frame
        try:
            frames, _ = list_frames(path)
        except DatasetFormatError as err:
            report.fatal.append(str(err))
            return
        if not len(frames):
            part.empty_skeletons += 1
            report.warnings.append(f"{path}: no OpenPose JSON frame files (its clips get no provided keypoints)")
        elif labels.size and labels[:, 2].max() > frames[-1]:
            part.short_skeletons += 1
        return
    if path.stat().st_size == 0:
        part.empty_skeletons += 1
        report.warnings.append(f"{path}: empty skeleton file (its clips get no provided keypoints)")
        return
    if path.suffix == ".csv":
        rows = sum(1 for line in open(path, encoding="utf-8", errors="replace") if line.strip())
        if rows and labels.size and labels[:, 2].max() >= rows + 1:  # +1: a header row may or may not be there
            part.short_skeletons += 1


SIDE_CHECK_VIDEOS = 4  # interviews read whole for the side check, evenly spread over the sorted list


def check_sides(report: Report, tree, source: str, layout: str, videos: int = SIDE_CHECK_VIDEOS, *, tips: str = "left_first") -> None:
    """Left/right of the provided skeletons against `layout`'s order, on up to `videos` interviews (module docstring),
    the fingertips as read with `datasets.imigue.light_hand_tips` (`tips`)."""
    candidates = [v for split in SPLITS for v in tree.videos(split) if _has_frames(tree.skeleton_file(v, source))]
    if not candidates:
        return
    picked = [candidates[int(i)] for i in np.unique(np.linspace(0, len(candidates) - 1, min(videos, len(candidates))).round())]
    arrays, hands = [], {}
    for video in picked:
        try:
            points = imigue.read_interview(tree.skeleton_file(video, source), source, tips=tips)
        except DatasetFormatError as err:
            report.fatal.append(str(err))
            continue
        arrays.append(points)
        hands[video] = hand_sides(points, layout)
    if not arrays:
        return
    where = f"{len(arrays)} of {len(candidates)} interviews ({', '.join(picked)})"
    points = np.concatenate(arrays)
    fingertips, body = hand_sides(points, layout), body_sides(points, layout)
    if fingertips.verdict == "swapped" and source == "light_hand":
        other = {"left_first": "right_first", "right_first": "left_first"}.get(tips, "left_first")
        report.warnings.append(f"{fingertips.describe()} on {where}: the release disagrees with layout {layout} as read with "
                               f"datasets.imigue.light_hand_tips: {tips}; the tips read as the left hand's are the right hand's "
                               f"(and the other way round): set datasets.imigue.light_hand_tips: {other}")
    elif fingertips.verdict == "swapped":
        report.warnings.append(f"{fingertips.describe()} on {where}: the release disagrees with layout {layout}, which reads the "
                               "tips named left as the left hand's; here they are the right hand's (and the other way round)")
    else:
        report.notes.append(f"side check on {where}: {fingertips.describe()}")
    decided = ("as named", "swapped")
    odd = [v for v, h in hands.items() if fingertips.verdict in decided and h.verdict in decided and h.verdict != fingertips.verdict]
    if odd:
        report.warnings.append(f"fingertips: interviews {', '.join(odd)} have the tip blocks the other way round from "
                               f"the rest ({hands[odd[0]].describe()})")
    if body.verdict == "swapped":
        report.warnings.append(f"{body.describe()} on {where}: left and right look swapped against layout {layout} "
                               "(or the videos are mirrored, or the subjects face away; the data cannot tell which)")
    else:
        report.notes.append(f"side check on {where}: {body.describe()}")


def _has_frames(path: Path) -> bool:
    if path.is_dir():
        return next((True for p in path.iterdir() if p.name.endswith("_keypoints.json")), False)
    return path.is_file() and path.stat().st_size > 0


def _check_imigue_video(report: Report, part: SplitReport, tree, video: str, labels: np.ndarray) -> None:
    whole = tree.whole_videos.get(video)
    clips = [tree.clip_videos.get((video, k)) for k in range(len(labels))]
    if whole is None:
        part.without_video += sum(c is None for c in clips)
        for path in filter(None, clips):
            _probe(report, part, path)
        return
    info = _probe(report, part, whole)
    if info is not None:
        part.past_video_end += int((labels[:, 2] >= info.num_frames).sum())


def _probe(report: Report, part: SplitReport, path: Path):
    try:
        return probe_video(path)
    except VideoError as err:
        part.unreadable_videos += 1
        report.fatal.append(str(err))
        return None


def _check_smg(root: Path, entry: Mapping, options: Mapping, require_video: bool) -> Report:
    tree = smg.release_tree(root, entry)
    report = Report("smg", tree.edition)
    truth = Path(entry["test_truth"]) if entry["test_truth"] else None
    for sample in sorted(tree.samples.values(), key=lambda s: s.sample_id):
        try:
            split = smg.split_of_sample(sample, options["smg_splits"])
            num_frames, _, _ = smg.length_and_rate(sample, float(options["smg_default_fps"]))
        except (DatasetFormatError, VideoError) as err:
            report.fatal.append(str(err))
            continue
        part = report.splits[split]
        part.videos += 1
        part.frames += num_frames
        part.without_video += "video" not in sample.parts
        part.without_skeleton += "skeleton" not in sample.parts
        labels_path = sample.parts.get("labels") or (truth / f"{sample.sample_id}_finelabels.csv" if truth else None)
        if labels_path is None or not labels_path.exists():
            part.unlabelled += 1
            if split != "test":
                report.fatal.append(f"{sample.sample_id}: no {sample.sample_id}_finelabels.csv in the {split} split")
            continue
        try:
            labels = smg.read_labels(labels_path)
        except DatasetFormatError as err:
            report.fatal.append(str(err))
            continue
        part.labelled += 1
        part.clips += len(labels)
        part.past_video_end += int((labels[:, 2] >= num_frames).sum())
        part.classes.update(labels[:, 0].tolist())
        if "video" in sample.parts:
            _probe(report, part, sample.parts["video"])
    if require_video and any(p.without_video for p in report.splits.values()):
        report.fatal.append("some sequences have no video; the configured pose backend needs one")
    return report
