"""Many videos: inputs -> jobs -> isolated runs (local processes or Dask) -> batch_status.csv.

A *job* is one result folder: one video, or the chunk files of one recording read as one
continuous session (:func:`cpp_tracker.runs.pipeline.track_session`). :func:`collect_jobs`
turns the command line's inputs (video files, folders searched recursively, manifest CSVs)
into jobs; :func:`run_batch` runs them, each in its own worker process (or on a Dask
cluster), so that a video that fails, even one that crashes its process, is recorded in
``OUTDIR/batch_status.csv`` and the others finish.

A rerun skips each job whose results are complete and were made from the same files (size,
modification time, content fingerprint), config, and window; a job interrupted in the
middle continues from its last checkpoint (see :mod:`cpp_tracker.runs.pipeline`).

Manifest CSV columns: ``video`` (required; relative paths are relative to the manifest),
optional ``config``, ``animal_id``, ``session``, ``phase``, ``start_s`` (seconds, or ``auto``:
the trial's start found in the video, as ``trial.start: auto``), ``end_s``, and any
other columns. Everything but ``video`` and ``config`` is stored in the result's run.json
under ``metadata``.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from ..config.settings import Config, config_to_dict, load_config
from ..errors import ConfigError, CppTrackerError, OutputError
from ..processes import (
    interruptible_task,
    interrupts_held,
    leave_when_gone,
    take_interrupts_in_tasks,
)
from ..results.lock import lock_folder
from ..results.outputs import make_output_folder, write_csv
from ..results.record import RunRecord, now_iso, read_run_record
from ..video.reader import VIDEO_SUFFIXES
from ..video.recording import DEFAULT_CHECK_S, still_being_written
from .pipeline import (
    RunResult,
    result_status,
    run_key,
    track_session,
    update_metadata,
)
from .stopping import DEFAULT_GRACE_S, request_stop

__all__ = [
    "STATUS_COLUMNS",
    "STATUS_FILE",
    "MANIFEST_COLUMNS",
    "BatchJob",
    "BatchResult",
    "collect_jobs",
    "read_manifest",
    "run_job",
    "run_batch",
    "default_workers",
]

#: The status file, in the output folder.
STATUS_FILE = "batch_status.csv"

#: Columns of batch_status.csv, in order.
STATUS_COLUMNS = [
    "video",  # the input file(s); chunk files of a session joined by ';'
    "status",  # pending, running, queued, ok, needs_review, skipped, failed, interrupted,
    # in_progress (the file is still being recorded: tracked by a later run)
    "error",  # why it failed (one sentence), empty otherwise
    "started",  # ISO time the job started (this run)
    "finished",  # ISO time it finished
    "duration_s",  # wall-clock seconds of this run
    "result_dir",  # the result folder, relative to OUTDIR
    "session",  # session name for chunk files, empty for single videos
    "frames_decoded",  # frames decoded by this run (fewer when it resumed)
    "resumed_from_s",  # where an interrupted run was continued (analysis time), or empty
    "note",  # e.g. 'up to date', warnings of the run
    "review",  # why its QC asks for review (results made or kept), empty when it passed
]

#: Manifest columns with a meaning; any other column is carried as metadata.
MANIFEST_COLUMNS = ("video", "config", "animal_id", "session", "phase", "start_s", "end_s")

_SAME_WITHIN_SESSION = ("config", "animal_id", "start_s", "end_s")


@dataclass(frozen=True)
class BatchJob:
    """One result folder to make: a video, or the chunk files of one recording."""

    name: str  # result folder name in OUTDIR
    videos: tuple[str, ...]  # absolute paths, in reading order
    config: str  # absolute path of the config file
    shown: tuple[str, ...] = ()  # the videos as the user gave them (for messages)
    session: str | None = None
    animal_id: str | None = None
    start_s: float | str | None = None  # "auto": the trial start found in the video
    end_s: float | None = None
    metadata: dict = field(default_factory=dict)
    origin: str = ""  # where the job came from, e.g. 'manifest.csv line 4'
    problem: str | None = None  # known before running: the job fails with this message

    @property
    def label(self) -> str:
        """The ``video`` column of the status file."""
        return ";".join(self.shown or self.videos)


@dataclass
class BatchResult:
    """What :func:`run_batch` did: one status row per job, in input order."""

    rows: list[dict]
    status_path: Path

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows
                if r["status"] not in ("ok", "needs_review", "skipped", "in_progress")]

    @property
    def in_progress(self) -> list[dict]:
        """Rows of videos still being recorded (left for a later run)."""
        return [r for r in self.rows if r["status"] == "in_progress"]

    @property
    def needing_review(self) -> list[dict]:
        """Rows whose results (made now or kept as up to date) their QC flags."""
        return [r for r in self.rows if r["status"] in ("ok", "needs_review", "skipped")
                and r.get("review")]

    @property
    def exit_code(self) -> int:
        """0 when every job succeeded (or was up to date, or is still being recorded), 1
        when any failed."""
        return 1 if self.failed else 0


# ------------------------------------------------------------------------------ inputs
def default_workers() -> int:
    """The number of cores this process may use (respects CPU affinity, e.g. SLURM)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def _find_videos(folder: Path, exclude: Path | None) -> list[Path]:
    """Video files under ``folder`` (recursively, hidden folders and ``exclude`` skipped)."""
    found = []
    for root, dirs, files in os.walk(folder):
        root_path = Path(root)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and (exclude is None or (root_path / d).resolve() != exclude)
        )
        found.extend(root_path / f for f in sorted(files) if not f.startswith("."))
    return [p for p in found if _is_video(p)]


