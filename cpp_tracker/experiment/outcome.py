"""``cpp-tracker experiment``: from result folders and a design to the experiment's answer.

:func:`run_experiment` collects the results (:mod:`.collect`), matches them to the design
(:mod:`.design`), scores every animal (:mod:`.scores`), tests the primary score
(:mod:`.stats`), draws the figure (:mod:`.figure`), recomputes the comparisons under the
alternative choices (:mod:`.sensitivity`) and writes ``scores.csv``, ``stats.csv``,
``figure.png``/``.svg``, ``sensitivity.csv`` and ``methods.md`` into one folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ConfigError, OutputError
from ..results.outputs import atomic_path, make_output_folder, write_csv
from ..results.record import read_run_record
from .collect import collect_results
from .design import POST, PRE, design_sessions, load_design
from .figure import draw_experiment_figure
from .methods import MethodsFacts, methods_text
from .scores import SCORES, animal_scores, load_criteria
from .sensitivity import main_comparisons, sensitivity
from .stats import STATS_COLUMNS, TESTS, interaction

__all__ = ["ExperimentOutcome", "run_experiment", "SEED"]

#: The default seed of the bootstrap intervals.
SEED = 20231

#: Settings of the resolved config that ``methods.md`` reports.
_METHODS_SETTINGS = ("detection.animal", "detection.threshold", "detection.min_area_px",
                     "chambers.hysteresis_px", "chambers.backdate_crossings",
                     "video.gap_factor", "qc.max_unknown", "qc.min_read_fraction")


@dataclass(frozen=True)
class ExperimentOutcome:
    """What :func:`run_experiment` wrote: the folder, the tables, the files, the excluded
    animals (``animal, group, reasons``), the flagged ones kept, and warnings."""

    out_dir: Path
    scores: pd.DataFrame
    stats: pd.DataFrame
    sensitivity: pd.DataFrame
    files: tuple[Path, ...]
    excluded: tuple[tuple[str, str, str], ...]
    kept_flagged: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]
    score: str
    groups: tuple[str, ...]


def run_experiment(
    paths: list[str | Path], design: str | Path, out_dir: str | Path, *,
    criteria: str | Path | None = None, score: str | None = None, test: str = "auto",
    include_flagged: bool = False, seed: int = SEED,
) -> ExperimentOutcome:
    """Write the experiment's answer into ``out_dir`` (see the module text).

    Raises :class:`~cpp_tracker.errors.ConfigError` for a bad design, criteria file,
    ``score`` or ``test``, :class:`~cpp_tracker.errors.OutputError` when no result can be
    read."""
    if test not in TESTS:
        raise ConfigError("--test", f"'{test}' is not one of {', '.join(TESTS)}")
    rules = load_criteria(criteria, score)
    if score is not None and criteria is not None and rules.score != score:
        raise ConfigError("--score", f"'{score}' differs from the criteria file's score "
                          f"'{rules.score}'; the score is fixed in the criteria file")
    loaded = load_design(design)
    results, metadata_columns, warnings = _collected(paths)
    sessions, more = design_sessions(loaded, results, design_source=str(design),
                                     metadata_columns=metadata_columns)
    warnings += more
    sessions = sessions[sessions["phase"].isin([PRE, POST])].reset_index(drop=True)
    if "group" not in sessions:
        sessions["group"] = ""
    sessions["group"] = sessions["group"].fillna("").astype(str)
    scores = animal_scores(sessions, rules, include_flagged=include_flagged)
    groups = list(dict.fromkeys(scores["group"]))
    stats_table = _statistics(scores, rules.score, test=test, seed=seed, groups=groups)
    sens, more = sensitivity(sessions, scores, rules, include_flagged=include_flagged,
                             test=test, seed=seed, groups=groups)
    warnings += more
    out = make_output_folder(out_dir, "the experiment's outputs")
    files = [write_csv(out / "scores.csv", scores), write_csv(out / "stats.csv", stats_table),
             write_csv(out / "sensitivity.csv", sens),
             *draw_experiment_figure(scores, rules.score, groups, out)]
    text = methods_text(_facts(sessions), scores, stats_table, sens, rules, test=test,
                        seed=seed, include_flagged=include_flagged, groups=groups)
    files.append(atomic_path(out / "methods.md",
                             lambda tmp: Path(tmp).write_text(text, encoding="utf-8")))
    excluded = scores[~scores["included"]]
    kept = scores[scores["flagged"]]
    return ExperimentOutcome(
        out, scores, stats_table, sens, tuple(files),
        tuple(zip(excluded["animal_id"], excluded["group"], excluded["exclusion_reasons"],
                  strict=True)),
        tuple(zip(kept["animal_id"], kept["doubts"], strict=True)),
        tuple(warnings), rules.score, tuple(groups))


#: Columns a summary CSV must have to stand for result folders (``summarize --long``).
_LONG_COLUMNS = ("animal_id", "result", "video", "arena", "chamber", "time_s", "entries",
                 "observed_s", "unknown_s")


def _collected(paths: list[str | Path]) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The long table of :func:`collect_results` from result folders and from CSV files
    written by ``summarize --long`` (without ``--design``), which stand for theirs."""
    csvs = [Path(p) for p in paths if Path(p).suffix.lower() == ".csv"]
    folders = [p for p in paths if Path(p).suffix.lower() != ".csv"]
    tables, metadata, warnings = [], [], []
    if folders:
        table, metadata, warnings = collect_results(folders)
        tables.append(table)
    for path in csvs:
        table = _read_long_summary(path)
        tables.append(table)
        first = list(table.columns).index("result")
        metadata += [c for c in table.columns[1:first] if c not in metadata]
    return pd.concat(tables, ignore_index=True), metadata, warnings


