"""Config parsing: defaults, resolved dict, hash, and that problems name their key."""

import pytest

from cpp_tracker.config import (
    check_against_frame,
    config_hash,
    config_to_dict,
    load_config,
    parse_config,
)
from cpp_tracker.errors import ConfigError

ARENA = {
    "name": "box1",
    "polygon": [[10, 10], [310, 10], [310, 230], [10, 230]],
    "doors": [{"name": "door1", "line": [[160, 10], [160, 230]]}],
    "chambers": [{"name": "paired", "point": [80, 120]}, {"name": "unpaired", "point": [240, 120]}],
}


def test_defaults_are_filled_and_round_trip():
    config = parse_config({"arenas": [ARENA]})
    assert config.chambers.hysteresis_px > 0
    resolved = config_to_dict(config)
    again = parse_config(resolved)
    assert config_hash(again) == config_hash(config)


def test_hash_changes_with_a_door_line():
    a = parse_config({"arenas": [ARENA]})
    moved = dict(ARENA, doors=[{"name": "door1", "line": [[170, 10], [170, 230]]}])
    b = parse_config({"arenas": [moved]})
    assert config_hash(a) != config_hash(b)


def test_all_problems_reported_with_key_paths():
    bad = dict(ARENA, polgon=[[0, 0]], chambers=[{"name": "unknown", "point": [80, 120]}])
    with pytest.raises(ConfigError) as e:
        parse_config({"arenas": [bad], "detection": {"treshold": 20}})
    text = str(e.value)
    assert "arenas[0].polgon: unknown key; did you mean 'polygon'?" in text
    assert "arenas[0].chambers[0].name: 'unknown' is reserved" in text
    assert "detection.treshold: unknown key; did you mean 'threshold'?" in text
    assert len(e.value.problems) == 3


def test_door_that_misses_the_arena_is_named():
    bad = dict(ARENA, doors=[{"name": "door1", "line": [[400, 10], [400, 230]]}])
    with pytest.raises(ConfigError, match=r"arenas\[0\]\.doors\[0\]\.line: .* does not cross"):
        parse_config({"arenas": [bad]})


def test_coordinates_outside_the_frame():
    config = parse_config({"arenas": [ARENA]})
    check_against_frame(config, 320, 240)
    expected = r"arenas\[0\]\.polygon\[1\]: point \[310, 10\] lies outside"
    with pytest.raises(ConfigError, match=expected):
        check_against_frame(config, 300, 240, video="v.mp4")


def test_bad_yaml_names_the_line(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("arenas:\n  - name: box1\n    polygon: [[0, 0], [1, 1]\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: is not valid YAML \(line \d+"):
        load_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def test_time_windows_parse_and_round_trip():
    raw = {"arenas": [ARENA],
           "summary": {"bin_s": 300, "windows": {"habituation": [0, 300], "test": [300, "end"]}}}
    config = parse_config(raw)
    windows = config.summary.windows
    assert [(w.name, w.start_s, w.end_s) for w in windows] == [
        ("habituation", 0.0, 300.0), ("test", 300.0, None)]
    resolved = config_to_dict(config)
    assert resolved["summary"]["windows"] == {"habituation": [0.0, 300.0], "test": [300.0, "end"]}
    assert parse_config(resolved).summary == config.summary


def test_bad_time_windows_are_named():
    raw = {"arenas": [ARENA], "summary": {"bin_s": 0, "windows": {
        "late": [600, 300], "short": [10], "unknown": [0, 5], "text": ["a", 5]}}}
    with pytest.raises(ConfigError) as e:
        parse_config(raw)
    text = str(e.value)
    assert "summary.bin_s: must be at least 1" in text
    assert "summary.windows.late: ends (300 s) before it starts (600 s)" in text
    assert "summary.windows.short: expected [start_s, end_s]" in text
    assert "summary.windows.unknown: 'unknown' is reserved" in text
    assert "summary.windows.text[0]: expected a number, got 'a'" in text
    with pytest.raises(ConfigError, match="summary.windows: expected a mapping of named windows"):
        parse_config({"arenas": [ARENA], "summary": {"windows": [[0, 300]]}})
