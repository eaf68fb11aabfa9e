"""Per-animal scores, exclusions and criteria from a hand-written sessions table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpp_tracker.errors import ConfigError
from cpp_tracker.experiment.scores import (
    SCORES,
    Criteria,
    animal_scores,
    load_criteria,
    with_derived_measures,
)


def sessions_table(rows) -> pd.DataFrame:
    """rows: (animal, group, prefix, paired_s, unpaired_s, unknown_s, usable, doubts)"""
    out = []
    for animal, group, prefix, paired, unpaired, unknown, usable, doubts in rows:
        out.append({"animal_id": animal, "group": group, "prefix": prefix,
                    "result": f"/r/{animal}_{prefix}", "paired_s": paired,
                    "unpaired_s": unpaired, "observed_s": paired + unpaired,
                    "unknown_s": unknown, "usable": usable, "doubts": doubts})
    return with_derived_measures(pd.DataFrame(out))


ROWS = [
    ("a", "WT", "pre", 40.0, 60.0, 0.0, True, ""),
    ("a", "WT", "post", 60.0, 30.0, 10.0, True, ""),
    ("b", "WT", "pre", 80.0, 20.0, 0.0, True, ""),
    ("b", "WT", "post", 70.0, 30.0, 0.0, False, "gaps"),
    ("c", "KO", "pre", 50.0, 50.0, 0.0, True, ""),
]


def test_every_score_from_known_times():
    scores = animal_scores(sessions_table(ROWS), Criteria()).set_index("animal_id")
    a = scores.loc["a"]
    # pre: 40 of 100 s observed; post: 60 of 90 s observed (10 s unknown)
    assert a["change_paired_percent"] == pytest.approx(100 * 60 / 90 - 40)
    assert a["change_paired_s"] == 20.0
    assert a["change_preference_s"] == pytest.approx(30 - (-20))
    assert a["change_paired_share_percent"] == pytest.approx(100 * 60 / 90 - 40)
    assert a["post_preference_s"] == 30.0
    assert a["ratio_post_pre"] == pytest.approx(1.5)
    assert a["included"] and a["classification"] == "toward paired"
    assert set(SCORES) <= set(scores.columns)


def test_flagged_and_missing_sessions_exclude_the_animal_with_reasons():
    scores = animal_scores(sessions_table(ROWS), Criteria()).set_index("animal_id")
    assert not scores.loc["b", "included"]
    assert scores.loc["b", "exclusion_reasons"] == "post-test needs review: gaps"
    assert scores.loc["b", "usable_sessions"] == "pre-test"
    assert scores.loc["c", "exclusion_reasons"] == "no post-test result"
    assert np.isnan(scores.loc["c", "change_paired_s"])
    kept = animal_scores(sessions_table(ROWS), Criteria(), include_flagged=True)
    kept = kept.set_index("animal_id")
    assert kept.loc["b", "included"] and kept.loc["b", "flagged"]
    assert kept.loc["b", "doubts"] == "post-test needs review: gaps"
    assert not kept.loc["c", "included"]  # a missing session is not a flag


def test_criteria_rules():
    rules = Criteria(cutoff=25.0, side_bias_percent=70.0, max_unknown_percent=5.0)
    scores = animal_scores(sessions_table(ROWS), rules, include_flagged=True)
    scores = scores.set_index("animal_id")
    # a: 10 s of 100 s unknown at post-test (10 % > 5 %)
    assert "post-test in no chamber for 10.0 % (criteria limit 5 %)" in \
        scores.loc["a", "exclusion_reasons"]
    # b: pre-test paired share 80 % > 70 %
    assert "side bias at pre-test: paired share 80.0 %" in scores.loc["b", "exclusion_reasons"]
    assert bool(scores.loc["b", "pre_side_bias"])
    loose = animal_scores(sessions_table(ROWS), Criteria(cutoff=25.0)).set_index("animal_id")
    assert loose.loc["a", "classification"] == "preference"  # +26.7 pp >= 25


def test_load_criteria(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("criteria:\n  score: change_paired_s\n  cutoff: 5\n")
    c = load_criteria(path)
    assert (c.score, c.cutoff, c.side_bias_percent) == ("change_paired_s", 5.0, None)
    assert c.source == str(path) and len(c.hash) == 12
    path.write_text("criteria:\n  score: change_paired_s\n  cutoff: 6\n")
    assert load_criteria(path).hash != c.hash
    assert load_criteria(None, "post_preference_s").score == "post_preference_s"
    path.write_text("criteria:\n  score: time\n  cutoff: yes\n  max_unknown_percent: 120\n"
                    "other: 1\n")
    with pytest.raises(ConfigError) as e:
        load_criteria(path)
    assert e.value.problems == [
        "other: is not a known top-level key (only criteria)",
        "criteria.score: 'time' is not a score (scores: " + ", ".join(SCORES) + ")",
        "criteria.cutoff: must be a number, got True",
        "criteria.max_unknown_percent: must be between 0 and 100, got 120",
    ]
    path.write_text("score: 3\n")
    with pytest.raises(ConfigError, match="criteria: is missing or not a mapping"):
        load_criteria(path)


def test_the_command_lines_score_names_are_the_scores():
    from cpp_tracker.experiment.choices import SCORE_NAMES

    assert tuple(SCORES) == SCORE_NAMES
