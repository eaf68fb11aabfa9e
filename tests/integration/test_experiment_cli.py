"""`cpp-tracker experiment` end to end: hand-made result folders with known times, and
(once) generated videos tracked for real."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from cpp_tracker.cli import main
from tests.handmade_results import write_result

#: animal -> (group, pre seconds in left (paired), post seconds in left); sessions of 100 s
ANIMALS = {
    "w1": ("WT", 50, 70), "w2": ("WT", 45, 70), "w3": ("WT", 50, 80), "w4": ("WT", 40, 75),
    "w5": ("WT", 50, 90),  # its post-test is made to need review
    "k1": ("KO", 50, 46), "k2": ("KO", 50, 52), "k3": ("KO", 48, 47), "k4": ("KO", 52, 53),
}
REASON = "only 40.0 % of the nominal length read (limit 98 %)"


def _experiment(root):
    lines = ["animal_id,group,phase,paired_chamber,video"]
    for animal, (group, pre, post) in ANIMALS.items():
        for phase, left in (("pre", pre), ("post", post)):
            name = f"{animal}_{phase}"
            write_result(root / "results" / name, [("left", left), ("right", 100 - left)])
            lines.append(f"{animal},{group},{phase},left,{name}")
    run_path = root / "results" / "w5_post" / "run.json"
    run = json.loads(run_path.read_text())
    run["qc"] = {"box": {"needs_review": True, "review_reasons": [REASON]}}
    run_path.write_text(json.dumps(run))
    design = root / "design.csv"
    design.write_text("\n".join(lines) + "\n")
    return root / "results", design


def _changes(group, *, flagged=False):
    return np.array([post - pre for a, (g, pre, post) in ANIMALS.items()
                     if g == group and (flagged or a != "w5")], dtype=float)


def test_experiment_writes_scores_stats_figure_methods_and_sensitivity(tmp_path, capsys):
    results, design = _experiment(tmp_path)
    out = tmp_path / "exp"
    assert main(["experiment", str(results), "--design", str(design), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "9 animal(s), 8 analysed; score change_paired_percent" in printed
    assert f"excluded w5 (WT): post-test needs review: {REASON}" in printed
    for name in ("scores.csv", "stats.csv", "sensitivity.csv", "figure.png", "figure.svg",
                 "methods.md"):
        assert (out / name).stat().st_size > 0

    scores = pd.read_csv(out / "scores.csv").set_index("animal_id")
    for animal, (_, pre, post) in ANIMALS.items():
        assert scores.loc[animal, "change_paired_percent"] == pytest.approx(post - pre)
        assert scores.loc[animal, "change_preference_s"] == pytest.approx(2 * (post - pre))
        assert scores.loc[animal, "ratio_post_pre"] == pytest.approx(post / pre, rel=1e-5)
    assert not scores.loc["w5", "included"] and "needs review" in scores.loc["w5",
                                                                            "exclusion_reasons"]
    assert scores.loc["w5", "classification"] == "excluded"

    # the statistics are scipy's on the known changes (w5 left out)
    stats = pd.read_csv(out / "stats.csv", dtype={"n": str})
    wt = stats[(stats["comparison"] == "post vs pre") & (stats["group"] == "WT")].iloc[0]
    assert wt["test"] == "paired t-test" and wt["n"] == "4"
    assert wt["p_value"] == pytest.approx(sps.ttest_1samp(_changes("WT"), 0).pvalue, rel=1e-5)
    between = stats[stats["comparison"] == "between groups"].iloc[0]
    assert between["group"] == "WT vs KO"
    assert between["p_value"] == pytest.approx(
        sps.ttest_ind(_changes("WT"), _changes("KO"), equal_var=False).pvalue, rel=1e-5)
    inter = stats[stats["comparison"] == "group x phase"].iloc[0]
    assert inter["statistic"] == pytest.approx(
        sps.f_oneway(_changes("WT"), _changes("KO")).statistic, rel=1e-5)

    methods = (out / "methods.md").read_text()
    assert "hysteresis of 6.0 px" in methods and "- w5 (WT): post-test needs review" in methods
    sens = pd.read_csv(out / "sensitivity.csv", dtype={"n": str})
    assert {"time by visit, hysteresis 12 px", "with flagged sessions",
            "unknown time counted for the lowest preference",
            "score ratio_post_pre"} <= set(sens["variant"])
    # the mouse sits in the middle of a chamber: visits and positions give the same times
    visit = sens[sens["variant"] == "time by visit, hysteresis 12 px"]
    main_rows = sens[sens["variant"] == "main"]
    assert visit["p_value"].to_numpy() == pytest.approx(main_rows["p_value"].to_numpy())
    with_w5 = sens[(sens["variant"] == "with flagged sessions")
                   & (sens["comparison"] == "post vs pre") & (sens["group"] == "WT")].iloc[0]
    assert with_w5["n"] == "5"
    assert with_w5["p_value"] == pytest.approx(
        sps.ttest_1samp(_changes("WT", flagged=True), 0).pvalue, rel=1e-5)

    # --include-flagged keeps w5, marked
    assert main(["experiment", str(results), "--design", str(design), "--out", str(out),
                 "--include-flagged", "--test", "nonparametric"]) == 0
    assert f"kept although flagged w5: post-test needs review: {REASON}" in \
        capsys.readouterr().out
    scores = pd.read_csv(out / "scores.csv").set_index("animal_id")
    assert scores.loc["w5", "included"] and scores.loc["w5", "flagged"]
    stats = pd.read_csv(out / "stats.csv", dtype={"n": str})
    assert stats.loc[0, "test"] == "Wilcoxon signed-rank"
    assert "Kept although flagged" in (out / "methods.md").read_text()


def test_criteria_classify_exclude_and_are_recorded_with_their_hash(tmp_path, capsys):
    results, design = _experiment(tmp_path)
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text("criteria:\n  score: change_paired_percent\n  cutoff: 15\n"
                        "  side_bias_percent: 55\n")
    out = tmp_path / "exp"
    assert main(["experiment", str(results), "--design", str(design), "--out", str(out),
                 "--criteria", str(criteria)]) == 0
    assert "excluded w4 (WT): side bias at pre-test: paired share 40.0 %" in \
        capsys.readouterr().out
    scores = pd.read_csv(out / "scores.csv").set_index("animal_id")
    assert scores.loc["w1", "classification"] == "preference"  # +20 >= 15
    assert scores.loc["k1", "classification"] == "no preference"
    assert scores.loc["w4", "classification"] == "excluded"
    digest = scores["criteria_hash"].iloc[0]
    assert len(digest) == 12 and f"sha256 {digest}" in (out / "methods.md").read_text()

    # comments do not change the hash; a rule does
    criteria.write_text("# fixed 2024-01-01\ncriteria:\n  score: change_paired_percent\n"
                        "  cutoff: 15\n  side_bias_percent: 55\n")
    assert main(["experiment", str(results), "--design", str(design), "--out", str(out),
                 "--criteria", str(criteria)]) == 0
    assert pd.read_csv(out / "scores.csv")["criteria_hash"].iloc[0] == digest


def test_experiment_errors_are_one_sentence(tmp_path, capsys):
    results, design = _experiment(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("criteria:\n  cutof: 10\n  side_bias_percent: 40\n")
    code = main(["experiment", str(results), "--design", str(design), "--out",
                 str(tmp_path / "o"), "--criteria", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "criteria.cutof: is not a known key" in err
    assert "criteria.side_bias_percent: must be between 50 and 100, got 40" in err
    assert main(["experiment", str(tmp_path / "none"), "--design", str(design), "--out",
                 str(tmp_path / "o")]) == 1
    assert "none: no such folder" in capsys.readouterr().err


def test_experiment_on_tracked_videos_matches_the_ground_truth(video_factory, tmp_path, capsys):
    """Four generated 12-s videos (two animals, pre and post) tracked for real: the scores
    match the ground truth within 1 percentage point; with one animal per group no test is
    run, and the output says so."""
    from cpp_tracker.config.settings import load_config
    from cpp_tracker.runs.pipeline import track_video

    lines, truth = ["animal_id,group,phase,paired_chamber,video"], {}
    for i, (animal, group) in enumerate((("a1", "WT"), ("a2", "KO"))):
        for j, phase in enumerate(("pre", "post")):
            name = f"{animal}_{phase}"
            video, gt, config = video_factory(f"exp_{name}", duration_s=12.0,
                                              seed=400 + 2 * i + j)
            track_video(video, load_config(config), tmp_path / "results", progress=False)
            times = gt.chamber_times().iloc[0]
            truth[(animal, phase)] = 100 * times.get("paired", 0.0) / times.sum()
            lines.append(f"{animal},{group},{phase},paired,{video.stem}")
    design = tmp_path / "design.csv"
    design.write_text("\n".join(lines) + "\n")
    out = tmp_path / "exp"
    assert main(["experiment", str(tmp_path / "results"), "--design", str(design), "--out",
                 str(out)]) == 0
    assert "fewer than 3 animals: no test" in capsys.readouterr().out
    scores = pd.read_csv(out / "scores.csv").set_index("animal_id")
    for (animal, phase), percent in truth.items():
        assert scores.loc[animal, f"{phase}_paired_percent"] == pytest.approx(percent, abs=1.0)


def test_a_summary_csv_stands_for_its_result_folders(tmp_path, capsys):
    """`summarize --long` (no design) gives the same scores and statistics as the folders;
    with the folders gone, time by visit is left out of the sensitivity with a warning."""
    results, design = _experiment(tmp_path)
    summary = tmp_path / "all.csv"
    assert main(["summarize", str(results), "--long", "--out", str(summary)]) == 0
    assert main(["experiment", str(results), "--design", str(design), "--out",
                 str(tmp_path / "a")]) == 0
    assert main(["experiment", str(summary), "--design", str(design), "--out",
                 str(tmp_path / "b")]) == 0
    a = pd.read_csv(tmp_path / "a" / "stats.csv")
    b = pd.read_csv(tmp_path / "b" / "stats.csv")
    pd.testing.assert_frame_equal(a, b)
    shutil.rmtree(results)
    capsys.readouterr()
    assert main(["experiment", str(summary), "--design", str(design), "--out",
                 str(tmp_path / "c")]) == 0
    printed = capsys.readouterr()
    assert "time by visit left out of the sensitivity analysis" in printed.err
    assert "excluded w5 (WT): post-test needs review" in printed.out
    sens = pd.read_csv(tmp_path / "c" / "sensitivity.csv")
    assert not sens["variant"].str.startswith("time by visit").any()
    # a table without QC verdicts cannot stand in: its flagged sessions would pass unmarked
    old = tmp_path / "old.csv"
    pd.read_csv(summary).drop(columns=["usable"]).to_csv(old, index=False)
    capsys.readouterr()
    assert main(["experiment", str(old), "--design", str(design), "--out",
                 str(tmp_path / "d")]) != 0
    assert "has no 'usable' column" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("animal_id,x\nm1,2\n")
    assert main(["experiment", str(bad), "--design", str(design), "--out",
                 str(tmp_path / "d")]) == 1
    assert "lacks the column(s) result, video, arena" in capsys.readouterr().err