def _number_or_none(value: str, column: str, where: str) -> float | str | None:
    if value == "":
        return None
    if column == "start_s" and value.strip().lower() == "auto":
        return "auto"  # the trial's start, found in the video (see trial.start: auto)
    try:
        v = float(value)
    except ValueError:
        also = " or 'auto'" if column == "start_s" else ""
        raise ConfigError(
            where, f"{column} must be a number of seconds{also}, got {value!r}") from None
    if not v >= 0 or v == float("inf"):
        raise ConfigError(where, f"{column} must be a time in seconds of at least 0, got {value}")
    return v


@dataclass
class _Entry:
    """One video as found in the inputs, before sessions are grouped."""

    path: Path  # absolute
    shown: str
    config: str
    origin: str
    from_manifest: bool = False
    session: str | None = None
    chunk_key: tuple = ()
    values: dict = field(default_factory=dict)  # manifest columns, as strings
    problem: str | None = None


def read_manifest(path: str | Path, default_config: str) -> list[_Entry]:
    """The rows of a manifest CSV as entries (one per row).

    Raises :class:`ConfigError` when the file cannot be read or has no ``video`` column; a
    problem in one row (an empty video cell, a bad number) is kept with that row's entry.
    """
    path = Path(path)
    table = _read_manifest_table(path)
    return [
        _manifest_entry(path, i, {k: str(v).strip() for k, v in row.items()}, default_config)
        for i, row in enumerate(table.to_dict("records"))
    ]


def _read_manifest_table(path: Path) -> pd.DataFrame:
    """The manifest as a table of strings (any common delimiter), with a ``video`` column."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Excel's "CSV UTF-8" starts with a BOM
    except FileNotFoundError:
        raise ConfigError(str(path), "manifest not found; check the path") from None
    except UnicodeDecodeError:
        raise ConfigError(
            str(path), "is not UTF-8 text; save it as 'CSV UTF-8' (comma delimited)"
        ) from None
    except OSError as e:
        raise ConfigError(str(path), f"cannot be read ({e})") from None
    try:  # spreadsheets in some locales write ';' or tabs between columns
        delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    try:
        table = pd.read_csv(
            io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False,
            skipinitialspace=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ConfigError(str(path), f"cannot be read as a CSV table ({e})") from None
    table.columns = [str(c).strip() for c in table.columns]
    if "video" not in table.columns:
        found = ", ".join(table.columns) or "none"
        raise ConfigError(
            str(path),
            f"a manifest needs a 'video' column with one video file per row (columns found: "
            f"{found})",
        )
    return table


def _manifest_entry(path: Path, i: int, values: dict, default_config: str) -> _Entry:
    """Row ``i`` of the manifest at ``path`` (its cells stripped), with its problem if any;
    file names are relative to the manifest's folder."""
    base = path.parent
    where = f"{path} line {i + 2}"
    video = values.get("video", "")
    config = values.get("config", "")
    shown = os.path.normpath(base / video) if video else ""
    entry = _Entry(
        path=(base / video).resolve() if video else base.resolve(),
        shown=shown,
        config=str((base / config).resolve()) if config else default_config,
        origin=where,
        from_manifest=True,
        session=values.get("session") or None,
        values=values,
    )
    if not video:
        entry.problem = f"{where}: the video cell is empty"
    else:
        try:
            for column in ("start_s", "end_s"):
                _number_or_none(values.get(column, ""), column, where)
        except ConfigError as e:
            entry.problem = str(e)
    return entry


def _chunk_key(name: str, match: re.Match) -> tuple:
    chunk = match.groupdict().get("chunk")
    if chunk is None:
        return (0, name)
    return (0, int(chunk), name) if chunk.isdigit() else (1, chunk, name)


def compile_session_pattern(pattern: str | None) -> re.Pattern | None:
    """Check and compile ``--session-pattern``; it needs a ``(?P<session>...)`` group."""
    if not pattern:
        return None
    try:
        rx = re.compile(pattern)
    except re.error as e:
        raise ConfigError("--session-pattern", f"is not a valid regular expression ({e})") from None
    if "session" not in rx.groupindex:
        raise ConfigError(
            "--session-pattern",
            "needs a named group (?P<session>...) for the session name, e.g. "
            r"'^(?P<session>.+)_(?P<chunk>\d+)\.mp4$'",
        )
    return rx


