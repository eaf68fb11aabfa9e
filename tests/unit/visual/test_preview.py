"""The preview picture: the video's size, and drawn where the config says."""

from __future__ import annotations

import numpy as np
import pytest

from cpp_tracker.config.settings import parse_config
from cpp_tracker.visual.palette import chamber_colours
from cpp_tracker.visual.preview import CHAMBER_TINT_ALPHA, render_preview, scale_bar_cm


def config(**arena_extra):
    return parse_config(
        {
            "arenas": [
                {
                    "name": "box1",
                    "polygon": [[20, 20], [300, 20], [300, 220], [20, 220]],
                    "doors": [{"name": "door1", "line": [[160, 20], [160, 220]]}],
                    "chambers": [
                        {"name": "left", "point": [90, 120]},
                        {"name": "right", "point": [230, 120]},
                    ],
                    **arena_extra,
                }
            ],
            "chambers": {"hysteresis_px": 8},
        }
    )


@pytest.mark.parametrize("shape", [(240, 320), (480, 640), (1070, 1064), (240, 320, 3)])
def test_picture_has_the_size_of_the_frame(shape):
    background = np.full(shape, 128, np.uint8)
    image = render_preview(background, config())
    assert image.shape == (shape[0], shape[1], 3)
    assert image.dtype == np.uint8


def test_chambers_are_tinted_with_different_colours_and_outside_is_untouched():
    background = np.full((240, 320), 128, np.uint8)
    image = render_preview(background, config()).astype(int)
    # outside the arena: the background as it was
    assert np.all(np.abs(image[5, 5] - 128) <= 1)
    left, right = image[180, 60], image[180, 250]
    # inside: tinted towards the chambers' colours (the palette's first two: orange, sky blue)
    colours = chamber_colours(["left", "right"])
    for pixel, name in ((left, "left"), (right, "right")):
        expected = 128 + CHAMBER_TINT_ALPHA * (np.array(colours[name].rgb) - 128)
        assert np.all(np.abs(pixel - expected) <= 3), (pixel, expected)


def test_door_and_hysteresis_band_are_drawn_where_configured():
    background = np.full((240, 320), 60, np.uint8)
    image = render_preview(background, config()).astype(int)
    row = image[170]
    # the door line itself (white core) at x = 160
    assert row[160].min() > 200
    # inside the band (8 px each side) the floor is veiled lighter than just outside it
    assert row[165].mean() > row[175].mean() + 20
    assert row[155].mean() > row[145].mean() + 20


def test_masks_are_hatched():
    background = np.full((240, 320), 128, np.uint8)
    plain = render_preview(background, config()).astype(int)
    masked = render_preview(
        background, config(masks=[[[40, 40], [100, 40], [100, 100], [40, 100]]])
    ).astype(int)
    inside = masked[45:95, 45:95]
    # darkened with light hatch lines: both dark and light pixels appear
    assert inside.mean() < plain[45:95, 45:95].mean() - 20
    assert inside.max() > 200


def test_scale_bar_only_with_a_scale():
    background = np.full((240, 320), 60, np.uint8)
    without = render_preview(background, config())
    with_scale = render_preview(background, config(px_per_cm=4.0))
    # the bar: bottom-left inside the arena, 8 % above the bottom edge
    region = (slice(195, 212), slice(30, 110))
    assert (with_scale[region] > 240).all(axis=2).sum() > 50
    assert (without[region] > 240).all(axis=2).sum() == 0


@pytest.mark.parametrize(
    "width_px, px_per_cm, expected", [(280, 4.0, 20), (280, 1.0, 50), (60, 10.0, 1), (640, 13, 10)]
)
def test_scale_bar_length_is_round_and_fits(width_px, px_per_cm, expected):
    assert scale_bar_cm(width_px, px_per_cm) == expected
