"""Time courses: idle motion, gesture envelopes and waves, and their composition into a posed body."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from miga.synth.body import (
    BODY_CHANNELS, OTHER, SIDES, Body, HandTrack, Subject, anchor_point, normalize, pose, rest_hand, to_body_frame, trunk,
)
from miga.synth.calibration import IDLE_HAND_SCALE
from miga.synth.gestures import HandAction, Program


@dataclass(frozen=True)
class Instance:
    """One performed gesture: 0-based class, inclusive frames, acting hand, and how far it gets."""

    label: int
    start: int
    end: int
    side: str  # "l" | "r"
    peak: float = 1.0  # < 1: an aborted gesture that stops short of its target

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def smooth_noise(rng: np.random.Generator, n: int, fps: float, period: float, sigma: float, dims: int = 1) -> np.ndarray:
    """Gaussian noise varying over ~`period` seconds: Catmull-Rom through random knots. (n, dims)."""
    step = max(period * fps, 1.0)
    knots = rng.normal(0.0, sigma, (int(n / step) + 4, dims))
    position = np.arange(n) / step + 1.0
    i = position.astype(np.int64)
    u = (position - i)[:, None]
    p0, p1, p2, p3 = knots[i - 1], knots[i], knots[i + 1], knots[i + 2]
    return 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2 + (3 * p1 - p0 - 3 * p2 + p3) * u**3)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def envelope(n: int, ramp_in: int, ramp_out: int) -> np.ndarray:
    """0 -> 1 over `ramp_in` frames, 1, then back to 0 over the last `ramp_out` frames."""
    i = np.arange(n, dtype=np.float64)
    return smoothstep((i + 1) / (ramp_in + 1)) * smoothstep((n - i) / (ramp_out + 1))


def steps(rng: np.random.Generator, n: int, fps: float, every: float, sigma: float) -> np.ndarray:
    """Posture shifts: a level that jumps at random times (about every `every` s), eased over ~1 s."""
    jumps = rng.random(n) < 1.0 / (every * fps)
    level = np.cumsum(np.where(jumps, rng.normal(0.0, sigma, n), 0.0))
    width = max(int(fps), 1)
    kernel = np.hanning(width + 2)[1:-1]
    padded = np.concatenate([np.full(width, level[0]), level, np.full(width, level[-1])])
    return np.convolve(padded, kernel / kernel.sum(), mode="same")[width: width + n]


def idle_channels(rng: np.random.Generator, n: int, fps: float, subject: Subject) -> dict[str, np.ndarray]:
    """Breathing, head drift and looking around, torso sway and posture shifts."""
    ch = {name: np.zeros(n) for name in BODY_CHANNELS}
    t = np.arange(n) / fps
    breath = np.sin(2 * math.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 2 * math.pi))
    for side in SIDES:
        ch[f"raise_{side}"] += 0.006 * breath + smooth_noise(rng, n, fps, 2.0, 0.003)[:, 0]
    ch["trunk_rise"] += 0.004 * breath
    ch["pitch"] += subject.head_pitch + smooth_noise(rng, n, fps, 2.0, 0.05)[:, 0]
    ch["yaw"] += smooth_noise(rng, n, fps, 2.5, 0.12)[:, 0]
    ch["roll"] += smooth_noise(rng, n, fps, 3.0, 0.03)[:, 0]
    sway = 0.01 if subject.seated else 0.02
    ch["lean_x"] += smooth_noise(rng, n, fps, 3.0, sway)[:, 0] + steps(rng, n, fps, 15.0, 0.015)
    ch["lean_z"] += smooth_noise(rng, n, fps, 3.0, 0.01)[:, 0] + steps(rng, n, fps, 15.0, 0.02)
    ch["root_x"] += steps(rng, n, fps, 20.0, 0.015 if subject.seated else 0.04)
    return ch


def idle_hand(rng: np.random.Generator, hand: HandTrack, fps: float) -> None:
    """Small drift of a resting hand, and now and then a short fidget."""
    n = len(hand.contact)
    hand.contact += smooth_noise(rng, n, fps, 1.5, 0.008 * IDLE_HAND_SCALE, 3)
    hand.direction[:] = normalize(hand.direction + smooth_noise(rng, n, fps, 2.0, 0.1, 3))
    hand.spread += smooth_noise(rng, n, fps, 2.0, 0.1)[:, 0]
    for start in np.flatnonzero(rng.random(n) < 1.0 / (8.0 * fps)):
        length = min(int(rng.uniform(0.5, 1.2) * fps), n - start)
        bump = np.sin(np.linspace(0.0, math.pi, length))[:, None]
        hand.contact[start: start + length] += bump * rng.normal(0.0, 0.025 * IDLE_HAND_SCALE, 3)


def body_wave(kind: str, n: int, fps: float, freq: float, phase: float) -> np.ndarray:
    t = np.arange(n) / fps
    if kind == "hold":
        return np.ones(n)
    if kind == "cycle":  # one slow rise and fall over the whole gesture
        return np.sin(math.pi * (np.arange(n) + 0.5) / n)
    if kind == "sine":
        return np.sin(2 * math.pi * freq * t + phase)
    if kind == "pulse":
        return 0.5 - 0.5 * np.cos(2 * math.pi * freq * t + phase)
    raise ValueError(f"unknown body motion {kind!r}")


def hand_wave(rng: np.random.Generator, action: HandAction, n: int, fps: float, side: str, *, freq, amp, phase):
    """Displacement (n, 3) in the body frame that the motion adds to the contact point."""
    t = np.arange(n) / fps
    axis = normalize(to_body_frame(action.axis, side))
    drift = smooth_noise(rng, n, fps, 1.0, 0.003, 3)
    if action.motion == "hold":
        return drift
    if action.motion in ("rub", "sweep"):
        return drift + amp * np.sin(2 * math.pi * freq * t + phase)[:, None] * axis
    if action.motion == "tap":
        return drift + amp * (0.5 - 0.5 * np.cos(2 * math.pi * freq * t + phase))[:, None] * axis
    if action.motion in ("fiddle", "free"):
        return smooth_noise(rng, n, fps, 1.0 / freq, amp, 3)
    raise ValueError(f"unknown hand motion {action.motion!r}")


def _ramps(rng: np.random.Generator, n: int, fps: float) -> tuple[int, int]:
    longest = max(int(0.7 * fps), 3)
    ramp_in = int(np.clip(n * rng.uniform(0.15, 0.35), 3, longest))
    ramp_out = int(np.clip(n * rng.uniform(0.15, 0.35), 3, longest))
    return min(ramp_in, n // 2), min(ramp_out, n // 2)


def _acting_sides(program: Program, side: str) -> list[tuple[str, float]]:
    """Sides that perform `program.active`, with the phase each oscillation starts at."""
    if not program.both:
        return [(side, 0.0)]
    return [(side, 0.0), (OTHER[side], math.pi if program.antiphase else 0.0)]


def _apply_body(ch, program: Program, inst: Instance, weight: np.ndarray, fps: float, speed: float, rng) -> None:
    span = slice(inst.start, inst.end + 1)
    for move in program.body:
        name = move.channel.format(own=inst.side, other=OTHER[inst.side])
        amp = move.amp * rng.uniform(0.7, 1.3)
        freq = move.freq * speed * rng.uniform(0.85, 1.15)
        ch[name][span] += amp * weight * body_wave(move.motion, inst.length, fps, freq, move.phase)


@dataclass
class _Scene:
    """What moving a hand needs: the person, their trunk and head points, both hands so far."""

    subject: Subject
    points: dict[str, np.ndarray]
    hands: dict[str, HandTrack]
    fps: float
    rng: np.random.Generator

    def move_hand(self, side: str, action: HandAction, inst: Instance, weight: np.ndarray, phase: float) -> None:
        """Blend the hand on `side` toward `action` over the instance, by `weight` per frame."""
        rng, subject, span = self.rng, self.subject, slice(inst.start, inst.end + 1)
        anchor = action.anchor if isinstance(action.anchor, str) else action.anchor[rng.integers(len(action.anchor))]
        target = anchor_point(anchor, side, self.points, self.hands, span, subject)
        target = target + subject.scale * to_body_frame(action.offset, side) + rng.normal(0.0, 0.01, 3)
        wave = hand_wave(
            rng, action, inst.length, self.fps, side, freq=max(action.freq, 0.5) * subject.speed * rng.uniform(0.85, 1.15),
            amp=action.amp * rng.uniform(0.7, 1.3), phase=phase + rng.uniform(0, 0.5),
        )
        direction = normalize(to_body_frame(action.direction, side) + rng.normal(0.0, 0.1, 3))
        if action.motion == "free":
            direction = normalize(direction + smooth_noise(rng, inst.length, self.fps, 0.8, 0.5, 3))
        spread = action.spread * rng.uniform(0.85, 1.15)
        self.hands[side].blend(span, action.reach * weight, target + wave, direction, spread, action.curl, action.elbow_out)


def animate(
    subject: Subject, instances: Sequence[Instance], num_frames: int, fps: float, programs: Sequence[Program],
    rng: np.random.Generator,
) -> Body:
    """Idle motion everywhere, each gesture instance layered on in start order (later ones win)."""
    ch = idle_channels(rng, num_frames, fps, subject)
    weights = []
    for inst in instances:
        weight = inst.peak * envelope(inst.length, *_ramps(rng, inst.length, fps))
        _apply_body(ch, programs[inst.label], inst, weight, fps, subject.speed, rng)
        weights.append(weight)
    points = trunk(subject, ch)
    hands = {side: rest_hand(subject, points, side) for side in SIDES}
    for hand in hands.values():
        idle_hand(rng, hand, fps)
    scene = _Scene(subject, points, hands, fps, rng)
    for inst, weight in zip(instances, weights):
        program = programs[inst.label]
        if program.passive is not None:  # first, so the acting hand can go to where the other one now is
            scene.move_hand(OTHER[inst.side], program.passive, inst, weight, 0.0)
        if program.active is not None:
            for side, phase in _acting_sides(program, inst.side):
                scene.move_hand(side, program.active, inst, weight, phase)
    return pose(subject, ch, points, hands)
