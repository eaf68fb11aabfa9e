"""Quality flags from the track table: which seconds, and which videos, to look at.

Works on a stored track alone (``frame, time_s, arena, x, y, area_px, detected,
n_blobs``), so it can be recomputed from ``track.parquet``. Per arena and second of video
time (the rows of ``occupancy.csv``):

- ``qc_frames``: frames in the second;
- ``qc_undetected``: share of them without a detection;
- ``qc_multi_blob``: share with more than one blob within the size limits (competing
  blobs: a second object, a reflection, the mouse split in two);
- ``qc_jumps``: implausible jumps ending in the second: the centroid moved between two
  consecutive detections faster than ``qc.max_speed_cm_s`` (a mouse runs at most about
  100 cm/s) and by more than half a body length. Without a scale, 1 cm is taken as
  ``sqrt(typical area / 20)`` px (a mouse's body seen from above covers about 20 cm²);
- ``qc_area_outlier``: share of detections whose area is under half or over twice the
  recording's typical (median) area;
- ``qc_flag``: the second is worth a look: half or more of its frames undetected, with
  competing blobs or with an odd area, or a jump in it.

Per arena, :func:`video_qc` sums these up and sets ``needs_review`` when a figure passes
its threshold (``qc`` settings; the README lists them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "QC_SECOND_COLUMNS",
    "QC_SUMMARY_COLUMNS",
    "MOUSE_BODY_AREA_CM2",
    "QcThresholds",
    "qc_per_second",
    "video_qc",
    "qc_summary_columns",
]

#: Columns added to occupancy.csv, in order.
QC_SECOND_COLUMNS = ["qc_frames", "qc_undetected", "qc_multi_blob", "qc_jumps",
                     "qc_area_outlier", "qc_flag"]

#: Columns added at the end of summary.csv, in order (the same on every row of an arena).
QC_SUMMARY_COLUMNS = [
    "qc_undetected",
    "qc_multi_blob",
    "qc_jumps",
    "qc_area_outlier",
    "qc_unobserved_s",
    "qc_flagged_s",
    "needs_review",
    "review_reasons",
]

#: Area of a mouse's body (without tail) seen from above, cm²: gives a px scale when the
#: config has none.
MOUSE_BODY_AREA_CM2 = 20.0

#: An area this many times above (or below 1/this of) the typical area is an outlier.
AREA_OUTLIER_FACTOR = 2.0


@dataclass(frozen=True)
class QcThresholds:
    """When a video needs review (each a share of frames, unless said otherwise)."""

    max_speed_cm_s: float = 100.0
    max_undetected: float = 0.05
    max_multi_blob: float = 0.05
    max_area_outlier: float = 0.05
    max_jumps_per_min: float = 0.5  # per minute of recording
    max_unobserved: float = 0.02  # share of the duration lost to gaps / undecodable frames
    min_read_fraction: float = 0.98  # of the container's nominal length
    max_unknown: float = 0.10  # share of the duration in no chamber


def _typical_area(area: np.ndarray) -> float:
    a = area[np.isfinite(area)]
    return float(np.median(a)) if len(a) else float("nan")


def _speed_limit_px_s(area_px: float, px_per_cm: float | None, max_speed_cm_s: float):
    """(limit px/s, px per cm used, where the scale came from)."""
    if px_per_cm:
        return max_speed_cm_s * px_per_cm, px_per_cm, "config"
    if np.isfinite(area_px) and area_px > 0:
        ppc = float(np.sqrt(area_px / MOUSE_BODY_AREA_CM2))
        return max_speed_cm_s * ppc, ppc, "typical blob area"
    return float("inf"), None, "none"


def _jumps(t: np.ndarray, x: np.ndarray, y: np.ndarray, limit_px_s: float,
           min_jump_px: float) -> np.ndarray:
    """Bool per frame: a detection reached by an implausible jump from the previous one."""
    out = np.zeros(len(t), dtype=bool)
    det = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if len(det) < 2:
        return out
    dist = np.hypot(np.diff(x[det]), np.diff(y[det]))
    dt = np.diff(t[det])
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(dt > 0, dist / dt, np.inf)
    out[det[1:]] = (speed > limit_px_s) & (dist > min_jump_px)
    return out


def _arena_frame_flags(sub: pd.DataFrame, px_per_cm: float | None, th: QcThresholds):
    t = sub["time_s"].to_numpy(dtype=float)
    x = sub["x"].to_numpy(dtype=float)
    y = sub["y"].to_numpy(dtype=float)
    area = sub["area_px"].to_numpy(dtype=float)
    det = sub["detected"].to_numpy(dtype=bool)
    blobs = sub["n_blobs"].to_numpy() if "n_blobs" in sub else np.zeros(len(sub))
    typical = _typical_area(np.where(det, area, np.nan))
    limit, ppc, scale_source = _speed_limit_px_s(typical, px_per_cm, th.max_speed_cm_s)
    min_jump = 0.5 * 2.0 * np.sqrt(typical / np.pi) if np.isfinite(typical) else 0.0
    jumps = _jumps(t, np.where(det, x, np.nan), np.where(det, y, np.nan), limit, min_jump)
    with np.errstate(invalid="ignore"):
        odd_area = det & ((area > AREA_OUTLIER_FACTOR * typical)
                          | (area < typical / AREA_OUTLIER_FACTOR))
    flags = pd.DataFrame({
        "time_s": t,
        "undetected": ~det,
        "multi_blob": np.asarray(blobs) > 1,
        "jump": jumps,
        "area_outlier": odd_area,
    })
    info = {
        "typical_area_px": None if not np.isfinite(typical) else round(typical, 1),
        "max_speed_px_s": None if not np.isfinite(limit) else round(limit, 1),
        "px_per_cm_used": None if ppc is None else round(ppc, 4),
        "scale_source": scale_source,
    }
    return flags, info


def _per_second(flags: pd.DataFrame) -> pd.DataFrame:
    """Frames, shares of flagged frames and jumps per second of one arena's frame flags
    (a group-by of the seconds, by counting: the shares are the same sums over counts)."""
    second = np.floor(flags["time_s"].to_numpy(dtype=float)).astype(np.int64)
    seconds, at, frames = np.unique(second, return_inverse=True, return_counts=True)

    def share(column: str) -> np.ndarray:
        flagged = flags[column].to_numpy(dtype=float)
        return np.bincount(at, weights=flagged, minlength=len(seconds)) / frames

    jumps = np.bincount(at[flags["jump"].to_numpy(dtype=bool)], minlength=len(seconds))
    return pd.DataFrame({
        "second": seconds.astype(np.int64),
        "qc_frames": frames.astype(np.int64),
        "qc_undetected": share("undetected"),
        "qc_multi_blob": share("multi_blob"),
        "qc_jumps": jumps.astype(np.int64),
        "qc_area_outlier": share("area_outlier"),
    })


def qc_per_second(
    track: pd.DataFrame,
    px_per_cm: dict[str, float | None] | None = None,
    thresholds: QcThresholds | None = None,
    seconds: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """Per-second quality columns for every arena of ``track``.

    Returns ``(table, info)``: ``table`` has ``arena``, ``second`` and
    :data:`QC_SECOND_COLUMNS`; where ``seconds`` (rows ``arena, second``, e.g. the
    occupancy table) is given, the table has exactly its rows (seconds without frames:
    ``qc_frames`` 0, shares empty). ``info``: per arena, the typical area and the speed
    limit used. ``track`` is not modified.
    """
    th = thresholds or QcThresholds()
    px_per_cm = px_per_cm or {}
    tables = []
    info: dict[str, dict] = {}
    arena_col = track["arena"].astype(str)
    for name in pd.unique(arena_col):
        sub = track[arena_col == name]
        flags, info[name] = _arena_frame_flags(sub, px_per_cm.get(name), th)
        table = _per_second(flags)
        table.insert(0, "arena", name)
        tables.append(table)
    cols = ["arena", "second", *QC_SECOND_COLUMNS]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=cols[:-1])
    if seconds is not None:
        table = seconds[["arena", "second"]].merge(table, on=["arena", "second"], how="left")
        table["qc_frames"] = table["qc_frames"].fillna(0).astype(np.int64)
        table["qc_jumps"] = table["qc_jumps"].fillna(0).astype(np.int64)
    table["qc_flag"] = (
        (table["qc_undetected"] >= 0.5)
        | (table["qc_multi_blob"] >= 0.5)
        | (table["qc_area_outlier"] >= 0.5)
        | (table["qc_jumps"] > 0)
    ).astype(bool)
    return table[cols], info


def _frame_share(per_second: pd.DataFrame, column: str, n_frames: int) -> float:
    """Whole-video share of frames from a per-second share column."""
    v = per_second[column].to_numpy(dtype=float)
    frames = per_second["qc_frames"].to_numpy()
    ok = np.isfinite(v)
    return float((v[ok] * frames[ok]).sum() / n_frames)


def video_qc(
    track: pd.DataFrame,
    per_second: pd.DataFrame,
    info: dict[str, dict],
    *,
    duration_s: float,
    unobserved_s: float = 0.0,
    read_fraction: float | None = None,
    thresholds: QcThresholds | None = None,
    unknown_s: dict[str, float] | None = None,
    doubts: Sequence[str] = (),
) -> dict[str, dict]:
    """Per-arena QC figures, ``needs_review`` and its reasons (for run.json and summary.csv).

    ``unobserved_s``: time lost to gaps in the timestamps; ``read_fraction``: share of the
    container's nominal length that was read (None when unknown); ``unknown_s``: per arena,
    the time in no chamber; ``doubts``: reasons found before the analysis that put every
    arena's numbers in doubt (an automatic trial start that was not found).
    """
    th = thresholds or QcThresholds()
    out: dict[str, dict] = {}
    arena_col = track["arena"].astype(str)
    minutes = max(duration_s, 1e-9) / 60.0
    for name, sec in per_second.groupby("arena", sort=False):
        sub = track[arena_col == name]
        n = max(1, len(sub))
        undetected = float((~sub["detected"].to_numpy(dtype=bool)).sum() / n)
        multi = _frame_share(sec, "qc_multi_blob", n)
        odd = _frame_share(sec, "qc_area_outlier", n)
        jumps = int(sec["qc_jumps"].sum())
        unobserved = float(unobserved_s) / max(duration_s, 1e-9)
        reasons = []
        if undetected > th.max_undetected:
            reasons.append(f"no detection in {100 * undetected:.1f} % of frames "
                           f"(limit {100 * th.max_undetected:g} %)")
        if multi > th.max_multi_blob:
            reasons.append(f"competing blobs in {100 * multi:.1f} % of frames "
                           f"(limit {100 * th.max_multi_blob:g} %)")
        if odd > th.max_area_outlier:
            reasons.append(f"blob area far from typical in {100 * odd:.1f} % of frames "
                           f"(limit {100 * th.max_area_outlier:g} %)")
        if jumps / minutes > th.max_jumps_per_min:
            reasons.append(f"{jumps} implausible jumps ({jumps / minutes:.2f} per minute, "
                           f"limit {th.max_jumps_per_min:g})")
        if unobserved > th.max_unobserved:
            reasons.append(f"{unobserved_s:.1f} s ({100 * unobserved:.1f} %) lost in gaps "
                           f"(limit {100 * th.max_unobserved:g} %)")
        if read_fraction is not None and read_fraction < th.min_read_fraction:
            reasons.append(f"only {100 * read_fraction:.1f} % of the nominal length read "
                           f"(limit {100 * th.min_read_fraction:g} %)")
        unknown = None
        if unknown_s is not None and str(name) in unknown_s:
            unknown = float(unknown_s[str(name)]) / max(duration_s, 1e-9)
            if unknown > th.max_unknown:
                reasons.append(f"in no chamber for {100 * unknown:.1f} % of the time "
                               f"(limit {100 * th.max_unknown:g} %)")
        reasons.extend(doubts)
        out[str(name)] = {
            "frames": int(len(sub)),
            "undetected_share": round(undetected, 6),
            "multi_blob_share": round(multi, 6),
            "jumps": jumps,
            "jumps_per_min": round(jumps / minutes, 4),
            "area_outlier_share": round(odd, 6),
            "unobserved_s": round(float(unobserved_s), 4),
            "flagged_seconds": int(sec["qc_flag"].sum()),
            "unknown_share": None if unknown is None else round(unknown, 6),
            **info.get(str(name), {}),
            "needs_review": bool(reasons),
            "review_reasons": reasons,
        }
    return out


def qc_summary_columns(qc: dict[str, dict], arena: str) -> dict:
    """The :data:`QC_SUMMARY_COLUMNS` values of one arena."""
    q = qc[arena]
    return {
        "qc_undetected": q["undetected_share"],
        "qc_multi_blob": q["multi_blob_share"],
        "qc_jumps": q["jumps"],
        "qc_area_outlier": q["area_outlier_share"],
        "qc_unobserved_s": q["unobserved_s"],
        "qc_flagged_s": q["flagged_seconds"],
        "needs_review": q["needs_review"],
        "review_reasons": "; ".join(q["review_reasons"]),
    }
