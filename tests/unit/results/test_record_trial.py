"""run.json's ``trial`` block: written when a start was asked for, absent (and read as
None) otherwise, kept by a reprocess."""

from __future__ import annotations

import json

from cpp_tracker.results.record import (
    RunRecord,
    TrialStartRecord,
    read_run_record,
    write_run_record,
)

FOUND = TrialStartRecord(
    requested="auto", source="trial.start", start_s=15.2, found=True,
    reason="hand last seen at 12.3 s; a door last closed at 15.1 s; box = empty image + one "
           "mouse from 15.2 s (for 1 s in a row)",
    hand_last_seen_s=12.3, door_last_closed_s=15.1,
)


def test_the_trial_block_reads_back(tmp_path):
    write_run_record(tmp_path, RunRecord(version="x", trial=FOUND))
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["trial"]["start_s"] == 15.2 and data["trial"]["requested"] == "auto"
    assert read_run_record(tmp_path).trial == FOUND
    assert FOUND.label == "trial start 15.2 s (auto)"


def test_records_without_a_start_have_no_block_and_older_files_read(tmp_path):
    write_run_record(tmp_path, RunRecord(version="x"))
    data = json.loads((tmp_path / "run.json").read_text())
    assert "trial" not in data
    assert read_run_record(tmp_path).trial is None
    given = TrialStartRecord(requested=12.5, source="trial.start", start_s=12.5, found=True,
                             reason="given: trial.start 12.5 s")
    write_run_record(tmp_path, RunRecord(version="x", trial=given))
    written = json.loads((tmp_path / "run.json").read_text())["trial"]
    assert written["requested"] == 12.5 and "hand_last_seen_s" not in written
    assert given.label == "trial start 12.5 s (given)"
    missing = TrialStartRecord(requested="auto", start_s=0.0, found=False, reason="...")
    assert missing.label == "trial start not found: counted from the video's start"
