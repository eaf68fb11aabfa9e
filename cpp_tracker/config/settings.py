"""YAML configuration -> frozen dataclasses, with validation that reports every problem.

Coordinates are pixels of the video frame: ``x`` is the column, ``y`` the row, origin at the
top-left corner, as in OpenCV.

A configuration file looks like this (only ``arenas`` is required)::

    frame_size: [320, 240]        # optional: the video frame it was drawn on
    arenas:
      - name: box1
        animal_id: m01            # optional, carried into summary.csv
        polygon: [[20, 20], [300, 20], [300, 220], [20, 220]]
        doors:
          - name: door1
            line: [[160, 20], [160, 220]]
        chambers:
          - name: paired
            point: [90, 120]
          - name: unpaired
            point: [230, 120]
        masks: []                 # polygons inside the arena to ignore
        px_per_cm: 5.0            # or scale: {points: [[x, y], [x, y]], distance_cm: 10}
    background: {samples: 40, follow_lighting: true, remove_resting_mouse: true}
    detection: {animal: auto, threshold: auto, min_area_px: auto, opening_px: auto}
    chambers: {hysteresis_px: 6}
    video: {gap_factor: 2.5}

Every key but ``arenas`` has a default; :func:`load_config` fills them in, so the resolved
configuration written to ``run.json`` shows every value that was used.

An arena may instead be drawn in the box's own units, with the four corners of the box in
this video's pixels; a perspective transform maps the drawing to pixels at load time::

    arenas:
      - name: box1
        units: cm                 # or mm
        corners_px: [[70, 50], [570, 50], [600, 430], [40, 430]]   # TL, TR, BR, BL
        polygon: [[0, 0], [60, 0], [60, 40], [0, 40]]               # in cm
        doors: [{name: door1, line: [[30, 0], [30, 40]]}]
        chambers: [{name: paired, point: [15, 20]}, {name: unpaired, point: [45, 20]}]

Problems are collected, never raised one by one: a :class:`ConfigError` lists every one,
each with its key path and the value found.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ..errors import ConfigError

__all__ = [
    "Point",
    "Door",
    "Chamber",
    "Scale",
    "Template",
    "ArenaConfig",
    "BackgroundSettings",
    "DetectionSettings",
    "ChamberSettings",
    "VideoSettings",
    "TimeWindow",
    "SummarySettings",
    "QcSettings",
    "TrialSettings",
    "PoseSettings",
    "BY_ARENA",
    "parse_trial_start",
    "with_default_sections",
    "Config",
    "RESERVED_NAMES",
    "UNITS_CM",
    "DETECTION_KEYS",
    "CHAMBER_RULES",
    "load_config",
    "parse_config",
    "config_to_dict",
    "config_hash",
    "geometry_in_pixels",
    "check_against_frame",
]

Point = tuple[float, float]

#: Chamber names that the tool uses itself and that a config may not take.
RESERVED_NAMES = frozenset({"unknown"})

#: Units a template (``units`` of an arena) may be drawn in, and their size in cm.
UNITS_CM = {"cm": 1.0, "mm": 0.1}

#: Top-level sections whose values change what is detected in the frames (changing them
#: needs a new tracking run; everything else can be recomputed from a stored track). With a
#: template, ``units``, ``corners_px`` and ``template_corners`` move the polygon and masks.
DETECTION_KEYS = (
    "background",
    "detection",
    "arenas[].polygon",
    "arenas[].masks",
    "arenas[].units",
    "arenas[].corners_px",
    "arenas[].template_corners",
    "trial",  # where the window starts: the track holds only the frames from there
)


@dataclass(frozen=True)
class Door:
    """A door line from wall to wall; it is clipped to the arena polygon."""

    name: str
    line: tuple[Point, Point]


@dataclass(frozen=True)
class Chamber:
    """A named piece of the arena, identified by a point inside it."""

    name: str
    point: Point


@dataclass(frozen=True)
class Scale:
    """Pixels per centimetre, given directly or from two points a known distance apart."""

    px_per_cm: float
    points: tuple[Point, Point] | None = None
    distance_cm: float | None = None


@dataclass(frozen=True)
class Template:
    """Geometry drawn in the box's own units, fitted to this video by four corners.

    ``polygon``, ``doors``, ``chambers`` and ``masks`` are as written in the file, in
    ``units`` (``cm`` or ``mm``; x to the right, y down, origin where the drawing puts it).
    ``template_corners`` are four points of the drawing (by default the corners of its
    bounding rectangle: top-left, top-right, bottom-right, bottom-left) and ``corners_px``
    where those four points are in this video. The perspective transform that takes the
    first four onto the second maps the whole drawing into pixels
    (:attr:`ArenaConfig.polygon` etc. hold the result).
    """

    units: str
    corners_px: tuple[Point, Point, Point, Point]
    template_corners: tuple[Point, Point, Point, Point]
    polygon: tuple[Point, ...]
    doors: tuple[Door, ...]
    chambers: tuple[Chamber, ...]
    masks: tuple[tuple[Point, ...], ...] = ()

    @property
    def cm_per_unit(self) -> float:
        return UNITS_CM[self.units]

    def homography(self) -> np.ndarray:
        """3x3 matrix mapping template units to video pixels."""
        return cv2.getPerspectiveTransform(
            np.asarray(self.template_corners, dtype=np.float32),
            np.asarray(self.corners_px, dtype=np.float32),
        ).astype(np.float64)


@dataclass(frozen=True)
class ArenaConfig:
    """One CPP box: its floor outline, door lines, chambers, masks and scale, in pixels.

    When the file gives the geometry in cm with the box's corners in pixels, the mapped
    pixel geometry is stored here and the drawing as written in :attr:`template`.
    """

    name: str
    polygon: tuple[Point, ...]
    doors: tuple[Door, ...]
    chambers: tuple[Chamber, ...]
    masks: tuple[tuple[Point, ...], ...] = ()
    animal_id: str | None = None
    scale: Scale | None = None
    template: Template | None = None

    @property
    def chamber_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.chambers)

    @property
    def px_per_cm(self) -> float | None:
        return None if self.scale is None else self.scale.px_per_cm


@dataclass(frozen=True)
class BackgroundSettings:
    """How the empty-box image is estimated.

    ``samples`` frames are taken at even spacing across the whole video and the per-pixel
    median is the background. ``follow_lighting``: bring the samples to one brightness
    first, and follow the brightness of every frame while tracking (drift, lights switched).
    ``remove_resting_mouse``: find a mouse that rests in one spot in most samples (and so
    is in the median) and rebuild the background there from the samples where it was
    elsewhere.
    """

    samples: int = 40
    follow_lighting: bool = True
    remove_resting_mouse: bool = True


@dataclass(frozen=True)
class DetectionSettings:
    """How the mouse is found in the difference to the background.

    ``animal``: ``dark`` (dark mouse on a lighter floor), ``light`` (light mouse on a darker
    floor) or ``auto`` (absolute difference, either way). ``threshold``: grey levels, or
    ``None`` for automatic (from the noise of the difference images). ``min_area_px`` /
    ``max_area_px``: blob size limits, ``None`` for automatic (0.05 % and 25 % of the arena
    area). ``opening_px``: diameter of the morphological opening that removes the tail and
    noise, or ``None`` for automatic (a fraction of the mouse's body width, measured in the
    background samples). ``blur_px``: Gaussian blur diameter applied before differencing (0 = off;
    at 3, a mouse of low contrast for the noise is looked for with a wider blur, see
    :func:`cpp_tracker.tracking.tracker.make_detector`).
    ``downscale``: 1 (search blobs at full resolution), 2 or 4 (search at half or quarter
    resolution, then measure each candidate at full resolution; faster) or ``None`` for
    automatic (2 when the mouse covers at least 400 px in the background samples, 4 from
    1600 px).
    ``background_update``: ``on`` (floor that changes and stays changed, e.g. bedding the
    mouse kicked around, is taken into the background once it has held for
    ``background_update_after_s`` seconds farther than ``background_update_margin_bl``
    body lengths from where the mouse last moved), ``off``, or ``auto`` (on when floor
    differs from the background in the first or the last tenth of the background samples
    on end: bedding moved during the recording). While it is on, the video is tracked in
    one pass (the update carries state from frame to frame).
    """

    animal: str = "auto"
    threshold: float | None = None
    min_area_px: float | None = None
    max_area_px: float | None = None
    opening_px: int | None = None
    blur_px: int = 3
    downscale: int | None = None
    background_update: str = "auto"
    background_update_after_s: float = 10.0
    background_update_margin_bl: float = 1.0


@dataclass(frozen=True)
class ChamberSettings:
    """Chamber assignment: the chamber changes only once the centroid is farther than
    ``hysteresis_px`` past a door line, so a mouse sitting in a doorway does not flicker.

    ``backdate_crossings``: once a crossing is confirmed (the centroid passed the margin),
    the new chamber starts at the frame where the centroid left the old chamber's piece,
    not at the frame where it passed the margin. The margin then decides *whether* the mouse
    changed chamber, the door line *when*; without it, every crossing is counted late by the
    time the mouse needs to walk ``hysteresis_px``. Excursions that return before passing
    the margin stay in the old chamber either way.
    """

    hysteresis_px: float = 6.0
    backdate_crossings: bool = True
    #: ``point``: the centroid decides, with the margin above. ``body_fraction``: the share of
    #: the mouse's blob in each chamber decides; it enters a chamber once at least
    #: ``enter_fraction`` of it lies there and leaves its chamber once less than
    #: ``exit_fraction`` does (then going to the chamber holding most of it); the margin and
    #: backdating are not used, and time follows the same chamber as visits.
    rule: str = "point"
    enter_fraction: float = 0.7
    exit_fraction: float = 0.3


#: The ``chambers.rule`` values.
CHAMBER_RULES = ("point", "body_fraction")


@dataclass(frozen=True)
class VideoSettings:
    """Time base: an interval longer than ``gap_factor`` times the median frame interval is a
    gap (dropped or lost frames); its time beyond one median interval counts as unknown."""

    gap_factor: float = 2.5
    checkpoint_s: float = 300.0
    reader: str = "opencv"  # the decoder of the frames tracked: "opencv" or "pyav"
    fast_decode: bool = False  # pyav only: H.264 deblocking skipped


@dataclass(frozen=True)
class TimeWindow:
    """A named stretch of video time, ``[start_s, end_s)``; ``end_s`` None = to the end."""

    name: str
    start_s: float
    end_s: float | None = None


@dataclass(frozen=True)
class SummarySettings:
    """Settings of the time-in-chamber summary.

    ``min_step_px``: a movement of the centroid counts towards the distance travelled only
    once it reaches this many pixels from the last counted position (resting jitter is
    ignored). ``bin_s``: optional length of consecutive time bins for ``summary_bins.csv``.
    ``windows``: optional named time windows (e.g. ``habituation: [0, 300]``) summarised in
    ``summary_bins.csv`` too; they may overlap and need not cover the whole recording.
    """

    min_step_px: float = 2.0
    bin_s: float | None = None
    windows: tuple[TimeWindow, ...] = ()


@dataclass(frozen=True)
class QcSettings:
    """Quality flags: the fastest plausible mouse, and when a video ``needs_review``.

    Shares are of the frames of an arena; ``max_jumps_per_min`` per minute of recording;
    ``max_unobserved`` a share of the duration lost in gaps; ``min_read_fraction`` of the
    container's nominal length; ``max_unknown`` a share of the duration in no chamber
    (no detection, a gap, or a centroid outside every chamber: e.g. a config drawn for
    another camera).
    """

    max_speed_cm_s: float = 100.0
    max_undetected: float = 0.05
    max_multi_blob: float = 0.05
    max_area_outlier: float = 0.05
    max_jumps_per_min: float = 0.5
    max_unobserved: float = 0.02
    min_read_fraction: float = 0.98
    max_unknown: float = 0.10


@dataclass(frozen=True)
class TrialSettings:
    """When the trial starts in the video.

    ``start``: seconds from the start of the video (0: the video's start, the default), or
    ``"auto"``: the first moment from which the box looks like its empty-box image plus one
    mouse for ``settle_s`` seconds in a row (no hand or arm, doors open), searched within
    the first ``search_s`` seconds of the recording.
    """

    start: float | str = 0.0
    search_s: float = 600.0
    settle_s: float = 1.0

    @property
    def auto(self) -> bool:
        return self.start == "auto"


#: ``pose.individual`` value that gives each arena the individual named as its
#: ``animal_id`` (or, without one, as its ``name``).
BY_ARENA = "by_arena"


@dataclass(frozen=True)
class PoseSettings:
    """How ``cpp-tracker pose`` makes a track from a pose-estimation file.

    ``point``: the keypoint(s) whose position is the mouse's (the mean of several, e.g. the
    body centre from shoulders and hips); empty: the file's only keypoint. A frame where any
    of them is missing or below ``min_likelihood`` is undetected (unknown time, never
    guessed). ``individual``: which animal of a multi-animal file (None: the file's only
    one), or :data:`BY_ARENA`: one arena per individual, matched by the arena's
    ``animal_id`` (else its ``name``).
    """

    point: tuple[str, ...] = ()
    min_likelihood: float = 0.6
    individual: str | None = None


@dataclass(frozen=True)
class Config:
    """A whole, validated configuration."""

    arenas: tuple[ArenaConfig, ...]
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    detection: DetectionSettings = field(default_factory=DetectionSettings)
    chambers: ChamberSettings = field(default_factory=ChamberSettings)
    video: VideoSettings = field(default_factory=VideoSettings)
    summary: SummarySettings = field(default_factory=SummarySettings)
    qc: QcSettings = field(default_factory=QcSettings)
    trial: TrialSettings = field(default_factory=TrialSettings)
    pose: PoseSettings = field(default_factory=PoseSettings)
    #: (width, height) of the video frame the geometry was drawn on (``frame_size``), or
    #: None when the file does not say; :func:`check_against_frame` refuses other sizes.
    frame_size: tuple[int, int] | None = None
    source: str = "<config>"

    def arena(self, name: str) -> ArenaConfig:
        for a in self.arenas:
            if a.name == name:
                return a
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# parsing and validation


class _Problems:
    """Collects problems with their key paths so that all are reported at once."""

    def __init__(self) -> None:
        self.items: list[str] = []
        # problems that leave the drawing usable (a reserved chamber name): its geometry is
        # still checked, so that every problem of the file is reported at once
        self.naming = 0

    def add(self, path: str, message: str, *, drawing_ok: bool = False) -> None:
        self.items.append(f"{path}: {message}" if path else message)
        self.naming += drawing_ok


def _show(v: Any, limit: int = 70) -> str:
    """A value as the user wrote it, shortened for a one-line message."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = repr(v) if isinstance(v, str) else json.dumps(v, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _point(v: Any, path: str, problems: _Problems, unit: str = "") -> Point | None:
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_number(c) for c in v):
        return (float(v[0]), float(v[1]))
    where = f" in {unit}" if unit and unit != "px" else ""
    problems.add(path, f"expected a point [x, y] of two numbers{where}, got {_show(v)}")
    return None


