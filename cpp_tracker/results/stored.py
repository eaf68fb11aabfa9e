"""Read a stored result folder (``OUTDIR/<stem>/``) for pictures, review clips and reports.

A result folder holds ``run.json`` (always, written last; read as a
:class:`~cpp_tracker.results.record.RunRecord`), ``track.parquet``, ``occupancy.csv``,
``summary.csv`` and ``background.png``. Parts that older versions did not write (the ``qc``
and ``lighting`` blocks of the record, per-second QC columns in ``occupancy.csv``) are read
defensively: when they are absent the readers here return empty tables, never fail.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.settings import Config, parse_config
from ..errors import ConfigError, OutputError
from .outputs import read_track
from .record import RUN_FILE, RunRecord, read_run_record

__all__ = [
    "StoredResult",
    "load_result",
    "find_result_dirs",
    "is_result_dir",
    "PREVIOUS_DIR",
    "flagged_seconds",
    "has_qc_flags",
    "resolve_video",
]

#: Where ``reprocess --keep-previous`` keeps earlier results inside a result folder.
PREVIOUS_DIR = "previous"

#: Columns of ``occupancy.csv`` (or ``qc.csv``) read as per-second QC flags when present.
_FLAG_NAMES = ("flagged", "needs_review", "flag")
_FLAG_PREFIXES = ("flag_", "qc_flag")


@dataclass(frozen=True)
class StoredResult:
    """One result folder: its run record and resolved configuration, files read on demand."""

    result_dir: Path
    record: RunRecord
    config: Config

    @property
    def name(self) -> str:
        """The video's file stem (the folder's name)."""
        return self.result_dir.name

    @property
    def video_label(self) -> str:
        return self.record.video_label or self.result_dir.name

    @property
    def duration_s(self) -> float | None:
        value = self.record.time_base.duration_s
        return float(value) if _finite(value) else None

    @property
    def frame_interval_s(self) -> float:
        value = self.record.time_base.median_interval_s
        return float(value) if _finite(value) and value > 0 else 1.0 / 30.0

    def background(self) -> np.ndarray | None:
        """The stored background image (grayscale uint8), or None when missing."""
        import cv2

        path = self.result_dir / "background.png"
        if not path.exists():
            return None
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        return image

    def track(self, columns: list[str] | None = None) -> pd.DataFrame:
        """``track.parquet`` (all columns, or ``columns``)."""
        return read_track(self.result_dir / "track.parquet", columns)

    def occupancy(self) -> pd.DataFrame:
        return _read_csv(self.result_dir / "occupancy.csv")

    def summary(self) -> pd.DataFrame:
        return _read_csv(self.result_dir / "summary.csv")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise OutputError(f"{path}: not found; run 'cpp-tracker track' again") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise OutputError(f"{path}: cannot be read ({e}); run 'cpp-tracker track' again") from None


def load_result(result_dir: str | Path) -> StoredResult:
    """Open a result folder written by ``cpp-tracker track``.

    Raises :class:`~cpp_tracker.errors.OutputError` when the folder or its ``run.json`` is
    missing or unreadable, or its stored configuration is not valid.
    """
    result_dir = Path(result_dir)
    if not result_dir.is_dir():
        raise OutputError(f"{result_dir}: no such folder; give a folder written by 'track'")
    run_path = result_dir / RUN_FILE
    if not run_path.exists():
        raise OutputError(
            f"{result_dir}: has no run.json, so it is not a finished result of 'cpp-tracker "
            "track'; run track (again) for this video"
        )
    record = read_run_record(result_dir)
    resolved = record.config.resolved
    if not isinstance(resolved, dict):
        raise OutputError(f"{run_path}: has no config.resolved; run 'cpp-tracker track' again")
    try:
        config = parse_config(dict(resolved), source=f"{run_path} (config.resolved)")
    except ConfigError as e:
        raise OutputError(f"{e}; run 'cpp-tracker track' again") from None
    return StoredResult(result_dir, record, config)


def is_result_dir(folder: Path) -> bool:
    """Whether ``folder`` holds a finished result (``run.json`` is written last)."""
    return (folder / RUN_FILE).is_file()


def find_result_dirs(
    paths: str | Path | Sequence[str | Path], *, allow_empty: bool = False
) -> list[Path]:
    """Result folders at or below ``paths``, each once, in the order of ``paths`` and, below
    each, of a sorted walk.

    A path may be one result folder (``OUT/<stem>/``) or any folder above result folders
    (a ``track`` or ``batch`` output folder). Earlier results kept by ``reprocess
    --keep-previous`` (``<result>/previous/<hash>/``) and hidden folders (``.partial``) are
    not searched. Raises :class:`OutputError` for a path that does not exist or is a file,
    and (unless ``allow_empty``) for one that holds no result.
    """
    found: list[Path] = []
    for raw in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(raw)
        if not path.exists():
            raise OutputError(f"{path}: no such folder; give the --out folder of track or batch")
        if not path.is_dir():
            raise OutputError(f"{path}: is a file; give the result folder that holds run.json")
        here = [path] if is_result_dir(path) else _result_dirs_below(path)
        if not here and not allow_empty:
            raise OutputError(
                f"{path}: holds no result folder (no run.json below it); give the --out "
                "folder of track or batch"
            )
        found.extend(p for p in here if p not in found)
    return found


def _result_dirs_below(folder: Path) -> list[Path]:
    here = []
    for root, dirs, _files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != PREVIOUS_DIR and not d.startswith("."))
        if is_result_dir(Path(root)):
            here.append(Path(root))
    return here


def _truthy(series: pd.Series) -> np.ndarray:
    if series.dtype == bool:
        return series.to_numpy()
    if pd.api.types.is_numeric_dtype(series):
        return series.fillna(0).to_numpy() != 0
    text = series.astype(str).str.strip().str.lower()
    return text.isin(["true", "1", "yes", "y"]).to_numpy()


def _flags_from_table(table: pd.DataFrame) -> pd.DataFrame:
    cols = _flag_columns(table.columns)
    if not cols or "second" not in table.columns:
        return pd.DataFrame(columns=["arena", "second", "reason"])
    rows = []
    if "qc_flag" in cols:
        cols.remove("qc_flag")
        rows.extend(_qc_flag_rows(table))
    if "arena" in table.columns:
        arena = table["arena"].astype(str)
    else:
        arena = pd.Series("", index=table.index)
    for c in cols:
        hit = _truthy(table[c])
        reason = c.removeprefix("qc_").removeprefix("flag_") if c not in _FLAG_NAMES else "QC flag"
        for a, s in zip(arena[hit], table["second"][hit], strict=True):
            rows.append((a, int(s), reason.replace("_", " ")))
    return pd.DataFrame(rows, columns=["arena", "second", "reason"])


#: Per-second QC columns (share or count) and the reason each gives when it is non-zero.
_QC_REASONS = (
    ("qc_undetected", 0.5, "no detection"),
    ("qc_multi_blob", 0.0, "competing blobs"),
    ("qc_jumps", 0.0, "jump"),
    ("qc_area_outlier", 0.0, "odd blob area"),
)


def _qc_flag_rows(table: pd.DataFrame) -> list[tuple[str, int, str]]:
    """Rows of seconds with ``qc_flag`` set, each with the reasons its QC columns give."""
    hit = _truthy(table["qc_flag"])
    sub = table[hit]
    arenas = sub["arena"].astype(str) if "arena" in sub.columns else pd.Series("", sub.index)
    rows = []
    for i, (a, s) in enumerate(zip(arenas, sub["second"], strict=True)):
        reasons = [
            why for col, limit, why in _QC_REASONS
            if col in sub.columns and pd.notna(sub[col].iloc[i]) and sub[col].iloc[i] > limit
        ]
        rows.append((a, int(s), ", ".join(reasons) or "QC flag"))
    return rows


def _flag_columns(columns) -> list[str]:
    return [
        c
        for c in columns
        if c in _FLAG_NAMES or any(str(c).startswith(p) for p in _FLAG_PREFIXES)
    ]


def has_qc_flags(result: StoredResult) -> bool:
    """Whether the result carries per-second QC flags of its own (see :func:`flagged_seconds`)."""
    for name in ("occupancy.csv", "qc.csv"):
        path = result.result_dir / name
        if path.exists():
            try:
                header = pd.read_csv(path, nrows=0).columns
            except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError):
                continue
            if _flag_columns(header):
                return True
    return False


def flagged_seconds(result: StoredResult, *, fallback: bool = True) -> pd.DataFrame:
    """Seconds to look at, as a table ``arena, second, reason`` (one row per flag).

    The QC flags stored by ``track`` are used when present (per-second flag columns in
    ``occupancy.csv`` or ``qc.csv``, or a list in ``run.json``'s ``qc`` block). Without any,
    and when ``fallback`` is true, seconds are flagged from the track itself: a frame
    without a detection after the mouse was first found (``no detection``), or several
    blobs within the size limits (``competing blobs``).
    """
    tables = []
    occ_path = result.result_dir / "occupancy.csv"
    if occ_path.exists():
        tables.append(_flags_from_table(_read_csv(occ_path)))
    qc_path = result.result_dir / "qc.csv"
    if qc_path.exists():
        tables.append(_flags_from_table(_read_csv(qc_path)))
    found = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(
        len(t) for t in tables
    ) else pd.DataFrame(columns=["arena", "second", "reason"])
    if len(found) or not fallback or has_qc_flags(result):
        # stored flags (even none set) are the answer; the track is read only without them
        return found.drop_duplicates().sort_values(["arena", "second"], ignore_index=True)
    track = result.track(["time_s", "arena", "detected", "n_blobs"])
    rows = []
    for arena, sub in track.groupby("arena", sort=False):
        detected = sub["detected"].to_numpy(dtype=bool)
        second = np.floor(sub["time_s"].to_numpy(dtype=float)).astype(np.int64)
        if detected.any():
            after_first = np.arange(len(detected)) >= np.argmax(detected)
            for s in np.unique(second[~detected & after_first]):
                rows.append((str(arena), int(s), "no detection"))
        blobs = sub["n_blobs"].to_numpy() > 1
        for s in np.unique(second[blobs]):
            rows.append((str(arena), int(s), "competing blobs"))
    table = pd.DataFrame(rows, columns=["arena", "second", "reason"])
    return table.sort_values(["arena", "second"], ignore_index=True)


def resolve_video(result: StoredResult, override: str | Path | None = None) -> Path:
    """The video of a result: ``override`` if given, else the path stored in ``run.json``
    (as given, then absolute). Raises :class:`OutputError` naming what to pass when the file
    is not there any more."""
    if override is not None:
        path = Path(override)
        if not path.exists():
            raise OutputError(f"{path}: video not found; check the path given to --video")
        return path
    video = result.record.video
    found = video.existing_path()
    if found is not None:
        return found
    raise OutputError(
        f"{result.result_dir}: its video {video.absolute_path or video.path or None!s} "
        "is not there any more; pass the video's new path with --video"
    )
