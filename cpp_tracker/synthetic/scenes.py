"""Seeded synthetic CPP videos with known ground truth.

This module renders overhead videos of one to four Conditioned Place
Preference (CPP) boxes, each with one mouse, and returns the exact ground
truth: the centroid of the mouse (body + head, the tail excluded) in every
written frame, the chamber it is in, whether it moves, and the geometry of
the boxes as a configuration dictionary in the project's format.

The videos are meant to be hard in the ways real recordings are hard:
textured and differently bright chamber floors, shadows along the walls,
vignetting, a thin wiggling tail, gait-dependent body shape, motion blur,
head pokes into doorways and stops in the doorway, long rests and sleep,
sensor noise, slow and abrupt lighting changes, dropped frames (gaps in the
presentation timestamps), blinking or swinging distractors and lossy
H.264 / MPEG-4 compression.

Geometry conventions: coordinates are pixels, ``x`` is the column and
``y`` the row, origin top-left, and the centre of pixel ``(col, row)`` is
at ``(col, row)``; the edges of that pixel are at ``col - 0.5`` and
``col + 0.5``.

Examples
--------
>>> from cpp_tracker.synthetic import SceneSpec, make_scene
>>> truth = make_scene(SceneSpec(duration_s=5.0, seed=3))
>>> sorted(truth.track.columns)
['arena', 'chamber', 'frame', 'moving', 'time_s', 'x', 'y']

Command line::

    python -m cpp_tracker.synthetic --out sample_videos/cpp_sample.mp4 --seed 1 --duration 60
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from . import boxes
from .bedding import (
    BEDDING_KINDS,
    BeddingScene,
    add_bedding_floor,
    build_bedding,
    day_contrast,
    draw_kicked_bedding,
    night_picture,
)
from .experimenter import (
    Session,
    confine_until_doors_open,
    draw_door_plates,
    draw_hands,
    lid_gain,
    mouse_visible,
    plan_session,
    plate_level,
    with_hands_clear,
)

__all__ = [
    "ArenaSpec",
    "SceneSpec",
    "GroundTruth",
    "make_scene",
    "generate_video",
    "iter_frames",
    "truncate_file",
    "damage_bytes",
    "chamber_of",
    "scaled",
    "body_length_px",
    "body_shares",
    "main",
]

# ---------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------

_SS = 4  # supersampling factor used for anti-aliased drawing and exact masks
_SHIFT = 4  # fixed-point fraction bits for cv2.fillPoly / cv2.polylines

_FLOOR_LEVEL = {"light": 195.0, "grey": 102.0, "dark": 55.0}
_WALL_LEVEL = {"dark": 30.0, "light": 228.0}
_TABLE_LEVEL = 138.0
# mouse: (body base, sheen on the back, tail)
_MOUSE_LEVEL = {"dark": (30.0, 22.0, 72.0), "light": (204.0, 26.0, 172.0)}

_CHAMBER_NAMES = {
    1: ("open",),
    2: ("paired", "unpaired"),
    3: ("paired", "neutral", "unpaired"),
}

_MOVING_CM_S = 1.0  # planned centroid speed above which the mouse counts as moving


# ---------------------------------------------------------------------------
# public specifications
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArenaSpec:
    """One CPP box in the scene.

    Parameters
    ----------
    n_chambers : int
        2 (paired | unpaired) or 3 (paired | neutral | unpaired, the neutral
        centre chamber narrower); 1 gives an open field with no inner walls
        (one chamber, ``open``), e.g. to test that no door is invented. Which side is
        "paired" is drawn from the seed.
    door_angle_deg : float
        Tilt of the dividing wall(s) from vertical, in degrees (|angle| <= 30).
    animal_id : str or None
        Written to the config as ``animal_id`` when set.
    """

    n_chambers: int = 2
    door_angle_deg: float = 0.0
    animal_id: str | None = None

    def __post_init__(self) -> None:
        if self.n_chambers not in (1, 2, 3):
            raise ValueError("n_chambers must be 1, 2 or 3")
        if not -30.0 <= float(self.door_angle_deg) <= 30.0:
            raise ValueError("door_angle_deg must be within [-30, 30]")


@dataclass(frozen=True)
class SceneSpec:
    """Everything that defines a synthetic video; equal specs give equal videos.

    Parameters
    ----------
    width, height : int
        Frame size in pixels; both must be even (yuv420p).
    fps : float
        Nominal frame rate.
    duration_s : float
        Length of the recording in seconds (including dropped stretches).
    seed : int
        Seed of every random choice (paths, layout details, noise).
    arenas : tuple of ArenaSpec
        1 to 4 boxes laid out side by side / stacked / in a 2x2 grid.
    mouse : {"dark", "light"}
        Black or white mouse.
    floor : {"light", "grey", "dark"}
        Floor brightness (dark mouse on grey floor: contrast about 40-70 levels).
    wall : {"dark", "light"}
        Wall colour.
    floor_texture : bool
        Differently textured and slightly differently bright chamber floors
        (grid bars | plain | perforated). ``False`` gives one plain floor.
    noise_sigma : float
        Standard deviation of the gaussian sensor noise, grey levels.
    rest_fraction : float
        Approximate fraction of the awake time the mouse sits still, in
        rests and pauses of varied length (turns in place count as still).
    sleep_fraction : float
        If > 0, one single still period in one chamber lasting this fraction
        of the video.
    light_drift : float
        Slow multiplicative brightness drift, gain ``1 + light_drift * t / duration``.
    light_steps : tuple of (time_s, gain)
        Abrupt global brightness changes: from ``time_s`` on, the gain is
        ``gain`` (absolute, not cumulative; multiplied with the drift).
    dropped : tuple of (start_s, end_s)
        Stretches whose frames are not written; timestamps jump over them.
    distractor : {None, "blink", "cable"}
        A blinking light spot or a swinging thin cable in a corner of box1.
        Its polygon is returned as ``GroundTruth.distractor_polygon``.
    distractor_scale : float
        Extension: size factor of the distractor (the light spot's radius, the cable's
        thickness), 1 by default. At 2 a lit spot outgrows a light mouse, so a tracker
        without a mask over it jumps to the spot.
    codec : {"h264", "mp4v"}
        libx264 or MPEG-4 part 2.
    crf : int
        x264 constant rate factor (for mp4v it is mapped to a quantiser).
    cm_per_box_width : float
        Physical inner width of a box, giving ``px_per_cm`` in the config.
    boli : int
        Extension: number of fecal boli the mouse in each box drops during
        the video (small dark specks that stay; they change the background).
    tail_base_frac : float or None
        Extension: width of the tail at its base as a fraction of the body width (a real
        mouse's is about 1/10 to 1/8); the tail tapers to 60 % of that over its second
        half. ``None``: a fixed 1.9 px tapering to 1.2 px, whatever the mouse's size.
    shadow_depth : float
        Extension: a soft shadow around the mouse, offset a little to one side, this many
        grey levels deep where it is darkest (0: none). It is not part of the mouse: the
        truth is still the centroid of body and head.
    mouse_size : float
        Extension: the mouse's length relative to the box, 1 by default (body 9 % of the
        floor's width, a large box); a real CPP box 40-60 cm wide with a 9-cm mouse is
        about 1.5-2.
    experimenter : bool
        Extension: the session starts as a real one does (see
        :mod:`cpp_tracker.synthetic.experimenter`): the box empty with its doors closed by
        guillotine plates, a gloved hand putting each mouse into its start chamber and
        leaving, the doors lifted; the mouse stays in its start chamber until then. Times
        are drawn from the seed; ``GroundTruth.trial_start_s`` is when the last hand has
        left its box (no part of it over the outer walls) and the doors are open.
    doors_open_s : float or None
        Extension, with ``experimenter``: when the doors are lifted (None: drawn from the
        seed, 2-7.5 s after the last hand has left the frame; open fields have no doors).
    lid_gain : float
        Extension, with ``experimenter``: the brightness factor for half a second when the
        lid closes, after the last hand has left (1: no change).
    partition : {"wall", "thin", "floor_step"}
        Extension (:mod:`.boxes`): the dividing walls as a band as thick as the outer walls,
        a thin partition, or none visible (the chambers differ only by floor; the doorway
        is where the floors meet).
    chamber_floors : tuple of str
        Extension: one floor per chamber, left to right, of ``plain``, ``chips``, ``paper``
        (bedding), ``grid``, ``holes``, ``light``, ``dark``; ``()``: as ``floor_texture``.
    guillotine : bool
        Extension: a door slot beside each opening with the lifted guillotine plate seen as a
        bar of another grey across it.
    chamber_walls : tuple of str
        Extension: one wall colour per chamber (``dark`` / ``light``); ``()``: ``wall``.
    wall_face : float
        Extension: inner wall faces seen in perspective inside the wall tops, this fraction
        of the box's width (0: none); the truth outline is the floor inside them.
    camera_offset : float
        Extension: the camera off-centre to one side (-0.9..0.9): the far wall's face looks
        ``1 + camera_offset`` times as wide, the near one's ``1 - camera_offset``.
    night_ir : bool
        Extension: an infrared night picture (grey, low contrast: the mouse 14 grey levels
        from the floor; darker corners).
    bedding : {None, "chips", "paper"}
        Extension: a bedding floor (wood chips or paper bedding) textured over the floor.
    kicks : int
        Extension: times the mouse in each box kicks bedding around: a floor patch of
        0.5-2 mouse areas next to it changes brightness and texture and stays changed (see
        :mod:`cpp_tracker.synthetic.bedding`).
    ir_contrast : float
        Extension: an infrared night picture, the mouse's body this many grey levels from
        the floor (darker or lighter as ``mouse`` says; 0: the day picture). Needs a mouse
        that stands out by day (e.g. dark on a light or grey floor).
    vignetting : float
        Extension, with ``ir_contrast``: the corners this fraction darker (floor and
        mouse alike).
    flicker : float
        Extension, with ``ir_contrast``: relative amplitude of the lamp's flicker.

    A scene rendered at ``k`` times the size (:func:`scaled`) is the same scene: the boxes,
    the mouse, its path, the tail (with ``tail_base_frac``) and the shadow scale with the
    frame; only the sensor noise and texture grain stay per pixel.
    """

    width: int = 320
    height: int = 240
    fps: float = 30.0
    duration_s: float = 60.0
    seed: int = 0
    arenas: tuple[ArenaSpec, ...] = (ArenaSpec(),)
    mouse: str = "dark"
    floor: str = "light"
    wall: str = "dark"
    floor_texture: bool = True
    noise_sigma: float = 3.0
    rest_fraction: float = 0.2
    sleep_fraction: float = 0.0
    light_drift: float = 0.0
    light_steps: tuple[tuple[float, float], ...] = ()
    dropped: tuple[tuple[float, float], ...] = ()
    distractor: str | None = None
    distractor_scale: float = 1.0
    codec: str = "h264"
    crf: int = 23
    cm_per_box_width: float = 60.0
    boli: int = 0
    tail_base_frac: float | None = None
    shadow_depth: float = 0.0
    mouse_size: float = 1.0
    experimenter: bool = False
    doors_open_s: float | None = None
    lid_gain: float = 1.0
    partition: str = "wall"
    chamber_floors: tuple[str, ...] = ()
    guillotine: bool = False
    chamber_walls: tuple[str, ...] = ()
    wall_face: float = 0.0
    camera_offset: float = 0.0
    night_ir: bool = False
    bedding: str | None = None
    kicks: int = 0
    ir_contrast: float = 0.0
    vignetting: float = 0.0
    flicker: float = 0.0

    def __post_init__(self) -> None:
        # accept lists for the tuple fields (e.g. from YAML / argparse)
        object.__setattr__(self, "arenas", tuple(self.arenas))
        object.__setattr__(
            self, "light_steps", tuple((float(a), float(b)) for a, b in self.light_steps)
        )
        object.__setattr__(self, "dropped", tuple((float(a), float(b)) for a, b in self.dropped))
        object.__setattr__(self, "chamber_floors", tuple(self.chamber_floors))
        object.__setattr__(self, "chamber_walls", tuple(self.chamber_walls))
        self._check_frame_and_boxes()
        self._check_looks()
        self._check_amounts()
        boxes.check_box_options(self)
        self._check_bedding()

    def _check_frame_and_boxes(self) -> None:
        if self.width % 2 or self.height % 2:
            raise ValueError("width and height must be even")
        if self.width < 64 or self.height < 48:
            raise ValueError("frame too small (minimum 64x48)")
        if not 1 <= len(self.arenas) <= 4:
            raise ValueError("1 to 4 arenas are supported")
        if not all(isinstance(a, ArenaSpec) for a in self.arenas):
            raise TypeError("arenas must be ArenaSpec instances")
        if self.fps <= 0 or self.duration_s <= 0:
            raise ValueError("fps and duration_s must be positive")

    def _check_looks(self) -> None:
        if self.mouse not in _MOUSE_LEVEL:
            raise ValueError(f"mouse must be one of {sorted(_MOUSE_LEVEL)}")
        if self.floor not in _FLOOR_LEVEL:
            raise ValueError(f"floor must be one of {sorted(_FLOOR_LEVEL)}")
        if self.wall not in _WALL_LEVEL:
            raise ValueError(f"wall must be one of {sorted(_WALL_LEVEL)}")
        if self.distractor not in (None, "blink", "cable"):
            raise ValueError("distractor must be None, 'blink' or 'cable'")
        if not 0.25 <= float(self.distractor_scale) <= 4.0:
            raise ValueError("distractor_scale must be within [0.25, 4]")
        if self.codec not in ("h264", "mp4v"):
            raise ValueError("codec must be 'h264' or 'mp4v'")

    def _check_amounts(self) -> None:
        if not 0.0 <= self.rest_fraction < 0.95:
            raise ValueError("rest_fraction must be in [0, 0.95)")
        if not 0.0 <= self.sleep_fraction < 1.0:
            raise ValueError("sleep_fraction must be in [0, 1)")
        if self.noise_sigma < 0:
            raise ValueError("noise_sigma must be >= 0")
        if self.tail_base_frac is not None and not 0.0 < self.tail_base_frac <= 0.5:
            raise ValueError("tail_base_frac must be in (0, 0.5] or None")
        if not 0.6 <= float(self.mouse_size) <= 2.2:
            raise ValueError("mouse_size must be within [0.6, 2.2]")
        if not 0.0 <= self.shadow_depth <= 100.0:
            raise ValueError("shadow_depth must be within [0, 100] grey levels")
        for a, b in self.dropped:
            if not b > a:
                raise ValueError("dropped stretches need end_s > start_s")
        if self.doors_open_s is not None and not 0.0 <= self.doors_open_s < self.duration_s:
            raise ValueError("doors_open_s must be within the video")
        if not 0.5 <= self.lid_gain <= 1.5:
            raise ValueError("lid_gain must be within [0.5, 1.5]")

    def _check_bedding(self) -> None:
        if self.bedding not in BEDDING_KINDS:
            raise ValueError("bedding must be None, 'chips' or 'paper'")
        if not 0 <= int(self.kicks) <= 20 or int(self.kicks) != self.kicks:
            raise ValueError("kicks must be a whole number within [0, 20]")
        if self.ir_contrast and not 4.0 <= self.ir_contrast <= 60.0:
            raise ValueError("ir_contrast must be 0 (day) or within [4, 60] grey levels")
        if self.ir_contrast and abs(day_contrast(_FLOOR_LEVEL[self.floor],
                                                 _MOUSE_LEVEL[self.mouse])) < 40:
            raise ValueError("ir_contrast needs a mouse that stands out of the floor by day "
                             "(a dark mouse on a light or grey floor, a light one on dark)")
        if not 0.0 <= self.vignetting <= 0.8 or not 0.0 <= self.flicker <= 0.2:
            raise ValueError("vignetting must be within [0, 0.8] and flicker within [0, 0.2]")


@dataclass(frozen=True)
class GroundTruth:
    """What really happened in a synthetic video.

    Attributes
    ----------
    track : pandas.DataFrame
        One row per written frame and arena, sorted by frame then arena:
        ``frame`` (0-based index among written frames), ``time_s`` (the
        frame's presentation time), ``arena`` (name), ``x``, ``y`` (centroid
        of the body+head mask, sub-pixel, from a 4x supersampled rasterisation;
        the tail is excluded, and so are the rare bits of snout that reach over
        a wall), ``chamber`` (piece of the polygon
        the centroid lies in, no hysteresis) and ``moving`` (bool, planned
        speed above 1 cm/s).
    config : dict
        The true geometry in the project's config format (plain Python types,
        ready for ``yaml.safe_dump``).
    background : numpy.ndarray
        Clean empty-box grayscale image at gain 1, uint8, shape (H, W).
    spec : SceneSpec
        The spec that produced it.
    distractor_polygon : list of [x, y] or None
        Outline of the distractor region in box1 when ``spec.distractor`` is
        set (to be used as a mask); not part of ``config``.
    trial_start_s : float or None
        With ``spec.experimenter``: when the last hand has left and the doors are open;
        :meth:`chamber_times` counts from it. None otherwise.
    """

    track: pd.DataFrame
    config: dict
    background: np.ndarray
    spec: SceneSpec
    distractor_polygon: list | None = None
    trial_start_s: float | None = None

    def chamber_times(self) -> pd.DataFrame:
        """Seconds per arena and chamber, counting each written frame as 1/fps.

        Returns
        -------
        pandas.DataFrame
            Index: arena names; columns: chamber names; values in seconds.
            Frames of dropped stretches are not counted, nor frames before
            ``trial_start_s`` when it is set.
        """
        track = self.track
        if self.trial_start_s is not None:
            track = track[track["time_s"] >= self.trial_start_s - 1e-9]
        counts = track.groupby(["arena", "chamber"]).size().unstack(fill_value=0)
        return counts / float(self.spec.fps)


# ---------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 0 else np.array([1.0, 0.0])


def _clip_halfplane(poly: np.ndarray, a: np.ndarray, b: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a convex polygon to ``a . p <= b``."""
    out = []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = float(a @ p - b), float(a @ q - b)
        if fp <= 0:
            out.append(p)
        if fp * fq < 0:
            out.append(p + (q - p) * fp / (fp - fq))
    return np.array(out, dtype=float).reshape(-1, 2)


