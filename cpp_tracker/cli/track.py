"""``track`` and ``batch``: one video, or many videos unattended.

Each command checks its arguments, calls :func:`cpp_tracker.runs.pipeline.track_video` or
:func:`cpp_tracker.runs.batch.run_batch`, and prints what came of it.
"""

from __future__ import annotations

import shlex
import sys
from contextlib import contextmanager
from pathlib import Path

from ..errors import ConfigError

__all__ = ["add_track", "add_batch", "add_pose", "add_export_option", "exports_of"]


def exports_of(args) -> tuple[str, ...]:
    """The ``--export`` formats, checked before the run (movement installed)."""
    from ..runs.export import check_exports

    return check_exports(args.export)


def add_export_option(p) -> None:
    """``--export movement`` (track, reprocess, pose)."""
    p.add_argument(
        "--export", action="append", default=[], choices=["movement"],
        help="also write the results in another tool's format: movement = track.nc (a "
        "movement poses dataset: keypoint 'centroid' per arena, time in real seconds) and "
        "regions.geojson (chambers as polygons, doors as lines, movement's regions of "
        "interest); needs pip install \".[pose]\"",
    )


def _print_summary(summary, stream=sys.stdout) -> None:
    """Time in each chamber, one block per arena."""
    for arena, rows in summary.groupby("arena", sort=False):
        first = rows.iloc[0]
        animal = f" (animal {first['animal_id']})" if isinstance(first["animal_id"], str) else ""
        print(
            f"  {arena}{animal}: {first['duration_s']:.1f} s recorded, "
            f"{first['observed_s']:.1f} s with a known chamber",
            file=stream,
        )
        for _, r in rows.iterrows():
            if r["chamber"] == "unknown":
                print(
                    f"    {'unknown':<14} {r['time_s']:10.1f} s  ({r['percent']:5.1f} % of the "
                    "recording)",
                    file=stream,
                )
            else:
                lat = "-" if r["latency_s"] != r["latency_s"] else f"{r['latency_s']:.1f} s"
                print(
                    f"    {r['chamber']:<14} {r['time_s']:10.1f} s  {r['percent']:5.1f} %   "
                    f"entries {int(r['entries']):4d}   first entry {lat}",
                    file=stream,
                )


# ---------------------------------------------------------------------------------- track
def add_track(sub) -> None:
    p = sub.add_parser(
        "track",
        help="track one video and write its time-in-chamber results",
        description=(
            "Track the mouse in one video and write OUT/<video stem>/: track.parquet (one "
            "row per frame), occupancy.csv (seconds in each chamber, per second), "
            "summary.csv (time, percent, entries, latency, bouts, distance per chamber), "
            "background.png and run.json (video identity, config and its hash, version, "
            "frames used and lost, warnings)."
        ),
    )
    p.add_argument("video", help="the video file")
    p.add_argument("--config", required=True, help="the YAML config (arenas, doors, chambers)")
    p.add_argument("--out", required=True, help="output folder; results go to OUT/<video stem>/")
    p.add_argument(
        "--stride",
        type=int,
        default=1,
        help="analyse every Nth frame only, for a quick look (default 1). Every frame is "
        "still decoded (H.264), so this saves tracking time, not decoding time, except with "
        "video.reader: pyav and video.fast_decode: true, where frames no other frame refers "
        "to are not decoded (a frame due that was skipped is replaced by the next decoded "
        "one; run.json reader.frames_not_decoded counts them); results are less exact",
    )
    p.add_argument(
        "--workers",
        default="auto",
        help="track the video in N time segments, one process each; 'auto' (the default): "
        "one per available core (CPU affinity and cgroup limits respected) not busy with "
        "other work, when the video gives each at least 150 s and the free memory allows; "
        "1: one process. The results "
        "are identical to one pass; each extra process needs ~120-170 MB; an interrupted "
        "run continues each segment from its last checkpoint. Chunk files, a time window, "
        "videos shorter than N x 30 s, whose frames cannot be indexed, or whose "
        "detection.background_update is on are tracked in one pass (run.json says why)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-plots", action="store_true", help="do not draw the QC figure qc.png"
    )
    p.add_argument(
        "--allow-growing", action="store_true",
        help="track a video that is still being recorded (it changed during the check, or "
        "its MP4 index is not written yet): what is there is tracked and the result is "
        "marked truncated (its QC asks for review). Without it such a file is refused",
    )
    add_fault_options(p)
    add_export_option(p)
    p.set_defaults(handler=_cmd_track)


