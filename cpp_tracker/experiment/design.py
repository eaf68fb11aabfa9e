"""The CPP experiment's design and its results: preference per animal and phase.

A design table (CSV, one row per session of an animal) says which result belongs to which
animal and phase, and which chamber was paired with the drug::

    animal_id,group,phase,session,paired_chamber,doors_closed,video
    m01,drug,pre-test,,left,no,
    m01,drug,conditioning,m01_C1,left,yes,
    m01,drug,post-test,,left,no,

Columns (names are case-insensitive):

``animal_id`` (required)
    The animal.
``phase`` (required)
    ``pre-test``, ``conditioning`` or ``post-test`` (``pre``, ``pretest``, ``post``,
    ``posttest``, ``cond`` are understood too); any other phase name is kept as given.
``paired_chamber`` (required for every animal; may be left empty on its other rows)
    The chamber paired with the drug, as named in the config.
``unpaired_chamber`` (optional; needed when the box has more than two chambers)
    The other conditioning chamber. Every chamber that is neither paired nor unpaired is
    *neutral* (e.g. the centre of a three-chamber box).
``group`` (optional; one per animal)
    Treatment group, carried into the output.
``session`` (optional)
    Tells sessions of one phase apart, and is matched with the ``session`` of the batch
    manifest. Batch joins the chunk files that share a session into one recording, so a
    session names one recording: ``m01_C1``, not ``C1`` for every animal.
``doors_closed`` (optional: yes/no, true/false, 1/0; empty = no)
    The doors were closed (confined conditioning): any crossing is flagged.
``video`` (optional)
    The video file's stem (or name) of the session's result folder, for results without
    manifest metadata.
``arena`` (optional)
    The arena, when that video holds several boxes.
Any other column (sex, cohort, ...) is carried into the output.

A design row finds its result by ``video`` when given, otherwise by the result's
``animal_id`` and ``session`` (when the row has one) or ``phase``, from the manifest
metadata stored in ``run.json``.

In the wide table (one row per animal) a session's columns are prefixed ``pre_``,
``post_``, or for other phases the phase numbered in design order (``cond1_``, ``cond2_``),
so that they line up across animals whatever the sessions are called.

Measures per session: seconds and percent of the observed time in the paired, unpaired
(and neutral) chambers; ``preference_s`` = paired - unpaired seconds;
``paired_share_percent`` = paired / (paired + unpaired) x 100; ``crossings`` = chamber
changes (bouts - 1). Per animal: ``change_*`` = post-test - pre-test; side bias at
pre-test when one conditioning chamber holds more than ``side_bias_percent`` (default 65 %)
of the time spent in the two of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, OutputError

__all__ = [
    "DESIGN_COLUMNS",
    "PHASES",
    "SIDE_BIAS_PERCENT",
    "normalise_phase",
    "load_design",
    "design_sessions",
    "design_long",
    "design_wide",
    "design_groups",
    "GROUP_SCORES",
]

PRE, COND, POST = "pre-test", "conditioning", "post-test"
#: The phases with a special role, in experiment order.
PHASES = (PRE, COND, POST)
_PHASE_ALIASES = {
    "pre-test": PRE,
    "pretest": PRE,
    "pre": PRE,
    "conditioning": COND,
    "cond": COND,
    "post-test": POST,
    "posttest": POST,
    "post": POST,
}
#: Default side-bias threshold: one conditioning chamber holding more than this share of
#: the time spent in the two conditioning chambers at pre-test.
SIDE_BIAS_PERCENT = 65.0

#: Known design columns; ``True`` = required.
DESIGN_COLUMNS = {
    "animal_id": True,
    "phase": True,
    "paired_chamber": True,
    "unpaired_chamber": False,
    "group": False,
    "session": False,
    "doors_closed": False,
    "video": False,
    "arena": False,
}
_PER_ANIMAL = ("paired_chamber", "unpaired_chamber", "group")
_YES = {"yes", "y", "true", "1", "closed"}
_NO = {"no", "n", "false", "0", "open", ""}

#: Per-session measures, in the order the output shows them.
SESSION_MEASURES = [
    "paired_s",
    "unpaired_s",
    "neutral_s",
    "paired_percent",
    "unpaired_percent",
    "neutral_percent",
    "preference_s",
    "paired_share_percent",
    "crossings",
    "observed_s",
    "unknown_s",
]
_CHANGE_MEASURES = ["paired_s", "paired_percent", "preference_s", "paired_share_percent"]


def normalise_phase(value) -> str:
    """``Pre-Test``, ``pretest``, ``pre`` -> ``pre-test`` (likewise post-test, conditioning);
    other names are lower-cased with spaces and underscores as ``-``."""
    text = re.sub(r"[\s_]+", "-", str(value).strip().lower())
    return _PHASE_ALIASES.get(text, _PHASE_ALIASES.get(text.replace("-", ""), text))


def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(text).lower()).strip("_")


def _prefixes(phases: list[str]) -> list[str]:
    """Column prefixes of one animal's sessions in the wide table, in design order:
    ``pre``, ``post``, and for other phases the phase (``cond`` for conditioning) numbered
    in the order of the design (``cond1``, ``cond2``), so that columns line up across
    animals whatever the sessions are called."""
    counts: dict[str, int] = {}
    out = []
    for phase in phases:
        if phase in (PRE, POST):
            out.append("pre" if phase == PRE else "post")
            continue
        short = "cond" if phase == COND else _slug(phase) or "phase"
        counts[short] = counts.get(short, 0) + 1
        out.append(f"{short}{counts[short]}")
    return out


def load_design(path: str | Path) -> pd.DataFrame:
    """Read and check a design CSV (format in the module description).

    Returns one row per session with the known columns (``doors_closed`` as bool, per-animal
    values filled into every row of the animal, ``phase`` normalised), ``line`` (the line
    in the file), ``prefix`` (the session's column prefix) and any extra columns. Raises
    :class:`~cpp_tracker.errors.ConfigError` listing every problem with its line and column.
    """
    path = Path(path)
    cells = _design_cells(_read_design_csv(path))
    problems = [*_doors_closed_problems(cells), *_empty_cell_problems(cells)]
    design = _normalised_cells(cells)
    problems += _per_animal_problems(design)
    design = _filled_per_animal(design)
    problems += _same_chamber_problems(design)
    if problems:
        raise ConfigError(str(path), sorted(set(problems), key=problems.index))
    return design


def _read_design_csv(path: Path) -> pd.DataFrame:
    """The design CSV as text cells, column names lower-cased; ConfigError when it cannot
    be read, lacks a required column or has no rows."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found; check the path given to --design") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ConfigError(str(path), f"cannot be read as CSV ({e})") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c, required in DESIGN_COLUMNS.items() if required and c not in raw]
    if missing:
        raise ConfigError(
            str(path),
            f"lacks the column(s) {', '.join(missing)}; the header needs at least "
            "animal_id,phase,paired_chamber (see the README's design section)",
        )
    if raw.empty:
        raise ConfigError(str(path), "has no rows; add one row per session of each animal")
    return raw