def _poly_area_centroid(poly: np.ndarray) -> tuple[float, np.ndarray]:
    x, y = poly[:, 0], poly[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area = cross.sum() / 2.0
    if abs(area) < 1e-9:
        return 0.0, poly.mean(axis=0)
    cx = ((x + x1) * cross).sum() / (6 * area)
    cy = ((y + y1) * cross).sum() / (6 * area)
    return abs(area), np.array([cx, cy])


@dataclass
class _Door:
    c: np.ndarray  # centre of the opening
    d: np.ndarray  # unit vector along the wall (downwards)
    n: np.ndarray  # unit normal, pointing to the next chamber (to the right)
    p0: np.ndarray  # line end in the top outer wall
    p1: np.ndarray  # line end in the bottom outer wall
    gap: float  # width of the opening along the wall

    def side(self, x, y):
        return (np.asarray(x) - self.c[0]) * self.n[0] + (np.asarray(y) - self.c[1]) * self.n[1]


@dataclass
class _Arena:
    name: str
    spec: ArenaSpec
    outer: tuple[float, float, float, float]  # continuous x0, y0, x1, y1 of the outer walls
    floor: tuple[float, float, float, float]  # continuous x0, y0, x1, y1 of the floor
    tw: float  # wall thickness
    doors: list[_Door]
    names: list[str]  # chamber names by position, left to right
    pieces: list[np.ndarray]  # chamber polygons by position
    safe: list[np.ndarray]  # where the centroid may go, by position
    points: list[np.ndarray]  # chamber points by position
    L0: float  # body length (px)
    W0: float  # body width (px)
    margin: float
    ppc: float  # px per cm
    dd: float = 0.0  # distance of the door approach points from the wall line
    delta: float = 0.0  # body-centre offset behind the centroid, as fraction of L

    @property
    def n_ch(self) -> int:
        return len(self.names)

    def position_of(self, x, y) -> np.ndarray:
        """Chamber position index (0 = left) for arrays of points."""
        k = np.zeros(np.shape(x), dtype=int)
        for door in self.doors:
            k = k + (door.side(x, y) > 0)
        return k

    def config(self) -> dict:
        r = lambda v: round(float(v), 2)  # noqa: E731
        x0, y0, x1, y1 = self.floor
        cfg: dict = {"name": self.name}
        if self.spec.animal_id is not None:
            cfg["animal_id"] = str(self.spec.animal_id)
        cfg["px_per_cm"] = round(float(self.ppc), 4)
        cfg["polygon"] = [[r(x0), r(y0)], [r(x1), r(y0)], [r(x1), r(y1)], [r(x0), r(y1)]]
        cfg["doors"] = [
            {"name": f"door{i + 1}", "line": [[r(d.p0[0]), r(d.p0[1])], [r(d.p1[0]), r(d.p1[1])]]}
            for i, d in enumerate(self.doors)
        ]
        order = _CHAMBER_NAMES[self.n_ch]
        cfg["chambers"] = [
            {"name": nm, "point": [r(self.points[self.names.index(nm)][0]),
                                   r(self.points[self.names.index(nm)][1])]}
            for nm in order
        ]
        return cfg


def _layout(spec: SceneSpec) -> list[tuple[float, float, float, float]]:
    """Cells (x0, y0, w, h) in pixel-edge coordinates, one per arena, row-major."""
    n = len(spec.arenas)
    W, H = spec.width, spec.height
    best = None
    for rows in range(1, n + 1):
        cols = math.ceil(n / rows)
        if (rows - 1) * cols >= n:
            continue
        cw, ch = W / cols, H / rows
        m = max(3.0, 0.04 * min(cw, ch))
        aw, ah = cw - 2 * m, ch - 2 * m
        if aw <= 0 or ah <= 0:
            continue
        asp = aw / ah
        if asp > 2.4:
            bw, bh = 2.4 * ah, ah
        elif asp < 1.25:
            bw, bh = aw, aw / 1.25
        else:
            bw, bh = aw, ah
        area = bw * bh
        if best is None or area > best[0] + 1e-6:
            best = (area, rows, cols, bw, bh)
    assert best is not None
    _, rows, cols, bw, bh = best
    cw, ch = W / cols, H / rows
    cells = []
    for i in range(n):
        r_, c_ = divmod(i, cols)
        cx, cy = (c_ + 0.5) * cw, (r_ + 0.5) * ch
        cells.append((cx - bw / 2, cy - bh / 2, bw, bh))
    return cells


def _build_arenas(spec: SceneSpec) -> list[_Arena]:
    return [
        _build_arena(spec, k, aspec, cell)
        for k, (aspec, cell) in enumerate(zip(spec.arenas, _layout(spec), strict=True))
    ]


def _build_arena(spec: SceneSpec, k: int, aspec: ArenaSpec,
                 cell: tuple[float, float, float, float]) -> _Arena:
    """Box ``k`` in its layout cell: walls, floor, mouse size, doors and chambers."""
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 101, k]))
    ex0 = int(round(cell[0]))
    ey0 = int(round(cell[1]))
    ex1 = int(round(cell[0] + cell[2]))
    ey1 = int(round(cell[1] + cell[3]))
    tw = int(max(2, round(0.014 * (ex1 - ex0))))
    outer = (ex0 - 0.5, ey0 - 0.5, ex1 - 0.5, ey1 - 0.5)
    floor = boxes.floor_inside(spec, outer, tw)
    fw = floor[2] - floor[0]
    L0 = 0.09 * fw * spec.mouse_size
    W0 = 0.5 * L0
    margin = 0.55 * L0
    gap = 1.5 * W0 + max(4.0, 0.2 * L0)
    ppc = fw / spec.cm_per_box_width
    doors = _dividing_doors(aspec, outer, floor, tw, gap)
    shapes = _chamber_shapes(floor, doors, aspec.n_chambers, tw, margin, L0)
    names = list(_CHAMBER_NAMES[aspec.n_chambers])
    if rng.random() < 0.5:  # counterbalanced: paired chamber on the right
        names = names[::-1]
    arena = _Arena(
        name=f"box{k + 1}", spec=aspec, outer=outer, floor=floor, tw=float(tw), doors=doors,
        names=names, pieces=shapes.pieces, safe=shapes.safe, points=shapes.points, L0=L0,
        W0=W0, margin=margin, ppc=ppc,
    )
    arena.dd = tw / 2 + margin + 1.0
    return arena


