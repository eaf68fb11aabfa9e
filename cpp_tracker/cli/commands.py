"""The ``cpp-tracker`` command: the only place that prints, exits or sets up logging.

Exit status: 0 success, 1 some input failed (an unreadable video, ...), 2 usage or
configuration error. User mistakes give one plain message on stderr, no traceback (add
``--debug`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..errors import ConfigError, CppTrackerError

__all__ = ["main", "build_parser"]

_EPILOG = """\
typical use:
  cpp-tracker init night1.mp4 --out box.yaml   (or: cpp-tracker draw night1.mp4 --out d.html)
  cpp-tracker check-config box.yaml --video night1.mp4
  cpp-tracker preview night1.mp4 --config box.yaml --out preview.png
  cpp-tracker track night1.mp4 --config box.yaml --out results/
  cpp-tracker batch recordings/ manifest.csv --config box.yaml --out results/
  cpp-tracker reprocess results/ --config box_door_moved.yaml --keep-previous
  cpp-tracker summarize results/ --design design.csv --out cpp_results.csv

exit status: 0 success, 1 an input failed, 2 usage or configuration error
"""


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
def _add_track(sub) -> None:
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
        "still decoded, so on H.264 this saves tracking time, not decoding time; results are "
        "less exact",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="track the video in N time segments, one process each (default 1). For long "
        "recordings on a machine with N or more cores: faster, up to the speed of decoding "
        "(on 2 cores 1.1 to 1.35 times faster than one process, as fast as a bare decoding "
        "loop), with ~180 MB more memory per extra process at 1280x720; the results are "
        "identical to one pass, and an interrupted run continues each segment from its "
        "last checkpoint. Videos shorter than N x 30 s, or whose frames cannot be indexed, "
        "are tracked in one pass (run.json says why)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-plots", action="store_true", help="do not draw the QC figure qc.png"
    )
    p.set_defaults(handler=_cmd_track)


def _cmd_track(args) -> int:
    from ..config.settings import load_config
    from ..runs.pipeline import track_video

    if args.stride < 1:
        raise ConfigError("--stride", "must be a whole number of at least 1")
    if args.workers < 1:
        raise ConfigError("--workers", "must be a whole number of at least 1")
    config = load_config(args.config)
    result = track_video(
        args.video,
        config,
        args.out,
        stride=args.stride,
        progress=not args.no_progress,
        workers=args.workers,
        plots=not args.no_plots,
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
    _print_summary(result.summary)
    return 0


# ---------------------------------------------------------------------------------- batch
def _add_batch(sub) -> None:
    p = sub.add_parser(
        "batch",
        help="track many videos: unattended, in parallel, resumable",
        description=(
            "Track every video given (files, folders searched recursively, manifest CSVs) "
            "into OUT/<video stem or session>/, one worker process per video. A video that "
            "fails is recorded in OUT/batch_status.csv and the others go on. A rerun skips "
            "results that are up to date and continues interrupted videos from their last "
            "checkpoint. Manifest columns: video (required; paths relative to the manifest), "
            "config, animal_id, session (chunk files of one recording), phase, start_s, "
            "end_s, and any other columns, which are kept in each result's run.json."
        ),
        epilog="exit status: 0 every video succeeded or was up to date, 1 some failed, "
        "2 usage or configuration error",
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
    p.set_defaults(handler=_cmd_batch)


def _failure(row: dict) -> str:
    """'video: error' for a failed status row, without naming the video twice."""
    error = row["error"] or row["status"]
    if error.startswith(row["video"].split(";")[0]):
        return error
    return f"{row['video']}: {error}"


def _cmd_batch(args) -> int:
    import signal

    from tqdm.auto import tqdm

    from ..config.settings import load_config
    from ..runs.batch import STATUS_FILE, collect_jobs, default_workers, run_batch

    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", "must be a whole number of at least 1")
    load_config(args.config)  # a broken default config stops the batch before it starts
    jobs = collect_jobs(
        args.inputs, args.config, out_dir=args.out, session_pattern=args.session_pattern
    )
    n_videos = sum(len(j.videos) for j in jobs)
    where = (
        f"on the Dask cluster at {args.scheduler}"
        if args.scheduler
        else f"with {args.workers or default_workers()} worker(s)"
    )
    sessions = sum(1 for j in jobs if j.session)
    extra = f" ({sessions} session(s) of chunk files)" if sessions else ""
    print(f"batch: {len(jobs)} result(s) from {n_videos} video file(s){extra} into "
          f"{args.out}, {where}")

    def on_row(row: dict) -> None:
        status = row["status"]
        if status == "ok":
            resumed = (
                f", continued from {float(row['resumed_from_s']):.1f} s"
                if row["resumed_from_s"] != "" else ""
            )
            text = f"ok       {row['video']} -> {row['result_dir']} ({row['duration_s']:.1f} s"
            text += f"{resumed})"
        elif status == "skipped":
            text = f"skipped  {row['video']} ({row['note']})"
        else:
            text = f"FAILED   {_failure(row)}"
        tqdm.write(text)

    def on_term(signum, frame):  # SLURM and kill send SIGTERM: stop like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        result = run_batch(
            jobs,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            force=args.force,
            progress=not args.no_progress and sys.stderr.isatty(),
            on_row=on_row,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    try:
        from ..visual.report import write_report

        print(f"report: {write_report(args.out)}")
    except Exception as e:  # noqa: BLE001 - the results are complete without the page
        print(f"warning: the batch report could not be written ({e}); the results are "
              f"complete; retry with 'cpp-tracker report {args.out}'", file=sys.stderr)
    ok, skipped, failed = result.count("ok"), result.count("skipped"), len(result.failed)
    if skipped == len(jobs):
        print(f"nothing to do: all {skipped} result(s) are up to date (--force redoes them)")
    else:
        print(f"batch finished: {ok} ok, {skipped} skipped (up to date), {failed} failed; "
              f"status in {Path(args.out) / STATUS_FILE}")
    if failed:
        print(f"{failed} failed:", file=sys.stderr)
        for row in result.failed:
            print(f"  {_failure(row)}", file=sys.stderr)
    return result.exit_code


# --------------------------------------------------------------------------- check-config
def _add_check_config(sub) -> None:
    p = sub.add_parser(
        "check-config",
        help="validate a config and describe what it defines",
        description="Validate a config (against a video's frame size when --video is given) "
        "and print the arenas, chambers and doors it defines.",
    )
    p.add_argument("config", help="the YAML config")
    p.add_argument("--video", help="check the coordinates against this video's frame size")
    p.set_defaults(handler=_cmd_check_config)


def _describe_config(config) -> list[str]:
    """What a valid config defines, a line per arena, chamber, door and mask.

    Areas and lengths are in px, and in cm where the arena has a scale; for a template in
    cm they are measured on the drawing itself (exact), not with the mean px/cm.
    """
    import numpy as np
    import shapely
    from shapely.geometry import Polygon

    from ..geometry.chambers import build_layout

    lines = []
    for arena in config.arenas:
        layout = build_layout(arena, config.chambers.hysteresis_px)
        scale = arena.px_per_cm
        t = arena.template
        if t is not None:
            inverse = np.linalg.inv(t.homography())

            def to_cm(geom, inverse=inverse, factor=t.cm_per_unit):
                def f(xy):
                    hom = np.c_[xy, np.ones(len(xy))] @ inverse.T
                    return hom[:, :2] / hom[:, 2:3] * factor

                return shapely.transform(geom, f)
        elif scale:

            def to_cm(geom, scale=scale):
                return shapely.transform(geom, lambda xy: xy / scale)
        else:
            to_cm = None

        def area(geom, to_cm=to_cm) -> str:
            text = f"{geom.area:9.0f} px²"
            return text + (f" {to_cm(geom).area:8.0f} cm²" if to_cm else " " * 13)

        def length(geom, to_cm=to_cm) -> str:
            text = f"{geom.length:9.1f} px"
            return text + (f" {to_cm(geom).length:8.1f} cm" if to_cm else "")

        animal = f" (animal {arena.animal_id})" if arena.animal_id else ""
        if t is not None:
            how = (f"{scale:.3g} px/cm on average, from a template in {t.units} fitted by "
                   "corners_px")
        elif arena.scale is not None and arena.scale.points is not None:
            how = f"{scale:.3g} px/cm, from scale.points {arena.scale.distance_cm:g} cm apart"
        elif scale:
            how = f"{scale:.3g} px/cm"
        else:
            how = "no scale: distances in px only (add px_per_cm, scale or units: cm)"
        lines.append(f"  arena {arena.name}{animal}: {len(arena.chambers)} chamber(s), "
                     f"{len(arena.doors)} door(s), {len(arena.masks)} mask(s); {how}")
        total = layout.polygon.area
        lines.append(f"    {'outline':<22}{area(layout.polygon)}")
        for name, piece in zip(layout.chamber_names, layout.pieces, strict=True):
            lines.append(f"    chamber {name:<14}{area(piece)}  "
                         f"{100 * piece.area / total:5.1f} % of the arena")
        for door, seg in zip(arena.doors, layout.door_segments, strict=True):
            lines.append(f"    door {door.name:<17}{length(seg)} long")
        for j, mask in enumerate(arena.masks):
            hidden = Polygon(mask).intersection(layout.polygon)
            lines.append(f"    mask {j:<17}{area(hidden)}  "
                         f"{100 * hidden.area / total:5.1f} % of the arena hidden")
    h = config.chambers.hysteresis_px
    lines.append(f"  chambers change {h:g} px past a door line (chambers.hysteresis_px)")
    return [line.rstrip() for line in lines]


def _cmd_check_config(args) -> int:
    from ..config.settings import check_against_frame, config_hash, load_config

    config = load_config(args.config)
    if args.video:
        from ..video.reader import probe_video

        info = probe_video(args.video)
        check_against_frame(config, info.width, info.height, video=args.video)
        print(f"{args.config}: valid for {args.video} ({info.width}x{info.height} px)")
    else:
        print(f"{args.config}: valid (add --video VIDEO to check it against the frame size)")
    print(f"  config hash {config_hash(config)}")
    for line in _describe_config(config):
        print(line)
    return 0


# -------------------------------------------------------------------------------- preview
def _add_preview(sub) -> None:
    p = sub.add_parser(
        "preview",
        help="draw a config on a video's background image, to check it by eye",
        description=(
            "Draw on the video's background image (the empty box, as 'track' computes it) "
            "each arena outline, the door lines with their hysteresis bands, the chambers "
            "(tinted and named, with their configured points), the masks (hatched) and a "
            "scale bar where the arena has a scale. The PNG has the video's size. If the "
            "config does not fit the video's frame, the picture is still written (to show "
            "where it misses) and the problems are listed, with exit status 2."
        ),
    )
    p.add_argument("video", help="the video file")
    p.add_argument("--config", required=True, help="the YAML config to draw")
    p.add_argument("--out", required=True, help="the PNG file to write, e.g. preview.png")
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        help="frames sampled for the background (default: the config's background.samples)",
    )
    p.set_defaults(handler=_cmd_preview)


def _cmd_preview(args) -> int:
    from ..config.settings import check_against_frame, load_config
    from ..video.reader import probe_video
    from ..visual.preview import preview_video

    if args.samples is not None and args.samples < 1:
        raise ConfigError("--samples", "must be a whole number of at least 1")
    if not str(args.out).lower().endswith(".png"):
        raise ConfigError("--out", f"'{args.out}' should be a .png file, e.g. preview.png")
    config = load_config(args.config)
    info = probe_video(args.video)
    misfit = None
    try:
        check_against_frame(config, info.width, info.height, video=args.video)
    except ConfigError as e:
        misfit = e
    path, (width, height) = preview_video(args.video, config, args.out, samples=args.samples)
    print(f"{path}: preview of {args.config} on {args.video} ({width}x{height} px)")
    if misfit is not None:
        print(f"error: {misfit}", file=sys.stderr)
        return misfit.exit_code
    return 0


# ------------------------------------------------------------------------------ reprocess
def _add_reprocess(sub) -> None:
    p = sub.add_parser(
        "reprocess",
        help="recompute results from stored tracks with a changed config (no video decoding)",
        description=(
            "Bring result folders up to date with a new config. When only geometry (door "
            "lines, chambers, hysteresis, scale) or summary settings (bins, windows) changed, "
            "chambers, occupancy.csv, summary.csv and summary_bins.csv are recomputed from "
            "track.parquet without opening the video; the results equal a fresh track run. "
            "When detection settings changed (background, detection, arena polygon, masks) "
            "the folder is refused with the changed keys named, unless --retrack is given. "
            "run.json keeps the history of configs that produced the results."
        ),
    )
    p.add_argument(
        "outdir",
        nargs="+",
        metavar="OUTDIR",
        help="result folders (OUT/<video stem>/) or folders above them (the --out folder of "
        "track or batch), searched for run.json",
    )
    p.add_argument("--config", required=True, help="the new YAML config")
    p.add_argument(
        "--retrack",
        action="store_true",
        help="when detection settings changed, track the video again (its path is taken "
        "from run.json)",
    )
    p.add_argument(
        "--keep-previous",
        action="store_true",
        help="keep the current results in OUTDIR/<stem>/previous/<old config hash>/ instead "
        "of overwriting them",
    )
    p.add_argument(
        "--force", action="store_true", help="recompute even where the config is unchanged"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar when retracking")
    p.add_argument(
        "--no-plots",
        action="store_true",
        help="do not draw the QC figure qc.png again (a stale one is removed)",
    )
    p.set_defaults(handler=_cmd_reprocess)


def _cmd_reprocess(args) -> int:
    from ..config.settings import load_config
    from ..results.stored import find_result_dirs
    from ..runs.reprocess import reprocess_result

    config = load_config(args.config)
    folders = find_result_dirs(args.outdir)
    counts: dict[str, int] = {}
    failures: list[tuple[str, CppTrackerError]] = []
    for folder in folders:
        try:
            r = reprocess_result(
                folder,
                config,
                retrack=args.retrack,
                keep_previous=args.keep_previous,
                force=args.force,
                progress=not args.no_progress,
                plots=not args.no_plots,
            )
        except CppTrackerError as e:
            if args.debug:
                raise
            print(f"error: {e}", file=sys.stderr)
            failures.append((str(folder), e))
            continue
        counts[r.status] = counts.get(r.status, 0) + 1
        for w in r.warnings:
            print(f"warning: {folder}: {w}", file=sys.stderr)
        if r.status == "unchanged":
            print(f"{folder}: already made with this config (hash {r.config_hash}); nothing to do")
            continue
        changed = ", ".join(r.changed_keys) if r.changed_keys else "nothing (--force)"
        kept = f"; previous results kept in {r.previous_dir}" if r.previous_dir else ""
        print(
            f"{folder}: {r.status} in {r.elapsed_s:.2f} s (config hash {r.config_hash}; "
            f"changed: {changed}){kept}"
        )
    done = ", ".join(f"{n} {status}" for status, n in counts.items())
    if failures and len(folders) > 1:
        print(
            f"{len(folders) - len(failures)} of {len(folders)} result folder(s) done"
            f"{' (' + done + ')' if done else ''}; {len(failures)} failed:",
            file=sys.stderr,
        )
        for folder, _ in failures:
            print(f"  {folder}", file=sys.stderr)
    if failures:
        return max(e.exit_code for _, e in failures)
    if len(folders) > 1:
        print(f"{len(folders)} result folders: {done}")
    return 0


# ------------------------------------------------------------------------------ summarize
def _add_summarize(sub) -> None:
    p = sub.add_parser(
        "summarize",
        help="one results table across all result folders (optionally per CPP design)",
        description=(
            "Collect every result folder (found by its run.json) below OUTDIR into one CSV: "
            "one row per animal and session with <chamber>_time_s, <chamber>_percent, ... "
            "columns, the QC figures and the manifest's metadata columns (--long: one row "
            "per animal, session and chamber). With --design, one row per animal with time "
            "and percent in the paired, unpaired (and neutral) chambers per phase, the "
            "preference score, the change from pre-test to post-test, side bias at pre-test "
            "and crossings in closed-door sessions flagged."
        ),
    )
    p.add_argument(
        "outdir", nargs="+", metavar="OUTDIR", help="folders holding results (searched recursively)"
    )
    p.add_argument("--out", required=True, help="the CSV file to write")
    p.add_argument(
        "--long",
        action="store_true",
        help="one row per animal, session and chamber (with --design: per animal and session)",
    )
    p.add_argument(
        "--design",
        metavar="DESIGN.csv",
        help="CSV naming per session the animal, phase, paired chamber, ... (see README)",
    )
    p.add_argument(
        "--side-bias-percent",
        type=float,
        default=None,
        metavar="PERCENT",
        help="with --design: flag side bias when one conditioning chamber holds more than "
        "this percent of the two conditioning chambers' time at pre-test (default 65)",
    )
    p.set_defaults(handler=_cmd_summarize)


def _cmd_summarize(args) -> int:
    from pathlib import Path

    from ..experiment.collect import collect_results, results_wide
    from ..results.outputs import write_csv

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise ConfigError("--out", f"'{args.out}' should be a .csv file name")
    if out.is_dir():
        raise ConfigError("--out", f"'{args.out}' is a folder; give a .csv file name")
    results, metadata_columns, warnings = collect_results(args.outdir)
    n_results = results[["result", "arena"]].drop_duplicates().shape[0]
    if args.design:
        from ..experiment.design import (
            SIDE_BIAS_PERCENT,
            design_long,
            design_sessions,
            design_wide,
            load_design,
        )

        threshold = SIDE_BIAS_PERCENT if args.side_bias_percent is None else args.side_bias_percent
        if not 50 <= threshold <= 100:
            raise ConfigError(
                "--side-bias-percent", f"must be between 50 and 100, got {threshold:g}"
            )
        design = load_design(args.design)
        sessions, more = design_sessions(
            design,
            results,
            design_source=args.design,
            side_bias_percent=threshold,
            metadata_columns=metadata_columns,
        )
        warnings.extend(more)
        table = design_long(sessions) if args.long else design_wide(sessions)
        what = "animal and session" if args.long else "animal"
    else:
        if args.side_bias_percent is not None:
            raise ConfigError("--side-bias-percent", "applies only with --design")
        table = results if args.long else results_wide(results, metadata_columns)
        what = "animal, session and chamber" if args.long else "animal and session"
    write_csv(out, table)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(
        f"{out}: {len(table)} row(s), one per {what}, from {n_results} result(s) "
        f"({len(table.columns)} columns)"
    )
    if args.design:
        print(f"  side bias threshold at pre-test: {threshold:g} % of the two conditioning "
              "chambers' time")
        flagged = table[table["flags"].astype(str) != ""] if "flags" in table else table[:0]
        for _, r in flagged.iterrows():
            print(f"  flag {r['animal_id']}: {r['flags']}")


# ----------------------------------------------------------------------------------- plot
def _add_plot(sub) -> None:
    p = sub.add_parser(
        "plot",
        help="(re)draw the QC figure qc.png from stored results",
        description="Draw qc.png (trajectory on the background, position heat map, chamber "
        "per second with QC flags and lighting periods, cumulative time per chamber) in a "
        "result folder, or in every result folder below OUTDIR. Reads only the stored "
        "results; the video is not needed.",
    )
    p.add_argument("outdir", help="a result folder OUT/<video stem>, or a folder of them")
    p.set_defaults(handler=_cmd_plot)


def _cmd_plot(args) -> int:
    from ..results.stored import find_result_dirs
    from ..visual.plots import write_qc_figure

    dirs = find_result_dirs(args.outdir)
    failed = 0
    for d in dirs:
        try:
            path = write_qc_figure(d)
        except CppTrackerError as e:
            failed += 1
            print(f"error: {e}", file=sys.stderr)
        else:
            print(f"{path}")
    if failed:
        print(f"{failed} of {len(dirs)} figure(s) could not be drawn", file=sys.stderr)
    return 1 if failed else 0


# --------------------------------------------------------------------------------- review
def _add_review(sub) -> None:
    p = sub.add_parser(
        "review",
        help="cut overlay clips of the doubtful moments, or draw a blind agreement sheet",
        description="Without --sample: for each result folder in OUTDIR, cut short overlay "
        "clips (centroid, blob outline, chamber, door lines and hysteresis band) around the "
        "flagged seconds and the door crossings closest to the decision margin, into "
        "OUT/<video stem>/review/ with an index clips.csv. With --sample N: draw N random "
        "seconds and write a contact sheet without the tool's answers "
        "(agreement_sheet_NN.png), a CSV for a person to fill in (agreement_sheet.csv) and "
        "the tool's answers apart (agreement_key.csv); then run 'cpp-tracker agreement'.",
    )
    p.add_argument("outdir", help="a result folder OUT/<video stem>, or a folder of them")
    p.add_argument("--max-clips", type=int, default=10,
                   help="at most this many clips per video (default 10)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="playback speed of the clips (default 1)")
    p.add_argument("--video", help="the video's path, when it moved since tracking "
                   "(one result folder only)")
    p.add_argument("--sample", type=int, metavar="N",
                   help="write a blind agreement sheet of N random seconds instead of clips")
    p.add_argument("--seed", type=int, default=0, help="random seed of --sample (default 0)")
    p.add_argument("--out", help="folder for the agreement sheet (default OUTDIR/agreement)")
    p.set_defaults(handler=_cmd_review)


def _result_folders(outdir: str) -> list:
    from ..results.stored import find_result_dirs

    return find_result_dirs(outdir)


def _cmd_review(args) -> int:
    from pathlib import Path

    from ..results.stored import load_result

    dirs = _result_folders(args.outdir)
    if args.video and len(dirs) != 1:
        raise ConfigError("--video", "can only be given for a single result folder")
    if args.sample is not None:
        from ..experiment.agreement import write_agreement_sheet

        results = [load_result(d) for d in dirs]
        out = Path(args.out) if args.out else Path(args.outdir) / "agreement"
        written = write_agreement_sheet(results, out, args.sample, seed=args.seed,
                                        video=args.video)
        for page in written["pages"]:
            print(f"contact sheet: {page}")
        print(f"fill in:       {written['sheet']} (column human_chamber)")
        print(f"answers:       {written['key']} (do not open it before)")
        print(f"then run:      cpp-tracker agreement {written['sheet']}")
        return 0
    if args.max_clips < 1:
        raise ConfigError("--max-clips", f"must be at least 1, got {args.max_clips}")
    from ..visual.review import write_review_clips

    failed = 0
    for d in dirs:
        try:
            index = write_review_clips(load_result(d), video=args.video,
                                       max_clips=args.max_clips, speed=args.speed)
        except CppTrackerError as e:
            if isinstance(e, ConfigError):
                raise
            failed += 1
            print(f"error: {e}", file=sys.stderr)
            continue
        print(f"{d / 'review'}: {len(index)} clip(s)")
        for row in index.itertuples(index=False):
            print(f"  {row.file}  {row.start_s:8.1f}-{row.end_s:.1f} s  {row.detail}")
    return 1 if failed else 0


# -------------------------------------------------------------------------------- overlay
def _add_overlay(sub) -> None:
    p = sub.add_parser(
        "overlay",
        help="render the tracking overlay on any stretch of a video",
        description="Write an H.264 video of VIDEO from --start to --end with the arena, "
        "door lines, centroid, blob outline and chamber drawn on each frame. With --results "
        "the stored track is shown; with --config the mouse is detected on the fly.",
    )
    p.add_argument("video", help="the video file")
    p.add_argument("--out", required=True, help="the overlay video to write (.mp4)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--results", help="the video's result folder OUT/<video stem>")
    src.add_argument("--config", help="a YAML config (detect on the fly)")
    p.add_argument("--start", type=float, default=0.0, help="start, s (default 0)")
    p.add_argument("--end", type=float, default=None, help="end, s (default: the end)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="playback speed: 4 keeps every 4th frame (default 1)")
    p.set_defaults(handler=_cmd_overlay)


def _cmd_overlay(args) -> int:
    from ..visual.review import render_overlay

    result = config = None
    if args.results:
        from ..results.stored import load_result

        result = load_result(args.results)
    else:
        from ..config.settings import load_config

        config = load_config(args.config)
    info = render_overlay(args.video, args.out, result=result, config=config,
                          start_s=args.start, end_s=args.end, speed=args.speed)
    print(
        f"{args.out}: {info['frames']} frames, {info['start_s']:.2f}-{info['end_s']:.2f} s of "
        f"{args.video}, {info['fps']:.3g} fps"
    )
    return 0


# ------------------------------------------------------------------------------ agreement
def _add_agreement(sub) -> None:
    p = sub.add_parser(
        "agreement",
        help="compare a filled-in agreement sheet with the tool's chambers",
        description="Read agreement_sheet.csv (written by 'review --sample' and filled in by "
        "a person) and its key, and report percent agreement, Cohen's kappa, the confusion "
        "table and every disagreement.",
    )
    p.add_argument("sheet", help="the filled-in agreement_sheet.csv")
    p.add_argument("--key", help="the key (default: agreement_key.csv beside the sheet)")
    p.set_defaults(handler=_cmd_agreement)


def _cmd_agreement(args) -> int:
    from ..experiment.agreement import compare_sheet

    a = compare_sheet(args.sheet, args.key)
    kappa = "undefined (one category only)" if a.kappa != a.kappa else f"{a.kappa:.3f}"
    print(f"{args.sheet}: {a.n} sample(s) compared" +
          (f", {a.n_blank} left blank" if a.n_blank else ""))
    print(f"  agreement     {a.n_agree} of {a.n} ({a.percent:.1f} %)")
    print(f"  Cohen's kappa {kappa}")
    print("  confusion (rows: tool, columns: person):")
    for line in a.confusion.to_string().splitlines():
        print(f"    {line}")
    if len(a.disagreements):
        print(f"  {len(a.disagreements)} disagreement(s):")
        for r in a.disagreements.itertuples(index=False):
            print(f"    #{r.sample}  {r.video} {r.arena} at {float(r.time_s):.2f} s: tool "
                  f"{r.tool_chamber}, person {r.human_chamber}")
    return 0


# --------------------------------------------------------------------------------- report
def _add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="write report.html over a folder of results",
        description="Write OUTDIR/report.html: one static page (no server, no internet) with "
        "one row per video and arena (status, time in each chamber, QC, a thumbnail of "
        "qc.png, links to the files), the batch totals on top, sortable by any column. "
        "Uses OUTDIR/batch_status.csv when present, so failed videos are listed too.",
    )
    p.add_argument("outdir", help="the --out folder of track or batch")
    p.add_argument("--out", help="the page to write (default OUTDIR/report.html)")
    p.set_defaults(handler=_cmd_report)


def _cmd_report(args) -> int:
    from ..visual.report import write_report

    path = write_report(args.outdir, args.out)
    print(f"{path}")
    return 0


# ----------------------------------------------------------------------------------- init
def _add_init(sub) -> None:
    p = sub.add_parser(
        "init",
        help="propose a config from a video: box outline, door lines, chamber points",
        description=(
            "Build the empty-box image of VIDEO and propose the geometry from it: the box "
            "outline (the floor's edge inside the walls), the door lines (the dividing walls "
            "with their openings) and one point per chamber, named chamber_1, chamber_2, ... "
            "Writes a commented config (OUT) and a picture of what was found "
            "(OUT without .yaml + _preview.png), and prints how sure it is of each element. "
            "Where nothing convincing is found it says so and writes a template to edit. "
            "Check the picture, rename the chambers, then track."
        ),
    )
    p.add_argument("video", help="a video of the box (any session recorded with this camera)")
    p.add_argument("--out", required=True, help="the config file to write, e.g. box.yaml")
    p.add_argument("--chambers", type=int, choices=(2, 3),
                   help="chambers per box, when known (default: as many as are found)")
    p.add_argument("--arenas", type=int, default=1, metavar="N",
                   help="boxes in the view (default 1)")
    p.add_argument("--samples", type=int, default=120, metavar="N",
                   help="frames sampled across the video for the empty-box image and the "
                   "mouse's positions (default 120)")
    p.add_argument("--preview", help="where to write the picture (default: next to --out)")
    p.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    p.set_defaults(handler=_cmd_init)


def _cmd_init(args) -> int:
    from pathlib import Path

    import yaml

    from .. import __version__
    from ..config.settings import check_against_frame, parse_config
    from ..results.outputs import write_bytes, write_png
    from ..setup.proposal_picture import draw_proposal
    from ..setup.propose import proposal_to_yaml, propose_geometry
    from ..tracking.background import median_background
    from ..video.reader import VideoReader, probe_video

    out = Path(args.out)
    if args.arenas < 1 or args.arenas > 16:
        raise ConfigError("--arenas", "must be a whole number from 1 to 16")
    if args.samples < 10:
        raise ConfigError("--samples", "must be at least 10")
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(str(out), "the config file must end in .yaml or .yml")
    if out.exists() and not args.force:
        raise ConfigError(str(out), "already exists; choose another --out, or add --force to "
                          "overwrite it")
    preview = Path(args.preview) if args.preview else out.with_name(out.stem + "_preview.png")
    info = probe_video(args.video)
    # keep the sampled frames to about 300 MB whatever the resolution
    n = max(10, min(args.samples, int(300e6 // max(1, info.width * info.height))))
    with VideoReader(args.video, info) as reader:
        frames, _ = reader.sample_frames(n)
    background = median_background(frames)
    proposal = propose_geometry(
        background, frames, n_chambers=args.chambers, n_arenas=args.arenas
    )
    text = proposal_to_yaml(proposal, video=str(args.video), preview=preview.name,
                            version=__version__)
    config = parse_config(yaml.safe_load(text), source=str(out))  # as check-config reads it
    check_against_frame(config, info.width, info.height, video=str(args.video))
    write_bytes(out, text.encode("utf-8"))
    write_png(preview, draw_proposal(background, proposal, config))

    print(f"{args.video}: wrote {out} and {preview} ({info.width}x{info.height} px, "
          f"{len(frames)} frames sampled)")
    print("  how sure (0-1):")
    for f in proposal.findings:
        print(f"    {f.element:<16} {f.level:<6} {f.confidence:4.2f}  {f.evidence}")
    for arena in proposal.arenas:
        points = ", ".join(f"{name} [{p[0]:g}, {p[1]:g}]" for name, p in arena.chambers)
        print(f"    {arena.name} chambers: {points}")
    for note in proposal.notes:
        print(f"  note: {note}")
    if not proposal.outline_found:
        print("  OUTLINE NOT FOUND for some box: its polygon is a template rectangle; "
              f"replace it in {out} (or click it: cpp-tracker draw)")
    if not proposal.doors_found:
        print("  no doors found: the config has one chamber per box; if the box has doors, "
              f"add them in {out} (a commented template is in it) or click them with "
              f"cpp-tracker draw {args.video} --config {out} --out draw.html")
    print("next: look at the picture, rename the chambers in the config, then")
    print(f"  cpp-tracker check-config {out} --video {args.video}")
    print(f"  cpp-tracker track {args.video} --config {out} --out results/")
    return 0


# ----------------------------------------------------------------------------------- draw
def _add_draw(sub) -> None:
    p = sub.add_parser(
        "draw",
        help="write a page to click the geometry on the video's empty-box image",
        description=(
            "Write one HTML file (no server, no internet needed) showing the empty-box image "
            "of VIDEO. Open it in a browser, click the arena corners, the two ends of each "
            "door line and a point in each chamber, name the chambers, add masks; the "
            "chambers are coloured as you click, and the page copies or downloads the YAML "
            "config. With --config the page starts from that config's geometry."
        ),
    )
    p.add_argument("video", help="a video of the box")
    p.add_argument("--config", help="start from this config (e.g. one written by init)")
    p.add_argument("--out", required=True, help="the HTML file to write, e.g. draw.html")
    p.add_argument("--samples", type=int, default=40, metavar="N",
                   help="frames sampled for the empty-box image (default: the config's "
                   "background.samples, else 40)")
    p.set_defaults(handler=_cmd_draw)


def _cmd_draw(args) -> int:
    from pathlib import Path

    import yaml

    from ..config.settings import check_against_frame, load_config
    from ..results.outputs import write_bytes
    from ..setup.draw_page import build_draw_page
    from ..tracking.background import median_background
    from ..video.reader import VideoReader, probe_video

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(str(out), "the page must end in .html")
    if args.samples < 3:
        raise ConfigError("--samples", "must be at least 3")
    raw = None
    samples = args.samples
    problems: list[str] = []
    if args.config:
        config_path = Path(args.config)
        try:
            raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(str(config_path), "file not found; check the path given to "
                              "--config") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
            raise ConfigError(str(config_path), f"cannot be read as YAML ({e}); fix it or "
                              "draw without --config") from None
        if not isinstance(raw, dict):
            raise ConfigError(str(config_path), "is not a YAML mapping with an 'arenas' list; "
                              "draw without --config")
        try:
            config = load_config(config_path)
            samples = config.background.samples if args.samples == 40 else args.samples
        except ConfigError as e:  # the page is where it gets fixed: show it all the same
            problems = e.problems
    info = probe_video(args.video)
    if raw is not None and not problems:
        try:
            check_against_frame(load_config(args.config), info.width, info.height,
                                video=str(args.video))
        except ConfigError as e:
            problems = e.problems
    with VideoReader(args.video, info) as reader:
        frames, _ = reader.sample_frames(samples)
    background = median_background(frames)
    del frames
    page = build_draw_page(
        background,
        config=raw,
        video=str(args.video),
        download_name=(Path(args.config).name if args.config else Path(args.video).stem + ".yaml"),
    )
    write_bytes(out, page.encode("utf-8"))
    print(f"{args.video}: wrote {out} ({info.width}x{info.height} px); open it in a browser")
    if problems:
        print(f"  {args.config} has problems to fix on the page:")
        for p in problems:
            print(f"    - {p}")
    print("  click the arena corners, the ends of each door line and a point in each chamber;")
    print("  name the chambers, then 'download YAML' and check it:")
    print(f"  cpp-tracker check-config CONFIG.yaml --video {args.video}")
    return 0


# ------------------------------------------------------------------------------ the parser
#: Subcommands, in the order ``--help`` lists them. Each adds its parser and sets a handler.
SUBCOMMANDS: list[Callable] = [
    _add_init,
    _add_draw,
    _add_track,
    _add_batch,
    _add_check_config,
    _add_preview,
    _add_reprocess,
    _add_summarize,
    _add_plot,
    _add_review,
    _add_overlay,
    _add_agreement,
    _add_report,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cpp-tracker",
        description="Time-in-chamber results from overhead videos of a mouse in a "
        "Conditioned Place Preference box.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cpp-tracker {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CppTrackerError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # output piped into a command that stopped reading (| head): not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to continue", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a bug: say so plainly, traceback on --debug
        if args.debug:
            raise
        print(
            f"error: unexpected failure ({type(e).__name__}: {e}); rerun with --debug and "
            "report the traceback",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

