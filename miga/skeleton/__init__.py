"""Body normalisation and geometric transforms of skeleton keypoints, shared by Track 1's skeleton streams, Track 2's
per-frame features and the baselines (`normalise`)."""

from miga.skeleton.normalise import (
    HANDS, NECK, SHOULDERS, affine_matrix, body_centres, carry_forward, causal_normalised, class_mirror, clip_normalised, mirrored,
)

__all__ = ["HANDS", "NECK", "SHOULDERS", "affine_matrix", "body_centres", "carry_forward", "causal_normalised",
           "class_mirror", "clip_normalised", "mirrored"]
