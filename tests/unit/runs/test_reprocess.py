"""Reprocessing stored tracks: which config changes allow it, and what it writes."""

from __future__ import annotations

import copy
import json

import pandas as pd
import pytest

from cpp_tracker.config.settings import config_to_dict, parse_config
from cpp_tracker.errors import ConfigError, OutputError, VideoError
from cpp_tracker.results.stored import find_result_dirs
from cpp_tracker.runs.reprocess import config_changes, reprocess_result
from cpp_tracker.visual.report import write_report
from tests.handmade_results import TWO_CHAMBERS, config_with, write_result
from tests.unit.visual.test_report import report_percents, summary_percents

# (110, 50) is in the right chamber with the door at x = 100, in the left one at x = 120
SEGMENTS = [
    (None, 1.0),
    ("left", 4.0),
    ("right", 3.0),
    (None, 0.5),
    ((110.0, 50.0), 1.5),
    ("right", 1.0),
    ("left", 2.0),
]


def resolved(raw: dict) -> dict:
    return config_to_dict(parse_config(copy.deepcopy(raw)))


def moved_door(x: float = 120.0) -> dict:
    raw = copy.deepcopy(TWO_CHAMBERS)
    raw["arenas"][0]["doors"][0]["line"] = [[x, 0], [x, 100]]
    return raw


# ------------------------------------------------------------------------ config_changes
def test_identical_configs_have_no_changes():
    assert config_changes(resolved(TWO_CHAMBERS), resolved(TWO_CHAMBERS)) == ([], [])


def test_geometry_and_summary_changes_do_not_need_a_new_track():
    new = moved_door()
    new["chambers"] = {"hysteresis_px": 9}
    new["summary"] = {"bin_s": 60, "windows": {"test": [0, 300]}}
    new["arenas"][0]["px_per_cm"] = 3.0
    new["arenas"][0]["animal_id"] = "m01"
    detection, other = config_changes(resolved(TWO_CHAMBERS), resolved(new))
    assert detection == []
    assert set(other) == {
        "arenas[0].doors[0].line",
        "chambers.hysteresis_px",
        "summary.bin_s",
        "summary.windows.test",
        "arenas[0].px_per_cm",
        "arenas[0].animal_id",
    }


def test_detection_keys_are_named():
    new = copy.deepcopy(TWO_CHAMBERS)
    new["detection"] = {"threshold": 30}
    new["background"] = {"samples": 20}
    new["arenas"][0]["polygon"] = [[0, 0], [200, 0], [200, 99], [0, 99]]
    new["arenas"][0]["masks"] = [[[10, 10], [20, 10], [20, 20]]]
    new["chambers"] = {"hysteresis_px": 9}
    detection, other = config_changes(resolved(TWO_CHAMBERS), resolved(new))
    assert detection == [
        "arenas[0].polygon",
        "arenas[0].masks",
        "background.samples",
        "detection.threshold",
    ]
    assert other == ["chambers.hysteresis_px"]


def test_frame_size_added_or_changed_needs_no_new_track():
    drawn = copy.deepcopy(TWO_CHAMBERS)
    drawn["frame_size"] = [320, 240]
    assert config_changes(resolved(TWO_CHAMBERS), resolved(drawn)) == ([], ["frame_size"])
    other = copy.deepcopy(drawn)
    other["frame_size"] = [640, 480]
    assert config_changes(resolved(drawn), resolved(other)) == ([], ["frame_size"])


def test_arena_renamed_or_added_needs_a_new_track():
    renamed = copy.deepcopy(TWO_CHAMBERS)
    renamed["arenas"][0]["name"] = "box2"
    assert config_changes(resolved(TWO_CHAMBERS), resolved(renamed))[0] == ["arenas[0].name"]
    added = copy.deepcopy(TWO_CHAMBERS)
    second = copy.deepcopy(added["arenas"][0])
    second["name"] = "other"
    second["polygon"] = [[300, 0], [400, 0], [400, 100], [300, 100]]
    second["doors"] = [{"name": "door", "line": [[350, 0], [350, 100]]}]
    second["chambers"] = [
        {"name": "left", "point": [320, 50]},
        {"name": "right", "point": [380, 50]},
    ]
    added["arenas"].append(second)
    assert config_changes(resolved(TWO_CHAMBERS), resolved(added)) == (["arenas[1]"], [])


