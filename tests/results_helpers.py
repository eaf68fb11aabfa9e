"""Tracked results of generated videos, made once per session, for the picture tests."""

from __future__ import annotations

from pathlib import Path

import pytest

_CACHE: dict[str, tuple] = {}

#: A 20-s, one-box video: small and short, with a few door crossings.
SPEC = {"duration_s": 20.0, "seed": 1}


def tracked(video_factory, tmp_path_factory, name: str = "checking", **spec):
    """``(video_path, truth, result_dir)`` of a generated video tracked with plots on."""
    pytest.importorskip(
        "cpp_tracker.synthetic", reason="cpp_tracker.synthetic (the test video generator) is "
        "not on this branch yet"
    )
    if name not in _CACHE:
        from cpp_tracker.config.settings import load_config
        from cpp_tracker.runs.pipeline import track_video

        video, truth, config_path = video_factory(name, **{**SPEC, **spec})
        out = tmp_path_factory.mktemp(f"results_{name}")
        result = track_video(video, load_config(config_path), out, progress=False)
        _CACHE[name] = (Path(video), truth, result.result_dir)
    return _CACHE[name]
