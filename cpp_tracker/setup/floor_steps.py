"""Where two floors meet: the chamber boundary of a box with no visible dividing wall.

Boxes whose chambers differ only by their floors (bedding, grid rods vs holes, light vs
dark) with a partition too thin or low to be seen show no wall band, only a *step*: a
straight line across the box where the floor's brightness or its texture changes, and stays
changed. For each direction within ``max_tilt_deg`` of the box's short sides, the floor
(inside the outline, away from its walls) is turned so that direction is vertical and split
into bands along it; in each band, strips just left and right of every column are compared
on two measures, brightness and texture energy (the local mean of the image's difference
from its blurred self, in log: bedding, rods and holes differ in it even at one
brightness). A step is a column where every band changes the same way, sharply (the
strips one strip farther out on each side differ much less: not a ramp of light). Its
strength is in units of the measure's typical difference between neighbouring strips.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import shapely.affinity
from shapely.geometry import Polygon

__all__ = ["FloorStep", "floor_steps"]

_WORK_SIZE = 260.0  # px across a box searched at full resolution; larger ones scaled down
_BANDS = 6  # bands along the line: a step must hold in all but _SPARE of them
_SPARE = 1
_RAMP = 1.5  # how much a change farther out on either side counts against a step


@dataclass(frozen=True)
class FloorStep:
    """A straight line across the box where the floor changes, from wall to wall."""

    p: np.ndarray  # a point of the line
    direction: np.ndarray  # unit vector along it
    strength: float  # the weakest band's sharp change, in typical neighbour differences
    measure: str  # "brightness" or "texture" (or texture across x or y)
    change: float  # the change across it: grey levels, or the texture energy's ratio


def _features(image: np.ndarray, sigma: float) -> dict[str, np.ndarray]:
    img = image.astype(np.float32)
    smooth = cv2.GaussianBlur(img, (0, 0), sigma)
    energy = cv2.GaussianBlur(np.abs(img - smooth), (0, 0), sigma)
    fine = cv2.GaussianBlur(img, (0, 0), 0.7)
    # rods are oriented, holes and bedding are not: the energy across x and across y apart
    ex = cv2.GaussianBlur(np.abs(cv2.Sobel(fine, cv2.CV_32F, 1, 0, ksize=3)), (0, 0), sigma)
    ey = cv2.GaussianBlur(np.abs(cv2.Sobel(fine, cv2.CV_32F, 0, 1, ksize=3)), (0, 0), sigma)
    return {"brightness": smooth, "texture": np.log1p(energy),
            "texture across x": np.log1p(ex), "texture across y": np.log1p(ey)}


def _long_axis(polygon: Polygon) -> float:
    """The angle (radians) of the outline's longer sides."""
    pts = np.asarray(polygon.exterior.coords)[:-1]
    sides = np.roll(pts, -1, axis=0) - pts
    k = int(np.argmax(np.hypot(sides[:, 0], sides[:, 1])))
    return math.atan2(sides[k, 1], sides[k, 0])


def floor_steps(image: np.ndarray, polygon: Polygon, *, max_tilt_deg: float = 30.0,
                max_steps: int = 3) -> list[FloorStep]:
    """Steps between floors across the box ``polygon`` in ``image``, strongest first (at
    most ``max_steps``, not closer than a tenth of the box to each other)."""
    size = math.sqrt(polygon.area)
    # large boxes are searched at about _WORK_SIZE px across (time), and the line scaled back
    scale = min(1.0, _WORK_SIZE / size)
    if scale < 1.0:
        small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        box = shapely.affinity.scale(polygon, scale, scale, origin=(0, 0))
        return [FloorStep(s.p / scale, s.direction, s.strength, s.measure, s.change)
                for s in floor_steps(small, box, max_tilt_deg=max_tilt_deg,
                                     max_steps=max_steps)]
    inner = polygon.buffer(-0.07 * size)
    if inner.is_empty or inner.area < 0.2 * polygon.area:
        return []
    sigma = max(1.5, 0.008 * size)
    strip = max(4, int(round(0.05 * size)))
    gap = int(round(3 * sigma + 1))
    feats = _features(image, sigma)
    mask = np.zeros(image.shape, np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(inner.exterior.coords)).astype(np.int32)], 1)
    axis = math.degrees(_long_axis(polygon))
    found = []
    # every 2 degrees: the line through the crossings found in each band then gives the
    # angle exactly
    for tilt in np.arange(-max_tilt_deg, max_tilt_deg + 0.1, 2.0):
        found += _steps_at(feats, mask, axis + float(tilt), strip, gap)
    found.sort(key=lambda s: -s.strength)
    groups: list[list[FloorStep]] = []
    for s in found:
        for g in groups:
            if not _apart(s, g[0], polygon, 0.1 * size):
                g.append(s)
                break
        else:
            groups.append([s])
    return [_placed(g) for g in groups[:max_steps]]


def _placed(group: list[FloorStep]) -> FloorStep:
    """The group's strongest step, placed where brightness steps if it does clearly
    (brightness crosses halfway exactly where floors meet; texture energy also rises at a
    partition's edges and at the first hole or rod, a few px off)."""
    best = group[0]
    bright = [s for s in group if s.measure == "brightness" and s.strength >= 1.0]
    if best.measure == "brightness" or not bright:
        return best
    b = bright[0]
    return FloorStep(b.p, b.direction, best.strength, best.measure, best.change)


def _apart(a: FloorStep, b: FloorStep, polygon: Polygon, distance: float) -> bool:
    """Whether ``b`` passes the box's centre farther than ``distance`` from ``a``."""
    c = np.asarray(polygon.centroid.coords[0])
    mid_b = b.p + float((c - b.p) @ b.direction) * b.direction
    normal_a = np.array([-a.direction[1], a.direction[0]])
    return abs(float(normal_a @ (mid_b - a.p))) > distance


