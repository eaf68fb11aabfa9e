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
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .geometry import UNKNOWN

__all__ = ["SUMMARY_COLUMNS", "chamber_bouts", "path_length", "summarize_arena"]

SUMMARY_COLUMNS = [
    "video",
    "arena",
    "animal_id",
    "chamber",
    "time_s",
    "percent",
    "entries",
    "latency_s",
    "mean_bout_s",
    "duration_s",
    "observed_s",
    "unknown_s",
    "distance_px",
    "distance_cm",
    "frames",
    "frames_detected",
]


def chamber_bouts(time_s: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    """Bouts: maximal runs of one chamber, unknown frames inside a run not ending it.

    Returns columns ``chamber`` (code), ``start_s``, ``first_index``, ``last_index``.
    """
    codes = np.asarray(codes)
    idx = np.flatnonzero(codes != UNKNOWN)
    if len(idx) == 0:
        return pd.DataFrame({"chamber": [], "start_s": [], "first_index": [], "last_index": []})
    known = codes[idx]
    starts = np.r_[0, np.flatnonzero(np.diff(known) != 0) + 1]
    ends = np.r_[starts[1:] - 1, len(known) - 1]
    return pd.DataFrame(
        {
            "chamber": known[starts],
            "start_s": np.asarray(time_s)[idx[starts]],
            "first_index": idx[starts],
            "last_index": idx[ends],
        }
    )


def path_length(x: np.ndarray, y: np.ndarray, min_step_px: float = 2.0) -> float:
    """Path length (px) over the non-NaN points, ignoring movements below ``min_step_px``."""
    ok = np.isfinite(x) & np.isfinite(y)
    xs = np.asarray(x)[ok].tolist()
    ys = np.asarray(y)[ok].tolist()
    if len(xs) < 2:
        return 0.0
    if min_step_px <= 0:
        return float(np.hypot(np.diff(xs), np.diff(ys)).sum())
    total = 0.0
    ax, ay = xs[0], ys[0]
    lim2 = min_step_px * min_step_px
    for px, py in zip(xs, ys, strict=True):
        dx = px - ax
        dy = py - ay
        d2 = dx * dx + dy * dy
        if d2 >= lim2:
            total += d2**0.5
            ax, ay = px, py
    return total


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
    time_codes: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per chamber plus one ``unknown`` row, columns :data:`SUMMARY_COLUMNS`.

    ``codes`` (chamber with hysteresis) decide the visits: entries, latency, bouts.
    ``time_codes`` (the piece the centroid lies in; default ``codes``) decide the time.
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
    dist_px = path_length(np.asarray(x), np.asarray(y), min_step_px)
    common = {
        "duration_s": float(duration_s),
        "observed_s": observed,
        "unknown_s": unknown,
        "distance_px": dist_px,
        "distance_cm": dist_px / px_per_cm if px_per_cm else np.nan,
        "frames": int(len(codes)),
        "frames_detected": int(np.isfinite(np.asarray(x, dtype=float)).sum()),
    }
    rows = []
    for k, name in enumerate(names):
        mine = bouts[bouts["chamber"] == k]
        entries = int(len(mine))
        rows.append(
            {
                "video": video,
                "arena": arena,
                "animal_id": animal_id,
                "chamber": name,
                "time_s": float(per_chamber[k]),
                "percent": 100.0 * per_chamber[k] / observed if observed > 0 else np.nan,
                "entries": entries,
                "latency_s": float(mine["start_s"].iloc[0]) if entries else np.nan,
                "mean_bout_s": float(per_chamber[k] / entries) if entries else np.nan,
                **common,
            }
        )
    rows.append(
        {
            "video": video,
            "arena": arena,
            "animal_id": animal_id,
            "chamber": "unknown",
            "time_s": unknown,
            "percent": 100.0 * unknown / duration_s if duration_s > 0 else np.nan,
            "entries": np.nan,
            "latency_s": np.nan,
            "mean_bout_s": np.nan,
            **common,
        }
    )
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    table["entries"] = table["entries"].astype("Int64")
    return table