def _dividing_doors(aspec: ArenaSpec, outer: tuple[float, float, float, float],
                    floor: tuple[float, float, float, float], tw: int, gap: float) -> list[_Door]:
    """The dividing walls' centre lines, from outer wall to outer wall, at the spec's angle."""
    fw = floor[2] - floor[0]
    fracs = {1: [], 2: [0.5], 3: [0.38, 0.62]}[aspec.n_chambers]
    ang = math.radians(aspec.door_angle_deg)
    d = np.array([math.sin(ang), math.cos(ang)])
    nrm = np.array([math.cos(ang), -math.sin(ang)])
    yc = (floor[1] + floor[3]) / 2
    doors = []
    for f in fracs:
        c = np.array([floor[0] + f * fw, yc])
        lam0 = (outer[1] + tw / 2 - yc) / d[1]
        lam1 = (outer[3] - tw / 2 - yc) / d[1]
        doors.append(_Door(c=c, d=d, n=nrm, p0=c + lam0 * d, p1=c + lam1 * d, gap=gap))
    return doors


@dataclass(frozen=True)
class _ChamberShapes:
    """Per chamber position (left to right): its piece of the floor, where the centroid may
    go, and its point (the piece's centroid)."""

    pieces: list[np.ndarray]
    safe: list[np.ndarray]
    points: list[np.ndarray]


def _chamber_shapes(floor: tuple[float, float, float, float], doors: list[_Door], nch: int,
                    tw: int, margin: float, L0: float) -> _ChamberShapes:
    rect = np.array(
        [[floor[0], floor[1]], [floor[2], floor[1]], [floor[2], floor[3]], [floor[0], floor[3]]]
    )
    srect = rect + np.array([[margin, margin], [-margin, margin], [-margin, -margin],
                             [margin, -margin]])
    pieces, safe, points = [], [], []
    off = tw / 2 + margin
    for pos in range(nch):
        pc, sf = rect.copy(), srect.copy()
        if pos > 0:
            dl = doors[pos - 1]
            pc = _clip_halfplane(pc, -dl.n, -(dl.n @ dl.c))
            sf = _clip_halfplane(sf, -dl.n, -(dl.n @ dl.c) - off)
        if pos < nch - 1:
            dr = doors[pos]
            pc = _clip_halfplane(pc, dr.n, dr.n @ dr.c)
            sf = _clip_halfplane(sf, dr.n, dr.n @ dr.c - off)
        area, cen = _poly_area_centroid(sf)
        if len(sf) < 3 or area < (0.5 * L0) ** 2:
            raise ValueError(
                "box too small for the mouse (too many arenas, too small a frame "
                "or too steep a door angle)"
            )
        pieces.append(pc)
        safe.append(sf)
        points.append(_poly_area_centroid(pc)[1])
    return _ChamberShapes(pieces, safe, points)


def chamber_of(x, y, arena_cfg: dict) -> np.ndarray:
    """Name of the chamber containing each point, from a config arena entry.

    The chamber is the piece of the polygon on the same side of every door
    line as the chamber's point. A point exactly on a line goes to the first
    listed chamber it can belong to.

    Parameters
    ----------
    x, y : array_like
        Point coordinates (pixels).
    arena_cfg : dict
        One entry of ``config["arenas"]``.

    Returns
    -------
    numpy.ndarray
        Chamber names (object array); ``None`` where no chamber matches.
    """
    x = np.atleast_1d(np.asarray(x, dtype=float))
    y = np.atleast_1d(np.asarray(y, dtype=float))

    def side(line, px, py):
        (x1, y1), (x2, y2) = line
        return np.sign((x2 - x1) * (np.asarray(py) - y1) - (y2 - y1) * (np.asarray(px) - x1))

    out = np.full(x.shape, None, dtype=object)
    for ch in arena_cfg["chambers"]:
        ok = np.ones(x.shape, dtype=bool)
        for door in arena_cfg["doors"]:
            s_ref = side(door["line"], *ch["point"])
            s = side(door["line"], x, y)
            s = np.where(s == 0, s_ref, s)
            ok &= s == s_ref
        out[ok & (out == None)] = ch["name"]  # noqa: E711
    return out


# ---------------------------------------------------------------------------
# motion planning
# ---------------------------------------------------------------------------


@dataclass
class _Seg:
    kind: str  # "walk", "turn", "rest", "settle", "sleep", "wake"
    t0: float
    dur: float
    x: float = 0.0
    y: float = 0.0
    th0: float = 0.0
    th1: float = 0.0
    # walk data
    ts: np.ndarray | None = None
    px: np.ndarray | None = None
    py: np.ndarray | None = None
    pth: np.ndarray | None = None
    pv: np.ndarray | None = None
    ps: np.ndarray | None = None
    odo0: float = 0.0
    res: float = 0.0  # heading residual blended out at the start of a walk
    yaw_amp: float = 0.0
    yaw_f: float = 0.5
    yaw_ph: float = 0.0


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _smoothstep(u):
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _dense_path(wps: list[np.ndarray], rmax: list[float], step: float = 0.5) -> np.ndarray:
    """Polyline through waypoints with corners rounded by quadratic Beziers."""
    pts = [np.asarray(wps[0], float)]
    cur = pts[0]
    n = len(wps)

    def line(a, b):
        ln = float(np.hypot(*(b - a)))
        k = max(1, int(math.ceil(ln / step)))
        t = np.linspace(0, 1, k + 1)[1:, None]
        return a + (b - a) * t

    chunks = []
    for i in range(1, n - 1):
        w_prev, w, w_next = wps[i - 1], wps[i], wps[i + 1]
        lin = float(np.hypot(*(w - w_prev)))
        lout = float(np.hypot(*(w_next - w)))
        r = min(rmax[i], 0.45 * lin, 0.45 * lout)
        a = w - r * _unit(w - w_prev)
        b = w + r * _unit(w_next - w)
        chunks.append(line(cur, a))
        k = max(2, int(math.ceil(2 * r / step)))
        t = np.linspace(0, 1, k + 1)[1:, None]
        chunks.append((1 - t) ** 2 * a + 2 * (1 - t) * t * w + t**2 * b)
        cur = b
    chunks.append(line(cur, np.asarray(wps[-1], float)))
    path = np.vstack([pts[0][None]] + chunks)
    # drop repeated points
    keep = np.r_[True, np.hypot(*np.diff(path, axis=0).T) > 1e-6]
    return path[keep]