def _steps_at(feats: dict[str, np.ndarray], mask: np.ndarray, axis_deg: float,
              strip: int, gap: int) -> list[FloorStep]:
    """The best step of each measure across lines at right angles to ``axis_deg``."""
    h, w = mask.shape
    centre = (w / 2.0, h / 2.0)
    rot = cv2.getRotationMatrix2D(centre, axis_deg, 1.0)  # the box's long axis -> x
    m = cv2.warpAffine(mask, rot, (w, h), flags=cv2.INTER_NEAREST)
    rows = np.nonzero(m.any(axis=1))[0]
    if len(rows) < 2 * _BANDS:
        return []
    bands = np.array_split(np.arange(rows[0], rows[-1] + 1), _BANDS)
    inv = cv2.invertAffineTransform(rot)
    out = []
    for name, f in feats.items():
        r = cv2.warpAffine(f, rot, (w, h), flags=cv2.INTER_LINEAR)
        best = _best_column(r, m, bands, strip, gap)
        if best is None:
            continue
        x, strength, change = best
        line = _crossing_line(r, m, bands, x, strip + gap, change, inv)
        if line is None:
            continue
        if name != "brightness":
            change = float(math.exp(abs(change)))
        out.append(FloorStep(line[0], line[1], strength, name, change))
    return out


def _crossing_line(r: np.ndarray, m: np.ndarray, bands: list[np.ndarray], x: float,
                   reach: int, change: float, inv: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray] | None:
    """The step located exactly: in each band, where the measure crosses halfway between
    its levels on the two sides (nearest ``x``), mapped back to the image; the straight
    line through those points (a point on it, its unit direction)."""
    pts = []
    for band in bands:
        mb = m[band].astype(np.float32)
        cnt = mb.sum(axis=0)
        lo, hi = max(0, int(x) - reach), min(r.shape[1], int(x) + reach + 2)
        prof = (r[band, lo:hi] * mb[:, lo:hi]).sum(axis=0) / np.maximum(cnt[lo:hi], 1)
        if (cnt[lo:hi] < 0.5 * len(band)).any():
            continue
        k = max(2, reach // 3)
        mid = 0.5 * (prof[:k].mean() + prof[-k:].mean())
        v = np.sign(change) * (prof - mid)
        ups = np.nonzero((v[:-1] < 0) & (v[1:] >= 0))[0]
        if not len(ups):
            continue
        i = int(ups[np.argmin(np.abs(lo + ups - x))])
        xc = lo + i + float(-v[i] / (v[i + 1] - v[i]))
        pts.append(inv @ np.array([xc, float(np.mean(band)), 1.0]))
    if len(pts) < len(bands) - 1:
        return None
    pts_a = np.array(pts)
    centre = pts_a.mean(axis=0)
    _, _, vt = np.linalg.svd(pts_a - centre)
    direction = vt[0] / float(np.hypot(*vt[0]))
    normal = np.array([-direction[1], direction[0]])
    if np.abs((pts_a - centre) @ normal).max() > 0.5 * reach:
        return None  # not straight
    return centre, direction


def _strip_means(r: np.ndarray, m: np.ndarray, band: np.ndarray, strip: int, gap: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Per column boundary x: the means of the strips [x - gap - strip, x - gap) and
    [x + gap, x + gap + strip) in ``band``'s rows (NaN where a strip is less than half
    floor). The gap leaves out the line itself (a thin partition, the blur)."""
    mb = m[band].astype(np.float32)
    s = np.concatenate([[0.0], np.cumsum((r[band] * mb).sum(axis=0))])
    c = np.concatenate([[0.0], np.cumsum(mb.sum(axis=0))])
    n = len(s) - 1
    left = np.full(n, np.nan)
    right = np.full(n, np.nan)
    reach = gap + strip
    x = np.arange(reach, n - reach + 1)
    full = 0.5 * strip * len(band)
    for out, lo, hi in ((left, x - reach, x - gap), (right, x + gap, x + reach)):
        cnt = c[hi] - c[lo]
        out[x] = np.where(cnt >= full, (s[hi] - s[lo]) / np.maximum(cnt, 1), np.nan)
    return left, right


def _best_column(r: np.ndarray, m: np.ndarray, bands: list[np.ndarray], strip: int,
                 gap: int) -> tuple[float, float, float] | None:
    """The column where every band steps the same way most sharply: (x, strength in
    typical neighbour differences, the median change)."""
    steps, ramps = [], []
    for band in bands:
        left, right = _strip_means(r, m, band, strip, gap)
        d = right - left
        far_l = np.roll(left, strip)  # [x - 2 strip, x - strip)
        far_r = np.roll(right, -strip)  # [x + strip, x + 2 strip)
        steps.append(d)
        ramps.append(np.fmax(np.abs(left - far_l), np.abs(far_r - right)))
    d = np.array(steps)
    e = np.array(ramps)
    typical = np.nanmedian(np.abs(d))
    if not np.isfinite(typical) or typical <= 0:
        return None
    sign = np.sign(np.nansum(np.sign(d), axis=0))  # the way most bands step
    sharp = (sign * d - _RAMP * np.nan_to_num(e, nan=np.inf)) / typical
    # the weakest band but one: a mouse resting or bedding kicked up may spoil one
    score = np.sort(np.where(np.isnan(d), -np.inf, sharp), axis=0)[_SPARE]
    if not np.isfinite(score).any():
        return None
    x = int(np.nanargmax(np.where(np.isfinite(score), score, -np.inf)))
    if not score[x] > 0:
        return None
    return x - 0.5, float(score[x]), float(np.nanmedian(d[:, x]))
