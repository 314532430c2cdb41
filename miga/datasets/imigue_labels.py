"""iMiGUE's label table -> a release tree of label files with `video_subjects.csv` and `video_emotions.csv`.

The table (`Label/labels_20200831.csv` of the full release; `labels_dev.csv` holds its columns) has one row per clip:
`video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,subject_gender,subject_nationality,
win_or_lose` (only video_id, start_frame, end_frame, class, subject_id and win_or_lose are needed; label_id, when there,
orders a video's rows). `convert` writes the 2024 layout without skeletons or videos:

    <out>/imigue_data_phase1/datasets/imigue_skeleton_{train,validate}/{vid}/{vid}_label.csv   raw class,start,end
    <out>/imigue_data_phase2/imigue_skeleton_test/{vid}/{vid}_label.csv                        (real classes: test_labels real)
    <out>/video_subjects.csv   video,subject
    <out>/video_emotions.csv   video,emotion (win / lose: the player's match before the interview)

Splits: with a protocol file (`kind,split,id` rows, as the iMiGUE supplementary material gives them) that lists
`emotion_video` rows, the emotion protocol: its train videos -> train, its test videos -> test, every other video of the
table -> validate (outside the protocol: the emotion stage fits on train only, so they cannot leak into it). With a
protocol of `subject` rows only, or none, the cross-subject split of MG classification (the protocol's subjects, or the
37 train subjects of docs/design.md section 4): train subjects -> train, the others -> test.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from miga.datasets.csvtable import DatasetFormatError
from miga.io import write_text

REQUIRED = ("video_id", "start_frame", "end_frame", "class", "subject_id", "win_or_lose")
FOLDERS = {"train": "imigue_data_phase1/datasets/imigue_skeleton_train", "val": "imigue_data_phase1/datasets/imigue_skeleton_validate",
           "test": "imigue_data_phase2/imigue_skeleton_test"}
CROSS_SUBJECT_TRAIN = frozenset({2, 4, 5, 6, 9, 10, 12, 13, 14, 15, 17, 18, 20, 21, 22, 23, 25, 28, 29, 30, 31, 35, 36, 38, 39,
                                 41, 42, 43, 44, 46, 47, 48, 52, 53, 59, 61, 62})  # docs/design.md section 4
RAW_CLASSES = frozenset(range(1, 32)) | {99}
EMOTION_WORDS = {"win": "win", "lose": "lose"}


def _int(cell: str, where: str, what: str) -> int:
    try:
        value = float(cell)
    except ValueError:
        raise DatasetFormatError(f"{where}: {what} {cell!r} is not a number") from None
    if value != int(value) or value < 0:
        raise DatasetFormatError(f"{where}: {what} {cell!r} is not a non-negative integer")
    return int(value)


def read_table(path: Path) -> dict[int, dict]:
    """{video: {subject, emotion, rows: [(raw class, start, end)]}} from the label table, every row checked."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: label table not found" if not path.exists() else f"{path}: a folder, expected the label table (CSV)")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise DatasetFormatError(f"{path}: missing columns {missing} (iMiGUE's label table: {', '.join(REQUIRED)}, ...)")
        reader.fieldnames = header
        videos: dict[int, dict] = {}
        for number, row in enumerate(reader, start=1):
            where = f"{path}: data row {number}"
            cells = {k: (row.get(k) or "").strip() for k in (*REQUIRED, "label_id")}
            video = _int(cells["video_id"], where, "video_id")
            raw = _int(cells["class"], where, "class")
            start, end = _int(cells["start_frame"], where, "start_frame"), _int(cells["end_frame"], where, "end_frame")
            subject = _int(cells["subject_id"], where, "subject_id")
            order = _int(cells["label_id"], where, "label_id") if cells["label_id"] else number
            emotion = EMOTION_WORDS.get(cells["win_or_lose"].lower())
            if raw not in RAW_CLASSES:
                raise DatasetFormatError(f"{where}: class {raw} is not an iMiGUE class (1..31 or 99)")
            if end < start:
                raise DatasetFormatError(f"{where}: end_frame {end} is before start_frame {start}")
            if emotion is None:
                raise DatasetFormatError(f"{where}: win_or_lose {cells['win_or_lose']!r} is neither Win nor Lose")
            entry = videos.setdefault(video, {"subject": subject, "emotion": emotion, "rows": []})
            for key, value in (("subject", subject), ("emotion", emotion)):
                if entry[key] != value:
                    raise DatasetFormatError(f"{where}: video {video} has {key} {value}, but {entry[key]} in its earlier rows")
            entry["rows"].append((order, raw, start, end))
    if not videos:
        raise DatasetFormatError(f"{path}: no data rows")
    return videos