def _merge_values(entries: list[_Entry]) -> tuple[dict, str | None]:
    """One session's manifest values: each column's common value, or per-chunk values."""
    merged: dict = {}
    problem = None
    columns: list[str] = []
    for e in entries:
        columns.extend(c for c in e.values if c not in columns)
    for c in columns:
        if c == "video":
            continue
        vals = [e.values.get(c, "") for e in entries]
        given = sorted({v for v in vals if v != ""})
        if len(given) <= 1:
            if given:
                merged[c] = given[0]
        elif c in _SAME_WITHIN_SESSION:
            problem = (
                f"{entries[0].origin}: the rows of session '{entries[0].session}' give "
                f"different {c} values ({', '.join(given)}); give it once, or the same on "
                "every row"
            )
        else:
            merged[c] = vals  # differs between chunk files: kept per file
    return merged, problem


def _job_from(entries: list[_Entry], name: str, session: str | None) -> BatchJob:
    values, problem = _merge_values(entries)
    problem = next((e.problem for e in entries if e.problem), None) or problem
    metadata = {k: v for k, v in values.items() if k != "config"}
    if session is not None:
        metadata["session"] = session
    start_s = end_s = None
    if problem is None:
        try:
            start_s = _number_or_none(values.get("start_s", ""), "start_s", entries[0].origin)
            end_s = _number_or_none(values.get("end_s", ""), "end_s", entries[0].origin)
            if start_s not in (None, "auto") and end_s is not None and end_s <= start_s:
                raise ConfigError(
                    entries[0].origin, f"end_s ({end_s:g}) must be later than start_s "
                    f"({start_s:g})"
                )
        except ConfigError as e:
            problem = str(e)
    return BatchJob(
        name=name,
        videos=tuple(str(e.path) for e in entries),
        config=entries[0].config,
        shown=tuple(e.shown for e in entries),
        session=session,
        animal_id=values.get("animal_id") or None,
        start_s=start_s,
        end_s=end_s,
        metadata=metadata,
        origin=entries[0].origin,
        problem=problem,
    )


def collect_jobs(
    inputs: Iterable[str | Path],
    config: str | Path,
    *,
    out_dir: str | Path | None = None,
    session_pattern: str | None = None,
) -> list[BatchJob]:
    """Turn video files, folders and manifest CSVs into jobs, in input order.

    Folders are searched recursively for files ending in :data:`VIDEO_SUFFIXES` (hidden
    folders and ``out_dir`` skipped). Rows of a manifest sharing a ``session`` become one
    job (chunk files in row order); so do videos from folders or the command line whose
    file names match ``session_pattern`` with the same ``session`` group (ordered by its
    ``chunk`` group, else by name). A video listed more than once is tracked once, with
    its manifest row when it has one.

    Raises :class:`ConfigError` for a manifest without a ``video`` column or a bad
    pattern; a missing file or a bad row becomes a job that fails with its message.
    """
    default_config = str(Path(config).resolve())
    rx = compile_session_pattern(session_pattern)
    exclude = Path(out_dir).resolve() if out_dir is not None else None
    entries = [e for raw in inputs for e in _entries_of(raw, default_config, exclude)]
    entries = _listed_once(entries)
    _mark_missing_files(entries)
    if rx is not None:
        _sessions_from_names(entries, rx)
    return _checked_names(_jobs_by_session(entries))


def _entries_of(raw: str | Path, default_config: str, exclude: Path | None) -> list[_Entry]:
    """The entries of one input: a folder's videos, a manifest's rows, or one video."""
    item = Path(raw)
    shown = os.path.normpath(str(raw))
    if item.suffix.lower() == ".csv" and not item.is_dir():
        return read_manifest(item, default_config)
    if not item.is_dir():
        return [_Entry(item.resolve(), shown, default_config, "command line")]
    videos = _find_videos(item, exclude)
    if not videos:
        return [_Entry(item.resolve(), shown, default_config, shown, problem=(
            f"{shown}: no video files in this folder (looked for {', '.join(VIDEO_SUFFIXES)})"
        ))]
    return [_Entry(v.resolve(), os.path.normpath(v), default_config, shown) for v in videos]


def _listed_once(entries: list[_Entry]) -> list[_Entry]:
    """A video listed several times is tracked once, preferring its manifest row; a second
    manifest row for it becomes a problem."""
    by_path: dict[Path, list[int]] = {}
    for i, e in enumerate(entries):
        if e.problem is None or e.from_manifest:
            by_path.setdefault(e.path, []).append(i)
    dropped: set[int] = set()
    for idx in by_path.values():
        if len(idx) < 2:
            continue
        rows = [i for i in idx if entries[i].from_manifest]
        keep = rows[0] if rows else idx[0]
        for i in idx:
            if i == keep:
                continue
            if entries[i].from_manifest and entries[i].problem is None:
                entries[i].problem = (
                    f"{entries[i].origin}: {entries[i].shown} is already listed at "
                    f"{entries[keep].origin}; list each video once"
                )
            elif not entries[i].from_manifest:
                dropped.add(i)
    return [e for i, e in enumerate(entries) if i not in dropped]


def _mark_missing_files(entries: list[_Entry]) -> None:
    for e in entries:
        if e.problem is None and not e.path.exists():
            e.problem = f"{e.shown}: file not found; check the path" + (
                f" (listed at {e.origin})" if e.from_manifest else ""
            )
        elif e.problem is None and e.path.is_dir():
            e.problem = f"{e.shown}: is a folder; give it on the command line, not in a manifest"


