"""Arenas, door lines and chambers; assign a track to chambers with hysteresis.

The arena polygon is cut into pieces by its door lines (each clipped to the polygon); every
piece is named by the chamber whose ``point`` lies in it. A centroid's chamber is the piece
it lies in, with hysteresis: once in chamber C the assignment stays C until the centroid is
farther than ``hysteresis_px`` from C's piece. Chamber codes are integers: ``-1`` is
``unknown`` (no detection, or before the first detection), ``0..k-1`` index the chambers in
config order.

Shapely is used for the polygon work (splitting by lines, validity, distances): it is the
well-tested standard for planar geometry and vectorises point queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import polygonize, unary_union

__all__ = [
    "UNKNOWN",
    "ChamberLayout",
    "build_layout",
    "geometry_problems",
    "assign_chambers",
    "assign_chambers_and_pieces",
    "assign_by_body_fraction",
    "keypoint_shares",
    "split_polygon",
    "ArenaDrawing",
    "ArenasDrawing",
]

# What this module reads of a config, described by shape (``config.ArenaConfig``,
# ``config.Template`` and ``config.Config`` fit): geometry imports nothing from the config,
# which imports geometry to check a file's drawing.
_XY = tuple[float, float]


class _DoorLine(Protocol):
    @property
    def line(self) -> tuple[_XY, _XY]: ...


class _ChamberPoint(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def point(self) -> _XY: ...


class _Drawing(Protocol):
    @property
    def polygon(self) -> Sequence[_XY]: ...
    @property
    def doors(self) -> Sequence[_DoorLine]: ...
    @property
    def chambers(self) -> Sequence[_ChamberPoint]: ...
    @property
    def masks(self) -> Sequence[Sequence[_XY]]: ...


class _UnitsDrawing(_Drawing, Protocol):
    @property
    def units(self) -> str: ...


class ArenaDrawing(_Drawing, Protocol):
    """An arena's outline, door lines, chambers and masks in pixels, and the drawing as
    written when it was given in other units (:class:`cpp_tracker.config.settings.ArenaConfig`)."""

    @property
    def name(self) -> str: ...
    @property
    def chamber_names(self) -> tuple[str, ...]: ...
    @property
    def template(self) -> _UnitsDrawing | None: ...


class ArenasDrawing(Protocol):
    """Arenas in file order (:class:`cpp_tracker.config.settings.Config`)."""

    @property
    def arenas(self) -> Sequence[ArenaDrawing]: ...


#: Code of the ``unknown`` chamber.
UNKNOWN = -1

#: Frames whose distances to the chambers are computed at once in :func:`assign_chambers`.
ASSIGN_BLOCK = 65536

# Door lines drawn "from wall to wall" by hand often stop a pixel or two short of the wall;
# they are extended by this many pixels at both ends before the polygon is cut.
_DOOR_EXTENSION_PX = 6.0


def _extended(line: tuple[tuple[float, float], tuple[float, float]], by: float) -> LineString:
    (x1, y1), (x2, y2) = line
    d = np.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / d, (y2 - y1) / d
    return LineString([(x1 - ux * by, y1 - uy * by), (x2 + ux * by, y2 + uy * by)])


def split_polygon(polygon: Polygon, lines: list[LineString]) -> list[Polygon]:
    """Cut ``polygon`` into pieces along ``lines`` (the parts outside it are dropped).

    The whole lines are noded together with the outline (not clipped first): a clipped
    line's end point, computed in floating point, can miss a slanted wall by 1e-14 px and
    then cuts nothing.
    """
    if not lines:
        return [polygon]
    noded = unary_union([polygon.exterior, *lines])
    pieces = [p for p in polygonize(noded) if polygon.contains(p.representative_point())]
    pieces = [p for p in pieces if p.area > 1e-6 * polygon.area]
    return pieces or [polygon]


@dataclass(frozen=True)
class ChamberLayout:
    """The pieces of one arena, in chamber (config) order."""

    arena: str
    polygon: Polygon
    chamber_names: tuple[str, ...]
    pieces: tuple[Polygon, ...]
    door_segments: tuple[LineString, ...]
    hysteresis_px: float
    backdate_crossings: bool = True

    def raw_chamber(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The piece each point lies in (nearest piece for points on a line or outside).

        Computed :data:`ASSIGN_BLOCK` points at a time: memory does not grow with the
        length of the track."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        out = np.empty(len(x), dtype=np.int16)
        for b0 in range(0, len(x), ASSIGN_BLOCK):
            dist = self.margin_distances(x[b0 : b0 + ASSIGN_BLOCK], y[b0 : b0 + ASSIGN_BLOCK])
            out[b0 : b0 + ASSIGN_BLOCK] = np.argmin(dist, axis=1)
        return out

    def distances(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (px) from each point to each piece, shape (n_points, n_chambers)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        pts = shapely.points(x, y)
        out = np.empty((len(x), len(self.pieces)))
        for k, piece in enumerate(self.pieces):
            out[:, k] = shapely.distance(piece, pts)
        return out

    def margin_distances(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """:meth:`distances` where they can be at most ``hysteresis_px``; for a point deep
        inside a piece (in its core) 0 to that piece and ``inf`` to the others.

        What the assignment reads of the distances is the same: the nearest piece (argmin,
        the first of equals) and whether a distance exceeds the margin. Most centroids lie
        in a core, found by a fast point-in-polygon test; only those near a door line or a
        wall, or outside the arena, are measured exactly.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        out = np.full((len(x), len(self.pieces)), np.inf)
        rest = np.ones(len(x), dtype=bool)
        for k, core in enumerate(self._cores):
            inside = shapely.intersects_xy(core, x, y)
            out[inside, k] = 0.0
            rest &= ~inside
        if rest.any():
            out[rest] = self.distances(x[rest], y[rest])
        return out

    @cached_property
    def _cores(self) -> tuple[Polygon, ...]:
        """Each piece shrunk by more than the margin (prepared for fast queries).

        A point in a core lies inside that piece alone and more than ``hysteresis_px``
        from every other piece (a way out of a piece crosses its outline). Buffering
        approximates arcs by chords and simplifies the outline by 1 % of the depth, so the
        depth is 10 % and 2 px more than the margin.
        """
        depth = 1.1 * max(self.hysteresis_px, 0.0) + 2.0
        cores = tuple(piece.buffer(-depth, quad_segs=16) for piece in self.pieces)
        for core in cores:
            shapely.prepare(core)
        return cores


