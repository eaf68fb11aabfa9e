"""How much the experiment's answer depends on the analysis' choices: ``sensitivity.csv``.

The main comparisons (within each group, between groups) are recomputed under each
alternative choice (:func:`variant_sessions` makes the sessions of each):

- time by visit (the chamber with hysteresis) at a hysteresis of 0, 6 and 12 px,
  recomputed from each result's stored ``track.parquet``; the main analysis counts time by
  position, which no hysteresis changes;
- every other score definition of :data:`~cpp_tracker.experiment.scores.SCORES`;
- with the flagged sessions (or without them, when the main analysis includes them);
- the unknown time counted against the paired chamber at post-test and for it at pre-test
  (the lowest preference it allows), and the other way round (the highest).

A conclusion *holds* under a variant when its direction (the sign of the estimate) and its
significance (p < 0.05) are those of the main analysis. Animals whose classification
(:func:`~cpp_tracker.experiment.scores.classify`) differs from the main one are named.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pandas as pd

from ..analysis.chamber_time import chamber_times
from ..errors import OutputError
from ..results.stored import load_result
from .scores import SCORES, Criteria, animal_scores, with_derived_measures
from .stats import between_groups, within_group

__all__ = ["HYSTERESIS_PX", "SENSITIVITY_COLUMNS", "main_comparisons", "sensitivity"]

#: The hysteresis margins (px) of the time-by-visit variants.
HYSTERESIS_PX = (0.0, 6.0, 12.0)
ALPHA = 0.05
SENSITIVITY_COLUMNS = ["variant", "comparison", "group", "score", "test", "statistic",
                       "p_value", "effect_size", "estimate", "n", "direction", "significant",
                       "holds", "classification_changes"]


def main_comparisons(scores: pd.DataFrame, score: str, *, test: str, seed: int,
                     groups: list[str], bootstrap: bool = True) -> list:
    """Within each group (the score against its null value) and between each pair of
    groups, from the included animals."""
    spec = SCORES[score]
    used = scores[scores["included"]]
    out = []
    for group in groups:
        values = used.loc[used["group"] == group, score]
        out.append(within_group(values, group=group or "all", score=score, null=spec.null,
                                test=test, seed=seed, bootstrap=bootstrap,
                                comparison="post vs pre" if spec.measure else "vs null"))
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            out.append(between_groups(used.loc[used["group"] == a, score],
                                      used.loc[used["group"] == b, score],
                                      groups=(a or "all", b or "all"),
                                      score=score, test=test, seed=seed, bootstrap=bootstrap))
    return out


def sensitivity(sessions: pd.DataFrame, main_scores: pd.DataFrame, criteria: Criteria, *,
                include_flagged: bool, test: str, seed: int, groups: list[str]
                ) -> tuple[pd.DataFrame, list[str]]:
    """The table of ``sensitivity.csv`` (:data:`SENSITIVITY_COLUMNS`) and warnings (stored
    tracks that could not be read: those variants are left out)."""
    main = {_key(r): r for r in main_comparisons(main_scores, criteria.score, test=test,
                                                  seed=seed, groups=groups, bootstrap=False)}
    rows = [_row("main", r, r, "") for r in main.values()]
    warnings: list[str] = []
    for name, variant_sessions, variant_criteria, flagged in _variants(
            sessions, criteria, include_flagged, warnings):
        scores = animal_scores(variant_sessions, variant_criteria, include_flagged=flagged)
        changes = _classification_changes(main_scores, scores)
        for r in main_comparisons(scores, variant_criteria.score, test=test, seed=seed,
                                  groups=groups, bootstrap=False):
            base = main.get(_key(r))
            rows.append(_row(name, r, base, changes))
    return pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS), warnings


def _key(r) -> tuple:
    return (r.comparison.replace("vs null", "post vs pre"), r.group)


def _direction(r) -> str:
    if not np.isfinite(r.estimate) or r.estimate == 0:
        return "none"
    return "+" if r.estimate > 0 else "-"


def _significant(r) -> bool | None:
    return None if not np.isfinite(r.p_value) else bool(r.p_value < ALPHA)


def _row(variant: str, r, base, changes: str) -> dict:
    holds = (None if base is None or _significant(r) is None
             else _direction(r) == _direction(base) and _significant(r) == _significant(base))
    return {"variant": variant, "comparison": r.comparison, "group": r.group,
            "score": r.score, "test": r.test, "statistic": r.statistic,
            "p_value": r.p_value, "effect_size": r.effect_size, "estimate": r.estimate,
            "n": r.n, "direction": _direction(r), "significant": _significant(r),
            "holds": holds, "classification_changes": changes}


def _classification_changes(main: pd.DataFrame, other: pd.DataFrame) -> str:
    before = main.set_index("animal_id")["classification"]
    after = other.set_index("animal_id")["classification"].reindex(before.index)
    return "; ".join(f"{a} ({b} -> {c})" for a, b, c in
                     zip(before.index, before, after, strict=True) if b != c)


def _variants(sessions, criteria: Criteria, include_flagged: bool, warnings: list[str]
              ) -> Iterator[tuple[str, pd.DataFrame, Criteria, bool]]:
    for hysteresis in HYSTERESIS_PX:
        try:
            visit = _sessions_by_visit(sessions, hysteresis)
        except OutputError as e:
            warnings.append(f"time by visit left out of the sensitivity analysis: {e}")
            break
        yield f"time by visit, hysteresis {hysteresis:g} px", visit, criteria, include_flagged
    for name in SCORES:
        if name != criteria.score:
            yield f"score {name}", sessions, replace(criteria, score=name), include_flagged
    yield ("without flagged sessions" if include_flagged else "with flagged sessions",
           sessions, criteria, not include_flagged)
    for side in ("lowest", "highest"):
        yield (f"unknown time counted for the {side} preference", _unknown_counted(sessions, side),
               criteria, include_flagged)


def _unknown_counted(sessions: pd.DataFrame, side: str) -> pd.DataFrame:
    """Sessions with their unknown time given to a conditioning chamber: for the lowest
    preference to the unpaired chamber at post-test and the paired one at pre-test (the
    change is then as small as the unknown time allows), the other way for the highest."""
    out = sessions.copy()
    unknown = out["unknown_s"].fillna(0).astype(float)
    to_paired = (out["prefix"] == "pre") if side == "lowest" else (out["prefix"] == "post")
    out["paired_s"] = out["paired_s"] + np.where(to_paired, unknown, 0.0)
    out["unpaired_s"] = out["unpaired_s"] + np.where(to_paired, 0.0, unknown)
    out["observed_s"] = out["observed_s"] + unknown
    out["unknown_s"] = 0.0
    return with_derived_measures(out)


def _sessions_by_visit(sessions: pd.DataFrame, hysteresis_px: float) -> pd.DataFrame:
    """Sessions whose chamber times are recomputed from the stored track by visit."""
    out = sessions.copy()
    cache: dict[str, tuple] = {}
    for i, row in out.iterrows():
        result = row.get("result")
        if not isinstance(result, str) or row["prefix"] not in ("pre", "post"):
            continue
        if result not in cache:
            stored = load_result(result)
            cache[result] = (stored, stored.track(["time_s", "arena", "x", "y", "detected"]))
        stored, track = cache[result]
        arena = next((a for a in stored.config.arenas if a.name == str(row["arena"])), None)
        if arena is None:
            raise OutputError(f"{result}: its config has no arena {row['arena']}")
        fps = stored.record.video.nominal_fps
        times = chamber_times(
            track[track["arena"].astype(str) == arena.name], arena, hysteresis_px=hysteresis_px,
            backdate_crossings=stored.config.chambers.backdate_crossings, by="visit",
            gap_factor=stored.config.video.gap_factor,
            nominal_interval_s=1.0 / fps if fps else None)
        out.at[i, "paired_s"] = times[row["paired_chamber"]]
        out.at[i, "unpaired_s"] = times[row["unpaired_chamber"]]
        out.at[i, "unknown_s"] = times["unknown"]
        out.at[i, "observed_s"] = sum(v for k, v in times.items() if k != "unknown")
    return with_derived_measures(out)
