"""Statistics of ``cpp-tracker experiment``: tests, effect sizes and bootstrap intervals.

The tests are scipy.stats' and pingouin's (none written here); only the effect sizes are
computed here, each from its textbook formula:

- within a group (post vs pre, or a post-test score against its null value): the animals'
  scores minus the null value are tested with the one-sample t-test (``ttest_1samp``; for a
  change score this is the paired t-test of post against pre) or the Wilcoxon signed-rank
  test (``wilcoxon``, zero differences dropped); effect size Cohen's d_z (mean / SD of the
  differences) or the matched-pairs rank-biserial correlation (Kerby 2014);
- between two groups: Welch's t-test (``ttest_ind(equal_var=False)``) or the Mann-Whitney U
  test (``mannwhitneyu``, two-sided); effect size Hedges' g (pooled SD, small-sample
  correction) or the rank-biserial correlation 2U/(n1 n2) − 1, positive when the first
  group's scores are larger;
- group x phase: the mixed-design ANOVA of ``pingouin.mixed_anova`` (phase within animals,
  group between), its interaction row; effect size partial eta squared.

The rule (``test="auto"``): the parametric test when the Shapiro-Wilk test does not reject
normality (p >= 0.05) for the differences (within) or for each group (between), else the
non-parametric one; ``parametric`` or ``nonparametric`` forces one. Fewer than 3 animals:
no test. The 95 % intervals of the effect sizes are percentile bootstrap intervals
(2000 resamples of the animals, stratified by group; a resample whose effect size is
undefined, every animal drawn the same, is left out) from a fixed seed, so a rerun gives
the same numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .choices import TESTS

__all__ = [
    "TESTS",
    "STATS_COLUMNS",
    "TestResult",
    "within_group",
    "between_groups",
    "interaction",
    "cohen_dz",
    "hedges_g",
    "rank_biserial_paired",
    "rank_biserial_unpaired",
]

#: The columns of ``stats.csv``.
STATS_COLUMNS = ["comparison", "group", "score", "test", "statistic", "p_value",
                 "effect_size", "ci_low", "ci_high", "n", "effect_type", "estimate",
                 "normality_p", "note"]
ALPHA_NORMALITY = 0.05
N_RESAMPLES = 2000
MIN_N = 3


@dataclass(frozen=True)
class TestResult:
    """One row of ``stats.csv`` (see :data:`STATS_COLUMNS`). ``estimate``: the mean (t-test,
    ANOVA) or median (rank tests) of the score minus its null value, or the difference
    between the groups; ``n``: animals (``n1+n2`` between groups)."""

    comparison: str
    group: str
    score: str
    test: str = ""
    statistic: float = np.nan
    p_value: float = np.nan
    effect_size: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    n: str = ""
    effect_type: str = ""
    estimate: float = np.nan
    normality_p: float = np.nan
    note: str = ""

    def row(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------- effect sizes
def cohen_dz(d) -> float:
    """Mean / SD (n − 1) of paired differences."""
    d = np.asarray(d, dtype=float)
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else np.nan


def hedges_g(x, y) -> float:
    """(mean x − mean y) / pooled SD, times the small-sample correction 1 − 3 / (4 df − 1)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n1, n2 = len(x), len(y)
    df = n1 + n2 - 2
    pooled = np.sqrt(((n1 - 1) * x.var(ddof=1) + (n2 - 1) * y.var(ddof=1)) / df)
    if not pooled > 0:
        return np.nan
    return float((x.mean() - y.mean()) / pooled * (1 - 3 / (4 * df - 1)))


def rank_biserial_paired(d) -> float:
    """(R+ − R−) / (R+ + R−) over the ranks of |d|, zero differences dropped (Kerby 2014)."""
    d = np.asarray(d, dtype=float)
    d = d[d != 0]
    if not len(d):
        return np.nan
    ranks = stats.rankdata(np.abs(d))
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / ranks.sum())


