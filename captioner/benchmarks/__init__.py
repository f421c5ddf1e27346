"""Baselines and measurements for `captioner benchmark` (see docs/PERFORMANCE.md)."""
