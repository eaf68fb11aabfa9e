"""``cpp-tracker pose``: a pose-estimation file instead of the tracker's detections.

The keypoints of a DeepLabCut, SLEAP, LightningPose or ``movement`` file become the track
(:mod:`cpp_tracker.tracking.pose_file`: the mean of the chosen keypoints per frame, unknown
where they are unsure), and from there the run is ``track``'s: the same
:func:`~cpp_tracker.runs.pipeline.analyse_track`, :func:`~cpp_tracker.runs.pipeline.write_analysis`
and :func:`~cpp_tracker.runs.pipeline.finish_result`, so the result folder reads, reprocesses,
summarizes and compares like a tracked one.

Time comes from the video's own timestamps when the video is given (decoded as ``track``
decodes it, so both runs of one video share every ``time_s``), else from ``--fps``, else
from a netCDF file's time in seconds; ``run.json``'s ``pose.time_from`` says which.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import __version__
from ..config.settings import Config, check_against_frame, config_hash
from ..errors import ConfigError, PoseError
from ..geometry.chambers import build_layout, keypoint_shares
from ..results.lock import lock_folder
from ..results.outputs import atomic_path, make_output_folder, write_png
from ..results.record import (
    RunRecord,
    TimeBaseRecord,
    TrackOrigin,
    TrialStartRecord,
    VideoSource,
    Window,
    now_iso,
    read_previous_record,
)
from ..tracking.empty_box import background_samples, estimate_background_for
from ..tracking.pose_file import ArenaPositions, PoseFile, pose_positions, read_pose_file
from ..tracking.tracker import (
    SHARES_METADATA_KEY,
    TRACK_COLUMNS,
    pieces_signature,
    share_columns,
)
from ..video.reader import VideoInfo, VideoReader, probe_video
from .pipeline import (
    RunResult,
    _trial_request,
    _trial_start,
    analyse_track,
    analysis_records,
    config_record,
    file_fingerprint,
    finish_result,
    timing_record,
    trial_doubts,
    video_source,
    write_analysis,
)

__all__ = ["PoseTimes", "run_pose", "pose_times"]

#: Rows a pose file may have beyond the frames its video decodes: a file analysed with
#: another decoder often has one more (e.g. the DeepLabCut file of a 749-frame MPEG-4
#: video has 750 rows). Row i is frame i; the rows past the last frame are dropped, with a
#: warning. Any other difference is refused.
EXTRA_ROWS_ALLOWED = 1


@dataclass(frozen=True)
class PoseTimes:
    """The frames of the pose file that are used, their times, and where the times come
    from."""

    frames: np.ndarray  # row of the pose file = frame index in the video
    time_s: np.ndarray
    time_from: str  # 'video timestamps', 'fps N', 'pose file'
    nominal_fps: float | None = None
    info: VideoInfo | None = None
    timestamp_source: str | None = None  # the reader's, with a video
    frames_decoded: int | None = None
    warnings: tuple[str, ...] = ()
    start_s: float = 0.0  # the trial's start in the video: time_s counts from it

    @property
    def expected_s(self) -> float | None:
        """The length of the analysed part by the container, when it says."""
        if self.info is None or not self.info.nominal_duration_s:
            return None
        return self.info.nominal_duration_s - self.start_s


def _video_times(video: Path, n_rows: int, fmt: str = "") -> PoseTimes:
    """Every decoded frame's index and timestamp, as ``track`` reads them."""
    info = probe_video(video)
    index, times = [], []
    with VideoReader(video, info) as reader:
        for chunk in reader.chunks(prefetch=False):
            index.append(chunk.index)
            times.append(chunk.time_s)
        decoded, source = reader.frames_decoded, reader.timestamp_source
    if not index:
        raise PoseError(f"{video}: no frame could be decoded; check that the file plays")
    frames, time_s = np.concatenate(index), np.concatenate(times)
    warnings = []
    if fmt == "SLEAP slp" and n_rows < decoded:
        # a .slp file holds only the frames with an instance: it ends at the last one
        warnings.append(
            f"the SLEAP file's last frame with an instance is frame {n_rows - 1} of the "
            f"{decoded} frames of {video}: the {decoded - n_rows} frame(s) after it have no "
            "position (unknown time)"
        )
    elif n_rows != decoded:
        if not 0 < n_rows - decoded <= EXTRA_ROWS_ALLOWED:
            raise PoseError(
                f"the pose file has {n_rows} frames but {video} has {decoded}: they are not "
                "of the same video (or the video was cut); give the video the pose file was "
                "made from"
            )
        warnings.append(
            f"the pose file has {n_rows} rows for the {decoded} frames of {video}: row i is "
            f"taken as frame i and the last {n_rows - decoded} row(s) are not used"
        )
    return PoseTimes(frames, time_s, "video timestamps", info.nominal_fps, info, source, decoded,
                     tuple(warnings))


