"""`cpp-tracker check-config` and `cpp-tracker preview`, as a user runs them."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import yaml

from cpp_tracker.cli import main
from tests.conftest import REAL_VIDEOS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OPENFIELD = REAL_VIDEOS / "openfield_black_mouse.mp4"


@pytest.fixture(scope="module")
def small(video_factory):
    """A short one-box video (320x240) and its true config."""
    return video_factory("config_cli", duration_s=6.0, seed=5)


def write(tmp_path, config: dict, name="c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---------------------------------------------------------------------------- check-config
def test_check_config_describes_arenas_chambers_doors_and_areas(small, capsys):
    video, truth, config = small
    assert main(["check-config", str(config), "--video", str(video)]) == 0
    out = capsys.readouterr().out
    assert f"valid for {video} (320x240 px)" in out
    assert "arena box1: 2 chamber(s), 1 door(s), 0 mask(s)" in out
    ppc = truth.config["arenas"][0]["px_per_cm"]
    assert f"{ppc:.3g} px/cm" in out
    for name in ("paired", "unpaired"):
        line = next(x for x in out.splitlines() if x.strip().startswith(f"chamber {name}"))
        assert "px²" in line and "cm²" in line and "% of the arena" in line
    assert "door door1" in out and " cm long" in out


def test_check_config_without_scale_says_so(tmp_path, capsys):
    config = write(tmp_path, {"arenas": [{
        "name": "b", "polygon": [[0, 0], [100, 0], [100, 50], [0, 50]],
        "chambers": [{"name": "all", "point": [50, 25]}]}]})
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "no scale: distances in px only" in out
    assert "cm²" not in out


def test_check_config_says_the_entry_rule(tmp_path, capsys):
    arena = {"name": "b", "polygon": [[0, 0], [100, 0], [100, 50], [0, 50]],
             "doors": [{"name": "d", "line": [[50, 0], [50, 50]]}],
             "chambers": [{"name": "l", "point": [25, 25]}, {"name": "r", "point": [75, 25]}]}
    assert main(["check-config", str(write(tmp_path, {"arenas": [arena]}))]) == 0
    assert "chambers change 6 px past a door line" in capsys.readouterr().out
    body = write(tmp_path, {"arenas": [arena], "chambers": {
        "rule": "body_fraction", "enter_fraction": 0.8, "exit_fraction": 0.25}})
    assert main(["check-config", str(body)]) == 0
    out = capsys.readouterr().out
    assert "chambers by body fraction: entered with 80 % of the mouse inside, left below " \
           "25 % (chambers.rule)" in out
    assert "px past a door line" not in out


def test_check_config_lists_every_problem_and_exits_2(tmp_path, capsys):
    config = write(tmp_path, {
        "arenas": [{
            "name": "box1",
            "polgon": [[0, 0], [100, 0], [100, 100]],
            "doors": [{"name": "d", "line": [[50, 0]]}],
            "chambers": [{"name": "unknown", "point": [20, 20]}],
        }],
        "detection": {"threshold": "high"},
    })
    assert main(["check-config", str(config)]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith(f"error: {config}: 5 problems:")
    for text in ("arenas[0].polgon: unknown key; did you mean 'polygon'?",
                 "arenas[0].polygon: is required",
                 "arenas[0].doors[0].line: needs at least 2 points",
                 "arenas[0].chambers[0].name: 'unknown' is reserved",
                 "detection.threshold: expected a number or 'auto', got 'high'"):
        assert text in err
    assert "Traceback" not in err and captured.out == ""


def test_check_config_against_a_smaller_frame_exits_2(small, tmp_path, capsys):
    video, truth, _ = small
    config = dict(truth.config)
    arena = dict(config["arenas"][0])
    arena["polygon"] = [[p[0] + 40, p[1]] for p in arena["polygon"]]
    arena["doors"] = [{"name": "door1", "line": [[p[0] + 40, p[1]] for p in
                                                 arena["doors"][0]["line"]]}]
    arena["chambers"] = [{"name": c["name"], "point": [c["point"][0] + 40, c["point"][1]]}
                         for c in arena["chambers"]]
    config["arenas"] = [arena]
    path = write(tmp_path, config)
    assert main(["check-config", str(path)]) == 0  # fine on its own
    capsys.readouterr()
    assert main(["check-config", str(path), "--video", str(video)]) == 2
    err = capsys.readouterr().err
    assert "arenas[0].polygon[1]: point [" in err
    assert f"lies outside the video frame (0..320 x 0..240 px of {video})" in err
    assert "Traceback" not in err


def test_check_config_with_a_missing_video_exits_1(small, tmp_path, capsys):
    _, _, config = small
    assert main(["check-config", str(config), "--video", str(tmp_path / "nope.mp4")]) == 1
    assert "nope.mp4: file not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------- preview
def test_preview_has_the_size_of_the_video(small, tmp_path, capsys):
    video, _, config = small
    out = tmp_path / "pictures" / "preview.png"
    assert main(["preview", str(video), "--config", str(config), "--out", str(out)]) == 0
    image = cv2.imread(str(out))
    assert image.shape == (240, 320, 3)
    assert "preview of" in capsys.readouterr().out
    # drawn on the background: the door line is white where the config puts it
    (x1, y1), (x2, y2) = yaml.safe_load(config.read_text())["arenas"][0]["doors"][0]["line"]
    xm, ym = round((x1 + x2) / 2), round((y1 + y2) / 2)
    assert image[ym + 20, xm].min() > 200


def test_preview_of_a_config_that_misses_the_frame_is_written_and_exits_2(
    small, tmp_path, capsys
):
    video, truth, _ = small
    config = dict(truth.config)
    arena = dict(config["arenas"][0])
    arena["polygon"] = [[p[0] * 1.2, p[1]] for p in arena["polygon"]]
    config["arenas"] = [arena]
    out = tmp_path / "preview.png"
    assert main(["preview", str(video), "--config", str(write(tmp_path, config)),
                 "--out", str(out)]) == 2
    assert cv2.imread(str(out)).shape == (240, 320, 3)
    err = capsys.readouterr().err
    assert "lies outside the video frame" in err and "Traceback" not in err


def test_preview_with_a_bad_config_writes_nothing(small, tmp_path, capsys):
    video, _, _ = small
    bad = tmp_path / "bad.yaml"
    bad.write_text("arenas:\n- name: box1\n  polygon: [[0, 0], [10, 0]]\n  chambers: []\n")
    out = tmp_path / "preview.png"
    assert main(["preview", str(video), "--config", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "arenas[0].polygon: needs at least 3 points" in err and "Traceback" not in err
    assert not out.exists()


def test_preview_out_must_be_a_png(small, tmp_path, capsys):
    video, _, config = small
    code = main(["preview", str(video), "--config", str(config), "--out", str(tmp_path / "p.jpg")])
    assert code == 2
    assert "should be a .png file" in capsys.readouterr().err


# ------------------------------------------------------------------------ example configs
# criteria_example.yaml holds an experiment's per-animal rules, not a box: not a config
@pytest.mark.parametrize("path", sorted(p for p in CONFIGS.glob("*.yaml")
                                        if not p.stem.startswith("criteria")),
                         ids=lambda p: p.name)
def test_every_example_config_passes_check_config(path, capsys):
    assert main(["check-config", str(path)]) == 0
    text = path.read_text()
    assert text.lstrip().startswith("#"), "examples start with a comment saying what they are"
    assert "640x480" in text, "examples say which frame size their coordinates fit"
    out = capsys.readouterr().out
    assert "arena " in out and "chamber " in out


def test_the_examples_cover_the_documented_layouts():
    names = {p.stem for p in CONFIGS.glob("*.yaml")}
    assert {"two_chambers", "three_chambers", "four_boxes", "template_cm"} <= names


@pytest.mark.skipif(not OPENFIELD.exists(), reason="../shared/real_videos is not available")
def test_real_open_field_config_fits_its_video_and_previews(tmp_path, capsys):
    config = CONFIGS / "openfield_black_mouse.yaml"
    assert main(["check-config", str(config), "--video", str(OPENFIELD)]) == 0
    out = tmp_path / "openfield.png"
    assert main(["preview", str(OPENFIELD), "--config", str(config), "--out", str(out),
                 "--samples", "5"]) == 0
    assert cv2.imread(str(out)).shape == (480, 640, 3)
