"""The CPP design: a hand-made experiment of four animals with known chamber times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cpp_tracker.errors import ConfigError
from cpp_tracker.experiment.collect import collect_results
from cpp_tracker.experiment.design import (
    design_long,
    design_sessions,
    design_wide,
    load_design,
    normalise_phase,
)
from tests.handmade_results import (
    EXPECTED,
    GROUP,
    PAIRED,
    THREE_CHAMBERS,
    make_experiment,
    write_result,
)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    batch, design_path = make_experiment(tmp_path_factory.mktemp("experiment"))
    results, metadata_columns, _ = collect_results([batch])
    design = load_design(design_path)
    sessions, warnings = design_sessions(
        design, results, design_source=str(design_path), metadata_columns=metadata_columns
    )
    return design, sessions, warnings


def test_four_animals_give_the_known_preference_scores_and_changes(experiment):
    design, sessions, warnings = experiment
    assert warnings == []
    wide = design_wide(sessions).set_index("animal_id")
    assert list(wide.index) == ["m01", "m02", "m03", "m04"]
    for animal, (pre, post, pre_share, post_share) in EXPECTED.items():
        row = wide.loc[animal]
        assert row["group"] == GROUP[animal]
        assert row["paired_chamber"] == PAIRED[animal]
        assert row["unpaired_chamber"] == ({"left", "right"} - {PAIRED[animal]}).pop()
        assert row["sex"] == ("f" if animal in ("m01", "m03") else "m")
        # carried from the manifest metadata (m04 has none)
        if animal == "m04":
            assert pd.isna(row["cohort"])
        else:
            assert row["cohort"] == "A"
        assert row["pre_preference_s"] == pytest.approx(pre)
        assert row["post_preference_s"] == pytest.approx(post)
        assert row["change_preference_s"] == pytest.approx(post - pre)
        assert row["pre_paired_share_percent"] == pytest.approx(pre_share)
        assert row["post_paired_share_percent"] == pytest.approx(post_share)
        assert row["change_paired_share_percent"] == pytest.approx(post_share - pre_share)
    # m01's post-test: 10 s without a detection, percent of the observed 100 s
    assert wide.loc["m01", "post_paired_s"] == pytest.approx(70.0)
    assert wide.loc["m01", "post_paired_percent"] == pytest.approx(70.0)
    assert wide.loc["m01", "post_unknown_s"] == pytest.approx(10.0)
    assert wide.loc["m01", "change_paired_percent"] == pytest.approx(30.0)
    assert "neutral_s" not in sessions  # two-chamber boxes: no neutral columns
    assert not any(c.endswith("neutral_s") for c in wide.columns)


def test_side_bias_at_pre_test_is_flagged(experiment):
    design, sessions, _ = experiment
    wide = design_wide(sessions).set_index("animal_id")
    assert wide["pre_side_bias"].tolist() == [False, False, True, False]
    assert wide.loc["m03", "pre_preferred_side"] == "paired"
    assert wide.loc["m01", "pre_preferred_side"] == "unpaired"  # 40 % paired share
    assert wide.loc["m02", "pre_preferred_side"] == "neither"  # exactly 50 / 50
    assert (
        "side bias at pre-test: 75.0 % of the time in the paired chamber (threshold 65 %)"
        in wide.loc["m03", "flags"]
    )
    results = collect_results(list(sessions["result"]))[0]
    stricter, _ = design_sessions(design, results, side_bias_percent=54)
    flagged = design_wide(stricter).set_index("animal_id")["pre_side_bias"]
    assert flagged.tolist() == [True, False, True, True]  # 60 %, 50 %, 75 %, 55 %


def test_closed_door_crossing_is_flagged(experiment):
    design, sessions, _ = experiment
    wide = design_wide(sessions).set_index("animal_id")
    assert wide["cond1_crossings"].tolist() == [0, 0, 0, 2]
    assert wide["closed_door_crossings"].tolist() == [0, 0, 0, 2]
    assert wide["closed_door_flag"].tolist() == [False, False, False, True]
    assert "2 crossing(s) in cond1 with the doors closed" in wide.loc["m04", "flags"]
    assert wide.loc["m01", "pre_crossings"] == 3  # open doors: crossings are not flagged
    assert wide.loc["m01", "flags"] == ""


def test_long_form_has_one_row_per_animal_and_session(experiment):
    design, sessions, _ = experiment
    long = design_long(sessions)
    assert len(long) == 12
    assert long.columns[:4].tolist() == ["animal_id", "group", "paired_chamber", "unpaired_chamber"]
    m02 = long[long["animal_id"] == "m02"].set_index("phase")
    assert m02.loc["post-test", "preference_s"] == pytest.approx(60.0)
    assert m02.loc["conditioning", "session"] == "m02_C1"
    assert bool(m02.loc["conditioning", "doors_closed"])


def test_missing_results_and_results_outside_the_design_are_reported(tmp_path):
    batch, design_path = make_experiment(tmp_path)
    import shutil

    shutil.rmtree(batch / "m02_post")
    write_result(batch / "m09_pre", [("left", 10)], metadata={"animal_id": "m09", "phase": "pre"})
    results, _, _ = collect_results([batch])
    design = load_design(design_path)
    sessions, warnings = design_sessions(design, results, design_source="design.csv")
    assert "design.csv line 7 (m02 post-test): no result found" in warnings
    assert any(
        "1 result(s) are not in the design and were left out: " in w and "m09_pre" in w
        for w in warnings
    )
    wide = design_wide(sessions).set_index("animal_id")
    assert np.isnan(wide.loc["m02", "post_preference_s"])
    assert np.isnan(wide.loc["m02", "change_preference_s"])
    assert "no result for post" in wide.loc["m02", "flags"]


def test_three_chambers_give_neutral_time(tmp_path):
    write_result(
        tmp_path / "r" / "a_pre",
        [("left", 30), ("centre", 20), ("right", 50)],
        config=THREE_CHAMBERS,
        metadata={"animal_id": "a", "phase": "pre"},
    )
    write_result(
        tmp_path / "r" / "a_post",
        [("left", 60), ("centre", 30), ("right", 10)],
        config=THREE_CHAMBERS,
        metadata={"animal_id": "a", "phase": "post"},
    )
    design_path = tmp_path / "design.csv"
    design_path.write_text(
        "animal_id,phase,paired_chamber,unpaired_chamber\n"
        "a,pre-test,left,right\na,post-test,left,right\n"
    )
    results, _, _ = collect_results([tmp_path / "r"])
    design = load_design(design_path)
    sessions, _ = design_sessions(design, results)
    row = design_wide(sessions).iloc[0]
    assert row["neutral_chamber"] == "centre"
    assert row["pre_neutral_s"] == pytest.approx(20.0)
    assert row["pre_neutral_percent"] == pytest.approx(20.0)
    assert row["pre_preference_s"] == pytest.approx(-20.0)
    assert row["post_preference_s"] == pytest.approx(50.0)
    assert row["pre_paired_share_percent"] == pytest.approx(37.5)
    assert row["change_preference_s"] == pytest.approx(70.0)
    # without unpaired_chamber the three-chamber box is ambiguous
    design_path.write_text("animal_id,phase,paired_chamber\na,pre-test,left\n")
    with pytest.raises(
        ConfigError, match="has 3 chambers .left, centre, right.; give unpaired_chamber"
    ):
        design_sessions(load_design(design_path), results)


def test_phase_names():
    assert normalise_phase("Pre-Test") == "pre-test"
    assert normalise_phase("pretest") == "pre-test"
    assert normalise_phase("PRE") == "pre-test"
    assert normalise_phase("post_test") == "post-test"
    assert normalise_phase("Cond") == "conditioning"
    assert normalise_phase("Extinction day") == "extinction-day"


# ------------------------------------------------------------------------------ errors
def test_design_file_problems_are_all_named(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(
        "animal_id,phase,paired_chamber,group,doors_closed\n"
        "m01,pre-test,left,drug,maybe\n"
        "m01,post-test,right,saline,no\n"
        ",post-test,left,drug,no\n"
        "m02,pre,,drug,no\n"
        "m03,pre,left,,no\n"
        "m03,pre-test,left,,no\n"
        "m04,cond,left,,yes\n"
        "m04,conditioning,left,,yes\n"
    )
    with pytest.raises(ConfigError) as e:
        load_design(p)
    text = str(e.value)
    assert "line 2, column doors_closed: expected yes or no, got 'maybe'" in text
    assert "animal m01, column paired_chamber: has different values (left, right)" in text
    assert "animal m01, column group: has different values (drug, saline)" in text
    assert "line 4, column animal_id: is empty" in text
    assert "animal m02, column paired_chamber: is empty on every line" in text
    assert "line 7: animal m03 has a second pre-test (first on line 6)" in text
    assert (
        "line 9: animal m04 has a second conditioning session like the one on line 8; tell "
        "them apart in the session (or video) column" in text
    )


def test_design_without_required_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("animal,phase\nm01,pre\n")
    with pytest.raises(ConfigError, match="lacks the column.s. animal_id, paired_chamber"):
        load_design(p)
    with pytest.raises(ConfigError, match="file not found"):
        load_design(tmp_path / "nope.csv")


def test_unknown_chamber_and_ambiguous_match_are_errors(tmp_path):
    write_result(
        tmp_path / "r" / "x1", [("left", 10)], metadata={"animal_id": "m1", "phase": "pre"}
    )
    write_result(
        tmp_path / "r" / "x2", [("left", 10)], metadata={"animal_id": "m1", "phase": "pre"}
    )
    results, _, _ = collect_results([tmp_path / "r"])
    p = tmp_path / "d.csv"
    p.write_text("animal_id,phase,paired_chamber,video\nm1,pre,left,x1\n")
    sessions, _ = design_sessions(load_design(p), results)
    assert sessions["result"].tolist() == [str(tmp_path / "r" / "x1")]
    p.write_text("animal_id,phase,paired_chamber\nm1,pre,left\n")
    with pytest.raises(ConfigError, match=r"line 2 \(m1 pre-test\) matches 2 results"):
        design_sessions(load_design(p), results)
    p.write_text("animal_id,phase,paired_chamber,video\nm1,pre,drug_side,x1.mp4\n")
    with pytest.raises(
        ConfigError,
        match="paired_chamber 'drug_side' is not a chamber of .*"
        r"\(chambers: left, right\)",
    ):
        design_sessions(load_design(p), results)


def test_the_shipped_design_example_is_valid():
    from pathlib import Path

    example = Path(__file__).resolve().parents[3] / "configs" / "design_example.csv"
    design = load_design(example)
    assert design["animal_id"].nunique() == 3
    assert design.groupby("animal_id")["paired_chamber"].nunique().eq(1).all()
    assert sorted(design["prefix"].unique()) == ["cond1", "cond2", "post", "pre"]


# ------------------------------------------------------------------ doubt travels
def _needs_review(result_dir, reason: str) -> None:
    """Give a hand-made result the QC verdict track writes for a doubtful session."""
    import json

    run = json.loads((result_dir / "run.json").read_text())
    run["qc"] = {"box": {"needs_review": True, "review_reasons": [reason]}}
    (result_dir / "run.json").write_text(json.dumps(run))


def test_a_session_that_needs_review_is_marked_and_left_out_of_the_scores(tmp_path):
    from cpp_tracker.experiment.design import design_groups

    batch, design_path = make_experiment(tmp_path)
    reason = "only 2.8 % of the nominal length read (limit 98 %)"
    _needs_review(batch / "m02_post", reason)
    results, metadata_columns, _ = collect_results([batch])
    flagged = results["result"].str.endswith("m02_post")
    assert not results.loc[flagged, "usable"].any()
    assert set(results.loc[flagged, "doubts"]) == {reason}
    assert results.loc[~flagged, "usable"].all()

    sessions, _ = design_sessions(
        load_design(design_path), results, metadata_columns=metadata_columns
    )
    wide = design_wide(sessions).set_index("animal_id")
    m02 = wide.loc["m02"]
    assert m02["post_paired_share_percent"] == pytest.approx(80.0)  # its numbers stay visible
    assert not m02["post_usable"] and m02["pre_usable"]
    assert pd.isna(m02["change_paired_share_percent"]) and pd.isna(m02["change_preference_s"])
    assert not m02["usable"] and m02["doubts"] == f"post: {reason}"
    assert f"post needs review: {reason}" in m02["flags"]
    assert wide.drop(index="m02")["usable"].all()
    assert design_long(sessions).set_index(["animal_id", "phase"]).loc[
        ("m02", "post-test"), "doubts"] == reason

    # unless asked for, and then from every session
    everything = design_wide(sessions, include_flagged=True).set_index("animal_id")
    assert everything.loc["m02", "change_paired_share_percent"] == pytest.approx(30.0)

    groups = design_groups(wide.reset_index()).set_index("group")
    drug, saline = groups.loc["drug"], groups.loc["saline"]
    assert (drug["animals"], drug["included"], drug["excluded"]) == (2, 1, 1)
    assert drug["excluded_animals"] == f"m02 (post: {reason})"
    # m01 alone: 40 -> 70 % paired share; saline m03 75 -> 70, m04 55 -> 50
    assert drug["change_paired_share_percent_mean"] == pytest.approx(30.0)
    assert drug["change_paired_share_percent_n"] == 1
    assert (saline["included"], saline["excluded"]) == (2, 0)
    assert saline["change_paired_share_percent_mean"] == pytest.approx(-5.0)
    assert saline["change_paired_share_percent_sd"] == pytest.approx(0.0)


def test_a_design_that_matches_no_result_is_an_error(tmp_path):
    from cpp_tracker.errors import OutputError

    batch, _ = make_experiment(tmp_path)
    other = tmp_path / "other.csv"
    other.write_text("animal_id,phase,paired_chamber\nx01,pre-test,left\nx01,post-test,\n")
    results, metadata_columns, _ = collect_results([batch])
    with pytest.raises(OutputError) as e:
        design_sessions(load_design(other), results, design_source=str(other))
    text = str(e.value)
    assert text.startswith(f"{other}: none of its 2 rows matches a result")
    assert "animal_id m01, m02, m03" in text and "\n" not in text
