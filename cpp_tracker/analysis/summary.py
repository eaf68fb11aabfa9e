"""Occupancy/track -> time-in-chamber results.

Definitions (the README repeats them):

- ``time_s``: seconds with the centroid in the chamber's piece (sum of frame durations,
  see :mod:`occupancy`). Time follows position; the hysteresis only decides visits.
- ``percent``: ``time_s`` as a percentage of the *observed* time (time with a known
  chamber). For the ``unknown`` row: percentage of the whole duration.
- A *bout* is a maximal run of frames assigned to one chamber with hysteresis (a mouse
  sitting in a doorway does not start new bouts); frames without a detection inside a run
  do not end it. ``entries`` counts the bouts in the chamber, the first one
  included when the mouse starts there.
- ``latency_s``: time from the start of the video (0 s) to the first frame of the first bout
  in the chamber; empty (NaN) when the mouse never entered it.
- ``mean_bout_s``: ``time_s / entries``.
- ``distance_px``: path length of the centroid over detected frames, counting a step only
  once the centroid has moved at least ``min_step_px`` from the last counted position, so
  that the sub-pixel jitter of a resting mouse does not add up over a night.

Time bins and named windows (``summary_bins.csv``, :func:`summarize_periods`) use the same
definitions within each period ``[start_s, end_s)``, chosen so that consecutive bins add up
to the whole session exactly:

- ``time_s``: a frame that straddles a boundary is split at the boundary.
- ``entries``: bouts that *begin* in the period (a bout running on from the previous
  period is not counted again); ``mean_bout_s`` is ``time_s / entries``.
- ``latency_s``: from the period's start to the first moment in the chamber (0 when the
  mouse is in it as the period starts).
- ``distance_px``: each counted step belongs to the frame where it is counted.
- ``frames``, ``frames_detected``: frames whose timestamp lies in the period.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..geometry.chambers import UNKNOWN
from .occupancy import cumulative_time

__all__ = [
    "SUMMARY_COLUMNS",
    "PERIOD_COLUMNS",
    "CHAMBER_MEASURES",
    "SESSION_MEASURES",
    "Period",
    "chamber_bouts",
    "path_steps",
    "path_length",
    "summarize_arena",
    "time_periods",
    "summarize_periods",
]

#: Summary columns that differ by chamber (become ``<chamber>_<measure>`` in the wide table).
CHAMBER_MEASURES = ["time_s", "percent", "entries", "latency_s", "mean_bout_s"]
#: Summary columns with one value per arena and session.
SESSION_MEASURES = [
    "duration_s",
    "observed_s",
    "unknown_s",
    "distance_px",
    "distance_cm",
    "frames",
    "frames_detected",
]
SUMMARY_COLUMNS = ["video", "arena", "animal_id", "chamber", *CHAMBER_MEASURES, *SESSION_MEASURES]


def _chamber_measures(
    time_s: float, observed_s: float, entries: int, latency_s: float
) -> dict:
    """The :data:`CHAMBER_MEASURES` of one chamber."""
    return {
        "time_s": time_s,
        "percent": 100.0 * time_s / observed_s if observed_s > 0 else np.nan,
        "entries": entries,
        "latency_s": latency_s,
        "mean_bout_s": time_s / entries if entries else np.nan,
    }


def _unknown_measures(unknown_s: float, length_s: float) -> dict:
    """The :data:`CHAMBER_MEASURES` of the ``unknown`` row: its percent is of the whole
    length, not of the observed time; no entries."""
    return {
        "time_s": unknown_s,
        "percent": 100.0 * unknown_s / length_s if length_s > 0 else np.nan,
        "entries": np.nan,
        "latency_s": np.nan,
        "mean_bout_s": np.nan,
    }


def run_bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the maximal runs of equal values."""
    starts = np.r_[0, np.flatnonzero(np.diff(values) != 0) + 1]
    return starts, np.r_[starts[1:], len(values)]