def rank_biserial_unpaired(x, y) -> float:
    """2 U_x / (n_x n_y) − 1: +1 when every x is larger than every y."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    u = stats.mannwhitneyu(x, y, alternative="two-sided").statistic
    return float(2 * u / (len(x) * len(y)) - 1)


def _bootstrap_ci(samples: tuple, statistic: Callable, seed: int) -> tuple[float, float]:
    """Percentile 95 % interval of ``statistic`` over :data:`N_RESAMPLES` resamples of the
    animals (each sample resampled on its own: stratified by group), from ``seed``.

    A resample whose statistic is undefined (all animals drawn the same: an SD of 0) is
    left out rather than making the whole interval NaN, as ``scipy.stats.bootstrap``
    would; NaN when fewer than 95 % of the resamples give a value."""
    if any(len(s) < 2 for s in samples):
        return np.nan, np.nan
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(s, dtype=float) for s in samples]
    values = np.empty(N_RESAMPLES)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(N_RESAMPLES):
            values[i] = statistic(*(a[rng.integers(0, len(a), len(a))] for a in arrays))
    values = values[np.isfinite(values)]
    if len(values) < 0.95 * N_RESAMPLES:
        return np.nan, np.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


# ---------------------------------------------------------------------------------- tests
def _normality(*samples) -> float:
    """The smallest Shapiro-Wilk p of the samples (NaN when one is constant)."""
    ps = []
    for s in samples:
        s = np.asarray(s, dtype=float)
        if np.ptp(s) == 0:
            return np.nan
        ps.append(stats.shapiro(s).pvalue)
    return float(min(ps))


def _parametric(test: str, normality_p: float) -> bool:
    if test == "parametric":
        return True
    if test == "nonparametric":
        return False
    return bool(normality_p >= ALPHA_NORMALITY)


def within_group(values, *, group: str, score: str, null: float, test: str = "auto",
                 seed: int = 0, comparison: str = "post vs pre",
                 bootstrap: bool = True) -> TestResult:
    """The animals' ``values`` of a score tested against ``null`` (see the module text);
    ``bootstrap=False`` leaves the interval out (the sensitivity analysis needs none)."""
    d = np.asarray(values, dtype=float)
    d = d[np.isfinite(d)] - null
    base = TestResult(comparison, group, score, n=str(len(d)))
    if len(d) < MIN_N:
        return _replace(base, note=f"fewer than {MIN_N} animals: no test")
    normality = _normality(d)
    if _parametric(test, normality):
        res = stats.ttest_1samp(d, 0.0)
        es, kind, name, estimate = cohen_dz(d), "Cohen's d_z", "paired t-test", d.mean()
        statistic = cohen_dz
    else:
        if not np.any(d != 0):
            return _replace(base, note="every difference is zero: no test")
        res = stats.wilcoxon(d)
        es, kind, name = rank_biserial_paired(d), "rank-biserial r", "Wilcoxon signed-rank"
        estimate, statistic = np.median(d), rank_biserial_paired
    if comparison != "post vs pre":
        name = name.replace("paired t-test", "one-sample t-test")
    low, high = _bootstrap_ci((d,), statistic, seed) if bootstrap else (np.nan, np.nan)
    return _replace(base, test=name, statistic=float(res.statistic), p_value=float(res.pvalue),
                    effect_size=es, ci_low=low, ci_high=high, effect_type=kind,
                    estimate=float(estimate), normality_p=normality)


def between_groups(x, y, *, groups: tuple[str, str], score: str, test: str = "auto",
                   seed: int = 0, bootstrap: bool = True) -> TestResult:
    """Two groups' scores compared (unpaired): ``x`` of ``groups[0]``, ``y`` of the other."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    base = TestResult("between groups", f"{groups[0]} vs {groups[1]}", score,
                      n=f"{len(x)}+{len(y)}")
    if min(len(x), len(y)) < MIN_N:
        return _replace(base, note=f"a group has fewer than {MIN_N} animals: no test")
    normality = _normality(x, y)
    if _parametric(test, normality):
        res = stats.ttest_ind(x, y, equal_var=False)
        es, kind, name, statistic = hedges_g(x, y), "Hedges' g", "Welch t-test", hedges_g
        estimate = x.mean() - y.mean()
    else:
        res = stats.mannwhitneyu(x, y, alternative="two-sided")
        es, kind, name = rank_biserial_unpaired(x, y), "rank-biserial r", "Mann-Whitney U"
        statistic, estimate = rank_biserial_unpaired, np.median(x) - np.median(y)
    low, high = _bootstrap_ci((x, y), statistic, seed) if bootstrap else (np.nan, np.nan)
    return _replace(base, test=name, statistic=float(res.statistic), p_value=float(res.pvalue),
                    effect_size=es, ci_low=low, ci_high=high, effect_type=kind,
                    estimate=float(estimate), normality_p=normality)


