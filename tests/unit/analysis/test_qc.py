"""Quality flags computed from a track table."""

import numpy as np
import pandas as pd
import pytest

from cpp_tracker.analysis.qc import (
    QC_SECOND_COLUMNS,
    QcThresholds,
    qc_per_second,
    qc_summary_columns,
    video_qc,
)

FPS = 30.0


def _track(n=300, arena="box1"):
    """A clean track: a mouse of 400 px walking 30 px/s (px_per_cm 5 -> 6 cm/s)."""
    t = np.arange(n) / FPS
    return pd.DataFrame({
        "frame": np.arange(n),
        "time_s": t,
        "arena": arena,
        "x": 50 + 30 * t,
        "y": np.full(n, 100.0),
        "area_px": np.full(n, 400.0),
        "detected": True,
        "n_blobs": np.ones(n, dtype=np.int16),
    })


def _qc(track, px_per_cm=5.0, **kw):
    per_second, info = qc_per_second(track, {"box1": px_per_cm})
    q = video_qc(track, per_second, info, duration_s=len(track) / FPS, **kw)
    return per_second, q["box1"]


def test_a_clean_track_needs_no_review():
    per_second, q = _qc(_track())
    assert list(per_second.columns) == ["arena", "second", *QC_SECOND_COLUMNS]
    assert len(per_second) == 10 and (per_second["qc_frames"] == 30).all()
    assert not per_second["qc_flag"].any()
    assert q["needs_review"] is False and q["review_reasons"] == []
    assert q["max_speed_px_s"] == 500.0 and q["scale_source"] == "config"


def test_undetected_frames_are_counted_per_second_and_per_video():
    track = _track()
    lost = (track["time_s"] >= 2) & (track["time_s"] < 3)
    track.loc[lost, ["x", "y", "area_px"]] = np.nan
    track.loc[lost, "detected"] = False
    per_second, q = _qc(track)
    assert per_second.loc[2, "qc_undetected"] == 1.0 and per_second.loc[1, "qc_undetected"] == 0
    assert bool(per_second.loc[2, "qc_flag"]) is True
    assert q["undetected_share"] == pytest.approx(0.1)
    assert q["needs_review"]
    assert "no detection in 10.0 % of frames (limit 5 %)" in q["review_reasons"]


