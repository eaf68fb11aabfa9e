"""The stages wired together for one video.

``track_video``: video -> background -> per-frame detections (written in parts as the run
goes) -> chambers -> per-second occupancy -> summary -> ``OUTDIR/<stem>/`` with
``track.parquet``, ``occupancy.csv``, ``summary.csv``, ``background.png`` and ``run.json``.

``analyse_track``: the part after detection, on a stored track; ``track`` and
``reprocess`` both use it, so their results agree exactly.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from . import __version__
from .background import median_background
from .config import (
    Config,
    check_against_frame,
    config_hash,
    config_to_dict,
    geometry_in_pixels,
)
from .errors import OutputError
from .geometry import UNKNOWN, assign_chambers, build_layout
from .occupancy import TimeBase, frame_durations, occupancy_per_second
from .outputs import (
    TrackPartWriter,
    read_json,
    write_csv,
    write_json,
    write_png,
    write_track_from_parts,
)
from .summary import path_steps, summarize_arena, summarize_periods, time_periods
from .tracker import TRACK_COLUMNS, detect_chunk, make_detector
from .video import VideoInfo, VideoReader, probe_video

__all__ = [
    "Analysis",
    "RunResult",
    "analyse_track",
    "track_video",
    "result_dir_for",
    "write_analysis",
    "timebase_info",
    "history_entry",
    "carry_history",
]

PARTIAL_DIR = ".partial"


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
    bins: pd.DataFrame | None = None  # summary per time bin / named window, if configured


def analyse_track(
    track: pd.DataFrame,
    config: Config,
    *,
    video_label: str,
    nominal_interval_s: float | None = None,
) -> Analysis:
    """Chambers, per-second occupancy and summary from a track table.

    ``track`` needs the columns ``frame, time_s, arena, x, y, detected`` with the rows of
    each arena in frame order. Returns new tables; ``track`` is not modified.
    """
    arena_col = track["arena"].astype(str).to_numpy()
    frames_time = track.loc[arena_col == config.arenas[0].name, "time_s"].to_numpy()
    timebase = frame_durations(frames_time, config.video.gap_factor, nominal_interval_s)
    codes = np.full(len(track), UNKNOWN, dtype=np.int16)
    chamber = np.empty(len(track), dtype=object)
    occupancy_tables = []
    summaries = []
    bin_tables = []
    stats: dict[str, dict] = {}
    warnings: list[str] = []
    periods, period_warnings = time_periods(
        timebase.end_s, config.summary.bin_s, config.summary.windows
    )
    for arena in config.arenas:
        rows = np.flatnonzero(arena_col == arena.name)
        sub = track.iloc[rows]
        if len(sub) != len(frames_time):
            raise ValueError(f"arena {arena.name}: track rows do not match the frames")
        layout = build_layout(
            arena, config.chambers.hysteresis_px, config.chambers.backdate_crossings
        )
        x = sub["x"].to_numpy(dtype=float)
        y = sub["y"].to_numpy(dtype=float)
        det = sub["detected"].to_numpy(dtype=bool)
        arena_codes, _ = assign_chambers(x, y, det, layout)
        steps_px = path_steps(x, y, config.summary.min_step_px)
        codes[rows] = arena_codes
        names = np.array([*arena.chamber_names, "unknown"], dtype=object)
        chamber[rows] = names[arena_codes]  # code -1 picks the last name: 'unknown'
        occ = occupancy_per_second(
            frames_time, timebase.durations_s, arena_codes, arena.chamber_names, timebase.end_s
        )
        occ.insert(0, "arena", arena.name)
        occupancy_tables.append(occ)
        summaries.append(
            summarize_arena(
                video=video_label,
                arena=arena.name,
                animal_id=arena.animal_id,
                chamber_names=arena.chamber_names,
                time_s=frames_time,
                durations_s=timebase.durations_s,
                codes=arena_codes,
                x=x,
                y=y,
                duration_s=timebase.end_s,
                px_per_cm=arena.px_per_cm,
                min_step_px=config.summary.min_step_px,
                steps_px=steps_px,
            )
        )
        if periods:
            bin_tables.append(
                summarize_periods(
                    video=video_label,
                    arena=arena.name,
                    animal_id=arena.animal_id,
                    chamber_names=arena.chamber_names,
                    time_s=frames_time,
                    durations_s=timebase.durations_s,
                    codes=arena_codes,
                    x=x,
                    y=y,
                    periods=periods,
                    px_per_cm=arena.px_per_cm,
                    min_step_px=config.summary.min_step_px,
                    steps_px=steps_px,
                )
            )
        n_missing = int((~det).sum())
        share = n_missing / max(1, len(det))
        stats[arena.name] = {
            "frames": int(len(det)),
            "frames_without_detection": n_missing,
            "share_without_detection": round(share, 6),
        }
        if share > 0.05:
            warnings.append(
                f"arena {arena.name}: no mouse detected in {100 * share:.1f} % of frames "
                f"({n_missing} of {len(det)}); check the threshold and the arena outline "
                "in the preview"
            )
    if timebase.gaps:
        missing = sum(b - a for a, b in timebase.gaps)
        warnings.append(
            f"{len(timebase.gaps)} gap(s) in the frame timestamps, {missing:.2f} s in all, "
            "counted as unknown time"
        )
    warnings.extend(period_warnings)
    occupancy = pd.concat(occupancy_tables, ignore_index=True) if occupancy_tables else None
    summary = pd.concat(summaries, ignore_index=True)
    bins = pd.concat(bin_tables, ignore_index=True) if bin_tables else None
    return Analysis(codes, chamber, occupancy, summary, timebase, stats, warnings, bins)


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


def timebase_info(tb: TimeBase, read_fraction: float | None) -> dict:
    """The parts of run.json's ``time_base`` that follow from the frame durations."""
    return {
        "median_interval_s": tb.median_interval_s,
        "measured_fps": 1.0 / tb.median_interval_s if tb.median_interval_s else None,
        "duration_s": tb.end_s,
        "observed_s": tb.observed_s,
        "read_fraction_of_nominal": read_fraction,
        "gaps": tb.gap_list(),
    }


