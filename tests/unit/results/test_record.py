"""The run record: run.json read and written through one typed value, any schema."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import pytest

import cpp_tracker
from cpp_tracker.errors import OutputError
from cpp_tracker.results.record import (
    SCHEMA_VERSION,
    ArenaQC,
    ConfigRecord,
    LightingRecord,
    RunRecord,
    TimingRecord,
    TrackOrigin,
    read_run_record,
    write_run_record,
)
from tests.results_helpers import tracked


@pytest.fixture(scope="module")
def result(video_factory, tmp_path_factory):
    return tracked(video_factory, tmp_path_factory)


def test_a_written_run_json_reads_back_to_the_same_file(result):
    """Every key track writes has a home in the record: reading and writing again gives
    the same JSON, key for key and in the same order."""
    _, _, result_dir = result
    data = json.loads((result_dir / "run.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    record = read_run_record(result_dir)
    assert record.to_dict() == data
    assert list(record.to_dict()) == list(data)
    assert record.video.path == data["video"]["path"] and record.videos[0] == record.video
    assert set(record.qc) == {a["name"] for a in data["config"]["resolved"]["arenas"]}


def test_a_record_of_schema_0_is_read_with_empty_blocks(tmp_path):
    """Folders written before the record existed have no schema_version and may lack blocks
    (hand-made or early results); they read, and are rewritten in the current schema."""
    old = {
        "tool": "cpp-tracker",
        "version": "0.0.9",
        "command": "track",
        "video": {"path": "night1.mp4", "width": 640, "height": 480},
        "config": {"hash": "abc", "resolved": {"arenas": []}},
        "time_base": {"duration_s": 100.0, "read_fraction_of_nominal": 0.5},
        "warnings": ["w"],
    }
    (tmp_path / "run.json").write_text(json.dumps(old))
    record = read_run_record(tmp_path)
    assert record.schema_version == 0
    assert record.videos[0].path == "night1.mp4" and record.video.width == 640
    assert record.qc == {} and record.needs_review is None and record.lighting is None
    # no QC verdict, but half the file was read: in doubt all the same
    assert not record.usable("box1")
    assert record.doubts("box1")[0].startswith("only 50.0 % of the nominal length read")
    assert record.lighting_periods() == []
    # the nominal length, for a record without expected_duration_s: read / share read
    assert record.time_base.expected_s == pytest.approx(200.0)
    assert record.resume.resumed_from_s is None and record.track is None
    write_run_record(tmp_path, record)
    again = json.loads((tmp_path / "run.json").read_text())
    assert again["schema_version"] == SCHEMA_VERSION and again["warnings"] == ["w"]


def test_a_record_of_a_newer_schema_is_refused_with_one_sentence(tmp_path):
    (tmp_path / "run.json").write_text(
        json.dumps({"schema_version": SCHEMA_VERSION + 1, "version": "9.0.0"})
    )
    with pytest.raises(OutputError) as e:
        read_run_record(tmp_path)
    text = str(e.value)
    assert str(tmp_path / "run.json") in text
    assert "written by cpp-tracker 9.0.0" in text
    assert f"schema {SCHEMA_VERSION + 1}" in text and "upgrade cpp-tracker" in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2]", "is not a cpp-tracker run record"),
        ('{"schema_version": "one"}', "is not a whole number"),
        ('{"videos": "night1.mp4"}', "does not have the shape of a run record"),
        ('{"qc": {"box1": 3}}', "does not have the shape of a run record"),
        ("{not json", "cannot be read"),
    ],
)
def test_a_damaged_record_gets_one_sentence_naming_the_file(tmp_path, content, expected):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(OutputError) as e:
        read_run_record(tmp_path)
    assert str(e.value).startswith(str(tmp_path / "run.json"))
    assert expected in str(e.value)


def _recorded(**changes) -> RunRecord:
    base = RunRecord(
        version="0.1.0",
        command="track",
        finished="2026-01-01T00:00:00+00:00",
        config=ConfigRecord(source="a.yaml", hash="aaa", resolved={"arenas": []}),
        run_key={"config_hash": "aaa", "videos": [], "stride": 1},
        qc={"box1": ArenaQC(needs_review=True, review_reasons=("old reason",))},
        warnings=("timestamps repaired", "analysis said so"),
        analysis_warnings=("analysis said so",),
        outputs=("track.parquet", "occupancy.csv", "summary.csv", "summary_bins.csv",
                 "background.png", "qc.png", "run.json"),
        track=TrackOrigin(made_by="track", config_hash="aaa", frames=100),
    )
    return replace(base, **changes)


def test_reprocessed_keeps_the_recording_and_replaces_the_analysis():
    old = _recorded()
    new = old.reprocessed(
        version="0.2.0",
        config=ConfigRecord(source="b.yaml", hash="bbb", resolved={"arenas": []}),
        timing=TimingRecord(duration_s=99.0, read_fraction_of_nominal=0.99),
        arenas={},
        qc={"box1": ArenaQC(needs_review=False)},
        lighting=LightingRecord(followed=True),
        analysis_warnings=["new analysis warning"],
        written=["occupancy.csv", "summary.csv"],
        changed_keys=["chambers.hysteresis_px"],
        started="s",
        finished="f",
        elapsed_s=1.5,
    )
    assert new.command == "reprocess" and new.version == "0.2.0"
    assert new.warnings == ("new analysis warning", "timestamps repaired")
    assert new.analysis_warnings == ("new analysis warning",)
    assert new.needs_review is False and new.time_base.duration_s == 99.0
    # a stale bins table and the old figure are no longer listed (qc.png: once drawn)
    assert new.outputs == ("track.parquet", "occupancy.csv", "summary.csv", "background.png",
                           "run.json")
    assert new.with_figure(True).outputs[-2:] == ("qc.png", "run.json")
    assert new.track == old.track  # the track still comes from the tracking run
    assert new.run_key["config_hash"] == "bbb" and new.run_key["stride"] == 1
    assert new.reprocess.changed_keys == ("chambers.hysteresis_px",)
    assert new.reprocess.previous_config_hash == "aaa"
    history = new.with_history_after(old).history
    assert [h.command for h in history] == ["track", "reprocess"]
    assert [h.config_hash for h in history] == ["aaa", "bbb"]


def test_a_figure_that_could_not_be_drawn_is_a_warning_not_an_output():
    record = _recorded(outputs=("track.parquet", "run.json"), warnings=())
    failed = record.with_figure(False, "qc.png could not be drawn")
    assert failed.outputs == ("track.parquet", "run.json")
    assert failed.warnings == ("qc.png could not be drawn",)
    assert record.with_figure(True).outputs == ("track.parquet", "qc.png", "run.json")


def _package_modules() -> list[Path]:
    return sorted(Path(cpp_tracker.__file__).parent.rglob("*.py"))


def test_no_module_but_the_record_reads_run_json_by_key():
    """run.json is read and written through the record only: no other module opens it with
    read_json/write_json or keeps an untyped ``run_info``."""
    offenders = []
    for path in _package_modules():
        if path.name == "record.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id == "run_info":
                offenders.append(f"{path.name}:{node.lineno} run_info")
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                    "read_json", "write_json")
                and "run.json" in ast.unparse(node)
            ):
                offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []
