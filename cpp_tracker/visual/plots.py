"""The QC figure of one video (``qc.png``): is the track right, at a glance.

Four panels, drawn from a stored result folder:

- **Trajectory**: the background image with the arena outline (white), the door lines
  (black, dashed) and the chamber names, and the centroid's path coloured by time
  (viridis; colour bar in minutes, or hours for recordings over 3 h).
- **Position heat map**: time spent in each small square of the floor (log colour scale).
- **Occupancy timeline**: one strip per arena, each second coloured by the chamber the
  mouse spent most of it in (grey: unknown); below each strip the flagged seconds (black),
  and above the strips the lighting periods when ``run.json`` lists them.
- **Cumulative time** in each chamber over the session.

Chamber colours come from :mod:`cpp_tracker.visual.palette` (Okabe-Ito, distinguishable
with the common forms of colour blindness, in the order the chamber names first appear in
the configuration), as in every other picture of the tool.

Matplotlib is used through its object interface with the Agg canvas only: nothing touches
``pyplot``'s global state, so drawing is safe inside a library, in threads and in batches.

The trajectory panel's mapping from video pixels to figure pixels is stored in the PNG
(text chunk ``cpp_tracker_trajectory``, JSON ``{"x_scale", "x_offset", "y_scale",
"y_offset"}``: ``column = x_scale * x + x_offset``, ``row = y_scale * y + y_offset``), so
that a point of the video can be found in the figure (the tests use it).
"""

from __future__ import annotations

import gc
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import OutputError
from ..geometry.chambers import build_layout
from ..results.outputs import write_bytes
from ..results.stored import StoredResult, flagged_seconds, has_qc_flags, load_result
from .palette import chamber_colours

__all__ = [
    "QC_FIGURE_SIZE_PX",
    "TRAJECTORY_KEY",
    "draw_qc_figure",
    "write_qc_figure",
    "read_trajectory_transform",
]

#: Size of ``qc.png`` in pixels (width, height).
QC_FIGURE_SIZE_PX = (1600, 1000)
_DPI = 100
#: PNG text key holding the trajectory panel's video-pixel -> figure-pixel mapping.
TRAJECTORY_KEY = "cpp_tracker_trajectory"
#: At most this many points per arena are drawn in the trajectory (evenly thinned): a
#: panel ~750 px wide shows no more, and every segment costs matplotlib ~1.5 kB while drawing
#: (40,000 took ~40 MB more for a 30-min video than for a 3-min one).
_MAX_TRAJECTORY_POINTS = 10_000
#: Titles placed just above their panel, where matplotlib puts them when no tick labels are
#: on top; placed automatically, each costs another layout of its panel's tick labels.
_TITLE_Y = 1.0


@dataclass(frozen=True)
class _TimeUnit:
    name: str
    seconds: float

    @classmethod
    def for_duration(cls, duration_s: float) -> _TimeUnit:
        return cls("h", 3600.0) if duration_s > 3 * 3600 else cls("min", 60.0)


def _draw_geometry(ax, result: StoredResult, colors: dict[str, str], *, labels: bool) -> None:
    from matplotlib.patches import Polygon as PolygonPatch

    for arena in result.config.arenas:
        layout = build_layout(arena, result.config.chambers.hysteresis_px)
        ax.add_patch(
            PolygonPatch(
                np.asarray(arena.polygon), closed=True, fill=False, edgecolor="white",
                linewidth=1.5, zorder=3,
            )
        )
        for mask in arena.masks:
            ax.add_patch(
                PolygonPatch(
                    np.asarray(mask), closed=True, fill=False, edgecolor="white",
                    linewidth=1.0, hatch="///", zorder=3,
                )
            )
        for seg in layout.door_segments:
            if seg.is_empty:
                continue
            for part in getattr(seg, "geoms", [seg]):
                xs, ys = part.xy
                ax.plot(xs, ys, color="white", linewidth=2.5, zorder=3, solid_capstyle="butt")
                ax.plot(xs, ys, color="black", linewidth=1.2, linestyle=(0, (4, 3)), zorder=3)
        if labels:
            for chamber in arena.chambers:
                ax.text(
                    chamber.point[0], chamber.point[1], chamber.name, ha="center", va="center",
                    fontsize=10, fontweight="bold", color="black", zorder=4,
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": colors[chamber.name],
                          "edgecolor": "none", "alpha": 0.55},
                )
            if len(result.config.arenas) > 1:
                xs = [p[0] for p in arena.polygon]
                ys = [p[1] for p in arena.polygon]
                ax.text(min(xs) + 3, min(ys) + 3, arena.name, ha="left", va="top", fontsize=9,
                        color="black", zorder=4,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7})