def test_template_in_cm_door_moves_but_corners_need_a_new_track():
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[3] / "configs" / "template_cm.yaml"
    raw = yaml.safe_load(path.read_text())
    door = copy.deepcopy(raw)
    door["arenas"][0]["doors"][0]["line"] = [[25, 0], [25, 40]]  # 1 cm further
    assert config_changes(resolved(raw), resolved(door)) == ([], ["arenas[0].doors[0].line"])
    tilted = copy.deepcopy(raw)
    tilted["arenas"][0]["corners_px"][0] = [72, 50]
    # the key that changed, and what it moved in pixels (what detection uses)
    assert config_changes(resolved(raw), resolved(tilted))[0] == [
        "arenas[0].corners_px",
        "arenas[0].polygon",
        "arenas[0].masks",
    ]


def test_config_changes_does_not_modify_its_input():
    old, new = resolved(TWO_CHAMBERS), resolved(moved_door())
    before = copy.deepcopy((old, new))
    config_changes(old, new)
    assert (old, new) == before


# ----------------------------------------------------------------------- reprocess_result
def test_moved_door_equals_results_made_with_that_config(tmp_path):
    old = write_result(tmp_path / "a" / "v", SEGMENTS, video="/videos/v.mp4")
    fresh = write_result(tmp_path / "b" / "v", SEGMENTS, config=moved_door(), video="/videos/v.mp4")
    before = pd.read_parquet(old / "track.parquet")
    assert (before.loc[before["x"] == 110, "chamber"] == "right").all()
    assert (old / "summary.csv").read_bytes() != (fresh / "summary.csv").read_bytes()
    r = reprocess_result(old, parse_config(moved_door(), source="new.yaml"), plots=False)
    assert r.status == "reprocessed"
    assert r.changed_keys == ["arenas[0].doors[0].line"]
    for name in ("summary.csv", "occupancy.csv"):
        assert (old / name).read_bytes() == (fresh / name).read_bytes(), name
    pd.testing.assert_frame_equal(
        pd.read_parquet(old / "track.parquet"), pd.read_parquet(fresh / "track.parquet")
    )
    # the door moved into the right chamber: the frames at x = 110 became 'left'
    after = pd.read_parquet(old / "track.parquet")
    assert (after.loc[after["x"] == 110, "chamber"] == "left").all()


