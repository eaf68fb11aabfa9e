"""Track -> per-second occupancy, from the frame timestamps.

Each frame lasts from its own timestamp until the next frame's. Where the next frame comes
much later than usual (more than ``gap_factor`` times the median frame interval: dropped or
lost frames, an undecodable stretch), the frame lasts one median interval and the rest of
the interval is *unobserved*: it is counted as ``unknown``, never spread over the
neighbouring frames. The last frame lasts one median interval.

The timeline runs from 0 s (the start of the video's time base) to the end of the last
frame; occupancy row ``s`` covers ``[s, s + 1)`` s, and its values (seconds in each chamber
and ``unknown``) sum to the length of that second (1 s, or less for the last one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["TimeBase", "frame_durations", "occupancy_per_second", "cumulative_time"]


@dataclass(frozen=True)
class TimeBase:
    """How long each frame counts for, and where the recording has gaps."""

    durations_s: np.ndarray  # per frame, seconds
    median_interval_s: float
    end_s: float  # end of the last frame
    gaps: tuple[tuple[float, float], ...]  # (start_s, end_s) of unobserved stretches

    @property
    def observed_s(self) -> float:
        return float(self.durations_s.sum())

    def gap_list(self) -> list[dict]:
        """Gaps as plain data for run.json."""
        return [
            {"start_s": round(a, 6), "end_s": round(b, 6), "missing_s": round(b - a, 6)}
            for a, b in self.gaps
        ]


def frame_durations(
    time_s: np.ndarray, gap_factor: float = 2.5, nominal_interval_s: float | None = None
) -> TimeBase:
    """Duration of each frame from the timestamps (see the module description)."""
    t = np.asarray(time_s, dtype=np.float64)
    n = len(t)
    if n == 0:
        return TimeBase(np.zeros(0), nominal_interval_s or 0.0, 0.0, ())
    intervals = np.diff(t)
    if len(intervals):
        median = float(np.median(intervals))
    else:
        median = float(nominal_interval_s or 1.0 / 30.0)
    if median <= 0:
        median = float(nominal_interval_s or 1.0 / 30.0)
    limit = gap_factor * median
    d = np.empty(n)
    d[:-1] = np.where(intervals > limit, median, intervals)
    d[-1] = median
    gap_idx = np.flatnonzero(intervals > limit)
    gaps = tuple((float(t[i] + median), float(t[i + 1])) for i in gap_idx)
    return TimeBase(d, median, float(t[-1] + median), gaps)


def cumulative_time(
    time_s: np.ndarray,
    durations_s: np.ndarray,
    codes: np.ndarray,
    n_chambers: int,
    boundaries: np.ndarray,
) -> np.ndarray:
    """Time spent in each chamber from 0 up to each boundary, shape (len(boundaries), k).

    Exact for any boundaries: frames are intervals ``[t_i, t_i + d_i)`` that do not overlap.
    """
    t = np.asarray(time_s, dtype=np.float64)
    d = np.asarray(durations_s, dtype=np.float64)
    codes = np.asarray(codes)
    b = np.asarray(boundaries, dtype=np.float64)
    out = np.zeros((len(b), n_chambers))
    if len(t) == 0:
        return out
    onehot = np.zeros((len(t), n_chambers))
    known = codes >= 0
    onehot[np.flatnonzero(known), codes[known].astype(int)] = 1.0
    cum = np.zeros((len(t) + 1, n_chambers))
    np.cumsum(onehot * d[:, None], axis=0, out=cum[1:])
    j = np.searchsorted(t, b, side="right") - 1  # last frame starting at or before b
    has = j >= 0
    jj = np.clip(j, 0, None)
    partial = np.minimum(np.clip(b - t[jj], 0, None), d[jj])
    out[:] = cum[jj] + onehot[jj] * partial[:, None]
    out[~has] = 0.0
    return out


def occupancy_per_second(
    time_s: np.ndarray,
    durations_s: np.ndarray,
    codes: np.ndarray,
    chamber_names: tuple[str, ...] | list[str],
    end_s: float,
    bin_s: float = 1.0,
) -> pd.DataFrame:
    """Seconds in each chamber and ``unknown`` for each bin of video time.

    Returns a DataFrame with columns ``second`` (bin start, s), one per chamber (config
    order) and ``unknown``; each row sums to the bin's length.
    """
    names = list(chamber_names)
    n_bins = int(np.ceil(end_s / bin_s - 1e-9)) if end_s > 0 else 0
    starts = np.arange(n_bins) * bin_s
    bounds = np.minimum(np.append(starts, n_bins * bin_s), end_s)
    cum = cumulative_time(time_s, durations_s, codes, len(names), bounds)
    per = np.diff(cum, axis=0)
    lengths = np.diff(bounds)
    unknown = lengths - per.sum(axis=1)
    unknown[np.abs(unknown) < 1e-9] = 0.0
    table = pd.DataFrame(per, columns=names)
    table.insert(0, "second", starts.astype(np.int64) if float(bin_s).is_integer() else starts)
    table["unknown"] = unknown
    return table