class _Planner:
    """Plans the behaviour of one mouse as a list of time segments."""

    def __init__(self, arena: _Arena, spec: SceneSpec, rng: np.random.Generator):
        self.a = arena
        self.spec = spec
        self.rng = rng
        self.segs: list[_Seg] = []
        self.t = 0.0
        self.odo = 0.0
        self.rest_time = 0.0
        self.excluded = 0.0  # sleep-related time, not counted for rest_fraction
        self.pos = np.zeros(2)
        self.th = 0.0
        self.curl0 = 0.0
        self.session = None  # experimenter.Session: set down by a hand, doors closed first
        self.box = 0

    # -- sampling -----------------------------------------------------------
    def sample(self, pos_idx: int, wall_bias: float = 0.45) -> np.ndarray:
        rng, poly = self.rng, self.a.safe[pos_idx]
        if rng.random() < wall_bias:  # thigmotaxis: along the walls
            e = np.roll(poly, -1, axis=0) - poly
            lens = np.hypot(e[:, 0], e[:, 1])
            i = rng.choice(len(poly), p=lens / lens.sum())
            p = poly[i] + e[i] * rng.random()
            c = poly.mean(axis=0)
            return p + _unit(c - p) * rng.uniform(0.2, 2.5)
        x0, y0 = poly.min(axis=0)
        x1, y1 = poly.max(axis=0)
        for _ in range(200):
            p = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            if cv2.pointPolygonTest(poly.astype(np.float32), (float(p[0]), float(p[1])), False) > 0:
                return p
        return poly.mean(axis=0)

    def sample_away(self, pos_idx: int, frm: np.ndarray) -> np.ndarray:
        best = None
        for _ in range(25):
            p = self.sample(pos_idx)
            dist = float(np.hypot(*(p - frm)))
            if dist > 0.9 * self.a.L0:
                return p
            if best is None or dist > best[0]:
                best = (dist, p)
        return best[1]

    def cur_pos_idx(self) -> int:
        return int(self.a.position_of(self.pos[0], self.pos[1]))

    # -- primitive segments -------------------------------------------------
    def add_hold(self, kind: str, dur: float, **kw) -> None:
        if dur <= 0:
            return
        seg = _Seg(kind=kind, t0=self.t, dur=dur, x=self.pos[0], y=self.pos[1],
                   th0=self.th, th1=kw.pop("th1", self.th), **kw)
        self.segs.append(seg)
        self.t += dur
        self.th = seg.th1
        if kind in ("turn", "rest"):
            self.rest_time += dur
        elif kind in ("settle", "sleep", "wake"):
            self.excluded += dur

    def rest(self, dur: float) -> None:
        rng = self.rng
        self.add_hold("rest", dur, yaw_amp=rng.uniform(0.05, 0.45), yaw_f=rng.uniform(0.25, 1.2),
                      yaw_ph=rng.uniform(0, 2 * math.pi))

    def walk(self, wps: list[np.ndarray], door_idx: set[int] | None = None,
             brisk: bool = False) -> None:
        """Walk through the waypoints (wps[0] must be the current position)."""
        door_idx = door_idx or set()
        wps = [np.asarray(w, float) for w in wps]
        # split at sharp reversals (the mouse stops and turns round instead)
        for i in range(1, len(wps) - 1):
            u_in, u_out = _unit(wps[i] - wps[i - 1]), _unit(wps[i + 1] - wps[i])
            if float(u_in @ u_out) < -0.6:
                self.walk(wps[: i + 1], {j for j in door_idx if j <= i}, brisk)
                self.walk(wps[i:], {j - i for j in door_idx if j >= i}, brisk)
                return
        a, rng = self.a, self.rng
        R = 0.8 * a.L0
        rmax = [0.3 * a.L0 if i in door_idx else R for i in range(len(wps))]
        path = _dense_path(wps, rmax)
        if len(path) < 3:
            return
        dp = np.diff(path, axis=0)
        ds = np.hypot(dp[:, 0], dp[:, 1])
        s = np.r_[0.0, np.cumsum(ds)]
        gx, gy = np.gradient(path[:, 0], s), np.gradient(path[:, 1], s)
        th = np.unwrap(np.arctan2(gy, gx))
        # curvature, smoothed over ~3 px
        k = 7  # ~3 px at 0.5 px steps
        dth = np.abs(np.gradient(th, s))
        kap = np.convolve(np.pad(dth, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
        ppc = a.ppc
        lo = 12.0 if brisk else 5.0
        vmax = math.exp(rng.uniform(math.log(lo), math.log(25.0))) * ppc
        lam = rng.uniform(3, 6) * a.L0
        ph = rng.uniform(0, 2 * math.pi)
        v2 = (vmax * (1 + 0.18 * np.sin(2 * math.pi * s / lam + ph))) ** 2
        alat = rng.uniform(100, 200) * ppc
        v2 = np.minimum(v2, alat / np.maximum(kap, 1e-9))
        v2[0] = v2[-1] = 0.0
        acc = rng.uniform(80, 200) * ppc
        # acceleration limits as cumulative minima (forward and backward pass)
        v2 = np.minimum(v2, 2 * acc * s + np.minimum.accumulate(v2 - 2 * acc * s))
        sb = s[-1] - s
        v2 = np.minimum(v2, (2 * acc * sb + np.minimum.accumulate((v2 - 2 * acc * sb)[::-1])[::-1]))
        v = np.sqrt(np.maximum(v2, 0.0))
        vm = np.maximum(0.5 * (v[1:] + v[:-1]), 1e-3)
        ts = np.r_[0.0, np.cumsum(ds / vm)]
        # turn in place first if the heading is far off
        res = _wrap(th[0] - self.th)
        if abs(res) > 0.5:
            omega = rng.uniform(5.0, 9.0)
            self.add_hold("turn", abs(res) / omega, th1=self.th + res)
            res = 0.0
        th = th - th[0] + (self.th + res)  # keep heading continuous (unwrapped)
        seg = _Seg(kind="walk", t0=self.t, dur=float(ts[-1]), ts=ts, px=path[:, 0],
                   py=path[:, 1], pth=th, pv=v, ps=s, odo0=self.odo, res=-res,
                   yaw_amp=0.08, yaw_f=rng.uniform(0.6, 1.5), yaw_ph=rng.uniform(0, 2 * math.pi))
        self.segs.append(seg)
        self.t += seg.dur
        self.odo += float(s[-1])
        self.pos = path[-1].copy()
        self.th = float(th[-1])

    # -- behaviours ---------------------------------------------------------
    def door_points(self, door_i: int, going_right: bool, lateral: float):
        dr = self.a.doors[door_i]
        sgn = 1.0 if going_right else -1.0
        base = dr.c + lateral * dr.d
        return base - sgn * self.a.dd * dr.n, base + sgn * self.a.dd * dr.n

    def route_to(self, target_pos: int, target: np.ndarray, stop_in_door: bool = False,
                 brisk: bool = False) -> None:
        """Walk to ``target`` in chamber position ``target_pos``, through the doors."""
        rng, a = self.rng, self.a
        cur = self.cur_pos_idx()
        wps = [self.pos.copy()]
        door_idx: set[int] = set()
        if rng.random() < 0.3 and not brisk:
            wps.append(self.sample_away(cur, self.pos))
        step = 1 if target_pos > cur else -1
        p = cur
        while p != target_pos:
            door_i = p if step > 0 else p - 1
            dr = a.doors[door_i]
            lat = rng.uniform(-0.08, 0.08) * dr.gap
            pre, post = self.door_points(door_i, step > 0, lat)
            wps.append(pre)
            door_idx.add(len(wps) - 1)
            if stop_in_door:
                stop_in_door = False
                sgn = 1.0 if step > 0 else -1.0
                mid = dr.c + lat * dr.d + sgn * rng.uniform(-0.3, 0.3) * a.L0 * dr.n
                wps.append(mid)
                self.walk(wps, door_idx)
                self.rest(rng.uniform(0.4, 2.5))
                if rng.random() < 0.35:  # changes its mind and goes back
                    self.walk([self.pos.copy(), pre, self.sample_away(p, pre)], {1})
                    return
                wps, door_idx = [self.pos.copy()], set()
            wps.append(post)
            door_idx.add(len(wps) - 1)
            p += step
        wps.append(target)
        self.walk(wps, door_idx, brisk=brisk)

    def head_poke(self) -> None:
        """Approach a door, poke the head through it, sniff, and go back."""
        rng, a = self.rng, self.a
        cur = self.cur_pos_idx()
        options = [(cur, True)] if cur < a.n_ch - 1 else []
        if cur > 0:
            options.append((cur - 1, False))
        door_i, right = options[rng.integers(len(options))]
        dr = a.doors[door_i]
        lat = rng.uniform(-0.08, 0.08) * dr.gap
        pre, _ = self.door_points(door_i, right, lat)
        sgn = 1.0 if right else -1.0
        poke = dr.c + lat * dr.d - sgn * (a.tw / 2 + rng.uniform(0.15, 0.35) * a.L0) * dr.n
        self.walk([self.pos.copy(), pre, poke], {1, 2})
        self.rest(rng.uniform(0.3, 1.5))
        self.walk([self.pos.copy(), self.sample_away(cur, self.pos)])

    def sleep_bout(self, sleep_len: float) -> None:
        """Curl up, sleep and wake up on the spot: ``sleep_len`` seconds without moving."""
        settle, wake = min(1.0, 0.1 * sleep_len), min(0.8, 0.08 * sleep_len)
        self.add_hold("settle", settle)
        self.add_hold("sleep", sleep_len - settle - wake)
        self.add_hold("wake", wake)
        self.sleep_start = self.t - sleep_len

    def plan(self, sleep: tuple[int, np.ndarray, float, float] | None = None) -> list[_Seg]:
        """Plan the whole video.

        Parameters
        ----------
        sleep : (chamber position, spot, trigger time, length) or None
            Go to ``spot`` once the time passes ``trigger`` (at once if
            ``trigger <= 0``: asleep at the start) and sleep there.
        """
        spec, rng, a = self.spec, self.rng, self.a
        T = spec.duration_s
        nch = a.n_ch
        self.th = rng.uniform(-math.pi, math.pi)
        self.sleep_start = None
        no_rest = False
        if sleep is not None and sleep[2] <= 0:
            self.pos = np.asarray(sleep[1], float).copy()
            self.curl0 = 1.0
            self.add_hold("sleep", sleep[3] - min(0.8, 0.08 * sleep[3]))
            self.add_hold("wake", min(0.8, 0.08 * sleep[3]))
            self.sleep_start = 0.0
            sleep, no_rest = None, True
        else:
            self.pos = self.sample(int(rng.integers(nch)))
        if self.session is not None:
            confine_until_doors_open(self, self.session, self.box)
        p_cross = 0.5 if nch > 1 else 0.0
        while self.t < T + 0.5:
            if sleep is not None and self.t >= sleep[2]:
                self.route_to(sleep[0], sleep[1], brisk=True)
                self.sleep_bout(sleep[3])
                sleep, no_rest = None, True
                continue
            if spec.rest_fraction > 0 and not no_rest:
                deficit = spec.rest_fraction * (self.t - self.excluded) - self.rest_time
                if deficit > 0 and rng.random() < 0.8:
                    dur = float(np.clip(rng.lognormal(math.log(0.9), 0.9), 0.2, 6.0))
                    self.rest(dur)
                elif rng.random() < 0.1:
                    self.rest(rng.uniform(0.15, 0.5))
            no_rest = False
            cur = self.cur_pos_idx()
            u = rng.random()
            if u < p_cross:
                others = [p for p in range(nch) if p != cur]
                if nch == 3 and len(others) == 2:
                    near = [p for p in others if abs(p - cur) == 1]
                    tgt = near[0] if (len(near) == 1 and rng.random() < 0.75) else others[
                        rng.integers(2)]
                else:
                    tgt = others[rng.integers(len(others))]
                self.route_to(tgt, self.sample(tgt), stop_in_door=rng.random() < 0.15)
            elif u < p_cross + 0.08 and nch > 1:
                self.head_poke()
            else:
                wps = [self.pos.copy()]
                for _ in range(rng.choice(3, p=[0.55, 0.33, 0.12])):
                    wps.append(self.sample_away(cur, wps[-1]))
                wps.append(self.sample_away(cur, wps[-1]))
                self.walk(wps)
        return self.segs


# ---------------------------------------------------------------------------
# per-frame state
# ---------------------------------------------------------------------------


@dataclass
class _States:
    x: np.ndarray  # planned reference point (≈ centroid)
    y: np.ndarray
    th: np.ndarray
    speed: np.ndarray  # px/s
    odo: np.ndarray
    yaw: np.ndarray
    curl: np.ndarray
    posture: np.ndarray  # 0 = hunched/still, 1 = stretched/walking
    breath: np.ndarray


def _evaluate(segs: list[_Seg], times: np.ndarray, fps: float, ppc: float,
              curl0: float) -> _States:
    n = len(times)
    x, y, th = np.zeros(n), np.zeros(n), np.zeros(n)
    speed, odo, yaw = np.zeros(n), np.zeros(n), np.zeros(n)
    curl = np.full(n, curl0)
    sleeping = np.zeros(n, dtype=bool)
    t0s = np.array([s.t0 for s in segs])
    idx_seg = np.searchsorted(t0s, times, side="right") - 1
    for si, seg in enumerate(segs):
        idx = np.nonzero(idx_seg == si)[0]
        if len(idx) == 0:
            continue
        tau = times[idx] - seg.t0
        env = np.sin(math.pi * np.clip(tau / max(seg.dur, 1e-6), 0, 1)) ** 2
        if seg.kind == "walk":
            s = np.interp(tau, seg.ts, seg.ps)
            x[idx] = np.interp(s, seg.ps, seg.px)
            y[idx] = np.interp(s, seg.ps, seg.py)
            th[idx] = np.interp(s, seg.ps, seg.pth) + seg.res * (1 - _smoothstep(tau / 0.25))
            speed[idx] = np.interp(s, seg.ps, seg.pv)
            odo[idx] = seg.odo0 + s
            yaw[idx] = seg.yaw_amp * env * np.sin(2 * math.pi * seg.yaw_f * tau + seg.yaw_ph)
            curl[idx] = 0.0
        else:
            x[idx], y[idx] = seg.x, seg.y
            odo[idx] = seg.odo0 if seg.kind == "walk" else np.nan
            if seg.kind == "turn":
                th[idx] = seg.th0 + (seg.th1 - seg.th0) * _smoothstep(tau / seg.dur)
            else:
                th[idx] = seg.th0
            if seg.kind == "rest":
                yaw[idx] = seg.yaw_amp * env * np.sin(2 * math.pi * seg.yaw_f * tau + seg.yaw_ph)
            if seg.kind == "settle":
                curl[idx] = _smoothstep(tau / seg.dur)
            elif seg.kind == "sleep":
                curl[idx] = 1.0
                sleeping[idx] = True
            elif seg.kind == "wake":
                curl[idx] = 1.0 - _smoothstep(tau / seg.dur)
            elif seg.kind in ("turn", "rest"):
                curl[idx] = 0.0
    # odometer: carry forward over holds
    odo = pd.Series(odo).ffill().fillna(0.0).to_numpy()
    # posture (0 hunched .. 1 stretched) follows speed, smoothed over ~0.25 s
    win = max(1, int(round(0.25 * fps)))
    p = (
        pd.Series(np.clip(speed / (8.0 * ppc), 0, 1))
        .rolling(win, center=True, min_periods=1)
        .mean()
        .to_numpy(copy=True)
    )
    p *= 1 - curl
    breath = np.where(sleeping, 0.012 * np.sin(2 * math.pi * 2.2 * times), 0.0)
    return _States(x, y, th, speed, odo, yaw, curl, p, breath)


# ---------------------------------------------------------------------------
# mouse shape
# ---------------------------------------------------------------------------


_TRIG: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _ellipse_pts(c, u, a, b, n=40) -> np.ndarray:
    if n not in _TRIG:
        t = np.linspace(0, 2 * math.pi, n, endpoint=False)
        _TRIG[n] = (np.cos(t), np.sin(t))
    ct, st = _TRIG[n]
    ca, sa = a * ct, b * st
    out = np.empty((n, 2))
    out[:, 0] = c[0] + ca * u[0] - sa * u[1]
    out[:, 1] = c[1] + ca * u[1] + sa * u[0]
    return out


@dataclass
class _Pose:
    B: np.ndarray  # body centre
    u: np.ndarray  # heading unit vector
    a: float  # body half-length
    b: float  # body half-width
    H: np.ndarray  # head centre
    uh: np.ndarray
    ah: float
    bh: float
    body: np.ndarray
    head: np.ndarray
    tail: np.ndarray


def _pose(arena: _Arena, st: _States, i: int, t: float, delta: float | None = None,
          with_tail: bool = True) -> _Pose:
    L0, W0 = arena.L0, arena.W0
    p, c = float(st.posture[i]), float(st.curl[i])
    if np.isnan(p):
        p = 0.0
    gait = 1 + 0.025 * p * math.sin(2 * math.pi * float(st.odo[i]) / (0.9 * L0))
    sc = 1 + float(st.breath[i])
    L = L0 * (0.9 + 0.16 * p - 0.1 * c) * gait * sc
    W = W0 * (1.1 - 0.16 * p + 0.12 * c) * sc
    th = float(st.th[i])
    u = np.array([math.cos(th), math.sin(th)])
    dl = arena.delta if delta is None else delta
    P = np.array([st.x[i], st.y[i]])
    B = P - dl * L * u
    yaw = float(st.yaw[i])
    uh = np.array([math.cos(th + yaw), math.sin(th + yaw)])
    N = B + (0.38 - 0.06 * c) * L * u
    ah, bh = 0.2 * L0 * sc, 0.155 * L0 * sc
    H = N + 0.15 * L0 * sc * uh
    body = _ellipse_pts(B, u, L / 2, W / 2)
    head = _ellipse_pts(H, uh, ah, bh, n=28)
    if not with_tail:
        return _Pose(B, u, L / 2, W / 2, H, uh, ah, bh, body, head, np.empty((0, 2)))
    # tail: integrated direction field, wiggling while walking, wrapped when curled
    K = 12
    Lt = 0.95 * L0
    sk = np.arange(K) / K
    amp = 0.2 + 0.35 * p
    wig = amp * np.sin(2 * math.pi * 1.6 * t - 2 * math.pi * sk * 1.2) * sk
    ang = th + math.pi + wig + c * 2.2 * sk
    steps = np.stack([np.cos(ang), np.sin(ang)], 1) * (Lt / K)
    base = B - 0.47 * L * u
    tail = np.vstack([base, base + np.cumsum(steps, axis=0)])
    return _Pose(B, u, L / 2, W / 2, H, uh, ah, bh, body, head, tail)


def _to_fixed(pts: np.ndarray, ox: int, oy: int, ss: int = _SS) -> np.ndarray:
    """Fixed-point coordinates (``_SHIFT`` bits) in an ``ss``-times supersampled grid."""
    hi = (pts - np.array([ox, oy]) + 0.5) * ss - 0.5
    return np.round(hi * (1 << _SHIFT)).astype(np.int32)


def _bh_mask(arena_open_hi: np.ndarray, pose: _Pose, roi: tuple[int, int, int, int]) -> np.ndarray:
    rx0, ry0, rx1, ry1 = roi
    m = np.zeros(((ry1 - ry0) * _SS, (rx1 - rx0) * _SS), np.uint8)
    # one call per shape: a single fillPoly call with both would XOR their overlap
    cv2.fillPoly(m, [_to_fixed(pose.body, rx0, ry0)], 255, cv2.LINE_8, _SHIFT)
    cv2.fillPoly(m, [_to_fixed(pose.head, rx0, ry0)], 255, cv2.LINE_8, _SHIFT)
    cv2.bitwise_and(m, arena_open_hi[ry0 * _SS: ry1 * _SS, rx0 * _SS: rx1 * _SS], m)
    return m


def _roi_of(pts: np.ndarray, W: int, H: int, pad: int = 3) -> tuple[int, int, int, int]:
    x0 = max(0, int(math.floor(pts[:, 0].min())) - pad)
    y0 = max(0, int(math.floor(pts[:, 1].min())) - pad)
    x1 = min(W, int(math.ceil(pts[:, 0].max())) + pad + 1)
    y1 = min(H, int(math.ceil(pts[:, 1].max())) + pad + 1)
    return x0, y0, x1, y1


def _centroid(mask: np.ndarray, rx0: int, ry0: int) -> tuple[float, float]:
    m = cv2.moments(mask, True)
    if m["m00"] <= 0:
        return float("nan"), float("nan")
    cx = (m["m10"] / m["m00"] + 0.5) / _SS - 0.5 + rx0
    cy = (m["m01"] / m["m00"] + 0.5) / _SS - 0.5 + ry0
    return cx, cy


# ---------------------------------------------------------------------------
# scene: geometry + background + paths + truth
# ---------------------------------------------------------------------------


@dataclass
class _Scene:
    spec: SceneSpec
    arenas: list[_Arena]
    background: np.ndarray  # float32 at gain 1 (no noise)
    open_hi: np.ndarray  # uint8 supersampled mask of walkable floor (incl. door gaps)
    states: list[_States]
    times: np.ndarray  # all frame times incl. dropped
    written: np.ndarray  # bool per frame
    truth_xy: list[np.ndarray]  # (n, 2) per arena, all frames
    distractor_polygon: list | None
    distractor: dict | None
    boli: list[list[tuple[float, np.ndarray]]]
    session: Session | None = None  # with spec.experimenter
    hand_targets: list[np.ndarray] | None = None  # where each hand sets its mouse down
    bedding: BeddingScene | None = None  # kicked patches, night picture


def _fine_noise(rng, shape, sigma_px, amp):
    z = rng.standard_normal(shape).astype(np.float32)
    z = cv2.GaussianBlur(z, (0, 0), sigma_px)
    z /= max(float(z.std()), 1e-6)
    return z * amp


def _render_background(spec: SceneSpec, arenas: list[_Arena]) -> tuple[np.ndarray, np.ndarray]:
    """Clean empty-box image (float32, gain 1) and the supersampled open-floor mask."""
    W, H = spec.width, spec.height
    # supersampling of the static image: 4x for small frames, less for big ones (memory)
    bss = 4 if W * H <= 640 * 480 else (2 if W * H <= 1280 * 720 else 1)
    Wb, Hb = W * bss, H * bss
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 202]))
    hi = np.full((Hb, Wb), _TABLE_LEVEL, np.float32)
    table = _fine_noise(rng, (H // 2 + 1, W // 2 + 1), 3, 7.0)
    hi += cv2.resize(table, (Wb, Hb), interpolation=cv2.INTER_LINEAR)
    open_hi = np.zeros((H * _SS, W * _SS), np.uint8)  # walkable floor, at the mask resolution
    open_b = np.zeros((Hb, Wb), np.uint8)  # the same at the background resolution
    for ar in arenas:
        _draw_box(hi, open_hi, open_b, spec, ar, bss)
    bg = cv2.resize(hi, (W, H), interpolation=cv2.INTER_AREA)
    bg = _add_camera_effects(bg, open_b, spec, arenas, rng)
    return np.clip(bg, 0, 255).astype(np.float32), open_hi


def _fill(img: np.ndarray, pts, value: float, width: int) -> None:
    """Fill polygon ``pts`` (frame pixels) in ``img``, an image supersampled from ``width``."""
    pts = _to_fixed(np.asarray(pts, float), 0, 0, img.shape[1] // width)
    cv2.fillPoly(img, [pts], value, cv2.LINE_8, _SHIFT)


def _draw_box(hi: np.ndarray, open_hi: np.ndarray, open_b: np.ndarray, spec: SceneSpec,
              ar: _Arena, bss: int) -> None:
    """One box into the supersampled image ``hi`` (walls, textured floor pieces, dividing
    walls with their door gaps) and its walkable floor into the masks."""
    W = spec.width
    Hb, Wb = hi.shape
    wl = _WALL_LEVEL[spec.wall]
    ox0, oy0, ox1, oy1 = ar.outer
    fx0, fy0, fx1, fy1 = ar.floor
    if boxes.draws_walls(spec):
        boxes.draw_walls(hi, spec, ar, W)
    else:
        _fill(hi, [[ox0, oy0], [ox1, oy0], [ox1, oy1], [ox0, oy1]], wl, W)
    floor_rect = [[fx0, fy0], [fx1, fy0], [fx1, fy1], [fx0, fy1]]
    _fill(open_hi, floor_rect, 255, W)
    _fill(open_b, floor_rect, 255, W)
    # floor pieces, each with its own level and texture
    j0, j1 = max(int(fx0 * bss), 0), min(int(math.ceil((fx1 + 1) * bss)), Wb)
    i0, i1 = max(int(fy0 * bss), 0), min(int(math.ceil((fy1 + 1) * bss)), Hb)
    floor_img = _floor_image(spec, ar, j0, j1, i0, i1, bss)
    seg = hi[i0:i1, j0:j1]
    inside = open_b[i0:i1, j0:j1] > 0
    seg[inside] = floor_img[inside]
    # dividing walls with a door gap in the middle
    if boxes.draws_partitions(spec):
        boxes.draw_partitions(hi, open_hi, open_b, spec, ar, W, _fill)
        return
    for dr in ar.doors:
        half = dr.gap / 2
        for a_, b_ in ((dr.p0, dr.c - half * dr.d), (dr.c + half * dr.d, dr.p1)):
            nvec = dr.n * (ar.tw / 2)
            quad = np.array([a_ - nvec, a_ + nvec, b_ + nvec, b_ - nvec])
            _fill(open_hi, quad, 0, W)
            _fill(open_b, quad, 0, W)
            _fill(hi, quad, wl, W)


def _floor_image(spec: SceneSpec, ar: _Arena, j0: int, j1: int, i0: int, i1: int,
                 bss: int) -> np.ndarray:
    """The box's floor over supersampled columns ``j0:j1`` and rows ``i0:i1``: one level,
    or with ``floor_texture`` each chamber its own level and texture (grid bars | plain |
    perforated)."""
    fl = _FLOOR_LEVEL[spec.floor]
    amp = 0.13 * fl if spec.floor_texture else 0.0
    fx0, fy0 = ar.floor[0], ar.floor[1]
    xs = (np.arange(j0, j1, dtype=np.float32) + 0.5) / bss - 0.5
    ys = (np.arange(i0, i1, dtype=np.float32) + 0.5) / bss - 0.5
    X, Y = np.meshgrid(xs, ys)
    if spec.chamber_floors:
        return boxes.chamber_floor_image(spec, ar, X, Y)
    floor_img = np.full(X.shape, fl, np.float32)
    if not spec.floor_texture:
        return floor_img
    pos = ar.position_of(X, Y).astype(np.int8)
    nch = ar.n_ch
    offsets = {1: [-0.04], 2: [-0.04, -0.08], 3: [-0.04, 0.04, -0.08]}[nch]
    kinds = {1: ["dots"], 2: ["bars", "dots"], 3: ["bars", "plain", "dots"]}[nch]
    pitch = max(3.5, 1.0 * ar.ppc)
    for k in range(nch):
        sel = pos == k
        lvl = fl * (1 + offsets[k])
        if kinds[k] == "bars":  # grid rods parallel to the dividing wall
            d = ar.doors[0].d
            across = X * d[1] - Y * d[0]
            prof = (0.5 + 0.5 * np.cos(2 * math.pi * across / pitch)) ** 3
            tex = lvl - amp * prof
        elif kinds[k] == "dots":  # perforated floor
            p2 = pitch * 1.3
            gx = (X - fx0) / p2 - np.round((X - fx0) / p2)
            gy = (Y - fy0) / p2 - np.round((Y - fy0) / p2)
            r = np.hypot(gx, gy) * p2
            tex = lvl - 1.5 * amp * (r < 0.22 * p2 + 0.4)
        else:
            tex = np.full(X.shape, lvl, np.float32)
        floor_img[sel] = tex[sel]
    return floor_img


def _add_camera_effects(bg: np.ndarray, open_b: np.ndarray, spec: SceneSpec,
                        arenas: list[_Arena], rng: np.random.Generator) -> np.ndarray:
    """Static floor texture (fixed pattern), wall shadows, glare and vignetting."""
    W, H = spec.width, spec.height
    fl = _FLOOR_LEVEL[spec.floor]
    open_lo = cv2.resize(open_b, (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    bg += _fine_noise(rng, (H, W), 1.0, 2.0) * open_lo
    dist = cv2.distanceTransform((open_lo > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    tw = float(np.mean([a.tw for a in arenas]))
    shade = 1 - 0.10 * np.exp(-dist / (1.5 * tw)) * open_lo
    bg *= shade.astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    cx, cy = W / 2 + rng.uniform(-0.1, 0.1) * W, H / 2 + rng.uniform(-0.1, 0.1) * H
    r2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (0.25 * (W * W + H * H))
    bg += (0.06 * fl) * np.exp(-r2 / 0.08) * open_lo
    bg *= 1 - 0.14 * ((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / (0.25 * (W * W + H * H))
    return bg


def _body_delta(arena: _Arena) -> float:
    """Offset (fraction of L) of the body centre behind the body+head centroid."""
    st = _States(*(np.array([v]) for v in (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0)))
    pose = _pose(arena, st, 0, 0.0, delta=0.0, with_tail=False)
    off = int(math.ceil(1.5 * arena.L0)) + 4
    m = np.zeros((2 * off * _SS, 2 * off * _SS), np.uint8)
    cv2.fillPoly(m, [_to_fixed(pose.body + off, 0, 0)], 255, cv2.LINE_8, _SHIFT)
    cv2.fillPoly(m, [_to_fixed(pose.head + off, 0, 0)], 255, cv2.LINE_8, _SHIFT)
    cx, _ = _centroid(m, 0, 0)
    L = arena.L0 * (0.9 + 0.16 * 0.5)
    return (cx - off) / L


def _plan_arena(spec: SceneSpec, ar: _Arena, k: int,
                session: Session | None = None) -> tuple[_Planner, list[_Seg]]:
    """Plan one mouse; with a sleep bout, retry until the bout fits into the video."""
    sleep = None
    if spec.sleep_fraction > 0:
        srng = np.random.default_rng(np.random.SeedSequence([spec.seed, 306, k]))
        T = spec.duration_s
        sleep_len = spec.sleep_fraction * T
        pos = int(srng.integers(ar.n_ch))
        sp = ar.safe[pos]
        corner = sp[srng.integers(len(sp))]
        spot = corner + _unit(sp.mean(axis=0) - corner) * srng.uniform(0.5, 2.0)
        latest = T - sleep_len
        trigger = srng.uniform(0.1, 0.7) * latest if latest > 3.0 else 0.0
        sleep = (pos, spot, trigger, sleep_len)
    for attempt in range(12):
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 303, k, attempt]))
        planner = _Planner(ar, spec, rng)
        planner.session, planner.box = session, k
        segs = planner.plan(sleep)
        if sleep is None or planner.sleep_start is None:
            break
        late = planner.sleep_start - (spec.duration_s - sleep[3])
        if late <= 1e-9:
            break
        new_trigger = sleep[2] - late - 1.0 if attempt < 10 else 0.0
        sleep = (sleep[0], sleep[1], max(new_trigger, 0.0), sleep[3])
    return planner, segs


def _build_scene(spec: SceneSpec) -> _Scene:
    arenas = _build_arenas(spec)
    bg, open_hi = _render_background(spec, arenas)
    bg = add_bedding_floor(bg, open_hi, spec.bedding, _FLOOR_LEVEL[spec.floor],
                           float(np.mean([a.L0 for a in arenas])), spec.seed)
    n = int(round(spec.duration_s * spec.fps))
    times = np.arange(n) / spec.fps
    written = np.ones(n, dtype=bool)
    for a_, b_ in spec.dropped:
        written &= ~((times >= a_) & (times < b_))
    if not written.any():
        raise ValueError("all frames are dropped")
    states, truths = [], []
    boli = []
    session = (plan_session(spec, _FLOOR_LEVEL[spec.floor], [a.n_ch for a in arenas])
               if spec.experimenter else None)
    for k, ar in enumerate(arenas):
        ar.delta = _body_delta(ar)
        planner, segs = _plan_arena(spec, ar, k, session)
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 304, k]))
        st = _evaluate(segs, times, spec.fps, ar.ppc, planner.curl0)
        states.append(st)
        xy = np.full((n, 2), np.nan)
        for i in range(n):
            pose = _pose(ar, st, i, times[i], with_tail=False)
            roi = _roi_of(np.vstack([pose.body, pose.head]), spec.width, spec.height)
            xy[i] = _centroid(_bh_mask(open_hi, pose, roi), roi[0], roi[1])
        truths.append(xy)
        # fecal boli: dropped at rest positions, stay until the end
        bl = []
        if spec.boli > 0:
            still = np.nonzero(st.speed < 0.5)[0]
            if len(still):
                picks = np.sort(rng.choice(still, size=min(spec.boli, len(still)), replace=False))
                for i in picks:
                    pose = _pose(ar, st, i, times[i])
                    pos_ = pose.B - (pose.a + 0.12 * ar.L0) * pose.u
                    bl.append((float(times[i]), pos_, float(rng.uniform(0, math.pi))))
        boli.append(bl)
    dpoly, dinfo = _distractor(spec, arenas[0])
    targets = None
    if session is not None:
        targets = [truths[h.box][min(n - 1, int(h.t_release * spec.fps))]
                   for h in session.hands]
        session = with_hands_clear(session, arenas, targets, spec.width, spec.height, spec.fps)
    extra = build_bedding(spec, arenas, states, truths, times, open_hi,
                          _FLOOR_LEVEL[spec.floor], _MOUSE_LEVEL[spec.mouse])
    return _Scene(spec, arenas, bg, open_hi, states, times, written, truths,
                  dpoly, dinfo, boli, session, targets, extra)


def _distractor(spec: SceneSpec, ar: _Arena) -> tuple[list | None, dict | None]:
    if spec.distractor is None:
        return None, None
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 404]))
    fx0, fy0, fx1, fy1 = ar.floor
    L = ar.L0
    k = float(spec.distractor_scale)
    if spec.distractor == "blink":
        c = np.array([fx0 + 0.35 * L * k, fy1 - 0.35 * L * k])
        r = max(1.5, 0.12 * L) * k
        h = 0.32 * L * k + 2
        poly = [[c[0] - h, c[1] - h], [c[0] + h, c[1] - h], [c[0] + h, c[1] + h],
                [c[0] - h, c[1] + h]]
        info = {"kind": "blink", "c": c, "r": r, "period": rng.uniform(0.8, 1.6),
                "duty": rng.uniform(0.25, 0.5), "phase": rng.uniform(0, 1)}
    else:
        anchor = np.array([fx1 - 0.4 * L, fy0 - ar.tw / 2])
        length = 0.7 * L
        swing = math.radians(rng.uniform(20, 30))
        base_ang = math.pi / 2 + math.radians(15)  # leaning into the corner-free side
        pts = []
        for a_ in np.linspace(base_ang - swing * 1.15, base_ang + swing * 1.15, 15):
            pts.append(anchor + length * np.array([math.cos(a_), math.sin(a_)]))
        pts.append(anchor)
        hull = cv2.convexHull(np.array(pts, np.float32)).reshape(-1, 2).astype(float)
        cen = hull.mean(axis=0)
        hull = hull + np.array([_unit(p - cen) * 3.0 * k for p in hull])
        poly = hull.tolist()
        info = {"kind": "cable", "anchor": anchor, "length": length, "swing": swing,
                "base": base_ang, "f": rng.uniform(0.3, 0.7), "phase": rng.uniform(0, 2 * math.pi)}
    poly = [[round(float(p[0]), 2), round(float(p[1]), 2)] for p in poly]
    return poly, info


