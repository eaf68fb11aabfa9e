"""Occupancy arithmetic: frame durations, gaps, per-second rows."""

import numpy as np
import pytest

from cpp_tracker.analysis.occupancy import frame_durations, occupancy_per_second


def test_regular_frames_each_last_one_interval():
    t = np.arange(90) / 30.0
    tb = frame_durations(t, gap_factor=2.5)
    assert np.allclose(tb.durations_s, 1 / 30)
    assert tb.end_s == pytest.approx(3.0)
    assert tb.gaps == ()


def test_rows_sum_to_the_length_of_each_second():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(0.02, 0.05, 200))  # uneven intervals, first frame > 0
    codes = rng.integers(-1, 2, len(t))
    tb = frame_durations(t)
    occ = occupancy_per_second(t, tb.durations_s, codes, ["a", "b"], tb.end_s)
    sums = occ[["a", "b", "unknown"]].sum(axis=1).to_numpy()
    expected = np.minimum(np.arange(len(occ)) + 1, tb.end_s) - np.arange(len(occ))
    assert np.allclose(sums, expected)
    # whole-video totals equal the frame durations per chamber
    for k, name in enumerate(["a", "b"]):
        assert occ[name].sum() == pytest.approx(tb.durations_s[codes == k].sum())


def test_frame_split_across_a_second_boundary():
    # two frames: 0.5-1.25 s in a, 1.25-2.0 s in b (interval 0.75 s)
    t = np.array([0.5, 1.25])
    d = np.array([0.75, 0.75])
    occ = occupancy_per_second(t, d, np.array([0, 1]), ["a", "b"], end_s=2.0)
    assert occ["a"].tolist() == pytest.approx([0.5, 0.25])
    assert occ["b"].tolist() == pytest.approx([0.0, 0.75])
    assert occ["unknown"].tolist() == pytest.approx([0.5, 0.0])  # before the first frame


def test_gap_is_unknown_and_not_spread_over_neighbours():
    # 30 fps for 1 s, then 3 s without frames, then 1 s again
    t = np.r_[np.arange(30) / 30.0, 4.0 + np.arange(30) / 30.0]
    tb = frame_durations(t, gap_factor=2.5)
    assert len(tb.gaps) == 1
    start, end = tb.gaps[0]
    assert start == pytest.approx(1.0) and end == pytest.approx(4.0)
    codes = np.zeros(len(t), dtype=int)
    occ = occupancy_per_second(t, tb.durations_s, codes, ["a"], tb.end_s)
    assert occ["a"].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0, 1.0])
    assert occ["unknown"].tolist() == pytest.approx([0.0, 1.0, 1.0, 1.0, 0.0])


def test_small_jitter_is_not_a_gap():
    t = np.arange(100) / 30.0
    t[50:] += 0.02  # one interval of 53 ms at 30 fps: late frame, not a gap
    tb = frame_durations(t, gap_factor=2.5)
    assert tb.gaps == ()
    assert tb.durations_s.sum() == pytest.approx(tb.end_s - t[0])


def test_bins_longer_than_a_second():
    t = np.arange(300) / 30.0  # 10 s
    codes = (t >= 4).astype(int)
    tb = frame_durations(t)
    occ = occupancy_per_second(t, tb.durations_s, codes, ["a", "b"], tb.end_s, bin_s=5)
    assert occ["second"].tolist() == [0, 5]
    assert occ["a"].tolist() == pytest.approx([4.0, 0.0])
    assert occ["b"].tolist() == pytest.approx([1.0, 5.0])