def _view_limits(
    result: StoredResult, width: int, height: int
) -> tuple[float, float, float, float]:
    """x0, x1, y0, y1 (data limits) around all arenas, with a small margin."""
    xs = [p[0] for a in result.config.arenas for p in a.polygon]
    ys = [p[1] for a in result.config.arenas for p in a.polygon]
    margin = 0.03 * max(max(xs) - min(xs), max(ys) - min(ys))
    x0 = max(-0.5, min(xs) - margin)
    x1 = min(width - 0.5, max(xs) + margin)
    y0 = max(-0.5, min(ys) - margin)
    y1 = min(height - 0.5, max(ys) + margin)
    return x0, x1, y0, y1


def _scale_bar(ax, result: StoredResult, limits) -> None:
    px_per_cm = next((a.px_per_cm for a in result.config.arenas if a.px_per_cm), None)
    if not px_per_cm:
        return
    x0, x1, y0, y1 = limits
    for cm in (50, 20, 10, 5, 2, 1):
        if cm * px_per_cm <= 0.3 * (x1 - x0):
            break
    length = cm * px_per_cm
    xa = x1 - 0.04 * (x1 - x0) - length
    ya = y1 - 0.04 * (y1 - y0)
    ax.plot([xa, xa + length], [ya, ya], color="white", linewidth=5, zorder=5,
            solid_capstyle="butt")
    ax.plot([xa, xa + length], [ya, ya], color="black", linewidth=2.5, zorder=5,
            solid_capstyle="butt")
    ax.text(xa + length / 2, ya - 0.015 * (y1 - y0), f"{cm} cm", ha="center", va="bottom",
            fontsize=9, zorder=5, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.7})


def _trajectory_segments(track: pd.DataFrame, arena: str, interval_s: float):
    """Line segments between consecutive detected frames of one arena, and their mid times."""
    sub = track[track["arena"].astype(str) == arena]
    t = sub["time_s"].to_numpy(dtype=float)
    x = sub["x"].to_numpy(dtype=float)
    y = sub["y"].to_numpy(dtype=float)
    step = max(1, int(np.ceil(len(t) / _MAX_TRAJECTORY_POINTS)))
    if step > 1:
        t, x, y = t[::step], x[::step], y[::step]
    ok = np.isfinite(x) & np.isfinite(y)
    # join two points only if both are detected and no longer than 2 s (thinned) apart
    join = ok[:-1] & ok[1:] & (np.diff(t) <= max(2.0, 3 * step * interval_s))
    idx = np.flatnonzero(join)
    segments = np.stack(
        [np.column_stack([x[idx], y[idx]]), np.column_stack([x[idx + 1], y[idx + 1]])], axis=1
    )
    # lone detected points (no neighbour) are drawn as dots
    lone = ok.copy()
    lone[idx] = False
    lone[idx + 1] = False
    return segments, (t[idx] + t[idx + 1]) / 2, np.column_stack([x[lone], y[lone]]), t[lone]


def _grey_rgb(image: np.ndarray) -> np.ndarray:
    """A grey image as RGB bytes: what the grey colour map from 0 to 255 shows, without
    matplotlib resampling it as floats and mapping it afterwards."""
    return np.repeat(image[:, :, None], 3, axis=2)


