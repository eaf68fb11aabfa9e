"""Commands on stored results: ``reprocess``, ``summarize``, ``plot``, ``review``,
``overlay``, ``agreement``, ``report``.

Each checks its arguments, calls one function of :mod:`cpp_tracker.runs`,
:mod:`cpp_tracker.experiment` or :mod:`cpp_tracker.visual` (per result folder where the
command takes many) and prints what came of it.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..errors import ConfigError, CppTrackerError
from .track import add_export_option, exports_of

__all__ = [
    "add_reprocess",
    "add_summarize",
    "add_experiment",
    "add_plot",
    "add_review",
    "add_overlay",
    "add_agreement",
    "add_report",
]


# ------------------------------------------------------------------------------ reprocess
def add_reprocess(sub) -> None:
    p = sub.add_parser(
        "reprocess",
        help="recompute results from stored tracks with a changed config (no video decoding)",
        description=(
            "Bring result folders up to date with a new config. When only geometry (door "
            "lines, chambers, hysteresis, the entry rule chambers.rule, scale) or summary "
            "settings (bins, windows) changed, "
            "chambers, occupancy.csv, summary.csv and summary_bins.csv are recomputed from "
            "track.parquet without opening the video; the results equal a fresh track run. "
            "When detection settings changed (background, detection, arena polygon, masks), "
            "or chambers.rule: body_fraction needs chamber shares the track does not hold "
            "for these door lines, "
            "the folder is refused with the reason named, unless --retrack is given. "
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
    add_export_option(p)
    p.set_defaults(handler=_cmd_reprocess)


def _cmd_reprocess(args) -> int:
    from ..config.settings import load_config
    from ..results.stored import find_result_dirs
    from ..runs.reprocess import reprocess_result

    config = load_config(args.config)
    exports = exports_of(args)
    folders = find_result_dirs(args.outdir)
    counts: dict[str, int] = {}
    failures: list[tuple[str, CppTrackerError]] = []
    pages: dict = {}
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
                exports=exports,
            )
        except CppTrackerError as e:
            if args.debug:
                raise
            print(f"error: {e}", file=sys.stderr)
            failures.append((str(folder), e))
            continue
        counts[r.status] = counts.get(r.status, 0) + 1
        pages.update(dict.fromkeys(r.reports))
        _print_reprocessed(folder, r)
    for page in pages:  # a batch's report shows the new numbers, not the old ones
        print(f"report: {page} rewritten with the new results")
    return _reprocess_end(len(folders), counts, failures)


def _print_reprocessed(folder, r) -> None:
    """One result folder's warnings (stderr), and what was done to it."""
    for w in r.warnings:
        print(f"warning: {folder}: {w}", file=sys.stderr)
    if r.status == "unchanged":
        print(f"{folder}: already made with this config (hash {r.config_hash}); nothing to do")
        return
    changed = ", ".join(r.changed_keys) if r.changed_keys else "nothing (--force)"
    kept = f"; previous results kept in {r.previous_dir}" if r.previous_dir else ""
    print(
        f"{folder}: {r.status} in {r.elapsed_s:.2f} s (config hash {r.config_hash}; "
        f"changed: {changed}){kept}"
    )


def _reprocess_end(
    n_folders: int, counts: dict[str, int], failures: list[tuple[str, CppTrackerError]]
) -> int:
    """The totals over several folders, the failed ones on stderr; the exit status."""
    done = ", ".join(f"{n} {status}" for status, n in counts.items())
    if failures and n_folders > 1:
        print(
            f"{n_folders - len(failures)} of {n_folders} result folder(s) done"
            f"{' (' + done + ')' if done else ''}; {len(failures)} failed:",
            file=sys.stderr,
        )
        for folder, _ in failures:
            print(f"  {folder}", file=sys.stderr)
    if failures:
        return max(e.exit_code for _, e in failures)
    if n_folders > 1:
        print(f"{n_folders} result folders: {done}")
    return 0


