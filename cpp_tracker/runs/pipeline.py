"""The stages wired together for one video (or one recording split into chunk files).

``track_video``: video -> background -> per-frame detections (written in parts as the run
goes) -> chambers -> per-second occupancy -> summary -> ``OUTDIR/<stem>/`` with
``track.parquet``, ``occupancy.csv``, ``summary.csv``, ``background.png`` and ``run.json``.
``track_session`` does the same for chunk files read as one continuous recording, and for
a time window of it; both continue an interrupted run from its last checkpoint.

``analyse_track``: the part after detection, on a stored track; ``track`` and
``reprocess`` both use it, so their results agree exactly.

The analysis modules (pandas, shapely, matplotlib) are imported when the analysis starts:
until then the process holds what tracking needs (numpy, OpenCV, Arrow, YAML), about 90 MB
rather than 130 MB of libraries, which matters while ``--workers`` processes run beside it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import pickle
import shlex
import shutil
import time
from collections.abc import Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..config.settings import (
    Config,
    check_against_frame,
    config_hash,
    config_to_dict,
    geometry_in_pixels,
)
from ..errors import ConfigError, OutputError, VideoError
from ..processes import interrupts_held
from ..results.lock import lock_folder
from ..results.outputs import (
    TrackPartWriter,
    make_output_folder,
    part_name,
    parts_are_complete,
    read_json,
    write_bytes,
    write_csv,
    write_json,
    write_png,
    write_track_from_parts,
)
from ..results.record import (
    ArenaQC,
    ArenaStats,
    ConfigRecord,
    DetectionRecord,
    LightingRecord,
    ParallelRecord,
    ReaderRecord,
    ResumeRecord,
    RunRecord,
    TimeBaseRecord,
    TimingRecord,
    TrackOrigin,
    TrialStartRecord,
    VideoSource,
    Window,
    now_iso,
    read_previous_record,
    read_run_record,
    write_run_record,
)
from ..tracking.background_update import BackgroundFollower, plan_background_update
from ..tracking.empty_box import background_samples, estimate_background_for
from ..tracking.segments import (
    AUTO_MIN_SEGMENT_S,
    MIN_SEGMENT_S,
    CpuSample,
    WarmStart,
    auto_workers,
    available_memory_mb,
    cpu_sample,
    idle_cores,
    track_segments,
)
from ..tracking.segments import PLAN_FILE as SEGMENT_PLAN_FILE
from ..tracking.tracker import (
    SHARE_PREFIX,
    SHARES_METADATA_KEY,
    TRACK_COLUMNS,
    detect_chunk,
    make_detector,
    pieces_signature,
    rows_from_chunks,
    share_columns,
)
from ..tracking.trial_start import detect_trial_start
from ..video.reader import (
    DecodeOptions,
    ReadPosition,
    VideoInfo,
    VideoReader,
    available_cores,
    probe_video,
    tracking_decode_threads,
)
from ..video.recording import DEFAULT_CHECK_S, still_being_written
from .stopping import stop_if_requested, stop_requested

if TYPE_CHECKING:
    import pandas as pd

    from ..analysis.occupancy import TimeBase

__all__ = [
    "Analysis",
    "RunResult",
    "analyse_track",
    "track_video",
    "track_session",
    "trial_doubts",
    "result_dir_for",
    "file_fingerprint",
    "source_identity",
    "run_key",
    "result_status",
    "update_metadata",
    "write_analysis",
    "config_record",
    "estimate_background_for",
    "finish_result",
    "timing_record",
    "analysis_records",
    "video_source",
    "draw_qc_figure_for",
]

PARTIAL_DIR = ".partial"
CHECKPOINT_FILE = "checkpoint.json"
#: The run.json of the results a new run replaces, kept while it runs (for its history).
PREVIOUS_RUN_FILE = "previous_run.json"
DETECTORS_FILE = "detectors.pickle"
#: The background update's state (detection.background_update), saved with each checkpoint.
FOLLOWERS_FILE = "background_update.pickle"
CHECKPOINT_FORMAT = 1
BACKGROUND_INFO_FILE = "background.json"
FINGERPRINT_BLOCK_BYTES = 4 * 1024 * 1024


def _glibc():
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return None


def release_memory() -> None:
    """Hand memory freed between the stages of a run back to the system.

    glibc keeps freed heap pages (frame buffers, samples) for reuse; ``malloc_trim``
    returns the free pages of every heap (a no-op where the C library is not glibc).
    Arrow's own allocator (mimalloc) keeps whole segments for reuse; the tables here are
    small, so Arrow is switched to the system allocator. (Forcing large blocks into
    ``mmap`` instead would give memory back sooner, but costs a quarter of the tracking
    speed in page faults.)
    """
    import gc

    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())
    gc.collect()
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def result_dir_for(video: str | Path, out_dir: str | Path) -> Path:
    """Where the results of ``video`` go: ``out_dir/<video file stem>``."""
    return Path(out_dir) / Path(video).stem


@dataclass
class Analysis:
    """Everything computed from a track for one config."""

    codes: np.ndarray  # chamber code per track row (-1 = unknown)
    chamber: np.ndarray  # chamber name per track row
    occupancy: pd.DataFrame
    summary: pd.DataFrame
    timebase: TimeBase
    arena_stats: dict[str, dict] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    qc: dict[str, dict] = field(default_factory=dict)  # per arena, see cpp_tracker.analysis.qc
    lighting: dict | None = None  # lighting periods (tracks with a light_gain column)
    read_fraction: float | None = None  # of the nominal length, when that is known
    position: np.ndarray | None = None  # per track row: the piece the centroid lies in
    bins: pd.DataFrame | None = None  # summary per time bin / named window, if configured


def analyse_track(
    track: pd.DataFrame,
    config: Config,
    *,
    video_label: str,
    nominal_interval_s: float | None = None,
    nominal_duration_s: float | None = None,
    doubts: Sequence[str] = (),
) -> Analysis:
    """Chambers, per-second occupancy, quality flags and summary from a track table.

    ``track`` needs the columns ``frame, time_s, arena, x, y, detected`` with the rows of
    each arena in frame order, and with ``chambers.rule: body_fraction`` the share of the
    mouse in each chamber, ``share_0`` .. ``share_{k-1}`` (the tracker's blob shares, or
    :func:`~cpp_tracker.geometry.chambers.keypoint_shares` of a pose track; ConfigError
    naming the arena without them); ``area_px``, ``n_blobs`` and ``light_gain`` are used
    for the quality flags and lighting periods where present. ``nominal_duration_s``: the
    container's length, to say how much of it was read. ``doubts``: reasons known before
    the analysis that every arena's QC verdict must carry (:func:`trial_doubts`). Returns
    new tables; ``track`` is not modified.
    """
    import pandas as pd

    from ..analysis.occupancy import frame_durations
    from ..analysis.summary import time_periods
    from ..geometry.chambers import UNKNOWN

    arena_col = track["arena"].astype(str).to_numpy()
    frames_time = track.loc[arena_col == config.arenas[0].name, "time_s"].to_numpy()
    timebase = frame_durations(frames_time, config.video.gap_factor, nominal_interval_s)
    periods, period_warnings = time_periods(
        timebase.end_s, config.summary.bin_s, config.summary.windows
    )
    codes = np.full(len(track), UNKNOWN, dtype=np.int16)
    chamber = np.empty(len(track), dtype=object)
    position = np.empty(len(track), dtype=object)
    arenas = []
    for arena in config.arenas:
        rows = np.flatnonzero(arena_col == arena.name)
        if len(rows) != len(frames_time):
            raise ValueError(f"arena {arena.name}: track rows do not match the frames")
        done = _analyse_arena(
            track.iloc[rows], arena, config, frames_time, timebase, periods, video_label
        )
        codes[rows], chamber[rows], position[rows] = done.codes, done.chamber, done.position
        arenas.append(done)
    warnings = [a.warning for a in arenas if a.warning]
    warnings += _gap_warnings(timebase)
    warnings.extend(period_warnings)
    occupancy = pd.concat([a.occupancy for a in arenas], ignore_index=True) if arenas else None
    summary = pd.concat([a.summary for a in arenas], ignore_index=True)
    read_fraction = timebase.end_s / nominal_duration_s if nominal_duration_s else None
    occupancy, summary, qc = _add_quality(
        track, config, occupancy, summary, timebase, read_fraction, warnings, doubts
    )
    if config.chambers.rule != "point":  # (the point rule's summary is as it always was)
        c = config.chambers
        summary["entry_rule"] = f"{c.rule} {c.enter_fraction:g}/{c.exit_fraction:g}"
    bin_tables = [a.bins for a in arenas if a.bins is not None]
    return Analysis(
        codes, chamber, occupancy, summary, timebase, {a.name: a.stats for a in arenas},
        warnings, qc, _lighting_of(track, arena_col, config, frames_time, timebase),
        read_fraction, position, pd.concat(bin_tables, ignore_index=True) if bin_tables else None,
    )


@dataclass
class _ArenaAnalysis:
    """One arena's part of an :class:`Analysis`."""

    name: str
    codes: np.ndarray  # chamber code per frame, with hysteresis (-1 = unknown)
    chamber: np.ndarray  # its name per frame
    position: np.ndarray  # the piece the centroid lies in, per frame
    occupancy: pd.DataFrame
    summary: pd.DataFrame
    bins: pd.DataFrame | None
    stats: dict
    warning: str | None


