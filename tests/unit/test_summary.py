"""Summary figures on hand-made tracks."""

import numpy as np
import pytest

from cpp_tracker.occupancy import frame_durations
from cpp_tracker.summary import chamber_bouts, path_length, summarize_arena


def summarize(codes, x=None, y=None, fps=10.0, px_per_cm=None):
    codes = np.asarray(codes)
    t = np.arange(len(codes)) / fps
    tb = frame_durations(t)
    x = np.where(codes >= 0, 1.0, np.nan) if x is None else np.asarray(x, float)
    y = np.where(codes >= 0, 1.0, np.nan) if y is None else np.asarray(y, float)
    return summarize_arena(
        video="v.mp4", arena="box", animal_id="m1", chamber_names=["a", "b"], time_s=t,
        durations_s=tb.durations_s, codes=codes, x=x, y=y, duration_s=tb.end_s,
        px_per_cm=px_per_cm,
    ).set_index("chamber")


def test_time_percent_entries_latency_bouts():
    # 1 s unknown, 2 s in a, 1 s in b, 1 s in a  (10 fps)
    codes = [-1] * 10 + [0] * 20 + [1] * 10 + [0] * 10
    s = summarize(codes)
    assert s.loc["a", "time_s"] == pytest.approx(3.0)
    assert s.loc["b", "time_s"] == pytest.approx(1.0)
    assert s.loc["a", "percent"] == pytest.approx(75.0)
    assert s.loc["b", "percent"] == pytest.approx(25.0)
    assert s.loc["a", "entries"] == 2
    assert s.loc["b", "entries"] == 1
    assert s.loc["a", "latency_s"] == pytest.approx(1.0)
    assert s.loc["b", "latency_s"] == pytest.approx(3.0)
    assert s.loc["a", "mean_bout_s"] == pytest.approx(1.5)
    assert s.loc["unknown", "time_s"] == pytest.approx(1.0)
    assert s.loc["unknown", "percent"] == pytest.approx(20.0)
    assert s.loc["a", "observed_s"] == pytest.approx(4.0)
    assert s.loc["a", "duration_s"] == pytest.approx(5.0)
    assert s.loc["a", "animal_id"] == "m1"


def test_lost_frames_inside_a_bout_do_not_split_it():
    codes = [0] * 10 + [-1] * 5 + [0] * 10 + [1] * 5
    s = summarize(codes)
    assert s.loc["a", "entries"] == 1
    assert s.loc["a", "time_s"] == pytest.approx(2.0)


def test_never_entered_chamber_has_no_latency():
    s = summarize([0] * 20)
    assert s.loc["b", "entries"] == 0
    assert np.isnan(s.loc["b", "latency_s"])
    assert s.loc["b", "time_s"] == 0


def test_bouts_table():
    b = chamber_bouts(np.arange(8) / 1.0, np.array([-1, 0, 0, -1, 1, 1, 0, -1]))
    assert b["chamber"].tolist() == [0, 1, 0]
    assert b["start_s"].tolist() == [1.0, 4.0, 6.0]


def test_distance_ignores_jitter_but_counts_real_movement():
    rng = np.random.default_rng(1)
    still_x = 50 + rng.normal(0, 0.3, 1000)
    still_y = 50 + rng.normal(0, 0.3, 1000)
    assert path_length(still_x, still_y, min_step_px=2.0) < 5.0
    line_x = np.linspace(0, 100, 201)
    assert path_length(line_x, np.zeros(201), min_step_px=2.0) == pytest.approx(100, abs=2.0)


def test_distance_in_cm_with_scale():
    x = np.linspace(0, 100, 101)
    s = summarize([0] * 101, x=x, y=np.zeros(101), px_per_cm=5.0)
    assert s.loc["a", "distance_px"] == pytest.approx(100, abs=2)
    assert s.loc["a", "distance_cm"] == pytest.approx(20, abs=0.5)
