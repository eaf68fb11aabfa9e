"""Bedding kicked around and low-contrast IR night video, end to end against the truth.

Generated 320x240, 15 fps, 60 s videos (tuning seeds; benchmarks/bedding_ir.py reports
held-out ones). Tolerances: chamber times within 0.5 % of the duration for the bedding
video, 1 % for IR; a frame tracks something else when its centroid is more than half a
body length from the truth's; median centroid error (the usual measure) in body lengths.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cpp_tracker.tracking.segments as segments
from cpp_tracker.cli import main
from cpp_tracker.synthetic import body_length_px

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

VIDEO = dict(width=320, height=240, fps=15.0, duration_s=60.0, crf=20)


def _track(video, config, out, *options) -> None:
    code = main(["track", str(video), "--config", str(config), "--out", str(out),
                 "--no-progress", "--no-plots", *options])
    assert code == 0


def _results(out, video):
    d = out / video.stem
    return (pd.read_parquet(d / "track.parquet"), pd.read_csv(d / "summary.csv"),
            (d / "occupancy.csv").read_text(), json.loads((d / "run.json").read_text()))


def _chamber_error(summary, truth) -> float:
    """Largest |tracked - true| chamber time, as a share of the duration."""
    true_s = truth.chamber_times()
    known = summary[summary["chamber"] != "unknown"]
    return max(abs(r["time_s"] - float(true_s.loc[r["arena"]].get(r["chamber"], 0.0)))
               for _, r in known.iterrows()) / truth.spec.duration_s


def _errors_bl(track, truth) -> pd.DataFrame:
    both = truth.track.merge(track, on=["frame", "arena"], suffixes=("_true", ""))
    both["err_bl"] = (np.hypot(both["x"] - both["x_true"], both["y"] - both["y_true"])
                      / body_length_px(truth.spec)[0])
    return both


@pytest.fixture
def short_segments(monkeypatch):
    monkeypatch.setattr(segments, "MIN_SEGMENT_S", 2.0)


def test_kicked_bedding_and_a_sleeping_mouse(video_factory, tmp_path, short_segments):
    video, truth, config = video_factory("bedding_kicks", **VIDEO, seed=1, bedding="chips",
                                         kicks=4, sleep_fraction=0.3)
    _track(video, config, tmp_path / "one")
    _track(video, config, tmp_path / "two", "--workers", "2")
    track, summary, occupancy, run = _results(tmp_path / "one", video)
    update = run["detection"][0]["background_update"]
    assert update["mode"] == "auto" and update["active"] and update["absorbed_px"] > 0
    assert update["margin_px"] == pytest.approx(update["body_length_px"], rel=1e-6)
    # --workers 2: one pass, said why, the same results
    two = _results(tmp_path / "two", video)
    assert two[3]["parallel"]["workers"] == 1
    assert "background_update" in two[3]["parallel"]["one_pass_reason"]
    assert two[0].equals(track) and two[2] == occupancy
    assert _chamber_error(summary, truth) <= 0.005
    both = _errors_bl(track, truth)
    found = both[both["detected"]]
    assert len(found) >= 0.99 * len(both)
    assert (found["err_bl"] <= 0.5).mean() >= 0.99  # no kicked patch tracked as the mouse
    assert found["err_bl"].median() <= 0.1
    # asleep: still found, where it sleeps
    asleep = both[~both["moving"] & (both["time_s"] > 5.0)]
    assert len(asleep) >= 0.3 * len(both) * 0.9
    assert asleep["detected"].mean() >= 0.99
    assert asleep["err_bl"].quantile(0.99) <= 0.25


@pytest.mark.parametrize("colour", ["dark", "light"])
def test_low_contrast_ir_night_video(video_factory, tmp_path, colour):
    floor = "grey" if colour == "dark" else "dark"
    video, truth, config = video_factory(
        f"ir_{colour}", **VIDEO, seed=1, mouse=colour, floor=floor, ir_contrast=13.0,
        noise_sigma=5.0, vignetting=0.4, flicker=0.02, sleep_fraction=0.2)
    _track(video, config, tmp_path)
    track, summary, _, run = _results(tmp_path, video)
    assert run["detection"][0]["polarity"] == colour
    both = _errors_bl(track, truth)
    assert both["detected"].mean() >= 0.97
    assert both.loc[both["detected"], "err_bl"].median() <= 0.05
    assert (both.loc[both["detected"], "err_bl"] <= 0.5).mean() >= 0.99
    assert _chamber_error(summary, truth) <= 0.01


def test_an_interrupted_run_continues_with_the_update_state(video_factory, tmp_path,
                                                             monkeypatch):
    """The follower's state is saved with each checkpoint: a run stopped after some bedding
    was taken in continues to exactly the results of an uninterrupted run."""
    from cpp_tracker import load_config, track_video
    from cpp_tracker.tracking.background_update import BackgroundFollower

    video, truth, config = video_factory("bedding_kicks", **VIDEO, seed=1, bedding="chips",
                                         kicks=4, sleep_fraction=0.3)
    raw = config.read_text() + "video: {checkpoint_s: 5}\n"
    (tmp_path / "box.yaml").write_text(raw)
    cfg = load_config(tmp_path / "box.yaml")
    whole = track_video(video, cfg, tmp_path / "whole", progress=False, plots=False)
    real = BackgroundFollower.detect_chunk

    def stop_late(self, frames, time_s):
        if time_s[0] > 40.0 and self.absorbed_px > 0:
            raise KeyboardInterrupt
        return real(self, frames, time_s)

    monkeypatch.setattr(BackgroundFollower, "detect_chunk", stop_late)
    with pytest.raises(KeyboardInterrupt):
        track_video(video, cfg, tmp_path / "cut", progress=False, plots=False)
    monkeypatch.undo()
    partial = tmp_path / "cut" / video.stem / ".partial"
    assert json.loads((partial / "checkpoint.json").read_text())["parts"] >= 5
    resumed = track_video(video, cfg, tmp_path / "cut", progress=False, plots=False)
    assert resumed.record.resume.resumed
    a, b = Path(resumed.result_dir), Path(whole.result_dir)
    pd.testing.assert_frame_equal(pd.read_parquet(a / "track.parquet"),
                                  pd.read_parquet(b / "track.parquet"))
    assert (a / "summary.csv").read_bytes() == (b / "summary.csv").read_bytes()
    update = json.loads((a / "run.json").read_text())["detection"][0]["background_update"]
    assert update["absorbed_px"] == whole.record.detection[0].background_update["absorbed_px"]