def _gap_warnings(timebase: TimeBase) -> list[str]:
    if not timebase.gaps:
        return []
    missing = sum(b - a for a, b in timebase.gaps)
    return [
        f"{len(timebase.gaps)} gap(s) in the frame timestamps, {missing:.2f} s in all, "
        "counted as unknown time"
    ]


def _analyse_arena(sub, arena, config, frames_time, timebase, periods, video_label):
    """Chambers, occupancy, summary (and bins) of one arena's rows of the track."""
    from ..analysis.occupancy import occupancy_per_second
    from ..analysis.summary import path_steps, summarize_arena, summarize_periods

    x = sub["x"].to_numpy(dtype=float)
    y = sub["y"].to_numpy(dtype=float)
    det = sub["detected"].to_numpy(dtype=bool)
    arena_codes, position_codes = _chamber_codes(arena, config, x, y, det, sub)
    names = np.array([*arena.chamber_names, "unknown"], dtype=object)
    occ = occupancy_per_second(
        frames_time, timebase.durations_s, position_codes, arena.chamber_names, timebase.end_s,
    )
    occ.insert(0, "arena", arena.name)
    # the same track, figures and settings for the whole session and for the bins
    figures = dict(
        video=video_label,
        arena=arena.name,
        animal_id=arena.animal_id,
        chamber_names=arena.chamber_names,
        time_s=frames_time,
        durations_s=timebase.durations_s,
        codes=arena_codes,
        time_codes=position_codes,
        x=x,
        y=y,
        px_per_cm=arena.px_per_cm,
        min_step_px=config.summary.min_step_px,
        steps_px=path_steps(x, y, config.summary.min_step_px),
    )
    stats, warning = _detection_stats(arena.name, det)
    return _ArenaAnalysis(
        name=arena.name,
        codes=arena_codes,
        chamber=names[arena_codes],  # code -1 picks the last name: 'unknown'
        position=names[position_codes],
        occupancy=occ,
        summary=summarize_arena(**figures, duration_s=timebase.end_s),
        bins=summarize_periods(**figures, periods=periods) if periods else None,
        stats=stats,
        warning=warning,
    )


def _chamber_codes(arena, config, x, y, det, rows) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the chamber (visits) and the chamber time is counted in (codes, -1 =
    unknown), by ``chambers.rule``; ``rows``: the arena's track rows (for the shares)."""
    from ..analysis.chamber_time import chamber_codes
    from ..geometry.chambers import assign_by_body_fraction

    rule = config.chambers
    if rule.rule == "body_fraction":
        # the lab's criterion decides both: time follows the chamber entered and left
        codes, _ = assign_by_body_fraction(
            _arena_shares(rows, len(arena.chambers), arena.name, config.source), det,
            rule.enter_fraction, rule.exit_fraction,
        )
        return codes, codes
    return chamber_codes(arena, x, y, det, rule.hysteresis_px, rule.backdate_crossings)


def _arena_shares(rows, n_chambers: int, arena_name: str, source: str) -> np.ndarray:
    """The chamber shares of one arena's track rows, (n_frames, n_chambers) float.

    Raises ConfigError (of the config ``source``) naming the arena when the track has no
    share columns for it (a track made before they were stored, or by a source that has
    none)."""
    names = share_columns(n_chambers)
    missing = [c for c in names if c not in rows.columns]
    if missing:
        raise ConfigError(
            source, f"chambers.rule: body_fraction needs the share of the mouse in each "
            f"chamber, which the track of arena {arena_name} does not hold "
            f"({', '.join(missing)}); use chambers.rule: point, or track the video again"
        )
    return rows[names].to_numpy(dtype=float)


def _detection_stats(arena_name: str, det: np.ndarray) -> tuple[dict, str | None]:
    """The arena's frames with and without a detection (for run.json), and a warning when
    more than 5 % have none."""
    n_missing = int((~det).sum())
    share = n_missing / max(1, len(det))
    warning = None
    if share > 0.05:
        warning = (
            f"arena {arena_name}: no mouse detected in {100 * share:.1f} % of frames "
            f"({n_missing} of {len(det)}); check the threshold and the arena outline "
            "in the preview"
        )
    stats = {
        "frames": int(len(det)),
        "frames_without_detection": n_missing,
        "share_without_detection": round(share, 6),
    }
    return stats, warning


def _lighting_of(track, arena_col, config, frames_time, timebase) -> dict | None:
    """The lighting periods of a track with a ``light_gain`` column (median over arenas)."""
    from ..analysis.lighting import find_lighting_periods, lighting_report

    if "light_gain" not in track.columns or not len(frames_time):
        return None
    first = track.loc[arena_col == config.arenas[0].name]
    gains = (
        track.groupby("frame", sort=True)["light_gain"].median().to_numpy()
        if len(config.arenas) > 1
        else first["light_gain"].to_numpy()
    )
    periods = find_lighting_periods(
        first["frame"].to_numpy(), frames_time, gains, end_s=timebase.end_s
    )
    return lighting_report(periods, config.background.follow_lighting)


def _add_quality(track, config, occupancy, summary, timebase, read_fraction, warnings,
                 doubts=()):
    """QC columns for occupancy and summary, and the
    per-arena QC block (cpp_tracker.analysis.qc)."""
    import pandas as pd

    from ..analysis.qc import QcThresholds, qc_per_second, qc_summary_columns, video_qc

    q = config.qc
    thresholds = QcThresholds(
        max_speed_cm_s=q.max_speed_cm_s,
        max_undetected=q.max_undetected,
        max_multi_blob=q.max_multi_blob,
        max_area_outlier=q.max_area_outlier,
        max_jumps_per_min=q.max_jumps_per_min,
        max_unobserved=q.max_unobserved,
        min_read_fraction=q.min_read_fraction,
        max_unknown=q.max_unknown,
    )
    needed = {"area_px": np.nan, "n_blobs": 0}
    if any(c not in track.columns for c in needed):
        track = track.assign(**{c: v for c, v in needed.items() if c not in track.columns})
    scale = {a.name: a.px_per_cm for a in config.arenas}
    per_second, info = qc_per_second(track, scale, thresholds, seconds=occupancy)
    occupancy = pd.concat(
        [occupancy.reset_index(drop=True), per_second.iloc[:, 2:].reset_index(drop=True)],
        axis=1,
    )
    unobserved = float(sum(b - a for a, b in timebase.gaps))
    unknown = summary[summary["chamber"].astype(str) == "unknown"]
    qc = video_qc(
        track, per_second, info, duration_s=timebase.end_s, unobserved_s=unobserved,
        read_fraction=read_fraction, thresholds=thresholds,
        unknown_s=dict(zip(unknown["arena"].astype(str), unknown["time_s"], strict=True)),
        doubts=doubts,
    )
    extra = pd.DataFrame([qc_summary_columns(qc, str(a)) for a in summary["arena"]])
    summary = pd.concat([summary.reset_index(drop=True), extra], axis=1)
    for arena, block in qc.items():
        if block["needs_review"]:
            warnings.append(
                f"arena {arena} needs review: " + "; ".join(block["review_reasons"])
            )
    return occupancy, summary, qc


def config_record(config: Config) -> ConfigRecord:
    """The record of the config that makes the results."""
    return ConfigRecord(
        source=config.source,
        hash=config_hash(config),
        resolved=config_to_dict(config),
        # the geometry as tracked, in pixels (a template in cm mapped by its corners)
        geometry_px=geometry_in_pixels(config),
        entry_rule=entry_rule_record(config),
    )


def entry_rule_record(config: Config) -> dict:
    """``chambers.rule`` and the numbers it uses, for run.json and the summary."""
    c = config.chambers
    if c.rule == "body_fraction":
        return {"rule": c.rule, "enter_fraction": c.enter_fraction,
                "exit_fraction": c.exit_fraction}
    return {"rule": c.rule, "hysteresis_px": c.hysteresis_px,
            "backdate_crossings": c.backdate_crossings}


def write_analysis(result_dir: Path, analysis: Analysis) -> list[str]:
    """Write ``occupancy.csv``, ``summary.csv`` and, when bins or windows are configured,
    ``summary_bins.csv`` (a stale one from an earlier config is removed); return the names."""
    write_csv(result_dir / "occupancy.csv", analysis.occupancy)
    write_csv(result_dir / "summary.csv", analysis.summary)
    written = ["occupancy.csv", "summary.csv"]
    bins_path = result_dir / "summary_bins.csv"
    if analysis.bins is not None:
        write_csv(bins_path, analysis.bins)
        written.append(bins_path.name)
    else:
        bins_path.unlink(missing_ok=True)
    return written


