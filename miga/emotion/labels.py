"""Per-video emotion labels of a release: `<root>/video_emotions.csv`, header `video,emotion`, emotion `win` or `lose`.

iMiGUE's emotion is the player's state after the match the interview follows (won or lost). `video` names a video
as the release's folders do: iMiGUE `0007` (or `7`: numbers are read as iMiGUE's four-digit names), SMG `Sample0031`
(or `31`), a stream-format sample by its sample id. A video the file does not list has no known emotion (a release's
hidden test labels); a bad row is one error naming the file and the row.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Mapping
from pathlib import Path

from miga.contracts import ContractError, check_sample_id

FILE = "video_emotions.csv"
EMOTIONS = ("lose", "win")  # index = the model's target: 1 = win
HEADER = ("video", "emotion")


def video_name(text: str, dataset_format: str) -> str:
    """A `video` cell as the manifest names the video: numbers become `0007` (iMiGUE) or `Sample0007` (SMG)."""
    text = text.strip()
    if text.isdigit() and dataset_format == "imigue":
        return f"{int(text):04d}"
    if text.isdigit() and dataset_format == "smg":
        return f"Sample{int(text):04d}"
    return text


def read_video_emotions(root: Path | str, dataset_format: str, *, required: bool = True,
                        known: Collection[str] | None = None) -> dict[str, str]:
    """{video: 'win' | 'lose'} from `<root>/video_emotions.csv`; {} when it is absent and not `required`.

    With `known` (the release's videos), a row naming another video is an error: a typo or a video missing from the
    release would otherwise drop its label silently."""
    path = Path(root) / FILE
    if not path.exists() and not required:
        return {}
    if not path.is_file():
        what = "a folder" if path.exists() else "not found"
        raise ContractError(f"{path}: {what}; the emotion stage needs each video's emotion there "
                            f"(header video,emotion; emotion win or lose; `miga convert imigue-labels` writes it from iMiGUE's label table)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ContractError(f"{path}: not a UTF-8 text file ({error.reason})") from None
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != HEADER:
        raise ContractError(f"{path}: the first row must be the header 'video,emotion' (got {','.join(rows[0]) if rows else 'nothing'!r})")
    out: dict[str, str] = {}
    for number, row in enumerate(rows[1:], start=1):
        where = f"{path}: data row {number}"
        if len(row) != 2:
            raise ContractError(f"{where}: {len(row)} cells, expected 2 (video,emotion)")
        video, emotion = video_name(row[0], dataset_format), row[1].strip().lower()
        if not video:
            raise ContractError(f"{where}: empty video")
        check_sample_id(video, where)
        if emotion not in EMOTIONS:
            raise ContractError(f"{where}: emotion {row[1].strip()!r} is neither win nor lose")
        if known is not None and video not in known:
            raise ContractError(f"{where}: video {video} is not in the release ({len(known)} videos; "
                                f"first: {min(known) if known else 'none'})")
        if out.get(video, emotion) != emotion:
            raise ContractError(f"{where}: video {video} is listed again with another emotion ({out[video]}, then {emotion})")
        out[video] = emotion
    if not out:
        raise ContractError(f"{path}: no data rows (a header alone labels no video)")
    return out


def emotion_lines(emotions: Mapping[str, str]) -> str:
    """The text of a `video_emotions.csv` for {video: emotion}, sorted by video."""
    bad = sorted(v for v, e in emotions.items() if e not in EMOTIONS)
    if bad:
        raise ValueError(f"emotion of {bad[0]} is {emotions[bad[0]]!r}, not win or lose")
    return "\n".join([",".join(HEADER)] + [f"{video},{emotions[video]}" for video in sorted(emotions)]) + "\n"
