"""``--export movement``: the regions' layout and names, and stale exports removed."""

from __future__ import annotations

import pytest

from cpp_tracker.config.settings import parse_config
from cpp_tracker.errors import ConfigError
from cpp_tracker.results.record import RunRecord
from cpp_tracker.runs.export import check_exports, regions_geojson, write_exports


def two_boxes():
    def box(name, x0):
        return {"name": name, "animal_id": f"m_{name}",
                "polygon": [[x0, 0], [x0 + 100, 0], [x0 + 100, 80], [x0, 80]],
                "doors": [{"name": "door", "line": [[x0 + 40, 0], [x0 + 40, 80]]}],
                "chambers": [{"name": "paired", "point": [x0 + 20, 40]},
                             {"name": "unpaired", "point": [x0 + 70, 40]}]}
    return parse_config({"arenas": [box("a", 0), box("b", 120)]})


def test_regions_are_the_chamber_pieces_and_door_lines_named_per_arena():
    regions = regions_geojson(two_boxes())
    assert regions["type"] == "FeatureCollection"
    named = {f["properties"]["name"]: f for f in regions["features"]}
    assert list(named) == ["a/paired", "a/unpaired", "a/door", "b/paired", "b/unpaired",
                           "b/door"]
    assert named["a/door"]["properties"]["roi_type"] == "LineOfInterest"
    assert named["b/door"]["geometry"]["coordinates"] == [[160.0, 0.0], [160.0, 80.0]]
    paired = named["b/paired"]
    assert paired["properties"]["roi_type"] == "PolygonOfInterest"
    xs = [p[0] for p in paired["geometry"]["coordinates"][0]]
    assert (min(xs), max(xs)) == (120.0, 160.0)  # the piece left of b's door


def test_stale_exports_are_removed_and_unknown_formats_refused(tmp_path):
    for name in ("track.nc", "regions.geojson"):
        (tmp_path / name).write_text("old")
    record = RunRecord(outputs=("track.parquet", "track.nc", "regions.geojson", "run.json"))
    after = write_exports(tmp_path, record, two_boxes(), ())
    assert after.outputs == ("track.parquet", "run.json")
    assert not (tmp_path / "track.nc").exists() and not (tmp_path / "regions.geojson").exists()
    with pytest.raises(ConfigError, match="--export: csv is not a format"):
        check_exports(["csv"])
    assert check_exports(["movement", "movement"]) == ("movement",)