def timing_record(tb: TimeBase, read_fraction: float | None) -> TimingRecord:
    """The parts of the record's time base that follow from the frame durations."""
    return TimingRecord(
        median_interval_s=tb.median_interval_s,
        measured_fps=1.0 / tb.median_interval_s if tb.median_interval_s else None,
        duration_s=tb.end_s,
        observed_s=tb.observed_s,
        read_fraction_of_nominal=read_fraction,
        gaps=tuple(tb.gap_list()),
    )


def analysis_records(analysis: Analysis) -> dict:
    """The record blocks an analysis decides: per-arena frame counts, QC and lighting."""
    return {
        "arenas": {a: ArenaStats.from_dict(s) for a, s in analysis.arena_stats.items()},
        "qc": {a: ArenaQC.from_dict(q) for a, q in analysis.qc.items()},
        "lighting": LightingRecord.from_dict(analysis.lighting),
    }


@dataclass
class RunResult:
    """What one ``track_video`` run wrote."""

    result_dir: Path
    summary: pd.DataFrame
    record: RunRecord
    warnings: list[str]


def video_source(info: VideoInfo, fingerprint: str, **placement) -> VideoSource:
    """The record of one input file; ``placement``: its offsets in the session."""
    return VideoSource(
        path=info.path,
        absolute_path=str(Path(info.path).resolve()),
        size_bytes=info.size_bytes,
        mtime=info.mtime,
        mtime_iso=_dt.datetime.fromtimestamp(info.mtime, _dt.timezone.utc).isoformat(),
        codec=info.codec,
        width=info.width,
        height=info.height,
        nominal_fps=info.nominal_fps,
        nominal_frame_count=info.nominal_frame_count,
        nominal_duration_s=info.nominal_duration_s,
        fingerprint=fingerprint,
        **placement,
    )


def file_fingerprint(path: str | Path, block_bytes: int = FINGERPRINT_BLOCK_BYTES) -> str:
    """A content fingerprint of a file that is fast on multi-GB videos.

    sha256 of the file size, the first and the last ``block_bytes`` bytes. A recording
    copied, re-encoded, truncated or replaced by another one gets a different fingerprint;
    reading 8 MB takes milliseconds where hashing a 20 GB file would take minutes.
    """
    path = Path(path)

    def read() -> str:
        size = path.stat().st_size
        h = hashlib.sha256()
        h.update(str(size).encode())
        with open(path, "rb") as f:
            h.update(f.read(block_bytes))
            if size > block_bytes:
                f.seek(max(block_bytes, size - block_bytes))
                h.update(f.read(block_bytes))
        return "sha256-head-tail:" + h.hexdigest()[:32]

    return _retrying_reads(read, path)


#: Seconds waited before each new try of a read that failed with a transient error (a
#: network file system briefly unavailable); the reader's frames: VideoReader.STALL_WAITS_S.
READ_RETRY_WAITS_S: tuple[float, ...] = (0.5, 2.0, 5.0)
_TRANSIENT_ERRNOS = {errno.EIO, errno.ETIMEDOUT, errno.ESTALE, errno.EAGAIN, errno.EINTR}


def _retrying_reads(read, path: Path):
    """``read()``, tried again after :data:`READ_RETRY_WAITS_S` when it fails with a
    transient error; VideoError naming ``path`` when it still fails."""
    for wait_s in (*READ_RETRY_WAITS_S, None):
        try:
            return read()
        except FileNotFoundError:
            raise
        except OSError as e:
            transient = e.errno in _TRANSIENT_ERRNOS
            if not transient or wait_s is None:
                tries = f", {len(READ_RETRY_WAITS_S) + 1} tries" if transient else ""
                raise VideoError(
                    f"{path}: cannot be read ({e.strerror or e}{tries}); check the disk or "
                    "network share it is on and rerun"
                ) from None
            time.sleep(wait_s)
    raise AssertionError("unreachable")


def source_identity(path: str | Path) -> dict:
    """Size, modification time and content fingerprint of an input file (no decoding)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise VideoError(f"{path}: file not found; check the path") from None
    return {
        "size_bytes": st.st_size,
        "mtime": st.st_mtime,
        "fingerprint": file_fingerprint(path),
    }


def _check_window(start_s: float | str | None, end_s: float | None) -> None:
    if start_s == "auto":
        start_s = None
    for key, v in (("start_s", start_s), ("end_s", end_s)):
        if v is not None and (not np.isfinite(v) or v < 0):
            raise ConfigError(key, f"must be a time in seconds of at least 0, got {v}")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ConfigError("end_s", f"({end_s:g} s) must be later than start_s ({start_s:g} s)")


def run_key(
    videos: Sequence[str | Path],
    config: Config,
    *,
    stride: int = 1,
    start_s: float | str | None = None,
    end_s: float | None = None,
    identities: Sequence[dict] | None = None,
) -> dict:
    """What a result depends on: the input files' identity, the config hash, the stride
    and the time window. Results whose ``run.json`` holds an equal key are up to date."""
    if identities is None:
        identities = [source_identity(v) for v in videos]
    return {
        "config_hash": config_hash(config),
        "videos": [
            {k: ident[k] for k in ("size_bytes", "mtime", "fingerprint")} for ident in identities
        ],
        "stride": int(stride),
        "start_s": None if start_s is None else start_s if start_s == "auto" else float(start_s),
        "end_s": None if end_s is None else float(end_s),
    }


def _key_difference(old: dict, new: dict) -> str:
    """What differs between two run keys, in words."""
    if old.get("config_hash") != new.get("config_hash"):
        return "the config changed"
    old_v, new_v = old.get("videos") or [], new.get("videos") or []
    if len(old_v) != len(new_v):
        return "the list of chunk files changed"
    for a, b in zip(old_v, new_v, strict=True):
        if a.get("fingerprint") != b.get("fingerprint") or a.get("size_bytes") != b.get(
            "size_bytes"
        ):
            return "the video file's content changed"
        if a.get("mtime") != b.get("mtime"):
            return "the video file's modification time changed"
    if old.get("stride") != new.get("stride"):
        return "the stride changed"
    return "the time window (start_s, end_s) changed"


def result_status(result_dir: str | Path, key: dict) -> tuple[bool, str]:
    """Whether ``result_dir`` holds complete results made with ``key`` (see :func:`run_key`).

    Returns ``(True, "up to date")`` or ``(False, reason)``.
    """
    result_dir = Path(result_dir)
    run_path = result_dir / "run.json"
    if not run_path.exists():
        if (result_dir / PARTIAL_DIR).exists():
            return False, "interrupted before it finished"
        return False, "no results yet"
    try:
        record = read_run_record(result_dir)
    except OutputError:
        return False, "its run.json cannot be read"
    missing = record.missing_outputs(result_dir)
    if missing or not record.outputs:
        return False, f"output files are missing ({', '.join(missing) or 'all'})"
    old = record.run_key
    if not isinstance(old, dict):
        return False, "its run.json comes from an older version without a run key"
    if old != key:
        return False, _key_difference(old, key)
    return True, "up to date"


def update_metadata(result_dir: str | Path, metadata: dict) -> bool:
    """Replace the ``metadata`` of a finished result's run.json; True if it changed."""
    record = read_run_record(result_dir)
    if record.metadata == metadata:
        return False
    write_run_record(result_dir, record.with_metadata(metadata))
    return True


# -------------------------------------------------------------------------- checkpoint
@dataclass
class _SourceDone:
    """A chunk file read to its end (or to the end of the window)."""

    frames_decoded: int
    timestamps_repaired: int
    last_time_s: float
    interval_s: float
    unreadable: list = field(default_factory=list)  # undecodable stretches (file's frames)


@dataclass
class _Checkpoint:
    """How far a run got; saved as ``.partial/checkpoint.json`` after every part file."""

    key: dict
    started: str
    parts: int = 0
    source: int = 0  # index of the chunk file being read
    position: ReadPosition | None = None  # last frame handled in that file
    done: list[_SourceDone] = field(default_factory=list)  # files read to their end
    frames_tracked: int = 0
    finished_reading: bool = False
    luma_direct: bool | None = None
    attempts: int = 1

    def to_dict(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "version": __version__,
            "key": self.key,
            "started": self.started,
            "parts": self.parts,
            "source": self.source,
            "position": None if self.position is None else asdict(self.position),
            "done": [asdict(d) for d in self.done],
            "frames_tracked": self.frames_tracked,
            "finished_reading": self.finished_reading,
            "luma_direct": self.luma_direct,
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, d: dict) -> _Checkpoint:
        pos = d.get("position")
        return cls(
            key=d["key"],
            started=d["started"],
            parts=int(d["parts"]),
            source=int(d["source"]),
            position=None if pos is None else ReadPosition(**pos),
            done=[_SourceDone(**x) for x in d.get("done", [])],
            frames_tracked=int(d["frames_tracked"]),
            finished_reading=bool(d["finished_reading"]),
            luma_direct=d.get("luma_direct"),
            attempts=int(d.get("attempts", 1)),
        )


