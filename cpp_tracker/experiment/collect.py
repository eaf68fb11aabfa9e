"""One table across many result folders: the input of ``cpp-tracker summarize``.

:func:`collect_results` reads every result folder (``summary.csv`` and ``run.json``) below
the given paths into one *long* table, one row per animal, session and chamber;
:func:`results_wide` turns it into one row per animal and session, with a column per
chamber and measure (``<chamber>_time_s``, ``<chamber>_percent``, ...).

Which animal a row belongs to (``animal_id``):

- a video with one arena: the ``animal_id`` of the batch manifest (``run.json``'s
  ``metadata``), otherwise the arena's ``animal_id`` from the config;
- a video with several arenas: each arena's ``animal_id`` from the config, otherwise the
  manifest's ``animal_id`` followed by ``/<arena name>``.

Every ``metadata`` column of ``run.json`` (``session``, ``phase``, any other manifest column)
is carried, and so is every column of ``summary.csv`` beyond the standard ones (QC figures
added by later versions): one that has one value per arena becomes a session column, one
that varies by chamber a per-chamber column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis.summary import CHAMBER_MEASURES, SESSION_MEASURES, SUMMARY_COLUMNS
from ..errors import OutputError
from ..results.record import RunRecord, read_run_record
from ..results.stored import find_result_dirs

__all__ = [
    "CHAMBER_MEASURES",
    "SESSION_MEASURES",
    "collect_results",
    "results_wide",
]

#: Columns that identify a session of one animal in the collected tables.
_ID_COLUMNS = ["result", "video", "arena"]
#: Metadata keys not carried as columns: ``animal_id`` is resolved separately, and keys that
#: are summary columns (``video``, ...) would overwrite them.
_METADATA_SKIP = {"animal_id", "video", "arena", "chamber"}


def _text(value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def _read_summary(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(
            path, dtype={"animal_id": str, "video": str, "arena": str, "chamber": str}
        )
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise OutputError(f"{path}: cannot be read ({e}); run track again") from None
    missing = [c for c in ("arena", "chamber", "time_s", "percent") if c not in table.columns]
    if missing:
        raise OutputError(
            f"{path}: lacks the column(s) {', '.join(missing)}; it was not written by "
            "cpp-tracker: run track again"
        )
    return table


def _qc_columns(record: RunRecord, arena: str) -> dict:
    """QC figures from the run record for one arena."""
    stats = record.arena_stats(arena)
    share = stats.share_without_detection if stats is not None else None
    read_fraction = record.time_base.read_fraction_of_nominal
    return {
        "share_without_detection": np.nan if share is None else share,
        "gaps_missing_s": record.time_base.gaps_missing_s,
        "read_fraction_of_nominal": np.nan if read_fraction is None else read_fraction,
        "n_warnings": len(record.warnings),
        "config_hash": record.config.hash,
        "entry_rule": entry_rule_label(record),
        # doubt travels: a session its QC flags is marked wherever its numbers go
        "usable": record.usable(arena),
        "doubts": "; ".join(record.doubts(arena)),
    }


def collect_results(
    paths: list[str | Path],
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Read every result folder at or below ``paths`` into one long table.

    Returns
    -------
    table
        One row per result folder, arena and chamber (``unknown`` included): ``animal_id``,
        the metadata columns, ``result`` (the folder), ``video`` (the video file's stem),
        ``arena``, ``chamber``, the summary columns, any extra summary columns, and QC
        figures from ``run.json`` (``share_without_detection``, ``gaps_missing_s``,
        ``read_fraction_of_nominal``, ``n_warnings``, ``config_hash``), and whether the
        session is ``usable`` (its QC verdict passed) with the ``doubts`` when it is not.
    metadata_columns
        The metadata column names, in the order first seen.
    warnings
        Sentences about doubtful input (e.g. the same animal and session twice).
    """
    frames = []
    metadata_columns: list[str] = []
    for folder in find_result_dirs(paths):
        record = read_run_record(folder)
        summary = _read_summary(folder / "summary.csv")
        metadata_columns.extend(
            key for key in record.metadata
            if key not in metadata_columns
            and key not in _METADATA_SKIP
            and key not in SUMMARY_COLUMNS
            and key not in summary.columns
        )
        frames.extend(_rows_of_result(folder, record, summary, metadata_columns))
    table = pd.concat(frames, ignore_index=True)
    for key in metadata_columns:
        if key not in table:
            table[key] = np.nan
    extra = [
        c
        for c in table.columns
        if c not in SUMMARY_COLUMNS and c not in metadata_columns and c not in _ID_COLUMNS
    ]
    order = [
        "animal_id",
        *metadata_columns,
        *_ID_COLUMNS,
        "chamber",
        *[c for c in SUMMARY_COLUMNS if c not in ("video", "arena", "animal_id", "chamber")],
        *extra,
    ]
    table = table[[c for c in order if c in table.columns]]
    if "entries" in table:
        table["entries"] = table["entries"].astype("Int64")
    return table, metadata_columns, (_duplicate_warnings(table, metadata_columns)
                                     + _mixed_rule_warnings(table))


def entry_rule_label(record: RunRecord) -> str:
    """How the results decided the chamber, in a few words: ``point``, or
    ``body_fraction 0.7/0.3`` (enter/exit fractions); ``point`` for results made before
    the rule was recorded (the only rule then)."""
    rule = dict(record.config.entry_rule or {})
    if rule.get("rule") == "body_fraction":
        return f"body_fraction {rule.get('enter_fraction'):g}/{rule.get('exit_fraction'):g}"
    return "point"


