"""Summary figures on hand-made tracks."""

import numpy as np
import pandas as pd
import pytest

from cpp_tracker.analysis.occupancy import frame_durations
from cpp_tracker.analysis.summary import (
    SUMMARY_COLUMNS,
    chamber_bouts,
    path_length,
    summarize_arena,
    summarize_periods,
    time_periods,
)
from cpp_tracker.config.settings import TimeWindow


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


def test_time_follows_position_and_visits_follow_hysteresis():
    # hysteresis keeps the mouse in 'a' while it sits just past the door in 'b' (frames
    # 10-19) and returns: no entry into 'b', but the time there is 'b' time
    codes = np.array([0] * 30)
    position = np.array([0] * 10 + [1] * 10 + [0] * 10)
    t = np.arange(30) / 10.0
    tb = frame_durations(t)
    s = summarize_arena(
        video="v", arena="box", animal_id=None, chamber_names=["a", "b"], time_s=t,
        durations_s=tb.durations_s, codes=codes, time_codes=position, x=np.ones(30),
        y=np.ones(30), duration_s=tb.end_s,
    ).set_index("chamber")
    assert s.loc["b", "time_s"] == pytest.approx(1.0)
    assert s.loc["a", "time_s"] == pytest.approx(2.0)
    assert s.loc["b", "entries"] == 0
    assert s.loc["a", "entries"] == 1