def _load_checkpoint(partial: Path, key: dict) -> tuple[_Checkpoint, np.ndarray, list] | str:
    """The saved state in ``partial`` if it was made with ``key``, else why not."""
    path = partial / CHECKPOINT_FILE
    if not path.exists():
        return "no checkpoint"
    try:
        raw = read_json(path)
        if raw.get("format") != CHECKPOINT_FORMAT or raw.get("version") != __version__:
            return "the checkpoint was written by another version of cpp-tracker"
        if raw.get("key") != key:
            return f"the checkpoint does not match: {_key_difference(raw.get('key', {}), key)}"
        state = _Checkpoint.from_dict(raw)
        background = cv2.imread(str(partial / "background.png"), cv2.IMREAD_UNCHANGED)
        with open(partial / DETECTORS_FILE, "rb") as f:
            detectors = pickle.load(f)
    except (OutputError, OSError, KeyError, TypeError, ValueError, pickle.PickleError,
            ImportError, AttributeError) as e:  # the pickle names a module or class now gone
        return f"the checkpoint cannot be read ({e})"
    if background is None:
        return "the checkpoint's background image cannot be read"
    parts = sorted(partial.glob("part-*.parquet"))
    if len(parts) < state.parts or not parts_are_complete(parts[: state.parts]):
        return "part files of the checkpoint are missing"
    for extra in parts[state.parts :]:  # written after the last checkpoint: redo them
        extra.unlink()
    return state, background, detectors


def _save_checkpoint(partial: Path, state: _Checkpoint) -> None:
    write_json(partial / CHECKPOINT_FILE, state.to_dict())


# ------------------------------------------------------------------------------- tracking
def draw_qc_figure_for(record: RunRecord, result_dir: Path, config: Config) -> RunRecord:
    """Write ``qc.png`` from the results on disk and ``record`` (not yet written); the
    record with ``qc.png`` listed, or with a warning when it could not be drawn (a figure
    must never cost the results)."""
    from ..results.stored import StoredResult
    from ..visual.plots import write_qc_figure

    try:
        write_qc_figure(StoredResult(result_dir, record, config))
    except Exception as e:  # noqa: BLE001 - a figure must never cost the results
        return record.with_figure(False, (
            f"the QC figure qc.png could not be drawn ({type(e).__name__}: {e}); the results "
            f"are complete; retry with 'cpp-tracker plot {shlex.quote(str(result_dir))}'"
        ))
    return record.with_figure(True)


def _unreadable_stretches(
    done: list[_SourceDone], videos: list[str], origin_s: float
) -> list[dict]:
    """The undecodable stretches of every file read, in session frames and result time."""
    out = []
    for k, d in enumerate(done):
        time_offset, frame_offset = _session_offsets(done[:k])
        for u in d.unreadable:
            def at(t, time_offset=time_offset):
                return None if t is None else round(t + time_offset - origin_s, 6)

            out.append({
                "video": videos[k],
                "first_frame": u["first_frame"] + frame_offset,
                "resumed_frame": u["resumed_frame"] + frame_offset,
                "after_s": at(u.get("after_s")),
                "resumed_s": at(u.get("resumed_s")),
            })
    return out


def _session_offsets(done: list[_SourceDone]) -> tuple[float, int]:
    """Session time and frame index at which the next chunk file starts."""
    time_offset = sum(d.last_time_s + d.interval_s for d in done)
    frame_offset = sum(d.frames_decoded for d in done)
    return float(time_offset), int(frame_offset)


def _warm_start(inputs: _Inputs, config: Config, workers: int | str,
                min_segment_s: float | None) -> WarmStart | None:
    """Worker processes and the frame index started now, while the background is estimated
    (:class:`~cpp_tracker.tracking.segments.WarmStart`), for a run that will most likely be
    tracked in segments: one fresh video, no time window, long enough for two, more than
    one core. Whatever is decided later, the segments are those of a cold start."""
    info = inputs.infos[0]
    fresh = not (inputs.partial.exists() and any(inputs.partial.iterdir()))
    if (len(inputs.videos) > 1 or (inputs.start_s, inputs.end_s) != (None, None) or not fresh
            or decode_options(config, inputs.stride).skip_nonref):
        return None
    if workers == "auto":
        n, _ = auto_workers(info.nominal_duration_s, available_cores(),
                            info.width * info.height, available_memory_mb())
    else:
        segment_s = MIN_SEGMENT_S if min_segment_s is None else min_segment_s
        enough = (info.nominal_duration_s or 0.0) >= int(workers) * segment_s
        n = int(workers) if enough else 1
    return WarmStart(inputs.videos[0], n - 1) if n > 1 else None


def _track_in_segments(
    videos, infos, config, detectors, partial, parts, state, flush, bar, *, workers, stride,
    window, resumed, min_segment_s, cpu_at_start=None, warm=None,
) -> dict:
    """With ``workers`` > 1, track a fresh single-video run in time segments
    (:func:`cpp_tracker.tracking.segments.track_segments`), move their parts into ``partial`` as
    if written in one pass, and mark ``state`` as finished reading. Returns the
    ``parallel`` block of run.json (with ``frames_grabbed`` when segments were used)."""
    out: dict = {"workers": 1, "segments": [], "one_pass_reason": None, "requested": workers}
    if workers == "auto" and len(videos) == 1:
        workers, why = auto_workers(
            infos[0].nominal_duration_s, available_cores(), infos[0].width * infos[0].height,
            available_memory_mb(),
            idle_cores(since=cpu_at_start, children=warm.pids() if warm else ()),
        )
        out["one_pass_reason"] = why
        min_segment_s = AUTO_MIN_SEGMENT_S if min_segment_s is None else min_segment_s
    if workers == "auto" or workers <= 1:
        return out
    why = None
    if len(videos) > 1:
        why = "the chunk files of a session are tracked one after the other"
    elif window != (None, None):
        why = "a time window is tracked in one pass"
    elif state.frames_tracked or parts.parts() or state.position is not None:
        why = "an interrupted one-pass run is continued in one pass"
    elif decode_options(config, stride).skip_nonref:
        why = ("--stride with video.fast_decode: which frame stands in for a skipped one "
               "depends on the frames before it, so one pass keeps the result exact")
    elif any((d.update or {}).get("active") for d in detectors):
        why = ("detection.background_update is on for this video: the update carries state "
               "from frame to frame, so one pass keeps the result exact")
    if why is None:
        with VideoReader(videos[0], infos[0]) as reader:
            state.luma_direct = reader.luma_direct
            interval_s = reader.nominal_interval_s
        run = track_segments(
            videos[0], infos[0], detectors, partial, workers=workers, stride=stride,
            checkpoint_s=config.video.checkpoint_s, min_segment_s=min_segment_s,
            progress=lambda n: bar.update(n - bar.n), decode=decode_options(config, stride),
            warm=warm,
        )
        if isinstance(run, str):
            why = run
        else:
            for k, path in enumerate(run.parts):  # in order, named as one pass names them
                path.rename(partial / part_name(k + 1))
            for path in partial.glob("segment-*"):
                shutil.rmtree(path, ignore_errors=True)
            (partial / SEGMENT_PLAN_FILE).unlink(missing_ok=True)
            state.frames_tracked = run.frames_tracked
            state.done.append(
                _SourceDone(
                    frames_decoded=run.frames_decoded,
                    timestamps_repaired=0,
                    last_time_s=run.last_time_s,
                    interval_s=interval_s,
                    unreadable=[],
                )
            )
            state.source = 1
            state.position = None
            state.finished_reading = True
            flush()
            return {"workers": run.workers, "segments": run.segments, "one_pass_reason": None,
                    "requested": out["requested"], "frames_grabbed": run.frames_grabbed,
                    "frames_not_decoded": run.frames_not_decoded}
    out["one_pass_reason"] = why
    return out