def _truth_from_scene(sc: _Scene) -> GroundTruth:
    spec = sc.spec
    idx = np.nonzero(sc.written)[0]
    frames = []
    cfg = {"arenas": [a.config() for a in sc.arenas]}
    for k, ar in enumerate(sc.arenas):
        xy = sc.truth_xy[k][idx]
        pos = ar.position_of(xy[:, 0], xy[:, 1])
        names = np.array(ar.names, dtype=object)[pos]
        moving = sc.states[k].speed[idx] > _MOVING_CM_S * ar.ppc
        frames.append(pd.DataFrame({
            "frame": np.arange(len(idx), dtype=np.int64),
            "time_s": sc.times[idx],
            "arena": ar.name,
            "x": xy[:, 0],
            "y": xy[:, 1],
            "chamber": names,
            "moving": moving.astype(bool),
        }))
    track = pd.concat(frames, ignore_index=True)
    track = track.sort_values(["frame", "arena"], kind="stable").reset_index(drop=True)
    bg = sc.background.copy()
    if spec.night_ir:
        bg = boxes.night_picture(bg, spec, _mouse_grey(spec))
    night_picture(bg, sc.bedding, None)
    bg = np.clip(np.round(bg), 0, 255).astype(np.uint8)
    return GroundTruth(track=track, config=cfg, background=bg, spec=spec,
                       distractor_polygon=sc.distractor_polygon,
                       trial_start_s=None if sc.session is None else sc.session.trial_start_s)