def _points(
    v: Any, path: str, problems: _Problems, min_points: int, unit: str = ""
) -> tuple[Point, ...] | None:
    if not isinstance(v, (list, tuple)):
        problems.add(path, f"expected a list of points [[x, y], ...], got {_show(v)}")
        return None
    if len(v) < min_points:
        problems.add(
            path, f"needs at least {min_points} points [x, y], got {len(v)}: {_show(v)}"
        )
        return None
    pts = [_point(p, f"{path}[{i}]", problems, unit) for i, p in enumerate(v)]
    if any(p is None for p in pts):
        return None
    return tuple(pts)  # type: ignore[arg-type]


def _name(v: Any, path: str, problems: _Problems) -> str | None:
    if isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip():
        return str(v).strip()
    problems.add(path, f"expected a non-empty name (text), got {_show(v)}")
    return None


def _mapping(v: Any, path: str, problems: _Problems, allowed: dict[str, str]) -> dict:
    """Check that ``v`` is a mapping with only ``allowed`` keys; return it (or {})."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        keys = ", ".join(allowed)
        problems.add(path, f"expected a mapping with keys {keys}; got {_show(v)}")
        return {}
    for key in v:
        if key not in allowed:
            close = _closest(str(key), allowed)
            hint = f"; did you mean '{close}'?" if close else ""
            where = f"{path}.{key}" if path else str(key)
            problems.add(where, f"unknown key{hint} (allowed: {', '.join(allowed)})")
    return v


def _list(v: Any, path: str, problems: _Problems, what: str) -> list:
    """``v`` as a list (``None`` -> empty); a problem and an empty list otherwise."""
    if v is None:
        return []
    if not isinstance(v, list):
        problems.add(path, f"expected a list of {what}, got {_show(v)}")
        return []
    return v


def _closest(key: str, allowed: dict[str, str] | list[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    return match[0] if match else None


def _flag(v: Any, path: str, problems: _Problems) -> bool:
    if isinstance(v, bool):
        return v
    problems.add(path, f"expected true or false, got {v!r}")
    return True


def _number(
    v: Any,
    path: str,
    problems: _Problems,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    allow_auto: bool = False,
    integer: bool = False,
) -> float | None:
    if allow_auto and (v is None or v == "auto"):
        return None
    if not _is_number(v) or (integer and float(v) != int(v)):
        kind = "a whole number" if integer else "a number"
        auto = " or 'auto'" if allow_auto else ""
        problems.add(path, f"expected {kind}{auto}, got {_show(v)}")
        return None
    if minimum is not None and v < minimum:
        problems.add(path, f"must be at least {minimum:g}, got {_show(v)}")
        return None
    if maximum is not None and v > maximum:
        problems.add(path, f"must be at most {maximum:g}, got {_show(v)}")
        return None
    return int(v) if integer else float(v)


_TOP_KEYS = {
    "frame_size": "the video frame the geometry was drawn on",
    "arenas": "list of arenas",
    "background": "background estimation",
    "detection": "mouse detection",
    "chambers": "chamber assignment",
    "video": "time base",
    "summary": "summary settings",
    "qc": "quality flags",
    "trial": "when the trial starts",
    "pose": "pose-estimation input (cpp-tracker pose)",
}
_ARENA_KEYS = {
    "name": "",
    "animal_id": "",
    "polygon": "",
    "doors": "",
    "chambers": "",
    "masks": "",
    "px_per_cm": "",
    "scale": "",
    "units": "",
    "corners_px": "",
    "template_corners": "",
}


def _parse_scale(raw: dict, path: str, problems: _Problems) -> Scale | None:
    if "px_per_cm" in raw and "scale" in raw:
        problems.add(f"{path}.scale", "give either px_per_cm or scale, not both")
        return None
    if raw.get("px_per_cm") is not None:
        v = _number(raw["px_per_cm"], f"{path}.px_per_cm", problems)
        if v is not None and v <= 0:
            problems.add(f"{path}.px_per_cm", f"must be a positive number, got {_show(v)}")
            return None
        return None if v is None else Scale(px_per_cm=v)
    if raw.get("scale") is not None:
        return _scale_from_points(raw["scale"], f"{path}.scale", problems)
    return None


def _scale_from_points(raw: Any, spath: str, problems: _Problems) -> Scale | None:
    """``scale: {points: [[x1, y1], [x2, y2]], distance_cm: D}`` as a :class:`Scale`."""
    if not isinstance(raw, dict):
        problems.add(
            spath,
            "expected a mapping {points: [[x1, y1], [x2, y2]], distance_cm: D}, got "
            f"{_show(raw)}",
        )
        return None
    s = _mapping(raw, spath, problems, {"points": "", "distance_cm": ""})
    for key in ("points", "distance_cm"):
        if key not in s:
            problems.add(f"{spath}.{key}", "is required")
    if "points" not in s or "distance_cm" not in s:
        return None
    pts = _points(s["points"], f"{spath}.points", problems, 2)
    dist = _number(s["distance_cm"], f"{spath}.distance_cm", problems)
    if dist is not None and dist <= 0:
        problems.add(f"{spath}.distance_cm", f"must be a positive number, got {_show(dist)}")
        dist = None
    if pts is not None and len(pts) != 2:
        problems.add(f"{spath}.points", f"needs exactly 2 points, got {len(pts)}")
        pts = None
    if pts is None or dist is None:
        return None
    d_px = math.dist(pts[0], pts[1])
    if d_px == 0:
        problems.add(f"{spath}.points", "the two points are the same point; "
                     "pick two points a known distance apart")
        return None
    return Scale(px_per_cm=d_px / dist, points=(pts[0], pts[1]), distance_cm=dist)


def _parse_doors(raw: dict, path: str, problems: _Problems, unit: str) -> list[Door]:
    doors: list[Door] = []
    for j, d in enumerate(_list(raw.get("doors"), f"{path}.doors", problems, "doors")):
        dpath = f"{path}.doors[{j}]"
        if not isinstance(d, dict):
            problems.add(
                dpath, f"expected a door {{name: ..., line: [[x1, y1], [x2, y2]]}}, got {_show(d)}"
            )
            continue
        _mapping(d, dpath, problems, {"name": "", "line": ""})
        if "line" not in d:
            problems.add(f"{dpath}.line", "is required: [[x1, y1], [x2, y2]]")
            continue
        dname = _name(d.get("name", f"door{j + 1}"), f"{dpath}.name", problems)
        line = _points(d["line"], f"{dpath}.line", problems, 2, unit)
        if line is not None and len(line) != 2:
            problems.add(
                f"{dpath}.line", f"needs exactly 2 points (its two ends), got {len(line)}: "
                f"{_show(d['line'])}"
            )
            line = None
        if line is not None and math.dist(line[0], line[1]) == 0:
            problems.add(
                f"{dpath}.line", f"its two end points are the same point: {_show(d['line'])}"
            )
            line = None
        if dname is not None and line is not None:
            doors.append(Door(dname, (line[0], line[1])))
    return doors


def _parse_chambers(raw: dict, path: str, problems: _Problems, unit: str) -> list[Chamber]:
    chambers: list[Chamber] = []
    raw_ch = _list(raw.get("chambers"), f"{path}.chambers", problems, "chambers")
    for j, c in enumerate(raw_ch):
        cpath = f"{path}.chambers[{j}]"
        if not isinstance(c, dict):
            problems.add(cpath, f"expected a chamber {{name: ..., point: [x, y]}}, got {_show(c)}")
            continue
        _mapping(c, cpath, problems, {"name": "", "point": ""})
        for key in ("name", "point"):
            if key not in c:
                problems.add(f"{cpath}.{key}", "is required")
        if "name" not in c or "point" not in c:
            continue
        cname = _name(c["name"], f"{cpath}.name", problems)
        point = _point(c["point"], f"{cpath}.point", problems, unit)
        if cname is not None and cname.lower() in RESERVED_NAMES:
            problems.add(
                f"{cpath}.name", f"'{cname}' is reserved by the tool (time with no known "
                "chamber); choose another name", drawing_ok=True
            )
        if cname is not None and point is not None:
            chambers.append(Chamber(cname, point))
    if "chambers" in raw and isinstance(raw.get("chambers"), list) and not raw_ch:
        problems.add(f"{path}.chambers", "needs at least one chamber {name: ..., point: [x, y]}")
    return chambers


def _parse_masks(raw: dict, path: str, problems: _Problems, unit: str) -> list[tuple[Point, ...]]:
    masks: list[tuple[Point, ...]] = []
    raw_masks = _list(raw.get("masks"), f"{path}.masks", problems, "polygons")
    if raw_masks and all(isinstance(p, list) and len(p) == 2 and all(_is_number(c) for c in p)
                         for p in raw_masks):
        problems.add(
            f"{path}.masks", "is a list of polygons, and this looks like a single polygon; "
            f"write it inside another pair of brackets: [{_show(raw_masks, 40)}]"
        )
        return masks
    for j, m in enumerate(raw_masks):
        pts = _points(m, f"{path}.masks[{j}]", problems, 3, unit)
        if pts is not None:
            masks.append(pts)
    return masks


def _quad_problem(corners: tuple[Point, ...]) -> str | None:
    """Why four corners cannot define a perspective fit, or ``None`` when they can."""
    pts = np.asarray(corners, dtype=float)
    edges = np.roll(pts, -1, axis=0) - pts
    following = np.roll(edges, -1, axis=0)
    cross = edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]
    size = max(1e-12, float(np.ptp(pts, axis=0).max()) ** 2)
    if np.any(np.abs(cross) < 1e-6 * size):
        return "three of the four corners lie on one line (or two are the same point)"
    if np.all(cross > 0) or np.all(cross < 0):
        return None
    from shapely.geometry import Polygon as _Polygon

    if not _Polygon(corners).is_valid:
        return ("the outline through the corners crosses itself: list them in order around "
                "the box (top-left, top-right, bottom-right, bottom-left)")
    return "the four corners do not form a convex shape; a box floor seen by a camera does"


def _map_points(h: np.ndarray, pts: tuple[Point, ...]) -> tuple[tuple[Point, ...], np.ndarray]:
    """Points through the homography ``h``; also the homogeneous scale of each point."""
    a = np.asarray(pts, dtype=float).reshape(-1, 2)
    hom = np.c_[a, np.ones(len(a))] @ h.T
    w = hom[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = hom[:, :2] / w[:, None]
    # 1e-4 px is far below anything measurable and keeps the numbers readable in run.json
    return tuple((round(float(x), 4), round(float(y), 4)) for x, y in xy), w


def _polygon_area(pts: tuple[Point, ...]) -> float:
    a = np.asarray(pts, dtype=float)
    x, y = a[:, 0], a[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _apply_template(
    template: Template, path: str, problems: _Problems
) -> tuple[tuple[Point, ...], list[Door], list[Chamber], list[tuple[Point, ...]], Scale] | None:
    """Map a template into pixels; ``None`` (with problems) where the fit folds it over."""
    h = template.homography()
    # A perspective map is one-to-one only on one side of its "horizon" line, where the
    # homogeneous scale w changes sign; the corners fix the side.
    _, w_corners = _map_points(h, template.template_corners)
    side = np.sign(w_corners[0])
    ok = True

    def mapped(pts: tuple[Point, ...], key: str) -> tuple[Point, ...]:
        nonlocal ok
        out, w = _map_points(h, pts)
        if np.any(np.sign(w) != side) or np.any(np.abs(w) < 1e-9):
            problems.add(
                key, f"{_show([list(p) for p in pts])} {template.units} lies too far outside "
                "template_corners: the perspective fit cannot map it; check corners_px"
            )
            ok = False
        return out

    polygon = mapped(template.polygon, f"{path}.polygon")
    doors = [
        Door(d.name, mapped(d.line, f"{path}.doors[{j}].line"))  # type: ignore[arg-type]
        for j, d in enumerate(template.doors)
    ]
    chambers = [
        Chamber(c.name, mapped((c.point,), f"{path}.chambers[{j}].point")[0])
        for j, c in enumerate(template.chambers)
    ]
    masks = [mapped(m, f"{path}.masks[{j}]") for j, m in enumerate(template.masks)]
    if not ok:
        return None
    area_cm2 = _polygon_area(template.polygon) * template.cm_per_unit**2
    area_px = _polygon_area(polygon)
    if area_cm2 <= 0 or area_px <= 0:
        problems.add(f"{path}.polygon", "has no area; list the corners in order around the arena")
        return None
    # The mean scale over the arena: perspective makes it vary across the floor.
    return polygon, doors, chambers, masks, Scale(px_per_cm=math.sqrt(area_px / area_cm2))


def _parse_arena(raw: Any, path: str, problems: _Problems) -> ArenaConfig | None:
    if not isinstance(raw, dict):
        problems.add(
            path, f"expected a mapping with name, polygon, doors, chambers; got {_show(raw)}"
        )
        return None
    _mapping(raw, path, problems, _ARENA_KEYS)
    n_before = len(problems.items) - problems.naming
    for key in ("name", "polygon", "chambers"):
        if key not in raw:
            problems.add(f"{path}.{key}", "is required")
    unit = _parse_units(raw, path, problems)
    name = _name(raw.get("name"), f"{path}.name", problems) if "name" in raw else None
    polygon = (
        _points(raw["polygon"], f"{path}.polygon", problems, 3, unit) if "polygon" in raw else None
    )
    doors = _parse_doors(raw, path, problems, unit)
    chambers = _parse_chambers(raw, path, problems, unit)
    masks = _parse_masks(raw, path, problems, unit)
    if unit == "px":
        _refuse_template_keys(raw, path, problems)
        corners = None
    else:
        corners = _parse_template_corners(raw, path, problems, unit, polygon)
    _check_unique_names(path, problems, doors, chambers)
    # problems so far concern the geometry; the animal and the scale do not, so an arena
    # with only those wrong is still built, to have its geometry checked too
    geometry_ok = len(problems.items) - problems.naming == n_before
    animal_id = None
    if raw.get("animal_id") is not None:
        animal_id = _name(raw["animal_id"], f"{path}.animal_id", problems)
    scale = _parse_scale(raw, path, problems) if unit == "px" else None
    if not geometry_ok or name is None or polygon is None:
        return None
    arena = ArenaConfig(
        name=name,
        polygon=polygon,
        doors=tuple(doors),
        chambers=tuple(chambers),
        masks=tuple(masks),
        animal_id=animal_id,
        scale=scale,
    )
    if corners is None:
        return arena
    return _fit_template(arena, unit, corners, path, problems)


def _parse_units(raw: dict, path: str, problems: _Problems) -> str:
    """The units the arena is drawn in: ``px`` (the default and the fallback) or a template's."""
    units = raw.get("units", "px")
    if units not in ("px", *UNITS_CM):
        problems.add(
            f"{path}.units",
            f"expected px (the default), {' or '.join(UNITS_CM)}; got {_show(units)}",
        )
        units = "px"
    return str(units)