def _pieces_for(arena: ArenaDrawing) -> tuple[Polygon, list[LineString], list[Polygon]]:
    polygon = Polygon(arena.polygon)
    lines = [_extended(d.line, _DOOR_EXTENSION_PX) for d in arena.doors]
    return polygon, lines, split_polygon(polygon, lines)


def build_layout(
    arena: ArenaDrawing, hysteresis_px: float, backdate_crossings: bool = True
) -> ChamberLayout:
    """Cut an arena into its named chambers.

    The configuration must have passed :func:`geometry_problems` (``load_config`` does that).
    """
    polygon, lines, pieces = _pieces_for(arena)
    ordered = []
    for chamber in arena.chambers:
        p = Point(chamber.point)
        ordered.append(min(pieces, key=lambda piece: piece.distance(p)))
    segments = tuple(polygon.intersection(line) for line in lines)
    return ChamberLayout(
        arena=arena.name,
        polygon=polygon,
        chamber_names=arena.chamber_names,
        pieces=tuple(ordered),
        door_segments=segments,
        hysteresis_px=float(hysteresis_px),
        backdate_crossings=bool(backdate_crossings),
    )


def _written(arena: ArenaDrawing, kind: str, j: int = 0) -> str:
    """A coordinate of ``arena`` as the user wrote it (in the template's units, if any)."""
    source = arena.template if arena.template is not None else arena
    units = f" {arena.template.units}" if arena.template is not None else ""

    def fmt(pts) -> str:
        return "[" + ", ".join(f"[{x:g}, {y:g}]" for x, y in pts) + "]"

    if kind == "door":
        return fmt(source.doors[j].line) + units
    if kind == "chamber":
        x, y = source.chambers[j].point
        return f"[{x:g}, {y:g}]{units}"
    if kind == "mask":
        return fmt(source.masks[j]) + units
    return fmt(source.polygon) + units


def _where_invalid(polygon: Polygon) -> str:
    """Where a polygon is invalid, e.g. ' (it crosses itself near [150, 120])'."""
    from shapely.validation import explain_validity

    text = explain_validity(polygon)
    if "[" in text:
        reason, _, at = text.partition("[")
        coords = at.rstrip("]").split()
        if len(coords) == 2:
            x, y = (float(c) for c in coords)
            return f" ({reason.strip().lower()} near [{x:.0f}, {y:.0f}] px)"
    return ""


