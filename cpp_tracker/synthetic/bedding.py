"""Bedding on the floor, bedding kicked around, and the infrared night picture.

Scene features for :mod:`cpp_tracker.synthetic.scenes` (its ``SceneSpec`` fields
``bedding``, ``kicks``, ``ir_contrast``, ``vignetting`` and ``flicker``):

- a bedding floor: wood chips (small elongated flakes of varied brightness) or paper
  bedding (soft blotches), a static texture over the walkable floor;
- kicks: at ``kicks`` moments, mostly while the mouse sits still (digging), a patch of
  floor next to it (0.5-2 mouse areas) changes brightness and texture within a second and
  stays changed to the end of the video. The first patch is as dark (or bright) as the
  mouse itself; the others change by 30-100 % of the mouse's contrast, either way;
- the infrared night picture: the day picture's grey levels pressed toward the floor's so
  that the mouse's body is at least ``ir_contrast`` grey levels from the floor in the
  decoded video (its palest part, in the middle of the picture; darker or lighter as
  ``mouse`` says), an illumination falling off toward the corners (``vignetting``: the
  corners that fraction darker, floor and mouse alike), and a mild flicker of the lamp.

The ground truth keeps its meaning: the centroid of the mouse's body and head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["BEDDING_KINDS", "BeddingScene", "build_bedding", "draw_kicked_bedding",
           "night_picture", "day_contrast"]

#: ``SceneSpec.bedding`` values: no bedding, wood chips or paper bedding.
BEDDING_KINDS = (None, "chips", "paper")

_KICK_RAMP_S = 1.0  # a patch changes over this long while the mouse digs
_LIMITED_RANGE = 219.0 / 255.0  # grey levels in the file per rendered grey level


@dataclass(frozen=True)
class _Patch:
    """One kicked patch: where, from when, and what it adds to the floor once settled."""

    t0: float
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1 in the frame
    change: np.ndarray  # float32 (y1 - y0, x1 - x0): added to the floor, alpha included
    centre: tuple[float, float]


@dataclass(frozen=True)
class BeddingScene:
    """The bedding and night-picture parts of one scene, computed once."""

    patches: tuple[_Patch, ...] = ()
    night: tuple | None = None  # (floor level, scale, vignette map, flicker params)

    def kick_times(self) -> list[float]:
        return [p.t0 for p in self.patches]


def day_contrast(floor_level: float, mouse_levels: tuple[float, float, float]) -> float:
    """The difference to the floor of the mouse body's part closest to it by day (signed:
    mouse - floor): the sheen on its back, or a white mouse's shaded flanks (18 levels
    below its base)."""
    base, sheen, _ = mouse_levels
    parts = [base, base + sheen] + ([base - 18.0] if base > floor_level else [])
    return min((p - floor_level for p in parts), key=abs)


# -- the bedding floor --------------------------------------------------------------------
def _chips(rng: np.random.Generator, h: int, w: int, length: float) -> np.ndarray:
    """Wood chips: flakes about ``length`` px long, each a little lighter or darker."""
    tex = np.zeros((h, w), np.float32)
    n = int(2.5 * h * w / max(length * length * 0.4, 1.0))
    xs = rng.uniform(-length, w + length, n)
    ys = rng.uniform(-length, h + length, n)
    for x, y, ang, lv, sz in zip(xs, ys, rng.uniform(0, 180, n), rng.normal(0, 1, n),
                                 rng.uniform(0.6, 1.4, n), strict=True):
        # 4x fixed point (shift 2)
        axes = (max(1, int(round(2.0 * length * sz))), max(1, int(round(0.72 * length * sz))))
        cv2.ellipse(tex, (int(round(x * 4)), int(round(y * 4))), axes, float(ang), 0, 360,
                    float(lv), -1, cv2.LINE_AA, 2)
    tex = cv2.GaussianBlur(tex, (0, 0), 0.6)
    return tex / max(float(tex.std()), 1e-6)


def _paper(rng: np.random.Generator, h: int, w: int, length: float) -> np.ndarray:
    """Paper bedding: soft blotches about half a body length across, with fine grain."""
    coarse = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0),
                              max(1.0, 0.25 * length))
    fine = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8)
    tex = coarse / max(float(coarse.std()), 1e-6) + 0.5 * fine / max(float(fine.std()), 1e-6)
    return tex / max(float(tex.std()), 1e-6)


def _texture(kind: str, rng: np.random.Generator, h: int, w: int, length: float) -> np.ndarray:
    return (_chips if kind == "chips" else _paper)(rng, h, w, length)


def _floor_weight(open_hi: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The fraction of each frame pixel that is walkable floor (0-1)."""
    h, w = shape
    return cv2.resize(open_hi, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def add_bedding_floor(bg: np.ndarray, open_hi: np.ndarray, kind: str | None,
                      floor_level: float, body_length: float, seed: int) -> np.ndarray:
    """``bg`` with a bedding texture (about 10 % of the floor level) over the floor."""
    if kind is None:
        return bg
    rng = np.random.default_rng(np.random.SeedSequence([seed, 701]))
    h, w = bg.shape
    tex = _texture(kind, rng, h, w, max(2.0, 0.12 * body_length))
    return bg + (0.10 * floor_level) * tex * _floor_weight(open_hi, (h, w))


# -- kicks --------------------------------------------------------------------------------
def _kick_frames(speed: np.ndarray, times: np.ndarray, n: int,
                 rng: np.random.Generator) -> list[int]:
    """Frames at which the mouse kicks: one in each of ``n`` equal stretches of the first
    85 % of the video, a still frame (digging) where the stretch has one, not in the
    longest still period (sleep)."""
    still = speed < 0.5
    sleep = np.zeros_like(still)
    edges = np.flatnonzero(np.diff(np.r_[0, still.astype(np.int8), 0]))
    if len(edges):
        runs = edges.reshape(-1, 2)
        a, b = runs[np.argmax(runs[:, 1] - runs[:, 0])]
        if b - a > 0.1 * len(still):
            sleep[a:b] = True
    t_end = float(times[-1])
    out = []
    for k in range(n):
        lo, hi = (0.05 + 0.8 * k / n) * t_end, (0.05 + 0.8 * (k + 1) / n) * t_end
        window = (times >= lo) & (times < hi) & ~sleep
        pick = np.flatnonzero(window & still)
        if len(pick) == 0:
            pick = np.flatnonzero(window)
        if len(pick):
            out.append(int(rng.choice(pick)))
    return out


def _patch_alpha(rng: np.random.Generator, area: float) -> np.ndarray:
    """An irregular soft blob of about ``area`` px (float32 0-1, in its own window)."""
    ratio = rng.uniform(1.0, 1.8)
    a = math.sqrt(area * ratio / math.pi)
    b = a / ratio
    r = int(math.ceil(a * 1.3)) + 3
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1].astype(np.float32)
    ang = rng.uniform(0, math.pi)
    c, s = math.cos(ang), math.sin(ang)
    e = ((xx * c + yy * s) / a) ** 2 + ((-xx * s + yy * c) / b) ** 2
    wobble = cv2.GaussianBlur(rng.standard_normal(e.shape).astype(np.float32), (0, 0),
                              max(1.0, 0.3 * b))
    wobble /= max(float(np.abs(wobble).max()), 1e-6)
    alpha = np.clip((1.0 - e + 0.3 * wobble) / 0.25, 0, 1)
    return cv2.GaussianBlur(alpha, (0, 0), 0.7)