def _sessions_from_names(entries: list[_Entry], rx: re.Pattern) -> None:
    """The session (and chunk order) of videos not from a manifest, from their file name."""
    for e in entries:
        if e.from_manifest:
            continue
        m = rx.search(e.path.name)
        if m and m.group("session"):
            e.session = m.group("session")
            e.chunk_key = _chunk_key(e.path.name, m)


def _jobs_by_session(entries: list[_Entry]) -> list[BatchJob]:
    """One job per session (at the place of its first chunk) and per single video."""
    sessions: dict[tuple, list[_Entry]] = {}
    for i, e in enumerate(entries):
        key: tuple = ("session", e.session) if e.session else ("single", i)
        sessions.setdefault(key, []).append(e)
    jobs: list[BatchJob] = []
    for key, group in sessions.items():
        if key[0] == "session":
            if not group[0].from_manifest:
                group = sorted(group, key=lambda e: e.chunk_key)
            jobs.append(_job_from(group, key[1], key[1]))
        else:
            jobs.append(_job_from(group, group[0].path.stem, None))
    return jobs


def _checked_names(jobs: list[BatchJob]) -> list[BatchJob]:
    """Result folder names must be usable and distinct: a job that breaks this fails."""
    jobs = list(jobs)
    by_name: dict[str, list[int]] = {}
    for i, job in enumerate(jobs):
        bad = (
            job.name in ("", ".", "..")
            or job.name.startswith(".")
            or any(c in job.name for c in '/\\:*?"<>|')
        )
        if bad and job.problem is None:
            jobs[i] = replace(
                job,
                problem=f"{job.origin}: session name '{job.name}' cannot be a folder name; "
                "use letters, digits, '-' and '_'",
            )
        by_name.setdefault(job.name, []).append(i)
    for name, idx in by_name.items():
        if len(idx) < 2:
            continue
        labels = " and ".join(jobs[i].label for i in idx[:3])
        for i in idx:
            if jobs[i].problem is None:
                jobs[i] = replace(
                    jobs[i],
                    problem=f"{labels} would all write to the result folder '{name}'; rename "
                    "the files, or name each one with a 'session' column in a manifest",
                )
    return jobs


# ------------------------------------------------------------------------------- one job
class _JobProblem(CppTrackerError):
    """A job that cannot run, found while reading the inputs (message complete)."""


def _with_animal_id(config: Config, animal_id: str | None, where: str) -> Config:
    """The config with ``animal_id`` as its (single) arena's animal id."""
    if animal_id is None:
        return config
    if len(config.arenas) != 1:
        raise ConfigError(
            where,
            f"animal_id '{animal_id}' can only replace the animal id of a config with one "
            f"arena, and {config.source} has {len(config.arenas)}; set animal_id for each "
            "arena in the config instead",
        )
    return replace(config, arenas=(replace(config.arenas[0], animal_id=animal_id),))


def _prepare(job: BatchJob) -> tuple[Config, dict]:
    """The job's config (with its animal id) and run key; raises what is wrong."""
    if job.problem:
        raise _JobProblem(job.problem)
    config = load_config(job.config)
    config = _with_animal_id(config, job.animal_id, job.origin or job.label)
    key = run_key(job.videos, config, start_s=job.start_s, end_s=job.end_s)
    return config, key


def review_reasons(record: RunRecord) -> str:
    """Why a result's QC asks for review, in one line ('' when it passed): the reasons of
    each arena that needs it, named by arena when the video holds several."""
    names = list(record.qc)
    return "; ".join(
        (f"{arena}: " if len(names) > 1 else "") + "; ".join(record.doubts(arena))
        for arena in names
        if record.doubts(arena)
    )


def _row(job: BatchJob, status: str, **fields) -> dict:
    row = {c: "" for c in STATUS_COLUMNS}
    row.update(
        video=job.label,
        status=status,
        result_dir=job.name,
        session=job.session or "",
    )
    row.update({k: ("" if v is None else v) for k, v in fields.items()})
    return row


def _failure_text(e: BaseException) -> str:
    if isinstance(e, CppTrackerError):
        return str(e).replace("\n", " ")
    if isinstance(e, MemoryError):
        return "ran out of memory; run fewer workers at once (--workers)"
    return (
        f"unexpected failure ({type(e).__name__}: {e}); see batch_errors.log in the output "
        "folder and report it"
    )


def check_job(job: BatchJob, out_dir: str | Path) -> dict | None:
    """The status row of a job that needs no run (up to date, or failing before it
    starts), else ``None``. Refreshes the metadata of up-to-date results."""
    started = now_iso()
    t0 = time.perf_counter()
    try:
        _, key = _prepare(job)
        current, _ = result_status(Path(out_dir) / job.name, key)
        if not current:
            return None
        changed = update_metadata(Path(out_dir) / job.name, job.metadata)
    except Exception as e:  # noqa: BLE001 - recorded in the status file
        return _row(
            job,
            "failed",
            error=_failure_text(e),
            started=started,
            finished=now_iso(),
            duration_s=round(time.perf_counter() - t0, 3),
        )
    return _row(
        job,
        "skipped",
        started=started,
        finished=now_iso(),
        duration_s=round(time.perf_counter() - t0, 3),
        note="up to date" + ("; metadata updated from the manifest" if changed else ""),
        review=review_reasons(read_run_record(Path(out_dir) / job.name)),
    )


