"""``trial: {start: auto | seconds}``: parsed, validated with the key path, hashed only when
set."""

from __future__ import annotations

import pytest

from cpp_tracker.config.settings import (
    DETECTION_KEYS,
    TrialSettings,
    config_hash,
    config_to_dict,
    parse_config,
)
from cpp_tracker.errors import ConfigError

ARENA = {"name": "box1", "polygon": [[0, 0], [100, 0], [100, 50], [0, 50]],
         "doors": [{"name": "d", "line": [[50, 0], [50, 50]]}],
         "chambers": [{"name": "left", "point": [25, 25]}, {"name": "right", "point": [75, 25]}]}


def _config(**top):
    return parse_config({"arenas": [ARENA], **top})


def test_default_is_the_start_of_the_video_and_leaves_the_hash_alone():
    plain = _config()
    assert plain.trial == TrialSettings() and plain.trial.start == 0.0
    assert "trial" not in config_to_dict(plain)
    assert config_hash(_config(trial={"start": 0})) == config_hash(plain)


@pytest.mark.parametrize("value, expected", [("auto", "auto"), ("AUTO", "auto"),
                                             (12.5, 12.5), ("12.5", 12.5), (0, 0.0)])
def test_auto_or_seconds(value, expected):
    trial = _config(trial={"start": value}).trial
    assert trial.start == expected
    assert trial.auto == (expected == "auto")


def test_a_start_changes_the_hash_and_needs_a_new_track():
    assert config_hash(_config(trial={"start": "auto"})) != config_hash(_config())
    assert config_to_dict(_config(trial={"start": "auto"}))["trial"]["start"] == "auto"
    assert "trial" in DETECTION_KEYS


@pytest.mark.parametrize("value", ["soon", -3, True, [1], None, float("nan")])
def test_bad_values_are_one_sentence_naming_trial_start(value):
    with pytest.raises(ConfigError) as err:
        _config(trial={"start": value})
    text = str(err.value)
    assert "trial.start: expected 'auto' or a number of seconds" in text
    assert "\n" not in text.strip()


def test_search_and_settle_are_checked_and_unknown_keys_named():
    with pytest.raises(ConfigError, match=r"trial\.search_s"):
        _config(trial={"start": "auto", "search_s": 0})
    with pytest.raises(ConfigError, match=r"trial\.settle_s"):
        _config(trial={"start": "auto", "settle_s": -1})
    with pytest.raises(ConfigError, match=r"trial\.begin"):
        _config(trial={"begin": "auto"})