def _one_patch(rng: np.random.Generator, k: int, t0: float, centre_xy: np.ndarray,
               heading: float, body_length: float, contrast: float, kind: str | None,
               floor_level: float, floor_w: np.ndarray) -> _Patch:
    """A patch next to the mouse (behind it, where it kicks), 0.5-2 mouse areas."""
    mouse_area = 0.45 * body_length ** 2
    area = rng.uniform(0.5, 2.0) * mouse_area
    alpha = _patch_alpha(rng, area)
    back = heading + math.pi + rng.uniform(-0.8, 0.8)
    dist = 0.45 * body_length + 0.6 * math.sqrt(area / math.pi)
    cx = float(centre_xy[0] + dist * math.cos(back))
    cy = float(centre_xy[1] + dist * math.sin(back))
    r = alpha.shape[0] // 2
    h, w = floor_w.shape
    x0, y0 = int(round(cx)) - r, int(round(cy)) - r
    x1, y1 = x0 + alpha.shape[1], y0 + alpha.shape[0]
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    alpha = alpha[cy0 - y0: cy1 - y0, cx0 - x0: cx1 - x0] * floor_w[cy0:cy1, cx0:cx1]
    # the first patch is as dark (light) as the mouse; others 30-100 % of its contrast,
    # either way
    level = contrast if k == 0 else rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0) * abs(contrast)
    tex = _texture(kind or "paper", rng, cy1 - cy0, cx1 - cx0, max(2.0, 0.12 * body_length))
    change = alpha * (np.float32(level) + np.float32(0.10 * floor_level) * tex)
    return _Patch(t0, (cx0, cy0, cx1, cy1), change.astype(np.float32), (cx, cy))


