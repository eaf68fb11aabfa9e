"""New results from a stored track when only geometry or summary settings changed.

A reviewer asks for the door line 1 cm further left, or for 5-minute bins: the mouse's
positions (``track.parquet``) do not change, only what is made of them. :func:`reprocess_result`
reads the stored track and recomputes chambers, occupancy, summary and bins with
:func:`~cpp_tracker.runs.pipeline.analyse_track` (the same function ``track`` uses), so the results
equal a fresh ``track`` run with the new config, without decoding the video.

Whether a stored track can be reused is decided by :func:`config_changes`, which compares the
resolved config in ``run.json`` with the new one key by key. Keys that change what is
detected in the frames (:data:`~cpp_tracker.config.settings.DETECTION_KEYS`: background, detection,
arena polygons and masks) or the track's structure (arenas added, removed, renamed or
reordered) need a new tracking run; everything else (door lines, chambers, hysteresis,
scale, time base, summary settings, animal ids) does not.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..config.settings import (
    DETECTION_KEYS,
    Config,
    check_against_frame,
    config_hash,
    config_to_dict,
    with_default_sections,
)
from ..errors import ConfigError, OutputError, VideoError
from ..results.lock import lock_folder
from ..results.outputs import atomic_path
from ..results.record import RunRecord, VideoSource, now_iso, read_run_record
from ..results.stored import PREVIOUS_DIR, is_result_dir
from ..tracking.tracker import (
    ASSIGNED_COLUMNS,
    SHARE_PREFIX,
    SHARES_METADATA_KEY,
    pieces_signature,
    share_columns,
)
from ..visual.report import update_reports
from .pipeline import (
    analyse_track,
    analysis_records,
    config_record,
    finish_result,
    timing_record,
    track_session,
    trial_doubts,
    write_analysis,
)

__all__ = [
    "TRACK_STRUCTURE_KEYS",
    "ReprocessResult",
    "config_changes",
    "keep_previous_results",
    "reprocess_result",
    "stored_shares_problem",
]

#: Key paths whose change means the stored track no longer matches the arenas: its rows are
#: labelled by arena name in config order.
TRACK_STRUCTURE_KEYS = ("arenas[]", "arenas[].name")



# --------------------------------------------------------------------------------------
# comparing configs


def _plain(value: Any) -> Any:
    """JSON-normalised copy (tuples -> lists, ints and floats as JSON has them)."""
    return json.loads(json.dumps(value))


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    """Key path -> leaf value. Lists of mappings are entered by index; other lists (points,
    polygons) are leaves."""
    if isinstance(value, dict):
        for key, v in value.items():
            _flatten(v, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            _flatten(v, f"{path}[{i}]", out)
        if not value:
            out[path] = []
    else:
        out[path] = value


def _pattern(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def _matches(pattern_path: str, keys: tuple[str, ...]) -> bool:
    return any(
        pattern_path == k or pattern_path.startswith(k + ".") or pattern_path.startswith(k + "[")
        for k in keys
    )


def _needs_new_track(path: str) -> bool:
    p = _pattern(path)
    return _matches(p, DETECTION_KEYS) or p in TRACK_STRUCTURE_KEYS


def config_changes(old_resolved: dict, new_resolved: dict) -> tuple[list[str], list[str]]:
    """Which keys differ between two resolved configs, split by what they need.

    Parameters
    ----------
    old_resolved, new_resolved
        Resolved configs as :func:`~cpp_tracker.config.settings.config_to_dict` gives them (and as
        ``run.json`` stores them under ``config.resolved``).

    Returns
    -------
    detection_keys_changed, other_keys_changed
        Key paths such as ``detection.threshold``, ``arenas[0].polygon`` or
        ``arenas[0].doors[1].line``, in config order. The first list holds keys that need
        a new tracking run (detection settings, arena polygons and masks, arenas added,
        removed, renamed or reordered); the second the keys that a reprocess from the
        stored track can apply. Both empty: the configs give the same results.

    Examples
    --------
    >>> old = {"detection": {"threshold": "auto"}, "chambers": {"hysteresis_px": 6.0}}
    >>> new = {"detection": {"threshold": 30}, "chambers": {"hysteresis_px": 8.0}}
    >>> config_changes(old, new)
    (['detection.threshold'], ['chambers.hysteresis_px'])
    """
    old_flat: dict[str, Any] = {}
    new_flat: dict[str, Any] = {}
    _flatten(_plain(with_default_sections(old_resolved)), "", old_flat)
    _flatten(_plain(with_default_sections(new_resolved)), "", new_flat)
    missing = object()
    detection: list[str] = []
    other: list[str] = []
    seen: set[str] = set()
    for path in [*new_flat, *old_flat]:
        if path in seen:
            continue
        seen.add(path)
        if old_flat.get(path, missing) == new_flat.get(path, missing):
            continue
        # an arena that exists in only one of the configs is reported once, as arenas[i]
        arena = re.match(r"^arenas\[\d+\]", path)
        old_has = arena and any(k.startswith(arena.group(0) + ".") for k in old_flat)
        new_has = arena and any(k.startswith(arena.group(0) + ".") for k in new_flat)
        if arena and old_has != new_has:
            if arena.group(0) not in detection:
                detection.append(arena.group(0))
            continue
        (detection if _needs_new_track(path) else other).append(path)
    for path in _pixel_outline_changes(old_resolved, new_resolved):
        if not any(p == path or p.startswith(path + "[") for p in detection):
            detection.append(path)
    return detection, other


def _pixel_outline_changes(old_resolved: dict, new_resolved: dict) -> list[str]:
    """``arenas[i].polygon`` / ``.masks`` where the outlines *in pixels* differ.

    A safety net under the key-by-key comparison: however a config writes its geometry
    (e.g. in centimetres mapped onto the frame), what detection uses is the pixel outline
    and masks of each arena. Configs that do not parse are left to the key comparison.
    """
    from ..config.settings import parse_config

    try:
        old = parse_config(copy.deepcopy(old_resolved), source="run.json")
        new = parse_config(copy.deepcopy(new_resolved), source="new config")
    except (ConfigError, TypeError, ValueError, KeyError):
        return []
    changed = []
    for i, (a, b) in enumerate(zip(old.arenas, new.arenas, strict=False)):
        if a.polygon != b.polygon:
            changed.append(f"arenas[{i}].polygon")
        if a.masks != b.masks:
            changed.append(f"arenas[{i}].masks")
    return changed


# --------------------------------------------------------------------------------------
# reprocessing one result folder


@dataclass
class ReprocessResult:
    """What :func:`reprocess_result` did to one result folder."""

    result_dir: Path
    status: str  # 'reprocessed', 'retracked' or 'unchanged'
    changed_keys: list[str]
    config_hash: str
    previous_dir: Path | None = None
    elapsed_s: float = 0.0
    warnings: list[str] = field(default_factory=list)
    #: the ``report.html`` pages showing this folder that were rewritten with the new results
    reports: list[Path] = field(default_factory=list)
    #: pages that could not be rewritten and carry an out-of-date banner instead (each
    #: also has a line in ``warnings``)
    stale_reports: list[Path] = field(default_factory=list)


def keep_previous_results(result_dir: Path, old_hash: str) -> Path:
    """Keep the current results under ``result_dir/previous/<old_hash>/`` before they are
    replaced (``-2``, ``-3`` ... is appended when that folder exists already).

    Files are hard-linked where the file system allows (no extra space: every result file
    is replaced by renaming a new file over it, so the link keeps the old content), copied
    otherwise. Returns the folder.
    """
    base = result_dir / PREVIOUS_DIR
    dest = base / old_hash
    n = 2
    while dest.exists():
        dest = base / f"{old_hash}-{n}"
        n += 1
    dest.mkdir(parents=True)
    for src in sorted(result_dir.iterdir()):
        if not src.is_file() or src.name.startswith("."):
            continue
        try:
            os.link(src, dest / src.name)
        except OSError:
            shutil.copy2(src, dest / src.name)
    return dest


def _read_record(result_dir: Path) -> RunRecord:
    record = read_run_record(result_dir)
    if not isinstance(record.config.resolved, dict):
        raise OutputError(
            f"{result_dir / 'run.json'}: holds no resolved config; these results were not "
            "made by cpp-tracker track: run track again"
        )
    return record


def _read_track_table(track_path: Path) -> pa.Table:
    try:
        return pq.read_table(track_path)
    except (OSError, pa.ArrowException) as e:
        raise OutputError(
            f"{track_path}: cannot be read ({e}); run 'cpp-tracker track' again"
        ) from None


def _write_with_assigned(track_path: Path, table: pa.Table, analysis) -> None:
    """Write ``table`` with the columns assigned from the config (``chamber``,
    ``position_chamber``) replaced by ``analysis``'s, atomically."""
    values = {"chamber": analysis.chamber, "position_chamber": analysis.position}
    for name in ASSIGNED_COLUMNS:
        if values.get(name) is None:
            continue
        column = pa.array(values[name], type=pa.string())
        names = table.column_names
        if name in names:
            table = table.set_column(names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    # frame numbers and times are all different: a dictionary of them is built in vain
    # (and dropped), a third of the time of writing the track
    dictionary = [c for c in table.column_names if c not in ("frame", "time_s")]
    atomic_path(track_path, lambda tmp: pq.write_table(table, tmp, use_dictionary=dictionary))


def _without_stale_shares(table: pa.Table, config: Config) -> pa.Table:
    """``table`` without its chamber shares when they were cut by other door lines or
    chamber points than ``config``'s: a share column must never describe chambers the
    results no longer have."""
    key = SHARES_METADATA_KEY.encode()
    metadata = dict(table.schema.metadata or {})
    if metadata.get(key, b"").decode() == pieces_signature(config.arenas):
        return table
    metadata.pop(key, None)
    stale = [c for c in table.column_names if c.startswith(SHARE_PREFIX)]
    return table.drop_columns(stale).replace_schema_metadata(metadata)


def _video_label(result_dir: Path, video: VideoSource) -> str:
    """The ``video`` column of the stored summary (so that it stays as it was)."""
    try:
        import pandas as pd

        stored = pd.read_csv(result_dir / "summary.csv", usecols=["video"], nrows=1, dtype=str)
        if len(stored) and isinstance(stored["video"].iloc[0], str):
            return stored["video"].iloc[0]
    except (OSError, ValueError):
        pass
    return video.path or result_dir.name


def reprocess_result(
    result_dir: str | Path,
    config: Config,
    *,
    retrack: bool = False,
    keep_previous: bool = False,
    force: bool = False,
    progress: bool = False,
    plots: bool = True,
    reports: bool = True,
    exports: tuple[str, ...] = (),
) -> ReprocessResult:
    """Bring one result folder up to date with ``config``.

    When only keys that a stored track allows changed (see :func:`config_changes`), the
    chambers (``track.parquet``'s ``chamber`` column), ``occupancy.csv``, ``summary.csv``
    and ``summary_bins.csv`` are recomputed from ``track.parquet`` without opening the
    video; the results equal a fresh ``track`` run with ``config``. ``run.json`` is
    updated and its ``history`` gains an entry.

    Parameters
    ----------
    result_dir
        ``OUT/<video stem>/`` as written by ``track``.
    config
        The new configuration.
    retrack
        When detection keys changed, track the video again instead of refusing: the
        video(s) (every chunk file of a batch session), time window, stride and metadata
        are taken from ``run.json``.
    keep_previous
        Keep the current results under ``result_dir/previous/<old config hash>/``.
    force
        Recompute even when the config is unchanged (e.g. after a software update).
    progress
        Show a progress bar when the video is tracked again.
    plots
        Draw the QC figure ``qc.png`` again, as ``track`` does (it shows the chambers, so
        the old one would mislead); without, a stale ``qc.png`` is removed.
    reports
        Rewrite every ``report.html`` that shows this folder (the batch report in the folder
        or a folder above it, see :func:`~cpp_tracker.visual.report.update_reports`), so that
        no page shows the old numbers; a page that cannot be rewritten gets an out-of-date
        banner and a line in ``warnings``. Also after a reprocess that fails part-way. Pass
        False when the caller rewrites the reports once after many folders.
    exports
        Formats to export (``movement``: ``track.nc`` and ``regions.geojson``, see
        :mod:`cpp_tracker.runs.export`); an export the folder has already is rewritten too,
        so that it never shows the replaced results.

    Raises
    ------
    ConfigError
        Detection keys changed and ``retrack`` is False (the message names the keys), or
        the new geometry does not fit the video's frame.
    OutputError, VideoError
        The stored results cannot be read, or the video is needed but missing.
    """
    t0 = time.perf_counter()
    started = now_iso()
    result_dir = Path(result_dir)
    _refuse_kept_results(result_dir)
    old = _read_record(result_dir)
    new_hash = config_hash(config)
    detection, other = config_changes(old.config.resolved, config_to_dict(config))
    if old.pose is not None:
        detection, other = _pose_changes(detection + other, result_dir, retrack)
    exports = _exports_kept(old, exports)
    if detection and not retrack:
        raise _detection_changed(config, old, detection, result_dir)
    changed = detection + other
    if not changed and not force:
        return ReprocessResult(result_dir, "unchanged", [], new_hash)
    stale = None if detection else stored_shares_problem(result_dir, config)
    if stale and not retrack:
        raise ConfigError(config.source, f"{stale}; run 'cpp-tracker track' again, or "
                          "reprocess with --retrack")
    if stale:
        detection = ["chambers.rule"]  # what makes tracking again necessary
    if detection:
        videos = _videos_to_retrack(result_dir, old)
    else:
        stored = _read_stored_track(result_dir, old, config)
        analysis = _analyse_stored_track(stored, result_dir, old, config)
    # from here on files change
    try:
        if detection:
            result = _retrack(videos, result_dir, old, config, changed, new_hash, t0,
                              keep_previous=keep_previous, progress=progress, plots=plots,
                              exports=exports)
        else:  # (a retrack locks the folder in track_session)
            with lock_folder(result_dir, "reprocess"):
                result = _write_reprocessed(stored, analysis, result_dir, old, config,
                                            changed, new_hash, t0, started,
                                            keep_previous=keep_previous, plots=plots,
                                            exports=exports)
    except BaseException:
        if reports:  # the pages show what is on disk now (update_reports never raises)
            update_reports([result_dir])
        raise
    if reports:
        _rewrite_reports(result)
    return result


def _retrack(
    videos: list[Path], result_dir: Path, old: RunRecord, config: Config, changed: list[str],
    new_hash: str, t0: float, *, keep_previous: bool, progress: bool, plots: bool,
    exports: tuple[str, ...] = (),
) -> ReprocessResult:
    previous = _keep_previous(result_dir, old) if keep_previous else None
    run = _track_again(videos, result_dir, old, config, progress=progress, plots=plots,
                       exports=exports)
    return ReprocessResult(
        result_dir, "retracked", changed, new_hash, previous,
        round(time.perf_counter() - t0, 3), run.warnings,
    )


def _write_reprocessed(
    stored: _StoredTrack, analysis, result_dir: Path, old: RunRecord, config: Config,
    changed: list[str], new_hash: str, t0: float, started: str, *, keep_previous: bool,
    plots: bool, exports: tuple[str, ...] = (),
) -> ReprocessResult:
    previous = _keep_previous(result_dir, old) if keep_previous else None
    _write_with_assigned(stored.path, _without_stale_shares(stored.table, config), analysis)
    written = write_analysis(result_dir, analysis)
    record = old.reprocessed(
        version=__version__,
        config=config_record(config),
        timing=timing_record(analysis.timebase, analysis.read_fraction),
        analysis_warnings=analysis.warnings,
        written=written,
        changed_keys=changed,
        started=started,
        finished=now_iso(),
        elapsed_s=round(time.perf_counter() - t0, 3),
        **analysis_records(analysis),
    )
    # no release_memory: nothing large was freed (the track is still held here), and its
    # garbage collection of the whole process would cost ~40 ms
    record = finish_result(result_dir, record, config, plots=plots, previous=old,
                           exports=exports, release=False)
    return ReprocessResult(
        result_dir, "reprocessed", changed, new_hash, previous,
        round(time.perf_counter() - t0, 3), list(record.warnings),
    )


def _rewrite_reports(result: ReprocessResult) -> None:
    """Rewrite the pages that show ``result``'s folder; note those that could not be."""
    update = update_reports([result.result_dir])
    result.reports = list(update.rewritten)
    result.stale_reports = [page for page, _ in update.stale]
    for page, why in update.stale:
        result.warnings.append(
            f"{page} could not be rewritten with the new results ({why}); it now says it is "
            f"out of date: rewrite it with 'cpp-tracker report {shlex.quote(str(page.parent))}'"
        )


def _exports_kept(old: RunRecord, exports: tuple[str, ...]) -> tuple[str, ...]:
    """The exports asked for, and those the folder has already (rewritten, not left
    showing the replaced results)."""
    from .export import MOVEMENT_FILES, check_exports

    has = ("movement",) if any(o in MOVEMENT_FILES for o in old.outputs) else ()
    return check_exports((*exports, *has))


def _pose_changes(changed: list[str], result_dir: Path,
                  retrack: bool) -> tuple[list[str], list[str]]:
    """For a result made from a pose file: the keys that need the pose file read again
    (``pose.*``, arenas added, removed or renamed) are refused, with what to run; detection
    keys do not apply to it."""
    again = [k for k in changed if k.startswith("pose.") or k == "pose"
             or _pattern(k) in TRACK_STRUCTURE_KEYS or re.fullmatch(r"arenas\[\d+\]", k)]
    if again:
        why = "--retrack tracks videos, not pose files: " if retrack else ""
        raise ConfigError("--config", f"changes {', '.join(again)} of {result_dir}, made from a "
                                      f"pose file; {why}run 'cpp-tracker pose' again")
    return [], changed


def _refuse_kept_results(result_dir: Path) -> None:
    if result_dir.parent.name == PREVIOUS_DIR and is_result_dir(result_dir.parent.parent):
        raise OutputError(
            f"{result_dir}: is an earlier result kept by --keep-previous and is left as it "
            f"was; reprocess {result_dir.parent.parent} instead"
        )


def stored_shares_problem(result_dir: str | Path, config: Config) -> str | None:
    """Why the stored track cannot serve ``chambers.rule: body_fraction`` (no chamber
    shares, or shares cut by other door lines than ``config``'s), None when it can or the
    rule does not need them."""
    if config.chambers.rule != "body_fraction":
        return None
    track_path = Path(result_dir) / "track.parquet"
    try:
        schema = pq.read_schema(track_path)
    except (OSError, pa.ArrowException):
        return None  # reading the track reports it
    k = max(len(a.chambers) for a in config.arenas)
    if any(c not in schema.names for c in share_columns(k)):
        return (f"{track_path} holds no chamber shares (it was tracked by an older version, "
                "or its door lines were moved since), which chambers.rule: body_fraction "
                "needs, so the video must be tracked again")
    stored = (schema.metadata or {}).get(SHARES_METADATA_KEY.encode(), b"").decode()
    if stored != pieces_signature(config.arenas):
        return (f"{track_path} holds chamber shares cut by other door lines or chamber "
                "points than this config's, so for chambers.rule: body_fraction the video "
                "must be tracked again")
    return None


def _detection_changed(
    config: Config, old: RunRecord, detection: list[str], result_dir: Path
) -> ConfigError:
    """The error for a config whose detection keys changed (new keys named as such)."""
    old_flat: dict[str, Any] = {}
    _flatten(_plain(with_default_sections(old.config.resolved)), "", old_flat)
    new_keys = [k for k in detection if k not in old_flat and not k.startswith("arenas[")]
    since = (
        f" ({', '.join(new_keys)} did not exist in the version that made these results)"
        if new_keys
        else ""
    )
    return ConfigError(
        config.source,
        f"changes {', '.join(detection)} compared with the config of {result_dir} "
        f"(hash {old.config.hash or 'unknown'}){since}; these change what is detected in the "
        "frames, so the stored track cannot be reused: run 'cpp-tracker track' again, or "
        "reprocess with --retrack",
    )


def _keep_previous(result_dir: Path, old: RunRecord) -> Path:
    return keep_previous_results(result_dir, old.config.hash or "unknown")


def _track_again(
    videos: list[Path], result_dir: Path, old: RunRecord, config: Config, *,
    progress: bool, plots: bool, exports: tuple[str, ...] = (),
):
    """Track the video(s) again with the window, stride and metadata of ``old`` (a trial
    start asked for as ``auto`` is found again; one from the config is the config's)."""
    start_s = old.window.start_s
    if old.trial is not None:
        start_s = old.trial.requested if old.trial.source == "start_s" else None
    return track_session(
        videos,
        config,
        result_dir.parent,
        name=result_dir.name,
        start_s=start_s,
        end_s=old.window.end_s,
        metadata=dict(old.metadata) or None,
        stride=int(old.time_base.stride or 1),
        progress=progress,
        plots=plots,
        command="reprocess --retrack",
        exports=exports,
    )


@dataclass(frozen=True)
class _StoredTrack:
    path: Path
    table: pa.Table


def _read_stored_track(result_dir: Path, old: RunRecord, config: Config) -> _StoredTrack:
    """``track.parquet``, checked against the new config before anything is written."""
    track_path = result_dir / "track.parquet"
    if not track_path.is_file():
        raise OutputError(
            f"{track_path}: not found, so these results cannot be reprocessed; run "
            "'cpp-tracker track' again"
        )
    video = old.video
    if video.width and video.height:
        check_against_frame(config, int(video.width), int(video.height), video=video.path)
    table = _read_track_table(track_path)
    needed = ["frame", "time_s", "arena", "x", "y", "detected"]
    absent = [c for c in needed if c not in table.column_names]
    if absent:
        raise OutputError(
            f"{track_path}: lacks the column(s) {', '.join(absent)}; run 'cpp-tracker track' again"
        )
    return _StoredTrack(track_path, table)


def _analyse_stored_track(stored: _StoredTrack, result_dir: Path, old: RunRecord, config: Config):
    """:func:`analyse_track` on the stored positions, as ``track`` ran it."""
    # every stored column but those assigned from the config: analyse_track takes what it
    # needs, as in track
    assigned = [c for c in ASSIGNED_COLUMNS if c in stored.table.column_names]
    track = stored.table.drop_columns(assigned).to_pandas()
    stored_arenas = set(track["arena"].astype(str).unique())
    missing = [a.name for a in config.arenas if a.name not in stored_arenas]
    if missing:
        raise OutputError(
            f"{stored.path}: has no rows for arena(s) {', '.join(missing)}; run "
            "'cpp-tracker track' again"
        )
    nominal_fps = old.video.nominal_fps
    try:
        return analyse_track(
            track,
            config,
            video_label=_video_label(result_dir, old.video),
            nominal_interval_s=1.0 / nominal_fps if nominal_fps else None,
            # the end of the recording, and so the fraction read, does not depend on the config
            nominal_duration_s=old.time_base.expected_s,
            doubts=trial_doubts(old.trial),
        )
    except ValueError as e:
        raise OutputError(
            f"{stored.path}: does not fit the config ({e}); run track again"
        ) from None


def _videos_to_retrack(result_dir: Path, old: RunRecord) -> list[Path]:
    """The video file(s) of a result, from its record (all chunk files of a session)."""
    videos = []
    for source in old.videos or (old.video,):
        video = source.existing_path(prefer_absolute=True)
        if video is None:
            raise VideoError(
                f"{result_dir / 'run.json'}: the video {source.shown_path} is needed to track "
                "again but was not found; put it back at that path, or run 'cpp-tracker track' "
                "on it"
            )
        videos.append(video)
    return videos