def _design_cells(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` with its cells stripped, every known column (empty where not given) and
    ``line``, the line of each row in the file."""
    design = raw.apply(lambda col: col.str.strip())
    for c in DESIGN_COLUMNS:
        if c not in design:
            design[c] = ""
    design.insert(0, "line", np.arange(len(design)) + 2)
    return design


def _doors_closed_problems(design: pd.DataFrame) -> list[str]:
    return [
        f"line {line}, column doors_closed: expected yes or no, got '{value}'"
        for line, value in zip(design["line"], design["doors_closed"], strict=True)
        if value.lower() not in _YES | _NO
    ]


def _empty_cell_problems(design: pd.DataFrame) -> list[str]:
    problems = []
    for line, animal, phase in zip(
        design["line"], design["animal_id"], design["phase"], strict=True
    ):
        if not animal:
            problems.append(f"line {line}, column animal_id: is empty")
        if not phase:
            problems.append(
                f"line {line}, column phase: is empty (pre-test, conditioning, post-test)"
            )
    return problems


def _normalised_cells(design: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``design`` with ``doors_closed`` as bool, the phase normalised, a video
    file name as its stem, and an empty ``prefix``."""
    design = design.copy()
    design["doors_closed"] = [v.lower() in _YES for v in design["doors_closed"]]
    design["prefix"] = ""
    design["phase"] = [normalise_phase(p) if p else "" for p in design["phase"]]
    design["video"] = [
        Path(v).stem if Path(v).suffix.lower() in _VIDEO_SUFFIXES else v for v in design["video"]
    ]
    return design


def _animals(design: pd.DataFrame):
    """(animal, its rows) in design order, rows without an animal left out."""
    return design[design["animal_id"] != ""].groupby("animal_id", sort=False)


def _per_animal_problems(design: pd.DataFrame) -> list[str]:
    """Per animal, in design order: per-animal columns with several values (or no paired
    chamber), then phases or sessions given twice."""
    problems: list[str] = []
    for animal, rows in _animals(design):
        for column in _PER_ANIMAL:
            values = sorted(set(rows[column]) - {""})
            if len(values) > 1:
                problems.append(
                    f"animal {animal}, column {column}: has different values "
                    f"({', '.join(values)}) on lines {', '.join(map(str, rows['line']))}; "
                    "an animal has one"
                )
            elif not values and column == "paired_chamber":
                problems.append(
                    f"animal {animal}, column paired_chamber: is empty on every line; give "
                    "the chamber paired with the drug"
                )
        problems += _repeated_session_problems(animal, rows)
    return problems


def _repeated_session_problems(animal: str, rows: pd.DataFrame) -> list[str]:
    """A second pre-test or post-test of one animal, or a second session of another phase
    that neither its session nor its video tells apart."""
    problems = []
    seen: dict[tuple, int] = {}
    for line, phase, session, video in zip(
        rows["line"], rows["phase"], rows["session"], rows["video"], strict=True
    ):
        key = (phase,) if phase in (PRE, POST) else (phase, session, video)
        if key in seen:
            problems.append(
                f"line {line}: animal {animal} has a second {phase} (first on line "
                f"{seen[key]}); an animal has one {phase}"
                if phase in (PRE, POST)
                else f"line {line}: animal {animal} has a second {phase} session like the "
                f"one on line {seen[key]}; tell them apart in the session (or video) column"
            )
        seen.setdefault(key, line)
    return problems


def _filled_per_animal(design: pd.DataFrame) -> pd.DataFrame:
    """``design`` with each per-animal value (paired chamber, ...) on every row of the
    animal (the first of several, in sorted order) and each session's column prefix."""
    design = design.copy()
    for _animal, rows in _animals(design):
        for column in _PER_ANIMAL:
            values = sorted(set(rows[column]) - {""})
            design.loc[rows.index, column] = values[0] if values else ""
        design.loc[rows.index, "prefix"] = _prefixes(list(rows["phase"]))
    return design


def _same_chamber_problems(design: pd.DataFrame) -> list[str]:
    return [
        f"line {line}: paired_chamber and unpaired_chamber are both '{paired}'"
        for line, paired, unpaired in zip(
            design["line"], design["paired_chamber"], design["unpaired_chamber"], strict=True
        )
        if paired and paired == unpaired
    ]


_VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".h264", ".mts"}


def _match(row: pd.Series, sessions: pd.DataFrame, has_session: bool) -> pd.DataFrame:
    """The result sessions (one row per result folder and arena) that a design row names."""
    if row["video"]:
        found = sessions[(sessions["video"] == row["video"]) | (sessions["folder"] == row["video"])]
        if len(found) > 1 and row["arena"]:
            found = found[found["arena"] == row["arena"]]
        elif len(found) > 1:
            found = found[found["animal_id"] == row["animal_id"]]
        return found
    found = sessions[sessions["animal_id"] == row["animal_id"]]
    if row["session"] and has_session:
        return found[found["session"] == row["session"]]
    return found[found["phase_meta"] == row["phase"]]


def design_sessions(
    design: pd.DataFrame,
    results: pd.DataFrame,
    *,
    design_source: str = "design",
    side_bias_percent: float = SIDE_BIAS_PERCENT,
    metadata_columns: list[str] | tuple[str, ...] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """Match design rows to results and compute the CPP measures of each session.

    Parameters
    ----------
    design
        From :func:`load_design`.
    results
        The long table of :func:`~cpp_tracker.experiment.collect.collect_results`.
    design_source
        Name of the design file, for messages.
    side_bias_percent
        Side-bias threshold at pre-test (percent of the two conditioning chambers' time).
    metadata_columns
        Manifest metadata columns of ``results`` to carry (the design's own columns win).

    Returns
    -------
    sessions
        One row per design row: the animal's columns, ``phase``, ``session``, ``prefix``,
        the matched ``result``, ``video``, ``arena`` and the measures (``paired_s``,
        ``unpaired_s``, ``neutral_s``, ``*_percent``, ``preference_s``,
        ``paired_share_percent``, ``crossings``, ``observed_s``, ``unknown_s``),
        ``closed_door_crossing``, ``side_bias``, ``preferred_side`` (pre-test only) and
        ``flags``. A design row without a result keeps NaN measures and a flag.
    warnings
        Sentences about results not in the design and design rows without results.

    Raises
    ------
    ConfigError
        A design row matches several results, a result matches several design rows, or a
        named chamber is not in the result's box.
    """
    sessions = _result_sessions(results)
    has_session = "session" in results
    used: dict[tuple[str, str], int] = {}
    out_rows, problems, warnings = [], [], []
    for _, row in design.iterrows():
        try:
            hit = _claim_result(row, sessions, has_session, used)
            out_rows.append(
                _session_record(row, design.columns, hit, results, side_bias_percent,
                                metadata_columns)
            )
        except _RowProblem as e:
            problems.append(str(e))
            continue
        if hit is None:
            warnings.append(f"{design_source} {_row_label(row)}: no result found")
    if problems:
        raise ConfigError(design_source, problems)
    if out_rows and not used:
        raise OutputError(
            f"{design_source}: none of its {len(out_rows)} rows matches a result (results "
            f"have animal_id {_listed(sessions['animal_id'])} and phase "
            f"{_listed(sessions['phase_meta'])}); check its animal_id, phase, session or "
            "video columns against the batch manifest"
        )
    return _session_table(out_rows), warnings + _unmatched_warnings(sessions, used)


def _listed(values: pd.Series, n: int = 5) -> str:
    """Up to ``n`` distinct values for a message, or '(none)'."""
    shown = [str(v) for v in dict.fromkeys(values) if str(v)]
    if not shown:
        return "(none)"
    return ", ".join(shown[:n]) + (f" and {len(shown) - n} more" if len(shown) > n else "")


class _RowProblem(Exception):
    """A design row that cannot be matched or measured: collected with the others, so that
    one error lists them all."""


@dataclass(frozen=True)
class _BoxTimes:
    """One result's chamber times (s, chambers in the box's order) and entries (all
    chambers; ``unknown`` left out of both)."""

    time_s: dict[str, float]
    entries: int


@dataclass(frozen=True)
class _Roles:
    """The chambers of one session's box by their role in the design."""

    paired: str
    unpaired: str
    neutral: list[str]


def _result_sessions(results: pd.DataFrame) -> pd.DataFrame:
    """One row per result folder and arena, with the keys design rows are matched on
    (missing metadata as empty text, the phase normalised)."""
    sessions = results.drop_duplicates(["result", "arena"]).copy()
    sessions["folder"] = [Path(r).name for r in sessions["result"]]
    sessions["session"] = (
        sessions["session"].map(lambda v: "" if pd.isna(v) else str(v).strip())
        if "session" in sessions
        else ""
    )
    sessions["phase_meta"] = (
        sessions["phase"].map(lambda v: "" if pd.isna(v) else normalise_phase(v))
        if "phase" in sessions
        else ""
    )
    sessions["animal_id"] = sessions["animal_id"].map(lambda v: "" if pd.isna(v) else str(v))
    return sessions


def _row_label(row: pd.Series) -> str:
    """How messages name a design row: ``line 3 (m01 pre-test)``."""
    return f"line {row['line']} ({row['animal_id']} {row['phase']}" + (
        f" {row['session']})" if row["session"] else ")"
    )


def _claim_result(
    row: pd.Series,
    sessions: pd.DataFrame,
    has_session: bool,
    used: dict[tuple[str, str], int],
) -> pd.Series | None:
    """The one result session a design row names (None: none), entered in ``used`` (result,
    arena -> design line) so that no second row can take it; :class:`_RowProblem` when the
    row names several, or one that another row took."""
    found = _match(row, sessions, has_session)
    what = _row_label(row)
    if len(found) > 1:
        raise _RowProblem(
            f"{what} matches {len(found)} results ({', '.join(found['result'])}); add a "
            "session or video column to tell them apart"
        )
    if len(found) == 0:
        return None
    hit = found.iloc[0]
    key = (hit["result"], hit["arena"])
    if key in used:
        raise _RowProblem(
            f"{what} and line {used[key]} both match {hit['result']} (arena "
            f"{hit['arena']}); give each its session or video"
        )
    used[key] = row["line"]
    return hit


def _box_times(results: pd.DataFrame, hit: pd.Series) -> _BoxTimes:
    """The chamber times and entries of the result session ``hit``."""
    chambers_rows = results[
        (results["result"] == hit["result"])
        & (results["arena"] == hit["arena"])
        & (results["chamber"] != "unknown")
    ]
    time_by = dict(
        zip(chambers_rows["chamber"], chambers_rows["time_s"].astype(float), strict=True)
    )
    return _BoxTimes(time_by, chambers_rows["entries"].fillna(0).astype(int).sum())


def _chamber_roles(row: pd.Series, names: list[str], result: str) -> _Roles:
    """Paired, unpaired and neutral chambers of a box with chambers ``names``; the unpaired
    one is the only other chamber when the design gives none. :class:`_RowProblem` when a
    named chamber is not in the box, or a box of three or more lacks the unpaired one."""
    what = _row_label(row)
    paired = row["paired_chamber"]
    unpaired = row["unpaired_chamber"]
    if paired not in names:
        raise _RowProblem(
            f"{what}: paired_chamber '{paired}' is not a chamber of "
            f"{result} (chambers: {', '.join(names)})"
        )
    if not unpaired:
        others = [n for n in names if n != paired]
        if len(others) != 1:
            raise _RowProblem(
                f"{what}: the box of {result} has {len(names)} chambers "
                f"({', '.join(names)}); give unpaired_chamber in the design"
            )
        unpaired = others[0]
    elif unpaired not in names:
        raise _RowProblem(
            f"{what}: unpaired_chamber '{unpaired}' is not a chamber of "
            f"{result} (chambers: {', '.join(names)})"
        )
    return _Roles(paired, unpaired, [n for n in names if n not in (paired, unpaired)])


def _percent(t: float, of: float) -> float:
    return 100.0 * t / of if of > 0 else np.nan


def _session_measures(hit: pd.Series, box: _BoxTimes, roles: _Roles) -> dict:
    """The matched result and the CPP measures of one session (see the module text)."""
    time_by, neutral = box.time_s, roles.neutral
    observed = float(hit["observed_s"])
    paired_s, unpaired_s = time_by[roles.paired], time_by[roles.unpaired]
    neutral_s = float(sum(time_by[n] for n in neutral)) if neutral else np.nan
    return {
        "unpaired_chamber": roles.unpaired,
        "neutral_chamber": "+".join(neutral) if neutral else None,
        "result": hit["result"],
        "video": hit["video"],
        "arena": hit["arena"],
        "paired_s": paired_s,
        "unpaired_s": unpaired_s,
        "neutral_s": neutral_s,
        "paired_percent": _percent(paired_s, observed),
        "unpaired_percent": _percent(unpaired_s, observed),
        "neutral_percent": _percent(neutral_s, observed) if neutral else np.nan,
        "preference_s": paired_s - unpaired_s,
        "paired_share_percent": _percent(paired_s, paired_s + unpaired_s),
        "crossings": max(0, int(box.entries) - 1),
        "observed_s": observed,
        "unknown_s": float(hit["unknown_s"]),
    }


def _session_record(
    row: pd.Series,
    columns,
    hit: pd.Series | None,
    results: pd.DataFrame,
    side_bias_percent: float,
    metadata_columns,
) -> dict:
    """A design row's output: its own ``columns``, and its result ``hit`` with the manifest
    metadata the row lacks, the measures, and the closed-door and side-bias flags (a flag
    alone when it has no result)."""
    record = {c: row[c] for c in columns if c not in ("video", "arena")}
    record.update({"result": None, "video": row["video"] or None, "arena": row["arena"] or None})
    if hit is None:
        return {**record, "usable": False, "doubts": "no result",
                "flags": [f"no result for {row['prefix']}"]}
    box = _box_times(results, hit)
    roles = _chamber_roles(row, list(box.time_s), hit["result"])
    for c in metadata_columns:
        if c not in record and c not in ("session", "phase"):
            record[c] = hit.get(c)
    record.update(_session_measures(hit, box, roles))
    crossings = record["crossings"]
    record["closed_door_crossing"] = bool(row["doors_closed"] and crossings > 0)
    flags: list[str] = []
    record["usable"], record["doubts"] = _session_doubt(hit)
    if not record["usable"]:
        flags.append(f"{row['prefix']} needs review: {record['doubts']}")
    if record["closed_door_crossing"]:
        flags.append(
            f"{crossings} crossing(s) in {row['prefix']} with the doors closed: a "
            "tracking error or a door left open"
        )
    if row["phase"] == PRE and record["paired_s"] + record["unpaired_s"] > 0:
        bias = _side_bias(record["paired_share_percent"], side_bias_percent)
        record["side_bias"] = bias.biased
        record["preferred_side"] = bias.preferred_side
        flags += [bias.flag] if bias.flag else []
    return {**record, "flags": flags}


def _session_doubt(hit: pd.Series) -> tuple[bool, str]:
    """Whether a matched result may go into the animal's scores, and why not (results
    collected by an older version carry no verdict and count as usable)."""
    usable = hit.get("usable", True)
    usable = True if pd.isna(usable) else bool(usable)
    doubts = hit.get("doubts", "")
    return usable, "" if pd.isna(doubts) else str(doubts)


@dataclass(frozen=True)
class _SideBias:
    """Side bias at pre-test: whether one conditioning chamber holds more than the
    threshold, the chamber preferred, and the flag for a biased animal."""

    biased: bool
    preferred_side: str
    flag: str | None


def _side_bias(share: float, side_bias_percent: float) -> _SideBias:
    """The side bias of a pre-test whose paired chamber holds ``share`` % of the two
    conditioning chambers' time."""
    biased_to = (
        "paired"
        if share > side_bias_percent
        else ("unpaired" if 100 - share > side_bias_percent else None)
    )
    flag = (
        f"side bias at pre-test: {max(share, 100 - share):.1f} % of the time in "
        f"the {biased_to} chamber (threshold {side_bias_percent:g} %)"
        if biased_to
        else None
    )
    # an exact tie prefers neither: calling it 'paired' would bias a count of preferences
    preferred = "paired" if share > 50 else ("unpaired" if share < 50 else "neither")
    return _SideBias(biased_to is not None, preferred, flag)


def _unmatched_warnings(sessions: pd.DataFrame, used: dict[tuple[str, str], int]) -> list[str]:
    """The sentence naming the results (the first five) that no design row matched."""
    unmatched = sessions[
        [(r, a) not in used for r, a in zip(sessions["result"], sessions["arena"], strict=True)]
    ]
    if not len(unmatched):
        return []
    listed = ", ".join(
        f"{r} ({a})" if (sessions["result"] == r).sum() > 1 else str(r)
        for r, a in zip(unmatched["result"][:5], unmatched["arena"][:5], strict=True)
    )
    more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
    return [f"{len(unmatched)} result(s) are not in the design and were left out: {listed}{more}"]


def _session_table(out_rows: list[dict]) -> pd.DataFrame:
    """The sessions table: every measure column present (NaN where no row has it), flags
    joined, nullable dtypes, and no neutral columns when no box has a neutral chamber."""
    table = pd.DataFrame(out_rows)
    for c in [
        *SESSION_MEASURES,
        "closed_door_crossing",
        "side_bias",
        "preferred_side",
        "neutral_chamber",
    ]:
        if c not in table:
            table[c] = np.nan
    table["flags"] = ["; ".join(f) for f in table["flags"]]
    table["crossings"] = table["crossings"].astype("Int64")
    table["closed_door_crossing"] = table["closed_door_crossing"].astype("boolean")
    table["side_bias"] = table["side_bias"].astype("boolean")
    if table["neutral_s"].isna().all():
        table = table.drop(columns=["neutral_s", "neutral_percent", "neutral_chamber"])
    return table


def design_long(sessions: pd.DataFrame) -> pd.DataFrame:
    """One row per animal and session, for mixed models: the tidy form of the results."""
    front = [
        "animal_id",
        "group",
        "paired_chamber",
        "unpaired_chamber",
        "neutral_chamber",
        *_extra_columns(sessions),
        "phase",
        "session",
        "doors_closed",
        "result",
        "video",
        "arena",
    ]
    measures = [m for m in SESSION_MEASURES if m in sessions]
    tail = ["closed_door_crossing", "side_bias", "preferred_side", "usable", "doubts", "flags"]
    cols = [c for c in [*front, *measures, *tail] if c in sessions]
    return sessions[cols].reset_index(drop=True)


_INTERNAL = {
    "usable",
    "doubts",
    "line",
    "prefix",
    "result",
    "neutral_chamber",
    "flags",
    "closed_door_crossing",
    "side_bias",
    "preferred_side",
}


def _extra_columns(sessions: pd.DataFrame) -> list[str]:
    """Columns carried from the design or the manifest metadata (sex, cohort, ...)."""
    known = set(DESIGN_COLUMNS) | _INTERNAL | set(SESSION_MEASURES)
    return [c for c in sessions.columns if c not in known]


def _order(prefixes_phases: list[tuple[str, str]]) -> list[str]:
    rank = {PRE: 0, COND: 1, POST: 3}
    ordered = sorted(
        dict.fromkeys(prefixes_phases), key=lambda pp: rank.get(pp[1], 2)
    )  # stable: design order within a phase
    return list(dict.fromkeys(p for p, _ in ordered))


def design_wide(sessions: pd.DataFrame, *, include_flagged: bool = False) -> pd.DataFrame:
    """One row per animal: animal columns, ``<session>_<measure>`` per session
    (``pre_``, ``post_``, ``<session name>_``) with ``<session>_usable``, ``change_*``
    (post-test - pre-test), ``usable`` and ``doubts``, ``pre_side_bias``,
    ``closed_door_crossings``, ``closed_door_flag`` and ``flags``.

    The ``change_*`` scores are computed from usable sessions only: when the pre- or
    post-test needs review (or has no result) they are empty, unless ``include_flagged``.
    ``usable`` is true when every session of the animal is usable; ``doubts`` says why not.
    """
    extra = _extra_columns(sessions)
    per_animal_extra = [
        c
        for c in extra
        if (sessions.groupby("animal_id", sort=False)[c].nunique(dropna=True) <= 1).all()
    ]
    per_session_extra = [c for c in extra if c not in per_animal_extra]
    measures = [m for m in SESSION_MEASURES if m in sessions]
    prefixes = _order(list(zip(sessions["prefix"], sessions["phase"], strict=True)))
    rows = []
    for _animal, rows_a in sessions.groupby("animal_id", sort=False):
        by_prefix = {r["prefix"]: r for _, r in rows_a.iterrows()}
        out = _animal_columns(rows_a, per_animal_extra)
        for prefix in prefixes:
            r = by_prefix.get(prefix)
            for m in [*measures, *per_session_extra, "video", "usable"]:
                out[f"{prefix}_{m}"] = np.nan if r is None else r.get(m, np.nan)
        out.update(_changes(by_prefix.get("pre"), by_prefix.get("post"), sessions,
                            include_flagged))
        out.update(_animal_doubt(rows_a))
        out.update(_pre_and_closed_doors(by_prefix.get("pre"), rows_a))
        out["flags"] = "; ".join(f for f in rows_a["flags"] if f)
        rows.append(out)
    return _typed_wide(pd.DataFrame(rows))


def _animal_columns(rows_a: pd.DataFrame, per_animal_extra: list[str]) -> dict:
    out: dict = {}
    animal_cols = ["animal_id", "group", "paired_chamber", "unpaired_chamber", "neutral_chamber"]
    for c in [*animal_cols, *per_animal_extra]:
        if c in rows_a:
            values = [v for v in rows_a[c] if not pd.isna(v) and v != ""]
            out[c] = values[0] if values else None
    return out


def _changes(pre, post, sessions: pd.DataFrame, include_flagged: bool) -> dict:
    """post-test - pre-test of each change measure, from usable sessions only (unless
    ``include_flagged``)."""
    both = pre is not None and post is not None
    if both and not include_flagged:
        both = bool(pre.get("usable", True)) and bool(post.get("usable", True))
    return {
        f"change_{m}": post[m] - pre[m] if both and m in sessions else np.nan
        for m in _CHANGE_MEASURES
    }


def _animal_doubt(rows_a: pd.DataFrame) -> dict:
    """Whether every session of the animal is usable, and what is wrong with the others."""
    usable = rows_a["usable"].fillna(False).astype(bool) if "usable" in rows_a else None
    if usable is None:
        return {"usable": True, "doubts": ""}
    doubts = [
        f"{p}: {d}" for p, d, ok in zip(rows_a["prefix"], rows_a["doubts"], usable, strict=True)
        if not ok
    ]
    return {"usable": bool(usable.all()), "doubts": "; ".join(doubts)}


def _pre_and_closed_doors(pre, rows_a: pd.DataFrame) -> dict:
    closed = rows_a[rows_a["doors_closed"].astype(bool)]
    return {
        "pre_side_bias": pre["side_bias"] if pre is not None else pd.NA,
        "pre_preferred_side": pre["preferred_side"] if pre is not None else None,
        "closed_door_crossings": (
            int(closed["crossings"].fillna(0).sum()) if len(closed) else pd.NA
        ),
        "closed_door_flag": (
            bool(closed["closed_door_crossing"].fillna(False).any()) if len(closed) else pd.NA
        ),
    }


def _typed_wide(table: pd.DataFrame) -> pd.DataFrame:
    for c in table.columns:
        if c.endswith("_crossings") or c == "closed_door_crossings":
            table[c] = table[c].astype("Int64")
        elif c.endswith("_usable"):
            table[c] = table[c].astype("boolean")
    for c in ("pre_side_bias", "closed_door_flag"):
        table[c] = table[c].astype("boolean")
    return table


#: The scores :func:`design_groups` gives a mean of, per group.
GROUP_SCORES = ("change_paired_percent", "change_preference_s", "change_paired_share_percent")


def design_groups(wide: pd.DataFrame) -> pd.DataFrame:
    """Per group (one row when the design has no groups): how many animals, how many went
    into the means and which were excluded (a change score left empty: a session that needs
    review or has no result), and the mean, SD and n of each of :data:`GROUP_SCORES`."""
    groups = wide["group"].fillna("") if "group" in wide else pd.Series("", index=wide.index)
    rows = []
    for group, animals in wide.groupby(groups, sort=False):
        included = animals["change_paired_percent"].notna()
        row = {
            "group": group or "(all)",
            "animals": len(animals),
            "included": int(included.sum()),
            "excluded": int((~included).sum()),
            "excluded_animals": ", ".join(
                f"{a} ({d or 'no pre- and post-test'})"
                for a, d in zip(animals.loc[~included, "animal_id"],
                                animals.loc[~included, "doubts"], strict=True)
            ),
        }
        for score in GROUP_SCORES:
            values = animals[score].dropna().astype(float)
            row[f"{score}_mean"] = float(values.mean()) if len(values) else np.nan
            row[f"{score}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else np.nan
            row[f"{score}_n"] = int(len(values))
        rows.append(row)
    return pd.DataFrame(rows)
