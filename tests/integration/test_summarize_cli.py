"""`cpp-tracker summarize` on hand-made result folders (no video needed)."""

from __future__ import annotations

import pandas as pd
import pytest

from cpp_tracker.cli import main
from tests.handmade_results import EXPECTED, make_experiment


def test_summarize_with_design_writes_one_row_per_animal(tmp_path, capsys):
    batch, design = make_experiment(tmp_path)
    out = tmp_path / "cpp_results.csv"
    assert main(["summarize", str(batch), "--design", str(design), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "4 row(s), one per animal, from 12 result(s)" in printed
    assert "side bias threshold at pre-test: 65 %" in printed
    assert "flag m03: side bias at pre-test" in printed
    assert "flag m04: 2 crossing(s) in cond1 with the doors closed" in printed
    table = pd.read_csv(out).set_index("animal_id")
    for animal, (pre, post, _, _) in EXPECTED.items():
        assert table.loc[animal, "change_preference_s"] == pytest.approx(post - pre)
    assert table["closed_door_flag"].tolist() == [False, False, False, True]

    long_out = tmp_path / "long.csv"
    assert (
        main(["summarize", str(batch), "--design", str(design), "--long", "--out", str(long_out)])
        == 0
    )
    assert len(pd.read_csv(long_out)) == 12


def test_summarize_without_design(tmp_path, capsys):
    batch, _ = make_experiment(tmp_path)
    out = tmp_path / "all.csv"
    assert main(["summarize", str(batch), "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert len(table) == 12
    assert {"left_time_s", "right_percent", "phase", "session", "cohort"} <= set(table.columns)
    assert main(["summarize", str(batch), "--long", "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 12 * 3
    assert "one per animal, session and chamber" in capsys.readouterr().out


def test_summarize_errors_are_one_line(tmp_path, capsys):
    batch, design = make_experiment(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("animal_id,phase,paired_chamber\nm01,pre,kitchen\n")
    code = main(["summarize", str(batch), "--design", str(bad), "--out", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert "paired_chamber 'kitchen' is not a chamber of" in err and "Traceback" not in err
    assert not (tmp_path / "r.csv").exists()
    assert main(["summarize", str(tmp_path / "nothing"), "--out", str(tmp_path / "r.csv")]) == 1
    assert "nothing: no such folder" in capsys.readouterr().err
    assert main(["summarize", str(batch), "--out", str(tmp_path / "r.txt")]) == 2
    assert "should be a .csv file" in capsys.readouterr().err
    assert (
        main(
            [
                "summarize",
                str(batch),
                "--out",
                str(tmp_path / "r.csv"),
                "--design",
                str(design),
                "--side-bias-percent",
                "40",
            ]
        )
        == 2
    )
    assert "--side-bias-percent: must be between 50 and 100" in capsys.readouterr().err


def test_a_session_that_needs_review_is_left_out_of_the_group_means(tmp_path, capsys):
    """Doubt travels to the console and the table: the truncated post-test of m02 is named,
    its animal's change score is empty and the drug group's mean is m01's alone."""
    import json

    batch, design = make_experiment(tmp_path)
    run_path = batch / "m02_post" / "run.json"
    run = json.loads(run_path.read_text())
    reason = "only 2.8 % of the nominal length read (limit 98 %)"
    run["qc"] = {"box": {"needs_review": True, "review_reasons": [reason]}}
    run_path.write_text(json.dumps(run))
    out = tmp_path / "cpp.csv"
    assert main(["summarize", str(batch), "--design", str(design), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "group drug: 1 of 2 animal(s) in the means, change in paired % +30.0" in text
    assert f"left out (needs review or missing): m02 (post: {reason})" in text
    assert "group saline: 2 of 2 animal(s) in the means, change in paired % -5.0 ± 0.0 SD" in text
    assert f"m02_post (box): {reason}" in text
    table = pd.read_csv(out).set_index("animal_id")
    assert pd.isna(table.loc["m02", "change_paired_percent"])
    assert not table.loc["m02", "usable"] and table.loc["m01", "usable"]

    assert main(["summarize", str(batch), "--design", str(design), "--out", str(out),
                 "--include-flagged"]) == 0
    assert "group drug: 2 of 2 animal(s) in the means" in capsys.readouterr().out
    assert pd.read_csv(out).set_index("animal_id").loc["m02", "change_paired_percent"] == \
        pytest.approx(30.0)
    assert main(["summarize", str(batch), "--out", str(out), "--include-flagged"]) == 2
    assert "--include-flagged: applies only with --design" in capsys.readouterr().err
