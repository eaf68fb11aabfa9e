"""Lighting periods from the per-frame gain."""

import numpy as np
import pandas as pd

from cpp_tracker.analysis.lighting import find_lighting_periods, lighting_report


def _series(n=1800, fps=30.0):
    frame = np.arange(n)
    return frame, frame / fps


def test_slow_drift_is_one_period():
    frame, t = _series()
    gain = np.linspace(1.0, 0.8, len(t))  # 20 % over a minute
    (period,) = find_lighting_periods(frame, t, gain, end_s=60.0)
    assert period.start_s == 0.0 and period.end_s == 60.0
    assert period.gain_min < 0.82 and period.gain_max > 0.98


def test_a_step_splits_the_recording_at_its_frame():
    frame, t = _series()
    rng = np.random.default_rng(0)
    gain = np.linspace(1.0, 0.8, len(t)) * np.where(t >= 30.0, 0.6, 1.0)
    gain *= 1 + rng.normal(0, 0.003, len(t))
    first, second = find_lighting_periods(frame, t, gain, end_s=60.0)
    assert first.end_s == second.start_s == 30.0
    assert second.first_frame == 900
    assert abs(first.gain_median - 0.95) < 0.02 and abs(second.gain_median - 0.51) < 0.02
    report = lighting_report([first, second], followed=True)
    assert report["abrupt_changes"] == 1 and report["periods"][1]["first_frame"] == 900


def test_lights_off_and_on_again():
    frame, t = _series()
    gain = np.where((t >= 20) & (t < 40), 0.3, 1.0)
    periods = find_lighting_periods(frame, t, gain)
    assert [p.start_s for p in periods] == [0.0, 20.0, 40.0]
    assert [round(p.gain_median, 2) for p in periods] == [1.0, 0.3, 1.0]


def test_small_flicker_is_not_a_change():
    frame, t = _series()
    gain = 1 + 0.05 * np.sin(t)  # +-5 %
    assert len(find_lighting_periods(frame, t, gain)) == 1
    assert find_lighting_periods(frame[:0], t[:0], gain[:0]) == []


def test_running_medians_equal_pandas_rolling_medians():
    """The fast medians over full windows equal pandas' rolling medians both ways, for odd
    and even windows, ties, short series and NaN (left to pandas)."""
    from cpp_tracker.analysis.lighting import _running_medians

    rng = np.random.default_rng(0)
    fast = 0
    for trial in range(300):
        n = int(rng.integers(1, 200))
        w = int(rng.integers(3, 40))
        minp = max(1, w // 2)
        v = np.round(rng.normal(0, 1, n), int(rng.integers(0, 4)))  # 0 decimals: many ties
        if trial % 5 == 0 and n > 3:
            v[rng.integers(0, n)] = np.nan
        s = pd.Series(v)
        ending, starting = _running_medians(v, w, minp)
        np.testing.assert_array_equal(ending, s.rolling(w, min_periods=minp).median())
        np.testing.assert_array_equal(
            starting, s[::-1].rolling(w, min_periods=minp).median()[::-1].to_numpy())
        fast += n >= w and bool(np.isfinite(v).all())
    assert fast > 100  # has teeth: most series took the fast way
