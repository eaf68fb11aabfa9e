"""Time per chamber of one arena's track, by position or by visit, at any hysteresis.

``track`` counts time by *position* (the piece the centroid lies in) and visits by the
chamber with hysteresis (:func:`chamber_codes` gives both, as ``track`` computes them).
:func:`chamber_times` recomputes an arena's seconds per chamber from a stored track under
another choice: time by *visit* (the chamber with hysteresis, so a stop just past a door
line counts for the chamber the mouse came from), or another hysteresis margin. The
experiment's sensitivity analysis asks it how much a conclusion depends on these choices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..geometry.chambers import assign_chambers_and_pieces, build_layout
from .occupancy import cumulative_time, frame_durations

__all__ = ["TIME_BASES", "chamber_codes", "chamber_times"]

#: How time is given to chambers: the piece the centroid lies in, or the chamber with
#: hysteresis (the visit).
TIME_BASES = ("position", "visit")


def chamber_codes(
    arena, x: np.ndarray, y: np.ndarray, detected: np.ndarray, hysteresis_px: float,
    backdate_crossings: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the chamber with hysteresis (visits) and the piece the centroid lies in
    (time), as codes (-1 = unknown)."""
    layout = build_layout(arena, hysteresis_px, backdate_crossings)
    # Visits (entries, bouts, latency) follow the chamber with hysteresis, so a mouse
    # sitting in a doorway is not counted as entering again and again. Time follows the
    # piece the centroid lies in: a stop a few px past a door line that never passes
    # the margin is time in that piece, not in the chamber the mouse came from.
    visit_codes, _, position_codes = assign_chambers_and_pieces(x, y, detected, layout)
    return visit_codes, position_codes


def chamber_times(
    track: pd.DataFrame,
    arena,
    *,
    hysteresis_px: float,
    backdate_crossings: bool = True,
    by: str = "position",
    gap_factor: float = 2.5,
    nominal_interval_s: float | None = None,
) -> dict[str, float]:
    """Seconds in each chamber of ``arena`` (config order) and ``unknown``, from the rows of
    ``track`` (``time_s, x, y, detected``, frame order) that belong to it.

    ``by``: ``position`` (as ``track`` counts time) or ``visit`` (the chamber with
    hysteresis). Frame durations and gaps as in :mod:`cpp_tracker.analysis.occupancy`.
    """
    if by not in TIME_BASES:
        raise ValueError(f"by must be one of {', '.join(TIME_BASES)}, got {by!r}")
    time_s = track["time_s"].to_numpy(dtype=float)
    detected = track["detected"].to_numpy(dtype=bool)
    x = track["x"].to_numpy(dtype=float)
    y = track["y"].to_numpy(dtype=float)
    visit, position = chamber_codes(arena, x, y, detected, hysteresis_px, backdate_crossings)
    codes = position if by == "position" else visit
    timebase = frame_durations(time_s, gap_factor, nominal_interval_s)
    names = list(arena.chamber_names)
    total = cumulative_time(time_s, timebase.durations_s, codes, len(names),
                            np.array([timebase.end_s]))[0]
    out = {name: float(t) for name, t in zip(names, total, strict=True)}
    out["unknown"] = float(timebase.end_s - total.sum())
    return out