_Problems = list[tuple[str, str]]


def geometry_problems(config: ArenasDrawing) -> list[tuple[str, str]]:
    """Every geometric problem of a structurally valid config, as (key path, message).

    Checked per arena: the outline is a simple polygon with an area; every door line cuts
    off a piece of it (a door may end on another door, as in a T); masks are simple,
    overlap the arena and leave part of every chamber visible; every chamber point lies
    inside the arena, off the door lines, alone in its piece; and every piece has a
    chamber. Across arenas: no two share floor.
    """
    problems: list[tuple[str, str]] = []
    polygons: list[Polygon | None] = []
    for i, arena in enumerate(config.arenas):
        polygons.append(_arena_problems(arena, f"arenas[{i}]", problems))
    problems.extend(_overlap_problems(config, polygons))
    return problems



def _arena_problems(arena: ArenaDrawing, path: str, problems: _Problems) -> Polygon | None:
    """Add one arena's problems to ``problems``; its outline, None when that is unusable."""
    polygon = Polygon(arena.polygon)
    if not polygon.is_valid or polygon.area <= 0:
        problems.append(
            (f"{path}.polygon", f"{_written(arena, 'polygon')}: the outline crosses itself "
             f"or has no area{_where_invalid(polygon)}; list the corners in order around "
             "the arena")
        )
        return None
    lines = [_extended(d.line, _DOOR_EXTENSION_PX) for d in arena.doors]
    pieces = split_polygon(polygon, lines)
    door_ok = _add_door_problems(arena, path, polygon, lines, len(pieces), problems)
    mask_polygons = _usable_masks(arena, path, polygon, problems)
    # chambers are judged by the pieces, which mean nothing while a door line is wrong
    if door_ok:
        owner = _chamber_owners(arena, path, polygon, pieces, problems)
        if len(owner) == len(arena.chambers):
            problems.extend(_unnamed_pieces(arena, path, pieces, owner))
        if mask_polygons and len(owner) == len(arena.chambers) == len(pieces):
            problems.extend(_hidden_chambers(path, pieces, owner, mask_polygons))
    return polygon


def _add_door_problems(
    arena: ArenaDrawing,
    path: str,
    polygon: Polygon,
    lines: list[LineString],
    n_pieces: int,
    problems: _Problems,
) -> bool:
    """Add a problem for each door line that does not cut the arena; True when none."""
    door_ok = True
    for j, line in enumerate(lines):
        seg = polygon.intersection(line)
        if seg.is_empty or seg.length < 1.0:
            problems.append(
                (f"{path}.doors[{j}].line", f"{_written(arena, 'door', j)} does not cross "
                 f"arena '{arena.name}'; draw it from wall to wall across the arena")
            )
            door_ok = False
            continue
        # a door that cuts adds a piece: without it there are fewer
        others = lines[:j] + lines[j + 1 :]
        if len(split_polygon(polygon, others)) >= n_pieces:
            problems.append(
                (f"{path}.doors[{j}].line", f"{_written(arena, 'door', j)} does not cut "
                 f"arena '{arena.name}' in two; extend it from wall to wall (or to another "
                 "door line)")
            )
            door_ok = False
    return door_ok


def _usable_masks(
    arena: ArenaDrawing, path: str, polygon: Polygon, problems: _Problems
) -> list[Polygon]:
    """The masks that are simple and overlap the arena; a problem for each other one."""
    mask_polygons = []
    for j, mask in enumerate(arena.masks):
        m = Polygon(mask)
        if not m.is_valid or m.area <= 0:
            problems.append(
                (f"{path}.masks[{j}]", f"{_written(arena, 'mask', j)}: the mask outline "
                 f"crosses itself or has no area{_where_invalid(m)}; list its corners in "
                 "order around it")
            )
            continue
        if m.intersection(polygon).area <= 1e-9 * polygon.area:
            problems.append(
                (f"{path}.masks[{j}]", f"{_written(arena, 'mask', j)} lies outside arena "
                 f"'{arena.name}'; a mask hides part of its own arena, so draw it inside")
            )
            continue
        mask_polygons.append(m)
    return mask_polygons