def history_entry(run_info: dict) -> dict:
    """What ``run.json``'s history records about one run that wrote results."""
    config = run_info.get("config", {})
    return {
        "command": run_info.get("command"),
        "finished": run_info.get("finished"),
        "version": run_info.get("version"),
        "config_hash": config.get("hash"),
        "config_source": config.get("source"),
        "track": run_info.get("track"),
        "config": config.get("resolved"),
    }


def carry_history(previous_run_json: Path, run_info: dict) -> list[dict]:
    """The history for a new ``run.json``: the previous file's history (if it exists and can
    be read), then an entry for ``run_info``. The last entry describes the current results."""
    history: list[dict] = []
    if previous_run_json.exists():
        try:
            previous = read_json(previous_run_json)
        except OutputError:
            previous = None
        if isinstance(previous, dict):
            history = list(previous.get("history") or [history_entry(previous)])
    return [*history, history_entry(run_info)]


@dataclass
class RunResult:
    """What one ``track_video`` run wrote."""

    result_dir: Path
    summary: pd.DataFrame
    run_info: dict
    warnings: list[str]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def video_identity(info: VideoInfo) -> dict:
    return {
        "path": info.path,
        "absolute_path": str(Path(info.path).resolve()),
        "size_bytes": info.size_bytes,
        "mtime": info.mtime,
        "mtime_iso": _dt.datetime.fromtimestamp(info.mtime, _dt.timezone.utc).isoformat(),
        "codec": info.codec,
        "width": info.width,
        "height": info.height,
        "nominal_fps": info.nominal_fps,
        "nominal_frame_count": info.nominal_frame_count,
        "nominal_duration_s": info.nominal_duration_s,
    }


def _chunk_rows(chunk, detections: list[tuple], arena_names: list[str]) -> pd.DataFrame:
    """Frame-major rows (frame, then arena in config order) for one chunk."""
    n = len(chunk)
    k = len(arena_names)
    cols = {
        "frame": np.repeat(chunk.index, k),
        "time_s": np.repeat(chunk.time_s, k),
        "arena": np.tile(np.array(arena_names, dtype=object), n),
    }
    for j, name in enumerate(("x", "y", "area_px", "n_blobs")):
        cols[name] = np.stack([d[j] for d in detections], axis=1).reshape(-1)
    table = pd.DataFrame(cols)
    table["detected"] = np.isfinite(table["x"].to_numpy())
    table["n_blobs"] = table["n_blobs"].astype("int16")
    return table[[c for c in TRACK_COLUMNS if c != "chamber"]]


def _draw_qc_figure(result_dir: Path, run_info: dict, config: Config) -> None:
    """Write ``qc.png`` from the results on disk and ``run_info`` (not yet written); on any
    failure add a warning to ``run_info`` instead of raising."""
    from .plots import write_qc_figure
    from .results import StoredResult

    try:
        write_qc_figure(StoredResult(result_dir, run_info, config))
    except Exception as e:  # noqa: BLE001 - a figure must never cost the results
        run_info["warnings"].append(
            f"the QC figure qc.png could not be drawn ({type(e).__name__}: {e}); the results "
            f"are complete; retry with 'cpp-tracker plot {result_dir}'"
        )
    else:
        run_info["outputs"].insert(-1, "qc.png")