def _refuse_template_keys(raw: dict, path: str, problems: _Problems) -> None:
    """Corners in an arena drawn in pixels: the user forgot ``units``, or left them over."""
    for key in ("corners_px", "template_corners"):
        if key in raw:
            problems.add(
                f"{path}.{key}", "is used only with a template drawn in cm or mm; add "
                "'units: cm' (polygon, doors, chambers and masks are then read in cm) or "
                "remove it"
            )


@dataclass(frozen=True)
class _TemplateCorners:
    """A template's four corners in this video (px) and in the drawing (its units); None
    where they are missing or unusable (a problem says why)."""

    corners_px: tuple[Point, ...] | None
    template_corners: tuple[Point, ...] | None


def _parse_template_corners(
    raw: dict, path: str, problems: _Problems, unit: str, polygon: tuple[Point, ...] | None
) -> _TemplateCorners:
    """The corners that fit a drawing in ``unit`` to the video; by default the drawing's
    corners are its polygon's bounding rectangle."""
    for key in ("px_per_cm", "scale"):
        if key in raw:
            problems.add(
                f"{path}.{key}", f"is not used with 'units: {unit}': the scale follows from "
                "corners_px; remove it"
            )
    if "corners_px" not in raw:
        problems.add(
            f"{path}.corners_px", f"is required with 'units: {unit}': the four corners of "
            "the box in this video's pixels, [[x, y], ...] (top-left, top-right, "
            "bottom-right, bottom-left)"
        )
    corners_px = _parse_quad(raw, "corners_px", path, problems, "px")
    if "template_corners" in raw:
        template_corners = _parse_quad(raw, "template_corners", path, problems, unit)
    else:
        template_corners = _bounding_corners(polygon, path, problems)
    return _TemplateCorners(corners_px, template_corners)