def _paths_by_colour(segments: np.ndarray, rgba: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Time-ordered segments (n, 2, 2) and their colours (n, 4) as one polyline per run of
    equal colour, broken (a NaN row) where a segment does not start where the one before
    ended; returns the polylines and their colours.

    The colour map has 256 colours, so a few hundred paths give the picture of 10,000
    one-segment paths (drawn in the same order), at a fraction of matplotlib's cost per path.
    """
    n = len(segments)
    if n == 0:
        return [], np.zeros((0, 4))
    run_start = np.r_[True, np.any(rgba[1:] != rgba[:-1], axis=1)]
    joined = np.r_[False, np.all(segments[1:, 0] == segments[:-1, 1], axis=1)]
    start = run_start | ~joined
    # per segment: [break, its start, its end], of which the first two only where needed
    rows = np.empty((n, 3, 2))
    rows[:, 0] = np.nan
    rows[:, 1:] = segments
    keep = np.column_stack([start & ~run_start, start, np.ones(n, dtype=bool)])
    vertices = rows[keep]
    first = np.cumsum(keep.sum(axis=1)) - keep.sum(axis=1)  # vertex index of each segment
    paths = np.split(vertices, first[run_start][1:])
    return paths, rgba[run_start]


def _display_image(image: np.ndarray, max_side_px: int = 800) -> np.ndarray:
    """``image`` shrunk (pixel averages) to at most ``max_side_px`` on its longer side.

    A panel is at most ~800 px wide; matplotlib resamples an image to the panel through
    several float copies of it, which for a 1080p background cost >100 MB. Shown with the
    original extent, the smaller copy looks the same.
    """
    import cv2

    h, w = image.shape[:2]
    f = max(h, w) / max_side_px
    if f <= 1:
        return image
    size = (max(1, round(w / f)), max(1, round(h / f)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _panel_trajectory(fig, ax, result, background, track, colors, unit, duration_s):
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    cmap = colormaps["viridis"]
    height, width = background.shape
    ax.imshow(_grey_rgb(_display_image(background)),
              interpolation="nearest", extent=(-0.5, width - 0.5, height - 0.5, -0.5), zorder=0)
    _draw_geometry(ax, result, colors, labels=True)
    norm = Normalize(0, max(duration_s, 1e-6) / unit.seconds)
    for arena in result.config.arenas:
        segments, t_mid, dots, t_dots = _trajectory_segments(
            track, arena.name, result.frame_interval_s
        )
        paths, path_colours = _paths_by_colour(segments, cmap(norm(t_mid / unit.seconds)))
        ax.add_collection(LineCollection(paths, colors=path_colours, linewidths=1.3, zorder=6,
                                         capstyle="round", joinstyle="round"))
        if len(dots):
            ax.scatter(dots[:, 0], dots[:, 1], c=t_dots / unit.seconds, cmap="viridis",
                       norm=norm, s=4, linewidths=0, zorder=6)
    limits = _view_limits(result, width, height)
    ax.set_xlim(limits[0], limits[1])
    ax.set_ylim(limits[3], limits[2])
    ax.set_aspect("equal")
    _scale_bar(ax, result, limits)
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title("Trajectory, coloured by time", y=_TITLE_Y)
    from matplotlib.cm import ScalarMappable

    bar = fig.colorbar(ScalarMappable(norm=norm, cmap="viridis"), ax=ax, fraction=0.04,
                       pad=0.02)
    bar.set_label(f"time ({unit.name})")


def _panel_heatmap(fig, ax, result, background, track, colors):
    from matplotlib.colors import LogNorm

    height, width = background.shape
    limits = _view_limits(result, width, height)
    x0, x1, y0, y1 = limits
    bin_px = max(2.0, round(max(x1 - x0, y1 - y0) / 60.0))
    xs = np.arange(x0, x1 + bin_px, bin_px)
    ys = np.arange(y0, y1 + bin_px, bin_px)
    det = track[track["detected"].to_numpy(dtype=bool)]
    counts, _, _ = np.histogram2d(
        det["y"].to_numpy(dtype=float), det["x"].to_numpy(dtype=float), bins=[ys, xs]
    )
    seconds = counts * result.frame_interval_s
    ax.imshow(_grey_rgb(_display_image(background)), alpha=0.45,
              interpolation="nearest", extent=(-0.5, width - 0.5, height - 0.5, -0.5), zorder=0)
    shown = np.ma.masked_less_equal(seconds, 0)
    if shown.count():
        vmin = max(float(shown.min()), 1e-3)
        vmax = max(float(shown.max()), vmin * 1.0001)
        image = ax.imshow(shown, cmap="magma_r", norm=LogNorm(vmin, vmax),
                          extent=(xs[0], xs[-1], ys[-1], ys[0]), interpolation="nearest",
                          zorder=1)
        bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        bar.set_label(f"time per {bin_px:g}x{bin_px:g} px square (s)")
    else:
        ax.text(0.5, 0.5, "no detections", transform=ax.transAxes, ha="center", fontsize=12)
    _draw_geometry(ax, result, colors, labels=False)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y1, y0)
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px)")
    ax.set_title("Where the mouse was", y=_TITLE_Y)


def _runs(seconds: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive integer seconds -> [(start, length)]."""
    s = np.unique(np.asarray(seconds, dtype=np.int64))
    if len(s) == 0:
        return []
    breaks = np.flatnonzero(np.diff(s) != 1) + 1
    starts = np.r_[0, breaks]
    ends = np.r_[breaks, len(s)]
    return [(int(s[a]), int(s[b - 1] - s[a] + 1)) for a, b in zip(starts, ends, strict=True)]


def _dominant(occ: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Per row: index into ``names + ['unknown']`` of the category with the most time."""
    cols = [c for c in [*names, "unknown"] if c in occ.columns]
    values = occ[cols].to_numpy(dtype=float)
    order = [([*names, "unknown"]).index(c) for c in cols]
    return np.asarray(order)[np.argmax(values, axis=1)] if len(values) else np.zeros(0, int)


def _panel_timeline(ax, result, occupancy, flags, colors, unit, duration_s, axis_end_s):
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    arenas = result.config.arenas
    periods = result.record.lighting_periods()
    row_h, flag_h, gap = 1.0, 0.3, 0.35
    y = 0.0
    yticks, ylabels = [], []
    end = duration_s / unit.seconds
    for arena in arenas:
        occ = occupancy[occupancy["arena"].astype(str) == arena.name]
        names = list(arena.chamber_names)
        palette = np.array([to_rgb(colors[n]) for n in [*names, "unknown"]])
        dom = _dominant(occ, names)
        if len(dom):
            seconds = occ["second"].to_numpy(dtype=float)
            strip = palette[dom][None, :, :]
            right = min(end, (seconds[-1] + 1) / unit.seconds)
            ax.imshow(strip, aspect="auto", interpolation="nearest",
                      extent=(seconds[0] / unit.seconds, right, y + row_h, y), zorder=1)
        yticks.append(y + row_h / 2)
        ylabels.append(arena.name)
        mine = flags[flags["arena"].astype(str) == arena.name] if len(flags) else flags
        fy = y + row_h + 0.05
        ax.broken_barh([(a / unit.seconds, n / unit.seconds) for a, n in _runs(mine["second"])]
                       if len(mine) else [], (fy, flag_h - 0.05), facecolors="black", zorder=2)
        yticks.append(fy + flag_h / 2)
        ylabels.append("flagged")
        y += row_h + flag_h + gap
    if periods:
        shades = ["#F2F2F2", "#D9D9D9"]
        ax.broken_barh([(a / unit.seconds, (b - a) / unit.seconds) for a, b, _ in periods],
                       (y, row_h * 0.6),
                       facecolors=[shades[i % 2] for i in range(len(periods))],
                       edgecolors="black", linewidth=0.6, zorder=1)
        for a, b, label in periods:
            ax.text((a + b) / 2 / unit.seconds, y + 0.3 * row_h, label, ha="center",
                    va="center", fontsize=8, clip_on=True)
            ax.axvline(a / unit.seconds, color="black", linewidth=0.6, linestyle=":", zorder=3)
        yticks.append(y + 0.3 * row_h)
        ylabels.append("lighting")
        y += row_h * 0.6 + gap
    ax.set_ylim(y - gap + 0.05, -0.05)
    ax.set_xlim(0, max(axis_end_s / unit.seconds, 1e-6))
    if axis_end_s > duration_s:
        _shade_not_read(ax, duration_s / unit.seconds, axis_end_s / unit.seconds)
    _mark_trial_start(ax, result.record)
    ax.set_yticks(yticks, ylabels)
    ax.tick_params(axis="y", length=0)
    ax.set_xlabel(f"time ({unit.name})")
    n_flagged = len(flags.drop_duplicates(["arena", "second"])) if len(flags) else 0
    if has_qc_flags(result):
        ax.set_title(f"Chamber per second (QC: {n_flagged} flagged s)", y=_TITLE_Y)
    else:
        ax.set_title("Chamber per second (no QC flags stored with this result)",
                     y=_TITLE_Y)
    handles = [Patch(facecolor=c, label=n) for n, c in colors.items()]
    handles.append(Patch(facecolor="black", label="flagged second"))
    if axis_end_s > duration_s:
        handles.append(Patch(**_NOT_READ, label="not read"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9,
              frameon=False)


_NOT_READ = {"facecolor": "white", "edgecolor": "#777777", "hatch": "///"}


def _shade_not_read(ax, start: float, end: float) -> None:
    """The part of the recording that could not be read (a truncated file), hatched over
    the panel's full height."""
    ax.axvspan(start, end, zorder=4, linewidth=0.0, **_NOT_READ)
    ax.text((start + end) / 2, 0.5, "not read", transform=ax.get_xaxis_transform(),
            ha="center", va="center", fontsize=9, zorder=5,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5})


def not_read_until(result: StoredResult, duration_s: float) -> float | None:
    """The length the recording should have had, when more than 1 % of it (and more than
    1 s) was not read (a truncated or damaged file); None otherwise. The figure's time
    axes run to it, so that the missing part shows."""
    expected = result.record.time_base.expected_s
    if expected is None or expected - duration_s <= max(1.0, 0.01 * expected):
        return None
    return expected


def _mark_trial_start(ax, record) -> None:
    """The trial's start (``trial`` in run.json) at the timeline's left edge, where result
    time 0 is: a line and a label saying where it is in the video and why (or that it was
    not found)."""
    trial = record.trial
    if trial is None:
        return
    color = "#C00000" if trial.found is False else "#006400"
    ax.axvline(0, color=color, linewidth=2.5, zorder=4)
    text = f"| time 0 = {trial.label}"
    if trial.requested == "auto" and trial.reason and trial.found is not False:
        text += f": {trial.reason}"
    ax.annotate(text, xy=(0, 0), xycoords="axes fraction", xytext=(0, -30),
                textcoords="offset points", fontsize=7.5, color=color, va="top",
                annotation_clip=False)


def _panel_cumulative(ax, result, occupancy, colors, unit, duration_s, axis_end_s):
    styles = ["-", "--", ":", "-."]
    for i, arena in enumerate(result.config.arenas):
        occ = occupancy[occupancy["arena"].astype(str) == arena.name]
        if not len(occ):
            continue
        ends = (occ["second"].to_numpy(dtype=float) + 1) / unit.seconds
        ends[-1] = duration_s / unit.seconds
        t = np.r_[0.0, ends]
        for name in [*arena.chamber_names, "unknown"]:
            if name not in occ.columns:
                continue
            cum = np.r_[0.0, np.cumsum(occ[name].to_numpy(dtype=float))] / unit.seconds
            if name == "unknown" and cum[-1] <= 0:
                continue
            label = name if len(result.config.arenas) == 1 else f"{arena.name}: {name}"
            ax.plot(t, cum, color=colors[name], linestyle=styles[i % len(styles)],
                    linewidth=2, label=label)
    ax.set_xlim(0, max(axis_end_s / unit.seconds, 1e-6))
    if axis_end_s > duration_s:
        _shade_not_read(ax, duration_s / unit.seconds, axis_end_s / unit.seconds)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"time ({unit.name})")
    ax.set_ylabel(f"cumulative time ({unit.name})")
    ax.set_title("Cumulative time in each chamber", y=_TITLE_Y)
    ax.grid(True, color="#DDDDDD", linewidth=0.6)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=9, frameon=False)