def pose_times(pose: PoseFile, video: str | Path | None, fps: float | None) -> PoseTimes:
    """The time of every frame of ``pose``: the video's timestamps, else ``fps``, else the
    file's own seconds (a netCDF file)."""
    n = pose.n_frames
    if video is not None:
        return _video_times(Path(video), n, pose.format)
    if fps is not None:
        if not (np.isfinite(fps) and fps > 0):
            raise PoseError(f"--fps {fps:g}: must be a frame rate above 0")
        return PoseTimes(np.arange(n), np.arange(n) / float(fps), f"fps {float(fps):g}",
                         float(fps))
    if pose.time_s is not None:
        return PoseTimes(np.arange(n), pose.time_s, "pose file")
    raise PoseError(f"{pose.path}: its frames have no times; give the video (--video) to use "
                    "its timestamps, or its frame rate (--fps)")


def _from_trial_start(config: Config, times: PoseTimes) -> tuple[PoseTimes,
                                                               TrialStartRecord | None]:
    """The frames from the trial's start (``trial.start``, as ``track`` applies it: seconds
    or ``auto``, found in the video), their time counted from it."""
    request, source = _trial_request(None, config)
    if request is None:
        return times, None
    if request == "auto" and times.info is None:
        raise ConfigError("trial.start", "auto finds the trial's start in the video: give "
                                         "the video (--video), or the start in seconds")
    trial = _trial_start(request, source, [times.info] if times.info else [], config, None)
    if not trial.found or not trial.start_s:
        return times, trial
    start = float(trial.start_s)
    keep = times.time_s >= start
    if not keep.any():
        raise ConfigError("trial.start", f"{start:g} s is after the last frame "
                                         f"({times.time_s[-1]:.1f} s) of the pose file")
    return replace(times, frames=times.frames[keep], time_s=times.time_s[keep] - start,
                   start_s=start), trial


def _outside_warnings(positions: list[ArenaPositions]) -> list[str]:
    return [f"arena {p.arena}: {p.outside} position(s) of the pose file lay outside the "
            "arena's outline and count as undetected; check the outline if that is many"
            for p in positions if p.outside]


def _track_table(positions: list[ArenaPositions], times: PoseTimes, config: Config):
    """Frame-major track rows (each frame, then each arena), the tracker's columns plus the
    keypoints' ``likelihood`` and their share in each chamber."""
    import pandas as pd

    rows, k = times.frames, len(positions)

    def per_arena(values) -> np.ndarray:
        # frames past the end of the file (a SLEAP .slp ends at its last instance): none
        fill = False if values[0].dtype == bool else np.nan
        padded = [np.concatenate([v, np.full(max(0, rows.max() + 1 - len(v)), fill)])
                  for v in values]
        return np.stack([v[rows] for v in padded], axis=1).reshape(-1)

    detected = per_arena([p.detected for p in positions])
    shares = {name: per_arena(list(column)).astype(np.float32)
              for name, column in _share_columns(positions, config).items()}
    return pd.DataFrame({
        "frame": np.repeat(rows.astype(np.int64), k),
        "time_s": np.repeat(times.time_s.astype(np.float64), k),
        "arena": np.tile(np.array([p.arena for p in positions], dtype=object), len(rows)),
        "x": per_arena([p.x for p in positions]),
        "y": per_arena([p.y for p in positions]),
        "area_px": np.nan,
        "detected": detected,
        "n_blobs": detected.astype(np.int16),
        "likelihood": per_arena([p.likelihood for p in positions]).astype(np.float32),
        **shares,
    })