def _chamber_owners(
    arena: ArenaDrawing, path: str, polygon: Polygon, pieces: list[Polygon], problems: _Problems
) -> dict[int, str]:
    """The chamber named in each piece (by piece index); a problem for each chamber point
    outside the arena, on a door line, or in a piece that another chamber has."""
    owner: dict[int, str] = {}
    for j, chamber in enumerate(arena.chambers):
        pt = Point(chamber.point)
        if not polygon.covers(pt):
            problems.append(
                (f"{path}.chambers[{j}].point", f"{_written(arena, 'chamber', j)} lies "
                 f"outside arena '{arena.name}'; put it inside the chamber it names")
            )
            continue
        inside = [k for k, piece in enumerate(pieces) if piece.buffer(1e-9).covers(pt)]
        if len(inside) != 1:
            problems.append(
                (f"{path}.chambers[{j}].point", f"{_written(arena, 'chamber', j)} lies on "
                 "a door line; move it into the middle of its chamber")
            )
            continue
        k = inside[0]
        if k in owner:
            problems.append(
                (f"{path}.chambers[{j}].point", f"chambers '{owner[k]}' and '{chamber.name}' "
                 "have their points in the same piece of the arena; move one point across "
                 "the door line, or add the missing door line")
            )
        else:
            owner[k] = chamber.name
    return owner


def _unnamed_pieces(
    arena: ArenaDrawing, path: str, pieces: list[Polygon], owner: dict[int, str]
) -> _Problems:
    """A problem for each piece without a chamber point."""
    problems = []
    for k in range(len(pieces)):
        if k in owner:
            continue
        c = pieces[k].representative_point()
        problems.append(
            (f"{path}.chambers", f"the piece of arena '{arena.name}' around "
             f"[{c.x:.0f}, {c.y:.0f}] px has no chamber; add a chamber with a point "
             "in it")
        )
    return problems


def _hidden_chambers(
    path: str, pieces: list[Polygon], owner: dict[int, str], masks: list[Polygon]
) -> _Problems:
    """A problem for each chamber that the masks hide (almost) entirely."""
    hidden = unary_union(masks)
    return [
        (f"{path}.masks", f"the masks cover all of chamber '{owner[k]}': the "
         "mouse could never be seen there; make the masks smaller")
        for k, piece in enumerate(pieces)
        if piece.difference(hidden).area < 0.01 * piece.area
    ]


def _overlap_problems(config: ArenasDrawing, polygons: list[Polygon | None]) -> _Problems:
    """A problem for each pair of arenas that share floor (None: an unusable outline)."""
    problems = []
    for i, a in enumerate(polygons):
        for j in range(i + 1, len(polygons)):
            b = polygons[j]
            if a is not None and b is not None and a.intersection(b).area > 1.0:
                problems.append(
                    (f"arenas[{j}].polygon", f"arena '{config.arenas[j].name}' overlaps arena "
                     f"'{config.arenas[i].name}' by {a.intersection(b).area:.0f} px²; arenas "
                     "must not share floor")
                )
    return problems


def assign_chambers(
    x: np.ndarray,
    y: np.ndarray,
    detected: np.ndarray,
    layout: ChamberLayout,
    state: int = UNKNOWN,
) -> tuple[np.ndarray, int]:
    """Chamber code per frame of a whole track, with hysteresis.

    Parameters
    ----------
    x, y, detected
        Centroid per frame (NaN where not detected) and the detection flag.
    layout
        The arena's chambers, hysteresis margin and whether crossings are backdated.
    state
        The chamber the mouse was in before these frames (``UNKNOWN`` at the start of a
        video).

    Returns
    -------
    codes, state
        ``int16`` codes (``-1`` = unknown: no detection, or before the first detection) and
        the last known chamber.

    The chamber changes only once the centroid is more than ``hysteresis_px`` from the
    current chamber's piece; with ``backdate_crossings`` the frames since the centroid left
    that piece are then given to the pieces they lie in. A frame without a detection is
    ``unknown`` but does not reset the hysteresis: when the mouse is found again, its
    chamber is judged against the last known chamber.

    Examples
    --------
    A mouse walks from chamber 0 across a door at x = 100 (margin 5 px)::

        x:        90  98  102  104  106  103  98
        forward:   0   0    0    0    1    1   1
        backdated: 0   0    1    1    1    1   1
    """
    codes, state, _ = assign_chambers_and_pieces(x, y, detected, layout, state)
    return codes, state