def test_detection_change_is_refused_and_nothing_is_written(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    new = config_with(TWO_CHAMBERS, detection={"threshold": 25, "opening_px": 3})
    with pytest.raises(ConfigError) as e:
        reprocess_result(folder, parse_config(new, source="new.yaml"), plots=False)
    message = str(e.value)
    assert "detection.threshold" in message and "detection.opening_px" in message
    assert "new.yaml" in message and "cpp-tracker track" in message and "--retrack" in message
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_keys_added_by_a_newer_version_are_named_as_such(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    run = json.loads((folder / "run.json").read_text())
    del run["config"]["resolved"]["detection"]["blur_px"]  # as if made before it existed
    (folder / "run.json").write_text(json.dumps(run))
    with pytest.raises(
        ConfigError,
        match=r"changes detection.blur_px .*\(detection.blur_px did "
        r"not exist in the version that made these results\)",
    ):
        reprocess_result(folder, parse_config(moved_door()), plots=False)


def test_retrack_needs_the_video(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS, video=str(tmp_path / "gone.mp4"))
    new = config_with(TWO_CHAMBERS, detection={"threshold": 25})
    with pytest.raises(VideoError, match="gone.mp4.*not found"):
        reprocess_result(folder, parse_config(new), retrack=True, plots=False)


def test_retrack_of_a_chunked_session_needs_every_chunk(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    first = tmp_path / "night_01.mp4"
    first.write_bytes(b"")
    run = json.loads((folder / "run.json").read_text())
    run["videos"] = [{"path": str(first)}, {"path": str(tmp_path / "night_02.mp4")}]
    (folder / "run.json").write_text(json.dumps(run))
    new = config_with(TWO_CHAMBERS, detection={"threshold": 25})
    with pytest.raises(VideoError, match="the video .*night_02.mp4 is needed to track again"):
        reprocess_result(folder, parse_config(new), retrack=True, plots=False)


def test_unchanged_config_does_nothing_unless_forced(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    config = parse_config(copy.deepcopy(TWO_CHAMBERS))
    assert reprocess_result(folder, config, plots=False).status == "unchanged"
    r = reprocess_result(folder, config, force=True, plots=False)
    assert r.status == "reprocessed" and r.changed_keys == []


def test_history_and_keep_previous(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    first = json.loads((folder / "run.json").read_text())
    old_summary = (folder / "summary.csv").read_bytes()
    new = parse_config(moved_door(), source="moved.yaml")
    r = reprocess_result(folder, new, keep_previous=True, plots=False)
    kept = folder / "previous" / first["config"]["hash"]
    assert r.previous_dir == kept
    assert (kept / "summary.csv").read_bytes() == old_summary
    assert json.loads((kept / "run.json").read_text())["config"]["hash"] == first["config"]["hash"]
    assert (folder / "summary.csv").read_bytes() != old_summary
    run = json.loads((folder / "run.json").read_text())
    assert run["command"] == "reprocess"
    assert run["config"]["source"] == "moved.yaml"
    assert [h["config_hash"] for h in run["history"]] == [
        first["config"]["hash"],
        run["config"]["hash"],
    ]
    assert [h["command"] for h in run["history"]] == ["track", "reprocess"]
    # the track is still the one made by the first run
    assert run["track"] == first["track"] == run["history"][-1]["track"]
    assert run["history"][0]["config"] == first["config"]["resolved"]
    # back to the first config, and forward again: the kept folder is not overwritten
    reprocess_result(
        folder, parse_config(copy.deepcopy(TWO_CHAMBERS)), keep_previous=True, plots=False
    )
    reprocess_result(folder, new, keep_previous=True, plots=False)
    assert sorted(p.name for p in (folder / "previous").iterdir()) == sorted(
        [first["config"]["hash"], run["config"]["hash"], first["config"]["hash"] + "-2"]
    )
    assert len(json.loads((folder / "run.json").read_text())["history"]) == 4
    # previous results are not taken for results, and are not reprocessed
    assert find_result_dirs([tmp_path]) == [folder]
    assert find_result_dirs(tmp_path) == [folder]  # one folder, as plot and review give it
    with pytest.raises(OutputError, match="is an earlier result kept by --keep-previous"):
        reprocess_result(kept, new, force=True, plots=False)


def test_run_key_follows_the_new_config(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    run = json.loads((folder / "run.json").read_text())
    run["run_key"] = {"config_hash": run["config"]["hash"], "videos": [], "stride": 1}
    (folder / "run.json").write_text(json.dumps(run))
    r = reprocess_result(folder, parse_config(moved_door()), plots=False)
    key = json.loads((folder / "run.json").read_text())["run_key"]
    assert key == {"config_hash": r.config_hash, "videos": [], "stride": 1}


def test_qc_figure_is_redrawn_or_a_stale_one_removed(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    (folder / "qc.png").write_bytes(b"old picture")
    run = json.loads((folder / "run.json").read_text())
    run["outputs"].insert(-1, "qc.png")
    (folder / "run.json").write_text(json.dumps(run))
    reprocess_result(folder, parse_config(moved_door(110)))
    assert (folder / "qc.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((folder / "run.json").read_text())["outputs"].count("qc.png") == 1
    reprocess_result(folder, parse_config(moved_door(120)), plots=False)
    assert not (folder / "qc.png").exists()
    assert "qc.png" not in json.loads((folder / "run.json").read_text())["outputs"]


def test_bins_are_added_and_a_stale_bins_file_removed(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    with_bins = config_with(TWO_CHAMBERS, summary={"bin_s": 5})
    reprocess_result(folder, parse_config(with_bins), plots=False)
    bins = pd.read_csv(folder / "summary_bins.csv")
    assert bins["period"].unique().tolist() == ["bin1", "bin2", "bin3"]
    assert "summary_bins.csv" in json.loads((folder / "run.json").read_text())["outputs"]
    reprocess_result(folder, parse_config(copy.deepcopy(TWO_CHAMBERS)), plots=False)
    assert not (folder / "summary_bins.csv").exists()
    assert "summary_bins.csv" not in json.loads((folder / "run.json").read_text())["outputs"]


def test_new_geometry_must_fit_the_video_frame(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    raw = copy.deepcopy(TWO_CHAMBERS)
    raw["arenas"][0]["chambers"][1]["point"] = [150, 50]
    raw["arenas"][0]["doors"][0]["line"] = [[100, 0], [100, 300]]
    reprocess_result(folder, parse_config(raw), plots=False)  # a door may reach past the frame
    raw["arenas"][0]["chambers"][1]["point"] = [250, 50]
    raw["arenas"][0]["polygon"] = [[0, 0], [300, 0], [300, 100], [0, 100]]
    with pytest.raises(ConfigError):
        reprocess_result(folder, parse_config(raw), plots=False)


def test_missing_track_is_reported(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    (folder / "track.parquet").unlink()
    with pytest.raises(OutputError, match="track.parquet: not found.*cpp-tracker track"):
        reprocess_result(folder, parse_config(moved_door()), plots=False)


def test_damaged_track_is_reported(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    (folder / "track.parquet").write_bytes(b"not parquet")
    with pytest.raises(OutputError, match="track.parquet: cannot be read .*cpp-tracker track"):
        reprocess_result(folder, parse_config(moved_door()), plots=False)


def test_run_json_without_config_is_reported(tmp_path):
    folder = write_result(tmp_path / "v", SEGMENTS)
    (folder / "run.json").write_text("{}")
    with pytest.raises(OutputError, match="run.json: holds no resolved config"):
        reprocess_result(folder, parse_config(moved_door()), plots=False)


# ----------------------------------------------------------------------- find_result_dirs
def test_find_result_dirs(tmp_path):
    a = write_result(tmp_path / "batch" / "a", SEGMENTS)
    b = write_result(tmp_path / "batch" / "sub" / "b", SEGMENTS)
    (tmp_path / "batch" / ".partial").mkdir()
    assert find_result_dirs([tmp_path / "batch"]) == [a, b]
    assert find_result_dirs([a, tmp_path / "batch"]) == [a, b]
    with pytest.raises(OutputError, match="nowhere: no such folder"):
        find_result_dirs([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(OutputError, match="empty: holds no result folder"):
        find_result_dirs([tmp_path / "empty"])
    assert find_result_dirs(tmp_path / "empty", allow_empty=True) == []  # a failed batch
    with pytest.raises(OutputError, match="run.json: is a file; give the result folder"):
        find_result_dirs(a / "run.json")


# ----------------------------------------------------------------------- the batch report
@pytest.fixture
def reported(tmp_path):
    """A batch of two results with its report.html, and another batch with its own."""
    batch = tmp_path / "batch"
    for name in ("v1", "v2"):
        write_result(batch / name, SEGMENTS, video=f"/videos/{name}.mp4")
    write_result(tmp_path / "other" / "w1", SEGMENTS)
    write_report(tmp_path / "other")
    return write_report(batch)


def test_reprocess_rewrites_the_batch_report(reported, tmp_path):
    batch, other = reported.parent, tmp_path / "other" / "report.html"
    before, other_before = report_percents(reported), other.read_bytes()
    # the door moves into the right chamber: the 1.5 s at x = 110 become 'left'
    assert before[("v1", "left")] == pytest.approx(100 * 6.0 / 11.5)
    r = reprocess_result(batch / "v1", parse_config(moved_door(), source="new.yaml"),
                         plots=False)
    assert r.reports == [reported] and r.stale_reports == []
    assert not any("report" in w for w in r.warnings)
    after = report_percents(reported)
    assert after == pytest.approx({**before, **summary_percents(batch / "v1")})
    assert after[("v1", "left")] == pytest.approx(100 * 7.5 / 11.5)
    assert after[("v2", "left")] == before[("v2", "left")]  # v2 was not reprocessed
    assert other.read_bytes() == other_before  # a page that does not show v1: left alone
    # the rewritten page is the one `cpp-tracker report` writes
    rewritten = reported.read_bytes()
    assert write_report(batch).read_bytes() == rewritten

    # nothing to do: nothing rewritten
    mtime = reported.stat().st_mtime_ns
    r = reprocess_result(batch / "v1", parse_config(moved_door(), source="new.yaml"))
    assert r.status == "unchanged" and r.reports == []
    assert reported.stat().st_mtime_ns == mtime
    # unless asked not to
    r = reprocess_result(batch / "v2", parse_config(moved_door()), plots=False, reports=False)
    assert r.status == "reprocessed" and r.reports == []
    assert reported.read_bytes() == rewritten


def test_a_report_that_cannot_be_rewritten_is_marked_out_of_date(reported):
    batch = reported.parent
    before = report_percents(reported)
    (batch / "batch_status.csv").write_text("no,status,here\n1,2,3\n")
    r = reprocess_result(batch / "v1", parse_config(moved_door()), plots=False)
    assert r.status == "reprocessed"  # the results are complete without the page
    assert r.reports == [] and r.stale_reports == [reported]
    [warning] = [w for w in r.warnings if "report.html" in w]
    assert str(reported) in warning and "could not be rewritten" in warning
    assert f"'cpp-tracker report {batch}'" in warning
    text = reported.read_text()
    assert text.count('<div id="stale" role="alert"') == 1
    assert "This page is out of date: the results of" in text and str(batch / "v1") in text
    assert report_percents(reported) == before


def test_a_reprocess_that_fails_part_way_leaves_pages_that_show_the_files(
    reported, monkeypatch
):
    import cpp_tracker.runs.reprocess as reprocess

    def fail(*args, **kwargs):
        raise OutputError("run.json: no space left on the device")

    monkeypatch.setattr(reprocess, "finish_result", fail)  # after summary.csv, before run.json
    batch = reported.parent
    before = report_percents(reported)
    with pytest.raises(OutputError, match="no space left"):
        reprocess_result(batch / "v1", parse_config(moved_door()), plots=False)
    after = report_percents(reported)
    assert after[("v1", "left")] != before[("v1", "left")]
    assert after == pytest.approx({**before, **summary_percents(batch / "v1")})
