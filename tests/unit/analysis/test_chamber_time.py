"""Time per chamber by position and by visit, recomputed from a track."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpp_tracker.analysis.chamber_time import chamber_times
from cpp_tracker.config.settings import parse_config
from tests.handmade_results import TWO_CHAMBERS, segments_track


def _arena():
    return parse_config(TWO_CHAMBERS, source="t.yaml").arenas[0]


def test_a_stop_just_past_the_door_is_position_time_but_not_a_visit():
    """10 s left, 5 s 3 px past the door (x = 103), 5 s left again: by position 5 s are
    right's; by visit with a 6 px margin the mouse never entered right; with 0 px it did."""
    track = segments_track([("left", 10), ((103.0, 50.0), 5), ("left", 5)], fps=10)
    arena = _arena()
    by_position = chamber_times(track, arena, hysteresis_px=6, by="position")
    assert by_position["left"] == pytest.approx(15.0)
    assert by_position["right"] == pytest.approx(5.0)
    assert by_position["unknown"] == pytest.approx(0.0, abs=1e-9)
    by_visit = chamber_times(track, arena, hysteresis_px=6, by="visit")
    assert by_visit["left"] == pytest.approx(20.0) and by_visit["right"] == 0.0
    by_visit_0 = chamber_times(track, arena, hysteresis_px=0, by="visit")
    assert by_visit_0["right"] == pytest.approx(5.0, abs=0.1)


def test_frames_without_a_detection_are_unknown_time():
    track = segments_track([(None, 4), ("right", 6)], fps=10)
    times = chamber_times(track, _arena(), hysteresis_px=6)
    assert times == pytest.approx({"left": 0.0, "right": 6.0, "unknown": 4.0})


def test_an_unknown_time_base_is_refused():
    track = pd.DataFrame({"time_s": [0.0], "x": [1.0], "y": [1.0], "detected": [True]})
    with pytest.raises(ValueError, match="by must be one of"):
        chamber_times(track, _arena(), hysteresis_px=6, by="bout")
    assert np.isfinite(chamber_times(track, _arena(), hysteresis_px=6)["left"])


def test_time_by_position_recomputed_from_a_stored_track_is_the_summarys(tmp_path):
    """What the sensitivity analysis reads back (the stored track, its config) gives the
    stored summary's times again."""
    from cpp_tracker.results.stored import load_result
    from tests.handmade_results import write_result

    folder = write_result(tmp_path / "r", [("left", 7), ((103.0, 50.0), 3), (None, 2),
                                           ("right", 8)])
    stored = load_result(folder)
    times = chamber_times(stored.track(), stored.config.arenas[0], hysteresis_px=6,
                          nominal_interval_s=0.1)
    summary = stored.summary().set_index("chamber")["time_s"]
    for chamber in ("left", "right", "unknown"):
        assert times[chamber] == pytest.approx(summary[chamber], abs=1e-6)
    assert times["right"] == pytest.approx(11.0)
