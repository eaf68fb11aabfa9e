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
    before = logg.rolling(w, min_periods=max(1, w // 2)).median().shift(1)
    after = logg[::-1].rolling(w, min_periods=max(1, w // 2)).median()[::-1]
    jump = (after - before).abs().to_numpy(copy=True)
    jump[~np.isfinite(jump)] = 0.0
    above = jump > limit
    cuts: list[int] = []
    i = 0
    while i < n:
        if above[i]:
            j = i
            while j + 1 < n and above[j + 1]:
                j += 1
            # the change happens at the largest frame-to-frame step within the stretch
            lo, hi = max(1, i - w), min(n, j + w + 1)
            steps = np.abs(np.diff(logg.to_numpy()[lo - 1 : hi]))
            steps[~np.isfinite(steps)] = 0.0
            cuts.append(lo + int(np.argmax(steps)))
            i = j + 1
        else:
            i += 1
    return cuts


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
