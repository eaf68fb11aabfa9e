"""One colour per chamber name: the palette, and the same colour in every picture."""

from __future__ import annotations

import json
import re

import cv2
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from shapely.geometry import Polygon

from cpp_tracker.config.settings import parse_config
from cpp_tracker.geometry.chambers import build_layout
from cpp_tracker.results.stored import load_result
from cpp_tracker.setup.draw_page import build_draw_page
from cpp_tracker.visual.palette import (
    OKABE_ITO,
    UNKNOWN_COLOUR,
    Colour,
    chamber_colours,
    chamber_order,
    page_palette,
)
from cpp_tracker.visual.plots import draw_qc_figure
from cpp_tracker.visual.preview import CHAMBER_TINT_ALPHA, render_preview
from cpp_tracker.visual.review import _draw_mouse, draw_geometry_overlay, overlay_geometry
from tests.results_helpers import tracked

#: Okabe & Ito's colours as they publish them (RGB 0-255), black left out.
PUBLISHED = {
    "orange": (230, 159, 0),
    "sky blue": (86, 180, 233),
    "bluish green": (0, 158, 115),
    "yellow": (240, 228, 66),
    "blue": (0, 114, 178),
    "vermillion": (213, 94, 0),
    "reddish purple": (204, 121, 167),
}