def track_video(
    video: str | Path,
    config: Config,
    out_dir: str | Path,
    *,
    stride: int = 1,
    progress: bool = True,
    chunk_size: int = 64,
    progress_position: int | None = None,
    plots: bool = True,
    command: str = "track",
) -> RunResult:
    """Track one video and write its results to ``out_dir/<video stem>/``.

    With ``plots``, the QC figure ``qc.png`` is drawn from the written results before
    ``run.json`` (which is written last); a failure to draw it is a warning, never a lost
    result. ``command`` is recorded in ``run.json`` (and its history) as what made the
    results.

    Raises :class:`~cpp_tracker.errors.VideoError` when the video cannot be read and
    :class:`~cpp_tracker.errors.ConfigError` when the geometry does not fit its frame.
    """
    started = _now()
    t0 = time.perf_counter()
    info = probe_video(video)
    check_against_frame(config, info.width, info.height, video=str(video))
    result_dir = result_dir_for(video, out_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    partial = result_dir / PARTIAL_DIR
    if partial.exists():
        shutil.rmtree(partial)
    parts = TrackPartWriter(partial)
    warnings: list[str] = []

    with VideoReader(video, info) as reader:
        samples, _ = reader.sample_frames(config.background.samples)
        background = median_background(samples)
        write_png(result_dir / "background.png", background)
        detectors = [
            make_detector(a, config.detection, background, samples) for a in config.arenas
        ]
        del samples
        arena_names = [a.name for a in config.arenas]
        buffer: list[pd.DataFrame] = []
        buffered_until = None
        bar = tqdm(
            total=info.nominal_frame_count,
            unit="frame",
            desc=Path(video).name,
            disable=not progress,
            position=progress_position,
            leave=progress_position is None,
            dynamic_ncols=True,
        )
        frames_tracked = 0
        last_decoded = 0
        try:
            for chunk in reader.chunks(chunk_size, stride=stride):
                detections = [detect_chunk(chunk.frames, d) for d in detectors]
                buffer.append(_chunk_rows(chunk, detections, arena_names))
                frames_tracked += len(chunk)
                if buffered_until is None:
                    buffered_until = float(chunk.time_s[0]) + config.video.checkpoint_s
                if chunk.time_s[-1] >= buffered_until:
                    parts.write(pd.concat(buffer, ignore_index=True))
                    buffer = []
                    buffered_until = float(chunk.time_s[-1]) + config.video.checkpoint_s
                bar.update(reader.frames_decoded - last_decoded)
                last_decoded = reader.frames_decoded
        finally:
            bar.close()
        if buffer:
            parts.write(pd.concat(buffer, ignore_index=True))
        frames_decoded = reader.frames_decoded
        timestamp_source = reader.timestamp_source
        timestamps_repaired = reader.timestamps_repaired
        luma_direct = reader.luma_direct
    t_tracked = time.perf_counter()

    if frames_tracked == 0:
        from .errors import VideoError

        raise VideoError(f"{video}: no frame could be decoded; check that the file plays")

    track = parts.read_all(["frame", "time_s", "arena", "x", "y", "detected"])
    nominal = 1.0 / info.nominal_fps if info.nominal_fps else None
    analysis = analyse_track(
        track, config, video_label=str(video), nominal_interval_s=nominal
    )
    del track
    warnings.extend(analysis.warnings)
    if timestamp_source != "container":
        warnings.append(
            f"{timestamps_repaired} frame(s) had no usable timestamp; their time was taken "
            "from the frame rate"
        )
    nominal_duration = info.nominal_duration_s
    read_fraction = None
    if nominal_duration:
        read_fraction = analysis.timebase.end_s / nominal_duration
        if read_fraction < 0.98:
            warnings.append(
                f"only {100 * read_fraction:.1f} % of the nominal length "
                f"({nominal_duration:.1f} s) could be read: the file may be truncated; "
                "results cover the part that was read"
            )

    chamber_names = analysis.chamber

    def add_chamber(part: pd.DataFrame, offset: int) -> pd.DataFrame:
        part = part.copy()
        part["chamber"] = chamber_names[offset : offset + len(part)]
        for c, t in TRACK_COLUMNS.items():
            if t == "string":
                part[c] = part[c].astype(str)
        return part

    write_track_from_parts(result_dir / "track.parquet", parts.parts(), add_chamber)
    written = write_analysis(result_dir, analysis)
    finished = _now()
    tb = analysis.timebase
    run_info = {
        "tool": "cpp-tracker",
        "version": __version__,
        "command": command,
        "started": started,
        "finished": finished,
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "tracking_s": round(t_tracked - t0, 3),
        "video": video_identity(info),
        "config": {
            "source": config.source,
            "hash": config_hash(config),
            "resolved": config_to_dict(config),
            # the geometry as tracked, in pixels (a template in cm mapped by its corners)
            "geometry_px": geometry_in_pixels(config),
        },
        "time_base": {
            "timestamp_source": timestamp_source,
            "timestamps_repaired": timestamps_repaired,
            "frames_decoded": frames_decoded,
            "frames_tracked": frames_tracked,
            "stride": stride,
            **timebase_info(tb, read_fraction),
        },
        "reader": {"luma_direct": luma_direct},
        "detection": [d.describe() for d in detectors],
        "arenas": analysis.arena_stats,
        "warnings": warnings,
        "analysis_warnings": analysis.warnings,  # the part of warnings a reprocess redoes
        "outputs": ["track.parquet", *written, "background.png", "run.json"],
        "track": {
            "made_by": command,
            "finished": finished,
            "config_hash": config_hash(config),
            "frames": frames_tracked,
        },
    }
    if plots:
        _draw_qc_figure(result_dir, run_info, config)
    run_info["history"] = carry_history(result_dir / "run.json", run_info)
    write_json(result_dir / "run.json", run_info)
    shutil.rmtree(partial, ignore_errors=True)
    return RunResult(result_dir, analysis.summary, run_info, warnings)