def track_session(
    videos: Sequence[str | Path],
    config: Config,
    out_dir: str | Path,
    *,
    name: str | None = None,
    start_s: float | str | None = None,
    end_s: float | None = None,
    metadata: dict | None = None,
    stride: int = 1,
    progress: bool = True,
    chunk_size: int | None = None,
    progress_position: int | None = None,
    resume: bool = True,
    plots: bool = True,
    command: str = "track",
    workers: int | str = 1,
    min_segment_s: float | None = None,
    exports: Sequence[str] = (),
    allow_growing: bool = False,
    growing_check_s: float = DEFAULT_CHECK_S,
) -> RunResult:
    """Track one recording, given as one video or as chunk files, into ``out_dir/<name>/``.

    ``videos`` are read one after the other as one continuous recording: the time of each
    file continues after the end of the one before (its last frame plus one frame
    interval), and frame indices continue too. ``name`` defaults to the first file's stem.

    ``start_s`` / ``end_s`` restrict the analysis to that window of the recording's time:
    frames outside it are not tracked and not counted, and the times in the results count
    from ``start_s`` (0 s = ``start_s``). Without ``start_s`` the config's ``trial.start``
    sets it; ``"auto"`` (as ``start_s`` or ``trial.start``) finds the trial's start first
    (:func:`cpp_tracker.tracking.trial_start.detect_trial_start`: the hand gone, the doors
    open), and ``run.json``'s ``trial`` block says where and why; when it is not found the
    run counts from the video's start, with a warning.

    The track is written in part files every ``config.video.checkpoint_s`` seconds of video
    together with ``.partial/checkpoint.json`` (how far it got, the background and the
    detector calibration, the key of the inputs). With ``resume`` a run finding a
    checkpoint made from the same files, config, stride and window continues after its
    last part instead of starting again; the results equal those of an uninterrupted run.

    ``metadata`` (e.g. a manifest's columns) is stored under ``"metadata"`` in run.json.

    With ``plots``, the QC figure ``qc.png`` is drawn from the written results before
    ``run.json`` (which is written last); a failure to draw it is a warning, never a lost
    result. ``command`` is recorded in ``run.json`` (and its history) as what made the
    results.

    A file still being written (:func:`cpp_tracker.video.recording.still_being_written`,
    checked for ``growing_check_s``) raises :class:`~cpp_tracker.errors.VideoError`, unless
    ``allow_growing``: then what is there is tracked and every arena's QC says the result is
    truncated. The result folder is locked while the run writes it
    (:func:`cpp_tracker.results.lock.lock_folder`; another run there raises
    :class:`~cpp_tracker.errors.BusyError`). After SIGTERM
    (:func:`cpp_tracker.runs.stopping.stop_on_sigterm`) the frames read so far are saved
    with the checkpoint and :class:`~cpp_tracker.runs.stopping.StopRequested` is raised.

    ``workers`` > 1 tracks time segments of a single video in that many processes (see
    :mod:`cpp_tracker.tracking.segments`); the results are the same as with one. Chunk files, a
    time window, a continued run and videos shorter than ``workers * min_segment_s``
    (default :data:`~cpp_tracker.tracking.segments.MIN_SEGMENT_S`) are tracked in one pass;
    ``run.json`` says why under ``parallel``. ``workers="auto"`` (the ``track`` command's
    default) takes one process per available core not busy with other work (measured
    while the background is estimated; the processes start then too), each with at least
    :data:`~cpp_tracker.tracking.segments.AUTO_MIN_SEGMENT_S` of video, as many as the free
    memory holds (:func:`~cpp_tracker.tracking.segments.auto_workers`).

    Raises :class:`~cpp_tracker.errors.VideoError` when a video cannot be read and
    :class:`~cpp_tracker.errors.ConfigError` when the geometry does not fit its frame or the
    window is not valid.
    """
    clock = _Clock(now_iso(), time.perf_counter(), cpu_sample())
    release_memory()
    inputs = _open_inputs(videos, config, out_dir, name, start_s, end_s, stride,
                          growing=_growing_check(videos, allow_growing, growing_check_s))
    with lock_folder(inputs.result_dir, command) as lock:
        return _track_locked(
            inputs, config, clock, lock.message, resume=resume, workers=workers,
            chunk_size=chunk_size, progress=progress, progress_position=progress_position,
            min_segment_s=min_segment_s, metadata=metadata, plots=plots, command=command,
            exports=exports,
        )


def _growing_check(videos, allow: bool, check_s: float) -> tuple[str, ...]:
    """The QC doubts of files still being written (tracked with ``allow``); raises
    :class:`VideoError` for the first one without it."""
    growing = still_being_written([str(v) for v in videos], check_s)
    if growing and not allow:
        path, why = next(iter(growing.items()))
        raise VideoError(
            f"{path}: not finished: {why}; wait until the recording has finished, or pass "
            "--allow-growing to track what is there (the result is marked truncated)"
        )
    return tuple(
        f"truncated: {Path(p).name} was still being written when it was tracked "
        f"(--allow-growing: {why}); the results cover only what had been written"
        for p, why in growing.items()
    )


def _track_locked(
    inputs: _Inputs, config: Config, clock: _Clock, lock_note: str | None, *, resume: bool,
    workers: int, chunk_size: int | None, progress: bool, progress_position: int | None,
    min_segment_s: float | None, metadata: dict | None, plots: bool, command: str,
    exports: Sequence[str],
) -> RunResult:
    """:func:`track_session`'s stages, once its result folder is locked."""
    with contextlib.ExitStack() as stack:
        warm = _warm_start(inputs, config, workers, min_segment_s)
        if warm is not None:
            stack.callback(warm.close)
        start = _start_run(inputs, config, resume, clock.started)
        if lock_note:
            start.warnings.append(lock_note)
        parts = TrackPartWriter(inputs.partial)
        release_memory()
        reading = _read_frames(
            inputs, config, start, parts, workers=workers, chunk_size=chunk_size,
            progress=progress, progress_position=progress_position,
            min_segment_s=min_segment_s, cpu_at_start=clock.cpu, warm=warm,
        )
    stop_if_requested()  # SIGTERM while reading ended: the checkpoint holds it all
    release_memory()  # the frame buffers, before the analysis and the figure
    _check_frames_tracked(inputs, start.state)
    _check_unchanged(inputs)
    analysis = _analyse_parts(inputs, config, parts)
    _write_track(inputs.result_dir, parts, analysis, config)
    written = write_analysis(inputs.result_dir, analysis)
    write_png(inputs.result_dir / "background.png", start.background)
    record = _session_record(
        inputs, config, start, reading, analysis, written,
        command=command, metadata=metadata, clock=clock,
    )
    previous = read_previous_record(inputs.partial / PREVIOUS_RUN_FILE)
    record = finish_result(inputs.result_dir, record, config, plots=plots, previous=previous,
                           exports=exports)
    shutil.rmtree(inputs.partial, ignore_errors=True)
    return RunResult(inputs.result_dir, analysis.summary, record, list(record.warnings))


def finish_result(
    result_dir: Path, record: RunRecord, config: Config, *, plots: bool,
    previous: RunRecord | None, exports: Sequence[str] = (), release: bool = True,
) -> RunRecord:
    """The last step of ``track``, ``reprocess`` and ``pose``, once the tables are written:
    the exports asked for (``movement``: :func:`cpp_tracker.runs.export.write_exports`; stale
    ones removed), the QC figure ``qc.png`` (or a stale one removed), the history carried on
    from ``previous`` (the results replaced), and ``run.json``, written last: its presence
    marks a complete result folder. ``release``: hand freed memory back before drawing
    (:func:`release_memory`, ~40 ms)."""
    from .export import write_exports

    record = write_exports(result_dir, record, config, exports)
    if plots:
        if release:
            release_memory()
        record = draw_qc_figure_for(record, result_dir, config)
    else:
        (result_dir / "qc.png").unlink(missing_ok=True)
    record = record.with_history_after(previous)
    write_run_record(result_dir, record)
    return record


# ----------------------------------------------------------------- the stages of a session
@dataclass(frozen=True)
class _Inputs:
    """The recording of one run: its files, their identity, the window and the folder."""

    videos: list[str]
    infos: list[VideoInfo]
    identities: list[dict]
    key: dict
    name: str
    result_dir: Path
    start_s: float | None
    end_s: float | None
    stride: int
    trial: TrialStartRecord | None = None  # the trial start asked for, and where it is
    growing: tuple[str, ...] = ()  # QC doubts of files tracked while still being written

    @property
    def label(self) -> str:
        """How messages name the recording."""
        return self.videos[0] if len(self.videos) == 1 else self.name

    @property
    def partial(self) -> Path:
        return self.result_dir / PARTIAL_DIR

    @property
    def origin_s(self) -> float:
        return 0.0 if self.start_s is None else float(self.start_s)

    @property
    def limit_s(self) -> float:
        return np.inf if self.end_s is None else float(self.end_s)

    @property
    def expected_s(self) -> float | None:
        """The length of the analysed part by the containers' durations, when all know it."""
        durations = [i.nominal_duration_s for i in self.infos]
        if not all(durations):
            return None
        return min(self.limit_s, float(sum(durations))) - self.origin_s  # type: ignore[arg-type]


def _open_inputs(videos, config, out_dir, name, start_s, end_s, stride,
                 growing: tuple[str, ...] = ()) -> _Inputs:
    """Probe the files, check them against the config and each other, and make the folder."""
    videos = [str(v) for v in videos]
    if not videos:
        raise ValueError("track_session needs at least one video")
    _check_window(start_s, end_s)
    request, source = _trial_request(start_s, config)
    _check_window(request, end_s)
    infos = [probe_video(v) for v in videos]
    first = infos[0]
    for v, info in zip(videos, infos, strict=True):
        check_against_frame(config, info.width, info.height, video=v)
        if (info.width, info.height) != (first.width, first.height):
            raise VideoError(
                f"{v}: frames are {info.width}x{info.height} px but {videos[0]} has "
                f"{first.width}x{first.height} px; the chunk files of one session must come "
                "from one camera"
            )
    identities = [source_identity(v) for v in videos]
    key = run_key(videos, config, stride=stride, start_s=start_s, end_s=end_s,
                  identities=identities)
    name = name or Path(videos[0]).stem
    result_dir = make_output_folder(Path(out_dir), "the results") / name
    if result_dir.exists() and not result_dir.is_dir():
        raise OutputError(
            f"{result_dir}: is a file, but the results of {name} go into a folder of this "
            "name; move the file away or give another folder for the results"
        )
    make_output_folder(result_dir, "the results")
    trial = _trial_start(request, source, infos, config, end_s)
    window_start = request if trial is None else trial.start_s if trial.found else None
    if window_start is not None and end_s is not None and end_s <= window_start:
        raise ConfigError("end_s", f"({end_s:g} s) must be later than the trial's start "
                                   f"({window_start:g} s, {source})")
    return _Inputs(videos, infos, identities, key, name, result_dir, window_start, end_s,
                   stride, trial, growing)


