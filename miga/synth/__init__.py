"""Seeded synthetic iMiGUE and SMG data in the official file layouts.

The pipeline runs end to end on a fresh machine through the same readers real data takes:
an articulated body (`body`) performs one motion program per class (`gestures`) between idle
movement (`motion`), is observed as OpenPose keypoints or Kinect rows (`sensors`) and drawn into
an mp4 (`render`); `imigue` and `smg` plan and write the releases.
"""

from __future__ import annotations

from miga.synth.imigue import generate_imigue, plan_imigue
from miga.synth.presets import PRESETS, ImigueConfig, Preset, SmgConfig, get_preset
from miga.synth.smg import generate_smg, plan_smg

__all__ = [
    "PRESETS", "ImigueConfig", "Preset", "SmgConfig",
    "generate_imigue", "generate_smg", "get_preset", "plan_imigue", "plan_smg",
]
