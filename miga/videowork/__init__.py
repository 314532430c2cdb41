"""Per-video work spread over local processes or Ray, in resumable per-video shards: pose extraction
(`miga.pose.extract`) and the RGB crop cache (`miga.track1.rgb`) both run on it."""