def reprocess_job(job: BatchJob, config: Config, key: dict, out_dir: str | Path) -> dict | None:
    """Bring a finished result up to date from its stored track when only settings that a
    track allows changed (door lines, chambers, hysteresis, scale, summary, QC): the status
    row, or ``None`` when the job needs a tracking run (see :mod:`cpp_tracker.runs.reprocess`)."""
    from .reprocess import config_changes, reprocess_result, stored_shares_problem

    result_dir = Path(out_dir) / job.name
    if not (result_dir / "run.json").exists():
        return None
    current, reason = result_status(result_dir, key)
    if current or reason != "the config changed":
        return None
    old = read_run_record(result_dir)
    old_key = old.run_key or {}
    same_inputs = {k: v for k, v in old_key.items() if k != "config_hash"} == {
        k: v for k, v in key.items() if k != "config_hash"
    }
    if not same_inputs:
        return None
    detection, _ = config_changes(old.config.resolved, config_to_dict(config))
    if detection or stored_shares_problem(result_dir, config):
        return None  # (chambers.rule: body_fraction without shares for these door lines)
    started = now_iso()
    t0 = time.perf_counter()
    # the batch writes its report once at the end
    done = reprocess_result(result_dir, config, plots=True, reports=False)
    update_metadata(result_dir, job.metadata)
    review = review_reasons(read_run_record(result_dir))
    return _row(
        job,
        "needs_review" if review else "ok",
        review=review,
        started=started,
        finished=now_iso(),
        duration_s=round(time.perf_counter() - t0, 3),
        frames_decoded=0,
        note="reprocessed from the stored track, no video decoded ("
        + ", ".join(done.changed_keys)
        + " changed)",
    )


def run_job(
    job: BatchJob,
    out_dir: str | Path,
    *,
    force: bool = False,
    progress: bool = False,
    progress_position: int | None = None,
) -> dict:
    """Run one job and return its status row; never raises for a failing video.

    Up-to-date results are skipped unless ``force``; an interrupted run is continued from
    its checkpoint unless ``force``. An unexpected error's traceback is returned under the
    extra key ``_traceback``.
    """
    started = now_iso()
    t0 = time.perf_counter()
    try:
        done = _run_unless_current(
            job, out_dir, force=force, progress=progress, progress_position=progress_position
        )
    except Exception as e:  # noqa: BLE001 - isolation: every failure becomes a status row
        return _failed_row(job, e, started, t0)
    if isinstance(done, dict):  # up to date, or reprocessed from its stored track
        return done
    record = done.record
    review = review_reasons(record)
    return _row(
        job,
        "needs_review" if review else "ok",
        review=review,
        started=started,
        finished=now_iso(),
        duration_s=round(time.perf_counter() - t0, 3),
        frames_decoded=record.time_base.frames_decoded_this_run,
        resumed_from_s=record.resume.resumed_from_s,
        note="; ".join(done.warnings),
    )


def _run_unless_current(
    job: BatchJob, out_dir: str | Path, *, force: bool, progress: bool,
    progress_position: int | None,
) -> dict | RunResult:
    """The job's status row when its results are up to date or could be reprocessed from
    the stored track (not with ``force``); otherwise it is tracked, and the run returned."""
    config, key = _prepare(job)
    if not force:
        skipped = check_job(job, out_dir)
        if skipped is not None:
            return skipped
        reprocessed = reprocess_job(job, config, key, out_dir)
        if reprocessed is not None:
            return reprocessed
    return track_session(
        job.videos,
        config,
        out_dir,
        name=job.name,
        start_s=job.start_s,
        end_s=job.end_s,
        metadata=job.metadata,
        progress=progress,
        progress_position=progress_position,
        resume=not force,
        command="batch",
        growing_check_s=0.0,  # the batch checked before starting the job
    )


def _failed_row(job: BatchJob, e: Exception, started: str, t0: float) -> dict:
    """The status row of a job that failed with ``e`` (called while handling it: an
    unexpected error's traceback goes under ``_traceback``)."""
    row = _row(
        job,
        "failed",
        error=_failure_text(e),
        started=started,
        finished=now_iso(),
        duration_s=round(time.perf_counter() - t0, 3),
    )
    if not isinstance(e, CppTrackerError):
        row["_traceback"] = traceback.format_exc()
    return row


# ---------------------------------------------------------------------- local processes
_SLOTS = None  # worker side: queue of free progress-bar positions


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when the batch process dies (even by
    SIGKILL), so that no orphan keeps writing into the output folder."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def _init_worker(lock, slots, threads: int, parent_pid: int | None = None) -> None:
    global _SLOTS
    import signal

    # SIGTERM (from the batch stopping, or the cluster to every process of the job): save
    # the frames tracked so far with the checkpoint, then stop (runs/stopping)
    signal.signal(signal.SIGTERM, lambda signum, frame: request_stop(signum))
    _die_with_parent()
    if parent_pid is not None:
        # workers forked by the forkserver are not the batch process's children, so the
        # kernel's parent-death signal does not reach them
        leave_when_gone(parent_pid, exit_code=70)
    _SLOTS = slots
    tqdm.set_lock(lock)
    import cv2

    cv2.setNumThreads(threads)
    take_interrupts_in_tasks()  # held while the pool started this worker


