"""The CPP boxes labs actually use, drawn into a scene (hooked into :mod:`.scenes`).

Options of :class:`~cpp_tracker.synthetic.scenes.SceneSpec` drawn here (each at its default
leaves the picture exactly as before):

- ``partition``: ``"wall"`` (a wall band as thick as the outer walls), ``"thin"`` (a thin
  partition, about a third of that) or ``"floor_step"`` (no partition visible: the chambers
  differ only by their floors and the doorway is where they meet).
- ``chamber_floors``: one floor per chamber, left to right: ``"chips"`` / ``"paper"``
  (bedding textures), ``"grid"`` (rods) / ``"holes"``, ``"light"`` / ``"dark"`` (plain).
- ``guillotine``: a door slot (two posts beside the opening) with the lifted guillotine
  plate seen from above as a bar of another grey across the opening (the mouse walks
  under it).
- ``chamber_walls``: one wall colour per chamber (``"dark"`` / ``"light"``), as black and
  white chambers of a commercial box.
- ``wall_face`` with ``camera_offset``: the inner faces of tall walls seen in perspective,
  a band of wall inside the wall tops that is not floor (``wall_face`` of the box's width;
  the camera ``camera_offset`` off-centre shows the far side's face wider, the near one's
  narrower). The truth outline is the floor, inside the faces.
- ``night_ir``: an infrared night picture: grey, low contrast (the mouse 14 grey levels from
  the floor), darker corners.

The truth stays exact: the floor rectangle is the config's outline, the door lines are the
chamber boundaries, and ``chamber_of`` is unchanged.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np

# scenes.SceneSpec and scenes._Arena: not imported, scenes imports this module
SceneSpec = Any
_Arena = Any

PARTITIONS = ("wall", "thin", "floor_step")
FLOOR_KINDS = ("plain", "chips", "paper", "grid", "holes", "light", "dark")
WALL_KINDS = ("dark", "light")

#: Floor level of each kind relative to the scene's floor level (before texture).
_KIND_LEVEL = {"plain": 1.0, "chips": 0.78, "paper": 1.08, "grid": 0.95, "holes": 0.92,
               "light": 1.12, "dark": 0.55}
_WALL_LEVEL = {"dark": 30.0, "light": 228.0}
_PLATE_LEVEL = 120.0  # grey plastic of a guillotine plate
_IR_FLOOR = 72.0  # the floor's grey level in an IR night picture
_IR_MOUSE_CONTRAST = 14.0  # grey levels between the mouse and the floor at night


def check_box_options(spec: SceneSpec) -> None:
    """ValueError for an unknown or inconsistent box option."""
    if spec.partition not in PARTITIONS:
        raise ValueError(f"partition must be one of {list(PARTITIONS)}")
    if spec.chamber_floors:
        if any(k not in FLOOR_KINDS for k in spec.chamber_floors):
            raise ValueError(f"chamber_floors must be kinds of {list(FLOOR_KINDS)}")
        if any(len(spec.chamber_floors) != a.n_chambers for a in spec.arenas):
            raise ValueError("chamber_floors needs one floor per chamber of every box")
    if spec.chamber_walls:
        if any(k not in WALL_KINDS for k in spec.chamber_walls):
            raise ValueError(f"chamber_walls must be kinds of {list(WALL_KINDS)}")
        if any(len(spec.chamber_walls) != a.n_chambers for a in spec.arenas):
            raise ValueError("chamber_walls needs one wall colour per chamber of every box")
    if not 0.0 <= spec.wall_face <= 0.08:
        raise ValueError("wall_face must be within [0, 0.08] of the box's width")
    if not -0.9 <= spec.camera_offset <= 0.9:
        raise ValueError("camera_offset must be within [-0.9, 0.9]")


def draws_walls(spec: SceneSpec) -> bool:
    """Whether the outer walls are drawn here (else as before: one band of one colour)."""
    return bool(spec.chamber_walls) or spec.wall_face > 0


def draws_partitions(spec: SceneSpec) -> bool:
    """Whether the dividing walls are drawn here (else as before)."""
    return spec.partition != "wall" or spec.guillotine or bool(spec.chamber_walls)


def face_widths(spec: SceneSpec, outer: tuple[float, float, float, float]
                ) -> tuple[float, float, float, float]:
    """Widths (px) of the wall faces seen inside the wall tops: left, top, right, bottom."""
    f = spec.wall_face * (outer[2] - outer[0])
    return (f * (1 + spec.camera_offset), f, f * (1 - spec.camera_offset), f)


def floor_inside(spec: SceneSpec, outer: tuple[float, float, float, float],
                 tw: float) -> tuple[float, float, float, float]:
    """The floor rectangle: inside the wall tops and the wall faces seen in perspective."""
    fl, ft, fr, fb = face_widths(spec, outer)
    return (outer[0] + tw + fl, outer[1] + tw + ft, outer[2] - tw - fr, outer[3] - tw - fb)


def _grid(img_shape: tuple[int, int], ss: int, box: tuple[float, float, float, float]):
    """Supersampled index window over ``box`` and the frame coordinates of its pixels."""
    h, w = img_shape
    j0, j1 = max(int(box[0] * ss), 0), min(int(math.ceil((box[2] + 1) * ss)), w)
    i0, i1 = max(int(box[1] * ss), 0), min(int(math.ceil((box[3] + 1) * ss)), h)
    xs = (np.arange(j0, j1, dtype=np.float32) + 0.5) / ss - 0.5
    ys = (np.arange(i0, i1, dtype=np.float32) + 0.5) / ss - 0.5
    X, Y = np.meshgrid(xs, ys)
    return (slice(i0, i1), slice(j0, j1)), X, Y


def draw_walls(hi: np.ndarray, spec: SceneSpec, ar: _Arena, width: int) -> None:
    """Wall tops (each chamber's colour) and, inside them, the wall faces: shaded bands
    that darken (light walls) or lighten (dark walls) towards the floor."""
    ss = hi.shape[1] // width
    win, X, Y = _grid(hi.shape, ss, ar.outer)
    ox0, oy0, ox1, oy1 = ar.outer
    fx0, fy0, fx1, fy1 = ar.floor
    inside = (X >= ox0) & (X < ox1) & (Y >= oy0) & (Y < oy1)
    kinds = spec.chamber_walls or (spec.wall,) * ar.n_ch
    pos = np.clip(ar.position_of(X, Y), 0, ar.n_ch - 1)
    top = np.array([_WALL_LEVEL[k] for k in kinds], np.float32)[pos]
    fl, ft, fr, fb = face_widths(spec, ar.outer)
    depth = np.full(X.shape, np.inf, np.float32)  # 0 at the wall top, 1 at the floor
    for beyond, d, f in ((X < fx0, X - (fx0 - fl), fl), (Y < fy0, Y - (fy0 - ft), ft),
                         (X >= fx1, (fx1 + fr) - X, fr), (Y >= fy1, (fy1 + fb) - Y, fb)):
        if f > 0:
            u = np.where(beyond & (d >= 0), d / f, np.inf)
            depth = np.minimum(depth, u)
    face = np.isfinite(depth)
    shift = np.where(top < 128, 45.0, -55.0).astype(np.float32)
    level = np.where(face, top + shift * (0.35 + 0.65 * np.clip(depth, 0, 1)), top)
    sub = hi[win]
    sub[inside] = level[inside]


def draw_partitions(hi: np.ndarray, open_hi: np.ndarray, open_b: np.ndarray,
                    spec: SceneSpec, ar: _Arena, width: int, fill) -> None:
    """The dividing walls as ``partition`` asks, their door gaps, a guillotine's slot and
    lifted plate; walls not walkable (``fill`` is scenes' anti-aliased polygon fill)."""
    thickness = {"wall": ar.tw, "thin": max(1.2, 0.35 * ar.tw), "floor_step": 0.0}[
        spec.partition]
    kinds = spec.chamber_walls or (spec.wall,) * ar.n_ch
    for j, dr in enumerate(ar.doors):
        level = 0.5 * (_WALL_LEVEL[kinds[j]] + _WALL_LEVEL[kinds[j + 1]])
        half = dr.gap / 2
        if thickness > 0:
            for a_, b_ in ((dr.p0, dr.c - half * dr.d), (dr.c + half * dr.d, dr.p1)):
                quad = _band(a_, b_, dr.n, thickness)
                for img, v in ((open_hi, 0), (open_b, 0), (hi, level)):
                    fill(img, quad, v, width)
        if spec.guillotine:
            _draw_guillotine(hi, open_hi, open_b, ar, dr, max(thickness, 0.5 * ar.tw),
                             level, width, fill)


def _band(a: np.ndarray, b: np.ndarray, n: np.ndarray, thickness: float) -> np.ndarray:
    nvec = n * (thickness / 2)
    return np.array([a - nvec, a + nvec, b + nvec, b - nvec])


def _draw_guillotine(hi, open_hi, open_b, ar: _Arena, dr, thickness: float, level: float,
                     width: int, fill) -> None:
    """Two posts of the door slot beside the opening (not walkable) and the lifted plate
    across it (seen from above; the mouse walks under it)."""
    half = dr.gap / 2
    post = 0.6 * ar.tw + 1.0
    for s in (-1.0, 1.0):
        edge = dr.c + s * half * dr.d
        quad = _band(edge, edge + s * post * dr.d, dr.n, 2.2 * thickness + 1.0)
        for img, v in ((open_hi, 0), (open_b, 0), (hi, level)):
            fill(img, quad, v, width)
    plate = _band(dr.c - half * dr.d, dr.c + half * dr.d, dr.n, max(1.0, 0.6 * thickness))
    fill(hi, plate, _PLATE_LEVEL, width)


def chamber_floor_image(spec: SceneSpec, ar: _Arena, X: np.ndarray, Y: np.ndarray
                        ) -> np.ndarray:
    """Each chamber's own floor (``chamber_floors``) at frame coordinates ``X``, ``Y``."""
    base = {"light": 195.0, "grey": 102.0, "dark": 55.0}[spec.floor]
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 909]))
    pos = ar.position_of(X, Y)
    out = np.full(X.shape, base, np.float32)
    pitch = max(3.5, 1.0 * ar.ppc)
    for k, kind in enumerate(spec.chamber_floors):
        sel = pos == k
        if sel.any():
            out[sel] = _floor_kind(kind, base, X[sel], Y[sel], ar, pitch, rng)
    return out