def _parse_quad(
    raw: dict, key: str, path: str, problems: _Problems, unit: str
) -> tuple[Point, ...] | None:
    """Four corners that a perspective fit can use, from ``raw[key]`` (None if absent)."""
    if key not in raw:
        return None
    kpath = f"{path}.{key}"
    pts = _points(raw[key], kpath, problems, 4, unit)
    if pts is not None and len(pts) != 4:
        problems.add(kpath, f"needs exactly 4 points, got {len(pts)}: {_show(raw[key])}")
        return None
    if pts is not None and (why := _quad_problem(pts)) is not None:
        problems.add(kpath, f"{_show(raw[key])}: {why}")
        return None
    return pts


def _bounding_corners(
    polygon: tuple[Point, ...] | None, path: str, problems: _Problems
) -> tuple[Point, ...] | None:
    """The corners of the polygon's bounding rectangle: TL, TR, BR, BL."""
    if polygon is None:
        return None
    xs = [p[0] for p in polygon]
    ys = [p[1] for p in polygon]
    corners = ((min(xs), min(ys)), (max(xs), min(ys)), (max(xs), max(ys)), (min(xs), max(ys)))
    if _quad_problem(corners) is not None:
        problems.add(f"{path}.polygon", "has no area; list the corners in order around "
                     "the arena")
        return None
    return corners


