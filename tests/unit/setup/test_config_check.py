"""setup.config_check: check-config's and preview's library calls."""

from __future__ import annotations

import cv2
import pytest
import yaml

from cpp_tracker.config.settings import config_hash, load_config
from cpp_tracker.errors import ConfigError
from cpp_tracker.setup.config_check import check_config_file, preview_config_file


@pytest.fixture
def video(video_factory):
    return video_factory("draw_2ch", duration_s=6.0, seed=31)


def too_wide(tmp_path, truth) -> str:
    arena = dict(truth.config["arenas"][0])
    arena["polygon"] = [[x * 3, y] for x, y in arena["polygon"]]  # past the right edge
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(dict(truth.config, arenas=[arena])))
    return str(path)


def test_check_config_file_with_and_without_the_video(video):
    path, truth, config_path = video
    checked = check_config_file(config_path, path)
    assert checked.frame_size == (truth.spec.width, truth.spec.height)
    assert checked.config == load_config(config_path)
    assert checked.config_hash == config_hash(checked.config)
    (m,) = checked.measures
    assert m.arena == checked.config.arenas[0].name
    assert len(m.chambers) == 2 and len(m.doors) == 1
    assert sum(c.px2 for c in m.chambers) == pytest.approx(m.outline.px2)
    assert check_config_file(config_path).frame_size is None


def test_check_config_file_refuses_a_config_outside_the_frame(video, tmp_path):
    path, truth, _ = video
    wide = too_wide(tmp_path, truth)
    assert check_config_file(wide).frame_size is None  # valid on its own
    with pytest.raises(ConfigError, match="outside the video frame"):
        check_config_file(wide, path)


def test_preview_config_file_draws_even_a_misfit(video, tmp_path):
    path, truth, config_path = video
    fits = preview_config_file(path, config_path, tmp_path / "p.png", samples=5)
    assert fits.misfit is None and fits.path == tmp_path / "p.png"
    assert (fits.width, fits.height) == (truth.spec.width, truth.spec.height)
    assert cv2.imread(str(fits.path)).shape[:2] == (truth.spec.height, truth.spec.width)
    misfit = preview_config_file(path, too_wide(tmp_path, truth), tmp_path / "w.png", samples=5)
    assert misfit.path.exists()
    assert misfit.misfit is not None and misfit.misfit.exit_code == 2
    assert "outside the video frame" in str(misfit.misfit)
    with pytest.raises(ConfigError):
        preview_config_file(path, tmp_path / "missing.yaml", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
