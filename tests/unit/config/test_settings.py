"""Config validation: every problem is reported with its key path and the bad value."""

from __future__ import annotations

import copy

import pytest
import yaml

from cpp_tracker.config.settings import (
    DETECTION_KEYS,
    check_against_frame,
    config_hash,
    config_to_dict,
    geometry_in_pixels,
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
    # the drawing is checked too: one chamber point for the two pieces of the door
    assert "the piece of arena 'box1' around [235, 120] px has no chamber" in text
    assert len(e.value.problems) == 4


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


def test_yaml_indented_with_tabs_says_so(tmp_path):
    """A tab looks like spaces in most editors; the parser's message alone does not say."""
    p = tmp_path / "c.yaml"
    p.write_text("arenas:\n\t- name: box1\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).endswith("it contains tabs: indent with spaces, not tabs")
    from cpp_tracker.config.yaml_file import read_config_mapping

    with pytest.raises(ConfigError, match="indent with spaces, not tabs"):
        read_config_mapping(p, otherwise="draw without --config")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


def two_chambers() -> dict:
    """A valid 320x240 config: one box, one vertical door, two chambers."""
    return {
        "arenas": [
            {
                "name": "box1",
                "polygon": [[20, 20], [300, 20], [300, 220], [20, 220]],
                "doors": [{"name": "door1", "line": [[160, 20], [160, 220]]}],
                "chambers": [
                    {"name": "left", "point": [90, 120]},
                    {"name": "right", "point": [230, 120]},
                ],
            }
        ]
    }


def template_cm() -> dict:
    """A valid template: a 60 x 40 cm box drawn in cm, fitted by its corners in pixels."""
    return {
        "arenas": [
            {
                "name": "box1",
                "units": "cm",
                "corners_px": [[20, 20], [300, 20], [300, 220], [20, 220]],
                "polygon": [[0, 0], [60, 0], [60, 40], [0, 40]],
                "doors": [{"name": "door1", "line": [[30, 0], [30, 40]]}],
                "chambers": [
                    {"name": "left", "point": [15, 20]},
                    {"name": "right", "point": [45, 20]},
                ],
            }
        ]
    }


def problems_of(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, source="test.yaml")
    return info.value.problems


def edited(base, edit) -> dict:
    raw = copy.deepcopy(base())
    edit(raw)
    return raw


def arena(raw) -> dict:
    return raw["arenas"][0]


def set_(d, key, value):
    d[key] = value


# (id, config factory, edit, key path the message must name, texts the message must contain)
CASES = [
    # -- structure and types
    ("unknown top key", two_chambers, lambda r: set_(r, "arena", []), "arena",
     ["unknown key", "did you mean 'arenas'"]),
    ("arenas missing", two_chambers, lambda r: r.pop("arenas"), "arenas", ["is required"]),
    ("arenas wrong type", two_chambers, lambda r: set_(r, "arenas", {"name": "x"}), "arenas",
     ["expected a list", '{"name": "x"}']),
    ("arenas empty", two_chambers, lambda r: set_(r, "arenas", []), "arenas",
     ["at least one arena"]),
    ("arena not a mapping", two_chambers, lambda r: set_(r, "arenas", ["box1"]), "arenas[0]",
     ["expected a mapping", "'box1'"]),
    ("arena unknown key", two_chambers, lambda r: set_(arena(r), "chamber", []),
     "arenas[0].chamber", ["did you mean 'chambers'"]),
    ("name missing", two_chambers, lambda r: arena(r).pop("name"), "arenas[0].name",
     ["is required"]),
    ("name wrong type", two_chambers, lambda r: set_(arena(r), "name", [1, 2]),
     "arenas[0].name", ["non-empty name", "[1, 2]"]),
    ("name empty", two_chambers, lambda r: set_(arena(r), "name", "  "), "arenas[0].name",
     ["non-empty name"]),
    ("animal_id wrong type", two_chambers, lambda r: set_(arena(r), "animal_id", {"a": 1}),
     "arenas[0].animal_id", ["non-empty name", '{"a": 1}']),
    ("polygon missing", two_chambers, lambda r: arena(r).pop("polygon"), "arenas[0].polygon",
     ["is required"]),
    ("polygon wrong type", two_chambers, lambda r: set_(arena(r), "polygon", "square"),
     "arenas[0].polygon", ["list of points", "'square'"]),
    ("polygon two points", two_chambers,
     lambda r: set_(arena(r), "polygon", [[20, 20], [300, 20]]), "arenas[0].polygon",
     ["at least 3 points", "got 2", "[[20, 20], [300, 20]]"]),
    ("polygon bad point", two_chambers,
     lambda r: set_(arena(r), "polygon", [[20, 20], [300, "x"], [300, 220]]),
     "arenas[0].polygon[1]", ["point [x, y]", '[300, "x"]']),
    ("polygon bool coordinate", two_chambers,
     lambda r: set_(arena(r), "polygon", [[20, 20], [300, True], [300, 220]]),
     "arenas[0].polygon[1]", ["point [x, y]", "[300, true]"]),
    ("doors wrong type", two_chambers, lambda r: set_(arena(r), "doors", "door1"),
     "arenas[0].doors", ["list of doors", "'door1'"]),
    ("door not a mapping", two_chambers,
     lambda r: set_(arena(r), "doors", [[[160, 20], [160, 220]]]), "arenas[0].doors[0]",
     ["expected a door", "[[160, 20], [160, 220]]"]),
    ("door unknown key", two_chambers, lambda r: set_(arena(r)["doors"][0], "lines", 1),
     "arenas[0].doors[0].lines", ["did you mean 'line'"]),
    ("door line missing", two_chambers, lambda r: arena(r)["doors"][0].pop("line"),
     "arenas[0].doors[0].line", ["is required"]),
    ("door line three points", two_chambers,
     lambda r: set_(arena(r)["doors"][0], "line", [[160, 20], [160, 100], [160, 220]]),
     "arenas[0].doors[0].line", ["exactly 2 points", "got 3"]),
    ("door line one point", two_chambers,
     lambda r: set_(arena(r)["doors"][0], "line", [[160, 20]]),
     "arenas[0].doors[0].line", ["at least 2 points", "[[160, 20]]"]),
    ("door line same point", two_chambers,
     lambda r: set_(arena(r)["doors"][0], "line", [[160, 20], [160, 20]]),
     "arenas[0].doors[0].line", ["same point", "[[160, 20], [160, 20]]"]),
    ("door name wrong type", two_chambers,
     lambda r: set_(arena(r)["doors"][0], "name", None), "arenas[0].doors[0].name",
     ["non-empty name", "null"]),
    ("duplicate door", two_chambers,
     lambda r: arena(r)["doors"].append({"name": "door1", "line": [[100, 20], [100, 220]]}),
     "arenas[0].doors[1].name", ["duplicate door name 'door1'"]),
    ("chambers missing", two_chambers, lambda r: arena(r).pop("chambers"),
     "arenas[0].chambers", ["is required"]),
    ("chambers wrong type", two_chambers, lambda r: set_(arena(r), "chambers", 2),
     "arenas[0].chambers", ["list of chambers", "got 2"]),
    ("chambers empty", two_chambers, lambda r: set_(arena(r), "chambers", []),
     "arenas[0].chambers", ["at least one chamber"]),
    ("chamber not a mapping", two_chambers,
     lambda r: set_(arena(r), "chambers", ["left", "right"]), "arenas[0].chambers[0]",
     ["expected a chamber", "'left'"]),
    ("chamber point missing", two_chambers, lambda r: arena(r)["chambers"][1].pop("point"),
     "arenas[0].chambers[1].point", ["is required"]),
    ("chamber point wrong type", two_chambers,
     lambda r: set_(arena(r)["chambers"][1], "point", [230]), "arenas[0].chambers[1].point",
     ["point [x, y]", "[230]"]),
    ("reserved chamber name", two_chambers,
     lambda r: set_(arena(r)["chambers"][1], "name", "Unknown"), "arenas[0].chambers[1].name",
     ["'Unknown' is reserved"]),
    ("duplicate chamber", two_chambers,
     lambda r: set_(arena(r)["chambers"][1], "name", "left"), "arenas[0].chambers[1].name",
     ["duplicate chamber name 'left'"]),
    ("masks wrong type", two_chambers, lambda r: set_(arena(r), "masks", "bottle"),
     "arenas[0].masks", ["list of polygons", "'bottle'"]),
    ("masks a single polygon", two_chambers,
     lambda r: set_(arena(r), "masks", [[30, 30], [60, 30], [60, 60]]), "arenas[0].masks",
     ["single polygon", "another pair of brackets"]),
    ("mask two points", two_chambers,
     lambda r: set_(arena(r), "masks", [[[30, 30], [60, 30]]]), "arenas[0].masks[0]",
     ["at least 3 points", "got 2"]),
    ("px_per_cm negative", two_chambers, lambda r: set_(arena(r), "px_per_cm", -4),
     "arenas[0].px_per_cm", ["positive", "-4"]),
    ("px_per_cm text", two_chambers, lambda r: set_(arena(r), "px_per_cm", "5 px"),
     "arenas[0].px_per_cm", ["expected a number", "'5 px'"]),
    ("px_per_cm and scale", two_chambers,
     lambda r: arena(r).update(px_per_cm=5, scale={"points": [[0, 0], [10, 0]], "distance_cm": 2}),
     "arenas[0].scale", ["either px_per_cm or scale"]),
    ("scale not a mapping", two_chambers, lambda r: set_(arena(r), "scale", [1, 2]),
     "arenas[0].scale", ["expected a mapping", "distance_cm", "[1, 2]"]),
    ("scale distance missing", two_chambers,
     lambda r: set_(arena(r), "scale", {"points": [[20, 20], [300, 20]]}),
     "arenas[0].scale.distance_cm", ["is required"]),
    ("scale distance zero", two_chambers,
     lambda r: set_(arena(r), "scale", {"points": [[20, 20], [300, 20]], "distance_cm": 0}),
     "arenas[0].scale.distance_cm", ["positive", "got 0"]),
    ("scale three points", two_chambers,
     lambda r: set_(arena(r), "scale", {"points": [[20, 20], [300, 20], [1, 1]],
                                        "distance_cm": 50}),
     "arenas[0].scale.points", ["exactly 2 points", "got 3"]),
    ("scale same points", two_chambers,
     lambda r: set_(arena(r), "scale", {"points": [[20, 20], [20, 20]], "distance_cm": 50}),
     "arenas[0].scale.points", ["same point"]),
    ("scale unknown key", two_chambers,
     lambda r: set_(arena(r), "scale", {"points": [[20, 20], [300, 20]], "distance": 50}),
     "arenas[0].scale.distance", ["did you mean 'distance_cm'"]),
    ("duplicate arena", two_chambers,
     lambda r: r["arenas"].append(dict(copy.deepcopy(arena(r)),
                                       polygon=[[320, 20], [600, 20], [600, 220], [320, 220]])),
     "arenas[1].name", ["duplicate name 'box1'", "arenas[0]"]),
    ("duplicate animal", two_chambers,
     lambda r: (arena(r).update(animal_id="m1"), r["arenas"].append({
         "name": "box2", "animal_id": "m1",
         "polygon": [[320, 20], [600, 20], [600, 220], [320, 220]],
         "chambers": [{"name": "a", "point": [400, 100]}]})),
     "arenas[1].animal_id", ["duplicate animal_id 'm1'"]),
    # -- settings
    ("settings not a mapping", two_chambers, lambda r: set_(r, "detection", "dark"),
     "detection", ["expected a mapping", "'dark'"]),
    ("settings unknown key", two_chambers, lambda r: set_(r, "detection", {"treshold": 20}),
     "detection.treshold", ["did you mean 'threshold'"]),
    ("samples too few", two_chambers, lambda r: set_(r, "background", {"samples": 2}),
     "background.samples", ["at least 3", "got 2"]),
    ("samples text", two_chambers, lambda r: set_(r, "background", {"samples": "many"}),
     "background.samples", ["whole number", "'many'"]),
    ("animal colour", two_chambers, lambda r: set_(r, "detection", {"animal": "black"}),
     "detection.animal", ["auto, dark or light", "'black'"]),
    ("threshold too high", two_chambers, lambda r: set_(r, "detection", {"threshold": 300}),
     "detection.threshold", ["at most 254", "300"]),
    ("areas crossed", two_chambers,
     lambda r: set_(r, "detection", {"min_area_px": 500, "max_area_px": 100}),
     "detection.max_area_px", ["larger than detection.min_area_px"]),
    ("opening fraction", two_chambers, lambda r: set_(r, "detection", {"opening_px": 2.5}),
     "detection.opening_px", ["whole number", "2.5"]),
    ("hysteresis negative", two_chambers, lambda r: set_(r, "chambers", {"hysteresis_px": -1}),
     "chambers.hysteresis_px", ["at least 0", "-1"]),
    ("gap factor", two_chambers, lambda r: set_(r, "video", {"gap_factor": 1}),
     "video.gap_factor", ["at least 1.1", "got 1"]),
    ("bin_s zero", two_chambers, lambda r: set_(r, "summary", {"bin_s": 0}),
     "summary.bin_s", ["at least 1", "got 0"]),
    ("unknown reader", two_chambers, lambda r: set_(r, "video", {"reader": "ffmpeg"}),
     "video.reader", ["opencv or pyav", "'ffmpeg'"]),
    ("fast decode with opencv", two_chambers,
     lambda r: set_(r, "video", {"fast_decode": True}),
     "video.fast_decode", ["needs video.reader: pyav"]),
    ("fast decode not a flag", two_chambers,
     lambda r: set_(r, "video", {"reader": "pyav", "fast_decode": "yes"}),
     "video.fast_decode", ["true or false", "'yes'"]),
    # -- geometry
    ("polygon crosses itself", two_chambers,
     lambda r: set_(arena(r), "polygon", [[20, 20], [300, 220], [300, 20], [20, 220]]),
     "arenas[0].polygon", ["crosses itself", "near [160, 120]",
                           "[[20, 20], [300, 220], [300, 20], [20, 220]]"]),
    ("polygon no area", two_chambers,
     lambda r: set_(arena(r), "polygon", [[20, 20], [160, 20], [300, 20]]),
     "arenas[0].polygon", ["no area"]),
    ("door outside", two_chambers,
     lambda r: set_(arena(r)["doors"][0], "line", [[400, 20], [400, 220]]),
     "arenas[0].doors[0].line", ["does not cross", "[[400, 20], [400, 220]]"]),
    ("door short of the walls", two_chambers,
     lambda r: set_(arena(r)["doors"][0], "line", [[160, 60], [160, 180]]),
     "arenas[0].doors[0].line", ["does not cut", "[[160, 60], [160, 180]]"]),
    ("chamber point outside", two_chambers,
     lambda r: set_(arena(r)["chambers"][1], "point", [310, 120]),
     "arenas[0].chambers[1].point", ["outside arena 'box1'", "[310, 120]"]),
    ("chamber point on door", two_chambers,
     lambda r: set_(arena(r)["chambers"][1], "point", [160, 120]),
     "arenas[0].chambers[1].point", ["on a door line", "[160, 120]"]),
    ("two points in one piece", two_chambers,
     lambda r: set_(arena(r)["chambers"][1], "point", [100, 150]),
     "arenas[0].chambers[1].point", ["'left' and 'right'", "same piece"]),
    ("piece without chamber", two_chambers, lambda r: arena(r)["chambers"].pop(),
     "arenas[0].chambers", ["has no chamber", "around [230, 120]"]),
    ("mask crosses itself", two_chambers,
     lambda r: set_(arena(r), "masks", [[[30, 30], [60, 60], [60, 30], [30, 60]]]),
     "arenas[0].masks[0]", ["crosses itself", "[[30, 30], [60, 60], [60, 30], [30, 60]]"]),
    ("mask outside its arena", two_chambers,
     lambda r: set_(arena(r), "masks", [[[305, 30], [315, 30], [315, 60]]]),
     "arenas[0].masks[0]", ["outside arena 'box1'", "[[305, 30], [315, 30], [315, 60]]"]),
    ("mask hides a chamber", two_chambers,
     lambda r: set_(arena(r), "masks", [[[150, 10], [310, 10], [310, 230], [150, 230]]]),
     "arenas[0].masks", ["cover all of chamber 'right'"]),
    ("arenas overlap", two_chambers,
     lambda r: r["arenas"].append({
         "name": "box2", "polygon": [[250, 20], [500, 20], [500, 220], [250, 220]],
         "chambers": [{"name": "a", "point": [400, 100]}]}),
     "arenas[1].polygon", ["'box2' overlaps arena 'box1'"]),
    # -- templates
    ("units unknown", template_cm, lambda r: set_(arena(r), "units", "inch"),
     "arenas[0].units", ["px", "cm", "mm", "'inch'"]),
    ("corners missing", template_cm, lambda r: arena(r).pop("corners_px"),
     "arenas[0].corners_px", ["is required with 'units: cm'", "top-left"]),
    ("corners three", template_cm,
     lambda r: set_(arena(r), "corners_px", [[20, 20], [300, 20], [300, 220]]),
     "arenas[0].corners_px", ["at least 4 points", "got 3"]),
    ("corners five", template_cm,
     lambda r: set_(arena(r), "corners_px", [[20, 20], [300, 20], [300, 220], [20, 220], [1, 1]]),
     "arenas[0].corners_px", ["exactly 4 points", "got 5"]),
    ("corners out of order", template_cm,
     lambda r: set_(arena(r), "corners_px", [[20, 20], [300, 20], [20, 220], [300, 220]]),
     "arenas[0].corners_px", ["crosses itself", "in order around"]),
    ("corners on a line", template_cm,
     lambda r: set_(arena(r), "corners_px", [[20, 20], [160, 20], [300, 20], [20, 220]]),
     "arenas[0].corners_px", ["three of the four corners lie on one line"]),
    ("corners not convex", template_cm,
     lambda r: set_(arena(r), "corners_px", [[20, 20], [300, 20], [100, 100], [20, 220]]),
     "arenas[0].corners_px", ["convex"]),
    ("template corners bad", template_cm,
     lambda r: set_(arena(r), "template_corners", [[0, 0], [60, 0], [0, 40], [60, 40]]),
     "arenas[0].template_corners", ["crosses itself"]),
    ("corners without units", two_chambers,
     lambda r: set_(arena(r), "corners_px", [[20, 20], [300, 20], [300, 220], [20, 220]]),
     "arenas[0].corners_px", ["units: cm"]),
    ("px_per_cm with units", template_cm, lambda r: set_(arena(r), "px_per_cm", 4.0),
     "arenas[0].px_per_cm", ["follows from corners_px", "remove it"]),
    ("template point in cm wrong", template_cm,
     lambda r: set_(arena(r)["chambers"][0], "point", ["15 cm", 20]),
     "arenas[0].chambers[0].point", ["in cm", '["15 cm", 20]']),
    ("template door outside, in cm", template_cm,
     lambda r: set_(arena(r)["doors"][0], "line", [[70, 0], [70, 40]]),
     "arenas[0].doors[0].line", ["does not cross", "[[70, 0], [70, 40]] cm"]),
    ("template chamber outside, in cm", template_cm,
     lambda r: set_(arena(r)["chambers"][1], "point", [65, 20]),
     "arenas[0].chambers[1].point", ["[65, 20] cm", "outside arena"]),
    ("template beyond the horizon", template_cm,
     # the far wall (top) looks 100 px wide, the near one 280 px: cm beyond y = 62 cm lie
     # behind the camera's horizon
     lambda r: (set_(arena(r), "corners_px", [[100, 20], [200, 20], [300, 220], [20, 220]]),
                set_(arena(r), "masks", [[[0, 30], [10, 30], [5, 80]]])),
     "arenas[0].masks[0]", ["too far outside template_corners", "check corners_px"]),
    # -- the frame it was drawn on
    ("frame_size not a pair", two_chambers, lambda r: set_(r, "frame_size", 320), "frame_size",
     ["expected [width, height]", "got 320"]),
    ("frame_size three numbers", two_chambers, lambda r: set_(r, "frame_size", [320, 240, 3]),
     "frame_size", ["expected [width, height]", "[320, 240, 3]"]),
    ("frame_size width not whole", two_chambers,
     lambda r: set_(r, "frame_size", [320.5, 240]), "frame_size[0]",
     ["expected a whole number", "320.5"]),
    ("frame_size height zero", two_chambers, lambda r: set_(r, "frame_size", [320, 0]),
     "frame_size[1]", ["must be at least 1", "got 0"]),
    ("frame_size as text", two_chambers, lambda r: set_(r, "frame_size", ["320", "240"]),
     "frame_size[0]", ["expected a whole number", "'320'"]),
    ("frame_size misspelt", two_chambers, lambda r: set_(r, "framesize", [320, 240]),
     "framesize", ["unknown key", "did you mean 'frame_size'"]),
]


@pytest.mark.parametrize(
    "base, edit, path, texts", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_names_its_key_and_value(base, edit, path, texts):
    problems = problems_of(edited(base, edit))
    mine = [p for p in problems if p.startswith(f"{path}: ")]
    assert mine, f"no problem at {path}: {problems}"
    assert any(all(t in p for t in texts) for p in mine), mine


def test_the_valid_bases_are_valid():
    assert len(parse_config(two_chambers()).arenas[0].chambers) == 2
    assert len(parse_config(template_cm()).arenas[0].chambers) == 2


def test_every_problem_is_reported_at_once():
    raw = two_chambers()
    arena(raw)["chamber"] = []
    arena(raw)["doors"][0]["line"] = [[160, 20]]
    arena(raw)["chambers"][0]["name"] = "unknown"
    raw["detection"] = {"threshold": "high"}
    problems = problems_of(raw)
    assert len(problems) == 4, problems
    text = str(ConfigError("test.yaml", problems))
    assert text.startswith("test.yaml: 4 problems:")


def test_geometry_is_checked_for_every_arena_that_parsed():
    raw = two_chambers()
    raw["arenas"].insert(0, {"name": "broken", "polygon": "square", "chambers": []})
    arena2 = copy.deepcopy(raw["arenas"][1])
    arena2["name"] = "box2"
    arena2["polygon"] = [[320, 20], [600, 20], [600, 220], [320, 220]]
    raw["arenas"].append(arena2)  # a door that misses box2: geometric
    raw["video"] = {"gap_factor": "x"}  # a structural problem elsewhere
    paths = [p.split(":")[0] for p in problems_of(raw)]
    # the broken arena's own problems, box2's door (at its place in the file, [2]), and
    # the setting; box1 is fine
    assert paths == ["arenas[0].polygon", "arenas[0].chambers", "video.gap_factor",
                     "arenas[2].doors[0].line"]


def test_empty_and_non_mapping_files(tmp_path):
    assert "is empty" in problems_of(None)[0]
    assert "YAML mapping" in problems_of([1, 2])[0]
    path = tmp_path / "bad.yaml"
    path.write_text("arenas:\n  - name: box1\n   polygon: [[1, 2]\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: is not valid YAML \(line \d+, column \d+"):
        load_config(path)
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.yaml")


# ------------------------------------------------------------------- geometry that is fine
def test_three_chambers_with_a_neutral_centre():
    raw = two_chambers()
    arena(raw)["doors"] = [
        {"name": "left_door", "line": [[120, 20], [120, 220]]},
        {"name": "right_door", "line": [[200, 20], [200, 220]]},
    ]
    arena(raw)["chambers"] = [
        {"name": "paired", "point": [60, 120]},
        {"name": "neutral", "point": [160, 120]},
        {"name": "unpaired", "point": [250, 120]},
    ]
    assert parse_config(raw).arenas[0].chamber_names == ("paired", "neutral", "unpaired")


def test_a_door_may_end_on_another_door():
    raw = two_chambers()
    arena(raw)["doors"].append({"name": "half", "line": [[160, 120], [300, 120]]})
    arena(raw)["chambers"] = [
        {"name": "left", "point": [90, 120]},
        {"name": "top_right", "point": [230, 70]},
        {"name": "bottom_right", "point": [230, 170]},
    ]
    assert len(parse_config(raw).arenas[0].chambers) == 3


def test_a_door_across_a_slanted_box():
    # walls at an angle: the clipped door ends are computed in floating point
    raw = two_chambers()
    arena(raw)["polygon"] = [[10, 10], [310, 20], [300, 230], [20, 220]]
    arena(raw)["doors"][0]["line"] = [[159.7448979591837, 14.991496598639456],
                                      [159.77777777777777, 224.9920634920635]]
    assert len(parse_config(raw).arenas[0].doors) == 1


def test_a_mask_may_reach_over_the_wall():
    raw = two_chambers()
    arena(raw)["masks"] = [[[280, 100], [320, 100], [320, 140], [280, 140]]]
    assert len(parse_config(raw).arenas[0].masks) == 1


# ------------------------------------------------------------------------------ templates
def test_template_maps_to_the_same_pixels_as_the_pixel_config():
    px = parse_config(two_chambers()).arenas[0]
    cm = parse_config(template_cm()).arenas[0]
    assert cm.polygon == px.polygon
    assert cm.doors == px.doors
    assert [c.name for c in cm.chambers] == ["left", "right"]
    assert cm.chambers[0].point == pytest.approx((90, 120))
    # 280 px for 60 cm across, 200 px for 40 cm down: the mean scale over the area
    assert cm.px_per_cm == pytest.approx(((280 * 200) / (60 * 40)) ** 0.5)


def test_template_in_perspective_keeps_lines_straight_and_corners_fixed():
    raw = template_cm()
    corners = [[40, 30], [280, 20], [310, 230], [10, 210]]
    arena(raw)["corners_px"] = corners
    arena(raw)["masks"] = [[[50, 5], [55, 5], [55, 10], [50, 10]]]
    a = parse_config(raw).arenas[0]
    assert [c for p in a.polygon for c in p] == pytest.approx([c for p in corners for c in p])
    # door from the middle of the top wall to the middle of the bottom wall: its ends are on
    # the walls in pixels too (a perspective map keeps straight lines straight)
    (x1, y1), (x2, y2) = a.doors[0].line
    assert y1 == pytest.approx(30 + (20 - 30) * (x1 - 40) / (280 - 40), abs=1e-3)
    assert y2 == pytest.approx(230 + (210 - 230) * (310 - x2) / (310 - 10), abs=1e-3)
    assert a.template is not None and a.template.polygon[1] == (60.0, 0.0)
    assert 4.0 < a.px_per_cm < 5.5


def test_template_in_mm_and_explicit_template_corners():
    raw = template_cm()
    a = arena(raw)
    a["units"] = "mm"
    a["polygon"] = [[-50, -50], [650, -50], [650, 450], [-50, 450]]  # includes the walls
    a["template_corners"] = [[0, 0], [600, 0], [600, 400], [0, 400]]  # the floor corners
    a["doors"][0]["line"] = [[300, -50], [300, 450]]
    a["chambers"] = [{"name": "left", "point": [150, 200]}, {"name": "right", "point": [450, 200]}]
    arena_px = parse_config(raw).arenas[0]
    assert arena_px.polygon[0] == pytest.approx((20 - 280 / 60 * 5, 20 - 200 / 40 * 5), abs=1e-3)
    assert arena_px.px_per_cm == pytest.approx(((280 * 200) / (60 * 40)) ** 0.5)


def test_mirrored_camera_corners_are_accepted():
    raw = template_cm()
    arena(raw)["corners_px"] = [[300, 20], [20, 20], [20, 220], [300, 220]]  # seen from below
    a = parse_config(raw).arenas[0]
    assert a.chambers[0].point == pytest.approx((230, 120))


def test_resolved_template_reads_back_to_the_same_config():
    config = parse_config(template_cm())
    resolved = config_to_dict(config)
    a = resolved["arenas"][0]
    assert a["units"] == "cm"
    assert a["corners_px"] == [[20, 20], [300, 20], [300, 220], [20, 220]]
    assert a["template_corners"] == [[0, 0], [60, 0], [60, 40], [0, 40]]
    assert "px_per_cm" not in a
    assert parse_config(yaml.safe_load(yaml.safe_dump(resolved))) == config
    pixels = geometry_in_pixels(config)[0]
    assert pixels["polygon"][1] == [300, 20]
    assert pixels["px_per_cm"] == pytest.approx(((280 * 200) / (60 * 40)) ** 0.5)


def test_template_keys_change_detection():
    assert {"arenas[].corners_px", "arenas[].template_corners", "arenas[].units"} <= set(
        DETECTION_KEYS
    )


# ----------------------------------------------------------------------- against the frame
def frame_problems(raw, width=320, height=240) -> list[str]:
    config = parse_config(raw, source="test.yaml")
    with pytest.raises(ConfigError) as info:
        check_against_frame(config, width, height, video="v.mp4")
    return info.value.problems


def test_polygon_partly_outside_the_frame():
    problems = frame_problems(two_chambers(), width=280)
    assert problems[0].startswith("arenas[0].polygon[1]: point [300, 20] lies outside")
    assert "0..280 x 0..240 px of v.mp4" in problems[0]


def test_chambers_and_scale_points_outside_the_frame():
    raw = two_chambers()
    arena(raw)["polygon"] = [[20, 20], [400, 20], [400, 220], [20, 220]]
    arena(raw)["chambers"][1]["point"] = [350, 120]
    arena(raw)["scale"] = {"points": [[20, 20], [400, 20]], "distance_cm": 60}
    paths = [p.split(":")[0] for p in frame_problems(raw)]
    for path in ("arenas[0].polygon[1]", "arenas[0].chambers[1].point",
                 "arenas[0].scale.points[1]"):
        assert path in paths


def test_a_mask_may_reach_out_of_the_frame():
    raw = two_chambers()
    arena(raw)["masks"] = [[[-10, -10], [60, -10], [60, 60], [-10, 60]]]
    check_against_frame(parse_config(raw), 320, 240)


def test_template_outside_the_frame_names_cm_and_px():
    raw = template_cm()
    arena(raw)["corners_px"] = [[20, 20], [330, 20], [330, 220], [20, 220]]
    problems = frame_problems(raw)
    assert any(p.startswith("arenas[0].corners_px[1]: point [330, 20]") for p in problems)
    poly = [p for p in problems if p.startswith("arenas[0].polygon[1]")]
    assert poly and "[60, 0] cm maps to [330.0, 20.0] px" in poly[0]


def test_inside_the_frame_passes():
    check_against_frame(parse_config(two_chambers()), 320, 240)
    check_against_frame(parse_config(template_cm()), 320, 240)


# ----------------------------------------------------------------- the frame it was drawn on
def test_frame_size_is_read_kept_and_hashed():
    plain = parse_config(two_chambers())
    assert plain.frame_size is None
    assert "frame_size" not in config_to_dict(plain)  # old configs keep their hash
    drawn = parse_config(dict(two_chambers(), frame_size=[320, 240]))
    assert drawn.frame_size == (320, 240)
    resolved = config_to_dict(drawn)
    assert resolved["frame_size"] == [320, 240]
    assert parse_config(yaml.safe_load(yaml.safe_dump(resolved))) == drawn
    assert config_hash(drawn) != config_hash(plain)
    # it says nothing about what is detected: a stored track stays usable
    assert not any(k.startswith("frame_size") for k in DETECTION_KEYS)


def test_a_video_of_another_size_is_refused_in_one_sentence():
    config = parse_config(dict(two_chambers(), frame_size=[320, 240]), source="box.yaml")
    check_against_frame(config, 320, 240, video="night1.mp4")
    with pytest.raises(ConfigError) as info:
        check_against_frame(config, 640, 480, video="night1.mp4")
    assert str(info.value) == (
        "box.yaml: drawn on a 320x240 frame (frame_size), but night1.mp4 is 640x480; redraw "
        "it for this camera (cpp-tracker init / draw), or use a template in cm (units: cm) "
        "with this camera's corners_px"
    )
    # the geometry fits 640x480 too: only frame_size refuses it
    check_against_frame(parse_config(two_chambers()), 640, 480)


def test_a_template_is_fitted_to_one_frame_too():
    config = parse_config(dict(template_cm(), frame_size=[320, 240]), source="box.yaml")
    check_against_frame(config, 320, 240)
    with pytest.raises(ConfigError) as info:
        check_against_frame(config, 640, 480, video="night1.mp4")
    (problem,) = info.value.problems
    assert problem.startswith("drawn on a 320x240 frame (frame_size), but night1.mp4 is 640x480")
    assert "give this camera's corners_px and frame_size: [640, 480]" in problem


def test_with_frame_size_the_coordinates_are_still_checked():
    raw = dict(two_chambers(), frame_size=[280, 240])
    problems = frame_problems(raw, width=280)
    assert problems[0].startswith("arenas[0].polygon[1]: point [300, 20] lies outside")


def test_a_bad_scale_or_animal_does_not_hide_geometry_problems():
    raw = two_chambers()
    arena(raw)["px_per_cm"] = -4.8
    arena(raw)["animal_id"] = ["m1"]
    arena(raw)["doors"][0]["line"] = [[400, 20], [400, 220]]
    paths = [p.split(":")[0] for p in problems_of(raw)]
    assert paths == ["arenas[0].animal_id", "arenas[0].px_per_cm", "arenas[0].doors[0].line"]


def test_four_chambers_from_two_crossing_doors():
    raw = two_chambers()
    arena(raw)["doors"] = [
        {"name": "vertical", "line": [[160, 20], [160, 220]]},
        {"name": "horizontal", "line": [[20, 120], [300, 120]]},
    ]
    arena(raw)["chambers"] = [
        {"name": name, "point": point}
        for name, point in (("a", [90, 70]), ("b", [230, 70]), ("c", [90, 170]), ("d", [230, 170]))
    ]
    config = parse_config(raw)
    from cpp_tracker.geometry.chambers import build_layout

    layout = build_layout(config.arenas[0], 6)
    assert [round(p.area) for p in layout.pieces] == [140 * 100] * 4


@pytest.mark.parametrize("line", [[[20, 20], [300, 220]], [[300, 20], [20, 220]],
                                  [[20, 200], [300, 40]]])
def test_diagonal_doors_corner_to_corner_and_steep(line):
    raw = two_chambers()
    arena(raw)["doors"][0]["line"] = line
    (x1, y1), (x2, y2) = line
    # one point on each side of the line, 30 px off its middle
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    nx, ny = (y2 - y1), -(x2 - x1)
    n = (nx * nx + ny * ny) ** 0.5
    arena(raw)["chambers"] = [
        {"name": "one", "point": [mx + 30 * nx / n, my + 30 * ny / n]},
        {"name": "two", "point": [mx - 30 * nx / n, my - 30 * ny / n]},
    ]
    from cpp_tracker.geometry.chambers import build_layout

    layout = build_layout(parse_config(raw).arenas[0], 6)
    assert sum(p.area for p in layout.pieces) == pytest.approx(280 * 200)


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


def test_detection_downscale_auto_or_a_factor():
    raw = two_chambers()
    assert parse_config(raw).detection.downscale is None
    assert config_to_dict(parse_config(raw))["detection"]["downscale"] == "auto"
    for factor in (1, 2, 4):
        raw["detection"] = {"downscale": factor}
        assert parse_config(raw).detection.downscale == factor
    for bad in (3, "half", True, 0.5):
        raw["detection"] = {"downscale": bad}
        with pytest.raises(ConfigError) as e:
            parse_config(raw)
        assert f"detection.downscale: expected auto, 1, 2 or 4, got {bad!r}" in str(e.value)


def test_a_reserved_chamber_name_does_not_hide_the_drawing_problems():
    """Every problem at once: the name 'unknown' and a door that misses the arena."""
    raw = {"arenas": [{
        "name": "box1",
        "polygon": [[10, 10], [300, 10], [300, 230], [10, 230]],
        "doors": [{"name": "door1", "line": [[400, 10], [400, 230]]}],
        "chambers": [{"name": "unknown", "point": [80, 120]},
                     {"name": "right", "point": [240, 120]}],
    }]}
    with pytest.raises(ConfigError) as e:
        parse_config(raw, source="c.yaml")
    assert [p.split(":")[0] for p in e.value.problems] == [
        "arenas[0].chambers[0].name", "arenas[0].doors[0].line"]
    assert "does not cross arena 'box1'" in e.value.problems[1]


# -- chambers.rule ----------------------------------------------------------------------
def _with_rule(**chambers) -> dict:
    return {"arenas": [copy.deepcopy(ARENA)], "chambers": chambers}


@pytest.mark.parametrize("chambers, path, texts", [
    ({"rule": "whole_body"}, "chambers.rule", ["expected point or body_fraction",
                                                "'whole_body'"]),
    ({"rule": "body_fraction", "enter_fraction": 1.2}, "chambers.enter_fraction",
     ["must be at most 1", "1.2"]),
    ({"rule": "body_fraction", "exit_fraction": 0}, "chambers.exit_fraction",
     ["must be above 0", "got 0"]),
    ({"rule": "body_fraction", "enter_fraction": "most"}, "chambers.enter_fraction",
     ["expected a number", "'most'"]),
    ({"rule": "body_fraction", "enter_fraction": 0.4, "exit_fraction": 0.2},
     "chambers.enter_fraction", ["must be at least 0.5", "0.4"]),
    ({"rule": "body_fraction", "enter_fraction": 0.6, "exit_fraction": 0.8},
     "chambers.exit_fraction", ["must not exceed chambers.enter_fraction (0.6)", "0.8"]),
    ({"enter_fraction": 0.7}, "chambers.enter_fraction",
     ["only with chambers.rule: body_fraction"]),
])
def test_entry_rule_problems_name_the_key(chambers, path, texts):
    problems = problems_of(_with_rule(**chambers))
    mine = [p for p in problems if p.startswith(f"{path}: ")]
    assert mine and all(t in mine[0] for t in texts), problems


def test_entry_rule_defaults_and_hash():
    point = parse_config(_with_rule())
    assert (point.chambers.rule, point.chambers.enter_fraction,
            point.chambers.exit_fraction) == ("point", 0.7, 0.3)
    # the point rule leaves the resolved config (and its hash) as before the rule existed
    assert "rule" not in config_to_dict(point)["chambers"]
    assert config_hash(parse_config(_with_rule(rule="point"))) == config_hash(point)
    body = parse_config(_with_rule(rule="body_fraction", enter_fraction=0.8,
                                   exit_fraction=0.2))
    resolved = config_to_dict(body)["chambers"]
    assert resolved["rule"] == "body_fraction" and resolved["enter_fraction"] == 0.8
    assert config_hash(parse_config(config_to_dict(body))) == config_hash(body)
    assert config_hash(body) != config_hash(point)
    assert not any(k.startswith("chambers") for k in DETECTION_KEYS)  # reprocess can switch
def test_reader_options_change_the_hash_only_when_set():
    plain = parse_config({"arenas": [ARENA]})
    same = parse_config({"arenas": [ARENA], "video": {"reader": "opencv"}})
    fast = parse_config({"arenas": [ARENA], "video": {"reader": "pyav", "fast_decode": True}})
    # results of a config from before these keys stay up to date
    assert config_hash(same) == config_hash(plain)
    assert "reader" not in config_to_dict(plain)["video"]
    assert config_hash(fast) != config_hash(plain)
    assert config_to_dict(fast)["video"]["reader"] == "pyav"
    assert parse_config(config_to_dict(fast)).video.fast_decode is True