def _check_unique_names(
    path: str, problems: _Problems, doors: list[Door], chambers: list[Chamber]
) -> None:
    for what, items in (("door", doors), ("chamber", chambers)):
        seen: set[str] = set()
        for k, item in enumerate(items):
            if item.name in seen:
                key = "doors" if what == "door" else "chambers"
                problems.add(f"{path}.{key}[{k}].name", f"duplicate {what} name '{item.name}'; "
                             f"each {what} of an arena needs its own name")
            seen.add(item.name)


def _fit_template(
    drawn: ArenaConfig, unit: str, corners: _TemplateCorners, path: str, problems: _Problems
) -> ArenaConfig | None:
    """An arena drawn in ``unit`` mapped into this video's pixels, the drawing kept as its
    :class:`Template`; None (with problems) where the fit cannot map it."""
    # every geometry problem (missing or unusable corners among them) stopped the arena
    assert corners.corners_px is not None and corners.template_corners is not None
    template = Template(
        units=unit,
        corners_px=corners.corners_px,  # type: ignore[arg-type]
        template_corners=corners.template_corners,  # type: ignore[arg-type]
        polygon=drawn.polygon,
        doors=drawn.doors,
        chambers=drawn.chambers,
        masks=drawn.masks,
    )
    fitted = _apply_template(template, path, problems)
    if fitted is None:
        return None
    polygon, doors, chambers, masks, scale = fitted
    return replace(
        drawn,
        polygon=polygon,
        doors=tuple(doors),
        chambers=tuple(chambers),
        masks=tuple(masks),
        scale=scale,
        template=template,
    )


def _parse_settings(raw: dict, problems: _Problems) -> dict[str, Any]:
    """Every settings section, in file order of the problems: each one's defaults where it
    is missing, and where one of its values is wrong (with a problem)."""
    return {
        "background": _parse_background(raw.get("background"), problems),
        "detection": _parse_detection(raw.get("detection"), problems),
        "chambers": _parse_chamber_settings(raw.get("chambers"), problems),
        "video": _parse_video_settings(raw.get("video"), problems),
        "summary": _parse_summary_settings(raw.get("summary"), problems),
        "qc": _parse_qc(raw.get("qc"), problems),
        "trial": _parse_trial(raw.get("trial"), problems),
        "pose": _parse_pose(raw.get("pose"), problems),
    }


def _parse_background(raw: Any, problems: _Problems) -> BackgroundSettings:
    b = _mapping(raw, "background", problems,
                 {"samples": "", "follow_lighting": "", "remove_resting_mouse": ""})
    return BackgroundSettings(
        samples=_number(b.get("samples", 40), "background.samples", problems, minimum=3,
                        maximum=1000, integer=True) or 40,
        follow_lighting=_flag(b.get("follow_lighting", True), "background.follow_lighting",
                              problems),
        remove_resting_mouse=_flag(b.get("remove_resting_mouse", True),
                                   "background.remove_resting_mouse", problems),
    )


