"""A picture of what a config defines, drawn on the video's background image.

``cpp-tracker preview`` draws, on the empty-box image of a video, each arena's outline, its
door lines with the hysteresis band around them (the strip a centroid must cross before
its chamber changes), the chambers tinted and named, the configured chamber points, the
masks (hatched) and a scale bar where the arena has a scale. The picture has the video's
size, so every drawn line sits on the pixels the tracker uses; text and lines grow with the
frame so the picture stays legible from 320x240 to HD.

Drawing lives here and only here: detection never draws, and this module never detects.
Chamber colours come from :mod:`cpp_tracker.visual.palette` (Okabe-Ito, in the config's
chamber order), as in every other picture of the tool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.patheffects import withStroke
from shapely.geometry import Point, Polygon
from shapely.ops import polylabel, unary_union

from ..config.settings import Config
from ..geometry.chambers import build_layout
from .palette import chamber_colours

__all__ = ["CHAMBER_TINT_ALPHA", "render_preview", "preview_video", "scale_bar_cm"]

#: Opacity of a chamber's tint over the floor (a pixel shows ``floor + alpha * (colour -
#: floor)``).
CHAMBER_TINT_ALPHA = 0.28
_OUTLINE = (0.941, 0.894, 0.259)  # yellow, with a black edge: visible on light and dark
_DOOR = (1.0, 1.0, 1.0)
_BAND = (1.0, 1.0, 1.0)
_NICE_CM = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def scale_bar_cm(width_px: float, px_per_cm: float) -> float:
    """The longest round length (cm) whose bar fits in 30 % of ``width_px`` (at least 1 cm)."""
    fits = [c for c in _NICE_CM if c * px_per_cm <= 0.3 * width_px]
    return fits[-1] if fits else _NICE_CM[0]


def _patch(geom, **kw) -> list[PathPatch]:
    """Matplotlib patches for a (multi)polygon, holes included."""
    polys = getattr(geom, "geoms", [geom])
    out = []
    for p in polys:
        if not isinstance(p, Polygon) or p.is_empty:
            continue
        rings = [np.asarray(p.exterior.coords)] + [np.asarray(r.coords) for r in p.interiors]
        verts = np.concatenate(rings)
        codes = np.concatenate(
            [[MplPath.MOVETO] + [MplPath.LINETO] * (len(r) - 2) + [MplPath.CLOSEPOLY]
             for r in rings]
        )
        out.append(PathPatch(MplPath(verts, codes), **kw))
    return out


def _map(h: np.ndarray, pts) -> np.ndarray:
    a = np.asarray(pts, dtype=float).reshape(-1, 2)
    hom = np.c_[a, np.ones(len(a))] @ h.T
    return hom[:, :2] / hom[:, 2:3]


def render_preview(background: np.ndarray, config: Config) -> np.ndarray:
    """Draw ``config`` on ``background`` and return an RGB image of the same size.

    Parameters
    ----------
    background
        The empty-box image, (h, w) grayscale or (h, w, 3) RGB, uint8.
    config
        A validated configuration (pixel geometry).

    Returns
    -------
    numpy.ndarray
        (h, w, 3) uint8, RGB.
    """
    background = np.asarray(background)
    h, w = background.shape[:2]
    ax = _image_axes(background)
    pen = _pen_for(h)
    # the band a centroid must cross: none under body_fraction, which does not use it
    hyst = config.chambers.hysteresis_px if config.chambers.rule == "point" else 0.0
    colour_of = {name: c.rgb01 for name, c in chamber_colours(config).items()}
    for arena in config.arenas:
        _draw_arena(ax, arena, hyst, colour_of, pen)
    _place_legend(ax, _legend_handles(config, hyst), config, pen.small_px, (h, w))
    return _rendered(ax, h, w)


@dataclass(frozen=True)
class _Pen:
    """Text and line sizes (px) for one picture, and the black edge that keeps white
    text legible on any floor."""

    font_px: float
    small_px: float
    line_px: float
    stroke: list


def _pen_for(height: int) -> _Pen:
    """Sizes that grow with the frame, so that the picture stays legible from 240 px to HD."""
    font_px = max(9.0, height / 34)
    return _Pen(
        font_px=font_px,
        small_px=max(8.0, 0.8 * font_px),
        line_px=max(1.0, height / 240),
        stroke=[withStroke(linewidth=max(2.0, font_px / 4), foreground="black")],
    )


def _image_axes(background: np.ndarray):
    """Axes that fill a figure of the background's size, showing the background."""
    h, w = background.shape[:2]
    # 72 dpi: one point is one pixel, so sizes below are in pixels of the video
    fig = Figure(figsize=(w / 72, h / 72), dpi=72)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    # pixel centres at integer coordinates, as in OpenCV and the config
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    if background.ndim == 2:
        ax.imshow(background, cmap="gray", vmin=0, vmax=255, extent=extent,
                  interpolation="nearest")
    else:
        ax.imshow(background, extent=extent, interpolation="nearest")
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    return ax


