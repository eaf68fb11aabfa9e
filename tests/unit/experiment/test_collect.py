"""Collecting result folders into one table (long and wide)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cpp_tracker.errors import OutputError
from cpp_tracker.experiment.collect import collect_results, results_wide
from tests.handmade_results import THREE_CHAMBERS, write_result


def test_wide_table_has_a_column_per_chamber_and_the_metadata(tmp_path):
    write_result(
        tmp_path / "a",
        [("left", 30), ("right", 10), (None, 5)],
        metadata={"animal_id": "m1", "session": "s1", "phase": "pre", "room": "B2"},
    )
    write_result(
        tmp_path / "b",
        [("left", 10), ("centre", 5), ("right", 25)],
        config=THREE_CHAMBERS,
        metadata={"animal_id": "m2", "phase": "post"},
    )
    long, metadata_columns, warnings = collect_results([tmp_path])
    assert metadata_columns == ["session", "phase", "room"]
    assert warnings == []
    assert len(long) == 3 + 4
    wide = results_wide(long, metadata_columns).set_index("animal_id")
    assert wide.columns[:6].tolist() == ["session", "phase", "room", "result", "video", "arena"]
    assert wide.loc["m1", "left_time_s"] == pytest.approx(30.0)
    assert wide.loc["m1", "left_percent"] == pytest.approx(75.0)
    assert wide.loc["m1", "unknown_time_s"] == pytest.approx(5.0)
    assert pd.isna(wide.loc["m1", "centre_time_s"])  # m1's box has no centre
    assert wide.loc["m2", "centre_time_s"] == pytest.approx(5.0)
    assert wide.loc["m2", "right_entries"] == 1
    assert "unknown_entries" not in wide.columns  # empty throughout
    assert wide.loc["m1", "room"] == "B2" and pd.isna(wide.loc["m2", "room"])
    assert wide.loc["m1", "observed_s"] == pytest.approx(40.0)
    assert wide.loc["m1", "share_without_detection"] == pytest.approx(5 / 45, abs=1e-6)
    assert len(wide.loc["m1", "config_hash"]) == 16
    # chambers grouped by measure, in the order first seen, unknown last
    time_columns = [c for c in wide.columns if c.endswith("_time_s")]
    assert time_columns == ["left_time_s", "right_time_s", "centre_time_s", "unknown_time_s"]


def test_extra_summary_columns_are_carried_generically(tmp_path):
    folder = write_result(
        tmp_path / "a", [("left", 30), ("right", 10)], metadata={"animal_id": "m1"}
    )
    summary = pd.read_csv(folder / "summary.csv")
    summary["qc_score"] = 0.93  # one value per arena: a session column
    summary["speed_cm_s"] = [1.5, 2.5, float("nan")]  # varies by chamber
    summary.to_csv(folder / "summary.csv", index=False)
    long, metadata_columns, _ = collect_results([tmp_path])
    assert {"qc_score", "speed_cm_s"} <= set(long.columns)
    wide = results_wide(long, metadata_columns)
    assert wide.loc[0, "qc_score"] == pytest.approx(0.93)
    assert wide.loc[0, "left_speed_cm_s"] == pytest.approx(1.5)
    assert wide.loc[0, "right_speed_cm_s"] == pytest.approx(2.5)
    assert "speed_cm_s" not in wide.columns


def test_animal_id_from_manifest_then_config_and_per_arena(tmp_path):
    # one arena, config animal id, manifest animal id: the manifest describes the video
    config = json.loads(json.dumps(THREE_CHAMBERS))
    config["arenas"][0]["animal_id"] = "cfg1"
    write_result(tmp_path / "one", [("left", 10)], config=config, metadata={"animal_id": "man1"})
    write_result(tmp_path / "cfg", [("left", 10)], config=config)
    # two arenas in one video (summary written directly): config ids per arena, else
    # the manifest's id with the arena name
    two = write_result(tmp_path / "two", [("left", 10)], metadata={"animal_id": "pair"})
    summary = pd.read_csv(two / "summary.csv")
    other = summary.copy()
    other["arena"] = "box2"
    pd.concat([summary, other]).to_csv(two / "summary.csv", index=False)
    long, _, _ = collect_results([tmp_path])
    ids = long.drop_duplicates(["result", "arena"]).set_index(["result", "arena"])["animal_id"]
    assert ids[(str(tmp_path / "one"), "box")] == "man1"
    assert ids[(str(tmp_path / "cfg"), "box")] == "cfg1"
    assert ids[(str(tmp_path / "two"), "box")] == "pair/box"
    assert ids[(str(tmp_path / "two"), "box2")] == "pair/box2"


def test_same_animal_and_session_twice_is_warned(tmp_path):
    for name in ("a", "b"):
        write_result(tmp_path / name, [("left", 10)], metadata={"animal_id": "m1", "phase": "pre"})
    _, _, warnings = collect_results([tmp_path])
    assert len(warnings) == 1
    assert "animal_id m1, phase pre appears in 2 result folders" in warnings[0]


def test_unreadable_summary_is_reported(tmp_path):
    folder = write_result(tmp_path / "a", [("left", 10)])
    (folder / "summary.csv").write_text("something,else\n1,2\n")
    with pytest.raises(OutputError, match="summary.csv: lacks the column.s. arena, chamber"):
        collect_results([tmp_path])
