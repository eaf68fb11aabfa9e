"""setup.draw_page.draw_page_for_video: the page for a video, with the config's problems."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from cpp_tracker.errors import ConfigError, VideoError
from cpp_tracker.setup import draw_page
from cpp_tracker.setup.draw_page import DRAW_SAMPLES, draw_page_for_video
from cpp_tracker.video.reader import VideoReader


def page_data(html: str) -> dict:
    text = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(text.group(1))


@pytest.fixture
def video(video_factory):
    return video_factory("draw_2ch", duration_s=6.0, seed=31)


@pytest.fixture
def sampled(monkeypatch):
    """The number of frames each draw_page_for_video sampled."""
    counts = []
    original = VideoReader.sample_frames

    def sample_frames(self, n, *args, **kwargs):
        counts.append(n)
        return original(self, n, *args, **kwargs)

    monkeypatch.setattr(VideoReader, "sample_frames", sample_frames)
    return counts


def test_without_a_config(video, sampled):
    path, truth, _ = video
    page = draw_page_for_video(path)
    assert (page.width, page.height) == (truth.spec.width, truth.spec.height)
    assert page.problems == ()
    data = page_data(page.html)
    assert data["config"] is None and data["width"] == truth.spec.width
    assert data["download_name"] == path.stem + ".yaml"
    assert sampled == [DRAW_SAMPLES]


def test_from_a_valid_config_it_samples_as_the_config_says(video, tmp_path, sampled):
    path, truth, _ = video
    config = dict(truth.config, background={"samples": 7})
    config_path = tmp_path / "box.yaml"
    config_path.write_text(yaml.safe_dump(config))
    page = draw_page_for_video(path, config_path=config_path)
    assert page.problems == ()
    data = page_data(page.html)
    assert data["config"]["arenas"] == truth.config["arenas"]
    assert data["extra"]["background"] == {"samples": 7}
    assert data["download_name"] == "box.yaml"
    draw_page_for_video(path, config_path=config_path, samples=5)
    assert sampled == [7, 5]


def test_a_config_drawn_on_another_frame_is_a_problem_and_redrawn_for_this_one(video, tmp_path):
    path, truth, _ = video
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump(dict(truth.config, frame_size=[640, 480])))
    page = draw_page_for_video(path, config_path=old)
    (problem,) = page.problems
    assert problem.startswith(f"drawn on a 640x480 frame (frame_size), but {path} is 320x240")
    data = page_data(page.html)
    # the page writes the size of the frame it shows, not the old one
    assert "frame_size" not in data["extra"]
    assert (data["width"], data["height"]) == (truth.spec.width, truth.spec.height)


def test_an_invalid_config_is_drawn_from_with_its_problems(video, tmp_path, sampled):
    path, truth, _ = video
    bad = dict(truth.config, arenas=[dict(truth.config["arenas"][0], doors=[])])
    bad_path = tmp_path / "bad.yaml"
    bad_path.write_text(yaml.safe_dump(dict(bad, background={"samples": 7})))
    page = draw_page_for_video(path, config_path=bad_path)
    assert len(page.problems) == 1 and "same piece" in page.problems[0]
    assert page_data(page.html)["config"]["arenas"][0]["doors"] == []
    assert sampled == [DRAW_SAMPLES]  # an invalid config's settings are not used


def test_a_config_outside_the_frame_is_a_problem(video, tmp_path):
    path, truth, _ = video
    arena = dict(truth.config["arenas"][0])
    arena["polygon"] = [[x + 1000, y] for x, y in arena["polygon"]]
    arena["doors"] = [dict(d, line=[[x + 1000, y] for x, y in d["line"]]) for d in arena["doors"]]
    arena["chambers"] = [dict(c, point=[c["point"][0] + 1000, c["point"][1]])
                         for c in arena["chambers"]]
    far = tmp_path / "far.yaml"
    far.write_text(yaml.safe_dump(dict(truth.config, arenas=[arena])))
    page = draw_page_for_video(path, config_path=far)
    assert page.problems and all("outside the video frame" in p for p in page.problems)
    assert page.problems[0].startswith("arenas[0].polygon[0]: point [")


def test_a_config_that_is_not_a_mapping_or_a_missing_video_stop_it(video, tmp_path):
    path, _, config = video
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n")
    with pytest.raises(ConfigError, match="not a YAML mapping.*draw without --config"):
        draw_page_for_video(path, config_path=listed)
    with pytest.raises(ConfigError, match="file not found"):
        draw_page_for_video(path, config_path=tmp_path / "missing.yaml")
    with pytest.raises(VideoError):
        draw_page_for_video(tmp_path / "missing.mp4", config_path=config)
    assert draw_page.DRAW_SAMPLES == 40
