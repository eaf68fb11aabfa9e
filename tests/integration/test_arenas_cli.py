"""Several boxes in one video, doors at an angle, masks and templates, against the truth.

Tolerances (from the issue): time in each chamber within 1 % of the video's duration of the
truth; median centroid error at most 3 px. The truth's chamber has no hysteresis, the
tracker's has (6 px): a mouse resting in a doorway less than 6 px past the line stays in
the chamber it came from. The seeds below are chosen so that the true track passed
through the same hysteresis stays within 0.5 % of the raw truth (seed 33: 0.17 s of 40 s;
seed 40: 0 s of 30 s), so what is measured here is detection and geometry.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from shapely.geometry import Point, Polygon

from cpp_tracker.cli import main

# two boxes side by side (480x160 lays them out in one row), one mouse each; box1 has one
# door tilted 25 degrees, box2 three chambers with doors tilted -15 degrees
TWO_BOXES = dict(width=480, height=160, duration_s=40.0, seed=33)

# a light mouse on a dark floor with a blinking light in box1 four times the usual size
# (the largest SceneSpec allows): when lit, the spot is a bigger blob than the mouse. The
# automatic threshold sits at half the mouse's own contrast, so only the spot's core passes
# it; at 3 times the size that core is smaller than the mouse and never takes the track.
BLINK = dict(duration_s=30.0, seed=40, mouse="light", floor="dark", distractor="blink",
             distractor_scale=4.0)


@pytest.fixture(scope="module")
def two_boxes(video_factory):
    from cpp_tracker.synthetic import ArenaSpec

    return video_factory(
        "two_boxes",
        arenas=(ArenaSpec(n_chambers=2, door_angle_deg=25.0, animal_id="m01"),
                ArenaSpec(n_chambers=3, door_angle_deg=-15.0, animal_id="m02")),
        **TWO_BOXES,
    )


@pytest.fixture(scope="module")
def two_boxes_run(two_boxes, tmp_path_factory):
    video, truth, config = two_boxes
    out = tmp_path_factory.mktemp("two_boxes_px")
    return run_track(video, config, out)


def run_track(video, config, out):
    code = main(["track", str(video), "--config", str(config), "--out", str(out),
                 "--no-progress"])
    result = out / video.stem
    assert code == 0
    return (
        pd.read_csv(result / "summary.csv"),
        pd.read_parquet(result / "track.parquet"),
        pd.read_csv(result / "occupancy.csv"),
        json.loads((result / "run.json").read_text()),
    )


def chamber_errors_s(summary, truth, arena) -> dict[str, float]:
    """Tracked minus true seconds per chamber of one arena."""
    true = truth.chamber_times().loc[arena]
    got = summary[summary["arena"] == arena].set_index("chamber")["time_s"]
    names = [c["name"] for a in truth.config["arenas"] if a["name"] == arena
             for c in a["chambers"]]
    return {c: float(got[c] - true.get(c, 0.0)) for c in names}


def centroid_errors_px(track, truth, arena) -> np.ndarray:
    mine = track[track["arena"] == arena].reset_index(drop=True)
    true = truth.track[truth.track["arena"] == arena].reset_index(drop=True)
    assert len(mine) == len(true)
    return np.hypot(mine["x"] - true["x"], mine["y"] - true["y"]).to_numpy()


# ------------------------------------------------------------------- several arenas
def test_the_scene_is_what_the_test_needs(two_boxes):
    _, truth, _ = two_boxes
    box1, box2 = truth.config["arenas"]
    # side by side, doors at an angle, three chambers in box2
    assert max(p[0] for p in box1["polygon"]) < min(p[0] for p in box2["polygon"])
    (x1, _), (x2, _) = box1["doors"][0]["line"]
    assert abs(x2 - x1) > 10
    assert len(box2["chambers"]) == 3
    # each mouse crosses at its own times
    crossings = {}
    for arena in ("box1", "box2"):
        chamber = truth.track.loc[truth.track["arena"] == arena, "chamber"].to_numpy()
        crossings[arena] = set(np.flatnonzero(chamber[1:] != chamber[:-1]))
        assert len(crossings[arena]) >= 3
    assert not crossings["box1"] & crossings["box2"]


def test_each_box_matches_its_own_truth(two_boxes, two_boxes_run):
    _, truth, _ = two_boxes
    summary, track, occupancy, run = two_boxes_run
    duration = truth.spec.duration_s
    for arena in ("box1", "box2"):
        errors = chamber_errors_s(summary, truth, arena)
        assert all(abs(e) <= 0.01 * duration for e in errors.values()), (arena, errors)
        assert np.nanmedian(centroid_errors_px(track, truth, arena)) <= 3.0
    # every output carries the arena; the summary carries each box's animal
    assert set(track["arena"]) == set(occupancy["arena"]) == {"box1", "box2"}
    animals = summary.groupby("arena")["animal_id"].unique().to_dict()
    assert {k: list(v) for k, v in animals.items()} == {"box1": ["m01"], "box2": ["m02"]}
    assert set(summary.loc[summary["arena"] == "box2", "chamber"]) == {
        "paired", "neutral", "unpaired", "unknown"}
    assert [d["arena"] for d in run["detection"]] == ["box1", "box2"]


def test_a_mouse_is_only_ever_found_in_its_own_box(two_boxes, two_boxes_run):
    _, truth, _ = two_boxes
    _, track, _, _ = two_boxes_run
    for arena in truth.config["arenas"]:
        outline = Polygon(arena["polygon"]).buffer(0.5)
        mine = track[(track["arena"] == arena["name"]) & track["detected"]]
        assert len(mine) > 0.97 * len(track) / 2
        assert all(outline.covers(Point(x, y)) for x, y in zip(mine["x"], mine["y"], strict=True))


# ------------------------------------------------------------------------------ templates
def template_from(truth_config: dict) -> dict:
    """The truth's pixel geometry redrawn in cm, with the box corners in pixels."""
    arenas = []
    for a in truth_config["arenas"]:
        ppc = a["px_per_cm"]
        (x0, y0) = a["polygon"][0]

        def cm(p, x0=x0, y0=y0, ppc=ppc):
            return [round((p[0] - x0) / ppc, 6), round((p[1] - y0) / ppc, 6)]

        arenas.append({
            "name": a["name"],
            "animal_id": a["animal_id"],
            "units": "cm",
            "corners_px": a["polygon"],
            "polygon": [cm(p) for p in a["polygon"]],
            "doors": [{"name": d["name"], "line": [cm(p) for p in d["line"]]} for d in a["doors"]],
            "chambers": [{"name": c["name"], "point": cm(c["point"])} for c in a["chambers"]],
        })
    return {"arenas": arenas}