def assign_chambers_and_pieces(
    x: np.ndarray,
    y: np.ndarray,
    detected: np.ndarray,
    layout: ChamberLayout,
    state: int = UNKNOWN,
) -> tuple[np.ndarray, int, np.ndarray]:
    """:func:`assign_chambers`, and the piece each centroid lies in (the chamber time is
    counted in, no hysteresis; ``-1`` where not detected) from the same distances."""
    detected = np.asarray(detected, dtype=bool)
    n = len(detected)
    codes = np.full(n, UNKNOWN, dtype=np.int16)
    pieces = np.full(n, UNKNOWN, dtype=np.int16)
    idx = np.flatnonzero(detected)
    if len(idx) == 0:
        return codes, state, pieces
    xs = np.asarray(x)[idx]
    ys = np.asarray(y)[idx]
    m = len(idx)
    margin = layout.hysteresis_px
    backdate = layout.backdate_crossings
    raw_all = np.empty(m, dtype=np.int16)
    out = np.empty(m, dtype=np.int16)
    cur = state
    last_in = -1  # last frame whose centroid lay in the current chamber's piece
    # Distances (and their Python lists) for a block of frames at a time, so that memory
    # does not grow with the length of the recording; the state carries over.
    for b0 in range(0, m, ASSIGN_BLOCK):
        b1 = min(m, b0 + ASSIGN_BLOCK)
        dist = layout.margin_distances(xs[b0:b1], ys[b0:b1])
        raw = np.argmin(dist, axis=1)
        raw_all[b0:b1] = raw
        if margin <= 0:
            out[b0:b1] = raw
            cur = int(raw[-1])
            continue
        if _RUN_FRAMES * (1 + np.count_nonzero(raw[1:] != raw[:-1])) <= len(raw):
            cur, last_in = _hysteresis_runs(
                raw, dist, b0, cur, last_in, margin, backdate, raw_all, out
            )
        else:  # a mouse jittering on a door line: frame by frame is faster
            cur, last_in = _hysteresis_block(
                raw.tolist(), dist, b0, cur, last_in, margin, backdate, raw_all, out
            )
    codes[idx] = out
    pieces[idx] = raw_all
    return codes, int(cur), pieces


#: Runs of frames in one piece at least this long on average are assigned a run at a time
#: (:func:`_hysteresis_runs`), shorter ones frame by frame.
_RUN_FRAMES = 16


def _hysteresis_runs(
    raw: np.ndarray,
    dist: np.ndarray,
    b0: int,
    cur: int,
    last_in: int,
    margin: float,
    backdate: bool,
    raw_all: np.ndarray,
    out: np.ndarray,
) -> tuple[int, int]:
    """:func:`_hysteresis_block` a run of frames in the same piece at a time: in a run in
    the current chamber's piece nothing changes, in a run in another piece the chamber
    changes at its first frame farther than the margin from the current one (if any)."""
    block = out[b0 : b0 + len(raw)]
    starts = np.flatnonzero(np.r_[True, raw[1:] != raw[:-1]])
    ends = np.r_[starts[1:], len(raw)]
    for s, e, r in zip(starts.tolist(), ends.tolist(), raw[starts].tolist(), strict=True):
        switch = s
        if cur != UNKNOWN and r != cur:
            far = dist[s:e, cur] > margin
            if not far.any():
                block[s:e] = cur  # stays, and the frames are not in its piece
                continue
            switch = s + int(np.argmax(far))
            block[s:switch] = cur
            if backdate:  # the frames since the centroid left cur's piece go where they lie
                lo = last_in + 1
                if lo < b0:  # the crossing began in an earlier block
                    out[lo:b0] = raw_all[lo:b0]
                    lo = b0
                block[lo - b0 : switch] = raw[lo - b0 : switch]
        cur = r
        block[switch:e] = r
        last_in = b0 + e - 1
    return cur, last_in


def _hysteresis_block(
    raw_l: list[int],
    dist: np.ndarray,
    b0: int,
    cur: int,
    last_in: int,
    margin: float,
    backdate: bool,
    raw_all: np.ndarray,
    out: np.ndarray,
) -> tuple[int, int]:
    """The chambers with hysteresis of one block of detected frames (the block's pieces
    ``raw_l`` and distances ``dist``, starting at detected frame ``b0``), written into
    ``out``; ``cur`` and ``last_in`` (the last frame in ``cur``'s piece) carry over from the
    block before and are returned for the next one. A backdated crossing that began in an
    earlier block rewrites that block's frames in ``out`` from ``raw_all``."""
    # Sequential by nature; a loop over plain Python lists (about 1 µs per frame).
    out_l = [0] * len(raw_l)
    for j, r in enumerate(raw_l):
        i = b0 + j
        if cur == UNKNOWN:
            cur = r
            last_in = i
        elif r == cur:
            last_in = i
        elif dist[j, cur] > margin:  # looked up only off the current piece: few frames
            if backdate:
                lo = last_in + 1
                if lo < b0:  # the crossing began in an earlier block
                    out[lo:b0] = raw_all[lo:b0]
                    lo = b0
                for k in range(lo, i):
                    out_l[k - b0] = raw_l[k - b0]
            cur = r
            last_in = i
        out_l[j] = cur
    out[b0 : b0 + len(out_l)] = out_l
    return cur, last_in