def two_box_config(first=("paired", "unpaired"), second=("unpaired", "paired", "neutral")):
    def box(name, x0, names):
        n = len(names)
        width = 280 // n
        return {
            "name": name,
            "polygon": [[x0, 20], [x0 + 280, 20], [x0 + 280, 220], [x0, 220]],
            "doors": [{"name": f"door{k}", "line": [[x0 + k * width, 20], [x0 + k * width, 220]]}
                      for k in range(1, n)],
            "chambers": [{"name": c, "point": [x0 + k * width + width // 2, 150]}
                         for k, c in enumerate(names)],
        }

    return parse_config({"arenas": [box("box1", 10, first), box("box2", 330, second)],
                         "chambers": {"hysteresis_px": 4}})


# --------------------------------------------------------------------------- the palette
def test_the_palette_is_okabe_ito_without_black():
    assert {c.name: c.rgb for c in OKABE_ITO} == PUBLISHED
    assert len({c.hex for c in OKABE_ITO}) == 7
    assert OKABE_ITO[0].name == "orange" and OKABE_ITO[-1].name == "yellow"
    assert UNKNOWN_COLOUR.rgb[0] == UNKNOWN_COLOUR.rgb[1] == UNKNOWN_COLOUR.rgb[2]  # grey


def test_colour_forms_agree():
    c = Colour("#E69F00")
    assert c.rgb == (230, 159, 0) and c.bgr == (0, 159, 230)
    assert c.rgb01 == pytest.approx((230 / 255, 159 / 255, 0.0))
    with pytest.raises(ValueError):
        Colour("E69F00")


def test_chamber_order_of_the_config_decides():
    config = two_box_config()
    assert chamber_order(config) == ["paired", "unpaired", "neutral"]
    colours = chamber_colours(config)
    assert colours == {"paired": OKABE_ITO[0], "unpaired": OKABE_ITO[1],
                       "neutral": OKABE_ITO[2], "unknown": UNKNOWN_COLOUR}
    # box2 lists its chambers the other way round: a name keeps its colour in every box
    assert chamber_colours(config.arenas[1].chamber_names)["unpaired"] == OKABE_ITO[0]
    # the order of the config, not the names, decides
    swapped = chamber_colours(two_box_config(first=("unpaired", "paired")))
    assert swapped["unpaired"] == OKABE_ITO[0] and swapped["paired"] == OKABE_ITO[1]
    # deterministic: the same config, the same colours, every time
    assert chamber_colours(two_box_config()) == colours


def test_names_in_order_and_cycling():
    colours = chamber_colours([f"c{k}" for k in range(9)] + ["c0", "unknown"])
    assert list(colours) == [f"c{k}" for k in range(9)] + ["unknown"]
    assert colours["c7"] == OKABE_ITO[0] and colours["c8"] == OKABE_ITO[1]
    assert colours["unknown"] == UNKNOWN_COLOUR
    assert chamber_colours([]) == {"unknown": UNKNOWN_COLOUR}


# ------------------------------------------------------- the same colour in every picture
def _inner_pixels(piece: Polygon, shape, margin: float) -> np.ndarray:
    """(row, column) of the pixels at least ``margin`` px inside ``piece``."""
    inner = piece.buffer(-margin)
    mask = np.zeros(shape[:2], np.uint8)
    for p in getattr(inner, "geoms", [inner]):
        cv2.fillPoly(mask, [np.asarray(p.exterior.coords).round().astype(np.int32)], 1)
    return np.argwhere(mask > 0)


def preview_colour(image: np.ndarray, background: np.ndarray, piece: Polygon) -> np.ndarray:
    """The tint of a chamber in the preview: every pixel of its piece un-blended from the
    floor (``floor + alpha * (colour - floor)``), the median (labels and points drawn on
    a few pixels do not count)."""
    rows, cols = _inner_pixels(piece, image.shape, margin=6).T
    floor = background[rows, cols].astype(float)[:, None]
    tint = (image[rows, cols].astype(float) - (1 - CHAMBER_TINT_ALPHA) * floor)
    return np.median(tint / CHAMBER_TINT_ALPHA, axis=0)


def qc_label_colour(fig, name: str) -> np.ndarray:
    """The colour of a chamber's label box at its point in qc.png's trajectory panel: the
    figure drawn as it is, and again with that box black; their difference is the box's
    colour times its opacity where the box shows (the text on it is the same in both)."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    label = next(t for t in fig.axes[0].texts if t.get_text() == name)
    box = label.get_bbox_patch()
    canvas.draw()
    drawn = np.asarray(canvas.buffer_rgba())[:, :, :3].astype(float)
    face = box.get_facecolor()
    box.set_facecolor((0, 0, 0, face[3]))
    canvas.draw()
    black = np.asarray(canvas.buffer_rgba())[:, :, :3].astype(float)
    box.set_facecolor(face)
    diff = drawn - black
    strength = diff.sum(axis=2)
    full = strength >= 0.9 * strength.max()  # the pixels the box covers wholly
    assert full.sum() > 50, "the label box was not found"
    return np.median(diff[full], axis=0) / face[3]


@pytest.fixture(scope="module")
def result(video_factory, tmp_path_factory):
    return load_result(tracked(video_factory, tmp_path_factory)[2])


def test_a_chamber_has_one_colour_in_preview_qc_figure_and_overlay(result):
    config = result.config
    background = result.background()
    colours = chamber_colours(config)
    preview = render_preview(background, config)
    fig, _ = draw_qc_figure(result)
    geo = overlay_geometry(config)
    arena = config.arenas[0]
    layout = build_layout(arena, config.chambers.hysteresis_px)
    assert len(arena.chambers) >= 2
    for chamber, piece in zip(arena.chambers, layout.pieces, strict=True):
        want = np.array(colours[chamber.name].rgb, dtype=float)
        in_preview = preview_colour(preview, background, piece)
        in_qc = qc_label_colour(fig, chamber.name)
        # the overlay (review clips, overlays, agreement thumbnails): the mouse's dot, drawn
        # in the colour of the chamber it is in, at the chamber's point
        frame = cv2.cvtColor(background, cv2.COLOR_GRAY2BGR)
        draw_geometry_overlay(frame, geo, 1.0)
        x, y = chamber.point
        _draw_mouse(frame, geo, 1.0, 0, float(x), float(y), chamber.name, None)
        in_overlay = frame[int(round(y)), int(round(x))][::-1].astype(float)
        for where, got in (("preview", in_preview), ("qc.png", in_qc),
                           ("overlay", in_overlay)):
            assert np.abs(got - want).max() <= 4, (chamber.name, where, got, want)
        assert np.abs(in_preview - in_qc).max() <= 6
    names = [c.name for c in arena.chambers]
    assert colours[names[0]] != colours[names[1]]


def test_a_name_has_one_colour_in_every_arena_of_the_preview():
    """box2 lists its chambers in another order than box1: 'paired' is still one colour."""
    config = two_box_config()
    background = np.full((240, 640), 110, np.uint8)
    image = render_preview(background, config)
    colours = chamber_colours(config)
    seen: dict[str, list[np.ndarray]] = {}
    for arena in config.arenas:
        layout = build_layout(arena, config.chambers.hysteresis_px)
        for name, piece in zip(layout.chamber_names, layout.pieces, strict=True):
            seen.setdefault(name, []).append(preview_colour(image, background, piece))
    assert set(seen) == {"paired", "unpaired", "neutral"}
    for name, found in seen.items():
        for got in found:
            assert np.abs(got - colours[name].rgb).max() <= 4, (name, got)
    assert len(seen["paired"]) == len(seen["unpaired"]) == 2


# -------------------------------------------------------------------------- the draw page
def test_the_draw_page_carries_the_palette():
    html = build_draw_page(np.zeros((48, 64), np.uint8), video="box.mp4")
    text = re.search(r'<script id="data" type="application/json">(.*?)</script>', html, re.S)
    palette = json.loads(text.group(1))["palette"]
    assert palette == page_palette()
    assert [tuple(c) for c in palette["chambers"]] == [c.rgb for c in OKABE_ITO]
    assert tuple(palette["unknown"]) == UNKNOWN_COLOUR.rgb
    script = html[html.rindex("<script>"):]
    # the page's script colours chambers from that palette only: no list of its own
    assert "DATA.palette" in script
    assert not re.search(r"\[\s*\d{1,3}\s*,\s*\d{1,3}\s*,\s*\d{1,3}\s*\]", script)