def _header(result: StoredResult, duration_s: float, axis_end_s: float) -> str:
    record = result.record
    length = f"{duration_s / 60:.1f} min"
    if axis_end_s > duration_s:
        length = f"{duration_s / 60:.1f} of {axis_end_s / 60:.1f} min read"
    parts = [f"{result.name}", length]
    if record.config.hash:
        parts.append(f"config {record.config.hash}")
    if record.version:
        parts.append(f"cpp-tracker {record.version}")
    parts.append(f"{len(record.warnings)} warning(s)")
    if record.needs_review is not None:
        parts.append("NEEDS REVIEW" if record.needs_review else "QC passed")
    return "   |   ".join(parts)


def draw_qc_figure(result: StoredResult | str | Path):
    """Draw the QC figure of a result folder; returns ``(figure, trajectory_transform)``.

    The figure is a :class:`matplotlib.figure.Figure` on an Agg canvas (no ``pyplot``);
    ``trajectory_transform`` maps video pixels to figure pixels (see the module notes).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not isinstance(result, StoredResult):
        result = load_result(result)
    background = result.background()
    video = result.record.video
    if background is None:
        w = int(video.width or 640)
        h = int(video.height or 480)
        background = np.full((h, w), 128, dtype=np.uint8)
    track = result.track(["time_s", "arena", "x", "y", "detected"])
    occupancy = result.occupancy()
    flags = flagged_seconds(result, fallback=False)
    duration_s = result.duration_s
    if duration_s is None:
        duration_s = float(track["time_s"].max()) if len(track) else 0.0
    axis_end_s = not_read_until(result, duration_s) or duration_s
    unit = _TimeUnit.for_duration(axis_end_s)
    colors = {name: c.hex for name, c in chamber_colours(result.config).items()}

    width_in = QC_FIGURE_SIZE_PX[0] / _DPI
    height_in = QC_FIGURE_SIZE_PX[1] / _DPI
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(
        3, 2, height_ratios=[3.2, 1.0, 1.6], width_ratios=[1.25, 1.0], left=0.05, right=0.9,
        top=0.93, bottom=0.06, hspace=0.45, wspace=0.3,
    )
    ax_traj = fig.add_subplot(grid[0, 0])
    ax_heat = fig.add_subplot(grid[0, 1])
    ax_time = fig.add_subplot(grid[1, :])
    ax_cum = fig.add_subplot(grid[2, :])
    fig.suptitle(_header(result, duration_s, axis_end_s), fontsize=13, y=0.985)
    _panel_trajectory(fig, ax_traj, result, background, track, colors, unit, duration_s)
    _panel_heatmap(fig, ax_heat, result, background, track, colors)
    _panel_timeline(ax_time, result, occupancy, flags, colors, unit, duration_s, axis_end_s)
    _panel_cumulative(ax_cum, result, occupancy, colors, unit, duration_s, axis_end_s)
    fig.canvas.draw()
    # video pixel (x, y) -> figure pixel (column, row from the top)
    to_display = ax_traj.transData
    (c0, r0), (c1, r1) = to_display.transform([(0.0, 0.0), (1.0, 1.0)])
    fig_h = fig.bbox.height
    transform = {
        "x_scale": float(c1 - c0),
        "x_offset": float(c0),
        "y_scale": float(-(r1 - r0)),
        "y_offset": float(fig_h - r0),
    }
    return fig, transform


def read_trajectory_transform(png_path: str | Path) -> dict:
    """The video-pixel -> figure-pixel mapping stored in a ``qc.png``."""
    from PIL import Image

    with Image.open(png_path) as image:
        text = image.info.get(TRAJECTORY_KEY)
    if not text:
        raise OutputError(f"{png_path}: holds no {TRAJECTORY_KEY} entry; redraw it with 'plot'")
    return json.loads(text)


def write_qc_figure(result: StoredResult | str | Path, path: str | Path | None = None) -> Path:
    """Draw the QC figure and write it (atomically) to ``path`` (default
    ``<result folder>/qc.png``). Returns the path written."""
    if not isinstance(result, StoredResult):
        result = load_result(result)
    with _collection_paused():
        fig, transform = draw_qc_figure(result)
        text = {TRAJECTORY_KEY: json.dumps(transform), "Software": "cpp-tracker"}
        data = _png_of_drawn(fig, text)
        del fig  # no fig.clear(): tearing the artists down one by one cost a tenth of the figure
    target = Path(path) if path is not None else result.result_dir / "qc.png"
    return write_bytes(target, data)


@contextmanager
def _collection_paused():
    """The objects that exist before the figure is drawn left out of garbage collection
    while it is drawn (``gc.freeze``): matplotlib makes ~100,000 objects for the figure,
    which set off full collections, and each would go through every object of the
    process (~35 ms after a reprocess); the figure's own objects are collected as usual.
    A process that froze objects itself is left as it is."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _png_of_drawn(fig, text: dict[str, str]) -> bytes:
    """The PNG of a figure :func:`draw_qc_figure` has drawn already: its canvas's pixels
    encoded as they are (``savefig`` would draw the whole figure a second time, a third of
    the figure's cost), RGB (the figure is opaque)."""
    rgba = np.asarray(fig.canvas.buffer_rgba())
    return _png_bytes(rgba[..., :3], text)


def _png_bytes(rgb: np.ndarray, text: dict[str, str]) -> bytes:
    """An RGB image (height, width, 3; uint8) as PNG with ``text`` in tEXt chunks.

    Every row is filtered by its difference from the row above ("up") and deflated at
    level 1: for a figure of flat colours as small as PIL's adaptive filters give, in less
    than half the time (which is most of the cost of encoding it).
    """
    import struct
    import zlib

    height, width, _ = rgb.shape
    rows = np.ascontiguousarray(rgb, dtype=np.uint8).reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # "up"; the first row's "row above" is zeros
    filtered[0, 1:] = rows[0]
    # (on a contiguous copy: subtracting the canvas's RGBA view in place takes twice as long)
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    texts = b"".join(chunk(b"tEXt", k.encode("latin-1") + b"\0" + v.encode("latin-1"))
                     for k, v in text.items())
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + texts
            + chunk(b"IDAT", zlib.compress(filtered.tobytes(), 1)) + chunk(b"IEND", b""))