def _trial_request(start_s: float | str | None,
                   config: Config) -> tuple[float | str | None, str | None]:
    """The start asked for (``"auto"``, seconds, or None: the video's start) and where it
    was asked: ``start_s`` (the command line or a manifest) before the config's
    ``trial.start``."""
    if start_s is not None:
        return start_s, "start_s"
    start = config.trial.start
    if start == "auto":
        return "auto", "trial.start"
    return (float(start), "trial.start") if float(start) > 0 else (None, None)


#: seconds of a large change inside the box, after the last arm, that make a found trial
#: start doubtful (a hand always comes with its arm across the box's outline)
UNEXPLAINED_CHANGE_S = 2.0


def _trial_start(request: float | str | None, source: str | None, infos: list[VideoInfo],
                 config: Config, end_s: float | None) -> TrialStartRecord | None:
    """The ``trial`` block of run.json: found for ``auto``, as given for seconds from the
    config (a plain ``start_s`` window has none, as before)."""
    if request == "auto":
        found = detect_trial_start(infos, config, end_s)
        return TrialStartRecord(
            requested="auto", source=source, start_s=found.start_s, found=found.found,
            reason=found.reason, hand_last_seen_s=found.hand_last_seen_s,
            door_last_closed_s=found.door_last_closed_s, arm_last_seen_s=found.arm_last_seen_s,
        )
    if source == "trial.start":
        return TrialStartRecord(requested=request, source=source, start_s=float(request),
                                found=True, reason=f"given: trial.start {request:g} s")
    return None


@dataclass
class _Start:
    """What tracking starts from: a fresh background and calibration, or a checkpoint."""

    state: _Checkpoint
    background: np.ndarray
    detectors: list
    background_info: dict
    resumed_at: tuple | None  # (source, position, finished reading) of a continued run
    warnings: list[str]
    #: per arena, the running background update (None where it is off)
    followers: list = field(default_factory=list)


def _start_run(inputs: _Inputs, config: Config, resume: bool, started: str) -> _Start:
    """Continue from the checkpoint in ``.partial/`` when it was made from the same inputs,
    else start afresh (keeping the replaced results' run.json for the history)."""
    loaded = _load_checkpoint(inputs.partial, inputs.key) if resume else "not resuming"
    if isinstance(loaded, tuple):
        state, background, detectors = loaded
        try:
            background_info = read_json(inputs.partial / BACKGROUND_INFO_FILE)
        except OutputError:
            background_info = {"model": None, "warnings": []}
        followers = _load_followers(inputs.partial, detectors, state)
        if followers is not None:
            state.attempts += 1
            resumed_at = (state.source, state.position, state.finished_reading)
            return _Start(state, background, detectors, background_info, resumed_at, [],
                          followers)
        loaded = "the background update's state was not saved with the checkpoint"
    warnings = []
    if inputs.partial.exists() and loaded not in ("no checkpoint", "not resuming"):
        warnings.append(
            f"an earlier interrupted run could not be continued ({loaded}); "
            "tracked from the beginning"
        )
    return _fresh_start(inputs, config, warnings, started)


def _fresh_start(inputs: _Inputs, config: Config, warnings: list[str], started: str) -> _Start:
    """Background and detectors from samples of the recording, saved as the first
    checkpoint."""
    partial, result_dir = inputs.partial, inputs.result_dir
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    if (result_dir / "run.json").exists():  # its history goes on in the new run.json
        shutil.copy2(result_dir / "run.json", partial / PREVIOUS_RUN_FILE)
    (result_dir / "run.json").unlink(missing_ok=True)  # the folder is being remade
    samples, sample_index, sampling = background_samples(
        inputs.infos, config.background.samples, inputs.start_s, inputs.end_s
    )
    model = estimate_background_for(samples, sample_index, config)
    background = model.image
    detectors = [
        plan_background_update(
            make_detector(
                a, config.detection, background, model.samples,
                follow_lighting=config.background.follow_lighting,
            ),
            config.detection, model.samples,
        )
        for a in config.arenas
    ]
    del samples
    background_info = {
        "model": model.describe(),
        "warnings": list(model.warnings),
        "sampling": sampling,
    }
    write_json(partial / BACKGROUND_INFO_FILE, background_info)
    del model
    write_png(partial / "background.png", background)
    write_bytes(partial / DETECTORS_FILE, pickle.dumps(detectors, pickle.HIGHEST_PROTOCOL))
    state = _Checkpoint(key=inputs.key, started=started)
    followers = _new_followers(detectors)
    _save_followers(partial, followers)
    _save_checkpoint(partial, state)
    return _Start(state, background, detectors, background_info, None, warnings, followers)


def _new_followers(detectors: list) -> list:
    """Per arena, a fresh background update (None where it is off)."""
    return [BackgroundFollower(d) if (d.update or {}).get("active") else None
            for d in detectors]


def _save_followers(partial: Path, followers: list) -> None:
    """The background update's state, next to the checkpoint it belongs to."""
    if any(f is not None for f in followers):
        write_bytes(partial / FOLLOWERS_FILE, pickle.dumps(followers, pickle.HIGHEST_PROTOCOL))


def _load_followers(partial: Path, detectors: list, state: _Checkpoint) -> list | None:
    """The background update's state saved with the checkpoint; fresh ones for a run that
    has tracked nothing yet or whose update is off; None when it cannot be read."""
    if not any((d.update or {}).get("active") for d in detectors) or not state.frames_tracked:
        return _new_followers(detectors)
    try:
        with open(partial / FOLLOWERS_FILE, "rb") as f:
            followers = pickle.load(f)
    except (OSError, pickle.PickleError, EOFError, ImportError, AttributeError):
        return None
    return followers if len(followers) == len(detectors) else None


class _PartBuffer:
    """Detections of the chunks read since the last part file; :meth:`flush` writes them
    as the next part and saves the checkpoint."""

    def __init__(self, parts: TrackPartWriter, partial: Path, state: _Checkpoint, arenas,
                 followers: list | None = None):
        self.parts, self.partial, self.state = parts, partial, state
        self.followers = followers or []
        self.arena_names = [a.name for a in arenas]
        self.chunks: list[tuple] = []  # (frame index, time_s, detections) per chunk

    def add(self, frame_index: np.ndarray, time_s: np.ndarray, detections: list) -> None:
        self.chunks.append((frame_index, time_s, detections))

    def flush(self) -> None:
        if self.chunks:
            self.parts.write(rows_from_chunks(self.chunks, self.arena_names))
            self.chunks.clear()
        self.state.parts = len(self.parts.parts())
        _save_followers(self.partial, self.followers)
        _save_checkpoint(self.partial, self.state)


@dataclass
class _Reading:
    """How the frames were read: the ``parallel`` block, frames decoded by this run,
    whether a continued run could seek, the decoder threads, and when reading ended."""

    parallel: dict
    frames_grabbed: int
    seek_confirmed: bool | None
    decode_threads: int
    tracked_at: float
    frames_not_decoded: int = 0


def _read_frames(
    inputs: _Inputs, config: Config, start: _Start, parts: TrackPartWriter, *,
    workers: int | str, chunk_size: int | None, progress: bool, progress_position: int | None,
    min_segment_s: float | None, cpu_at_start: CpuSample | None = None,
    warm: WarmStart | None = None,
) -> _Reading:
    """Detect the mouse in every frame still to do (in time segments when asked for and
    possible, else one file after the other), writing part files as it goes."""
    state = start.state
    buffer = _PartBuffer(parts, inputs.partial, state, config.arenas, start.followers)
    counts = [i.nominal_frame_count for i in inputs.infos]
    with interrupts_held():  # tqdm's monitor thread, started here, leaves Ctrl-C to this one
        bar = tqdm(
            total=sum(counts) if all(counts) else None,  # type: ignore[arg-type]
            unit="frame",
            desc=inputs.name,
            disable=not progress,
            position=progress_position,
            leave=progress_position is None,
            dynamic_ncols=True,
        )
    # one thread decodes (with the cores beyond two), the main thread detects; OpenCV's own
    # thread pool only adds overhead to the small per-frame calls of detection
    decode_threads = tracking_decode_threads()
    cv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    frames_grabbed = 0
    seek_confirmed: bool | None = None
    try:
        try:
            parallel = _track_in_segments(
                inputs.videos, inputs.infos, config, start.detectors, inputs.partial, parts,
                state, buffer.flush, bar, workers=workers, stride=inputs.stride,
                window=(inputs.start_s, inputs.end_s), resumed=start.resumed_at is not None,
                min_segment_s=min_segment_s, cpu_at_start=cpu_at_start, warm=warm,
            )
        finally:
            if warm is not None:  # done with, or not used: not held through a one-pass read
                warm.close()
        not_decoded = 0
        if parallel["workers"] > 1:
            frames_grabbed += parallel.pop("frames_grabbed")
            not_decoded += parallel.pop("frames_not_decoded")
        while not state.finished_reading:
            grabbed, seeked, skipped = _read_source(
                inputs, config, start, buffer, bar, decode_threads, chunk_size
            )
            frames_grabbed += grabbed
            not_decoded += skipped
            seek_confirmed = seeked if seek_confirmed is None else seek_confirmed
    finally:
        bar.close()
        cv2.setNumThreads(cv_threads)
    return _Reading(parallel, frames_grabbed, seek_confirmed, decode_threads,
                    time.perf_counter(), not_decoded)


