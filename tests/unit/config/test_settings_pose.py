"""The config's ``pose:`` section: parsed, validated with key paths, and absent from the
resolved config (and its hash) when left at its defaults."""

from __future__ import annotations

import copy

import pytest

from cpp_tracker.config.settings import (
    PoseSettings,
    config_hash,
    config_to_dict,
    parse_config,
    with_default_sections,
)
from cpp_tracker.errors import ConfigError

BASE = {"arenas": [{
    "name": "box1",
    "polygon": [[20, 20], [300, 20], [300, 220], [20, 220]],
    "doors": [{"name": "door1", "line": [[160, 20], [160, 220]]}],
    "chambers": [{"name": "a", "point": [90, 120]}, {"name": "b", "point": [230, 120]}],
}]}


def with_pose(pose) -> dict:
    raw = copy.deepcopy(BASE)
    raw["pose"] = pose
    return raw


def test_pose_keys_are_read_and_a_single_point_is_a_list_of_one():
    config = parse_config(with_pose({"point": "tailbase", "min_likelihood": 0.9,
                                     "individual": "m2"}))
    assert config.pose == PoseSettings(point=("tailbase",), min_likelihood=0.9,
                                       individual="m2")
    listed = parse_config(with_pose({"point": ["l_hip", "r_hip"], "individual": "by_arena"}))
    assert listed.pose.point == ("l_hip", "r_hip") and listed.pose.min_likelihood == 0.6
    assert config_to_dict(listed)["pose"] == {"point": ["l_hip", "r_hip"],
                                              "min_likelihood": 0.6, "individual": "by_arena"}


def test_every_pose_problem_is_named_by_its_key_path():
    with pytest.raises(ConfigError) as e:
        parse_config(with_pose({"point": [1, ""], "min_likelihood": 1.5, "individual": True,
                                "keypoint": "x"}))
    text = str(e.value)
    for path in ("pose.point", "pose.min_likelihood", "pose.individual", "pose.keypoint"):
        assert path in text


def test_a_config_without_pose_keeps_its_hash():
    plain = parse_config(copy.deepcopy(BASE))
    defaults = parse_config(with_pose({}))
    assert "pose" not in config_to_dict(plain)
    assert config_hash(plain) == config_hash(defaults)
    assert config_hash(parse_config(with_pose({"point": "nose"}))) != config_hash(plain)
    # resolved configs of older runs compare key by key with the defaults filled in
    assert with_default_sections(config_to_dict(plain))["pose"] == {
        "point": [], "min_likelihood": 0.6, "individual": None}
