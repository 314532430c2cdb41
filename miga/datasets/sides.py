"""Which side is which in a provided skeleton, measured from the data (issue 26).

Two things about left and right can be checked on 2-D keypoints without any ground truth:

- Fingertips against the wrists (`hand_sides`). The fingertips of a hand lie next to that hand's
  wrist. For the block of tips a layout names left (`L*Tip`) and the block it names right, the
  mean distance (pixels) of the block's centre (its seen tips) to LWrist and to RWrist says which
  wrist each block belongs to. Only frames with the hands apart count: wrists at least one
  shoulder width apart (`apart`). A hand is shorter than half the shoulder span, so there a tip
  can only be nearer its own wrist; with the hands together it need not be. Measured on the real
  OpenPose output of iMiGUE video 298 (a seated player, hands mostly clasped, wrists a median 0.65
  shoulder widths apart): over all 19,400 frames with both wrists seen, the right hand's tips lie
  123 px from LWrist and 148 px from RWrist (the fingers point at the other hand) and the left
  hand's 122 vs 142 px, no answer; over the 807-809 frames with the hands apart, 164 px from
  RWrist vs 480 px from LWrist and 173 px from LWrist vs 359 px from RWrist. This is internal
  consistency: it holds whatever the camera, and it decides the disputed order of the 10 tips of
  `{vid}_light_hand.csv` (layout openpose25_hands10 reads left 5 then right 5; the organisers'
  sample reader takes right then left). It relies on BODY_25's own wrists being named right.
- BODY_25's left/right naming (`body_sides`). Nothing inside a 2-D skeleton tells a left arm
  from a right one, so only an assumption about the camera can: a person facing an unmirrored
  camera has the left shoulder (eye, ear, hip) on the image's right. iMiGUE films seated players
  facing the camera at press conferences, so in most frames LShoulder.x > RShoulder.x. If instead
  the left joints lie on the image's left, either the release's left/right columns are swapped or
  the video is mirrored (or the subject faces away); the check cannot tell these apart. Elbows and
  wrists are left out: arms cross (folded arms, a hand at the other ear).

Both give a verdict "as named", "swapped" or "unclear" (too few frames, or no clear margin).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from miga.layouts import get_layout

MIN_SCORE = 0.1
MIN_FRAMES = 25
MARGIN = 0.8    # hands: the nearer wrist must be at most this fraction of the other's distance
APART = 1.0     # hands: frames whose wrists are at least this many shoulder widths apart
MAJORITY = 0.8  # body: share of frames with the left joint on the image's right ("as named"), or on its left
BODY_PAIRS = ("Shoulder", "Eye", "Ear", "Hip")


@dataclass(frozen=True)
class HandSides:
    """Mean pixel distances of each fingertip block's centre to (LWrist, RWrist), and the verdict."""

    layout: str
    frames: tuple[int, int]                 # frames measured for the block named left, the block named right
    apart: float                            # only frames with the wrists this many shoulder widths apart
    left_block: tuple[float, float]         # the block named left: mean distance to LWrist, to RWrist
    right_block: tuple[float, float]        # the block named right: mean distance to LWrist, to RWrist
    verdict: str                            # "as named", "swapped" or "unclear"

    def describe(self) -> str:
        (ll, lr), (rl, rr) = self.left_block, self.right_block
        return (f"fingertips ({self.layout}): the tips read as left lie {ll:.0f} px from LWrist and {lr:.0f} px from RWrist, "
                f"the tips read as right {rr:.0f} px from RWrist and {rl:.0f} px from LWrist "
                f"(means over {self.frames[0]} / {self.frames[1]} frames with both wrists seen"
                + (f", at least {self.apart:g}x the shoulder width apart" if self.apart > 0 else "") + f"): {self.verdict}")


@dataclass(frozen=True)
class BodySides:
    """Per joint pair, frames where both were seen and the share with the L joint on the image's right."""

    layout: str
    pairs: dict[str, tuple[int, float]]
    frames: int
    left_on_right: float                    # pooled over the pairs
    verdict: str

    def describe(self) -> str:
        detail = ", ".join(f"{name} {share:.0%} of {n}" for name, (n, share) in self.pairs.items() if n)
        return (f"body ({self.layout}): the left joint is on the image's right in {self.left_on_right:.0%} of "
                f"{self.frames} joint pairs seen ({detail or 'none seen'}); for a subject facing an unmirrored camera "
                f"that share is near 100%: {self.verdict}")