# ------------------------------------------------------------------------------ summarize
def add_summarize(sub) -> None:
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
    p.add_argument(
        "--include-flagged",
        action="store_true",
        help="with --design: compute the change scores and group means from sessions that "
        "need review too (by default they are marked and left out)",
    )
    p.set_defaults(handler=_cmd_summarize)


def _cmd_summarize(args) -> int:
    from ..experiment.summarize import summarize_results

    out = Path(args.out)
    if out.suffix.lower() != ".csv":
        raise ConfigError("--out", f"'{args.out}' should be a .csv file name")
    if out.is_dir():
        raise ConfigError("--out", f"'{args.out}' is a folder; give a .csv file name")
    if args.include_flagged and not args.design:
        raise ConfigError("--include-flagged", "applies only with --design")
    written = summarize_results(args.outdir, out, design=args.design, long=args.long,
                                side_bias_percent=args.side_bias_percent,
                                include_flagged=args.include_flagged)
    table = written.table
    for w in written.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.design:
        what = "animal and session" if args.long else "animal"
    else:
        what = "animal, session and chamber" if args.long else "animal and session"
    print(
        f"{out}: {len(table)} row(s), one per {what}, from {written.n_results} result(s) "
        f"({len(table.columns)} columns)"
    )
    if args.design:
        print(f"  side bias threshold at pre-test: {written.side_bias_percent:g} % of the two "
              "conditioning chambers' time")
        flagged = table[table["flags"].astype(str) != ""] if "flags" in table else table[:0]
        for _, r in flagged.iterrows():
            print(f"  flag {r['animal_id']}: {r['flags']}")
        _print_groups(written.groups, args.include_flagged)
    _print_needing_review(written.needing_review)
    return 0


def _print_groups(groups, include_flagged: bool) -> None:
    """Per group, the mean change of the paired share, and who was left out and why."""
    for g in groups.itertuples(index=False):
        mean, sd = g.change_paired_percent_mean, g.change_paired_percent_sd
        figure = "no animal with a usable pre- and post-test" if g.included == 0 else (
            f"change in paired % {mean:+.1f}" + ("" if sd != sd else f" ± {sd:.1f} SD")
        )
        print(f"  group {g.group}: {g.included} of {g.animals} animal(s) in the means, "
              f"{figure}")
        if g.excluded:
            why = "no pre- and post-test" if include_flagged else "needs review or missing"
            print(f"    left out ({why}): {g.excluded_animals}")


def _print_needing_review(rows) -> None:
    if rows:
        print(f"  {len(rows)} session(s) need review (usable = False in the table):")
        for result, arena, doubts in rows:
            print(f"    {result} ({arena}): {doubts}")


# ----------------------------------------------------------------------------- experiment
def add_experiment(sub) -> None:
    from ..experiment.choices import SCORE_NAMES, TESTS

    p = sub.add_parser(
        "experiment",
        help="the experiment's answer: scores, statistics, figure, methods and sensitivity",
        description=(
            "From the result folders and a design CSV (with a group column): one row per "
            "animal with every CPP score (scores.csv), the tests within each group, between "
            "groups and the group x phase interaction (stats.csv), the figure (figure.png, "
            "figure.svg), a methods paragraph (methods.md) and the main comparisons under "
            "alternative choices (sensitivity.csv). Animals with a flagged, truncated or "
            "missing pre- or post-test are left out and listed."
        ),
    )
    p.add_argument("outdir", nargs="+", metavar="RESULT_DIR_OR_SUMMARY",
                   help="folders holding results (searched recursively), or CSV files "
                   "written by 'summarize --long' without --design")
    p.add_argument("--design", required=True, metavar="DESIGN.csv",
                   help="CSV naming per session the animal, group, phase, paired chamber "
                   "(see README)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into")
    p.add_argument("--criteria", metavar="CRITERIA.yaml",
                   help="per-animal rules fixed in advance: score, cut-off, side-bias "
                   "exclusion, unknown-time limit (see configs/criteria_example.yaml)")
    p.add_argument("--score", choices=SCORE_NAMES, default=None, metavar="SCORE",
                   help="the primary score: " + ", ".join(SCORE_NAMES) + " (default "
                   "change_paired_percent, or the criteria file's)")
    p.add_argument("--test", choices=TESTS, default="auto",
                   help="auto: Shapiro-Wilk decides (default); or force parametric / "
                   "nonparametric tests")
    p.add_argument("--include-flagged", action="store_true",
                   help="keep animals whose pre- or post-test needs review (marked in "
                   "scores.csv, the figure and methods.md)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the bootstrap intervals (default 20231)")
    p.set_defaults(handler=_cmd_experiment)


