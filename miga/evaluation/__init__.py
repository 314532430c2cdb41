"""Scoring and submissions for both tracks: `metrics` (top-1 / head-tail, instance F1), `submission` (CSV formats)."""
