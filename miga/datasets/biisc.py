"""BII Sneeze-Cough (BIISC) clips -> an iMiGUE-layout release, one person-disjoint fold at a time.

BIISC (`Sxxx_G_ACTN_STD_VIEW.avi`: person, gender, action, standing, camera view) holds one action per
clip. `convert` writes each clip as its own "interview" of the iMiGUE 2024 layout (docs/design.md section 4):

    <out>/imigue_skeleton_{train,validate,test}/<vid>/<vid>.mp4     the clip, re-encoded as H.264
    <out>/imigue_skeleton_{train,validate,test}/<vid>/<vid>_label.csv   one row: class,0,last frame
    <out>/video_subjects.csv                                       video,subject (the person number)
    <out>/classes.csv                                              label,action,iMiGUE class name used for it

There are no skeleton files: run it with a video pose backend (`pose.backend: mediapipe`), and with
`datasets.imigue.test_labels: real` (the test label files hold the real classes). The 8 actions
take iMiGUE's first 8 class numbers (labels 0-7, so plots show iMiGUE's names for them; classes.csv
says which action each is). People are split as `benchmarks/real_track1.py` splits them: sorted, in
`folds` consecutive groups; fold `fold` is the test people, the next group the val people, the rest train.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from miga.datasets.csvtable import DatasetFormatError
from miga.datasets.imigue import CLASS_NAMES, SPLIT_FOLDERS, label_to_raw
from miga.io import atomic_path
from miga.video import encode_mp4, iter_frames, probe_video

ACTIONS = ("CALL", "COUG", "DRIN", "SCRA", "SNEE", "STRE", "WAVE", "WIPE")
ACTION_NAMES = {"CALL": "answer a phone call", "COUG": "cough", "DRIN": "drink water", "SCRA": "scratch head",
                "SNEE": "sneeze", "STRE": "stretch arms", "WAVE": "wave a hand", "WIPE": "wipe glasses"}
_NAME = re.compile(r"^S(\d{3})_([MF])_([A-Z]{4})_([A-Z]{3})_([A-Z]{3})$")


def parse_name(stem: str) -> tuple[int, str, str]:
    """`S007_M_WAVE_STD_LFT` -> (person 7, action "WAVE", view "LFT"); a one-line error for any other name."""
    match = _NAME.match(stem)
    if not match or match.group(3) not in ACTIONS:
        raise DatasetFormatError(f"{stem}: not a BIISC clip name (Sxxx_G_ACTN_STD_VIEW with ACTN one of {ACTIONS})")
    return int(match.group(1)), match.group(3), match.group(5)


def person_folds(people: Sequence[int], folds: int) -> list[list[int]]:
    """Sorted people in `folds` consecutive groups (sizes differ by at most one)."""
    people = sorted(people)
    if not 2 <= folds <= len(people):
        raise DatasetFormatError(f"folds must be in 2..{len(people)} (the people), got {folds}")
    bounds = [round(k * len(people) / folds) for k in range(folds + 1)]
    return [people[bounds[k]: bounds[k + 1]] for k in range(folds)]


def fold_splits(people: Sequence[int], *, fold: int, folds: int) -> dict[int, str]:
    """person -> split: fold `fold` tests, the next fold validates, the others train."""
    groups = person_folds(people, folds)
    if not 0 <= fold < folds:
        raise DatasetFormatError(f"fold must be in 0..{folds - 1}, got {fold}")
    split = {p: "train" for p in people}
    split.update({p: "test" for p in groups[fold]})
    split.update({p: "val" for p in groups[(fold + 1) % folds]})
    return split


def convert(source: Path, out: Path, *, fold: int = 0, folds: int = 5) -> dict[str, int]:
    """Write the BIISC clips of `source` as an iMiGUE release under `out`; returns clips per split."""
    source, out = Path(source), Path(out)
    clips = sorted(source.glob("S*.avi")) + sorted(source.glob("S*.mp4"))
    if not clips:
        raise DatasetFormatError(f"{source}: no BIISC clips (Sxxx_G_ACTN_STD_VIEW.avi)")
    parsed = {path: parse_name(path.stem) for path in clips}
    split_of = fold_splits(sorted({person for person, _, _ in parsed.values()}), fold=fold, folds=folds)
    counts = {"train": 0, "val": 0, "test": 0}
    subjects = ["video,subject\n"]
    for number, (path, (person, action, _)) in enumerate(parsed.items(), start=1):
        vid, split = f"{number:04d}", split_of[person]
        folder = out / SPLIT_FOLDERS[split] / vid
        folder.mkdir(parents=True, exist_ok=True)
        frames = _reencode(path, folder / f"{vid}.mp4")
        with atomic_path(folder / f"{vid}_label.csv") as tmp:
            tmp.write_text(f"{int(label_to_raw(ACTIONS.index(action)))},0,{frames - 1}\n")
        subjects.append(f"{vid},{person}\n")
        counts[split] += 1
    with atomic_path(out / "video_subjects.csv") as tmp:
        tmp.write_text("".join(subjects))
    with atomic_path(out / "classes.csv") as tmp:
        tmp.write_text("label,action,imigue_name\n" + "".join(
            f"{k},{ACTION_NAMES[a]},{CLASS_NAMES[k]}\n" for k, a in enumerate(ACTIONS)))
    return counts


def _reencode(source: Path, target: Path) -> int:
    """The clip as H.264 mp4 (crf 18, visually lossless) at its own rate and size; returns its frame count."""
    info = probe_video(source)
    with atomic_path(target, suffix=".mp4") as tmp:
        count = encode_mp4(tmp, (frame for _, frame in iter_frames(source)), info.fps, (info.width, info.height), crf=18)
    if count == 0:
        raise DatasetFormatError(f"{source}: no frames decoded")
    return count