def _cmd_experiment(args) -> int:
    from ..experiment.outcome import SEED, run_experiment

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", f"'{args.out}' is a file; give a folder")
    done = run_experiment(args.outdir, args.design, out, criteria=args.criteria,
                          score=args.score, test=args.test,
                          include_flagged=args.include_flagged,
                          seed=SEED if args.seed is None else args.seed)
    for w in done.warnings:
        print(f"warning: {w}", file=sys.stderr)
    scores = done.scores
    print(f"{out}: {len(scores)} animal(s), {int(scores['included'].sum())} analysed; "
          f"score {done.score}")
    for animal, group, why in done.excluded:
        print(f"  excluded {animal} ({group or 'no group'}): {why}")
    for animal, doubts in done.kept_flagged:
        print(f"  kept although flagged {animal}: {doubts}")
    for r in done.stats.itertuples(index=False):
        if r.test:
            print(f"  {r.comparison} [{r.group}] {r.test}: statistic {r.statistic:.3g}, "
                  f"p = {r.p_value:.3g}, {r.effect_type} {r.effect_size:.2f} "
                  f"[{r.ci_low:.2f}, {r.ci_high:.2f}], n = {r.n}")
        else:
            print(f"  {r.comparison} [{r.group}]: {r.note}")
    broken = done.sensitivity[done.sensitivity["holds"] == False]  # noqa: E712
    print(f"  sensitivity: {len(broken)} of {int((done.sensitivity['variant'] != 'main').sum())}"
          " recomputed comparison(s) change direction or significance (sensitivity.csv)")
    print("  wrote " + ", ".join(p.name for p in done.files))
    return 0


# ----------------------------------------------------------------------------------- plot
def add_plot(sub) -> None:
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
def add_review(sub) -> None:
    p = sub.add_parser(
        "review",
        help="cut overlay clips of the doubtful moments, or draw a blind agreement sheet",
        description="Without --sample: for each result folder in OUTDIR, cut short overlay "
        "clips (centroid, blob outline, chamber, door lines and hysteresis band) around the "
        "flagged seconds and the door crossings closest to the decision margin, into the "
        "result folder's review/ (OUTDIR/<video stem>/review/) with an index clips.csv. With "
        "--sample N: draw N seconds (the mouse near a door and flagged seconds first, then "
        "random ones) and write a contact sheet without the tool's answers "
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
                   help="write a blind agreement sheet of N seconds instead of clips (the "
                   "doubtful ones first, then random ones)")
    p.add_argument("--seed", type=int, default=0, help="random seed of --sample (default 0)")
    p.add_argument("--out", help="folder for the agreement sheet (default OUTDIR/agreement)")
    p.set_defaults(handler=_cmd_review)


def _cmd_review(args) -> int:
    from ..results.stored import find_result_dirs

    dirs = find_result_dirs(args.outdir)
    if args.video and len(dirs) != 1:
        raise ConfigError("--video", "can only be given for a single result folder")
    if args.sample is not None:
        return _agreement_sheet(args, dirs)
    if args.max_clips < 1:
        raise ConfigError("--max-clips", f"must be at least 1, got {args.max_clips}")
    return _review_clips(args, dirs)


