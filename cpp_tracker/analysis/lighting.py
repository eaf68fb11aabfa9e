"""Lighting through the night: the brightness of every frame, and the periods it falls into.

While tracking, each arena's detector measures the frame's *gain*: the median, over a grid
of about 2000 floor pixels, of frame / background (the mouse covers a few per cent of the
floor, so the median ignores it). The background and the threshold are scaled by that
gain, so slow drift and abrupt switches are followed frame by frame; the gain is kept in
the track (column ``light_gain``).

:func:`find_lighting_periods` reads that column afterwards: an *abrupt change* is a change
of the running median of the gain by more than ``min_step`` (15 %) from the ``window_s``
before a frame to the ``window_s`` after it; the stretches between changes are the
lighting periods listed in ``run.json``. Slow drift within a period is reported as the
period's gain range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = ["LightingPeriod", "find_lighting_periods", "lighting_report"]


@dataclass(frozen=True)
class LightingPeriod:
    """A stretch of the recording without abrupt lighting changes."""

    start_s: float
    end_s: float
    first_frame: int
    gain_median: float
    gain_min: float  # 1st percentile: drift within the period
    gain_max: float  # 99th percentile


def find_lighting_periods(
    frame: np.ndarray,
    time_s: np.ndarray,
    gain: np.ndarray,
    *,
    end_s: float | None = None,
    min_step: float = 0.15,
    window_s: float = 1.0,
) -> list[LightingPeriod]:
    """Split a recording into lighting periods at abrupt changes of the frame gain.

    Parameters
    ----------
    frame, time_s, gain
        One value per frame, in time order (the gain: brightness relative to the
        background, see the module text).
    end_s
        End of the recording (default: the last frame's time).
    min_step
        Smallest relative change counted as abrupt (0.15 = 15 %).
    window_s
        Length of the running medians compared before and after each frame.
    """
    frame = np.asarray(frame)
    t = np.asarray(time_s, dtype=float)
    g = np.asarray(gain, dtype=float)
    n = len(t)
    if n == 0:
        return []
    end = float(end_s) if end_s is not None else float(t[-1])
    ok = np.isfinite(g) & (g > 0)
    logg = pd.Series(np.where(ok, np.log(np.where(ok, g, 1.0)), np.nan))
    dt = float(np.median(np.diff(t))) if n > 1 else 1.0
    w = max(3, int(round(window_s / max(dt, 1e-6))))
    cuts = _abrupt_changes(logg, w, np.log1p(min_step))
    bounds = [0, *cuts, n]
    periods = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b <= a:
            continue
        seg = g[a:b][ok[a:b]]
        med = float(np.median(seg)) if len(seg) else float("nan")
        lo = float(np.percentile(seg, 1)) if len(seg) else float("nan")
        hi = float(np.percentile(seg, 99)) if len(seg) else float("nan")
        periods.append(
            LightingPeriod(
                start_s=0.0 if a == 0 else float(t[a]),
                end_s=end if b == n else float(t[b]),
                first_frame=int(frame[a]),
                gain_median=med,
                gain_min=lo,
                gain_max=hi,
            )
        )
    return periods


def _abrupt_changes(logg: pd.Series, w: int, limit: float) -> list[int]:
    """The frames where the log gain changes abruptly: where the running medians over ``w``
    frames before and after a frame differ by more than ``limit``, one cut per stretch of
    such frames, at its largest frame-to-frame step."""
    n = len(logg)
    values = logg.to_numpy()
    ending, starting = _running_medians(values, w, max(1, w // 2))
    before = np.r_[np.nan, ending[:-1]]
    jump = np.abs(starting - before)
    jump[~np.isfinite(jump)] = 0.0
    # the stretches of frames above the limit: from each rise (+1) to the next fall (-1)
    edges = np.diff(np.r_[0, (jump > limit).astype(np.int8), 0])
    cuts: list[int] = []
    for i, j in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True):
        # the change happens at the largest frame-to-frame step within the stretch
        lo, hi = max(1, int(i) - w), min(n, int(j) + w + 1)
        steps = np.abs(np.diff(values[lo - 1 : hi]))
        steps[~np.isfinite(steps)] = 0.0
        cuts.append(lo + int(np.argmax(steps)))
    return cuts


def _running_medians(values: np.ndarray, w: int, min_periods: int) -> tuple[np.ndarray, np.ndarray]:
    """The medians of the ``w`` values ending at each one and of the ``w`` starting at each
    one (fewer at the ends, NaN below ``min_periods``), as pandas' rolling medians give them.

    Both share their full windows: those are sorted once, by partitioning around the
    middle (no NaN: the middle one, or the mean of the middle two, as pandas takes them).
    A frame without a gain (NaN) leaves it all to pandas.
    """
    n = len(values)
    if n < w or not np.isfinite(values).all():
        ending = pd.Series(values).rolling(w, min_periods=min_periods).median().to_numpy()
        starting = pd.Series(values[::-1]).rolling(w, min_periods=min_periods).median()
        return ending, starting.to_numpy()[::-1]
    windows = np.lib.stride_tricks.sliding_window_view(values, w)
    middle = np.partition(windows, ((w - 1) // 2, w // 2), axis=1)
    full = middle[:, w // 2] if w % 2 else (middle[:, w // 2] + middle[:, w // 2 - 1]) / 2
    head = pd.Series(values[: w - 1]).rolling(w, min_periods=min_periods).median()
    tail = pd.Series(values[n - w + 1 :][::-1]).rolling(w, min_periods=min_periods).median()
    return np.r_[head.to_numpy(), full], np.r_[full, tail.to_numpy()[::-1]]


def lighting_report(periods: list[LightingPeriod], followed: bool) -> dict:
    """The ``lighting`` block of run.json."""
    rows = []
    for p in periods:
        d = asdict(p)
        for k in ("start_s", "end_s"):
            d[k] = round(d[k], 4)
        for k in ("gain_median", "gain_min", "gain_max"):
            d[k] = None if not np.isfinite(d[k]) else round(d[k], 4)
        rows.append(d)
    return {
        "followed": bool(followed),
        "abrupt_changes": max(0, len(periods) - 1),
        "periods": rows,
    }
