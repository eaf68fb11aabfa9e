"""propose: the geometry found in empty-box images of generated scenes, against their truth.

The backgrounds are the generator's clean empty-box images (``make_scene``, no video) with
sensor-like noise added, so many floors and walls are cheap to try. Tolerances: corners and
door lines within 2 px of the truth (the truth is exact; the image is blurred by
anti-aliasing and the generator's wall shadows, and a few pixels is what a person clicking
would achieve).
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from shapely.geometry import LineString, Polygon

from cpp_tracker.config.settings import parse_config
from cpp_tracker.setup.propose import (
    Finding,
    proposal_to_config,
    proposal_to_yaml,
    propose_geometry,
)
from cpp_tracker.synthetic import ArenaSpec, SceneSpec, make_scene

TOLERANCE_PX = 2.0


def _background(seed: int = 0, **fields) -> tuple[np.ndarray, dict]:
    truth = make_scene(SceneSpec(duration_s=2.0, seed=seed, **fields))
    rng = np.random.default_rng(seed)
    noisy = truth.background.astype(float) + rng.normal(0, 1.0, truth.background.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8), truth.config


def corner_error(polygon, truth_polygon) -> float:
    """Largest distance from a true corner to the nearest proposed corner, px."""
    return max(
        min(float(np.hypot(p[0] - t[0], p[1] - t[1])) for p in polygon) for t in truth_polygon
    )


def door_error(door_line, truth_line, truth_polygon) -> float:
    """Hausdorff distance between the two lines clipped to the true outline, px."""
    poly = Polygon(truth_polygon)
    return poly.intersection(LineString(door_line)).hausdorff_distance(
        poly.intersection(LineString(truth_line))
    )


def assert_matches_truth(proposal, config: dict) -> None:
    assert len(proposal.arenas) == len(config["arenas"])
    for arena, true in zip(proposal.arenas, config["arenas"], strict=True):
        assert arena.outline_found
        assert corner_error(arena.polygon, true["polygon"]) <= TOLERANCE_PX, (
            arena.polygon, true["polygon"])
        assert len(arena.doors) == len(true["doors"]), (arena.doors, true["doors"])
        for td in true["doors"]:
            best = min(door_error(d.line, td["line"], true["polygon"]) for d in arena.doors)
            assert best <= TOLERANCE_PX, (td["line"], [d.line for d in arena.doors])
        assert len(arena.chambers) == len(true["chambers"])


SCENES = {
    "2ch light floor, dark walls": dict(floor="light", wall="dark"),
    "2ch grey floor, light walls": dict(floor="grey", wall="light"),
    "2ch dark floor, light walls": dict(floor="dark", wall="light", mouse="light"),
    "3ch light floor, dark walls": dict(floor="light", wall="dark",
                                        arenas=(ArenaSpec(n_chambers=3),)),
    "3ch grey floor, light walls": dict(floor="grey", wall="light",
                                        arenas=(ArenaSpec(n_chambers=3),)),
    "3ch dark floor, light walls, plain": dict(floor="dark", wall="light", floor_texture=False,
                                               arenas=(ArenaSpec(n_chambers=3),)),
    "2ch doors at 20 degrees": dict(floor="grey", wall="dark",
                                    arenas=(ArenaSpec(n_chambers=2, door_angle_deg=20),)),
    "3ch doors at -12 degrees": dict(floor="light", wall="light",
                                     arenas=(ArenaSpec(n_chambers=3, door_angle_deg=-12),)),
}


@pytest.mark.parametrize("name", list(SCENES))
def test_outline_and_doors_from_the_image_alone(name):
    background, config = _background(**SCENES[name])
    proposal = propose_geometry(background)
    assert_matches_truth(proposal, config)
    assert proposal.doors_found
    for f in proposal.findings:
        assert 0.0 <= f.confidence <= 1.0 and f.evidence


def test_the_chamber_count_picks_that_many_doors():
    background, config = _background(floor="light", wall="dark",
                                     arenas=(ArenaSpec(n_chambers=3),))
    proposal = propose_geometry(background, n_chambers=3)
    assert_matches_truth(proposal, config)


def test_two_boxes_stacked_in_one_view():
    background, config = _background(floor="grey", wall="dark",
                                     arenas=(ArenaSpec(), ArenaSpec(n_chambers=3)))
    proposal = propose_geometry(background, n_arenas=2)
    assert [a.name for a in proposal.arenas] == ["box1", "box2"]
    assert_matches_truth(proposal, config)


def test_four_boxes_in_a_grid():
    background, config = _background(
        width=640, height=480, floor="light", wall="dark", arenas=(ArenaSpec(),) * 4)
    proposal = propose_geometry(background, n_arenas=4)
    assert_matches_truth(proposal, config)


@pytest.mark.parametrize("floor,wall", [("light", "dark"), ("grey", "light")])
def test_an_open_field_gets_no_doors(floor, wall):
    background, config = _background(floor=floor, wall=wall, arenas=(ArenaSpec(n_chambers=1),))
    for n_chambers in (None, 2):
        proposal = propose_geometry(background, n_chambers=n_chambers)
        assert not proposal.doors_found
        arena = proposal.arenas[0]
        assert corner_error(arena.polygon, config["arenas"][0]["polygon"]) <= TOLERANCE_PX
        assert len(arena.chambers) == 1


def test_nothing_in_the_image_gives_a_template_not_a_guess():
    flat = np.full((240, 320), 120, np.uint8)
    proposal = propose_geometry(flat)
    assert not proposal.outline_found and not proposal.doors_found
    assert proposal.arenas[0].outline.confidence == 0.0
    assert "NOT FOUND" in proposal.arenas[0].outline.evidence
    text = proposal_to_yaml(proposal)
    assert "OUTLINE NOT FOUND" in text and "NO DOORS FOUND" in text
    parse_config(yaml.safe_load(text))  # the template itself is a valid config


def test_the_chamber_points_lie_in_their_own_pieces():
    background, _ = _background(floor="light", wall="dark", arenas=(ArenaSpec(n_chambers=3),))
    proposal = propose_geometry(background)
    config = parse_config(proposal_to_config(proposal))  # raises if two share a piece
    arena = config.arenas[0]
    assert arena.chamber_names == ("chamber_1", "chamber_2", "chamber_3")
    xs = [c.point[0] for c in arena.chambers]
    assert xs == sorted(xs)  # numbered left to right


def test_the_yaml_is_commented_and_valid():
    background, _ = _background(floor="grey", wall="light")
    proposal = propose_geometry(background)
    text = proposal_to_yaml(proposal, video="night1.mp4", preview="box_preview.png",
                            version="9.9")
    config = parse_config(yaml.safe_load(text))
    assert config.arenas[0].chamber_names == ("chamber_1", "chamber_2")
    assert "box_preview.png" in text and "night1.mp4" in text
    assert "# What init found" in text and "door_1" in text
    for key in ("polygon:", "doors:", "chambers:", "masks:", "hysteresis_px:"):
        line = next(ln for ln in text.splitlines() if key in ln and not ln.lstrip().startswith("#"))
        assert line
    # the settings carry comments that explain them
    settings = text.split("# The settings below")[1]
    for key in ("samples", "animal", "threshold", "opening_px", "hysteresis_px", "gap_factor",
                "min_step_px"):
        line = next(ln for ln in settings.splitlines() if ln.startswith(f"  {key}:"))
        assert "  # " in line, line


def test_confidence_levels_are_words():
    assert Finding("x", 0.9, "").level == "high"
    assert Finding("x", 0.6, "").level == "medium"
    assert Finding("x", 0.2, "").level == "low"


def test_a_colour_image_is_refused():
    with pytest.raises(ValueError, match="2-d grayscale"):
        propose_geometry(np.zeros((10, 10, 3), np.uint8))


def test_asking_for_more_boxes_than_there_are_gives_templates_that_do_not_overlap():
    background, _ = _background(floor="light", wall="dark")
    for n in (2, 3):
        proposal = propose_geometry(background, n_arenas=n)
        assert len(proposal.arenas) == n and not proposal.outline_found
        parse_config(proposal_to_config(proposal))  # no overlap, every point in its arena
        assert any("of the" in note for note in proposal.notes)


@pytest.mark.parametrize(("coverage", "said"), [
    (1.0, "four straight edges cover the whole of each side"),
    (0.83, "four straight edges cover at least 83 % of each side"),
    (0.0, "a side of the floor shows no straight edge (the outline there is a guess)"),
])
def test_the_outline_evidence_says_what_was_seen(coverage, said):
    """Not 'cover 0 % or more' (true of anything) nor 'at least 100 %'."""
    from types import SimpleNamespace

    from cpp_tracker.setup.propose import _outline_finding

    choices = [SimpleNamespace(how="single", band_px=0.0)] * 4
    finding = _outline_finding("box1", SimpleNamespace(clean=True), choices,
                               (coverage, 1.0, 1.0, 1.0), 0)
    assert finding.evidence.startswith(said)