def _parse_detection(raw: Any, problems: _Problems) -> DetectionSettings:
    d = _mapping(
        raw,
        "detection",
        problems,
        {"animal": "", "threshold": "", "min_area_px": "", "max_area_px": "", "opening_px": "",
         "blur_px": "", "downscale": "", "background_update": "",
         "background_update_after_s": "", "background_update_margin_bl": ""},
    )
    animal = d.get("animal", "auto")
    if animal not in ("auto", "dark", "light"):
        problems.add("detection.animal", f"expected auto, dark or light, got {animal!r}")
        animal = "auto"
    opening = _number(d.get("opening_px"), "detection.opening_px", problems, minimum=0,
                      maximum=51, integer=True, allow_auto=True)
    blur = _number(d.get("blur_px", 3), "detection.blur_px", problems, minimum=0, maximum=51,
                   integer=True)
    downscale = _parse_downscale(d.get("downscale", "auto"), problems)
    det = DetectionSettings(
        animal=animal,
        threshold=_number(d.get("threshold"), "detection.threshold", problems, minimum=1,
                          maximum=254, allow_auto=True),
        min_area_px=_number(d.get("min_area_px"), "detection.min_area_px", problems, minimum=1,
                            allow_auto=True),
        max_area_px=_number(d.get("max_area_px"), "detection.max_area_px", problems, minimum=1,
                            allow_auto=True),
        opening_px=None if opening is None else int(opening),
        blur_px=3 if blur is None else int(blur),
        downscale=downscale,
        **_parse_background_update(d, problems),
    )
    if det.min_area_px and det.max_area_px and det.min_area_px >= det.max_area_px:
        problems.add("detection.max_area_px", "must be larger than detection.min_area_px")
    return det


def _parse_background_update(d: dict, problems: _Problems) -> dict[str, Any]:
    """``detection.background_update`` (auto, on, off) and its two numbers."""
    mode = d.get("background_update", "auto")
    mode = {True: "on", False: "off"}.get(mode, mode)  # YAML reads a bare on/off as bool
    if mode not in ("auto", "on", "off"):
        problems.add("detection.background_update", f"expected auto, on or off, got {mode!r}")
        mode = "auto"
    after = _number(d.get("background_update_after_s", 10.0),
                    "detection.background_update_after_s", problems, minimum=2, maximum=3600)
    margin = _number(d.get("background_update_margin_bl", 1.0),
                     "detection.background_update_margin_bl", problems, minimum=0.5, maximum=10)
    return {"background_update": mode,
            "background_update_after_s": 10.0 if after is None else float(after),
            "background_update_margin_bl": 1.0 if margin is None else float(margin)}


def _parse_downscale(downscale: Any, problems: _Problems) -> int | None:
    """``detection.downscale``: 1, 2 or 4, or None for auto (also where it is wrong)."""
    if downscale == "auto" or downscale is None:
        return None
    if downscale not in (1, 2, 4) or isinstance(downscale, bool):
        problems.add("detection.downscale", f"expected auto, 1, 2 or 4, got {downscale!r}")
        return None
    return int(downscale)


def _parse_chamber_settings(raw: Any, problems: _Problems) -> ChamberSettings:
    c = _mapping(raw, "chambers", problems,
                 {"hysteresis_px": "", "backdate_crossings": "", "rule": "",
                  "enter_fraction": "", "exit_fraction": ""})
    hyst = _number(c.get("hysteresis_px", 6.0), "chambers.hysteresis_px", problems, minimum=0)
    backdate = c.get("backdate_crossings", True)
    if not isinstance(backdate, bool):
        problems.add(
            "chambers.backdate_crossings", f"expected true or false, got {backdate!r}"
        )
        backdate = True
    return ChamberSettings(
        hysteresis_px=6.0 if hyst is None else hyst, backdate_crossings=backdate,
        **_parse_entry_rule(c, problems),
    )


def _parse_entry_rule(c: dict, problems: _Problems) -> dict[str, Any]:
    """``chambers.rule`` and its fractions: 0.5 <= enter_fraction <= 1 (the mouse can meet
    it in one chamber at a time) and 0 < exit_fraction <= enter_fraction."""
    rule = c.get("rule", "point")
    if rule not in CHAMBER_RULES:
        problems.add("chambers.rule", f"expected point or body_fraction, got {_show(rule)}")
        rule = "point"
    defaults = ChamberSettings()
    fractions = {}
    for key in ("enter_fraction", "exit_fraction"):
        if key in c and rule != "body_fraction":
            problems.add(f"chambers.{key}", "is used only with chambers.rule: body_fraction; "
                         "set that rule or remove the key")
        v = _number(c.get(key, getattr(defaults, key)), f"chambers.{key}", problems,
                    maximum=1)
        if v is not None and v <= 0:
            problems.add(f"chambers.{key}", f"must be above 0, got {_show(c.get(key))}")
            v = None
        fractions[key] = getattr(defaults, key) if v is None else v
    enter, leave = fractions["enter_fraction"], fractions["exit_fraction"]
    if "enter_fraction" in c and enter < 0.5:
        problems.add("chambers.enter_fraction", f"must be at least 0.5 (more than half of the "
                     f"mouse in the chamber it enters), got {_show(c['enter_fraction'])}")
    elif leave > enter:
        problems.add("chambers.exit_fraction", f"must not exceed chambers.enter_fraction "
                     f"({enter:g}), got {leave:g}")
    return {"rule": rule, **fractions}


def _parse_video_settings(raw: Any, problems: _Problems) -> VideoSettings:
    v = _mapping(raw, "video", problems, {"gap_factor": "", "checkpoint_s": "", "reader": "",
                                          "fast_decode": ""})
    gap = _number(v.get("gap_factor", 2.5), "video.gap_factor", problems, minimum=1.1)
    ckpt = _number(v.get("checkpoint_s", 300.0), "video.checkpoint_s", problems, minimum=1)
    reader = v.get("reader", "opencv")
    if reader not in ("opencv", "pyav"):
        problems.add("video.reader", f"expected opencv or pyav, got {_show(reader)}")
        reader = "opencv"
    fast = _flag(v.get("fast_decode", False), "video.fast_decode", problems)
    if fast and reader != "pyav":
        problems.add("video.fast_decode", "needs video.reader: pyav (OpenCV does not pass "
                     "decoder options through); set video.reader: pyav or remove fast_decode")
    return VideoSettings(gap_factor=gap or 2.5, checkpoint_s=ckpt or 300.0, reader=reader,
                         fast_decode=fast)


def _parse_summary_settings(raw: Any, problems: _Problems) -> SummarySettings:
    s = _mapping(raw, "summary", problems, {"min_step_px": "", "bin_s": "", "windows": ""})
    step = _number(s.get("min_step_px", 2.0), "summary.min_step_px", problems, minimum=0)
    bin_s = None
    if s.get("bin_s") is not None:
        bin_s = _number(s["bin_s"], "summary.bin_s", problems, minimum=1)
    return SummarySettings(
        min_step_px=2.0 if step is None else step,
        bin_s=bin_s,
        windows=_parse_windows(s.get("windows"), "summary.windows", problems),
    )


def _parse_qc(raw: Any, problems: _Problems) -> QcSettings:
    defaults = QcSettings()
    q = _mapping(raw, "qc", problems, {k: "" for k in asdict(defaults)})
    qc_values = {}
    for key, default in asdict(defaults).items():
        share = key.startswith(("max_undetected", "max_multi", "max_area", "max_unobserved",
                                "min_read", "max_unknown"))
        v = _number(q.get(key, default), f"qc.{key}", problems, minimum=0,
                    maximum=1 if share else None)
        qc_values[key] = default if v is None else float(v)
    if qc_values["max_speed_cm_s"] <= 0:
        problems.add("qc.max_speed_cm_s", "must be positive")
    return QcSettings(**qc_values)


