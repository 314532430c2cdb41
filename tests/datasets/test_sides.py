"""Left/right measured from the data (miga.datasets.sides) and its warnings in `miga data check imigue`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from miga.datasets.check import check_release
from miga.datasets.entry import default_entry
from miga.datasets.sides import body_sides, hand_sides
from miga.errors import ConfigError
from miga.layouts import OPENPOSE25_HANDS10 as LIGHT, convert

TIPS_LEFT, TIPS_RIGHT = slice(25, 30), slice(30, 35)  # openpose25_hands10: the tips named left, then right


def _seated(frames: int = 80, *, hands_together: int = 0, seed: int = 0) -> np.ndarray:
    """(T, 35, 3) openpose25_hands10 of a person facing the camera (their left on the image's right),
    hands apart, then `hands_together` frames with the fingers pointing at the other wrist."""
    rng = np.random.default_rng(seed)
    out = np.zeros((frames + hands_together, LIGHT.num_joints, 3), np.float32)
    at = {"Neck": (150, 100), "RShoulder": (100, 100), "LShoulder": (200, 100), "Nose": (150, 60),
          "REye": (140, 50), "LEye": (160, 50), "REar": (125, 55), "LEar": (175, 55),
          "RElbow": (80, 180), "LElbow": (220, 180), "MidHip": (150, 260), "RHip": (125, 260), "LHip": (175, 260)}
    for name, xy in at.items():
        out[:, LIGHT.index(name)] = (*xy, 0.9)
    for t in range(len(out)):
        together = t >= frames
        wrists = {"R": np.array([130.0, 230]), "L": np.array([170.0, 230])} if together else \
            {"R": np.array([40.0, 240]), "L": np.array([260.0, 240])}
        for side, wrist in wrists.items():
            out[t, LIGHT.index(f"{side}Wrist")] = (*(wrist + rng.normal(0, 2, 2)), 0.8)
            direction = np.array([1.0 if side == "R" else -1.0, 0.3]) if together else np.array([0.0, 1.0])
            for k, finger in enumerate(("Thumb", "Index", "Middle", "Ring", "Pinky")):
                tip = wrist + 35 * direction + rng.normal(0, 4, 2) + (k - 2) * 4 * direction[::-1]
                out[t, LIGHT.index(f"{side}{finger}Tip")] = (*tip, 0.6)
        out[t, :, :2] += rng.normal(0, 1, (LIGHT.num_joints, 2))
    return out


def _swap_tips(points: np.ndarray) -> np.ndarray:
    out = points.copy()
    out[:, TIPS_LEFT], out[:, TIPS_RIGHT] = points[:, TIPS_RIGHT], points[:, TIPS_LEFT]
    return out


def test_fingertip_blocks_as_named_and_swapped():
    points = _seated()
    named = hand_sides(points, "openpose25_hands10")
    assert named.verdict == "as named" and named.frames == (80, 80)
    assert named.left_block[0] < 0.3 * named.left_block[1] and named.right_block[1] < 0.3 * named.right_block[0]
    swapped = hand_sides(_swap_tips(points), "openpose25_hands10")
    assert swapped.verdict == "swapped"
    assert swapped.left_block == pytest.approx(named.right_block) and swapped.right_block == pytest.approx(named.left_block)
    assert "tips read as left lie" in swapped.describe() and "px from RWrist" in swapped.describe()
    # other layouts with named tips: the 137 points (full hands) and the 2023 arrays
    assert hand_sides(convert(points, "openpose25_hands10", "imigue22"), "imigue22").verdict == "as named"


def test_fingertips_with_the_hands_together_are_unclear():
    """Fingers pointing at the other wrist (clasped hands, as in the real interview 298): only frames with the hands
    apart decide; without them the check says it cannot tell, whatever the mean distances."""
    together = _seated(frames=5, hands_together=80)
    assert hand_sides(together, "openpose25_hands10").verdict == "unclear"
    assert hand_sides(together, "openpose25_hands10", apart=0).verdict != "as named"
    assert hand_sides(_seated(hands_together=400), "openpose25_hands10").verdict == "as named"


def test_body_sides_from_the_image_side():
    points = _seated()
    named = body_sides(points, "openpose25_hands10")
    assert named.verdict == "as named" and named.left_on_right == 1.0 and named.pairs["Shoulder"] == (80, 1.0)
    mirrored = body_sides(convert(points, "openpose25_hands10", "openpose25_hands10", mirror=True), "openpose25_hands10")
    assert mirrored.verdict == "swapped" and mirrored.left_on_right == 0.0
    assert body_sides(points[:3], "openpose25_hands10").verdict == "unclear"  # too few frames


def _release(root: Path, points_by_video: dict[str, np.ndarray]) -> Path:
    for video, points in points_by_video.items():
        folder = root / "imigue_skeleton_train" / video
        folder.mkdir(parents=True)
        (folder / f"{video}_label.csv").write_text(f"3,0,{len(points) // 2}\n99,{len(points) // 2 + 1},{len(points) - 1}\n")
        rows = np.column_stack([np.arange(len(points)), points.reshape(len(points), -1)])
        (folder / f"{video}_light_hand.csv").write_text("\n".join(",".join(f"{v:.3f}" for v in row) for row in rows) + "\n")
    return root


def _check(root: Path):
    return check_release("imigue", root, default_entry() | {"root": str(root)}, {}, require_video=False)


def test_data_check_warns_when_the_tips_are_the_other_way_round(tmp_path):
    root = _release(tmp_path, {"0001": _swap_tips(_seated(seed=1)), "0002": _swap_tips(_seated(seed=2))})
    report = _check(root)
    assert not report.fatal
    tips = [w for w in report.warnings if w.startswith("fingertips")]
    assert len(tips) == 1 and "swapped" in tips[0] and "px from LWrist" in tips[0] and "0001, 0002" in tips[0], report.warnings
    assert any("body" in n and "as named" in n for n in report.notes)
    assert any("warning: fingertips" in line for line in report.lines())


def test_data_check_notes_the_sides_when_they_agree_and_warns_on_one_odd_interview(tmp_path):
    root = _release(tmp_path / "good", {"0001": _seated(seed=1), "0002": _seated(seed=2)})
    report = _check(root)
    assert not report.warnings and not report.fatal
    assert any("fingertips" in n and "as named" in n for n in report.notes)
    root = _release(tmp_path / "mixed", {"0001": _seated(seed=1), "0002": _seated(seed=2), "0003": _swap_tips(_seated(seed=3))})
    report = _check(root)
    assert any("interviews 0003 have the tip blocks the other way round" in w for w in report.warnings), report.warnings


def test_data_check_warns_when_the_body_looks_mirrored(tmp_path):
    mirrored = convert(_seated(seed=4), "openpose25_hands10", "openpose25_hands10", mirror=True)
    report = _check(_release(tmp_path, {"0001": mirrored}))
    body = [w for w in report.warnings if w.startswith("body")]
    assert len(body) == 1 and "swapped" in body[0] and "mirrored" in body[0], report.warnings


def test_the_tip_order_setting_reads_a_right_first_release_in_the_layouts_order(tmp_path):
    """A release whose first tip block is the right hand's: the check names the setting that fixes it, and with
    `light_hand_tips: right_first` the reader gives the layout's order (left tips first) and the check agrees."""
    from miga.datasets import imigue

    seated = _seated(seed=1)
    root = _release(tmp_path, {"0001": _swap_tips(seated), "0002": _swap_tips(_seated(seed=2))})
    tips = [w for w in _check(root).warnings if w.startswith("fingertips")]
    assert len(tips) == 1 and "set datasets.imigue.light_hand_tips: right_first" in tips[0], tips
    fixed = default_entry() | {"root": str(root), "light_hand_tips": "right_first"}
    report = check_release("imigue", root, fixed, {}, require_video=False)
    assert not [w for w in report.warnings if w.startswith("fingertips")] and any("fingertips" in n and "as named" in n for n in report.notes)
    path = root / "imigue_skeleton_train/0001/0001_light_hand.csv"
    np.testing.assert_allclose(imigue.read_interview(path, "light_hand", tips="right_first"), seated, atol=1e-3)
    np.testing.assert_allclose(imigue.read_interview(path, "light_hand"), _swap_tips(seated), atol=1e-3)
    assert imigue.light_hand_tips(fixed) == "right_first" and imigue.light_hand_tips(None) == "left_first"
    with pytest.raises(ConfigError, match="light_hand_tips: 'right'"):
        imigue.read_interview(path, "light_hand", tips="right")
