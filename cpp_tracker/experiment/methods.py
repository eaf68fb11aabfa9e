"""``methods.md``: the paragraphs a lab can paste into a paper, from what was actually run.

Every number comes from the results' ``run.json`` (tracker version, the resolved config's
detection, chamber and QC settings), the criteria, the exclusions and the statistics; a
setting that differs between results is given with all its values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import __version__
from .scores import SCORES, Criteria
from .stats import ALPHA_NORMALITY, N_RESAMPLES

__all__ = ["MethodsFacts", "methods_text"]


@dataclass(frozen=True)
class MethodsFacts:
    """What the results say about how they were made: per setting, the distinct values
    (as text) over the results used."""

    versions: tuple[str, ...]
    settings: dict[str, tuple[str, ...]]
    n_results: int


def _values(facts: MethodsFacts, key: str) -> str:
    values = facts.settings.get(key, ())
    return " / ".join(values) if values else "not recorded"


def methods_text(facts: MethodsFacts, scores: pd.DataFrame, stats_table: pd.DataFrame,
                 sensitivity: pd.DataFrame, criteria: Criteria, *, test: str, seed: int,
                 include_flagged: bool, groups: list[str]) -> str:
    """The whole ``methods.md``."""
    return "\n\n".join([
        "# Methods",
        _tracking(facts),
        _exclusions(scores, criteria, include_flagged),
        _statistics(scores, criteria, test, seed, groups),
        _results(stats_table),
        "## Sensitivity\n\n" + _sensitivity(sensitivity),
    ]) + "\n"


def _tracking(facts: MethodsFacts) -> str:
    versions = ", ".join(facts.versions) or "unknown"
    return (
        "## Tracking\n\n"
        f"Videos were analysed with cpp-tracker (version {versions}; this analysis by "
        f"version {__version__}). In each frame the mouse was found as the largest blob of "
        "the difference between the frame and a median background of sampled frames "
        f"(animal: {_values(facts, 'detection.animal')}; threshold in grey levels: "
        f"{_values(facts, 'detection.threshold')}; minimum blob area in px: "
        f"{_values(facts, 'detection.min_area_px')}), after a morphological opening that "
        "removes the tail; its reference point is the centroid of that blob (the body "
        "centre). The chamber is the piece of the arena, cut by the door lines, that the "
        "centroid lies in; visits (entries, bouts) use the chamber with a hysteresis of "
        f"{_values(facts, 'chambers.hysteresis_px')} px past a door line "
        f"(crossings backdated: {_values(facts, 'chambers.backdate_crossings')}), while time "
        "follows the position, so no hysteresis changes it. Each frame lasts from its own "
        "timestamp until the next frame's; a gap longer than "
        f"{_values(facts, 'video.gap_factor')} times the median frame interval counts as "
        "unknown time. Percentages are of the observed time (time in a known chamber). A "
        "session was flagged for review by its quality check when, among others, more than "
        f"{_values(facts, 'qc.max_unknown')} of its time was in no chamber or less than "
        f"{_values(facts, 'qc.min_read_fraction')} of the video's nominal length was read "
        f"({facts.n_results} result folders read)."
    )


def _exclusions(scores: pd.DataFrame, criteria: Criteria, include_flagged: bool) -> str:
    out = scores[~scores["included"]]
    lines = ["## Animals and exclusions", ""]
    rules = ("Sessions flagged by the quality check were kept and are marked"
             if include_flagged else
             "An animal whose pre- or post-test was flagged by the quality check (needs "
             "review, truncated, too much unknown time) or missing was excluded")
    lines.append(f"{len(scores)} animals, {int(scores['included'].sum())} analysed. {rules}.")
    if criteria.hash:
        lines.append(
            f"Criteria fixed in advance ({criteria.source}, sha256 {criteria.hash}): "
            + "; ".join(f"{k} = {v}" for k, v in criteria.rules().items() if v is not None)
            + ".")
    else:
        lines.append("No per-animal criteria file was given.")
    if len(out):
        lines += ["", "Excluded:", ""]
        lines += [f"- {a} ({g or 'no group'}): {why}" for a, g, why in
                  zip(out["animal_id"], out["group"], out["exclusion_reasons"], strict=True)]
    kept = scores[scores["flagged"]]
    if len(kept):
        lines += ["", "Kept although flagged (--include-flagged):", ""]
        lines += [f"- {a}: {d}" for a, d in zip(kept["animal_id"], kept["doubts"], strict=True)]
    return "\n".join(lines)


def _statistics(scores: pd.DataFrame, criteria: Criteria, test: str, seed: int,
                groups: list[str]) -> str:
    spec = SCORES[criteria.score]
    rule = {
        "auto": f"the parametric test when a Shapiro-Wilk test did not reject normality "
                f"(p >= {ALPHA_NORMALITY}) of the differences (within) or of each group "
                "(between), else the non-parametric one",
        "parametric": "parametric tests throughout (chosen in advance)",
        "nonparametric": "non-parametric tests throughout (chosen in advance)",
    }[test]
    classification = (f"An animal was classified as showing a preference when its score was "
                      f"at least {criteria.cutoff:g} {spec.unit}."
                      if criteria.cutoff is not None else "")
    interaction = (" The group x phase interaction was tested by a mixed-design ANOVA "
                   "(pingouin.mixed_anova; phase within animals, group between), effect size "
                   "partial eta squared." if len(groups) > 1 and spec.measure else "")
    return (
        "## Scores and statistics\n\n"
        f"The primary score, fixed before the analysis, was {spec.name} ({spec.definition}). "
        f"Within each group it was tested against {spec.null:g} (for a change score: post-"
        "test against pre-test) with the paired t-test (effect size Cohen's d_z) or the "
        "Wilcoxon signed-rank test (matched-pairs rank-biserial correlation); between groups "
        "with Welch's t-test (Hedges' g) or the Mann-Whitney U test (rank-biserial "
        f"correlation), two-sided, following {rule}.{interaction} 95 % confidence intervals "
        f"of the effect sizes are percentile bootstrap intervals ({N_RESAMPLES} resamples of "
        f"the animals, stratified by group, seed {seed}; resamples with an undefined effect "
        f"size left out). {classification} Tests were run "
        f"with scipy {_version('scipy')} and pingouin {_version('pingouin')}; p values are "
        "not corrected for multiple comparisons."
    ).replace("  ", " ")


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # noqa: BLE001 - a version is a courtesy, never a failure
        return "?"


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}g}"


def _results(stats_table: pd.DataFrame) -> str:
    lines = ["## Results", "", "| comparison | group | test | statistic | p | effect size "
             "[95 % CI] | n |", "|---|---|---|---|---|---|---|"]
    for r in stats_table.itertuples(index=False):
        effect = (f"{r.effect_type} {_fmt(r.effect_size)} [{_fmt(r.ci_low)}, "
                  f"{_fmt(r.ci_high)}]" if r.effect_type else r.note)
        lines.append(f"| {r.comparison} | {r.group} | {r.test or '–'} | "
                     f"{_fmt(r.statistic)} | {_fmt(r.p_value)} | {effect} | {r.n} |")
    return "\n".join(lines)


def _sensitivity(table: pd.DataFrame) -> str:
    if table.empty:
        return "No sensitivity analysis."
    variants = [v for v in dict.fromkeys(table["variant"]) if v != "main"]
    lines = [
        f"The main comparisons were recomputed under {len(variants)} alternative choices: "
        + "; ".join(variants) + ". A conclusion holds when its direction and its "
        "significance (p < 0.05) stay those of the main analysis.", ""]
    main = table[table["variant"] == "main"]
    for r in main.itertuples(index=False):
        same = table[(table["variant"] != "main") & (table["comparison"].str.replace(
            "vs null", "post vs pre") == r.comparison) & (table["group"] == r.group)]
        broken = same[same["holds"] == False]  # noqa: E712 - None (no test) is not False
        verdict = ("holds under all of them" if broken.empty else
                   "does not hold under: " + "; ".join(broken["variant"]))
        lines.append(f"- {r.comparison}, {r.group} ({r.direction}, p = {_fmt(r.p_value)}): "
                     f"{verdict}.")
    changes = table.loc[table["classification_changes"].astype(str) != "",
                        ["variant", "classification_changes"]].drop_duplicates()
    if len(changes):
        lines += ["", "Animals whose classification changes:", ""]
        lines += [f"- {v}: {c}" for v, c in changes.itertuples(index=False)]
    else:
        lines += ["", "No animal's classification changes under any of them."]
    return "\n".join(lines)