def _draw_arena(ax, arena, hyst: float, colour_of: dict[str, tuple], pen: _Pen) -> None:
    """Chambers, masks, door bands and lines, the outline with the arena's name, and the
    scale bar, in that order (later ones on top at equal z-order)."""
    layout = build_layout(arena, hyst)
    _draw_chambers(ax, arena, layout, colour_of, pen)
    _draw_masks(ax, arena, layout, pen)
    for door, seg in zip(arena.doors, layout.door_segments, strict=True):
        _draw_door(ax, door.name, seg, layout.polygon, hyst, pen)
    _draw_outline(ax, arena, layout.polygon, pen)
    _draw_scale_bar(ax, arena, layout.polygon, pen.small_px, pen.line_px, pen.stroke)


def _draw_chambers(ax, arena, layout, colour_of: dict[str, tuple], pen: _Pen) -> None:
    """Each chamber tinted, its configured point, and its name."""
    for k, (name, piece) in enumerate(zip(layout.chamber_names, layout.pieces, strict=True)):
        colour = colour_of[name]
        for p in _patch(piece, facecolor=(*colour, CHAMBER_TINT_ALPHA), edgecolor="none"):
            ax.add_patch(p)
        px, py = arena.chambers[k].point
        ax.plot([px], [py], marker="o", markersize=max(4.0, pen.font_px / 2),
                markerfacecolor=colour, markeredgecolor="black", zorder=6)
        at = _chamber_name_at(piece, (px, py), pen.font_px)
        ax.text(at[0], at[1], name, color="white", fontsize=pen.font_px, ha="center",
                va="bottom", fontweight="bold", path_effects=pen.stroke, zorder=6)


def _chamber_name_at(piece: Polygon, point, font_px: float) -> tuple[float, float]:
    """Where a chamber's name goes: just above the configured point (the user's "middle
    of the chamber"), or at the piece's pole of inaccessibility if that is too close to
    the top wall."""
    px, py = point
    at = (px, py - 0.6 * font_px)
    if piece.exterior.distance(Point(at)) < 1.2 * font_px or not piece.contains(Point(at)):
        pole = polylabel(piece, tolerance=1.0)
        at = (pole.x, pole.y)
    return at


def _draw_masks(ax, arena, layout, pen: _Pen) -> None:
    """The masks, hatched: what the tracker ignores."""
    for m in arena.masks:
        hidden = Polygon(m).intersection(layout.polygon)
        for p in _patch(hidden, facecolor=(0, 0, 0, 0.45), edgecolor="white",
                        hatch="///", linewidth=pen.line_px, zorder=3):
            ax.add_patch(p)


def _draw_door(ax, name: str, seg, polygon: Polygon, hyst: float, pen: _Pen) -> None:
    """A door's hysteresis band, then the door line on top, then its name."""
    line_px = pen.line_px
    if hyst > 0:
        _draw_band(ax, seg.buffer(hyst).intersection(polygon), line_px)
    for line in getattr(seg, "geoms", [seg]):
        xy = np.asarray(line.coords)
        ax.plot(xy[:, 0], xy[:, 1], color=_DOOR, linewidth=2 * line_px, zorder=5,
                solid_capstyle="butt",
                path_effects=[withStroke(linewidth=4 * line_px, foreground="black",
                                         capstyle="butt")])
    if seg.geom_type == "LineString" and seg.length > 0:
        _label_door(ax, name, seg, hyst, pen)


