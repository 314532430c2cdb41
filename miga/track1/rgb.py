"""Person-centred RGB crops for the RGB stream: a few frames per clip, cut around the pose box.

Each video is decoded once, as a stream, for all of its clips; crops are uint8 (T, S, S, 3).
The `rgb` stage makes one resumable shard per video (`miga.videowork.shards`: local worker processes
or Ray, a killed run redoes only the unfinished videos), then joins them into the cache folder:

    <cache>/crops.npy      uint8 (N, T, S, S, 3), read memory-mapped (`CropCache`)
    <cache>/index.parquet  sample_id, row

so no step holds the whole cache in memory: 8 x 48 x 48 x 3 = 55 KiB per clip at the defaults,
~1 GiB for iMiGUE's 18,498 clips, ~29 GiB at a pytorchvideo recipe's 16 x 182 x 182 (disk, not RAM).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F

from miga.contracts import ContractError
from miga.io import atomic_directory
from miga.videowork.shards import make_jobs, read_shard, run_shards
from miga.video import iter_frames, sample_indices


def clip_frame_indices(start: int, end: int, frames: int, sampling_rate: int = 0) -> np.ndarray:
    """The frames cached for a clip in [start, end] (inclusive): centres of `frames` equal bins (`sampling_rate`
    0), or every `sampling_rate`-th frame of the centred window (a backbone's recipe; bins when the clip is shorter)."""
    return sample_indices(start, end, frames, sampling_rate)


def square_box(keypoints: np.ndarray, *, padding: float, min_score: float = 1e-3) -> tuple[float, float, float]:
    """Centre x, centre y and side of the square around all valid joints, padded by `padding`."""
    valid = keypoints[..., 2] >= min_score
    if not valid.any():
        raise ValueError("no valid joint to place the crop")
    xy = keypoints[..., :2][valid]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    side = float(max(hi - lo) * (1 + padding)) or 1.0
    cx, cy = (lo + hi) / 2
    return float(cx), float(cy), side


def crop_and_resize(frames: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """Cut the square box (zero-padded outside the frame) from uint8 (N, H, W, 3) and resize to size x size."""
    cx, cy, side = box
    n, height, width, _ = frames.shape
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    canvas = np.zeros((n, s, s, 3), np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + s), min(height, y0 + s)
    if sx1 > sx0 and sy1 > sy0:
        canvas[:, sy0 - y0: sy1 - y0, sx0 - x0: sx1 - x0] = frames[:, sy0:sy1, sx0:sx1]
    tensor = torch.from_numpy(canvas).permute(0, 3, 1, 2).float()
    resized = F.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


@dataclass(frozen=True)
class ClipCrop:
    """What to cut for one clip: its frames of the video file and the square box (centre x, centre y, side)."""

    sample_id: str
    frames: tuple[int, ...]
    box: tuple[float, float, float] | None  # None: no valid joint, the centred square of the frame


def plan_crops(manifest: pl.DataFrame, keypoints, *, frames: int, padding: float, sampling_rate: int = 0,
               root: Path = Path(".")) -> dict[Path, list[ClipCrop]]:
    """`{video path: [ClipCrop]}` for every manifest row (all need a video); `keypoints[sample_id]` -> (M, T, V, 3)."""
    by_video: dict[Path, list[ClipCrop]] = {}
    offsets = manifest["video_start"] if "video_start" in manifest.columns else pl.Series([0] * manifest.height)
    rows = manifest.select("sample_id", "video", "start_frame", "end_frame").with_columns(offset=offsets.fill_null(0))
    for sample_id, video, start, end, offset in rows.iter_rows():
        if video is None:
            raise ValueError(f"sample {sample_id} has no video; the RGB stream needs one")
        indices = clip_frame_indices(start - offset, end - offset, frames, sampling_rate)  # frames of the video file
        points = keypoints[sample_id]  # a sample missing from the keypoints is an error, not a centred crop
        try:
            box = square_box(points, padding=padding)
        except ValueError:  # no valid joint in the clip
            box = None
        by_video.setdefault(Path(root) / video, []).append(ClipCrop(sample_id, tuple(int(i) for i in indices), box))
    return by_video


def crop_video(video: Path, clips: Sequence[ClipCrop], size: int) -> np.ndarray:
    """uint8 (len(clips), T, size, size, 3): the clips' frames cut from one pass over the video."""
    wanted = np.unique(np.concatenate([np.asarray(c.frames, np.int64) for c in clips])) if clips else np.zeros(0, np.int64)
    users: dict[int, list[tuple[int, int]]] = {}
    for k, clip in enumerate(clips):
        for t, index in enumerate(clip.frames):
            users.setdefault(index, []).append((k, t))
    out = np.zeros((len(clips), len(clips[0].frames) if clips else 0, size, size, 3), np.uint8)
    seen = set()
    for index, frame in iter_frames(video, wanted):
        seen.add(index)
        for k, t in users[index]:
            box = clips[k].box or (frame.shape[1] / 2, frame.shape[0] / 2, float(min(frame.shape[:2])))
            out[k, t] = crop_and_resize(frame[None], box, size)[0]
    if len(seen) < len(wanted):
        missing = sorted(set(wanted.tolist()) - seen)
        raise ValueError(f"{video}: frame {missing[0]} requested but the video ends before it")
    return out


def extract_crops(manifest: pl.DataFrame, keypoints, *, frames: int, size: int, padding: float,
                  root: Path = Path("."), sampling_rate: int = 0) -> dict[str, np.ndarray]:
    """`{sample_id: uint8 (frames, size, size, 3)}` in memory, for every manifest row with a video (paths relative
    to `root`), at the frames `clip_frame_indices` picks. The `rgb` stage uses `build_crop_cache` instead."""
    out = {}
    for video, clips in plan_crops(manifest, keypoints, frames=frames, padding=padding, sampling_rate=sampling_rate,
                                   root=root).items():
        out.update(zip((c.sample_id for c in clips), crop_video(video, clips, size)))
    return out


@dataclass(frozen=True)
class VideoCropper:
    """A shard extractor (`miga.videowork.shards`): a video's clips -> {"crops", "sample_ids"}; picklable for workers."""

    clips: Mapping[str, tuple[ClipCrop, ...]]  # str(video path) -> its clips
    size: int

    def __call__(self, video: Path, frames: np.ndarray, progress: Callable[[int], None]):
        clips = self.clips[str(video)]
        crops = crop_video(Path(video), clips, self.size)
        progress(len(frames))
        return {"crops": crops, "sample_ids": np.array([c.sample_id for c in clips], dtype=str)}, {}


def plan_digest(plan: Mapping[Path, Sequence[ClipCrop]], size: int) -> str:
    """What the shards depend on (every clip's frames and box, the size): a changed pose or setting redoes them."""
    digest = hashlib.sha256(f"rgb-crops-v1 {size}".encode())
    for video in sorted(plan):
        for clip in plan[video]:
            digest.update(json.dumps([str(video), clip.sample_id, clip.frames, clip.box]).encode())
    return digest.hexdigest()


def build_crop_cache(plan: Mapping[Path, Sequence[ClipCrop]], out_dir: str | os.PathLike, *, size: int,
                     shard_dir: str | os.PathLike | None = None, workers: int = 1, executor=None,
                     progress: bool = True) -> int:
    """Crop every planned clip into per-video shards (resumable in `shard_dir`; `workers` local processes, or
    `executor` e.g. a `RayExecutor`), then join them into the memory-mapped cache `out_dir` (replaced only when
    complete). Returns the number of clips. Peak memory: one video's crops, whatever the dataset's size."""
    cropper = VideoCropper({str(v): tuple(c) for v, c in plan.items()}, size)
    key = plan_digest(plan, size)
    with tempfile.TemporaryDirectory(prefix="miga-rgb-") as scratch:
        jobs = make_jobs({v: sorted({i for c in clips for i in c.frames}) for v, clips in plan.items()},
                         shard_dir if shard_dir is not None else scratch)
        if executor is None:
            run_shards(jobs, cropper, key=key, workers=workers, progress=progress, desc="rgb")
        else:
            executor(jobs, cropper, key=key, progress=progress, desc="rgb")
        count = sum(len(c) for c in plan.values())
        frames = len(next(iter(plan.values()))[0].frames) if count else 0
        with atomic_directory(out_dir) as tmp:
            crops = np.lib.format.open_memmap(tmp / "crops.npy", mode="w+", dtype=np.uint8, shape=(count, frames, size, size, 3))
            ids, row = [], 0
            for job in jobs:  # one shard in memory at a time
                shard = read_shard(job, key)
                if shard is None:
                    raise RuntimeError(f"{job.shard}: shard incomplete after extraction")
                arrays, _ = shard
                crops[row: row + len(arrays["crops"])] = arrays["crops"]
                ids += arrays["sample_ids"].tolist()
                row += len(arrays["crops"])
            crops.flush()
            del crops
            pq.write_table(pa.table({"sample_id": pa.array(ids, pa.string()), "row": pa.array(range(len(ids)), pa.int64())}),
                           tmp / "index.parquet")
    return count


class CropCache(Mapping):
    """The rgb stage's cache folder, read lazily: `cache[sample_id]` -> uint8 (T, S, S, 3), a view of the memory-mapped
    `crops.npy` (pages are read from disk as they are used)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not (self.folder / "crops.npy").is_file() or not (self.folder / "index.parquet").is_file():
            raise ContractError(f"{self.folder}: not an RGB crop cache (crops.npy and index.parquet; re-run the rgb stage: dvc repro rgb)")
        try:
            index = pq.read_table(self.folder / "index.parquet")
            self._rows = dict(zip(index.column("sample_id").to_pylist(), index.column("row").to_pylist()))
            self._crops = np.load(self.folder / "crops.npy", mmap_mode="r", allow_pickle=False)
        except Exception as err:  # pyarrow and numpy raise several types for damaged files
            raise ContractError(f"{self.folder}: unreadable RGB crop cache: {err} (re-run the rgb stage: dvc repro rgb)") from None
        if self._crops.ndim != 5 or len(self._crops) != len(self._rows) or self._crops.shape[-1] != 3:
            raise ContractError(f"{self.folder}: crops.npy of shape {self._crops.shape} does not match the index's "
                                f"{len(self._rows)} clips (re-run the rgb stage: dvc repro rgb)")

    def __getitem__(self, sample_id: str) -> np.ndarray:
        return self._crops[self._rows[sample_id]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __getstate__(self):  # worker processes reopen the file instead of receiving its bytes
        return {"folder": self.folder}

    def __setstate__(self, state) -> None:
        self.__init__(state["folder"])


@dataclass(frozen=True)
class CropSelection(Sequence):
    """Some clips' crops, in order, read on demand from `crops` (a `CropCache` or a dict)."""

    crops: Mapping[str, np.ndarray]
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.crops[self.ids[index]]


def load_crops(folder: str | os.PathLike) -> CropCache:
    return CropCache(folder)