def read_protocol(path: Path) -> dict[str, dict[str, set[int]]]:
    """{kind: {split: ids}} from a protocol file with header kind,split,id."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(f"{path}: protocol file not found")
    out: dict[str, dict[str, set[int]]] = {}
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if [h.strip() for h in reader.fieldnames or []] != ["kind", "split", "id"]:
            raise DatasetFormatError(f"{path}: the header must be kind,split,id")
        for number, row in enumerate(reader, start=1):
            where = f"{path}: data row {number}"
            split = (row["split"] or "").strip()
            if split not in ("train", "test"):
                raise DatasetFormatError(f"{where}: split {split!r} is neither train nor test")
            out.setdefault((row["kind"] or "").strip(), {"train": set(), "test": set()})[split].add(_int((row["id"] or "").strip(), where, "id"))
    return out


def assign_splits(videos: dict[int, dict], protocol: dict[str, dict[str, set[int]]] | None,
                  source: str = "protocol") -> tuple[dict[int, str], str]:
    """({video: split}, which split rule) for the table's videos; errors name `source` (the protocol file)."""
    if protocol and "emotion_video" in protocol:
        emotion = protocol["emotion_video"]
        both = emotion["train"] & emotion["test"]
        if both:
            raise DatasetFormatError(f"{source}: video {min(both)} is both an emotion train and test video")
        missing = sorted((emotion["train"] | emotion["test"]) - set(videos))
        if len(missing) == len(emotion["train"] | emotion["test"]):
            raise DatasetFormatError(f"{source}: none of its emotion videos is in the label table")
        splits = {v: "train" if v in emotion["train"] else "test" if v in emotion["test"] else "val" for v in videos}
        return splits, "emotion protocol"
    train = protocol["subject"]["train"] if protocol and "subject" in protocol else CROSS_SUBJECT_TRAIN
    return {v: "train" if entry["subject"] in train else "test" for v, entry in videos.items()}, "cross-subject"


def convert(table: Path, out: Path, protocol: Path | None = None) -> dict:
    """Write the release tree under `out` (module docstring); returns {rule, splits: {split: {videos, clips, win, lose}},
    outside: emotion-protocol videos the table lacks}."""
    videos = read_table(table)
    parsed = read_protocol(protocol) if protocol else None
    splits, rule = assign_splits(videos, parsed, str(protocol))
    out = Path(out)
    paths = {video: out / FOLDERS[splits[video]] / f"{video:04d}" / f"{video:04d}_label.csv" for video in videos}
    stale = sorted(set().union(*((out / folder).glob("*/*_label.csv") for folder in FOLDERS.values())) - set(paths.values()))
    if stale:
        raise DatasetFormatError(f"{out}: holds {len(stale)} label files this conversion would not write (first: {stale[0]}); "
                                 "they would mix into the release: convert into an empty folder")
    for video, entry in sorted(videos.items()):
        rows = [f"{raw},{start},{end}" for _, raw, start, end in sorted(entry["rows"], key=lambda r: (r[0], r[2], r[3]))]
        write_text("\n".join(rows) + "\n", paths[video])
    write_text("video,subject\n" + "".join(f"{v:04d},{e['subject']}\n" for v, e in sorted(videos.items())), out / "video_subjects.csv")
    write_text("video,emotion\n" + "".join(f"{v:04d},{e['emotion']}\n" for v, e in sorted(videos.items())), out / "video_emotions.csv")
    summary = {}
    for split in ("train", "val", "test"):
        mine = [v for v in videos if splits[v] == split]
        emotions = Counter(videos[v]["emotion"] for v in mine)
        summary[split] = {"videos": len(mine), "clips": sum(len(videos[v]["rows"]) for v in mine), "win": emotions["win"], "lose": emotions["lose"]}
    lacking = []
    if parsed and "emotion_video" in parsed:
        lacking = sorted((parsed["emotion_video"]["train"] | parsed["emotion_video"]["test"]) - set(videos))
    return {"rule": rule, "splits": summary, "protocol_videos_not_in_table": len(lacking)}
