"""The synthetic world stays calibrated on real statistics (issue 26; miga.synth.calibration).

The real reference figures are embedded in `calibration.REAL` (measured on ../shared/realdata: iMiGUE video
298's OpenPose JSON and labels_dev.csv, SMG Sample0001-0035's fine labels), so these tests run without the
real material; where it exists, `test_real_reference_figures` recomputes them.
"""

from __future__ import annotations

import dataclasses
import math
import tarfile
import pytest

from miga.synth import calibration as cal
from miga.synth import generate_imigue, generate_smg, get_preset, plan_imigue, plan_smg
from miga.synth.imigue import raw_class
from tests.conftest import REALDATA  # ../shared/realdata, or MIGA_REALDATA

SEED = 11


@pytest.fixture(scope="module")
def small_release(tmp_path_factory):
    """The default preset's per-gesture settings on a few small videos and sequences (~15 s)."""
    root = tmp_path_factory.mktemp("calibrated")
    preset = get_preset("default")
    imigue = dataclasses.replace(preset.imigue, videos={"train": 8, "val": 2, "test": 2},
                                 subjects={"train": 4, "val": 1, "test": 1}, size=(160, 90))
    smg = dataclasses.replace(preset.smg, samples={"train": (1, 4), "val": (31, 1), "test": (36, 1)}, size=(160, 90))
    generate_imigue(root / "imigue", imigue, SEED)
    generate_smg(root / "smg", smg, SEED)
    motion, labels = cal.synthetic_imigue(root / "imigue")
    return {"imigue_motion": motion, "imigue_labels": labels, "smg": cal.synthetic_smg(root / "smg")}


def _check(group: str, keys, synthetic: dict) -> None:
    failures = []
    for key in keys:
        real, rule = cal.REAL[group][key], cal.TOLERANCES[(group, key)]
        if not cal.within(real, synthetic[key], rule):
            failures.append(f"{key}: synthetic {synthetic[key]:.4g} vs real {real:.4g} ({cal.describe(rule)})")
    assert not failures, "; ".join(failures)


def test_imigue_wrist_motion_is_calibrated(small_release):
    assert small_release["imigue_motion"]["clips"] >= 100
    _check("imigue_motion", ["displacement_median", "displacement_q3", "speed_mean", "speed_median"],
           small_release["imigue_motion"])


def test_imigue_clip_lengths_are_calibrated(small_release):
    _check("imigue_labels", ["length_median", "length_mean", "length_q1", "length_q3"], small_release["imigue_labels"])


def test_imigue_class_share_of_the_default():
    """Class 99's share over the default preset's whole plan (720 clips; planning renders nothing)."""
    plans = plan_imigue(get_preset("default").imigue, 2024)
    rows = [(raw_class(i.label), i.start, i.end) for p in plans for i in p.instances]
    _check("imigue_labels", ["non_mg_share"], cal.clip_label_summary(rows))


SMG_KEYS = ["duration_median", "duration_mean", "duration_p10", "duration_p90", "inside_share", "per_1000_frames"]


def test_smg_gestures_are_calibrated(small_release):
    assert small_release["smg"]["gestures"] >= 30
    _check("smg", SMG_KEYS, small_release["smg"])


def test_smg_plan_of_the_default():
    """The default preset's whole plan (18 sequences, ~140 gestures; renders nothing), overlaps included:
    at ~1.7% a small release holds too few pairs to measure them."""
    import numpy as np

    plans = plan_smg(get_preset("default").smg, 2024)
    sequences = {p.name: (p.num_frames, np.array([(i.label + 1, i.start, i.end) for i in p.instances])) for p in plans}
    _check("smg", SMG_KEYS + ["overlap_share"], cal.gesture_summary(sequences))


def test_measurement_on_a_known_clip():
    """A wrist moving 1 shoulder width right over 10 frames, then back: displacement 1, speed 0.2 / 2 wrists."""
    import numpy as np

    from miga.layouts import OPENPOSE25_HANDS10 as layout

    kp = np.zeros((11, layout.num_joints, 3))
    j = layout.joints.index
    kp[:, j("LShoulder")] = (150, 100, 0.9)
    kp[:, j("RShoulder")] = (50, 100, 0.9)  # shoulder width 100 px
    kp[:, j("LWrist")] = (150, 200, 0.9)
    kp[:, j("RWrist"), :2] = np.stack([50 + 20 * np.minimum(np.arange(11), 10 - np.arange(11)), np.full(11, 200)], 1)
    kp[:, j("RWrist"), 2] = 0.9
    width = cal.shoulder_width(kp, layout.name)
    displacement, speed = cal.clip_motion(kp, layout.name, 0, 10, width)
    assert width == 100
    assert math.isclose(displacement, 1.0)
    assert math.isclose(speed, 0.1)  # 10 steps of 0.2 on one wrist, 10 still steps on the other


@pytest.mark.skipif(not (REALDATA / "imigue_real" / "298_openpose_json.tar.gz").exists(), reason="no real material")
def test_real_reference_figures(tmp_path):
    imigue = REALDATA / "imigue_real"
    with tarfile.open(imigue / "298_openpose_json.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    measured = {
        "imigue_motion": cal.real_imigue_motion(tmp_path / "298", imigue / "labels_dev.csv"),
        "imigue_labels": cal.real_imigue_labels(imigue / "labels_dev.csv"),
        "smg": cal.real_smg(REALDATA / "smg_real" / "smg_finelabels_train_val.csv"),
    }
    for group, figures in cal.REAL.items():
        for key, value in figures.items():
            assert math.isclose(measured[group][key], value, rel_tol=2e-3), (group, key, measured[group][key], value)