def _partial_eta_of_changes(*changes) -> float:
    """Partial eta squared of the group x phase interaction of a two-phase mixed design:
    the between-group share of the variance of the post − pre changes (the interaction's
    F is the one-way ANOVA F of the changes)."""
    allv = np.concatenate(changes)
    ss_between = sum(len(c) * (np.mean(c) - allv.mean()) ** 2 for c in changes)
    ss_within = sum(((np.asarray(c) - np.mean(c)) ** 2).sum() for c in changes)
    total = ss_between + ss_within
    return float(ss_between / total) if total > 0 else np.nan


def interaction(long: pd.DataFrame, *, score: str, seed: int = 0) -> TestResult:
    """The group x phase interaction of ``long`` (columns ``animal_id``, ``group``,
    ``phase``, ``value``; two phases per animal) by ``pingouin.mixed_anova``."""
    import pingouin

    base = TestResult("group x phase", "all", score)
    counts = long.groupby("group")["animal_id"].nunique()
    base = _replace(base, n="+".join(str(int(c)) for c in counts))
    if len(counts) < 2 or counts.min() < 2:
        return _replace(base, note="needs two groups of at least 2 animals")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pingouin's own pandas deprecations, 0/0 of F
        table = pingouin.mixed_anova(data=long, dv="value", within="phase",
                                     subject="animal_id", between="group")
    row = table[table["Source"] == "Interaction"].iloc[0]  # pingouin 0.7: p_unc (was p-unc)
    if not np.isfinite(row["F"]):
        return _replace(base, note="no variation within the groups: no test")
    phases = list(dict.fromkeys(long["phase"]))
    low, high = np.nan, np.nan
    if len(phases) == 2:  # the interval of a two-phase design, from the animals' changes
        low, high = _bootstrap_ci(_changes_by_group(long, phases), _partial_eta_of_changes,
                                  seed)
    return _replace(base, test="mixed ANOVA (pingouin)", statistic=float(row["F"]),
                    p_value=float(row.get("p_unc", row.get("p-unc"))),
                    effect_size=float(row["np2"]), ci_low=low, ci_high=high,
                    effect_type="partial eta squared",
                    note=f"F({int(row['DF1'])}, {int(row['DF2'])}); parametric whatever --test")


def _changes_by_group(long: pd.DataFrame, phases: list) -> tuple[np.ndarray, ...]:
    wide = long.pivot(index="animal_id", columns="phase", values="value")
    groups = long.drop_duplicates("animal_id").set_index("animal_id")["group"]
    return tuple(
        (wide.loc[ids, phases[1]] - wide.loc[ids, phases[0]]).to_numpy(dtype=float)
        for ids in groups.groupby(groups, sort=False).groups.values()
    )


def _replace(result: TestResult, **changes) -> TestResult:
    return TestResult(**{**asdict(result), **changes})
