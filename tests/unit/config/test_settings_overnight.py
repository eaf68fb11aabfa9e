"""Config keys added for overnight recordings: background switches and the qc section."""

import pytest

from cpp_tracker.config.settings import config_to_dict, parse_config
from cpp_tracker.errors import ConfigError

ARENA = {
    "name": "box1",
    "polygon": [[10, 10], [310, 10], [310, 230], [10, 230]],
    "doors": [{"name": "door1", "line": [[160, 10], [160, 230]]}],
    "chambers": [{"name": "paired", "point": [80, 120]}, {"name": "unpaired", "point": [240, 120]}],
}


def test_defaults_follow_lighting_remove_resting_mouse_and_state_qc_thresholds():
    config = parse_config({"arenas": [ARENA]})
    assert config.background.follow_lighting is True
    assert config.background.remove_resting_mouse is True
    assert config.qc.max_speed_cm_s == 100.0
    assert config.qc.max_undetected == 0.05
    resolved = config_to_dict(config)
    assert resolved["qc"]["max_jumps_per_min"] == 0.5
    assert resolved["background"]["follow_lighting"] is True
    assert parse_config(resolved) == config


def test_settings_can_be_changed():
    config = parse_config({
        "arenas": [ARENA],
        "background": {"follow_lighting": False, "remove_resting_mouse": False},
        "qc": {"max_speed_cm_s": 150, "max_undetected": 0.1},
    })
    assert config.background.follow_lighting is False
    assert config.qc.max_speed_cm_s == 150.0 and config.qc.max_undetected == 0.1


def test_bad_values_are_named_with_their_keys():
    with pytest.raises(ConfigError) as e:
        parse_config({
            "arenas": [ARENA],
            "background": {"follow_lighting": "yes"},
            "qc": {"max_undetected": 5, "max_speed": 100, "max_speed_cm_s": 0},
        })
    text = str(e.value)
    assert "background.follow_lighting: expected true or false, got 'yes'" in text
    assert "qc.max_undetected: must be at most 1, got 5" in text
    assert "qc.max_speed: unknown key; did you mean 'max_speed_cm_s'?" in text
    assert "qc.max_speed_cm_s: must be positive" in text