def _read_source(
    inputs: _Inputs, config: Config, start: _Start, buffer: _PartBuffer, bar,
    decode_threads: int, chunk_size: int | None,
) -> tuple[int, bool | None, int]:
    """Read chunk file ``state.source`` from where the state says (to its end or the end of
    the window); the frames it grabbed, for a continued file whether it seeked, and the
    frames the decoder skipped (PyAV's ``skip_nonref``)."""
    state, detectors = start.state, start.detectors
    k = state.source
    time_offset, frame_offset = _session_offsets(state.done)
    origin_s, limit_s = inputs.origin_s, inputs.limit_s
    reached_end = False
    seek_confirmed: bool | None = None
    next_part_s: float | None = None
    with VideoReader(inputs.videos[k], inputs.infos[k], decode_threads=decode_threads,
                     decode=decode_options(config, inputs.stride)) as reader, \
            closing(reader.chunks(chunk_size, stride=inputs.stride,
                                  resume_after=state.position)) as chunks:
        # closing: a stop (SIGTERM, Ctrl-C) ends the decoding thread before the capture
        # it reads from is released
        if state.luma_direct is None:
            state.luma_direct = reader.luma_direct
        for chunk in chunks:
            if seek_confirmed is None and state.position is not None:
                seek_confirmed = bool(reader.resumed_by_seek)
            t_session = chunk.time_s + time_offset
            keep = np.flatnonzero((t_session >= origin_s) & (t_session < limit_s))
            if len(keep):
                frames = chunk.frames if len(keep) == len(chunk) else chunk.frames[keep]
                times = t_session[keep]
                detections = [
                    detect_chunk(frames, d) if f is None else f.detect_chunk(frames, times)
                    for d, f in zip(detectors, start.followers, strict=True)
                ]
                buffer.add(chunk.index[keep] + frame_offset, t_session[keep] - origin_s,
                           detections)
                state.frames_tracked += len(keep)
            state.position = chunk.end_position
            bar.update(frame_offset + reader.frames_decoded - bar.n)
            if stop_requested():  # SIGTERM: keep what was tracked, then stop
                buffer.flush()
                stop_if_requested()
            if t_session[-1] >= limit_s:
                reached_end = True
                break
            if next_part_s is None:
                next_part_s = float(t_session[0]) + config.video.checkpoint_s
            if t_session[-1] >= next_part_s:
                buffer.flush()
                next_part_s = float(t_session[-1]) + config.video.checkpoint_s
        grabbed, skipped = reader.frames_grabbed, reader.frames_not_decoded
        state.done.append(
            _SourceDone(
                frames_decoded=reader.frames_decoded,
                timestamps_repaired=reader.timestamps_repaired,
                last_time_s=reader.last_time_s,
                interval_s=reader.nominal_interval_s,
                unreadable=list(reader.unreadable),
            )
        )
    state.source += 1
    state.position = None
    state.finished_reading = reached_end or state.source == len(inputs.videos)
    buffer.flush()
    return grabbed, seek_confirmed, skipped


def decode_options(config: Config, stride: int) -> DecodeOptions:
    """The decoder of the frames tracked (``video.reader``, ``video.fast_decode``); with a
    stride, the fast decoder also skips the frames no other frame refers to."""
    v = config.video
    return DecodeOptions(reader=v.reader, fast_decode=v.fast_decode,
                         skip_nonref=v.fast_decode and v.reader == "pyav" and stride > 1)


def _reader_record(config: Config, stride: int, state, start, reading: _Reading) -> ReaderRecord:
    decode = decode_options(config, stride)
    fast = decode.reader == "pyav"
    return ReaderRecord(
        luma_direct=state.luma_direct,
        background_sampling=start.background_info.get("sampling"),
        decode_threads=reading.decode_threads,
        decoder=decode.reader,
        decoder_options=decode.codec_options() | (
            {"skip_frame": "nonref"} if decode.skip_nonref else {}) if fast else None,
        frames_not_decoded=reading.frames_not_decoded if decode.skip_nonref else None,
    )


def _check_frames_tracked(inputs: _Inputs, state: _Checkpoint) -> None:
    if state.frames_tracked:
        return
    if inputs.start_s is None and inputs.end_s is None:
        raise VideoError(
            f"{inputs.videos[0]}: no frame could be decoded; check that the file plays"
        )
    until = "the end" if inputs.end_s is None else f"{inputs.end_s:g} s"
    length = _session_offsets(state.done)[0]
    raise VideoError(
        f"{inputs.label}: no frame in the window from {inputs.origin_s:g} s to {until}; the "
        f"recording is {length:.1f} s long: check start_s and end_s"
    )


def _analyse_parts(inputs: _Inputs, config: Config, parts: TrackPartWriter) -> Analysis:
    """:func:`analyse_track` on the part files (the columns the analysis reads)."""
    import pyarrow.parquet as pq

    stored = pq.read_schema(parts.parts()[0]).names if parts.parts() else []
    track = parts.read_all(
        ["frame", "time_s", "arena", "x", "y", "area_px", "detected", "n_blobs", "light_gain"]
        + [c for c in stored if c.startswith(SHARE_PREFIX)]
    )
    first = inputs.infos[0]
    expected_s = inputs.expected_s
    return analyse_track(
        track, config, video_label=inputs.label,
        nominal_interval_s=1.0 / first.nominal_fps if first.nominal_fps else None,
        nominal_duration_s=expected_s if expected_s and expected_s > 0 else None,
        doubts=(*trial_doubts(inputs.trial), *inputs.growing),
    )


def _check_unchanged(inputs: _Inputs) -> None:
    """VideoError when an input file was replaced or changed while it was tracked (not for
    a file tracked with --allow-growing, which is expected to grow): the rerun then starts
    again on the new content, since the checkpoint's key no longer matches."""
    for video, ident in zip(inputs.videos, inputs.identities, strict=True):
        if inputs.growing:
            return
        try:
            now = source_identity(video)
        except VideoError:
            raise VideoError(f"{video}: was moved or deleted while it was tracked; put it "
                             "back and rerun") from None
        if now["fingerprint"] != ident["fingerprint"] or now["size_bytes"] != ident["size_bytes"]:
            raise VideoError(f"{video}: its content changed while it was tracked (replaced "
                             "or still being written); rerun once it is final: it is then "
                             "tracked from the start")


def _write_track(result_dir: Path, parts: TrackPartWriter, analysis: Analysis,
                 config: Config) -> None:
    """``track.parquet``: the part files with the chambers the analysis assigned (and the
    chamber shares, with the signature of the door lines they follow in the metadata)."""
    import pyarrow.parquet as pq

    chamber_names = analysis.chamber
    position_names = analysis.position
    files = parts.parts()
    with_shares = bool(files) and all(
        any(c.startswith(SHARE_PREFIX) for c in pq.read_schema(p).names) for p in files
    )

    def add_chamber(part: pd.DataFrame, offset: int) -> pd.DataFrame:
        part = part.copy()
        part["chamber"] = chamber_names[offset : offset + len(part)]
        part["position_chamber"] = position_names[offset : offset + len(part)]
        for c, t in TRACK_COLUMNS.items():
            if t == "string":
                part[c] = part[c].astype(str)
        shares = [c for c in part.columns if c.startswith(SHARE_PREFIX)] if with_shares else []
        return part[[c for c in TRACK_COLUMNS if c in part.columns] + shares]

    metadata = {SHARES_METADATA_KEY: pieces_signature(config.arenas)} if with_shares else None
    write_track_from_parts(result_dir / "track.parquet", files, add_chamber, metadata=metadata)


@dataclass(frozen=True)
class _Clock:
    """When the run started (wall clock, and the counter its durations are measured on)."""

    started: str
    t0: float
    cpu: CpuSample  # the machine's and this run's CPU time (for --workers auto)