def _kicks(spec, arenas, states, truth_xy, times, open_hi, floor_level: float,
           contrast: float) -> list[_Patch]:
    """The kicked patches of every box."""
    floor_w = _floor_weight(open_hi, (spec.height, spec.width))
    patches = []
    for k, (ar, st, xy) in enumerate(zip(arenas, states, truth_xy, strict=True)):
        rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 702, k]))
        for j, i in enumerate(_kick_frames(st.speed, times, spec.kicks, rng)):
            if not np.all(np.isfinite(xy[i])):
                continue
            patches.append(_one_patch(rng, j, float(times[i]), xy[i], float(st.th[i]), ar.L0,
                                      contrast, spec.bedding, floor_level, floor_w))
    return patches


def draw_kicked_bedding(frame: np.ndarray, scene: BeddingScene | None, t: float) -> None:
    """The patches kicked up to ``t`` into ``frame`` (float32, in place), each fading in
    over :data:`_KICK_RAMP_S`."""
    if scene is None:
        return
    for p in scene.patches:
        if t < p.t0:
            continue
        x0, y0, x1, y1 = p.roi
        weight = min(1.0, (t - p.t0) / _KICK_RAMP_S)
        frame[y0:y1, x0:x1] += np.float32(weight) * p.change


# -- the infrared night picture -------------------------------------------------------------
def _night(spec, floor_level: float, contrast: float) -> tuple | None:
    """(floor level, grey-level scale, vignette map, flicker (amplitude, f1, f2, phase))."""
    if spec.ir_contrast <= 0:
        return None
    # the contrast is what a decoder gives: the file's luma is limited range (16-235)
    scale = spec.ir_contrast / (abs(contrast) * _LIMITED_RANGE)
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / ((w / 2) ** 2 + (h / 2) ** 2)
    vignette = (1.0 - spec.vignetting * r2).astype(np.float32)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 703]))
    flicker = (spec.flicker, rng.uniform(0.4, 0.9), rng.uniform(2.0, 3.5), rng.uniform(0, 6.3))
    return floor_level, scale, vignette, flicker


def night_picture(frame: np.ndarray, scene: BeddingScene | None, t: float | None) -> None:
    """The day picture ``frame`` (float32, in place) as the infrared camera sees it: grey
    levels pressed toward the floor's, the illumination's fall-off to the corners, and (at
    time ``t``; None: no flicker, the empty box's image) the lamp's flicker."""
    if scene is None or scene.night is None:
        return
    floor, scale, vignette, (amp, f1, f2, ph) = scene.night
    frame -= np.float32(floor)
    frame *= np.float32(scale)
    frame += np.float32(floor)
    frame *= vignette
    if t is not None and amp > 0:
        g = 1.0 + amp * (0.7 * math.sin(2 * math.pi * f1 * t)
                         + 0.3 * math.sin(2 * math.pi * f2 * t + ph))
        frame *= np.float32(g)


def build_bedding(spec, arenas, states, truth_xy, times, open_hi, floor_level: float,
                  mouse_levels: tuple[float, float, float]) -> BeddingScene | None:
    """The scene's kicked patches and night picture (None when the spec asks for neither).
    ``floor_level`` and ``mouse_levels`` are the scene's day grey levels of the floor and
    of the mouse (base, sheen, tail)."""
    if spec.kicks == 0 and spec.ir_contrast <= 0:
        return None
    contrast = day_contrast(floor_level, mouse_levels)
    patches = (_kicks(spec, arenas, states, truth_xy, times, open_hi, floor_level, contrast)
               if spec.kicks else [])
    return BeddingScene(tuple(patches), _night(spec, floor_level, contrast))