def _share_columns(positions: list[ArenaPositions], config: Config) -> dict[str, list]:
    """Per share column (``share_0`` ..), each arena's share of the chosen keypoints in that
    chamber per frame (NaN beyond the arena's chambers or where undetected): what
    ``chambers.rule: body_fraction`` decides by, as the tracker's blob shares."""
    k = max(len(a.chambers) for a in config.arenas)
    columns: dict[str, list] = {name: [] for name in share_columns(k)}
    for arena, p in zip(config.arenas, positions, strict=True):
        layout = build_layout(arena, 0.0)  # the pieces do not depend on the hysteresis
        shares = keypoint_shares(layout, p.points[:, :, 0], p.points[:, :, 1])
        for j, name in enumerate(columns):
            columns[name].append(shares[:, j] if j < shares.shape[1]
                                 else np.full(len(shares), np.nan))
    return columns


def _write_track(path: Path, track, analysis, arenas) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = track.assign(chamber=analysis.chamber.astype(str),
                         position_chamber=analysis.position.astype(str))
    shares = [c for c in table.columns if c.startswith("share_")]
    order = [c for c in TRACK_COLUMNS if c in table.columns] + ["likelihood", *shares]
    arrow = pa.Table.from_pandas(table[order], preserve_index=False)
    # the door lines the shares were counted with, as the tracker's track says them
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           SHARES_METADATA_KEY: pieces_signature(arenas)})
    atomic_path(path, lambda tmp: pq.write_table(arrow, tmp))


def _background(times: PoseTimes, config: Config) -> np.ndarray:
    """The video's empty-box image, as ``track`` estimates it (for qc.png)."""
    samples, index, _ = background_samples([times.info], config.background.samples,
                                           times.start_s or None)
    return estimate_background_for(samples, index, config).image


def _pose_block(pose: PoseFile, config: Config, positions: list[ArenaPositions],
                times: PoseTimes) -> dict:
    path = Path(pose.path)
    return {
        "file": pose.path,
        "absolute_path": str(path.resolve()),
        "fingerprint": file_fingerprint(path),
        "format": pose.format,
        "rows": pose.n_frames,
        "rows_used": int(len(times.frames)),
        "keypoints": list(pose.keypoints),
        "point": list(config.pose.point) or [pose.keypoints[0]],
        "min_likelihood": config.pose.min_likelihood,
        "individuals": {p.arena: p.individual for p in positions},
        "outside_arena": {p.arena: p.outside for p in positions},
        "time_from": times.time_from,
    }


def _time_base(times: PoseTimes, analysis) -> TimeBaseRecord:
    n = int(len(times.frames))
    record = TimeBaseRecord(
        timestamp_source=times.timestamp_source or times.time_from,
        timestamps_repaired=0,
        frames_decoded=times.frames_decoded if times.frames_decoded is not None else n,
        frames_decoded_this_run=times.frames_decoded or 0,
        frames_tracked=n,
        stride=1,
        nominal_fps=times.nominal_fps,
        expected_duration_s=times.expected_s,
    )
    return record.with_timing(timing_record(analysis.timebase, analysis.read_fraction))