def chamber_bouts(time_s: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    """Bouts: maximal runs of one chamber, unknown frames inside a run not ending it.

    Returns columns ``chamber`` (code), ``start_s``, ``first_index``, ``last_index``.
    """
    codes = np.asarray(codes)
    idx = np.flatnonzero(codes != UNKNOWN)
    if len(idx) == 0:
        return pd.DataFrame({"chamber": [], "start_s": [], "first_index": [], "last_index": []})
    known = codes[idx]
    starts, ends = run_bounds(known)
    ends = ends - 1  # the last frame of each run
    return pd.DataFrame(
        {
            "chamber": known[starts],
            "start_s": np.asarray(time_s)[idx[starts]],
            "first_index": idx[starts],
            "last_index": idx[ends],
        }
    )


_BLOCK = 65536


def path_steps(x: np.ndarray, y: np.ndarray, min_step_px: float = 2.0) -> np.ndarray:
    """Length (px) of the step counted at each point; 0 where none is counted.

    A step is counted once the centroid is at least ``min_step_px`` from the last counted
    position (the first detected point); undetected (NaN) points are skipped.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    steps = np.zeros(len(x))
    idx = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if len(idx) < 2:
        return steps
    if min_step_px <= 0:
        steps[idx[1:]] = np.hypot(np.diff(x[idx]), np.diff(y[idx]))
        return steps
    ax, ay = float(x[idx[0]]), float(y[idx[0]])
    lim2 = min_step_px * min_step_px
    # sequential by nature: whether a step counts depends on the last counted position.
    # Plain Python floats, a block at a time (a night's track as lists would take GBs).
    for b0 in range(0, len(idx), _BLOCK):
        block = idx[b0 : b0 + _BLOCK]
        xs = x[block].tolist()
        ys = y[block].tolist()
        counted = [0.0] * len(xs)
        for i, (px, py) in enumerate(zip(xs, ys, strict=True)):
            dx = px - ax
            dy = py - ay
            d2 = dx * dx + dy * dy
            if d2 >= lim2:
                counted[i] = d2**0.5
                ax, ay = px, py
        steps[block] = counted
    return steps


def path_length(x: np.ndarray, y: np.ndarray, min_step_px: float = 2.0) -> float:
    """Path length (px) over the non-NaN points, ignoring movements below ``min_step_px``."""
    return float(path_steps(x, y, min_step_px).sum())


def summarize_arena(
    *,
    video: str,
    arena: str,
    animal_id: str | None,
    chamber_names: tuple[str, ...] | list[str],
    time_s: np.ndarray,
    durations_s: np.ndarray,
    codes: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    duration_s: float,
    px_per_cm: float | None = None,
    min_step_px: float = 2.0,
    steps_px: np.ndarray | None = None,
    time_codes: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per chamber plus one ``unknown`` row, columns :data:`SUMMARY_COLUMNS`.

    ``codes`` (chamber with hysteresis) decide the visits: entries, latency, bouts.
    ``time_codes`` (the piece the centroid lies in; default ``codes``) decide the time.
    ``steps_px``: the result of :func:`path_steps` when the caller has it already.
    """
    codes = np.asarray(codes)
    tcodes = codes if time_codes is None else np.asarray(time_codes)
    d = np.asarray(durations_s, dtype=np.float64)
    names = list(chamber_names)
    per_chamber = np.array([d[tcodes == k].sum() for k in range(len(names))])
    observed = float(per_chamber.sum())
    unknown = float(duration_s) - observed
    unknown = 0.0 if unknown < 1e-9 else unknown
    bouts = chamber_bouts(time_s, codes)
    if steps_px is None:
        steps_px = path_steps(np.asarray(x), np.asarray(y), min_step_px)
    dist_px = float(np.sum(steps_px))
    common = {
        "duration_s": float(duration_s),
        "observed_s": observed,
        "unknown_s": unknown,
        "distance_px": dist_px,
        "distance_cm": dist_px / px_per_cm if px_per_cm else np.nan,
        "frames": int(len(codes)),
        "frames_detected": int(np.isfinite(np.asarray(x, dtype=float)).sum()),
    }
    where = {"video": video, "arena": arena, "animal_id": animal_id}
    rows = []
    for k, name in enumerate(names):
        mine = bouts[bouts["chamber"] == k]
        entries = int(len(mine))
        latency = float(mine["start_s"].iloc[0]) if entries else np.nan
        measures = _chamber_measures(float(per_chamber[k]), observed, entries, latency)
        rows.append({**where, "chamber": name, **measures, **common})
    rows.append(
        {**where, "chamber": "unknown", **_unknown_measures(unknown, duration_s), **common}
    )
    return _summary_table(rows, SUMMARY_COLUMNS)


def _summary_table(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """The rows as a table; ``entries`` as nullable integers (the ``unknown`` row has none)."""
    table = pd.DataFrame(rows, columns=columns)
    table["entries"] = table["entries"].astype("Int64")
    return table


# --------------------------------------------------------------------------------------
# time bins and named windows

#: Columns of ``summary_bins.csv``: the summary columns with the period inserted.
PERIOD_COLUMNS = [
    "video",
    "arena",
    "animal_id",
    "kind",
    "period",
    "start_s",
    "end_s",
    *SUMMARY_COLUMNS[3:],
]


@dataclass(frozen=True)
class Period:
    """A stretch ``[start_s, end_s)`` of video time: a time bin or a named window."""

    kind: str  # 'bin' or 'window'
    name: str  # 'bin1', 'bin2', ... or the window's name
    start_s: float
    end_s: float  # clipped to the end of the recording


def time_periods(
    duration_s: float,
    bin_s: float | None = None,
    windows: tuple | list = (),
) -> tuple[list[Period], list[str]]:
    """The periods to summarise for a recording of ``duration_s``, and warnings.

    Bins run from 0 s in steps of ``bin_s``; the last one ends with the recording and may
    be shorter. ``windows`` (:class:`~cpp_tracker.config.settings.TimeWindow`) are clipped to the
    recording; a warning says so when one reaches past its end.
    """
    periods: list[Period] = []
    warnings: list[str] = []
    if bin_s:
        n_bins = int(np.ceil(duration_s / bin_s - 1e-9)) if duration_s > 0 else 0
        for i in range(n_bins):
            end = duration_s if i == n_bins - 1 else (i + 1) * bin_s
            periods.append(Period("bin", f"bin{i + 1}", i * bin_s, end))
    for w in windows:
        end = duration_s if w.end_s is None else min(w.end_s, duration_s)
        start = min(w.start_s, duration_s)
        if w.end_s is not None and w.end_s > duration_s + 1e-6:
            warnings.append(
                f"summary.windows.{w.name} ({w.start_s:g}-{w.end_s:g} s) reaches past the end "
                f"of the recording ({duration_s:.1f} s); it covers {start:g}-{end:.1f} s only"
            )
        periods.append(Period("window", w.name, start, end))
    return periods, warnings


def summarize_periods(
    *,
    video: str,
    arena: str,
    animal_id: str | None,
    chamber_names: tuple[str, ...] | list[str],
    time_s: np.ndarray,
    durations_s: np.ndarray,
    codes: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    periods: list[Period],
    px_per_cm: float | None = None,
    min_step_px: float = 2.0,
    steps_px: np.ndarray | None = None,
    time_codes: np.ndarray | None = None,
) -> pd.DataFrame:
    """The summary of each period: per period one row per chamber plus ``unknown``.

    Columns :data:`PERIOD_COLUMNS`; definitions in the module description. For bins that
    cover the recording, ``time_s``, ``entries``, ``distance_px`` and ``frames`` add up to
    the values of :func:`summarize_arena`. ``codes`` (with hysteresis) decide entries and
    latency, ``time_codes`` (the piece the centroid lies in; default ``codes``) the time, and
    ``steps_px`` is as for :func:`summarize_arena`.
    """
    t = np.asarray(time_s, dtype=np.float64)
    d = np.asarray(durations_s, dtype=np.float64)
    codes = np.asarray(codes)
    x = np.asarray(x, dtype=float)
    names = list(chamber_names)
    if not periods:
        return pd.DataFrame(columns=PERIOD_COLUMNS)
    starts = np.array([p.start_s for p in periods])
    ends = np.array([p.end_s for p in periods])
    tcodes = codes if time_codes is None else np.asarray(time_codes)
    per_chamber = (cumulative_time(t, d, tcodes, len(names), ends)
                   - cumulative_time(t, d, tcodes, len(names), starts))
    if steps_px is None:
        steps_px = path_steps(x, y, min_step_px)
    bouts = chamber_bouts(t, codes)
    track = _PeriodTrack(
        t, d, codes, bouts["chamber"].to_numpy(), bouts["start_s"].to_numpy(dtype=float),
        np.cumsum(np.r_[0.0, steps_px]),
        np.cumsum(np.r_[0, np.isfinite(x).astype(np.int64)]),
    )
    where = {"video": video, "arena": arena, "animal_id": animal_id}
    rows = []
    for p, chambers_s in zip(periods, per_chamber, strict=True):
        rows += _period_rows(p, chambers_s, track, names, where, px_per_cm)
    return _summary_table(rows, PERIOD_COLUMNS)


@dataclass(frozen=True)
class _PeriodTrack:
    """One arena's track as every period's summary reads it."""

    t: np.ndarray  # frame times, s
    d: np.ndarray  # frame durations, s
    codes: np.ndarray  # chamber with hysteresis
    bout_code: np.ndarray  # chamber and start (s) of each bout (:func:`chamber_bouts`)
    bout_start: np.ndarray
    steps: np.ndarray  # cumulative counted steps, px, with a leading 0
    detected: np.ndarray  # cumulative detected frames, with a leading 0


def _period_rows(p: Period, chambers_s: np.ndarray, track: _PeriodTrack, names: list[str],
                 where: dict, px_per_cm: float | None) -> list[dict]:
    """One period's rows: one per chamber plus ``unknown``."""
    t, d = track.t, track.d
    length = p.end_s - p.start_s
    observed = float(chambers_s.sum())
    unknown = length - observed
    unknown = 0.0 if abs(unknown) < 1e-9 else unknown
    first = int(np.searchsorted(t, p.start_s, side="left"))  # frames starting inside
    stop = int(np.searchsorted(t, p.end_s, side="left"))
    dist_px = float(track.steps[stop] - track.steps[first])
    # frames overlapping the period: the one running at its start, then those inside
    lead = first - 1 if first > 0 and t[first - 1] + d[first - 1] > p.start_s else first
    overlap_codes = track.codes[lead:stop]
    overlap_t = np.maximum(t[lead:stop], p.start_s)
    common = {
        **where,
        "kind": p.kind,
        "period": p.name,
        "start_s": p.start_s,
        "end_s": p.end_s,
        "duration_s": length,
        "observed_s": observed,
        "unknown_s": unknown,
        "distance_px": dist_px,
        "distance_cm": dist_px / px_per_cm if px_per_cm else np.nan,
        "frames": stop - first,
        "frames_detected": int(track.detected[stop] - track.detected[first]),
    }
    in_period = (track.bout_start >= p.start_s) & (track.bout_start < p.end_s)
    rows = []
    for j, name in enumerate(names):
        entries = int(np.count_nonzero(in_period & (track.bout_code == j)))
        hits = np.flatnonzero(overlap_codes == j)
        latency = float(overlap_t[hits[0]] - p.start_s) if len(hits) else np.nan
        measures = _chamber_measures(float(chambers_s[j]), observed, entries, latency)
        rows.append({**common, "chamber": name, **measures})
    rows.append({**common, "chamber": "unknown", **_unknown_measures(unknown, length)})
    return rows
