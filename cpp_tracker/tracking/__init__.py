"""Frames -> background -> per-frame track, in segments (no pandas/matplotlib)."""
