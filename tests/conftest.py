"""Shared fixtures: synthetic CPP videos with known ground truth, made once per session.

Videos are small (320x240) and short so that the suite runs in minutes on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REAL_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "real_videos"


@pytest.fixture(scope="session")
def video_factory(tmp_path_factory):
    """``make(name, **SceneSpec fields) -> (video_path, truth, config_path)``, cached by name."""
    from cpp_tracker.synthetic import SceneSpec, generate_video

    root = tmp_path_factory.mktemp("videos")
    cache: dict[str, tuple] = {}

    def make(name: str, **spec_fields):
        if name not in cache:
            spec = SceneSpec(**spec_fields)
            path = root / f"{name}.mp4"
            truth = generate_video(path, spec)
            config_path = root / f"{name}.yaml"
            config_path.write_text(yaml.safe_dump(truth.config, sort_keys=False))
            cache[name] = (path, truth, config_path)
        return cache[name]

    return make


def write_config(path: Path, config: dict) -> Path:
    """Write a config dict as YAML and return its path."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def _short_stall_waits(monkeypatch):
    """The reader waits seconds before giving up on a frame (a stalled network disk);
    the damaged test files would make every such test wait. tests/test_faults.py sets
    its own waits where the wait is what is tested."""
    from cpp_tracker.video.reader import VideoReader

    monkeypatch.setattr(VideoReader, "STALL_WAITS_S", (0.01,))
