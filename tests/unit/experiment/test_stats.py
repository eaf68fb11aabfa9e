"""The statistics against values published elsewhere (not this code's own output).

- Student's sleep data (Cushny & Peebles 1905, R's ``sleep``): paired t = 4.0621, df 9,
  p = 0.002833; Welch two-sample t = -1.8608, p = 0.07939 (R ``t.test``).
- scipy's documented examples: ``wilcoxon`` on Fisher's 15 differences (statistic 24,
  p = 0.041259765625); ``mannwhitneyu`` males vs females (U = 17, p = 0.1111).
- pingouin's documented ``mixed_anova`` example (its ``mixed_anova`` dataset): interaction
  F = 2.728, p = 0.070, np2 = 0.045.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from cpp_tracker.experiment import stats

SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]
FISHER = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
MALES, FEMALES = [19, 22, 16, 29, 24], [20, 11, 17, 12]


def test_paired_t_test_on_the_sleep_data():
    d = np.array(SLEEP_2) - np.array(SLEEP_1)
    r = stats.within_group(d, group="g", score="s", null=0.0, test="parametric")
    assert r.test == "paired t-test"
    assert r.statistic == pytest.approx(4.0621, abs=1e-4)
    assert r.p_value == pytest.approx(0.002833, abs=1e-6)
    assert r.estimate == pytest.approx(1.58)
    # Cohen's d_z is t / sqrt(n)
    assert r.effect_size == pytest.approx(4.0621 / np.sqrt(10), abs=1e-4)
    assert r.ci_low < r.effect_size < r.ci_high


def test_welch_t_test_on_the_sleep_data():
    r = stats.between_groups(SLEEP_1, SLEEP_2, groups=("1", "2"), score="s", test="parametric")
    assert r.test == "Welch t-test"
    assert r.statistic == pytest.approx(-1.8608, abs=1e-4)
    assert r.p_value == pytest.approx(0.07939, abs=1e-5)
    # Hedges' g: d = (0.75 - 2.33) / sqrt((3.2006 + 4.0090) / 2) = -0.8322, times
    # 1 - 3 / (4 * 18 - 1)
    assert r.effect_size == pytest.approx(-0.8322 * (1 - 3 / 71), abs=1e-3)
    assert r.n == "10+10"


def test_wilcoxon_signed_rank_on_scipys_example():
    r = stats.within_group(FISHER, group="g", score="s", null=0.0, test="nonparametric")
    assert r.test == "Wilcoxon signed-rank"
    assert r.statistic == 24.0
    assert r.p_value == pytest.approx(0.041259765625)
    # ranks of |d|: the negatives (48, 67) have ranks 10 and 14, so R- = 24, R+ = 96
    assert r.effect_size == pytest.approx((96 - 24) / 120)


def test_mann_whitney_on_scipys_example():
    r = stats.between_groups(MALES, FEMALES, groups=("m", "f"), score="s",
                             test="nonparametric")
    assert r.test == "Mann-Whitney U"
    assert r.statistic == 17.0
    assert r.p_value == pytest.approx(0.1111111111111111)
    assert r.effect_size == pytest.approx(2 * 17 / 20 - 1)


def test_mixed_anova_interaction_on_pingouins_example():
    import pingouin

    data = pingouin.read_dataset("mixed_anova").rename(
        columns={"Scores": "value", "Group": "group", "Time": "phase", "Subject": "animal_id"})
    r = stats.interaction(data, score="s")
    assert r.statistic == pytest.approx(2.728, abs=5e-4)
    assert r.p_value == pytest.approx(0.070, abs=5e-4)
    assert r.effect_size == pytest.approx(0.045, abs=5e-4)
    assert np.isnan(r.ci_low)  # three phases: no interval from the changes


def test_two_phase_interaction_is_the_anova_of_the_changes():
    """With two phases the interaction's F is the one-way ANOVA F of the post - pre changes
    (an identity of the mixed design), and its partial eta squared the changes' eta squared."""
    rng = np.random.default_rng(3)
    pre = rng.normal(50, 8, 12)
    post = pre + np.r_[rng.normal(12, 6, 6), rng.normal(0, 6, 6)]
    group = ["WT"] * 6 + ["KO"] * 6
    ids = [f"m{i}" for i in range(12)]
    long = pd.concat([pd.DataFrame({"animal_id": ids, "group": group, "phase": p, "value": v})
                      for p, v in (("pre", pre), ("post", post))], ignore_index=True)
    r = stats.interaction(long, score="s", seed=1)
    change = post - pre
    f = sps.f_oneway(change[:6], change[6:])
    assert r.statistic == pytest.approx(f.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(f.pvalue, rel=1e-6)
    ss_b = 6 * ((change[:6].mean() - change.mean()) ** 2 + (change[6:].mean() - change.mean()) ** 2)
    assert r.effect_size == pytest.approx(ss_b / ((change - change.mean()) ** 2).sum())
    assert r.ci_low <= r.effect_size <= r.ci_high


def test_the_rule_and_its_override():
    normal = [1.2, 0.8, 1.9, 1.4, 0.3, 1.1, 1.6, 0.9]
    skewed = [0.1, 0.2, 0.1, 0.3, 0.2, 0.1, 9.0, 12.0]
    assert sps.shapiro(normal).pvalue >= 0.05 > sps.shapiro(skewed).pvalue  # the premise
    assert stats.within_group(normal, group="g", score="s", null=0).test == "paired t-test"
    assert stats.within_group(skewed, group="g", score="s", null=0).test == \
        "Wilcoxon signed-rank"
    assert stats.within_group(skewed, group="g", score="s", null=0,
                              test="parametric").test == "paired t-test"
    few = stats.within_group([1, 2], group="g", score="s", null=0)
    assert few.test == "" and np.isnan(few.p_value) and "fewer than 3" in few.note


def test_bootstrap_intervals_are_reproducible_with_the_seed():
    a = stats.between_groups(SLEEP_1, SLEEP_2, groups=("1", "2"), score="s", seed=7)
    b = stats.between_groups(SLEEP_1, SLEEP_2, groups=("1", "2"), score="s", seed=7)
    c = stats.between_groups(SLEEP_1, SLEEP_2, groups=("1", "2"), score="s", seed=8)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)


def test_hedges_g_agrees_with_pingouin():
    import pingouin

    g = pingouin.compute_effsize(SLEEP_1, SLEEP_2, eftype="hedges")
    assert stats.hedges_g(SLEEP_1, SLEEP_2) == pytest.approx(g, abs=2e-3)


def test_resamples_with_an_undefined_effect_size_are_left_out_of_the_interval():
    """With 4 animals, 1 resample in 64 draws one animal four times (SD 0, d_z undefined):
    the interval is still formed from the others."""
    r = stats.within_group([1.0, 2.0, 4.0, 3.5], group="g", score="s", null=0.0,
                           test="parametric")
    assert np.isfinite(r.ci_low) and np.isfinite(r.ci_high)
    assert r.ci_low < r.effect_size < r.ci_high
