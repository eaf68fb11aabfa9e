"""A config without a ``trial`` section compares as the default one (no spurious keys)."""

from __future__ import annotations

from cpp_tracker.config.settings import config_to_dict, parse_config
from cpp_tracker.runs.reprocess import config_changes

ARENA = {"name": "box1", "polygon": [[0, 0], [100, 0], [100, 50], [0, 50]],
         "chambers": [{"name": "open", "point": [50, 25]}]}


def _resolved(**top) -> dict:
    return config_to_dict(parse_config({"arenas": [ARENA], **top}))


def test_a_config_without_trial_compares_as_the_default():
    plain, auto = _resolved(), _resolved(trial={"start": "auto"})
    assert config_changes(plain, auto) == (["trial.start"], [])
    assert config_changes(auto, plain) == (["trial.start"], [])
    assert config_changes(plain, _resolved(trial={"start": 0})) == ([], [])
