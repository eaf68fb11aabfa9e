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

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import polygonize, unary_union

if TYPE_CHECKING:
    from .config import ArenaConfig, Config

__all__ = [
    "UNKNOWN",
    "ChamberLayout",
    "build_layout",
    "geometry_problems",
    "assign_chambers",
    "split_polygon",
]

#: Code of the ``unknown`` chamber.
UNKNOWN = -1

# Door lines drawn "from wall to wall" by hand often stop a pixel or two short of the wall;
# they are extended by this many pixels at both ends before the polygon is cut.
_DOOR_EXTENSION_PX = 6.0


def _extended(line: tuple[tuple[float, float], tuple[float, float]], by: float) -> LineString:
    (x1, y1), (x2, y2) = line
    d = np.hypot(x2 - x1, y2 - y1)
    ux, uy = (x2 - x1) / d, (y2 - y1) / d
    return LineString([(x1 - ux * by, y1 - uy * by), (x2 + ux * by, y2 + uy * by)])


def split_polygon(polygon: Polygon, lines: list[LineString]) -> list[Polygon]:
    """Cut ``polygon`` into pieces along ``lines`` (each clipped to the polygon)."""
    if not lines:
        return [polygon]
    # Node the whole lines with the outline: clipping first gives end points that lie on the
    # outline only to floating-point precision, and a slanted line then fails to close.
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

    def raw_chamber(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The piece each point lies in (nearest piece for points on a line or outside)."""
        dist = self.distances(x, y)
        return np.argmin(dist, axis=1).astype(np.int16)

    def distances(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Distance (px) from each point to each piece, shape (n_points, n_chambers)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        pts = shapely.points(x, y)
        out = np.empty((len(x), len(self.pieces)))
        for k, piece in enumerate(self.pieces):
            out[:, k] = shapely.distance(piece, pts)
        return out


def _pieces_for(arena: ArenaConfig) -> tuple[Polygon, list[LineString], list[Polygon]]:
    polygon = Polygon(arena.polygon)
    lines = [_extended(d.line, _DOOR_EXTENSION_PX) for d in arena.doors]
    return polygon, lines, split_polygon(polygon, lines)


def build_layout(arena: ArenaConfig, hysteresis_px: float) -> ChamberLayout:
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
    )


def geometry_problems(config: Config) -> list[tuple[str, str]]:
    """Every geometric problem of a structurally valid config, as (key path, message)."""
    problems: list[tuple[str, str]] = []
    polygons: list[Polygon | None] = []
    for i, arena in enumerate(config.arenas):
        path = f"arenas[{i}]"
        polygon = Polygon(arena.polygon)
        if not polygon.is_valid or polygon.area <= 0:
            problems.append(
                (f"{path}.polygon", "the outline crosses itself or has no area; list the "
                 "corners in order around the arena")
            )
            polygons.append(None)
            continue
        polygons.append(polygon)
        for j, door in enumerate(arena.doors):
            seg = polygon.intersection(_extended(door.line, _DOOR_EXTENSION_PX))
            if seg.is_empty or seg.length < 1.0:
                problems.append(
                    (f"{path}.doors[{j}].line", f"{[list(p) for p in door.line]} does not cross "
                     f"arena '{arena.name}'; draw it from wall to wall across the arena")
                )
                continue
            # Does the line actually divide the polygon?
            if len(split_polygon(polygon, [_extended(door.line, _DOOR_EXTENSION_PX)])) < 2:
                problems.append(
                    (f"{path}.doors[{j}].line", f"{[list(p) for p in door.line]} does not cut "
                     f"arena '{arena.name}' in two; extend it from wall to wall")
                )
        for j, mask in enumerate(arena.masks):
            m = Polygon(mask)
            if not m.is_valid or m.area <= 0:
                problems.append((f"{path}.masks[{j}]", "the mask outline crosses itself or has "
                                 "no area"))
        if any(p[0].startswith(f"{path}.doors") for p in problems):
            continue
        _, _, pieces = _pieces_for(arena)
        owner: dict[int, str] = {}
        for j, chamber in enumerate(arena.chambers):
            pt = Point(chamber.point)
            if not polygon.covers(pt):
                problems.append(
                    (f"{path}.chambers[{j}].point", f"{list(chamber.point)} lies outside arena "
                     f"'{arena.name}'; put it inside the chamber it names")
                )
                continue
            inside = [k for k, piece in enumerate(pieces) if piece.buffer(1e-9).covers(pt)]
            if len(inside) != 1:
                problems.append(
                    (f"{path}.chambers[{j}].point", f"{list(chamber.point)} lies on a door line; "
                     "move it into the middle of its chamber")
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
        unnamed = [k for k in range(len(pieces)) if k not in owner]
        if unnamed and len(owner) == len(
            [c for c in arena.chambers]
        ):
            for k in unnamed:
                c = pieces[k].representative_point()
                problems.append(
                    (f"{path}.chambers", f"the piece of arena '{arena.name}' around "
                     f"[{c.x:.0f}, {c.y:.0f}] has no chamber; add a chamber with a point in it")
                )
    for i, a in enumerate(polygons):
        for j in range(i + 1, len(polygons)):
            b = polygons[j]
            if a is not None and b is not None and a.intersection(b).area > 1.0:
                problems.append(
                    (f"arenas[{j}].polygon", f"arena '{config.arenas[j].name}' overlaps arena "
                     f"'{config.arenas[i].name}'; arenas must not share floor")
                )
    return problems


def assign_chambers(
    x: np.ndarray,
    y: np.ndarray,
    detected: np.ndarray,
    layout: ChamberLayout,
    state: int = UNKNOWN,
) -> tuple[np.ndarray, int]:
    """Chamber code per frame, with hysteresis.

    Parameters
    ----------
    x, y, detected
        Centroid per frame (NaN where not detected) and the detection flag.
    layout
        The arena's chambers.
    state
        The chamber the mouse was last assigned to before these frames (``UNKNOWN`` at the
        start of a video). Passing the returned state into the next call makes chunked
        assignment identical to assigning the whole track at once.

    Returns
    -------
    codes, state
        ``int16`` codes (``-1`` = unknown: no detection, or before the first detection) and
        the last known chamber, to carry into the next chunk.

    A frame without a detection is ``unknown`` but does not reset the hysteresis: when the
    mouse is found again, its chamber is judged against the last known chamber.
    """
    detected = np.asarray(detected, dtype=bool)
    n = len(detected)
    codes = np.full(n, UNKNOWN, dtype=np.int16)
    idx = np.flatnonzero(detected)
    if len(idx) == 0:
        return codes, state
    dist = layout.distances(np.asarray(x)[idx], np.asarray(y)[idx])
    raw = np.argmin(dist, axis=1)
    margin = layout.hysteresis_px
    # Sequential by nature; keep the loop over plain Python lists (fast enough: ~1 µs/frame).
    raw_l = raw.tolist()
    # distance of each point to each piece, only needed for the current chamber
    out = np.empty(len(idx), dtype=np.int16)
    cur = state
    if margin <= 0:
        out[:] = raw
        cur = int(raw[-1])
    else:
        dist_l = dist.tolist()
        for i, r in enumerate(raw_l):
            if cur == UNKNOWN or (r != cur and dist_l[i][cur] > margin):
                cur = r
            out[i] = cur
    codes[idx] = out
    return codes, int(cur)