def scaled(spec: SceneSpec, k: float) -> SceneSpec:
    """The same scene rendered at ``k`` times the size (frame sides rounded to even).

    Boxes, mouse, path, tail (with ``tail_base_frac``) and shadow scale with the frame, so
    the truth in units of the body length is the same at every ``k``.
    """
    import dataclasses

    w = max(64, 2 * int(round(spec.width * k / 2)))
    h = max(48, 2 * int(round(spec.height * k / 2)))
    return dataclasses.replace(spec, width=w, height=h)


def body_length_px(spec: SceneSpec) -> list[float]:
    """The mouse's reference body length (nose to tail base when standing), px, per box."""
    return [float(a.L0) for a in _build_arenas(spec)]


def body_shares(spec: SceneSpec) -> pd.DataFrame:
    """The true share of the mouse's body and head (the tail excluded, as in the truth's
    centroid) in each chamber, per written frame and arena.

    Computed on the 4x supersampled mask the truth's centroid comes from: each
    sub-pixel counts in the chamber its centre lies in (:meth:`_Arena.position_of`).

    Returns
    -------
    pandas.DataFrame
        ``frame``, ``time_s``, ``arena`` as in ``GroundTruth.track`` (same row order), and
        ``share_0`` .. ``share_{k-1}``: the chambers in config order (k: the most chambers
        of any box; NaN beyond a box's own).
    """
    sc = _build_scene(spec)
    idx = np.nonzero(sc.written)[0]
    k_max = max(a.n_ch for a in sc.arenas)
    frames = []
    for k, ar in enumerate(sc.arenas):
        # position (left to right) -> config order
        order = [list(_CHAMBER_NAMES[ar.n_ch]).index(nm) for nm in ar.names]
        shares = np.full((len(idx), k_max), np.nan)
        for row, i in enumerate(idx):
            pose = _pose(ar, sc.states[k], i, sc.times[i], with_tail=False)
            roi = _roi_of(np.vstack([pose.body, pose.head]), spec.width, spec.height)
            rr, cc = np.nonzero(_bh_mask(sc.open_hi, pose, roi))
            if not len(rr):
                continue
            px = (cc + 0.5) / _SS - 0.5 + roi[0]
            py = (rr + 0.5) / _SS - 0.5 + roi[1]
            counts = np.bincount(ar.position_of(px, py), minlength=ar.n_ch)
            shares[row, : ar.n_ch] = 0.0
            shares[row, order] = counts / counts.sum()
        frame = pd.DataFrame({"frame": np.arange(len(idx), dtype=np.int64),
                              "time_s": sc.times[idx], "arena": ar.name})
        for j in range(k_max):
            frame[f"share_{j}"] = shares[:, j]
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["frame", "arena"], kind="stable").reset_index(drop=True)