def _parse_windows(raw: Any, path: str, problems: _Problems) -> tuple[TimeWindow, ...]:
    """``{name: [start_s, end_s], ...}``; ``end_s`` may be ``null`` or ``end`` (to the end)."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        problems.add(
            path,
            f"expected a mapping of named windows such as {{habituation: [0, 300], "
            f"test: [300, 1200]}}, got {raw!r}",
        )
        return ()
    windows = []
    for key, value in raw.items():
        wpath = f"{path}.{key}"
        name = _name(key, wpath, problems)
        if name is not None and name.lower() in RESERVED_NAMES:
            problems.add(wpath, f"'{name}' is reserved by the tool; choose another name")
            name = None
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            problems.add(
                wpath,
                f"expected [start_s, end_s] (seconds from the start of the video; end_s may "
                f"be 'end'), got {value!r}",
            )
            continue
        start = _number(value[0], f"{wpath}[0]", problems, minimum=0)
        end = None
        if value[1] is not None and value[1] != "end":
            end = _number(value[1], f"{wpath}[1]", problems, minimum=0)
            if end is None:
                continue
            if start is not None and end <= start:
                problems.add(wpath, f"ends ({end:g} s) before it starts ({start:g} s)")
                continue
        if name is not None and start is not None:
            windows.append(TimeWindow(name, start, end))
    return tuple(windows)


def _parse_trial(raw: Any, problems: _Problems) -> TrialSettings:
    t = _mapping(raw, "trial", problems, {"start": "", "search_s": "", "settle_s": ""})
    start = parse_trial_start(t.get("start", 0.0))
    if start is None:
        problems.add("trial.start", f"expected 'auto' or a number of seconds from the start "
                                    f"of the video (at least 0), got {_show(t.get('start'))}")
        start = 0.0
    search = _number(t.get("search_s", 600.0), "trial.search_s", problems, minimum=1)
    settle = _number(t.get("settle_s", 1.0), "trial.settle_s", problems, minimum=0,
                     maximum=60)
    return TrialSettings(start=start, search_s=600.0 if search is None else search,
                         settle_s=1.0 if settle is None else settle)


def _parse_pose(raw: Any, problems: _Problems) -> PoseSettings:
    p = _mapping(raw, "pose", problems, {"point": "", "min_likelihood": "", "individual": ""})
    point = p.get("point", [])
    names = [point] if isinstance(point, str) else point
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        problems.add("pose.point", f"expected a keypoint name or a list of them, got "
                                   f"{_show(point)}")
        names = []
    likelihood = _number(p.get("min_likelihood", 0.6), "pose.min_likelihood", problems,
                         minimum=0, maximum=1)
    individual = p.get("individual")
    if individual is not None and not (isinstance(individual, (str, int))
                                       and not isinstance(individual, bool)):
        problems.add("pose.individual", f"expected the name of an individual in the pose "
                                        f"file, or {BY_ARENA}, got {_show(individual)}")
        individual = None
    return PoseSettings(
        point=tuple(n.strip() for n in names),
        min_likelihood=0.6 if likelihood is None else likelihood,
        individual=None if individual is None else str(individual),
    )


def parse_trial_start(value: Any) -> float | str | None:
    """A trial start as written (``auto``, or seconds >= 0, also as text): ``"auto"`` or the
    seconds; None when it is neither."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, bool) or not _is_number(value):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


def parse_config(raw: Any, source: str = "<config>") -> Config:
    """Validate a configuration mapping (as loaded from YAML) and return a :class:`Config`.

    Every problem found is collected; a :class:`~cpp_tracker.errors.ConfigError` lists them
    all, each with its key path (``arenas[0].doors[1].line``).
    """
    problems = _Problems()
    if raw is None:
        raise ConfigError(source, "the file is empty; it needs at least an 'arenas' list")
    if not isinstance(raw, dict):
        raise ConfigError(
            source, f"the file must be a YAML mapping with an 'arenas' list, got {_show(raw)}"
        )
    _mapping(raw, "", problems, _TOP_KEYS)
    frame_size = _parse_frame_size(raw.get("frame_size"), problems)
    arenas = _parse_arenas(raw, problems)
    _check_unique_arenas(arenas, problems)
    settings = _parse_settings(raw, problems)
    config = Config(arenas=tuple(a for a in arenas if a is not None), frame_size=frame_size,
                    source=source, **settings)
    _add_geometry_problems(config, arenas, problems)
    if problems.items:
        raise ConfigError(source, problems.items)
    return config


def _parse_frame_size(raw: Any, problems: _Problems) -> tuple[int, int] | None:
    """``frame_size: [width, height]``, the frame the config was drawn on (None if absent)."""
    if raw is None:
        return None
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        problems.add(
            "frame_size", "expected [width, height] of the video frame the config was drawn "
            f"on, in pixels (e.g. [640, 480]), got {_show(raw)}"
        )
        return None
    size = [_number(v, f"frame_size[{i}]", problems, minimum=1, integer=True)
            for i, v in enumerate(raw)]
    if size[0] is None or size[1] is None:
        return None
    return (int(size[0]), int(size[1]))


def _parse_arenas(raw: dict, problems: _Problems) -> list[ArenaConfig | None]:
    """The ``arenas`` list, one entry per arena in the file (None where it did not parse)."""
    raw_arenas = raw.get("arenas")
    if "arenas" not in raw:
        problems.add("arenas", "is required: a list with at least one arena")
    elif not isinstance(raw_arenas, list) or not raw_arenas:
        problems.add(
            "arenas",
            f"expected a list with at least one arena (- name: ...), got {_show(raw_arenas)}",
        )
        raw_arenas = []
    return [_parse_arena(a, f"arenas[{i}]", problems) for i, a in enumerate(raw_arenas or [])]


def _check_unique_arenas(arenas: list[ArenaConfig | None], problems: _Problems) -> None:
    for what in ("name", "animal_id"):
        seen: dict[str, int] = {}
        for i, arena in enumerate(arenas):
            value = None if arena is None else getattr(arena, what)
            if value is None:
                continue
            if value in seen:
                problems.add(
                    f"arenas[{i}].{what}", f"duplicate {what} '{value}': arenas[{seen[value]}] "
                    f"has it too; each arena needs its own {what}"
                )
            else:
                seen[value] = i


def _add_geometry_problems(
    config: Config, arenas: list[ArenaConfig | None], problems: _Problems
) -> None:
    """The drawing's problems, at the key paths of the arenas' places in the file."""
    # Geometry (simple polygons, doors crossing, one point per piece, overlaps) needs
    # well-formed values: it is checked for every arena that parsed, whatever else is wrong.
    from ..geometry.chambers import geometry_problems

    places = [i for i, a in enumerate(arenas) if a is not None]
    for path, message in geometry_problems(config):
        match = re.match(r"arenas\[(\d+)\]", path)
        if match:
            path = f"arenas[{places[int(match.group(1))]}]" + path[match.end():]
        problems.add(path, message)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found; check the path given to --config") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(path), f"cannot be read ({e})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        hint = "check indentation and brackets"
        if "\t" in text:  # YAML forbids tabs for indentation; editors hide them
            hint = "it contains tabs: indent with spaces, not tabs"
        raise ConfigError(str(path), f"is not valid YAML ({where}{problem}); {hint}") from None
    return parse_config(raw, source=str(path))


# --------------------------------------------------------------------------------------
# serialisation