def _read_long_summary(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype={"animal_id": str, "result": str, "video": str,
                                         "arena": str, "chamber": str, "session": str})
    except FileNotFoundError:
        raise OutputError(f"{path}: not found; give result folders or the CSV of "
                          "'cpp-tracker summarize --long'") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise OutputError(f"{path}: cannot be read as CSV ({e})") from None
    missing = [c for c in _LONG_COLUMNS if c not in table.columns]
    if missing:
        raise OutputError(
            f"{path}: lacks the column(s) {', '.join(missing)}; give the CSV of "
            "'cpp-tracker summarize RESULTS --long' (without --design) or the result folders")
    if "usable" not in table:
        # a table from before QC verdicts were written: a flagged session would pass unmarked
        raise OutputError(
            f"{path}: has no 'usable' column (each session's QC verdict), so sessions that "
            "need review cannot be told apart; run 'cpp-tracker summarize RESULTS --long' "
            "again with this version, or give the result folders")
    table["usable"] = table["usable"].astype(str).str.lower().isin(["true", "1"])
    table["doubts"] = table["doubts"].fillna("") if "doubts" in table else ""
    return table


def _statistics(scores: pd.DataFrame, score: str, *, test: str, seed: int,
                groups: list[str]) -> pd.DataFrame:
    """``stats.csv``: within each group, between groups, and the group x phase interaction
    of the score's per-session measure (two or more groups, a change score)."""
    rows = main_comparisons(scores, score, test=test, seed=seed, groups=groups)
    measure = SCORES[score].measure
    if len(groups) > 1 and measure:
        used = scores[scores["included"]].dropna(subset=[f"pre_{measure}", f"post_{measure}"])
        long = pd.concat([
            pd.DataFrame({"animal_id": used["animal_id"], "group": used["group"],
                          "phase": phase, "value": used[f"{phase}_{measure}"].astype(float)})
            for phase in ("pre", "post")], ignore_index=True)
        rows.append(interaction(long, score=measure, seed=seed))
    return pd.DataFrame([r.row() for r in rows], columns=STATS_COLUMNS)


def _facts(sessions: pd.DataFrame) -> MethodsFacts:
    """Versions and settings of the results used, from their ``run.json``."""
    versions: list[str] = []
    settings: dict[str, list[str]] = {k: [] for k in _METHODS_SETTINGS}
    n_read = 0
    for folder in [r for r in dict.fromkeys(sessions["result"]) if isinstance(r, str)]:
        try:
            record = read_run_record(folder)
        except OutputError:  # a summary CSV whose result folders are not here
            continue
        n_read += 1
        if record.version and record.version not in versions:
            versions.append(record.version)
        resolved = record.config.resolved or {}
        for key in _METHODS_SETTINGS:
            section, name = key.split(".")
            value = (resolved.get(section) or {}).get(name, "not recorded")
            text = _setting_text(key, value)
            if text not in settings[key]:
                settings[key].append(text)
    return MethodsFacts(tuple(versions), {k: tuple(v) for k, v in settings.items()}, n_read)


def _setting_text(key: str, value) -> str:
    """A setting as methods.md gives it: shares as percent, None as 'automatic'."""
    if value is None or value == "auto":
        return "automatic"
    if key.startswith("qc.") and isinstance(value, (int, float)):
        return f"{100 * value:g} %"
    return str(value)