def add_fault_options(p) -> None:
    """``--growing-check-s`` and ``--stop-grace-s`` (track and batch)."""
    from ..runs.stopping import DEFAULT_GRACE_S
    from ..video.recording import DEFAULT_CHECK_S

    p.add_argument(
        "--growing-check-s", type=float, default=DEFAULT_CHECK_S, metavar="S",
        help="a video whose size or modification time changes within S seconds is still "
        f"being recorded (default {DEFAULT_CHECK_S:g}; files untouched for S seconds need "
        "no wait; 0 skips the check)",
    )
    p.add_argument(
        "--stop-grace-s", type=float, default=DEFAULT_GRACE_S, metavar="S",
        help="after SIGTERM (a cluster's preemption, kill), save a checkpoint and stop within "
        f"S seconds (default {DEFAULT_GRACE_S:g}; SLURM kills after 30 s or less); exit "
        "status 143, rerun to continue",
    )


def _check_fault_options(args) -> None:
    if not args.growing_check_s >= 0:
        raise ConfigError("--growing-check-s", "must be a number of seconds of at least 0")
    if not args.stop_grace_s > 0:
        raise ConfigError("--stop-grace-s", "must be a number of seconds above 0")


def _workers_value(text: str) -> int | str:
    """``--workers``: 'auto' or a whole number of at least 1 (ConfigError otherwise)."""
    if text == "auto":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError("--workers", "must be a whole number of at least 1, or auto")
    return n


def _cmd_track(args) -> int:
    from ..config.settings import load_config
    from ..runs.pipeline import track_video
    from ..runs.stopping import stop_on_sigterm

    if args.stride < 1:
        raise ConfigError("--stride", "must be a whole number of at least 1")
    workers = _workers_value(args.workers)
    _check_fault_options(args)
    config = load_config(args.config)
    with stop_on_sigterm(args.stop_grace_s):
        result = track_video(
            args.video,
            config,
            args.out,
            stride=args.stride,
            progress=not args.no_progress,
            workers=workers,
            plots=not args.no_plots,
            exports=exports_of(args),
            allow_growing=args.allow_growing,
            growing_check_s=args.growing_check_s,
        )
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    resume = result.record.resume
    if resume.segment_frames_kept:
        kept = resume.segment_frames_kept
        print(
            f"{args.video}: continued an interrupted run: {sum(kept)} frames of its "
            f"{len(kept)} time segments were already tracked"
        )
    elif resume.resumed_from_s is not None:
        print(f"{args.video}: continued an interrupted run from {resume.resumed_from_s:.1f} s")
    print(f"{args.video}: results in {result.result_dir}")
    _print_rule(result.record)
    skipped = result.record.reader.frames_not_decoded
    if skipped:
        total = result.record.time_base.frames_decoded
        print(f"{args.video}: --stride {args.stride} with video.fast_decode: {skipped} of "
              f"{total} frames were not decoded (frames no other frame refers to)")
    _print_summary(result.summary)
    _print_verdict(args.video, result.record)
    return 0


def _print_rule(record, stream=sys.stdout) -> None:
    """The entry rule, when it is not the default centroid rule."""
    rule = dict(record.config.entry_rule or {})
    if rule.get("rule") == "body_fraction":
        print(f"  chambers by body fraction: entered with {100 * rule['enter_fraction']:g} % "
              f"of the mouse inside, left below {100 * rule['exit_fraction']:g} %",
              file=stream)


def _print_verdict(video: str, record) -> None:
    """The QC verdict last, where the eye lands: the numbers above are in doubt when it
    says so."""
    from ..runs.batch import review_reasons

    reasons = review_reasons(record)
    if reasons:
        print(f"{video}: NEEDS REVIEW: {reasons}")
    elif record.needs_review is False:
        print(f"{video}: QC passed")