def _arena_dict(a: ArenaConfig) -> dict[str, Any]:
    """One arena as plain data, as the user wrote it."""
    d: dict[str, Any] = {"name": a.name}
    if a.animal_id is not None:
        d["animal_id"] = a.animal_id
    # a template is written as the user wrote it (in its units), so that the resolved
    # config reads back to the same config; geometry_in_pixels() gives the mapped form
    t = a.template
    if t is not None:
        d["units"] = t.units
        d["corners_px"] = [list(p) for p in t.corners_px]
        d["template_corners"] = [list(p) for p in t.template_corners]
    d.update(_geometry_dict(t if t is not None else a))
    if a.scale is not None and t is None:
        if a.scale.points is not None:
            d["scale"] = {
                "points": [list(p) for p in a.scale.points],
                "distance_cm": a.scale.distance_cm,
            }
        else:
            d["px_per_cm"] = a.scale.px_per_cm
    return d


def config_to_dict(config: Config) -> dict[str, Any]:
    """The resolved configuration as plain data (every default filled in), YAML-ready."""
    arenas = [_arena_dict(a) for a in config.arenas]
    out: dict[str, Any] = {}
    if config.frame_size is not None:  # absent: the hash of a config without it is unchanged
        out["frame_size"] = list(config.frame_size)
    out["arenas"] = arenas
    for key in ("background", "detection", "chambers", "video", "summary", "qc"):
        out[key] = asdict(getattr(config, key))
    if config.trial != TrialSettings():  # absent: the hash of a config without it is unchanged
        out["trial"] = asdict(config.trial)
    if config.pose != PoseSettings():  # absent: the hash of a config without it is unchanged
        out["pose"] = {**asdict(config.pose), "point": list(config.pose.point)}
    out["summary"]["windows"] = {
        w.name: [w.start_s, "end" if w.end_s is None else w.end_s]
        for w in config.summary.windows
    }
    _drop_newer_keys_at_defaults(out, config)
    # 'auto' reads better than null for automatic values
    for k, v in out["detection"].items():
        if v is None:
            out["detection"][k] = "auto"
    return copy.deepcopy(out)


def _drop_newer_keys_at_defaults(out: dict[str, Any], config: Config) -> None:
    """Keys added after configs were first hashed are left out at their defaults, so the
    hash of a config from before them is unchanged."""
    for k in ("background_update", "background_update_after_s", "background_update_margin_bl"):
        if out["detection"][k] == getattr(DetectionSettings, k):
            del out["detection"][k]
    if config.chambers.rule == "point":
        for k in ("rule", "enter_fraction", "exit_fraction"):
            del out["chambers"][k]
    for k in ("reader", "fast_decode"):
        if out["video"][k] == getattr(VideoSettings, k):
            del out["video"][k]


def with_default_sections(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved config (as :func:`config_to_dict` gives it and ``run.json`` stores it) with
    the sections it leaves out at their defaults filled in (``trial``), so that two can be
    compared key by key (anything but a mapping is returned as it is)."""
    if not isinstance(resolved, dict):
        return resolved
    out = dict(resolved)
    if not isinstance(out.get("trial"), dict):
        out["trial"] = asdict(TrialSettings())
    if not isinstance(out.get("pose"), dict):
        out["pose"] = {**asdict(PoseSettings()), "point": []}
    return out


def _geometry_dict(g: ArenaConfig | Template) -> dict[str, Any]:
    return {
        "polygon": [list(p) for p in g.polygon],
        "doors": [{"name": door.name, "line": [list(p) for p in door.line]} for door in g.doors],
        "chambers": [{"name": c.name, "point": list(c.point)} for c in g.chambers],
        "masks": [[list(p) for p in m] for m in g.masks],
    }


def geometry_in_pixels(config: Config) -> list[dict[str, Any]]:
    """Per arena, the geometry in video pixels as used for tracking (for run.json).

    For arenas drawn in pixels this repeats the config; for a template in cm it is the
    result of the perspective fit, with the mean ``px_per_cm`` over the arena.
    """
    out = []
    for a in config.arenas:
        d: dict[str, Any] = {"name": a.name, **_geometry_dict(a)}
        d["px_per_cm"] = a.px_per_cm
        out.append(d)
    return copy.deepcopy(out)


def config_hash(config: Config) -> str:
    """A short, stable hash of the resolved configuration (sha256 of canonical JSON)."""
    text = json.dumps(config_to_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_against_frame(config: Config, width: int, height: int, video: str = "") -> None:
    """Raise :class:`ConfigError` when the config does not fit a video of ``width`` x
    ``height`` pixels.

    A config that says which frame it was drawn on (``frame_size``) fits only a video of
    that size: another size raises one sentence saying what to do (a template in cm too:
    its ``corners_px`` are pixels of the frame it was fitted to). Then every coordinate
    outside the frame is named: the arena outlines, chamber points, scale points and a
    template's corners. Masks may reach over the wall and out of the picture (only their
    part inside the arena counts; :func:`~cpp_tracker.geometry.chambers.geometry_problems`
    rejects a mask that misses its arena).
    """
    if config.frame_size is not None and tuple(config.frame_size) != (width, height):
        raise ConfigError(config.source, _other_frame_size(config, width, height, video))
    problems = _points_outside_frame(config, width, height, video)
    if problems.items:
        raise ConfigError(config.source, problems.items)


def _points_outside_frame(config: Config, width: int, height: int, video: str) -> _Problems:
    """A problem for each coordinate outside the frame (a template's as written too)."""
    problems = _Problems()
    frame = f"(0..{width} x 0..{height} px{' of ' + video if video else ''})"

    def check(p: Point, path: str, written: Point | None = None, units: str = "") -> None:
        x, y = p
        if not (0 <= x <= width and 0 <= y <= height):
            if written is None:
                problems.add(path, f"point [{x:g}, {y:g}] lies outside the video frame {frame}")
            else:
                problems.add(
                    path, f"point [{written[0]:g}, {written[1]:g}] {units} maps to "
                    f"[{x:.1f}, {y:.1f}] px, outside the video frame {frame}; check corners_px"
                )

    for i, a in enumerate(config.arenas):
        t = a.template
        if t is not None:
            for k, p in enumerate(t.corners_px):
                check(p, f"arenas[{i}].corners_px[{k}]")
        for k, p in enumerate(a.polygon):
            check(p, f"arenas[{i}].polygon[{k}]", *((t.polygon[k], t.units) if t else ()))
        for j, c in enumerate(a.chambers):
            check(
                c.point, f"arenas[{i}].chambers[{j}].point",
                *((t.chambers[j].point, t.units) if t else ()),
            )
        if a.scale is not None and a.scale.points is not None:
            for k, p in enumerate(a.scale.points):
                check(p, f"arenas[{i}].scale.points[{k}]")
    return problems


def _other_frame_size(config: Config, width: int, height: int, video: str) -> str:
    """The sentence for a video whose frame is not the one the config was drawn on."""
    drawn_w, drawn_h = config.frame_size  # type: ignore[misc]
    said = (f"drawn on a {drawn_w}x{drawn_h} frame (frame_size), but {video or 'the video'} "
            f"is {width}x{height}")
    if config.arenas and all(a.template is not None for a in config.arenas):
        return (f"{said}; the drawing in cm fits any camera, but corners_px are pixels of the "
                f"{drawn_w}x{drawn_h} frame: give this camera's corners_px and "
                f"frame_size: [{width}, {height}]")
    return (f"{said}; redraw it for this camera (cpp-tracker init / draw), or use a template "
            "in cm (units: cm) with this camera's corners_px")