def test_a_template_in_cm_gives_the_same_chambers(two_boxes, two_boxes_run, tmp_path):
    video, truth, _ = two_boxes
    template = template_from(truth.config)
    assert template["arenas"][0]["polygon"][2][0] == pytest.approx(60.0)  # cm_per_box_width
    config = tmp_path / "template.yaml"
    config.write_text(yaml.safe_dump(template, sort_keys=False))
    summary, track, _, run = run_track(video, config, tmp_path / "out")
    px_summary, px_track, _, _ = two_boxes_run
    assert (track["chamber"] == px_track["chamber"]).mean() >= 0.999
    cols = ["arena", "animal_id", "chamber", "time_s", "entries"]
    pd.testing.assert_frame_equal(summary[cols], px_summary[cols], atol=2 / truth.spec.fps)
    # cm follow from the corners: 60 cm across each box
    assert summary["distance_cm"].to_numpy() == pytest.approx(
        px_summary["distance_cm"].to_numpy(), rel=1e-3)
    # run.json keeps the template as written and the pixels it became
    resolved = run["config"]["resolved"]["arenas"][0]
    assert resolved["units"] == "cm" and resolved["corners_px"] == truth.config["arenas"][0][
        "polygon"]
    pixels = run["config"]["geometry_px"][0]
    assert pixels["px_per_cm"] == pytest.approx(truth.config["arenas"][0]["px_per_cm"], rel=1e-3)
    assert np.allclose(pixels["polygon"], truth.config["arenas"][0]["polygon"], atol=1e-3)


# ---------------------------------------------------------------------------------- masks
@pytest.fixture(scope="module")
def blink(video_factory):
    return video_factory("blink_scaled", **BLINK)


def test_without_a_mask_the_blinking_light_takes_the_track(blink, tmp_path):
    video, truth, config = blink
    summary, track, _, _ = run_track(video, config, tmp_path)
    err = centroid_errors_px(track, truth, "box1")
    assert (err > 10).mean() > 0.1  # the lit spot beats the mouse
    errors = chamber_errors_s(summary, truth, "box1")
    assert max(abs(e) for e in errors.values()) > 0.05 * truth.spec.duration_s


def test_a_mask_over_the_light_keeps_the_track_on_the_mouse(blink, tmp_path):
    video, truth, _ = blink
    config = dict(truth.config)
    config["arenas"] = [dict(config["arenas"][0], masks=[truth.distractor_polygon])]
    path = tmp_path / "masked.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    summary, track, _, _ = run_track(video, path, tmp_path)
    err = centroid_errors_px(track, truth, "box1")
    assert np.nanmedian(err) <= 3.0
    assert (err > 10).sum() == 0
    errors = chamber_errors_s(summary, truth, "box1")
    assert all(abs(e) <= 0.01 * truth.spec.duration_s for e in errors.values()), errors
