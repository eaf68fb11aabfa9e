"""geometry.measures: the areas and lengths check-config prints, in px and cm."""

from __future__ import annotations

import math

import pytest

from cpp_tracker.config.settings import parse_config
from cpp_tracker.geometry.measures import AreaMeasure, LengthMeasure, measure_arena, measure_arenas


def arena(**fields):
    base = {
        "name": "box",
        "polygon": [[0, 0], [100, 0], [100, 50], [0, 50]],
        "doors": [{"name": "door", "line": [[50, 0], [50, 50]]}],
        "chambers": [{"name": "left", "point": [25, 25]}, {"name": "right", "point": [75, 25]}],
    }
    return parse_config({"arenas": [dict(base, **fields)]}).arenas[0]


def test_a_plain_scale_divides_by_px_per_cm():
    # 100 x 50 px at 2 px/cm: 50 x 25 cm = 1250 cm²; a mask half outside the floor
    m = measure_arena(arena(px_per_cm=2.0, masks=[[[90, -10], [110, -10], [110, 10], [90, 10]]]))
    assert m.arena == "box" and m.has_cm
    assert m.outline == AreaMeasure("outline", 5000.0, 1250.0, None)
    assert m.chambers == (AreaMeasure("left", 2500.0, 625.0, 50.0),
                          AreaMeasure("right", 2500.0, 625.0, 50.0))
    assert m.doors == (LengthMeasure("door", 50.0, 25.0),)
    assert m.masks == (AreaMeasure("0", 100.0, 25.0, 2.0),)  # only the 10 x 10 px inside


def test_without_a_scale_there_are_no_cm():
    m = measure_arena(arena())
    assert not m.has_cm
    assert m.outline == AreaMeasure("outline", 5000.0, None, None)
    assert m.doors == (LengthMeasure("door", 50.0, None),)
    assert m.chambers[0].percent_of_arena == 50.0


def test_scale_points_give_px_per_cm():
    m = measure_arena(arena(scale={"points": [[0, 0], [40, 0]], "distance_cm": 10}))
    assert m.outline.cm2 == pytest.approx(5000 / 16)  # 4 px/cm
    assert m.doors[0].cm == pytest.approx(12.5)


def test_a_template_is_measured_on_the_drawing_itself():
    # a 60 x 40 cm floor seen at a slant: the px areas differ, the cm are the drawing's
    a = parse_config({"arenas": [{
        "name": "box1", "units": "cm",
        "corners_px": [[70, 50], [570, 50], [600, 430], [40, 430]],
        "polygon": [[0, 0], [60, 0], [60, 40], [0, 40]],
        "doors": [{"name": "left_door", "line": [[24, 0], [24, 40]]},
                  {"name": "right_door", "line": [[36, 0], [36, 40]]}],
        "chambers": [{"name": "paired", "point": [12, 20]},
                     {"name": "neutral", "point": [30, 20]},
                     {"name": "unpaired", "point": [48, 20]}],
        "masks": [[[55, 1], [59, 1], [59, 5], [55, 5]]],
    }]}).arenas[0]
    m = measure_arena(a)
    assert m.outline.px2 == pytest.approx((500 + 560) / 2 * 380)  # the trapezoid in px
    assert m.outline.cm2 == pytest.approx(2400)
    assert [c.cm2 for c in m.chambers] == pytest.approx([960, 480, 960])
    assert [c.percent_of_arena for c in m.chambers] == pytest.approx([40, 20, 40], abs=0.1)
    assert [d.cm for d in m.doors] == pytest.approx([40, 40])
    # the doors run from (270, 50) to (264, 430) px and from (370, 50) to (376, 430) px
    assert [d.px for d in m.doors] == pytest.approx([math.hypot(6, 380)] * 2)
    assert m.masks[0].cm2 == pytest.approx(16, rel=1e-5)  # px corners kept to 1e-4 px


def test_measure_arenas_keeps_the_order():
    config = parse_config({"arenas": [
        {"name": "a", "polygon": [[0, 0], [10, 0], [10, 10], [0, 10]],
         "chambers": [{"name": "c", "point": [5, 5]}]},
        {"name": "b", "polygon": [[20, 0], [40, 0], [40, 10], [20, 10]],
         "chambers": [{"name": "c", "point": [30, 5]}], "px_per_cm": 1},
    ]})
    a, b = measure_arenas(config.arenas)
    assert (a.arena, a.outline.px2, a.outline.cm2) == ("a", 100.0, None)
    assert (b.arena, b.outline.px2, b.outline.cm2) == ("b", 200.0, 200.0)
