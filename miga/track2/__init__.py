"""Track 2, online recognition: `recipe` (features, detectors, training, decoding), `detection` (anchor-free
targets and decoding), `segments` (frame scores to segments, NMS), `online` (streaming detection)."""