def test_an_implausible_jump_is_found_and_an_ordinary_step_is_not():
    track = _track()
    track.loc[150:, "x"] += 150  # 150 px in one frame = 4500 px/s = 900 cm/s
    per_second, q = _qc(track)
    assert per_second["qc_jumps"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert q["jumps"] == 1 and q["jumps_per_min"] == pytest.approx(6.0)
    assert any("1 implausible jumps" in r for r in q["review_reasons"])
    # the same step at 120 cm/s is a jump, at 80 cm/s it is not (max_speed_cm_s 100)
    slow = _track()
    slow.loc[150:, "x"] += 20  # 20 px in 1/30 s = 600 px/s = 120 cm/s
    assert _qc(slow)[1]["jumps"] == 1
    slower = _track()
    slower.loc[150:, "x"] += 13  # 390 px/s = 78 cm/s
    assert _qc(slower)[1]["jumps"] == 0


def test_without_a_scale_the_speed_limit_comes_from_the_blob_area():
    per_second, q = _qc(_track(), px_per_cm=None)
    assert q["scale_source"] == "typical blob area"
    assert q["px_per_cm_used"] == pytest.approx(np.sqrt(400 / 20), abs=1e-4)


def test_competing_blobs_and_odd_areas():
    track = _track()
    track.loc[:59, "n_blobs"] = 2  # first 2 s
    track.loc[60:89, "area_px"] = 1000.0  # 2.5x typical during the third second
    per_second, q = _qc(track)
    assert per_second["qc_multi_blob"].tolist()[:3] == [1.0, 1.0, 0.0]
    assert per_second["qc_area_outlier"].tolist()[:4] == [0.0, 0.0, 1.0, 0.0]
    assert q["multi_blob_share"] == pytest.approx(0.2)
    assert q["area_outlier_share"] == pytest.approx(0.1)
    assert q["flagged_seconds"] == 3
    assert len(q["review_reasons"]) == 2


def test_gaps_and_truncation_are_reasons_for_review():
    _, q = _qc(_track(), unobserved_s=1.0, read_fraction=0.5)
    reasons = " | ".join(q["review_reasons"])
    assert "1.0 s (10.0 %) lost in gaps (limit 2 %)" in reasons
    assert "only 50.0 % of the nominal length read (limit 98 %)" in reasons
    _, q = _qc(_track(), unobserved_s=0.1, read_fraction=0.99)
    assert q["needs_review"] is False


def test_time_in_no_chamber_is_a_reason_for_review():
    """A config drawn for another camera puts the centroid outside every chamber while it
    is detected: only the unknown time tells."""
    track = _track()  # 10 s, every frame detected
    per_second, info = qc_per_second(track, {"box1": 5.0})
    q = video_qc(track, per_second, info, duration_s=10.0, unknown_s={"box1": 8.95})["box1"]
    assert q["unknown_share"] == pytest.approx(0.895)
    assert q["review_reasons"] == ["in no chamber for 89.5 % of the time (limit 10 %)"]
    q = video_qc(track, per_second, info, duration_s=10.0, unknown_s={"box1": 0.9})["box1"]
    assert q["needs_review"] is False and q["unknown_share"] == pytest.approx(0.09)
    loose = QcThresholds(max_unknown=0.9)
    q = video_qc(track, per_second, info, duration_s=10.0, unknown_s={"box1": 8.95},
                 thresholds=loose)["box1"]
    assert q["needs_review"] is False


def test_thresholds_can_be_loosened():
    track = _track()
    track.loc[:59, "n_blobs"] = 2
    per_second, info = qc_per_second(track, {"box1": 5.0})
    loose = QcThresholds(max_multi_blob=0.5)
    q = video_qc(track, per_second, info, duration_s=10.0, thresholds=loose)["box1"]
    assert q["needs_review"] is False
    cols = qc_summary_columns({"box1": q}, "box1")
    assert cols["needs_review"] is False and cols["review_reasons"] == ""


def test_rows_follow_the_occupancy_seconds_including_empty_ones():
    track = _track(90)  # 3 s of frames
    seconds = pd.DataFrame({"arena": "box1", "second": np.arange(5)})
    per_second, _ = qc_per_second(track, {"box1": 5.0}, seconds=seconds)
    assert per_second["second"].tolist() == [0, 1, 2, 3, 4]
    assert per_second["qc_frames"].tolist() == [30, 30, 30, 0, 0]
    assert per_second["qc_undetected"].isna().tolist() == [False] * 3 + [True] * 2


def test_the_input_is_not_modified():
    track = _track()
    before = track.copy()
    _qc(track)
    pd.testing.assert_frame_equal(track, before)


def test_per_second_counts_equal_a_pandas_group_by():
    from cpp_tracker.analysis.qc import _per_second

    rng = np.random.default_rng(4)
    n = 5000
    t = np.sort(rng.uniform(0, 300, n))
    t[100:400] = np.linspace(20, 20.999, 300)  # a crowded second
    flags = pd.DataFrame({
        "time_s": t,
        "undetected": rng.random(n) < 0.3,
        "multi_blob": rng.random(n) < 0.1,
        "jump": rng.random(n) < 0.05,
        "area_outlier": rng.random(n) < 0.2,
    })
    flags["second"] = np.floor(flags["time_s"]).astype(np.int64)
    g = flags.groupby("second", sort=True)
    want = pd.DataFrame({
        "qc_frames": g.size(),
        "qc_undetected": g["undetected"].mean(),
        "qc_multi_blob": g["multi_blob"].mean(),
        "qc_jumps": g["jump"].sum().astype(np.int64),
        "qc_area_outlier": g["area_outlier"].mean(),
    }).reset_index()
    got = _per_second(flags.drop(columns="second"))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got["qc_undetected"].between(0.01, 0.99).sum() > 200  # shares, not 0/1 only