def _mixed_rule_warnings(table: pd.DataFrame) -> list[str]:
    """A sentence when the sessions decided chambers by different rules."""
    if "entry_rule" not in table or table["entry_rule"].nunique() < 2:
        return []
    counts = table.drop_duplicates(["result", "arena"])["entry_rule"].value_counts()
    listed = ", ".join(f"{rule} ({n})" for rule, n in counts.items())
    return [f"the results decide the chamber by different rules (chambers.rule: {listed}); "
            "their times are not comparable: reprocess them with one config"]


def _rows_of_result(
    folder: Path, record: RunRecord, summary: pd.DataFrame, metadata_columns: list[str]
) -> list[pd.DataFrame]:
    """Per arena, the summary rows of one result folder with its animal, folder, video,
    metadata and QC columns."""
    metadata = record.metadata
    video_stem = Path(str(record.video_label or folder.name)).stem
    arenas = list(dict.fromkeys(summary["arena"].astype(str)))
    frames = []
    for arena in arenas:
        rows = summary[summary["arena"].astype(str) == arena].copy()
        rows["animal_id"] = _animal_of(rows, arena, metadata, single=len(arenas) == 1)
        rows.insert(1, "result", str(folder))
        rows["video"] = video_stem
        for key in metadata_columns:
            if key in metadata:
                value = metadata[key]
                rows[key] = value if not isinstance(value, (list, dict)) else str(value)
        for key, value in _qc_columns(record, arena).items():
            rows[key] = value
        frames.append(rows)
    return frames


def _animal_of(rows: pd.DataFrame, arena: str, metadata, *, single: bool) -> str | None:
    """The manifest's animal for a video of one arena; with several arenas the config's
    animal_id of the arena, else '<manifest animal>/<arena>'."""
    manifest_animal = _text(metadata.get("animal_id"))
    config_animal = _text(rows["animal_id"].iloc[0]) if "animal_id" in rows else None
    if single:
        return manifest_animal or config_animal
    if config_animal:
        return config_animal
    return f"{manifest_animal}/{arena}" if manifest_animal else None


def _duplicate_warnings(table: pd.DataFrame, metadata_columns: list[str]) -> list[str]:
    keys = ["animal_id", *[c for c in ("session", "phase") if c in metadata_columns]]
    sessions = table.drop_duplicates(["result", "arena"])
    sessions = sessions[sessions["animal_id"].notna()]
    warnings = []
    for key, group in sessions.groupby(keys, dropna=False, sort=True):
        if len(group) > 1:
            key = key if isinstance(key, tuple) else (key,)
            what = ", ".join(f"{k} {v}" for k, v in zip(keys, key, strict=True) if _text(v))
            warnings.append(
                f"{what} appears in {len(group)} result folders "
                f"({', '.join(group['result'])}); the table has a row for each"
            )
    return warnings


def _session_level(table: pd.DataFrame, column: str) -> bool:
    """True when ``column`` has one value per session (result folder and arena)."""
    counts = table.groupby(["result", "arena"], sort=False)[column].nunique(dropna=False)
    return bool((counts <= 1).all())


def results_wide(table: pd.DataFrame, metadata_columns: list[str]) -> pd.DataFrame:
    """One row per animal and session: ``<chamber>_<measure>`` columns from the long table.

    Per-chamber measures (:data:`CHAMBER_MEASURES` and extra columns that vary by chamber)
    are grouped by measure, chambers in the order first seen and ``unknown`` last; columns
    that are empty throughout (``unknown_entries``) are left out. Session measures, extra
    session columns and QC figures follow.
    """
    keys = ["animal_id", *metadata_columns, *_ID_COLUMNS]
    known = set(keys) | {"chamber"} | set(SUMMARY_COLUMNS)
    extra = [c for c in table.columns if c not in known]
    per_chamber = [c for c in CHAMBER_MEASURES if c in table.columns]
    per_session = [c for c in SESSION_MEASURES if c in table.columns]
    for c in extra:
        (per_session if _session_level(table, c) else per_chamber).append(c)
    sessions = table.drop_duplicates(["result", "arena"])[keys + per_session]
    chambers = [c for c in dict.fromkeys(table["chamber"]) if c != "unknown"]
    if (table["chamber"] == "unknown").any():
        chambers.append("unknown")
    wide = sessions.reset_index(drop=True)
    index = pd.MultiIndex.from_frame(wide[["result", "arena"]])
    blocks = {}
    indexed = table.set_index(["result", "arena", "chamber"])
    for measure in per_chamber:
        pivot = indexed[measure].unstack("chamber").reindex(index)
        for chamber in chambers:
            if chamber in pivot.columns:
                column = pivot[chamber].to_numpy()
                if pd.isna(column).all():
                    continue
                blocks[f"{chamber}_{measure}"] = (
                    pd.array(column, dtype="Int64") if measure == "entries" else column
                )
    measures = pd.DataFrame(blocks)
    out = pd.concat([wide[keys], measures, wide[per_session]], axis=1)
    return out.sort_values(
        ["animal_id", *metadata_columns], kind="stable", na_position="last"
    ).reset_index(drop=True)