def _run_in_worker(task: Callable, job: BatchJob, out_dir: str, force: bool, progress: bool):
    slot = _SLOTS.get() if (_SLOTS is not None and progress) else None
    try:
        with interruptible_task():
            return task(job, out_dir, force=force, progress=progress, progress_position=slot)
    finally:
        if slot is not None:
            _SLOTS.put(slot)


def _process_context():
    """Fresh worker processes without fork's hazards: forkserver (imports cpp_tracker once,
    then forks a clean process per video) where the platform has it, else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["cpp_tracker.runs.batch"])
        return ctx
    return multiprocessing.get_context("spawn")  # pragma: no cover - Windows


class _VideoPool(ProcessPoolExecutor):
    """The batch's worker pool: with ``max_tasks_per_child=1`` a fresh process per video,
    until :meth:`stop_starting` (Python 3.11's pool replaces a worker that ended even
    while it shuts down; a replacement started under a batch that is stopping fails in its
    start-up, with a traceback, once the batch process is gone)."""

    _starting = True

    def stop_starting(self) -> None:
        with self._shutdown_lock:
            self._starting = False

    def _adjust_process_count(self) -> None:
        if self._starting:
            super()._adjust_process_count()


def _stop_pool(pool: _VideoPool, grace_s: float = DEFAULT_GRACE_S) -> None:
    """Stop a pool: cancel what has not started, ask the running workers to stop (SIGTERM:
    each saves what it tracked with its checkpoint), and kill those still running after
    ``grace_s`` seconds (their jobs continue from their last checkpoint next time).

    No worker starts any more (:class:`_VideoPool`), and the pool is shut down once its
    workers are gone: shut down without waiting, Python 3.11's pool drops its process
    table while its manager thread may still be replacing a worker that ended, and that
    thread failed with a traceback (Ctrl-C, ~1 batch in 10).
    """
    pool.stop_starting()
    # and those started but not yet in the pool's table (a Ctrl-C in the middle of a
    # submission): stopped now, not left to fail once this process is gone
    processes = list({*(getattr(pool, "_processes", None) or {}).values(),
                      *multiprocessing.active_children()})
    for process in processes:
        try:
            process.terminate()
        except (OSError, ValueError, AttributeError):
            pass
    deadline = time.monotonic() + grace_s
    for process in processes:
        try:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
        except (OSError, ValueError, AttributeError, AssertionError):
            pass
    pool.shutdown(wait=True, cancel_futures=True)


def _result_row(fut: Future, job: BatchJob) -> dict | None:
    """The status row a finished future carries; ``None`` when its worker process died."""
    try:
        return fut.result()
    except BrokenProcessPool:
        return None
    except Exception as e:  # noqa: BLE001 - the task itself failed: record it
        row = _row(job, "failed", error=_failure_text(e), finished=now_iso())
        row["_traceback"] = "".join(traceback.format_exception(e))
        return row


def _crash_row(job: BatchJob) -> dict:
    return _row(
        job,
        "failed",
        error="the worker process died while tracking this video (a crash in the video "
        "decoder, or killed for using too much memory); check that the file plays, or "
        "run it alone with 'cpp-tracker track'",
        finished=now_iso(),
    )


def _run_local(
    jobs: list[tuple[int, BatchJob]],
    out_dir: str,
    workers: int,
    *,
    force: bool,
    progress: bool,
    task: Callable,
    on_start: Callable[[int], None],
    on_done: Callable[[int, dict], None],
    grace_s: float = DEFAULT_GRACE_S,
) -> None:
    """Run ``jobs`` in a pool of ``workers`` processes, one fresh process per job.

    When a worker process dies (segfault, out-of-memory kill) the pool breaks and every job
    running in it fails with it; those jobs are then run again one at a time, so that only
    the one that really crashes its process is recorded as failed.
    """
    ctx = _process_context()
    lock = ctx.RLock()  # shared by the progress bars of all processes
    tqdm.set_lock(lock)
    pool_args = _PoolArgs(ctx, lock, default_workers(), task, out_dir, force, progress,
                          grace_s)
    queue = list(jobs)
    suspects: list[tuple[int, BatchJob]] = []
    while queue or suspects:
        alone = bool(suspects)
        todo = [suspects.pop(0)] if alone else queue
        n = 1 if alone else max(1, min(workers, len(todo)))
        waiting, broken = _run_pool(todo, n, pool_args, on_start, on_done)
        if alone:
            for index, job in broken:
                on_done(index, _crash_row(job))
        else:
            queue = waiting
            if len(broken) == 1:
                on_done(broken[0][0], _crash_row(broken[0][1]))
            else:
                suspects.extend(broken)


@dataclass(frozen=True)
class _PoolArgs:
    """What every worker pool of a local batch is made with and runs."""

    ctx: object
    lock: object
    cores: int
    task: Callable
    out_dir: str
    force: bool
    progress: bool
    grace_s: float = DEFAULT_GRACE_S


def _run_pool(
    todo: list[tuple[int, BatchJob]], n: int, args: _PoolArgs,
    on_start: Callable[[int], None], on_done: Callable[[int, dict], None],
) -> tuple[list[tuple[int, BatchJob]], list[tuple[int, BatchJob]]]:
    """Run ``todo`` in a pool of ``n`` processes until done or the pool breaks; returns the
    jobs not started and those whose process died with the pool."""
    slots = args.ctx.Queue()  # type: ignore[attr-defined]
    with interrupts_held():  # its feeder thread (started by put) leaves Ctrl-C to this one
        for i in range(n):
            slots.put(i + 1)
    fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
    pool = _VideoPool(
        max_workers=n,
        mp_context=args.ctx,  # type: ignore[arg-type]
        initializer=_init_worker,
        initargs=(args.lock, slots, max(1, args.cores // n), os.getpid()),
        **fresh,  # a new process per video: nothing a video leaves behind accumulates
    )
    running: dict[Future, tuple[int, BatchJob]] = {}
    waiting = list(todo)
    broken: list[tuple[int, BatchJob]] = []
    try:
        while waiting or running:
            _submit_while_free(pool, waiting, running, n, args, on_start)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                _collect(fut, running.pop(fut), broken, on_done)
            if broken:  # the pool is gone: what else ran in it ended with it
                for fut, entry in running.items():
                    _collect(fut, entry, broken, on_done)
                running.clear()
                break
    except BaseException:
        _stop_pool(pool, args.grace_s)
        raise
    pool.shutdown(wait=True)
    return waiting, broken


def _submit_while_free(pool, waiting, running, n, args: _PoolArgs, on_start) -> None:
    while waiting and len(running) < n:
        index, job = waiting.pop(0)
        try:
            # a submission may start the fork server (which imports the pipeline) and a
            # worker: a Ctrl-C in their imports would print their tracebacks
            with interrupts_held():
                fut = pool.submit(_run_in_worker, args.task, job, args.out_dir, args.force,
                                  args.progress)
        except BrokenProcessPool:
            waiting.insert(0, (index, job))
            return
        running[fut] = (index, job)
        on_start(index)


def _collect(fut: Future, entry: tuple[int, BatchJob], broken: list, on_done) -> None:
    """Report a finished job, or note it as broken when its process died."""
    index, job = entry
    row = _result_row(fut, job)
    if row is None:
        broken.append(entry)
    else:
        on_done(index, row)


# ------------------------------------------------------------------------------- Dask
def _connect_dask(scheduler):
    try:
        from dask.distributed import Client
    except ImportError:
        raise ConfigError(
            "--scheduler",
            "needs the packages dask and distributed; install them with "
            "pip install 'cpp-tracker[dask]'",
        ) from None
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout="30s"), True
    except (OSError, TimeoutError, ValueError) as e:
        raise ConfigError(
            "--scheduler",
            f"cannot connect to the Dask scheduler at {scheduler} ({e}); check the address "
            "and that the scheduler is running",
        ) from None


def _run_dask(
    jobs: list[tuple[int, BatchJob]],
    out_dir: str,
    scheduler,
    *,
    force: bool,
    task: Callable,
    on_start: Callable[[int], None],
    on_done: Callable[[int, dict], None],
) -> None:
    """Send every job to a Dask cluster and collect the rows as they finish."""
    from dask.distributed import as_completed

    client, own = _connect_dask(scheduler)
    try:
        futures = {}
        for index, job in jobs:
            fut = client.submit(
                task,
                job,
                out_dir,
                force=force,
                progress=False,
                pure=False,
                key=f"cpp-tracker-{job.name}-{os.getpid()}-{time.time_ns()}",
            )
            futures[fut] = (index, job)
            on_start(index)
        try:
            for fut in as_completed(list(futures)):
                index, job = futures[fut]
                try:
                    row = fut.result()
                except Exception as e:  # noqa: BLE001 - e.g. KilledWorker: record it
                    row = _row(
                        job,
                        "failed",
                        error=f"the Dask worker running it failed ({type(e).__name__}: {e}); "
                        "check the worker logs, or run it alone with 'cpp-tracker track'",
                        finished=now_iso(),
                    )
                on_done(index, row)
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    finally:
        if own:
            client.close()


# ------------------------------------------------------------------------------ a batch
def run_batch(
    jobs: Sequence[BatchJob],
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler=None,
    force: bool = False,
    progress: bool = True,
    on_row: Callable[[dict], None] | None = None,
    task: Callable = run_job,
    growing_check_s: float = DEFAULT_CHECK_S,
    stop_grace_s: float = DEFAULT_GRACE_S,
    on_lock: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run every job and keep ``out_dir/batch_status.csv`` up to date.

    Jobs that are up to date are skipped (unless ``force``) and jobs that cannot start
    (missing file, bad config) fail, both without starting a worker. The others run in
    ``workers`` local processes (default: :func:`default_workers`), or on the Dask
    cluster whose scheduler is ``scheduler`` (an address, or a ``Client``). The status
    file is rewritten atomically whenever a job starts or finishes; ``on_row(row)`` is
    called in this process for each finished job.

    ``out_dir`` is locked while the batch runs (a second batch there raises
    :class:`~cpp_tracker.errors.BusyError`; ``on_lock(message)`` hears of a stale lock
    taken over). A video still being written (its size or time changes within
    ``growing_check_s``, or an MP4 without its index yet) is listed as ``in_progress`` and
    not started; a later run tracks it. When the batch is stopped (Ctrl-C, SIGTERM), the
    running workers get ``stop_grace_s`` seconds to save their checkpoint.
    """
    out = make_output_folder(Path(out_dir), "the results").resolve()
    with lock_folder(out, "batch") as lock:
        if lock.message and on_lock is not None:
            on_lock(lock.message)
        return _run_batch_locked(jobs, out, workers=workers, scheduler=scheduler, force=force,
                                 progress=progress, on_row=on_row, task=task,
                                 growing_check_s=growing_check_s, stop_grace_s=stop_grace_s)


