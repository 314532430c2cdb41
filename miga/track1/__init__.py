"""Track 1, clip classification: `recipe` (clip datasets, streams, training, fusion), `transforms` (the pose
clip pipeline: sampling, crops, flips, heatmaps), `rgb` (person-centred RGB crops)."""