# ----------------------------------------------------------------------------------- pose
def add_pose(sub) -> None:
    p = sub.add_parser(
        "pose",
        help="time-in-chamber results from a DeepLabCut, SLEAP, LightningPose or movement "
        "pose file",
        description=(
            "Read a pose-estimation file (DeepLabCut .h5/.csv, SLEAP .slp/analysis .h5, "
            "LightningPose .csv, movement .nc) and write the same result folder as track, "
            "OUT/<video stem>/ (or the pose file's stem without --video), through the same "
            "analysis: the config's pose section says which keypoint(s) are the mouse "
            "(pose.point, the mean of a list), below which likelihood a frame is unknown "
            "(pose.min_likelihood) and which individual (pose.individual, or by_arena). "
            "Needs pip install \".[pose]\"."
        ),
    )
    p.add_argument("posefile", help="the pose file")
    p.add_argument("--config", required=True, help="the YAML config (arenas, doors, chambers, "
                   "pose)")
    p.add_argument("--out", required=True, help="output folder; results go to OUT/<stem>/")
    p.add_argument("--video", help="the video the pose file was made from: its timestamps "
                   "give the time (its frame count must match the file's), and qc.png is "
                   "drawn on its empty-box image")
    p.add_argument("--fps", type=float, help="without --video: the frame rate of the video "
                   "(time = frame / fps; run.json says which was used)")
    p.add_argument("--no-plots", action="store_true", help="do not draw the QC figure qc.png")
    add_export_option(p)
    p.set_defaults(handler=_cmd_pose)


def _cmd_pose(args) -> int:
    from ..config.settings import load_config
    from ..runs.pose import run_pose

    if args.video is not None and args.fps is not None:
        raise ConfigError("--fps", "give either --video (its timestamps) or --fps, not both")
    config = load_config(args.config)
    result = run_pose(args.posefile, config, args.out, video=args.video, fps=args.fps,
                      plots=not args.no_plots, exports=exports_of(args))
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    pose = result.record.pose or {}
    print(f"{args.posefile}: {pose.get('format')}, point {' + '.join(pose.get('point', []))}, "
          f"time from {pose.get('time_from')}; results in {result.result_dir}")
    _print_summary(result.summary)
    _print_verdict(args.posefile, result.record)
    return 0


# ---------------------------------------------------------------------------------- batch
def add_batch(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="track many videos: unattended, in parallel, resumable",
        description=(
            "Track every video given (files, folders searched recursively, manifest CSVs) "
            "into OUT/<video stem or session>/, one worker process per video. A video that "
            "fails is recorded in OUT/batch_status.csv and the others go on. A rerun skips "
            "results that are up to date and continues interrupted videos from their last "
            "checkpoint. Manifest columns: video (required; paths relative to the manifest), "
            "config, animal_id, session (chunk files of one recording), phase, start_s "
            "(seconds, or auto: the trial's start found in the video), end_s, and "
            "any other columns, which are kept in each result's run.json."
        ),
        epilog="exit status: 0 every video succeeded, was up to date or is still being "
        "recorded (in_progress: a later run tracks it), 1 some failed, 2 usage or "
        "configuration error or another batch writes into OUT, 130 Ctrl-C, 143 SIGTERM",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, folders of videos, and manifest .csv files")
    p.add_argument("--config", required=True,
                   help="the YAML config for every video without its own in the manifest")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None,
                   help="videos tracked at once, each in its own process (default: the "
                   "number of cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on a Dask cluster: the address of its scheduler, e.g. "
                   "tcp://10.0.0.5:8786 (needs pip install 'cpp-tracker[dask]'; the videos "
                   "and OUT must be on a file system the workers share)")
    p.add_argument("--force", action="store_true",
                   help="track every video again, even when its results are up to date")
    p.add_argument("--session-pattern", metavar="REGEX",
                   help="join chunk files into one session by file name: a regular "
                   "expression with a (?P<session>...) group and optionally a "
                   r"(?P<chunk>...) group for the order, e.g. '^(?P<session>.+)_(?P<chunk>\d+)"
                   r"\.mp4$'")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_fault_options(p)
    p.set_defaults(handler=_cmd_batch)


def _failure(row: dict) -> str:
    """'video: error' for a failed status row, without naming the video twice."""
    error = row["error"] or row["status"]
    video = row["video"].split(";")[0]
    named = error.split(": ", 1)[0]  # the error's own path may be the absolute one
    if error.startswith(video) or (": " in error and Path(named).name == Path(video).name):
        return error
    return f"{row['video']}: {error}"