def _draw_band(ax, band, line_px: float) -> None:
    """The band: a light veil edged by a black-and-white dashed line, visible on light and
    dark floors alike."""
    for p in _patch(band, facecolor=(*_BAND, 0.35), edgecolor="none", zorder=4):
        ax.add_patch(p)
    for part in getattr(band, "geoms", [band]):
        if isinstance(part, Polygon):
            xy = np.asarray(part.exterior.coords)
            ax.plot(xy[:, 0], xy[:, 1], color="black", gapcolor="white",
                    linestyle=(0, (3, 3)), linewidth=max(0.8, 0.7 * line_px), zorder=4)


def _label_door(ax, name: str, seg, hyst: float, pen: _Pen) -> None:
    """The door's name beside its line, a fifth of the way along, off the band."""
    (ax_, ay_), (bx_, by_) = np.asarray(seg.coords)[[0, -1]]
    nx, ny = (by_ - ay_) / seg.length, -(bx_ - ax_) / seg.length
    if ny > 0 or (ny == 0 and nx < 0):
        nx, ny = -nx, -ny  # above (or right of) the line
    tip = np.asarray(seg.interpolate(0.2, normalized=True).coords)[0]
    off = hyst + 2 * pen.line_px + 0.2 * pen.small_px
    if abs(nx) > abs(ny):
        ha, va = ("left" if nx > 0 else "right"), "center"
    else:
        ha, va = "center", ("bottom" if ny < 0 else "top")
    ax.text(tip[0] + nx * off, tip[1] + ny * off, name, color="white",
            fontsize=pen.small_px, ha=ha, va=va, path_effects=pen.stroke, zorder=6)


def _draw_outline(ax, arena, polygon: Polygon, pen: _Pen) -> None:
    """The arena outline, and its name at the outline's top-left corner, just inside."""
    line_px, font_px = pen.line_px, pen.font_px
    ring = np.asarray(polygon.exterior.coords)
    ax.plot(ring[:, 0], ring[:, 1], color=_OUTLINE, linewidth=1.5 * line_px, zorder=5,
            solid_joinstyle="miter",
            path_effects=[withStroke(linewidth=3 * line_px, foreground="black",
                                     joinstyle="miter")])
    x0, y0, _, _ = polygon.bounds
    corner = min(ring[:-1], key=lambda p: math.hypot(p[0] - x0, p[1] - y0))
    label = arena.name + (f"  {arena.animal_id}" if arena.animal_id else "")
    ax.text(corner[0] + font_px * 0.5, corner[1] + font_px * 0.4, label, color="black",
            fontsize=font_px, ha="left", va="top", zorder=7,
            bbox={"facecolor": _OUTLINE, "edgecolor": "black", "pad": 1.5,
                  "linewidth": 0.5})


def _legend_handles(config: Config, hyst: float) -> list:
    """Legend entries: arena and door, and the door band and masks where drawn."""
    handles = [
        Line2D([], [], color=_OUTLINE, linewidth=2, label="arena"),
        Line2D([], [], color=_DOOR, linewidth=2, path_effects=[withStroke(linewidth=4,
               foreground="black")], label="door"),
    ]
    if hyst > 0:
        handles.append(Patch(facecolor=(0.85, 0.85, 0.85), edgecolor="black", linestyle="--",
                             label=f"door ±{hyst:g} px"))
    if any(a.masks for a in config.arenas):
        handles.append(Patch(facecolor=(0.3, 0.3, 0.3), edgecolor="white", hatch="///",
                             label="mask"))
    return handles


def _add_legend(ax, handles: list, loc: str, small_px: float, width: int):
    legend = ax.legend(handles=handles, loc=loc, fontsize=small_px,
                       framealpha=0.75, borderpad=0.3, handlelength=1.2, labelspacing=0.2,
                       borderaxespad=0.2, columnspacing=0.8, handletextpad=0.4,
                       ncols=len(handles) if width >= 480 else 2)
    legend.set_zorder(8)
    return legend