def _tip_blocks(layout) -> tuple[list[int], list[int]]:
    tips = [name for name in layout.joints if name.endswith("Tip") and name[:1] in "LR" and name[1:2].isupper()]
    return ([layout.index(n) for n in tips if n[0] == "L"], [layout.index(n) for n in tips if n[0] == "R"])


def _block_distances(keypoints: np.ndarray, block: list[int], wrists: tuple[int, int], use: np.ndarray,
                     min_score: float) -> tuple[int, float, float]:
    tips = keypoints[:, block]
    seen = tips[..., 2] >= min_score
    count = seen.sum(axis=1)
    centre = (tips[..., :2] * seen[..., None]).sum(axis=1) / np.maximum(count, 1)[:, None]
    use = use & (count > 0)
    if not use.any():
        return 0, float("nan"), float("nan")
    lw, rw = keypoints[use, wrists[0], :2], keypoints[use, wrists[1], :2]
    return (int(use.sum()), float(np.linalg.norm(centre[use] - lw, axis=1).mean()),
            float(np.linalg.norm(centre[use] - rw, axis=1).mean()))


def hand_sides(keypoints: np.ndarray, layout: str, *, min_score: float = MIN_SCORE, min_frames: int = MIN_FRAMES,
               margin: float = MARGIN, apart: float = APART) -> HandSides:
    """Which wrist each named fingertip block lies next to, in `(..., T, V, 3)` keypoints of `layout`.

    Frames count where both wrists are seen and, for `apart` > 0, both shoulders too, with the
    wrists at least `apart` shoulder widths apart. "as named": the left block is nearer LWrist and
    the right block nearer RWrist, each by the margin (nearer distance <= margin x the other);
    "swapped": both the other way round; else (or under `min_frames` frames) "unclear".
    """
    spec = get_layout(layout)
    left, right = _tip_blocks(spec)
    if not left or not right:
        raise ValueError(f"layout {layout!r} has no left and right fingertips")
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, spec.num_joints, np.shape(keypoints)[-1])
    wrists = (spec.index("LWrist"), spec.index("RWrist"))
    lw, rw = points[:, wrists[0]], points[:, wrists[1]]
    use = (lw[:, 2] >= min_score) & (rw[:, 2] >= min_score)
    if apart > 0:
        ls, rs = points[:, spec.index("LShoulder")], points[:, spec.index("RShoulder")]
        width = np.linalg.norm(ls[:, :2] - rs[:, :2], axis=1)
        use &= (ls[:, 2] >= min_score) & (rs[:, 2] >= min_score) & (width > 0)
        use &= np.linalg.norm(lw[:, :2] - rw[:, :2], axis=1) >= apart * width
    nl, ll, lr = _block_distances(points, left, wrists, use, min_score)
    nr, rl, rr = _block_distances(points, right, wrists, use, min_score)
    if min(nl, nr) < min_frames:
        verdict = "unclear"
    elif ll <= margin * lr and rr <= margin * rl:
        verdict = "as named"
    elif lr <= margin * ll and rl <= margin * rr:
        verdict = "swapped"
    else:
        verdict = "unclear"
    return HandSides(layout, (nl, nr), apart, (ll, lr), (rl, rr), verdict)


def body_sides(keypoints: np.ndarray, layout: str, *, min_score: float = MIN_SCORE, min_frames: int = MIN_FRAMES,
               majority: float = MAJORITY) -> BodySides:
    """Share of frames where each left joint (shoulder, eye, ear, hip) is on the image's right of its right twin.

    "as named": at least `majority` of the pooled pairs; "swapped": at most 1 - majority (left/right
    columns swapped, or a mirrored video); else "unclear". Pairs the layout lacks are skipped.
    """
    spec = get_layout(layout)
    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, spec.num_joints, np.shape(keypoints)[-1])
    pairs: dict[str, tuple[int, float]] = {}
    total = right = 0
    for name in BODY_PAIRS:
        if f"L{name}" not in spec.joints or f"R{name}" not in spec.joints:
            continue
        lj, rj = points[:, spec.index(f"L{name}")], points[:, spec.index(f"R{name}")]
        use = (lj[:, 2] >= min_score) & (rj[:, 2] >= min_score) & (lj[:, 0] != rj[:, 0])
        n, k = int(use.sum()), int((lj[use, 0] > rj[use, 0]).sum())
        pairs[name] = (n, k / n if n else float("nan"))
        total, right = total + n, right + k
    share = right / total if total else float("nan")
    if total < min_frames:
        verdict = "unclear"
    elif share >= majority:
        verdict = "as named"
    elif share <= 1 - majority:
        verdict = "swapped"
    else:
        verdict = "unclear"
    return BodySides(layout, pairs, total, share, verdict)