def assign_by_body_fraction(
    shares: np.ndarray,
    detected: np.ndarray,
    enter_fraction: float,
    exit_fraction: float,
    state: int = UNKNOWN,
) -> tuple[np.ndarray, int]:
    """Chamber code per frame from the share of the mouse in each chamber (the
    ``body_fraction`` rule).

    Parameters
    ----------
    shares
        Shape (n_frames, n_chambers): the share of the mouse in each chamber, in config
        order (of its blob's area for the tracker, of the chosen keypoints for a pose
        file); each row sums to 1 where detected, NaN where not.
    detected
        The detection flag per frame.
    enter_fraction, exit_fraction
        The mouse enters a chamber once at least ``enter_fraction`` of it lies there (and
        more than in its current chamber), and leaves its chamber once less than
        ``exit_fraction`` of it lies there; it then goes to the chamber holding most of it.
        ``0.5 <= enter_fraction <= 1`` and ``0 < exit_fraction <= enter_fraction``
        (``config.settings`` checks this).
    state
        The chamber before these frames (``UNKNOWN`` at the start of a video).

    Returns
    -------
    codes, state
        ``int16`` codes (``-1`` = unknown: no detection, or before the first detection) and
        the last known chamber. The first detected frame goes to the chamber holding most
        of the mouse; a frame without a detection is ``unknown`` but keeps the state.

    Examples
    --------
    Enter at 0.7, leave below 0.3; the mouse's share in chamber 1, chamber 0 holds the rest::

        share in 1:  0.0  0.4  0.6  0.7  0.5  0.35  0.25  0.0
        chamber:       0    0    0    1    1     1     0    0
    """
    shares = np.asarray(shares, dtype=float)
    detected = np.asarray(detected, dtype=bool)
    n = len(detected)
    codes = np.full(n, UNKNOWN, dtype=np.int16)
    idx = np.flatnonzero(detected & np.isfinite(shares).all(axis=1))
    if len(idx) == 0:
        return codes, state
    rows = shares[idx]
    best = np.argmax(rows, axis=1)
    # frames wholly in one chamber decide themselves; the loop runs over plain lists
    out = _fraction_hysteresis(rows.tolist(), best.tolist(), float(enter_fraction),
                               float(exit_fraction), int(state))
    codes[idx] = out
    return codes, int(out[-1])


def _fraction_hysteresis(
    rows: list[list[float]], best: list[int], enter: float, leave: float, cur: int
) -> list[int]:
    """The chamber per frame of :func:`assign_by_body_fraction` (detected frames only)."""
    out = [0] * len(rows)
    for i, (row, b) in enumerate(zip(rows, best, strict=True)):
        if cur == UNKNOWN or row[cur] < leave:
            cur = b  # (re)placed, or left its chamber: where most of the mouse is
        elif b != cur and row[b] >= enter and row[b] > row[cur]:
            cur = b
        out[i] = cur
    return out


def keypoint_shares(
    layout: ChamberLayout, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """The share of the keypoints in each chamber, per frame (for the ``body_fraction``
    rule on a pose track).

    ``x``, ``y``: shape (n_frames, n_keypoints), NaN where a keypoint was not found (it
    does not count). Each keypoint counts in the piece it lies in (the nearest for one on
    a door line or outside the arena). Returns (n_frames, n_chambers) float; NaN rows
    where no keypoint was found."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n, m = x.shape
    k = len(layout.pieces)
    found = np.isfinite(x) & np.isfinite(y)
    counts = np.zeros((n, k))
    if found.any():
        frame = np.broadcast_to(np.arange(n)[:, None], (n, m))[found]
        piece = layout.raw_chamber(x[found], y[found])
        np.add.at(counts, (frame, piece), 1.0)
    total = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / total, np.nan)