def make_scene(spec: SceneSpec) -> GroundTruth:
    """Compute the ground truth of a scene without rendering a video.

    Parameters
    ----------
    spec : SceneSpec
        The scene.

    Returns
    -------
    GroundTruth
        Identical to what :func:`generate_video` returns for the same spec.
    """
    return _truth_from_scene(_build_scene(spec))


# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------


def _blur_kernel(vec: np.ndarray) -> np.ndarray | None:
    ln = float(np.hypot(*vec))
    if ln < 0.75:
        return None
    r = int(math.ceil(ln / 2)) + 1
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    m = max(3, int(ln * 3))
    for t in np.linspace(-0.5, 0.5, m):
        px, py = r + t * vec[0], r + t * vec[1]
        x0, y0 = int(math.floor(px)), int(math.floor(py))
        fx_, fy_ = px - x0, py - y0
        k[y0, x0] += (1 - fx_) * (1 - fy_)
        k[y0, x0 + 1] += fx_ * (1 - fy_)
        k[y0 + 1, x0] += (1 - fx_) * fy_
        k[y0 + 1, x0 + 1] += fx_ * fy_
    return k / k.sum()


def _draw_mouse(frame: np.ndarray, sc: _Scene, k: int, i: int, t: float) -> None:
    spec, ar, st = sc.spec, sc.arenas[k], sc.states[k]
    Wf, Hf = spec.width, spec.height
    pose = _pose(ar, st, i, t)
    shadow = _shadow_geometry(spec, ar)
    pad = 4 if shadow is None else 4 + int(math.ceil(shadow[0] + 3 * shadow[1]))
    roi = _roi_of(np.vstack([pose.body, pose.head, pose.tail]), Wf, Hf, pad=pad)
    rx0, ry0, rx1, ry1 = roi
    if rx1 <= rx0 or ry1 <= ry0:
        return
    w, h = rx1 - rx0, ry1 - ry0
    mbh = _bh_mask(sc.open_hi, pose, roi)
    mt = np.zeros_like(mbh)
    tl = _to_fixed(pose.tail, rx0, ry0)
    half = len(tl) // 2
    if spec.tail_base_frac is None:
        t0, t1 = 1.9, 1.2
    else:
        t0 = spec.tail_base_frac * ar.W0
        t1 = 0.6 * t0
    cv2.polylines(mt, [tl[: half + 1]], False, 255, max(1, int(round(t0 * _SS))),
                  cv2.LINE_8, _SHIFT)
    cv2.polylines(mt, [tl[half:]], False, 255, max(1, int(round(t1 * _SS))),
                  cv2.LINE_8, _SHIFT)
    cv2.bitwise_and(mt, sc.open_hi[ry0 * _SS: ry1 * _SS, rx0 * _SS: rx1 * _SS], mt)
    a_b = cv2.resize(mbh, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    a_t = cv2.resize(mt, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    exposure = 0.4 / spec.fps
    kern = _blur_kernel(pose.u * float(st.speed[i]) * exposure)
    if kern is not None:
        a_b = cv2.filter2D(a_b, -1, kern, borderType=cv2.BORDER_CONSTANT)
        a_t = cv2.filter2D(a_t, -1, kern, borderType=cv2.BORDER_CONSTANT)
    base, sheen, tail_col = _MOUSE_LEVEL[spec.mouse]
    xs = np.arange(rx0, rx1, dtype=np.float32)[None, :]
    ys = np.arange(ry0, ry1, dtype=np.float32)[:, None]
    dx, dy = xs - pose.B[0], ys - pose.B[1]
    rb2 = ((dx * pose.u[0] + dy * pose.u[1]) / pose.a) ** 2 + (
        (-dx * pose.u[1] + dy * pose.u[0]) / (pose.b * 0.8)) ** 2
    dx, dy = xs - pose.H[0], ys - pose.H[1]
    rh2 = ((dx * pose.uh[0] + dy * pose.uh[1]) / pose.ah) ** 2 + (
        (-dx * pose.uh[1] + dy * pose.uh[0]) / pose.bh) ** 2
    col = base + sheen * np.clip(1 - rb2, 0, 1) + 0.5 * sheen * np.clip(1 - rh2, 0, 1)
    if spec.mouse == "light":
        col = col - 18 * np.clip(rb2 - 0.6, 0, 1)  # shaded flanks
    sub = frame[ry0:ry1, rx0:rx1]
    if shadow is not None:
        sub -= _shadow_alpha(a_b, shadow) * np.float32(spec.shadow_depth)
    sub += a_t * (tail_col - sub)
    sub += a_b * (col - sub)


def _mouse_grey(spec: SceneSpec) -> float:
    """The mouse's typical grey level (its coat with half its sheen)."""
    base, sheen, _ = _MOUSE_LEVEL[spec.mouse]
    return base + 0.5 * sheen


def _shadow_geometry(spec: SceneSpec, ar: _Arena) -> tuple[float, float] | None:
    """(offset, blur sigma) of the mouse's soft shadow, px, or None without one."""
    if spec.shadow_depth <= 0:
        return None
    return 0.12 * ar.W0, 0.18 * ar.W0


def _shadow_alpha(a_b: np.ndarray, shadow: tuple[float, float]) -> np.ndarray:
    """The shadow's opacity (0-1) in the mouse's window: the body and head coverage
    widened by a quarter of the body width, offset down and to the right, and blurred."""
    offset, sigma = shadow
    grow = max(1, int(round(1.4 * sigma)))
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    m = cv2.dilate(a_b, kern)
    shift = np.float32([[1, 0, offset], [0, 1, offset]])
    m = cv2.warpAffine(m, shift, (m.shape[1], m.shape[0]), flags=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT)
    return cv2.GaussianBlur(m, (0, 0), sigma)


def _draw_boli(frame: np.ndarray, sc: _Scene, k: int, t: float) -> None:
    ar = sc.arenas[k]
    for t_drop, pos, ang in sc.boli[k]:
        if t < t_drop:
            continue
        u = np.array([math.cos(ang), math.sin(ang)])
        pts = _ellipse_pts(pos, u, 0.14 * ar.L0, 0.07 * ar.L0, n=16)
        roi = _roi_of(pts, frame.shape[1], frame.shape[0], pad=2)
        rx0, ry0, rx1, ry1 = roi
        m = np.zeros(((ry1 - ry0) * _SS, (rx1 - rx0) * _SS), np.uint8)
        cv2.fillPoly(m, [_to_fixed(pts, rx0, ry0)], 255, cv2.LINE_8, _SHIFT)
        cv2.bitwise_and(m, sc.open_hi[ry0 * _SS: ry1 * _SS, rx0 * _SS: rx1 * _SS], m)
        a = cv2.resize(m, (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_AREA) / 255.0
        sub = frame[ry0:ry1, rx0:rx1]
        sub += (a * (25.0 - sub)).astype(np.float32)


def _draw_distractor(frame: np.ndarray, sc: _Scene, t: float, stage: str) -> None:
    info = sc.distractor
    if info is None:
        return
    if info["kind"] == "blink" and stage == "under":
        if ((t / info["period"] + info["phase"]) % 1.0) < info["duty"]:
            c, r = info["c"], info["r"]
            pts = np.array([c - 3 * r, c + 3 * r])
            rx0, ry0, rx1, ry1 = _roi_of(pts, frame.shape[1], frame.shape[0], pad=1)
            xs = np.arange(rx0, rx1)[None, :] - c[0]
            ys = np.arange(ry0, ry1)[:, None] - c[1]
            g = np.exp(-(xs**2 + ys**2) / (2 * r * r)).astype(np.float32)
            frame[ry0:ry1, rx0:rx1] += 110.0 * g
    elif info["kind"] == "cable" and stage == "over":
        ang = info["base"] + info["swing"] * math.sin(2 * math.pi * info["f"] * t + info["phase"])
        ang += 0.1 * info["swing"] * math.sin(2 * math.pi * 2.7 * info["f"] * t)
        a0 = info["anchor"]
        tip = a0 + info["length"] * np.array([math.cos(ang), math.sin(ang)])
        pts = np.array([a0, tip])
        k = float(sc.spec.distractor_scale)
        rx0, ry0, rx1, ry1 = _roi_of(pts, frame.shape[1], frame.shape[0], pad=int(3 * k))
        m = np.zeros(((ry1 - ry0) * _SS, (rx1 - rx0) * _SS), np.uint8)
        cv2.polylines(m, [_to_fixed(pts, rx0, ry0)], False, 255, int(2.0 * k * _SS),
                      cv2.LINE_8, _SHIFT)
        a = cv2.resize(m, (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_AREA) / 255.0
        col = 40.0 if sc.spec.floor != "dark" else 200.0
        sub = frame[ry0:ry1, rx0:rx1]
        sub += (a * (col - sub)).astype(np.float32)


def _gain(spec: SceneSpec, t: float) -> float:
    g = 1.0 + spec.light_drift * t / spec.duration_s
    step = 1.0
    for ts, gs in sorted(spec.light_steps):
        if t >= ts:
            step = gs
    return g * step


def _frames(sc: _Scene) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (frame index in full timeline, time_s, float32 intensity image) for written frames."""
    spec = sc.spec
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 505]))
    npx = sc.background.size
    # sensor noise: fresh windows into a seeded gaussian pool (much faster than
    # drawing npx normals per frame, statistically equivalent per pixel)
    pool = None
    if spec.noise_sigma > 0:
        pool = rng.standard_normal(4 * npx + 4099, dtype=np.float32)
        pool *= np.float32(spec.noise_sigma)
    buf = np.empty_like(sc.background)
    for i in np.nonzero(sc.written)[0]:
        t = float(sc.times[i])
        np.copyto(buf, sc.background)
        draw_kicked_bedding(buf, sc.bedding, t)
        for k in range(len(sc.arenas)):
            _draw_boli(buf, sc, k, t)
        _draw_distractor(buf, sc, t, "under")
        if sc.session is not None:
            draw_door_plates(buf, sc.arenas, plate_level(_WALL_LEVEL[spec.wall],
                                                         _FLOOR_LEVEL[spec.floor]), sc.session, t)
        for k in range(len(sc.arenas)):
            if sc.session is None or mouse_visible(sc.session, k, t):
                _draw_mouse(buf, sc, k, int(i), t)
        _draw_distractor(buf, sc, t, "over")
        if sc.session is not None:
            draw_hands(buf, sc.arenas, sc.hand_targets, sc.session, t)
        if spec.night_ir:
            buf[:] = boxes.night_picture(buf, spec, _mouse_grey(spec))
        night_picture(buf, sc.bedding, t)
        g = _gain(spec, t) * lid_gain(sc.session, t)
        if g != 1.0:
            buf *= np.float32(g)
        if pool is not None:
            o = int(rng.integers(0, len(pool) - npx + 1))
            win = pool[o: o + npx].reshape(buf.shape)
            if rng.random() < 0.5:
                buf += win
            else:
                buf -= win
        yield int(i), t, buf


def iter_frames(spec: SceneSpec) -> Iterator[tuple[float, np.ndarray]]:
    """Render the written frames of a scene without encoding them.

    Parameters
    ----------
    spec : SceneSpec
        The scene.

    Yields
    ------
    time_s : float
        Presentation time of the frame.
    frame : numpy.ndarray
        Grayscale uint8 image (H, W), before compression.
    """
    sc = _build_scene(spec)
    for _, t, img in _frames(sc):
        yield t, np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _time_base(fps: float) -> tuple[Fraction, Fraction, int]:
    """Frame rate, stream time base and pts increment per frame (exact timestamps)."""
    fr = Fraction(fps).limit_denominator(1001)
    m = max(1, math.ceil(30000 / fr.numerator))
    tb = Fraction(1, fr.numerator * m)
    return fr, tb, fr.denominator * m


def generate_video(path: str | os.PathLike, spec: SceneSpec) -> GroundTruth:
    """Render and encode a synthetic video; return its ground truth.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.mp4`` recommended; parent folders are created). MP4
        files are written with the index at the front (faststart), so a
        truncated file still decodes up to the cut.
    spec : SceneSpec
        The scene.

    Returns
    -------
    GroundTruth
        The truth for the written frames, as :func:`make_scene` returns it.

    Notes
    -----
    Frames carry explicit presentation timestamps, so stretches listed in
    ``spec.dropped`` appear as real gaps in the timestamps.
    """
    import av  # local import: keep module import light

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sc = _build_scene(spec)
    fr, tb, step = _time_base(spec.fps)
    W, H = spec.width, spec.height
    options = {}
    if path.suffix.lower() in (".mp4", ".mov", ".m4v"):
        options["movflags"] = "+faststart"
    container = av.open(str(path), mode="w", options=options)
    try:
        if spec.codec == "h264":
            stream = container.add_stream("libx264", rate=fr)
            stream.options = {"crf": str(int(spec.crf)), "preset": "veryfast"}
        else:
            stream = container.add_stream("mpeg4", rate=fr)
            # the MPEG-4 rate control takes 1/time_base as the frame rate: use 1/fps
            tb, step = 1 / fr, 1
            # MPEG-4 part 2 has no CRF: a bit rate of ~0.12 bit/pixel at crf 23,
            # doubling every 6 crf steps down (as x264's CRF roughly does)
            bpp = 0.12 * 2.0 ** ((23 - spec.crf) / 6.0)
            stream.bit_rate = int(bpp * W * H * float(fr))
            if path.suffix.lower() in (".mp4", ".mov", ".m4v"):
                stream.codec_tag = "mp4v"
        stream.width, stream.height = W, H
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = max(1, int(round(2 * spec.fps)))  # keyframe every 2 s
        stream.time_base = tb
        stream.codec_context.time_base = tb
        yuv = np.full((H * 3 // 2, W), 128, np.uint8)
        y_plane = yuv[:H]
        scale = np.float32(219.0 / 255.0)
        tmp = np.empty((H, W), np.float32)
        for i, _, img in _frames(sc):
            np.clip(img, 0, 255, out=tmp)
            tmp *= scale
            tmp += np.float32(16.5)
            y_plane[:] = tmp.astype(np.uint8)  # limited-range luma, truncation of +0.5 = rounding
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = int(i) * step
            frame.time_base = tb
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    finally:
        container.close()
    return _truth_from_scene(sc)


# ---------------------------------------------------------------------------
# file damage helpers
# ---------------------------------------------------------------------------


def truncate_file(path: str | os.PathLike, keep_fraction: float) -> int:
    """Cut a file to its first ``keep_fraction`` of bytes (a power cut).

    Parameters
    ----------
    path : str or os.PathLike
        File to truncate in place.
    keep_fraction : float
        Fraction of the bytes to keep, in (0, 1].

    Returns
    -------
    int
        The new size in bytes.
    """
    if not 0 < keep_fraction <= 1:
        raise ValueError("keep_fraction must be in (0, 1]")
    size = os.path.getsize(path)
    new = max(1, int(size * keep_fraction))
    with open(path, "r+b") as fh:
        fh.truncate(new)
    return new


def damage_bytes(path: str | os.PathLike, start_fraction: float, length_bytes: int,
                 seed: int = 0) -> tuple[int, int]:
    """Overwrite a stretch of a file with random bytes (a corrupt stretch).

    Parameters
    ----------
    path : str or os.PathLike
        File to damage in place.
    start_fraction : float
        Where the stretch starts, as a fraction of the file size, in [0, 1).
    length_bytes : int
        Number of bytes to overwrite (cut at the end of the file).
    seed : int, optional
        Seed of the garbage bytes.

    Returns
    -------
    tuple of int
        (offset, number of bytes overwritten).
    """
    if not 0 <= start_fraction < 1:
        raise ValueError("start_fraction must be in [0, 1)")
    size = os.path.getsize(path)
    off = int(size * start_fraction)
    n = max(0, min(int(length_bytes), size - off))
    garbage = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()
    with open(path, "r+b") as fh:
        fh.seek(off)
        fh.write(garbage)
    return off, n


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def _pair(text: str) -> tuple[float, float]:
    a, b = text.split(":")
    return float(a), float(b)


def main(argv: Sequence[str] | None = None) -> int:
    """Write a synthetic video, ``<stem>_truth.csv`` and ``<stem>.yaml`` next to it.

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (0).
    """
    import time

    args = _argument_parser().parse_args(argv)
    spec = _spec_from_args(args)
    out = Path(args.out)
    t0 = time.perf_counter()
    truth = generate_video(out, spec)
    dt = time.perf_counter() - t0
    csv_path, yaml_path = _write_truth_files(out, truth)
    times = truth.chamber_times()
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB, {len(truth.track)} rows, "
          f"{dt:.1f} s), {csv_path.name}, {yaml_path.name}")
    for arena, row in times.iterrows():
        print(f"  {arena}: " + ", ".join(f"{c} {v:.1f} s" for c, v in row.items()))
    if truth.distractor_polygon is not None:
        print(f"  distractor polygon (box1): {truth.distractor_polygon}")
    return 0


def _argument_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cpp_tracker.synthetic",
                                description="Generate a synthetic CPP video with ground truth.")
    p.add_argument("--out", required=True, help="output video path (.mp4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=60.0, help="seconds")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--arenas", type=int, default=1, help="number of boxes (1-4)")
    p.add_argument("--chambers", type=int, default=2, choices=(1, 2, 3),
                   help="chambers per box (1: an open field without inner walls)")
    p.add_argument("--door-angle", type=float, default=0.0, help="degrees")
    p.add_argument("--animal-ids", default=None, help="comma-separated, one per box")
    p.add_argument("--mouse", default="dark", choices=sorted(_MOUSE_LEVEL))
    p.add_argument("--floor", default="light", choices=sorted(_FLOOR_LEVEL))
    p.add_argument("--wall", default="dark", choices=sorted(_WALL_LEVEL))
    p.add_argument("--no-texture", action="store_true")
    p.add_argument("--noise", type=float, default=3.0, help="sensor noise sigma")
    p.add_argument("--rest-fraction", type=float, default=0.2)
    p.add_argument("--sleep-fraction", type=float, default=0.0)
    p.add_argument("--light-drift", type=float, default=0.0)
    p.add_argument("--light-step", type=_pair, action="append", default=[],
                   metavar="T:GAIN")
    p.add_argument("--drop", type=_pair, action="append", default=[], metavar="START:END")
    p.add_argument("--distractor", default=None, choices=("blink", "cable"))
    p.add_argument("--distractor-scale", type=float, default=1.0)
    p.add_argument("--codec", default="h264", choices=("h264", "mp4v"))
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--cm-per-box-width", type=float, default=60.0)
    p.add_argument("--boli", type=int, default=0)
    p.add_argument("--tail-base-frac", type=float, default=None,
                   help="tail width at its base / body width (default: a fixed 1.9 px)")
    p.add_argument("--shadow-depth", type=float, default=0.0, help="grey levels")
    p.add_argument("--experimenter", action="store_true",
                   help="start with a gloved hand putting the mouse in, doors closed")
    p.add_argument("--doors-open", type=float, default=None, help="s (with --experimenter)")
    p.add_argument("--lid-gain", type=float, default=1.0, help="(with --experimenter)")
    return p


def _spec_from_args(args: argparse.Namespace) -> SceneSpec:
    ids = args.animal_ids.split(",") if args.animal_ids else []
    arenas = tuple(
        ArenaSpec(n_chambers=args.chambers, door_angle_deg=args.door_angle,
                  animal_id=ids[i] if i < len(ids) else None)
        for i in range(args.arenas)
    )
    return SceneSpec(
        width=args.width, height=args.height, fps=args.fps, duration_s=args.duration,
        seed=args.seed, arenas=arenas, mouse=args.mouse, floor=args.floor, wall=args.wall,
        floor_texture=not args.no_texture, noise_sigma=args.noise,
        rest_fraction=args.rest_fraction, sleep_fraction=args.sleep_fraction,
        light_drift=args.light_drift, light_steps=tuple(args.light_step),
        dropped=tuple(args.drop), distractor=args.distractor,
        distractor_scale=args.distractor_scale, codec=args.codec, crf=args.crf,
        cm_per_box_width=args.cm_per_box_width, boli=args.boli,
        tail_base_frac=args.tail_base_frac, shadow_depth=args.shadow_depth,
        experimenter=args.experimenter, doors_open_s=args.doors_open, lid_gain=args.lid_gain,
    )


def _write_truth_files(out: Path, truth: GroundTruth) -> tuple[Path, Path]:
    """``<stem>_truth.csv`` and ``<stem>.yaml`` next to the video ``out``."""
    import yaml

    stem = out.with_suffix("")
    csv_path = stem.parent / f"{stem.name}_truth.csv"
    yaml_path = stem.parent / f"{stem.name}.yaml"
    truth.track.to_csv(csv_path, index=False, float_format="%.3f")
    with open(yaml_path, "w") as fh:
        yaml.safe_dump(truth.config, fh, sort_keys=False, default_flow_style=None)
    return csv_path, yaml_path


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