def _floor_kind(kind: str, base: float, x: np.ndarray, y: np.ndarray, ar: _Arena,
                pitch: float, rng: np.random.Generator) -> np.ndarray:
    """One floor's grey levels at points ``x``, ``y``."""
    lvl = min(235.0, base * _KIND_LEVEL[kind])
    amp = 0.16 * base
    if kind == "grid":  # rods parallel to the dividing wall
        d = ar.doors[0].d if ar.doors else np.array([0.0, 1.0])
        across = x * d[1] - y * d[0]
        return lvl - amp * (0.5 + 0.5 * np.cos(2 * math.pi * across / pitch)) ** 3
    if kind == "holes":
        p2 = pitch * 1.3
        gx = x / p2 - np.round(x / p2)
        gy = y / p2 - np.round(y / p2)
        return lvl - 1.5 * amp * (np.hypot(gx, gy) * p2 < 0.22 * p2 + 0.4)
    if kind in ("chips", "paper"):
        return lvl + _bedding(kind, x, y, pitch, rng) * amp
    return np.full(x.shape, lvl, np.float32)


def _bedding(kind: str, x: np.ndarray, y: np.ndarray, pitch: float,
             rng: np.random.Generator) -> np.ndarray:
    """Bedding texture in -1..1: wood chips are coarse blotches with sharp edges, paper
    bedding finer and softer."""
    cell = pitch * (1.4 if kind == "chips" else 0.6)
    n = 64
    field = rng.standard_normal((n, n)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), 1.0)
    field /= max(float(field.std()), 1e-6)
    ix = np.mod(np.floor(x / cell).astype(int), n)
    iy = np.mod(np.floor(y / cell).astype(int), n)
    v = field[iy, ix]
    if kind == "chips":
        return np.clip(np.sign(v) * np.abs(v) ** 0.5, -1, 1)
    return np.clip(0.6 * v, -1, 1)


def night_picture(img: np.ndarray, spec: SceneSpec, mouse_level: float) -> np.ndarray:
    """An infrared night picture of ``img`` (float32, in place where possible): contrast
    cut so the mouse is 14 grey levels from the floor, the floor dim, corners darker."""
    base = {"light": 195.0, "grey": 102.0, "dark": 55.0}[spec.floor]
    c = _IR_MOUSE_CONTRAST / max(1.0, abs(base - mouse_level))
    return ((_IR_FLOOR + c * (img - base)) * _vignette(*img.shape)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _vignette(h: int, w: int) -> np.ndarray:
    """Gain of an IR lamp's uneven light: 1 in the centre, 0.7 in the corners."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (0.25 * (w * w + h * h))
    return 1 - 0.3 * r2
