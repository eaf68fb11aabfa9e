"""Blind agreement sheet and Cohen's kappa."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cpp_tracker.cli import main
from cpp_tracker.config.settings import config_to_dict, parse_config
from cpp_tracker.experiment.agreement import (
    SHEET_COLUMNS,
    cohens_kappa,
    compare_sheet,
    draw_samples,
)
from cpp_tracker.results.outputs import write_csv, write_json, write_parquet
from cpp_tracker.results.stored import load_result
from cpp_tracker.runs.pipeline import analyse_track
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
    # why each was picked, on the sheet and in the key; never a chamber name
    assert list(table["picked_because"]) == list(key["picked_because"])
    assert set(table["picked_because"]) <= {"near door", "flagged", "near door, flagged",
                                             "random"}
    # 10 of the 20-s video's 20 seconds are within a body length of the door (3
    # crossings), none flagged: the 10 samples are those
    assert set(table["picked_because"]) == {"near door"}
    assert not table["picked_because"].str.contains("paired").any()


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


# ------------------------------------------------------- borderline seconds first, by hand
_DOOR_X = 300.0


def _walk(tmp_path, area_px=2500.0):
    """A 60-s result (10 fps) in a 600 x 200 px box, door at x = 300: still at x = 100,
    walks to x = 500 (40 px/s, 10-20 s), stays (no detection at 35-38 s), walks back
    (50-60 s); the blob is ``area_px`` (2500: body length 1.8 * sqrt(2500) = 90 px).
    Returns the result and its x per frame."""
    config = parse_config({
        "arenas": [{
            "name": "box",
            "polygon": [[0, 0], [600, 0], [600, 200], [0, 200]],
            "doors": [{"name": "d", "line": [[_DOOR_X, 0], [_DOOR_X, 200]]}],
            "chambers": [{"name": "left", "point": [100, 100]},
                         {"name": "right", "point": [500, 100]}],
        }],
    })
    t = np.arange(600) / 10.0
    x = np.interp(t, [0, 10, 20, 50, 60], [100, 100, 500, 500, 100])
    x[(t >= 35) & (t < 38)] = np.nan
    track = pd.DataFrame({
        "frame": np.arange(len(t)), "time_s": t, "arena": "box", "x": x, "y": 100.0,
        "area_px": np.where(np.isfinite(x), area_px, np.nan), "detected": np.isfinite(x),
        "n_blobs": np.isfinite(x).astype(np.int16),
    })
    analysis = analyse_track(track, config, video_label="walk.mp4")
    track["chamber"] = analysis.chamber.astype(str)
    folder = tmp_path / "walk"
    write_parquet(folder / "track.parquet", track)
    write_csv(folder / "occupancy.csv", analysis.occupancy)
    write_csv(folder / "summary.csv", analysis.summary)
    write_json(folder / "run.json", {
        "video": {"path": "walk.mp4"},
        "config": {"resolved": config_to_dict(config)},
        "time_base": {"duration_s": 60.0, "median_interval_s": 0.1},
    })
    return load_result(folder), x


def _borderline(x):
    """The seconds whose middle frame has the centroid within one body length (90 px) of
    the door, and the seconds without a detection."""
    middle = x[np.arange(60) * 10 + 5]
    near = {s for s in range(60) if abs(middle[s] - _DOOR_X) <= 90.0}
    flagged = {s for s in range(60) if np.isnan(x[s * 10 : s * 10 + 10]).any()}
    return near, flagged


def test_borderline_seconds_are_drawn_first(tmp_path):
    result, x = _walk(tmp_path)
    near, flagged = _borderline(x)
    assert near == {13, 14, 15, 16, 53, 54, 55, 56}  # 2 crossings: x 240, 280, 320, 360
    assert flagged == {35, 36, 37}
    # fewer samples than borderline seconds: every one is borderline, both kinds in turn
    few = draw_samples([result], 6, seed=3)
    assert len(few) == 6 and few["second"].is_unique
    assert set(few["second"]) <= near | flagged
    by_kind = few.groupby("picked_because")["second"].apply(set).to_dict()
    assert by_kind == {"near door": by_kind["near door"], "flagged": by_kind["flagged"]}
    assert len(by_kind["near door"]) == 3 and by_kind["near door"] <= near
    assert len(by_kind["flagged"]) == 3 and by_kind["flagged"] == flagged
    # the frame shown is the middle of its second; the key's detail gives the distance
    assert np.allclose(few["time_s"], few["second"] + 0.5)
    for row in few[few["picked_because"] == "near door"].itertuples(index=False):
        lengths = abs(x[row.second * 10 + 5] - _DOOR_X) / 90.0
        assert f"centroid {lengths:.2f} body lengths" in row.detail
    assert set(few.loc[few["picked_because"] == "flagged", "detail"]) == {
        "flagged: no detection"
    }

    # more samples: all 11 borderline seconds, then 19 random ones, all distinct
    many = draw_samples([result], 30, seed=3)
    assert len(many) == 30 and many["second"].is_unique
    borderline = many[many["picked_because"] != "random"]
    assert set(borderline["second"]) == near | flagged
    rest = many[many["picked_because"] == "random"]
    assert len(rest) == 19 and not set(rest["second"]) & (near | flagged)
    assert (rest["detail"] == "").all()

    # seeded: the same draw again; another seed draws other random seconds
    pd.testing.assert_frame_equal(draw_samples([result], 30, seed=3), many)
    other = draw_samples([result], 30, seed=4)
    assert set(other.loc[other["picked_because"] != "random", "second"]) == near | flagged
    assert set(other.loc[other["picked_because"] == "random", "second"]) != set(rest["second"])
    # as many samples as seconds: every second once
    assert sorted(draw_samples([result], 100, seed=0)["second"]) == list(range(60))


def test_near_door_scales_with_the_mouse(tmp_path):
    """The same walk with a mouse of a quarter the area (body length 45 px): only the
    seconds within 45 px of the door are near."""
    result, x = _walk(tmp_path, area_px=2500.0 / 4)
    middle = x[np.arange(60) * 10 + 5]
    near = {s for s in range(60) if abs(middle[s] - _DOOR_X) <= 45.0}
    assert near == {14, 15, 54, 55}  # x 280, 320
    drawn = draw_samples([result], 60, seed=1)
    assert set(drawn.loc[drawn["picked_because"] == "near door", "second"]) == near


def test_sheet_out_that_is_a_file_is_one_line_exit_1(video_factory, tmp_path_factory, tmp_path,
                                                     capsys):
    _, _, result_dir = tracked(video_factory, tmp_path_factory)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a folder")
    for out in (notes, notes / "sheet"):
        assert main(["review", str(result_dir), "--sample", "3", "--out", str(out)]) == 1
        assert capsys.readouterr().err == (
            f"error: {notes}: is a file, not a folder; give a folder for the agreement sheet\n"
        )
    assert notes.read_text() == "not a folder"
