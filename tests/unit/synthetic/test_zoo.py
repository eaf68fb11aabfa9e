"""The scene zoo: deterministic draws, a tuning set and a held-out set kept apart."""

from __future__ import annotations

import pytest

from cpp_tracker.synthetic import SceneSpec, body_length_px, make_scene
from cpp_tracker.synthetic.zoo import (
    BODY_LENGTH_RANGE_PX,
    DIMENSIONS,
    HELD_OUT_FIRST_SEED,
    HELD_OUT_PAIRS,
    draw_scene,
    held_out_scenes,
    tuning_scenes,
)


def _has(scene, pair) -> bool:
    return all(scene.choices[name] == value for name, value in pair)


def test_the_same_seed_draws_the_same_scene():
    assert draw_scene(3) == draw_scene(3)
    assert draw_scene(3).spec != draw_scene(4).spec


def test_tuning_scenes_never_combine_a_held_out_pair():
    for scene in tuning_scenes(200, duration_s=5.0):
        assert not scene.held_out and scene.seed < HELD_OUT_FIRST_SEED
        assert not any(_has(scene, pair) for pair in HELD_OUT_PAIRS), scene.label


def test_every_held_out_scene_combines_a_held_out_pair():
    scenes = held_out_scenes(60, duration_s=5.0)
    assert all(s.held_out and s.seed >= HELD_OUT_FIRST_SEED for s in scenes)
    assert all(any(_has(s, pair) for pair in HELD_OUT_PAIRS) for s in scenes)
    # every pair turns up in 60 draws (7 pairs)
    assert {p for s in scenes for p in HELD_OUT_PAIRS if _has(s, p)} == set(HELD_OUT_PAIRS)


def test_draws_span_the_dimensions():
    scenes = tuning_scenes(150, duration_s=5.0) + held_out_scenes(50, duration_s=5.0)
    for name, values in DIMENSIONS.items():
        seen = {s.choices[name] for s in scenes}
        assert seen == set(values), f"{name}: never drew {set(values) - seen}"


def test_every_drawn_mouse_is_as_large_as_real_cameras_show_it():
    low, high = BODY_LENGTH_RANGE_PX
    for scene in tuning_scenes(40, duration_s=5.0) + held_out_scenes(40, duration_s=5.0):
        assert all(low <= length <= high for length in body_length_px(scene.spec))
        assert not (scene.choices["mouse"] == "light" and scene.choices["floor"] == "light")
        assert not (scene.choices["mouse"] == "dark" and scene.choices["floor"] == "dark"
                    and scene.choices["box"] == "step light|dark")


@pytest.mark.parametrize("size", [1.0, 1.8])
def test_mouse_size_scales_the_body_and_keeps_the_box(size):
    base = SceneSpec(duration_s=4.0, seed=2)
    bigger = SceneSpec(duration_s=4.0, seed=2, mouse_size=size)
    assert body_length_px(bigger)[0] == pytest.approx(size * body_length_px(base)[0])
    assert make_scene(bigger).config["arenas"] == make_scene(base).config["arenas"]


def test_mouse_size_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="mouse_size"):
        SceneSpec(mouse_size=3.0)
