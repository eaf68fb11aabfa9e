"""Per-animal CPP scores for ``cpp-tracker experiment``, and the rules fixed in advance.

:func:`animal_scores` turns the sessions of :func:`~cpp_tracker.experiment.design.design_sessions`
(one row per animal and phase, with paired / unpaired / observed / unknown seconds) into one
row per animal: the pre- and post-test figures, every standard score (:data:`SCORES`), whether
the animal goes into the statistics (``included``) and why not (``exclusion_reasons``).

The scores (Yates 2023 compares them; the README defines each column):

- ``change_paired_s``: post − pre seconds in the paired chamber;
- ``change_paired_percent``: post − pre percent of the observed time in the paired chamber
  (percentage points);
- ``change_preference_s``: post − pre of (paired − unpaired seconds);
- ``change_paired_share_percent``: post − pre of paired / (paired + unpaired) x 100 (pp);
- ``post_preference_s``: paired − unpaired seconds at post-test;
- ``post_paired_share_percent``: paired share of the two conditioning chambers at post-test;
- ``ratio_post_pre``: post-test / pre-test seconds in the paired chamber.

Each score has a *null value* (no preference: 0, 50 % or a ratio of 1); within a group the
statistics test the animals' scores against it, which for a change score is the paired test
of post against pre.

Criteria (an optional YAML, :func:`load_criteria`) are the per-animal rules a lab fixes before
it sees the data: a cut-off that classifies an animal as showing a preference, the side bias
at pre-test that excludes it, and the unknown time a session may have.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..config.yaml_file import read_config_mapping
from ..errors import ConfigError
from .choices import DEFAULT_SCORE

__all__ = [
    "SCORES",
    "Score",
    "Criteria",
    "load_criteria",
    "animal_scores",
    "with_derived_measures",
    "classify",
]


@dataclass(frozen=True)
class Score:
    """A per-animal score: its column, the per-session measure it is the change of (None for
    a post-test-only score or a ratio), its null value, unit and a short definition."""

    name: str
    measure: str | None
    null: float
    unit: str
    definition: str


#: Every standard score, the default (the one fixed for the main statistics) first.
SCORES: dict[str, Score] = {s.name: s for s in (
    Score("change_paired_percent", "paired_percent", 0.0, "pp",
          "post − pre percent of the observed time in the paired chamber"),
    Score("change_paired_s", "paired_s", 0.0, "s",
          "post − pre seconds in the paired chamber"),
    Score("change_preference_s", "preference_s", 0.0, "s",
          "post − pre of paired − unpaired seconds"),
    Score("change_paired_share_percent", "paired_share_percent", 0.0, "pp",
          "post − pre of the paired share of the two conditioning chambers' time"),
    Score("post_preference_s", None, 0.0, "s", "paired − unpaired seconds at post-test"),
    Score("post_paired_share_percent", None, 50.0, "%",
          "paired share of the two conditioning chambers' time at post-test"),
    Score("ratio_post_pre", None, 1.0, "",
          "post-test / pre-test seconds in the paired chamber"),
)}

#: The per-session measures a score may be made of.
_PHASE_MEASURES = ("paired_s", "unpaired_s", "paired_percent", "unknown_s", "preference_s",
                   "paired_share_percent")


# ------------------------------------------------------------------------------ criteria
@dataclass(frozen=True)
class Criteria:
    """Per-animal rules fixed in advance (all optional).

    ``score`` and ``cutoff``: an animal whose score is at least ``cutoff`` (in the score's
    unit) is classified ``preference``, else ``no preference``; without a cut-off the
    classification is the direction (``toward paired`` above the null value, else
    ``not toward paired``). ``side_bias_percent``: an animal whose paired share at pre-test
    is above it or below 100 minus it is excluded. ``max_unknown_percent``: a pre- or
    post-test with more unknown time than this share of its length excludes the animal.
    ``source`` and ``hash`` (sha256 of the rules as canonical JSON, 12 hex digits; None
    without a file) are recorded in ``scores.csv`` and ``methods.md``."""

    score: str = DEFAULT_SCORE
    cutoff: float | None = None
    side_bias_percent: float | None = None
    max_unknown_percent: float | None = None
    source: str | None = None
    hash: str | None = None

    def rules(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in ("source", "hash")}


_CRITERIA_KEYS = ("score", "cutoff", "side_bias_percent", "max_unknown_percent")


def load_criteria(path: str | Path | None, score: str | None = None) -> Criteria:
    """The criteria of the YAML file at ``path`` (its ``criteria:`` mapping, see
    ``configs/criteria_example.yaml``), or the defaults without one; ``score`` (the
    command's ``--score``) is used when the file names none. Raises
    :class:`~cpp_tracker.errors.ConfigError` listing every problem with its key."""
    if path is None:
        return Criteria(score=_checked_score(score or DEFAULT_SCORE, "--score"))
    raw = read_config_mapping(path, otherwise="run without --criteria")
    section = raw.get("criteria")
    if not isinstance(section, dict):
        raise ConfigError(str(path), "criteria: is missing or not a mapping; see "
                          "configs/criteria_example.yaml")
    problems = [f"criteria.{k}: is not a known key (known: {', '.join(_CRITERIA_KEYS)})"
                for k in section if k not in _CRITERIA_KEYS]
    problems += [f"{k}: is not a known top-level key (only criteria)" for k in raw
                 if k != "criteria"]
    name = section.get("score", score or DEFAULT_SCORE)
    if name not in SCORES:
        problems.append(f"criteria.score: '{name}' is not a score (scores: "
                        f"{', '.join(SCORES)})")
    values = {k: _number(section.get(k), f"criteria.{k}", problems, low, high)
              for k, low, high in (("cutoff", None, None), ("side_bias_percent", 50, 100),
                                   ("max_unknown_percent", 0, 100))}
    if problems:
        raise ConfigError(str(path), problems)
    rules = {"score": name, **values}
    text = json.dumps(rules, sort_keys=True, separators=(",", ":"))
    return Criteria(**rules, source=str(path),
                    hash=hashlib.sha256(text.encode()).hexdigest()[:12])


def _checked_score(name: str, where: str) -> str:
    if name not in SCORES:
        raise ConfigError(where, f"'{name}' is not a score (scores: {', '.join(SCORES)})")
    return name


def _number(value, key: str, problems: list[str], low: float | None, high: float | None):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        problems.append(f"{key}: must be a number, got {value!r}")
        return None
    if (low is not None and value < low) or (high is not None and value > high):
        problems.append(f"{key}: must be between {low:g} and {high:g}, got {value:g}")
        return None
    return float(value)


# -------------------------------------------------------------------------------- scores
def with_derived_measures(sessions: pd.DataFrame) -> pd.DataFrame:
    """``sessions`` with ``paired_percent``, ``preference_s`` and ``paired_share_percent``
    recomputed from ``paired_s``, ``unpaired_s`` and ``observed_s`` (for sessions whose
    times a sensitivity variant changed); the definitions are those of
    :mod:`cpp_tracker.experiment.design`."""
    out = sessions.copy()
    paired, unpaired = out["paired_s"].astype(float), out["unpaired_s"].astype(float)
    observed = out["observed_s"].astype(float)
    out["paired_percent"] = np.where(observed > 0, 100 * paired / observed.where(observed > 0),
                                     np.nan)
    out["preference_s"] = paired - unpaired
    both = paired + unpaired
    out["paired_share_percent"] = np.where(both > 0, 100 * paired / both.where(both > 0), np.nan)
    return out


def animal_scores(
    sessions: pd.DataFrame, criteria: Criteria, *, include_flagged: bool = False
) -> pd.DataFrame:
    """One row per animal of ``sessions`` (:func:`design_sessions`'s table): ``animal_id``,
    ``group``, ``included``, ``exclusion_reasons``, ``flagged`` (kept with a session that
    needs review, ``include_flagged``), ``doubts``, the pre- and post-test results and
    measures, every score of :data:`SCORES`, ``pre_side_bias``, ``classification`` and
    ``criteria_hash``."""
    rows = [_animal_row(animal, rows_a, criteria, include_flagged)
            for animal, rows_a in sessions.groupby("animal_id", sort=False)]
    table = pd.DataFrame(rows)
    table["classification"] = classify(table, criteria)
    table["criteria_hash"] = criteria.hash or ""
    return table


def _session_of(rows_a: pd.DataFrame, prefix: str) -> pd.Series | None:
    hit = rows_a[rows_a["prefix"] == prefix]
    if not len(hit) or pd.isna(hit.iloc[0].get("result")):
        return None
    return hit.iloc[0]


def _animal_row(animal, rows_a: pd.DataFrame, criteria: Criteria, include_flagged: bool) -> dict:
    pre, post = _session_of(rows_a, "pre"), _session_of(rows_a, "post")
    group = rows_a["group"].iloc[0] if "group" in rows_a else ""
    row: dict = {"animal_id": animal, "group": "" if pd.isna(group) else str(group)}
    reasons, doubts = _exclusions(pre, post, criteria)
    flagged = bool(doubts) and include_flagged
    if doubts and not include_flagged:
        reasons = [*doubts, *reasons]
    usable = [name for name, s in (("pre-test", pre), ("post-test", post))
              if s is not None and bool(s.get("usable", True))]
    row.update(included=not reasons, exclusion_reasons="; ".join(reasons), flagged=flagged,
               doubts="; ".join(doubts), usable_sessions=", ".join(usable),
               pre_result=None if pre is None else pre["result"],
               post_result=None if post is None else post["result"])
    for phase, s in (("pre", pre), ("post", post)):
        for m in _PHASE_MEASURES:
            row[f"{phase}_{m}"] = np.nan if s is None else float(s[m])
    row.update(_scores(row))
    row["pre_side_bias"] = _pre_share_bias(pre, criteria)
    return row


def _exclusions(pre, post, criteria: Criteria) -> tuple[list[str], list[str]]:
    """Reasons the animal is out by rule (missing session, side bias, unknown time) and
    the doubts of its sessions' QC (out unless ``include_flagged``)."""
    reasons, doubts = [], []
    for name, s in (("pre-test", pre), ("post-test", post)):
        if s is None:
            reasons.append(f"no {name} result")
            continue
        if not bool(s.get("usable", True)):
            doubts.append(f"{name} needs review: {s.get('doubts') or 'QC'}")
        limit = criteria.max_unknown_percent
        length = float(s["observed_s"]) + float(s["unknown_s"])
        if limit is not None and length > 0 and 100 * float(s["unknown_s"]) / length > limit:
            reasons.append(f"{name} in no chamber for "
                           f"{100 * float(s['unknown_s']) / length:.1f} % (criteria limit "
                           f"{limit:g} %)")
    if _pre_share_bias(pre, criteria):
        share = float(pre["paired_share_percent"])
        reasons.append(f"side bias at pre-test: paired share {share:.1f} % (criteria limit "
                       f"{criteria.side_bias_percent:g} %)")
    return reasons, doubts


def _pre_share_bias(pre, criteria: Criteria) -> bool:
    limit = criteria.side_bias_percent
    if pre is None or limit is None or pd.isna(pre["paired_share_percent"]):
        return False
    share = float(pre["paired_share_percent"])
    return share > limit or share < 100 - limit


def _scores(row: dict) -> dict:
    out = {}
    for score in SCORES.values():
        if score.measure is not None:
            out[score.name] = row[f"post_{score.measure}"] - row[f"pre_{score.measure}"]
    out["post_preference_s"] = row["post_preference_s"]
    out["post_paired_share_percent"] = row["post_paired_share_percent"]
    pre = row["pre_paired_s"]
    out["ratio_post_pre"] = row["post_paired_s"] / pre if pre and pre > 0 else np.nan
    return out


def classify(table: pd.DataFrame, criteria: Criteria) -> list[str]:
    """Per animal: ``preference`` / ``no preference`` by the criteria's cut-off on its
    score, or without a cut-off ``toward paired`` / ``not toward paired`` (above the score's
    null value or not); ``excluded`` for an animal left out; empty without the score."""
    score = SCORES[criteria.score]
    out = []
    for value, included in zip(table[score.name], table["included"], strict=True):
        if not included:
            out.append("excluded")
        elif pd.isna(value):
            out.append("")
        elif criteria.cutoff is not None:
            out.append("preference" if value >= criteria.cutoff else "no preference")
        else:
            out.append("toward paired" if value > score.null else "not toward paired")
    return out