def _cmd_batch(args) -> int:
    from ..config.settings import load_config
    from ..runs.batch import collect_jobs, run_batch

    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", "must be a whole number of at least 1")
    _check_fault_options(args)
    load_config(args.config)  # a broken default config stops the batch before it starts
    jobs = collect_jobs(
        args.inputs, args.config, out_dir=args.out, session_pattern=args.session_pattern
    )
    print(_batch_plan(jobs, args))
    with _sigterm_as_interrupt():
        result = run_batch(
            jobs,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            force=args.force,
            progress=not args.no_progress and sys.stderr.isatty(),
            on_row=_print_row,
            growing_check_s=args.growing_check_s,
            stop_grace_s=args.stop_grace_s,
            on_lock=lambda message: print(f"note: {message}", file=sys.stderr),
        )
    _write_batch_report(args.out)
    _print_batch_end(result, len(jobs), args.out)
    return result.exit_code


def _batch_plan(jobs, args) -> str:
    """The first line: how many results from how many files, where, with what."""
    from ..runs.batch import default_workers

    n_videos = sum(len(j.videos) for j in jobs)
    where = (
        f"on the Dask cluster at {args.scheduler}"
        if args.scheduler
        else f"with {args.workers or default_workers()} worker(s)"
    )
    sessions = sum(1 for j in jobs if j.session)
    extra = f" ({sessions} session(s) of chunk files)" if sessions else ""
    return (f"batch: {len(jobs)} result(s) from {n_videos} video file(s){extra} into "
            f"{args.out}, {where}")


def _print_row(row: dict) -> None:
    """One line per finished video, above the progress bars."""
    from tqdm.auto import tqdm

    status = row["status"]
    if status in ("ok", "needs_review"):
        resumed = (
            f", continued from {float(row['resumed_from_s']):.1f} s"
            if row["resumed_from_s"] != "" else ""
        )
        text = (f"{'ok' if status == 'ok' else 'REVIEW':<8} {row['video']} -> "
                f"{row['result_dir']} (took {row['duration_s']:.1f} s{resumed})")
    elif status == "skipped":
        text = f"skipped  {row['video']} ({row['note']})"
    elif status == "in_progress":
        text = f"LATER    {row['note']}"
    else:
        text = f"FAILED   {_failure(row)}"
    if status != "failed" and row.get("review"):
        text += f"\n         needs review: {row['review']}"
    tqdm.write(text)


@contextmanager
def _sigterm_as_interrupt():
    """SLURM and kill send SIGTERM: stop like Ctrl-C while the batch runs (the workers
    save their checkpoints, see run_batch's ``stop_grace_s``)."""
    import signal

    from ..runs.stopping import StopRequested

    def on_term(signum, frame):
        raise StopRequested(signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _write_batch_report(out: str) -> None:
    """report.html over the batch; a failure is a warning (the results are complete)."""
    try:
        from ..visual.report import write_report

        print(f"report: {write_report(out)}")
    except Exception as e:  # noqa: BLE001 - the results are complete without the page
        print(f"warning: the batch report could not be written ({e}); the results are "
              f"complete; retry with 'cpp-tracker report {shlex.quote(str(out))}'", file=sys.stderr)


def _print_batch_end(result, n_jobs: int, out: str) -> None:
    """The totals, and the failed videos on stderr."""
    from ..runs.batch import STATUS_FILE

    ok, skipped, failed = result.count("ok"), result.count("skipped"), len(result.failed)
    later = len(result.in_progress)
    review = len(result.needing_review)
    if skipped == n_jobs:
        print(f"nothing to do: all {skipped} result(s) are up to date (--force redoes them)"
              + (f"; {review} of them need review" if review else ""))
    else:
        print(f"batch finished: {ok} ok, {result.count('needs_review')} need review, "
              f"{skipped} skipped (up to date), {failed} failed"
              + (f", {later} still being recorded (rerun later)" if later else "")
              + f"; status in {Path(out) / STATUS_FILE}")
    if review:
        print(f"{review} result(s) need review (their numbers are marked, and left out of "
              "report means and the design's scores):")
        for row in result.needing_review:
            print(f"  {row['result_dir']}: {row['review']}")
    if failed:
        print(f"{failed} failed:", file=sys.stderr)
        for row in result.failed:
            print(f"  {_failure(row)}", file=sys.stderr)
