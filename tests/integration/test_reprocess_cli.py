"""`cpp-tracker reprocess` on generated videos: the same files as a fresh `track` run."""

from __future__ import annotations

import copy
import json
import shutil

import pandas as pd
import pytest

from cpp_tracker.cli import main
from tests.conftest import write_config
from tests.unit.visual.test_report import report_percents, summary_percents

RESULT_FILES = ("summary.csv", "occupancy.csv", "summary_bins.csv", "qc.png")


def moved_door_config(config: dict, dx: float = 10.0) -> dict:
    """The door of every arena moved ``dx`` px, more hysteresis, bins and windows."""
    new = copy.deepcopy(config)
    for arena in new["arenas"]:
        for door in arena["doors"]:
            door["line"] = [[x + dx, y] for x, y in door["line"]]
    new["chambers"] = {"hysteresis_px": 8}
    new["summary"] = {"bin_s": 5, "windows": {"habituation": [0, 8], "test": [8, "end"]}}
    return new


def track(video, config, out):
    args = ["track", str(video), "--config", str(config), "--out", str(out), "--no-progress"]
    assert main(args) == 0


def test_moved_door_equals_a_fresh_track_run_without_the_video(video_factory, tmp_path, capsys):
    source, truth, config_path = video_factory("reprocess", duration_s=20.0, seed=21)
    video = tmp_path / "session1.mp4"
    shutil.copy(source, video)
    new_config = write_config(tmp_path / "moved.yaml", moved_door_config(truth.config))
    track(video, config_path, tmp_path / "old")
    track(video, new_config, tmp_path / "fresh")
    video.unlink()  # reprocessing must not need the video
    before = pd.read_parquet(tmp_path / "old" / "session1" / "track.parquet")
    for out in ("old", "fresh"):  # the batch reports
        assert main(["report", str(tmp_path / out)]) == 0
    old_page, fresh_page = tmp_path / "old" / "report.html", tmp_path / "fresh" / "report.html"
    old_percents, fresh_bytes = report_percents(old_page), fresh_page.read_bytes()

    capsys.readouterr()
    code = main(["reprocess", str(tmp_path / "old"), "--config", str(new_config)])
    out = capsys.readouterr().out
    assert code == 0
    assert "reprocessed" in out and "arenas[0].doors[0].line" in out
    assert "chambers.hysteresis_px" in out and "summary.bin_s" in out
    assert f"report: {tmp_path / 'old' / 'report.html'} rewritten with the new results" in out

    old, fresh = tmp_path / "old" / "session1", tmp_path / "fresh" / "session1"
    for name in RESULT_FILES:
        assert (old / name).read_bytes() == (fresh / name).read_bytes(), name
    # the same track, but for the chamber shares: they follow the door lines the video was
    # tracked with, so those cut by the old door are dropped, never left to mislead
    reprocessed, retracked = (pd.read_parquet(d / "track.parquet") for d in (old, fresh))
    shares = ["share_0", "share_1"]
    assert not set(shares) & set(reprocessed.columns)
    pd.testing.assert_frame_equal(reprocessed, retracked.drop(columns=shares))
    # the new config changed some frames' chamber (otherwise the test proves nothing)
    assert (before["chamber"] != pd.read_parquet(old / "track.parquet")["chamber"]).sum() > 3
    # the report over the reprocessed folder shows the new percentages, as the report of
    # the fresh run does; the report of the folder that was not reprocessed is left alone
    assert report_percents(old_page) == pytest.approx(summary_percents(old))
    assert report_percents(old_page) == pytest.approx(report_percents(fresh_page))
    assert report_percents(old_page) != pytest.approx(old_percents)
    assert fresh_page.read_bytes() == fresh_bytes
    run = json.loads((old / "run.json").read_text())
    assert run["command"] == "reprocess"
    assert run["config"]["hash"] == json.loads((fresh / "run.json").read_text())["config"]["hash"]
    assert [h["command"] for h in run["history"]] == ["track", "reprocess"]
    assert run["track"]["made_by"] == "track"

    # bins and windows written by track itself add up to the whole session
    bins = pd.read_csv(fresh / "summary_bins.csv")
    summary = pd.read_csv(fresh / "summary.csv").set_index("chamber")
    for kind, rows in bins.groupby("kind"):
        per_chamber = rows.groupby("chamber")["time_s"].sum()
        for chamber, total in per_chamber.items():
            assert abs(total - summary.loc[chamber, "time_s"]) < 1e-4, (kind, chamber)
        assert rows.groupby("chamber")["entries"].sum().drop("unknown").to_dict() == {
            c: int(summary.loc[c, "entries"]) for c in per_chamber.index if c != "unknown"
        }

    # again: nothing to do
    page = old_page.read_bytes()
    assert main(["reprocess", str(tmp_path), "--config", str(new_config)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert old_page.read_bytes() == page and fresh_page.read_bytes() == fresh_bytes


def test_detection_change_is_refused_then_retracked(video_factory, tmp_path, capsys):
    source, truth, config_path = video_factory("reprocess", duration_s=20.0, seed=21)
    video = tmp_path / "session2.mp4"
    shutil.copy(source, video)
    track(video, config_path, tmp_path / "out")
    changed = copy.deepcopy(truth.config)
    changed["detection"] = {"threshold": 40, "opening_px": 3}
    changed_path = write_config(tmp_path / "det.yaml", changed)
    result = tmp_path / "out" / "session2"
    before = (result / "summary.csv").read_bytes()

    capsys.readouterr()
    code = main(["reprocess", str(result), "--config", str(changed_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "detection.threshold, detection.opening_px" in err
    assert "run 'cpp-tracker track' again, or reprocess with --retrack" in err
    assert "Traceback" not in err
    assert (result / "summary.csv").read_bytes() == before

    old_hash = json.loads((result / "run.json").read_text())["config"]["hash"]
    code = main(
        [
            "reprocess",
            str(result),
            "--config",
            str(changed_path),
            "--retrack",
            "--keep-previous",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "retracked" in capsys.readouterr().out
    assert (result / "previous" / old_hash / "summary.csv").read_bytes() == before
    run = json.loads((result / "run.json").read_text())
    assert run["detection"][0]["threshold"] == 40
    assert [h["command"] for h in run["history"]] == ["track", "reprocess --retrack"]
    assert run["track"]["made_by"] == "reprocess --retrack"
    track(video, changed_path, tmp_path / "fresh")
    for name in ("summary.csv", "occupancy.csv"):
        assert (result / name).read_bytes() == (tmp_path / "fresh" / "session2" / name).read_bytes()


def test_bad_inputs_give_one_line(tmp_path, capsys):
    assert main(["reprocess", str(tmp_path / "none"), "--config", str(tmp_path / "c.yaml")]) == 2
    assert "c.yaml: file not found" in capsys.readouterr().err
    config = write_config(
        tmp_path / "c.yaml",
        {
            "arenas": [
                {
                    "name": "box",
                    "polygon": [[0, 0], [10, 0], [10, 10], [0, 10]],
                    "chambers": [{"name": "all", "point": [5, 5]}],
                }
            ]
        },
    )
    assert main(["reprocess", str(tmp_path / "none"), "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "none: no such folder" in err and "Traceback" not in err