def _frame_without_video(config: Config, track) -> VideoSource:
    """Without a video, the frame the results are drawn on (qc.png): the config's
    ``frame_size``, else the smallest frame holding the arenas and every position."""
    if config.frame_size is not None:
        width, height = config.frame_size
    else:
        xs = [p[0] for a in config.arenas for p in a.polygon] + [float(track["x"].max())]
        ys = [p[1] for a in config.arenas for p in a.polygon] + [float(track["y"].max())]
        width = int(np.ceil(np.nanmax(xs))) + 1
        height = int(np.ceil(np.nanmax(ys))) + 1
    return VideoSource(width=int(width), height=int(height))


def _result_dir(pose_file: Path, video: str | Path | None, out_dir: str | Path) -> Path:
    """``OUT/<video stem>``, or ``OUT/<pose file stem>`` without a video."""
    name = Path(video).stem if video is not None else pose_file.stem
    folder = make_output_folder(Path(out_dir), "the results") / name
    return make_output_folder(folder, "the results")


def run_pose(
    pose_file: str | Path,
    config: Config,
    out_dir: str | Path,
    *,
    video: str | Path | None = None,
    fps: float | None = None,
    plots: bool = True,
    exports: tuple[str, ...] = (),
) -> RunResult:
    """Results from a pose-estimation file into ``out_dir/<video stem>/`` (or the pose
    file's stem without a video), as ``track`` writes them.

    Raises :class:`~cpp_tracker.errors.PoseError` for a file that cannot be read or does
    not fit the video, :class:`~cpp_tracker.errors.ConfigError` for a keypoint or
    individual the file does not have, or a geometry outside the video's frame.
    """
    started, t0 = now_iso(), time.perf_counter()
    pose = read_pose_file(pose_file)
    positions = pose_positions(pose, config.pose, config.arenas)
    if video is not None:
        info = probe_video(video)
        check_against_frame(config, info.width, info.height, video=str(video))
    times, trial = _from_trial_start(config, pose_times(pose, video, fps))
    track = _track_table(positions, times, config)
    label = str(video) if video is not None else str(pose_file)
    interval = float(np.median(np.diff(times.time_s))) if len(times.time_s) > 1 else None
    analysis = analyse_track(track, config, video_label=label, nominal_interval_s=interval,
                             nominal_duration_s=times.expected_s, doubts=trial_doubts(trial))
    result_dir = _result_dir(Path(pose_file), video, out_dir)
    # one run at a time in a result folder, as track and reprocess
    with lock_folder(result_dir, "pose") as lock:
        previous = read_previous_record(result_dir / "run.json")
        (result_dir / "run.json").unlink(missing_ok=True)  # the folder is being remade
        _write_track(result_dir / "track.parquet", track, analysis, config.arenas)
        written = write_analysis(result_dir, analysis)
        videos = ()
        if times.info is not None:
            write_png(result_dir / "background.png", _background(times, config))
            written.append("background.png")
            videos = (video_source(times.info, file_fingerprint(video), frame_offset=0,
                                   time_offset_s=0.0, frames_decoded=times.frames_decoded),)
        else:
            (result_dir / "background.png").unlink(missing_ok=True)
            videos = (_frame_without_video(config, track),)
        finished = now_iso()
        record = RunRecord(
            version=__version__, command="pose", started=started, finished=finished,
            elapsed_s=round(time.perf_counter() - t0, 3), tracking_s=0.0, videos=videos,
            window=Window(start_s=times.start_s or None, note="time_s in the results counts "
                          "from start_s" if times.start_s else None), trial=trial,
            config=config_record(config), time_base=_time_base(times, analysis),
            warnings=(*times.warnings, *_outside_warnings(positions), *analysis.warnings,
                      *([lock.message] if lock.message else [])),
            analysis_warnings=tuple(analysis.warnings),
            outputs=("track.parquet", *written, "run.json"),
            track=TrackOrigin(made_by="pose", finished=finished, config_hash=config_hash(config),
                              frames=int(len(times.frames))),
            pose=_pose_block(pose, config, positions, times),
            **analysis_records(analysis),
        )
        record = finish_result(result_dir, record, config, plots=plots, previous=previous,
                               exports=exports)
        return RunResult(result_dir, analysis.summary, record, list(record.warnings))