def _session_record(
    inputs: _Inputs, config: Config, start: _Start, reading: _Reading, analysis: Analysis,
    written: list[str], *, command: str, metadata: dict | None, clock: _Clock,
) -> RunRecord:
    """The run record of a tracked session."""
    state = start.state
    finished = now_iso()
    time_base, recording_warnings = _session_time_base(inputs, state, reading, analysis)
    return RunRecord(
        version=__version__,
        command=command,
        started=clock.started,
        finished=finished,
        elapsed_s=round(time.perf_counter() - clock.t0, 3),
        tracking_s=round(reading.tracked_at - clock.t0, 3),
        videos=_session_sources(inputs, state),
        session=inputs.name if len(inputs.videos) > 1 else None,
        window=Window(
            start_s=inputs.start_s,
            end_s=inputs.end_s,
            note="time_s in the results counts from start_s" if inputs.start_s else None,
        ),
        trial=inputs.trial,
        metadata=dict(metadata or {}),
        config=config_record(config),
        run_key=inputs.key,
        resume=_resume_record(inputs, start, reading),
        time_base=time_base,
        background=start.background_info["model"],
        reader=_reader_record(config, inputs.stride, state, start, reading),
        parallel=ParallelRecord.from_dict(reading.parallel),
        detection=tuple(DetectionRecord.from_dict(_detection_record(d, f))
                        for d, f in zip(start.detectors, start.followers, strict=True)),
        warnings=(
            *_trial_warnings(inputs), *start.warnings, *start.background_info["warnings"],
            *analysis.warnings, *recording_warnings,
        ),
        analysis_warnings=tuple(analysis.warnings),  # the part of warnings a reprocess redoes
        outputs=("track.parquet", *written, "background.png", "run.json"),
        track=TrackOrigin(
            made_by=command,
            finished=finished,
            config_hash=config_hash(config),
            frames=state.frames_tracked,
        ),
        **analysis_records(analysis),
    )


def _trial_warnings(inputs: _Inputs) -> list[str]:
    trial = inputs.trial
    if trial is None or trial.found is not False:
        return []
    return [f"{inputs.label}: {trial.reason}"]


def trial_doubts(trial) -> tuple[str, ...]:
    """The QC reasons an automatic trial start gives every arena when it is in doubt: not
    found (the time counted from the video's start may hold the hand and closed doors), or
    found only after the box went on differing from its empty image by more than a mouse for
    seconds after the last arm had left (moved bedding looks like that too, and the true
    start may be earlier). ``trial``: the run's trial start or its record, or None."""
    if trial is None or trial.requested != "auto":
        return ()
    if trial.found is False:
        return ("trial start not found (trial.start: auto): counted from the start of the "
                "video, which may hold the hand and closed doors",)
    hand, arm = getattr(trial, "hand_last_seen_s", None), getattr(trial, "arm_last_seen_s", None)
    if hand is not None and arm is not None and hand - arm > UNEXPLAINED_CHANGE_S:
        return (f"trial start uncertain (trial.start: auto): no arm reached in after {arm:.1f} s "
                f"but the box differed from its empty image by more than a mouse until "
                f"{hand:.1f} s (moved bedding?); the trial was counted from "
                f"{trial.start_s:.1f} s: check the video there, or give trial.start in seconds",)
    return ()


def _detection_record(detector, follower: BackgroundFollower | None) -> dict:
    """The detector's values for run.json, with what the background update did."""
    out = detector.describe()
    if follower is not None:
        out["background_update"] = {**out["background_update"], **follower.describe()}
    return out


def _session_sources(inputs: _Inputs, state: _Checkpoint) -> tuple[VideoSource, ...]:
    sources = []
    for i, (info, ident) in enumerate(zip(inputs.infos, inputs.identities, strict=True)):
        if i < len(state.done):
            time_offset, frame_offset = _session_offsets(state.done[:i])
            placement = dict(
                frame_offset=frame_offset,
                time_offset_s=round(time_offset, 6),
                frames_decoded=state.done[i].frames_decoded,
            )
        else:  # the window ended before this file
            placement = dict(frame_offset=None, time_offset_s=None, frames_decoded=0)
        sources.append(video_source(info, ident["fingerprint"], **placement))
    return tuple(sources)


def _session_time_base(
    inputs: _Inputs, state: _Checkpoint, reading: _Reading, analysis: Analysis
) -> tuple[TimeBaseRecord, list[str]]:
    """The time base of the record, and the warnings about the recording (damaged
    stretches, repaired timestamps, a short file)."""
    warnings = []
    unreadable = _unreadable_stretches(state.done, inputs.videos, inputs.origin_s)
    for stretch in unreadable:
        warnings.append(
            f"{stretch['video']}: frames {stretch['first_frame']} to "
            f"{stretch['resumed_frame'] - 1} could not be decoded (damaged file?); the time "
            f"from {stretch['after_s']} s to {stretch['resumed_s']} s counts as unknown and "
            "the rest was read"
        )
    frames_decoded = sum(d.frames_decoded for d in state.done)
    timestamps_repaired = sum(d.timestamps_repaired for d in state.done)
    if timestamps_repaired == 0:
        timestamp_source = "container"
    elif timestamps_repaired >= frames_decoded - len(state.done):
        timestamp_source = "frame_index"
    else:
        timestamp_source = "mixed"
    if timestamp_source != "container":
        warnings.append(
            f"{timestamps_repaired} frame(s) had no usable timestamp; their time was taken "
            "from the frame rate"
        )
    read_fraction = analysis.read_fraction
    if read_fraction is not None and read_fraction < 0.98:
        warnings.append(
            f"only {100 * read_fraction:.1f} % of the nominal length "
            f"({inputs.expected_s:.1f} s) could be read: the file may be truncated; "
            "results cover the part that was read"
        )
    time_base = TimeBaseRecord(
        timestamp_source=timestamp_source,
        timestamps_repaired=timestamps_repaired,
        frames_decoded=frames_decoded,
        frames_decoded_this_run=reading.frames_grabbed,
        frames_tracked=state.frames_tracked,
        stride=inputs.stride,
        nominal_fps=inputs.infos[0].nominal_fps,
        expected_duration_s=inputs.expected_s,
        unreadable=tuple(unreadable),
    )
    return time_base.with_timing(timing_record(analysis.timebase, read_fraction)), warnings


def _resume_record(inputs: _Inputs, start: _Start, reading: _Reading) -> ResumeRecord:
    """Whether the run continued an interrupted one, and from which frame and time."""
    state = start.state
    record = ResumeRecord(attempts=state.attempts, resumed=start.resumed_at is not None)
    if start.resumed_at is None:
        return record
    src, pos, was_finished = start.resumed_at
    t_off, f_off = _session_offsets(state.done[:src])
    if pos is None:  # at the start of a chunk file, or after the last one
        from_frame, from_time = f_off, t_off
    else:
        from_frame, from_time = f_off + pos.frame, t_off + pos.time_s
    kept = ParallelRecord.from_dict(reading.parallel).frames_kept()
    return replace(
        record,
        first_started=state.started,
        resumed_from_frame=from_frame,
        resumed_from_time_s=round(max(0.0, from_time - inputs.origin_s), 6),
        resumed_after_tracking=was_finished,
        seek_confirmed=reading.seek_confirmed,
        # time segments continue each from its own last part
        segment_frames_kept=kept if any(kept) else None,
    )


def track_video(
    video: str | Path,
    config: Config,
    out_dir: str | Path,
    *,
    stride: int = 1,
    progress: bool = True,
    chunk_size: int | None = None,
    progress_position: int | None = None,
    start_s: float | str | None = None,
    end_s: float | None = None,
    metadata: dict | None = None,
    resume: bool = True,
    plots: bool = True,
    command: str = "track",
    workers: int | str = 1,
    min_segment_s: float | None = None,
    exports: Sequence[str] = (),
    allow_growing: bool = False,
    growing_check_s: float = DEFAULT_CHECK_S,
) -> RunResult:
    """Track one video and write its results to ``out_dir/<video stem>/``.

    A run interrupted earlier (``.partial/`` left in that folder) is continued from its
    last checkpoint when it was made from the same video, config, stride and window. See
    :func:`track_session` for ``start_s``, ``end_s``, ``metadata``, ``plots``, ``command``,
    ``workers``, ``min_segment_s``, ``allow_growing`` and ``growing_check_s``; ``exports``:
    see :func:`finish_result`.

    Raises :class:`~cpp_tracker.errors.VideoError` when the video cannot be read and
    :class:`~cpp_tracker.errors.ConfigError` when the geometry does not fit its frame.
    """
    return track_session(
        [video],
        config,
        out_dir,
        name=Path(video).stem,
        start_s=start_s,
        end_s=end_s,
        metadata=metadata,
        stride=stride,
        progress=progress,
        chunk_size=chunk_size,
        progress_position=progress_position,
        resume=resume,
        plots=plots,
        command=command,
        workers=workers,
        min_segment_s=min_segment_s,
        exports=exports,
        allow_growing=allow_growing,
        growing_check_s=growing_check_s,
    )
