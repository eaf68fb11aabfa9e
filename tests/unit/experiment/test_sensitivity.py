"""The sensitivity variants: unknown time counted either way, and what 'holds' means."""

from __future__ import annotations

import pytest

from cpp_tracker.experiment.scores import Criteria, animal_scores
from cpp_tracker.experiment.sensitivity import _unknown_counted, sensitivity
from tests.unit.experiment.test_scores import sessions_table


def test_unknown_time_counted_for_the_lowest_and_the_highest_preference():
    rows = [("a", "WT", "pre", 40.0, 50.0, 10.0, True, ""),
            ("a", "WT", "post", 60.0, 20.0, 20.0, True, "")]
    sessions = sessions_table(rows)
    low = animal_scores(_unknown_counted(sessions, "lowest"), Criteria()).iloc[0]
    high = animal_scores(_unknown_counted(sessions, "highest"), Criteria()).iloc[0]
    main = animal_scores(sessions, Criteria()).iloc[0]
    # lowest: pre 50 of 100 s paired, post 60 of 100 s; highest: pre 40, post 80
    assert low["change_paired_percent"] == pytest.approx(60 - 50)
    assert high["change_paired_percent"] == pytest.approx(80 - 40)
    assert low["change_paired_percent"] < main["change_paired_percent"] < \
        high["change_paired_percent"]


def test_a_conclusion_that_flips_with_the_flagged_animals_does_not_hold():
    """Three WT animals up by 10-12 s, and a flagged fourth far down: with it the within-
    group test is no longer significant."""
    rows = []
    for animal, change, usable in (("a", 10.0, True), ("b", 11.0, True), ("c", 12.0, True),
                                   ("d", 11.5, True), ("e", -80.0, False)):
        rows += [(animal, "WT", "pre", 50.0, 50.0, 0.0, True, ""),
                 (animal, "WT", "post", 50.0 + change, 50.0 - change, 0.0, usable,
                  "" if usable else "gaps")]
    sessions = sessions_table(rows)
    sessions["paired_chamber"], sessions["unpaired_chamber"] = "left", "right"
    criteria = Criteria(score="change_paired_s")
    main = animal_scores(sessions, criteria)
    table, warnings = sensitivity(sessions, main, criteria, include_flagged=False,
                                  test="parametric", seed=0, groups=["WT"])
    assert any("time by visit left out" in w for w in warnings)  # no stored tracks here
    row = table[(table["variant"] == "main")].iloc[0]
    assert row["significant"] and row["holds"]
    flagged = table[table["variant"] == "with flagged sessions"].iloc[0]
    assert not flagged["significant"] and not flagged["holds"]
    assert flagged["classification_changes"] == "e (excluded -> not toward paired)"
    same = table[table["variant"] == "score change_paired_percent"].iloc[0]
    assert same["holds"]
