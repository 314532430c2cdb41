"""RGB backbones (issue 17) on this CPU: can each train here, and can the loader keep it fed?

For every registry backbone (`miga.models.rgb_backbones`), at its published input recipe (frames x
train crop) unless `--size` / `--frames` override it:
  - train step: clips/s of forward + backward + SGD step on ready tensors (batch `--batch`);
  - decode: clips/s of one loader worker decoding a clip's frames with PyAV (`miga.video.read_frames`,
    from the file's start: a pre-cut clip file), cutting a square person box, resizing it to the
    recipe's cache size and applying the training transform (`rgb_clip_transform`);
  - cache: clips/s of reading the same crops from a uint8 `.npy` (T, S, S, 3) at the cache size and
    transforming them (the file is in the page cache after writing: a warm read);
  - crop mp4: the same crops kept as a small H.264 file (T frames at the cache size, crf 18), decoded
    with PyAV and transformed;
  - the disk cost of both caches per clip, and for the 18,499 clips of iMiGUE (train + test).
  Loader figures are for one process; the DataLoader's workers multiply them.

    python benchmarks/rgb_backbones.py                          # all backbones, recipe sizes, 1 thread
    python benchmarks/rgb_backbones.py --names x3d_xs slow_r50 --size 112 --threads 2

The video is --video (default: the 1920x1080 mmaction2 demo in ../shared/realdata, read in place; a
synthetic 1280x720 mp4 in a temporary folder when that is absent).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from miga.models.rgb_backbones import RGB_BACKBONES, create_rgb_backbone, input_recipe, rgb_clip_transform, sample_frame_indices
from miga.track1.rgb import crop_and_resize
from miga.video import encode_mp4, probe_video, read_frames

from benchmarks.realdata import REALDATA

REPO = Path(__file__).resolve().parents[1]
REAL_VIDEO = REALDATA / "video" / "mmaction2_demo_skeleton_ntu120_2person.mp4"
IMIGUE_CLIPS = 13_936 + 4_563


def train_rate(name: str, recipe, *, batch: int, steps: int) -> tuple[float, float]:
    """(clips/s, parameters in millions) of SGD training steps after one warm-up step."""
    torch.manual_seed(0)
    model = create_rgb_backbone(name, num_classes=32).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    clips = torch.randn(batch, 3, recipe.frames, recipe.size, recipe.size)
    labels = torch.randint(0, 32, (batch,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(clips), labels).backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start), sum(p.numel() for p in model.parameters()) / 1e6


def person_box(width: int, height: int) -> tuple[float, float, float]:
    return width / 2, height / 2, 0.6 * height  # a centred square, as a pose box of a seated person would be


def decode_rate(video: Path, recipe, *, clips: int) -> tuple[float, list[np.ndarray]]:
    """Clips/s of decode + person crop + resize to the cache size + training transform, one process; and the crops."""
    info = probe_video(video)
    transform = rgb_clip_transform(recipe, train=True)
    rng = np.random.default_rng(0)
    crops = []
    start = time.perf_counter()
    for _ in range(clips):
        indices = sample_frame_indices(recipe, 0, info.num_frames - 1, train=True, rng=rng)
        frames = read_frames(video, indices)
        crops.append(crop_and_resize(frames, person_box(info.width, info.height), recipe.cache_size))
        transform(crops[-1], rng)
    return clips / (time.perf_counter() - start), crops


def cache_rate(folder: Path, recipe, crops: list[np.ndarray]) -> float:
    """Clips/s of np.load of a uint8 (T, S, S, 3) clip at the cache size + training transform."""
    transform = rgb_clip_transform(recipe, train=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, crop in enumerate(crops):
        paths.append(folder / f"clip{i}.npy")
        np.save(paths[-1], crop)
    start = time.perf_counter()
    for path in paths:
        transform(np.load(path), rng)
    return len(paths) / (time.perf_counter() - start)


def crop_video_rate(folder: Path, recipe, crops: list[np.ndarray]) -> tuple[float, float]:
    """Clips/s of decoding a clip's crops kept as a small H.264 mp4 (its T frames at the cache size, crf 18)
    + training transform; and the mean file size in bytes."""
    transform = rgb_clip_transform(recipe, train=True)
    rng = np.random.default_rng(0)
    paths = []
    for i, crop in enumerate(crops):
        paths.append(folder / f"clip{i}.mp4")
        encode_mp4(paths[-1], crop, 30.0, (crop.shape[2], crop.shape[1]), crf=18)
    frames = np.arange(recipe.frames)
    read_frames(paths[0], frames)  # warm-up: the first open of a codec costs more than a clip
    start = time.perf_counter()
    for path in paths:
        transform(read_frames(path, frames), rng)
    rate = len(paths) / (time.perf_counter() - start)
    return rate, float(np.mean([p.stat().st_size for p in paths]))


def synthetic_video(folder: Path) -> Path:
    path = folder / "synthetic_720p.mp4"
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (720 // 8, 1280 // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    encode_mp4(path, (np.roll(base, 4 * t, axis=1) for t in range(120)), 30.0, (1280, 720))
    return path


def size_text(nbytes: int) -> str:
    return f"{nbytes / 2**20:.2f} MiB" if nbytes >= 2**20 else f"{nbytes / 2**10:.0f} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--names", nargs="+", default=list(RGB_BACKBONES), choices=list(RGB_BACKBONES))
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2, help="timed training steps per backbone (after 1 warm-up)")
    parser.add_argument("--clips", type=int, default=6, help="clips per loader measurement")
    parser.add_argument("--size", type=int, help="train crop side for every backbone (default: each recipe's)")
    parser.add_argument("--frames", type=int, help="frames for every backbone (default: each recipe's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the 2 cores are shared)")
    parser.add_argument("--video", type=Path, help="video to decode (default: see the module docstring)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        video = args.video or (REAL_VIDEO if REAL_VIDEO.exists() else synthetic_video(folder))
        info = probe_video(video)
        print(f"video {video.name}: {info.width}x{info.height}, {info.num_frames} frames; batch {args.batch}, "
              f"{args.threads} torch thread(s), {args.steps} timed steps, {args.clips} clips per loader figure\n")
        rows = []
        for name in args.names:
            recipe = input_recipe(name)
            if args.size or args.frames:
                size = args.size or recipe.size
                even = lambda side: 2 * round(side * size / recipe.size / 2)  # noqa: E731  (x264's yuv420p)
                scale = None if recipe.scale_range is None else tuple(map(even, recipe.scale_range))
                recipe = replace(recipe, size=size, frames=args.frames or recipe.frames,
                                 test_size=even(recipe.eval_size), scale_range=scale)
            step, params = train_rate(name, recipe, batch=args.batch, steps=args.steps)
            decoded, crops = decode_rate(video, recipe, clips=args.clips)
            cached = cache_rate(folder, recipe, crops)
            mp4_rate, mp4_bytes = crop_video_rate(folder, recipe, crops)
            rate = f"x{recipe.sampling_rate}" if recipe.sampling_rate else " uniform"
            rows.append(f"| {name} | {params:.1f} | {recipe.frames}{rate}, {recipe.size} px (cache {recipe.cache_size}) "
                        f"| {step:.2f} | {decoded:.1f} | {cached:.0f} | {size_text(recipe.cache_bytes())} "
                        f"({recipe.cache_bytes() * IMIGUE_CLIPS / 2**30:.1f} GiB) | {mp4_rate:.0f} "
                        f"| {size_text(int(mp4_bytes))} ({mp4_bytes * IMIGUE_CLIPS / 2**30:.2f} GiB) |")
            print(rows[-1], flush=True)
    print()
    print("| backbone | params (M) | input: frames x rate, train crop | train step clips/s | decode video + crop + "
          "transform clips/s | uint8 .npy cache + transform clips/s | .npy per clip (iMiGUE) | crop .mp4 cache + "
          "transform clips/s | .mp4 per clip (iMiGUE) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