def _run_batch_locked(
    jobs: Sequence[BatchJob], out: Path, *, workers: int | None, scheduler, force: bool,
    progress: bool, on_row: Callable[[dict], None] | None, task: Callable,
    growing_check_s: float, stop_grace_s: float,
) -> BatchResult:
    """:func:`run_batch` once its output folder is locked."""
    book = _StatusBook(out, [_row(job, "pending") for job in jobs], on_row,
                       start_status="queued" if scheduler is not None else "running")
    with interrupts_held():  # tqdm's monitor thread, started here, leaves Ctrl-C to this one
        bar = tqdm(
            total=len(jobs), unit="video", desc="videos", disable=not progress, position=0,
            dynamic_ncols=True,
        )
    book.on_finish = lambda: bar.update(1)
    book.save()
    try:
        to_run = _not_growing(_jobs_to_run(jobs, out, force, book), growing_check_s, book)
        if to_run and scheduler is not None:
            _run_dask(
                to_run, str(out), scheduler, force=force, task=task,
                on_start=book.start, on_done=book.finish,
            )
        elif to_run:
            _run_local(
                to_run, str(out), workers or default_workers(), force=force,
                progress=progress, task=task, on_start=book.start, on_done=book.finish,
                grace_s=stop_grace_s,
            )
    except BaseException:
        book.mark_interrupted()
        raise
    finally:
        bar.close()
    return BatchResult(book.rows, book.path)


