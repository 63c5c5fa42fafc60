"""First-party phases, one feature per module; the order they run in lives in ``pipeline/phases.py``."""