def _agreement_sheet(args, dirs: list) -> int:
    """review --sample: the blind sheet, the CSV to fill in and the key."""
    from ..experiment.agreement import write_agreement_sheet
    from ..results.stored import load_result

    results = [load_result(d) for d in dirs]
    out = Path(args.out) if args.out else Path(args.outdir) / "agreement"
    written = write_agreement_sheet(results, out, args.sample, seed=args.seed,
                                    video=args.video)
    for page in written["pages"]:
        print(f"contact sheet: {page}")
    print(f"fill in:       {written['sheet']} (column human_chamber)")
    print(f"answers:       {written['key']} (do not open it before)")
    print(f"then run:      cpp-tracker agreement {shlex.quote(str(written['sheet']))}")
    return 0


def _review_clips(args, dirs: list) -> int:
    """review: the clips of each result folder; a folder that fails is an error line."""
    from ..results.stored import load_result
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
def add_overlay(sub) -> None:
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
def add_agreement(sub) -> None:
    p = sub.add_parser(
        "agreement",
        help="compare a filled-in agreement sheet with the tool's chambers, or two result "
        "folders of one video frame by frame",
        description="With one file: read agreement_sheet.csv (written by 'review --sample' "
        "and filled in by a person) and its key, and report percent agreement, Cohen's "
        "kappa, the confusion table and every disagreement. With two result folders of the "
        "same video (e.g. track and pose): compare their chambers frame by frame per arena "
        "(the chamber the time is counted in), and report agreement and Cohen's kappa over "
        "the frames both know, the seconds where they differ and where either does not "
        "know the chamber, and the stretches where they differ.",
    )
    p.add_argument("sheet", metavar="SHEET_OR_RESULT",
                   help="the filled-in agreement_sheet.csv, or a result folder")
    p.add_argument("result_b", nargs="?", metavar="RESULT_B",
                   help="a second result folder of the same video")
    p.add_argument("--key", help="the key (default: agreement_key.csv beside the sheet)")
    p.add_argument("--stretches", type=int, default=10, metavar="N",
                   help="with two result folders: list the N longest stretches where they "
                   "differ (default 10)")
    p.set_defaults(handler=_cmd_agreement)


def _cmd_agreement(args) -> int:
    from ..experiment.agreement import compare_sheet

    if args.result_b is not None:
        return _results_agreement(args)
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


def _results_agreement(args) -> int:
    from ..experiment.agreement import compare_results

    if args.key is not None:
        raise ConfigError("--key", "belongs to an agreement sheet, not to two result folders")
    r = compare_results(args.sheet, args.result_b)
    print(f"A = {r.result_a}\nB = {r.result_b}\n{r.same_video}; column {r.column}")
    for a in r.arenas:
        kappa = "undefined (one category only)" if a.kappa != a.kappa else f"{a.kappa:.3f}"
        percent = "-" if a.percent != a.percent else f"{a.percent:.1f} %"
        print(f"  {a.arena}: {a.frames} frames, {a.duration_s:.1f} s")
        for which, reasons in (("A", a.review_a), ("B", a.review_b)):
            if reasons:  # a comparison with a doubtful result is said to be one
                print(f"    {which} NEEDS REVIEW: {reasons}")
        print(f"    agreement     {percent} of the {a.frames_both_known} frames both know "
              f"({a.agree_s:.1f} s)")
        print(f"    Cohen's kappa {kappa}")
        print(f"    differ        {a.differ_s:.1f} s; unknown in A only {a.unknown_a_s:.1f} s, "
              f"in B only {a.unknown_b_s:.1f} s, in both {a.unknown_both_s:.1f} s")
        print("    confusion in frames (rows: A, columns: B):")
        for line in a.confusion.to_string().splitlines():
            print(f"      {line}")
        longest = a.stretches.assign(length_s=a.stretches["end_s"] - a.stretches["start_s"])
        longest = longest.nlargest(args.stretches, "length_s").sort_values("start_s")
        if len(longest):
            print(f"    {len(a.stretches)} stretch(es) where they differ; the longest:")
            for s in longest.itertuples(index=False):
                print(f"      {s.start_s:8.2f} to {s.end_s:8.2f} s: A {s.a_chamber}, "
                      f"B {s.b_chamber}")
    return 0


# --------------------------------------------------------------------------------- report
def add_report(sub) -> None:
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