def _jobs_to_run(
    jobs: Sequence[BatchJob], out: Path, force: bool, book: _StatusBook
) -> list[tuple[int, BatchJob]]:
    """The jobs that need a worker; the others (up to date, or unable to start) are
    finished in the book at once."""
    to_run = []
    for index, job in enumerate(jobs):
        row = check_job(job, out) if not force or job.problem else None
        if row is not None:
            book.finish(index, row)
        else:
            to_run.append((index, job))
    return to_run


def _not_growing(
    to_run: list[tuple[int, BatchJob]], check_s: float, book: _StatusBook
) -> list[tuple[int, BatchJob]]:
    """The jobs whose files are finished; the others are listed ``in_progress`` (one wait
    of at most ``check_s`` for all files)."""
    growing = still_being_written([v for _, job in to_run for v in job.videos], check_s)
    if not growing:
        return to_run
    ready = []
    for index, job in to_run:
        why = next(((v, growing[v]) for v in job.videos if v in growing), None)
        if why is None:
            ready.append((index, job))
            continue
        shown = dict(zip(job.videos, job.shown or job.videos, strict=False)).get(why[0], why[0])
        book.finish(index, _row(job, "in_progress", finished=now_iso(),
                                note=f"{shown}: not tracked yet: {why[1]}; a later run "
                                "tracks it once it is finished"))
    return ready


class _StatusBook:
    """The rows of ``batch_status.csv``, rewritten atomically whenever a job starts or
    finishes; tracebacks of unexpected failures go to ``batch_errors.log``."""

    def __init__(self, out: Path, rows: list[dict], on_row, start_status: str):
        self.out, self.rows, self.on_row = out, rows, on_row
        self.path = out / STATUS_FILE
        self.start_status = start_status
        self.on_finish: Callable[[], None] = lambda: None

    def save(self) -> None:
        table = pd.DataFrame(self.rows, columns=STATUS_COLUMNS)
        try:
            write_csv(self.path, table)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot be written ({e})") from None

    def start(self, index: int) -> None:
        self.rows[index]["status"] = self.start_status
        self.save()

    def finish(self, index: int, row: dict) -> None:
        trace = row.pop("_traceback", None)
        if trace:
            try:
                with open(self.out / "batch_errors.log", "a", encoding="utf-8") as f:
                    f.write(f"--- {row['finished']} {row['video']}\n{trace}\n")
            except OSError:  # a full disk: the status row still says what failed
                pass
        self.rows[index] = {c: row.get(c, "") for c in STATUS_COLUMNS}
        self.save()
        self.on_finish()
        if self.on_row is not None:
            self.on_row(self.rows[index])

    def mark_interrupted(self) -> None:
        for row in self.rows:
            if row["status"] in ("pending", "running", "queued"):
                row["status"] = "interrupted"
                row["note"] = "the batch was stopped; rerun it to continue"
        self.save()



