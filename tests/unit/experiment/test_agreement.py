"""Blind agreement sheet and Cohen's kappa."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from PIL import Image

from cpp_tracker.cli import main
from cpp_tracker.experiment.agreement import SHEET_COLUMNS, cohens_kappa, compare_sheet
from tests.results_helpers import tracked


def test_kappa_by_hand():
    assert cohens_kappa(["a", "b", "a"], ["a", "b", "a"]) == 1.0
    # 10 rows, tool a x6 / b x4; the person swaps one a->b and one b->a:
    # p_o = 8/10; person a x6 / b x4; p_e = 0.6*0.6 + 0.4*0.4 = 0.52
    tool = ["a"] * 6 + ["b"] * 4
    person = ["a"] * 5 + ["b"] + ["a"] + ["b"] * 3
    assert cohens_kappa(tool, person) == pytest.approx((0.8 - 0.52) / (1 - 0.52))
    # a category only one rater used
    assert cohens_kappa(["a", "a", "b", "b"], ["a", "c", "b", "b"]) == pytest.approx(
        (0.75 - (0.5 * 0.25 + 0.5 * 0.5)) / (1 - (0.5 * 0.25 + 0.5 * 0.5))
    )
    assert math.isnan(cohens_kappa(["a", "a"], ["a", "a"]))


@pytest.fixture(scope="module")
def sheet(video_factory, tmp_path_factory):
    video, truth, result_dir = tracked(video_factory, tmp_path_factory)
    out = tmp_path_factory.mktemp("agreement")
    assert main(["review", str(result_dir), "--sample", "10", "--seed", "4", "--out",
                 str(out)]) == 0
    return out, truth


def test_sheet_hides_the_tools_answer(sheet):
    out, _ = sheet
    table = pd.read_csv(out / "agreement_sheet.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == SHEET_COLUMNS
    assert len(table) == 10 and (table["human_chamber"] == "").all()
    assert "tool_chamber" not in table.columns
    assert set(table["choices"]) == {"paired / unpaired / unknown"}
    key = pd.read_csv(out / "agreement_key.csv")
    assert list(key["sample"]) == list(range(1, 11))
    assert set(key["tool_chamber"]) <= {"paired", "unpaired", "unknown"}
    with Image.open(out / "agreement_sheet_01.png") as image:
        assert image.size[0] == 1600
    # drawn seconds: distinct, the frame in the middle of its second
    assert key["time_s"].nunique() == 10
    assert ((key["time_s"] % 1 - 0.5).abs() < 0.02).all()


def test_key_matches_the_truth(sheet):
    """The key holds the tool's chamber of the drawn frame: on a clean generated video it is
    the true chamber (at most one miss, for a frame in the doorway's hysteresis band)."""
    out, truth = sheet
    key = pd.read_csv(out / "agreement_key.csv")
    t = truth.track
    same = [
        row.tool_chamber == t.iloc[(t["time_s"] - row.time_s).abs().argmin()]["chamber"]
        for row in key.itertuples(index=False)
    ]
    assert sum(same) >= 9, same


def _fill(out, tmp_path, change: dict[int, str], blank=()):
    sheet = pd.read_csv(out / "agreement_sheet.csv", dtype=str, keep_default_na=False)
    key = pd.read_csv(out / "agreement_key.csv", dtype=str, keep_default_na=False)
    sheet["human_chamber"] = key["tool_chamber"]
    for sample, value in change.items():
        sheet.loc[sheet["sample"] == str(sample), "human_chamber"] = value
    for sample in blank:
        sheet.loc[sheet["sample"] == str(sample), "human_chamber"] = ""
    path = tmp_path / "filled.csv"
    sheet.to_csv(path, index=False)
    return path, key


def test_perfect_sheet_gives_kappa_one(sheet, tmp_path, capsys):
    out, _ = sheet
    path, key = _fill(out, tmp_path, {})
    result = compare_sheet(path, out / "agreement_key.csv")
    assert result.n == 10 and result.percent == 100.0
    assert result.kappa == 1.0 or math.isnan(result.kappa)  # nan only if one category
    assert result.disagreements.empty
    assert main(["agreement", str(path), "--key", str(out / "agreement_key.csv")]) == 0
    assert "10 of 10 (100.0 %)" in capsys.readouterr().out


def test_set_disagreements_give_the_known_kappa(sheet, tmp_path, capsys):
    out, _ = sheet
    key = pd.read_csv(out / "agreement_key.csv", dtype=str, keep_default_na=False)
    other = {"paired": "unpaired", "unpaired": "paired", "unknown": "paired"}
    flips = {1: other[key.loc[0, "tool_chamber"]], 2: other[key.loc[1, "tool_chamber"]]}
    path, key = _fill(out, tmp_path, {**flips, 3: " PAIRED "} if key.loc[2, "tool_chamber"]
                      == "paired" else flips, blank=[10])
    tool = list(key["tool_chamber"][:9])
    person = [flips.get(i + 1, tool[i]) for i in range(9)]
    # expected kappa by hand over the 9 filled rows
    cats = set(tool) | set(person)
    p_o = sum(a == b for a, b in zip(tool, person, strict=True)) / 9
    p_e = sum((tool.count(c) / 9) * (person.count(c) / 9) for c in cats)
    expected = (p_o - p_e) / (1 - p_e)

    result = compare_sheet(path, out / "agreement_key.csv")
    assert result.n == 9 and result.n_blank == 1 and result.n_agree == 7
    assert result.percent == pytest.approx(700 / 9)
    assert result.kappa == pytest.approx(expected)
    assert list(result.disagreements["sample"]) == ["1", "2"]
    assert main(["agreement", str(path), "--key", str(out / "agreement_key.csv")]) == 0
    text = capsys.readouterr().out
    assert "7 of 9 (77.8 %)" in text and f"Cohen's kappa {expected:.3f}" in text
    assert "2 disagreement(s)" in text and "1 left blank" in text


def test_sheet_errors_name_the_problem(sheet, tmp_path, capsys):
    out, _ = sheet
    path, _ = _fill(out, tmp_path, {4: "pared"})
    assert main(["agreement", str(path), "--key", str(out / "agreement_key.csv")]) == 2
    assert "sample 4: human_chamber 'pared' is not one of paired, unpaired, unknown" in \
        capsys.readouterr().err
    assert main(["agreement", str(out / "agreement_sheet.csv")]) == 1
    assert "no row has a human_chamber yet" in capsys.readouterr().err
    other = pd.read_csv(out / "agreement_key.csv", dtype=str)
    other["sheet"] = "0000000000"
    other.to_csv(tmp_path / "other_key.csv", index=False)
    path, _ = _fill(out, tmp_path, {})
    assert main(["agreement", str(path), "--key", str(tmp_path / "other_key.csv")]) == 1
    assert "belongs to sheet 0000000000" in capsys.readouterr().err
    assert main(["agreement", str(tmp_path / "missing.csv")]) == 1
    assert "agreement sheet not found" in capsys.readouterr().err

def test_sample_must_be_positive(video_factory, tmp_path_factory, capsys):
    _, _, result_dir = tracked(video_factory, tmp_path_factory)
    assert main(["review", str(result_dir), "--sample", "0"]) == 2
    assert "--sample: must be at least 1, got 0" in capsys.readouterr().err