def _place_legend(ax, handles: list, config: Config, small_px: float,
                  size: tuple[int, int]) -> None:
    """The legend in the frame corner where it hides the least of the arenas (each corner
    is drawn and measured; the first that hides nothing wins)."""
    h, w = size
    canvas = ax.figure.canvas
    arenas = unary_union([Polygon(a.polygon) for a in config.arenas])
    best = None
    for loc in ("lower right", "lower left", "upper right", "upper left"):
        legend = _add_legend(ax, handles, loc, small_px, w)
        canvas.draw()
        bx0, by0, bx1, by1 = legend.get_window_extent().extents
        # display coordinates have y up; the image has y down
        box = shapely.box(bx0, h - by1, bx1, h - by0)
        hidden = box.intersection(arenas).area
        if best is None or hidden < best[0] - 1e-6:
            best = (hidden, loc)
        legend.remove()
        if hidden == 0:
            break
    _add_legend(ax, handles, best[1], small_px, w)


def _rendered(ax, h: int, w: int) -> np.ndarray:
    """The figure drawn, as an (h, w, 3) RGB array."""
    canvas = ax.figure.canvas
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[:, :, :3].copy()
    if image.shape[:2] != (h, w):  # pragma: no cover - guarded: Agg renders exact sizes
        import cv2

        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return image


def _draw_scale_bar(ax, arena, polygon: Polygon, font_px: float, line_px: float, stroke) -> None:
    """A bar of a round length in cm near the arena's bottom-left corner, inside it (or
    bottom-right, where a mask covers the bottom-left)."""
    if not arena.px_per_cm:
        return
    t = arena.template
    if t is not None:
        # drawn in the template's own units and mapped: it follows the floor's perspective
        units_per_cm = 1.0 / t.cm_per_unit
        to_px = t.homography()
        ux0, uy0, ux1, uy1 = Polygon(t.polygon).bounds
        length_cm = scale_bar_cm((ux1 - ux0) / units_per_cm, 1.0)
        length = length_cm * units_per_cm
    else:
        units_per_cm = arena.px_per_cm
        to_px = np.eye(3)
        ux0, uy0, ux1, uy1 = polygon.bounds
        length_cm = scale_bar_cm(ux1 - ux0, arena.px_per_cm)
        length = length_cm * arena.px_per_cm
    width, height = ux1 - ux0, uy1 - uy0
    y = uy1 - 0.08 * height
    masks = unary_union([Polygon(m) for m in arena.masks]) if arena.masks else None
    for x in (ux0 + 0.06 * width, ux1 - 0.06 * width - length):
        ends = _map(to_px, [[x, y], [x + length, y]])
        room = shapely.box(ends[0, 0], ends[0, 1] - 2.5 * font_px, ends[1, 0], ends[1, 1] + 4)
        if masks is None or not room.intersects(masks):
            break
    ax.plot(ends[:, 0], ends[:, 1], color="white", linewidth=2.5 * line_px,
            solid_capstyle="butt", zorder=7,
            path_effects=[withStroke(linewidth=4.5 * line_px, foreground="black")])
    mid = ends.mean(axis=0)
    ax.text(mid[0], mid[1] - 2.5 * line_px, f"{length_cm:g} cm", color="white",
            fontsize=font_px, ha="center", va="bottom", path_effects=stroke, zorder=7)


def preview_video(
    video: str | Path, config: Config, out: str | Path, *, samples: int | None = None
) -> tuple[Path, tuple[int, int]]:
    """Estimate the background of ``video``, draw ``config`` on it and write a PNG.

    The background is ``track``'s (:func:`~cpp_tracker.tracking.empty_box.
    sampled_background`): ``samples`` frames spread over the video
    (``config.background.samples`` by default) brought to one lighting, their median, a
    resting mouse removed. Returns the path written and the picture's (width, height),
    which are the video's.
    """
    import cv2

    from ..results.outputs import write_png
    from ..tracking.empty_box import sampled_background

    background = sampled_background(video, samples or config.background.samples, config).image
    image = render_preview(background, config)
    path = write_png(out, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path, (image.shape[1], image.shape[0])
