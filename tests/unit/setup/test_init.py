"""setup.init: init's proposed config from a video, and its two files."""

from __future__ import annotations

from pathlib import Path

import cv2
import yaml

from cpp_tracker.config.settings import load_config, parse_config
from cpp_tracker.setup import init
from cpp_tracker.setup.init import (
    preview_path_for,
    propose_config_from_video,
    write_proposed_config,
)


def test_preview_path_for():
    assert preview_path_for("runs/box.yaml") == Path("runs/box_preview.png")
    assert preview_path_for(Path("a.b.yml")) == Path("a.b_preview.png")


def test_propose_and_write(video_factory, tmp_path):
    video, truth, _ = video_factory("draw_2ch", duration_s=6.0, seed=31)
    out = tmp_path / "box.yaml"
    proposed = propose_config_from_video(video, out, samples=30)
    assert (proposed.width, proposed.height) == (truth.spec.width, truth.spec.height)
    assert proposed.frames_sampled == 30
    assert proposed.background.shape == (truth.spec.height, truth.spec.width)
    assert proposed.config.source == str(out)
    assert proposed.config == parse_config(yaml.safe_load(proposed.text), source=str(out))
    # the config says which frame it was drawn on
    assert proposed.config.frame_size == (truth.spec.width, truth.spec.height)
    assert f"frame_size: [{truth.spec.width}, {truth.spec.height}]" in proposed.text
    assert f"{video}" in proposed.text and "box_preview.png" in proposed.text
    assert proposed.proposal.outline_found and proposed.proposal.doors_found
    assert [len(a.chambers) for a in proposed.config.arenas] == [2]
    assert not out.exists()  # nothing written yet

    preview = tmp_path / "pictures" / "p.png"
    preview.parent.mkdir()
    write_proposed_config(proposed, out, preview)
    assert out.read_text(encoding="utf-8") == proposed.text
    assert load_config(out) == proposed.config
    # a 320 px video is shown twice as large, for legible labels
    assert cv2.imread(str(preview)).shape[:2] == (2 * truth.spec.height, 2 * truth.spec.width)


def test_large_videos_sample_fewer_frames(video_factory, tmp_path, monkeypatch):
    video, truth, _ = video_factory("draw_2ch", duration_s=6.0, seed=31)
    frame = truth.spec.width * truth.spec.height
    monkeypatch.setattr(init, "SAMPLED_BYTES", 12 * frame)
    assert propose_config_from_video(video, tmp_path / "b.yaml", samples=30).frames_sampled == 12
    monkeypatch.setattr(init, "SAMPLED_BYTES", 3 * frame)  # never fewer than 10
    assert propose_config_from_video(video, tmp_path / "b.yaml", samples=30).frames_sampled == 10