# ---------------------------------------------------------------- time bins and windows
def _track_with_gaps():
    """10 fps, 61.3 s: crossings, undetected stretches, a 2 s gap in the timestamps."""
    rng = np.random.default_rng(3)
    t = np.arange(640) / 10.0
    t = np.r_[t[:300], t[320:] + 0.0]  # frames 300-319 lost: a 2 s gap
    codes = np.repeat(rng.integers(-1, 2, size=len(t) // 8 + 1), 8)[: len(t)].astype(np.int16)
    x = np.where(codes >= 0, 50 + 100 * codes + rng.normal(0, 3, len(t)), np.nan)
    y = np.where(codes >= 0, 50 + rng.normal(0, 3, len(t)), np.nan)
    tb = frame_durations(t)
    return t, tb, codes, x, y


def _periods_of(t, tb, codes, x, y, periods, time_codes=None):
    return summarize_periods(
        video="v", arena="box", animal_id="m1", chamber_names=["a", "b"], time_s=t,
        durations_s=tb.durations_s, codes=codes, x=x, y=y, periods=periods, px_per_cm=2.0,
        time_codes=time_codes,
    )


@pytest.mark.parametrize("bin_s", [7.0, 10.0, 60.0, 100.0])
def test_bins_sum_to_the_whole_session(bin_s):
    t, tb, codes, x, y = _track_with_gaps()
    # time follows the piece the centroid is in, which differs from the hysteresis chamber
    # in some frames (a mouse turning back in a doorway)
    position = codes.copy()
    position[::17] = np.where(codes[::17] >= 0, 1 - codes[::17], -1)
    whole = summarize_arena(
        video="v", arena="box", animal_id="m1", chamber_names=["a", "b"], time_s=t,
        durations_s=tb.durations_s, codes=codes, x=x, y=y, duration_s=tb.end_s, px_per_cm=2.0,
        time_codes=position,
    ).set_index("chamber")
    periods, warnings = time_periods(tb.end_s, bin_s)
    assert warnings == []
    assert periods[0].start_s == 0 and periods[-1].end_s == tb.end_s
    assert len(periods) == int(np.ceil(tb.end_s / bin_s))
    bins = _periods_of(t, tb, codes, x, y, periods, time_codes=position)
    assert set(bins["kind"]) == {"bin"}
    for chamber in ("a", "b", "unknown"):
        mine = bins[bins["chamber"] == chamber]
        assert mine["time_s"].sum() == pytest.approx(whole.loc[chamber, "time_s"], abs=1e-9)
        if chamber != "unknown":
            assert mine["entries"].sum() == whole.loc[chamber, "entries"]
    per_bin = bins.drop_duplicates("period")
    for column in ("duration_s", "observed_s", "unknown_s", "distance_px", "distance_cm",
                   "frames", "frames_detected"):
        assert per_bin[column].sum() == pytest.approx(whole.loc["a", column], abs=1e-6), column
    # each bin's chambers and unknown add up to its length
    sums = bins.groupby("period", sort=False)["time_s"].sum().to_numpy()
    assert sums == pytest.approx((per_bin["end_s"] - per_bin["start_s"]).to_numpy())
    assert whole.loc["a", "unknown_s"] > 2.0  # the gap and undetected frames are in it


def test_window_over_the_whole_recording_equals_the_summary():
    t, tb, codes, x, y = _track_with_gaps()
    whole = summarize_arena(
        video="v", arena="box", animal_id="m1", chamber_names=["a", "b"], time_s=t,
        durations_s=tb.durations_s, codes=codes, x=x, y=y, duration_s=tb.end_s, px_per_cm=2.0,
    )
    periods, _ = time_periods(tb.end_s, None, [TimeWindow("all", 0.0, None)])
    window = _periods_of(t, tb, codes, x, y, periods)
    assert window["period"].unique().tolist() == ["all"]
    columns = [c for c in SUMMARY_COLUMNS if c not in ("video", "arena", "animal_id")]
    pd.testing.assert_frame_equal(window[columns], whole[columns], check_exact=False,
                                  rtol=1e-9)


def test_window_definitions():
    # 10 fps: 0-5 s in a, 5-10 s in b, 10-20 s in a
    codes = np.array([0] * 50 + [1] * 50 + [0] * 100, dtype=np.int16)
    t = np.arange(len(codes)) / 10.0
    tb = frame_durations(t)
    x = 50.0 + 100 * codes
    y = np.full(len(codes), 50.0)
    periods, warnings = time_periods(
        tb.end_s, None, [TimeWindow("mid", 7.0, 12.0), TimeWindow("late", 15.0, 30.0)]
    )
    assert warnings == [
        "summary.windows.late (15-30 s) reaches past the end of the recording (20.0 s); it "
        "covers 15-20.0 s only"
    ]
    w = _periods_of(t, tb, codes, x, y, periods).set_index(["period", "chamber"])
    assert w.loc[("mid", "a"), "time_s"] == pytest.approx(2.0)
    assert w.loc[("mid", "b"), "time_s"] == pytest.approx(3.0)
    assert w.loc[("mid", "b"), "latency_s"] == 0  # already in b when the window starts
    assert w.loc[("mid", "b"), "entries"] == 0  # the bout began before the window
    assert w.loc[("mid", "a"), "latency_s"] == pytest.approx(3.0)
    assert w.loc[("mid", "a"), "entries"] == 1
    assert w.loc[("mid", "a"), "percent"] == pytest.approx(40.0)
    assert w.loc[("mid", "a"), "frames"] == 50
    assert w.loc[("mid", "a"), "distance_px"] == pytest.approx(100.0)  # one crossing at 10 s
    assert w.loc[("late", "a"), "end_s"] == pytest.approx(20.0)
    assert w.loc[("late", "a"), "time_s"] == pytest.approx(5.0)
    assert np.isnan(w.loc[("late", "b"), "latency_s"])


def test_path_length_in_blocks_equals_one_pass(monkeypatch):
    import cpp_tracker.analysis.summary as summary

    rng = np.random.default_rng(5)
    x = np.cumsum(rng.normal(0, 1.5, 5000))
    y = np.cumsum(rng.normal(0, 1.5, 5000))
    x[rng.random(5000) < 0.1] = np.nan
    whole = summary.path_length(x, y, 2.0)
    monkeypatch.setattr(summary, "_BLOCK", 13)
    assert summary.path_length(x, y, 2.0) == whole > 1000
