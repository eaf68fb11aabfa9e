"""Propose a box's geometry from the empty-box image: outline, door lines, chamber points.

``cpp-tracker init`` uses this to write a first config that a person then checks in the
preview, instead of measuring pixels. Everything here works on the background image (the
median of frames sampled across the video) and, where given, on where the mouse was seen
in those frames:

1. **Straight edges.** The image is blurred a little and its gradient taken. Edge pixels vote
   for the line through them whose normal is their gradient direction (a Hough transform
   that uses the edge direction, so texture votes are spread thin while a wall's edge piles
   up in one cell). Lines are then *measured*, not trusted: along each candidate line the
   gradient across it is sampled every pixel, and the fraction of the line where a clear
   edge is present (its *coverage*) is what counts.
2. **Outline.** The two dominant line directions (walls meet at right angles) give two
   families of lines; the largest quadrilateral whose four sides are covered by edges,
   without holes, and stop at its corners is the box's outer frame (with several boxes:
   the best set that does not overlap; sides that run on past a corner are how two boxes
   whose walls line up are told apart). Each side is then moved inwards to the floor's
   edge: to the innermost parallel edge that the mouse was never seen beyond, or, without
   the mouse, to the inner edge of a uniform wall band. Each side is refitted to the edge
   (same polarity only, so the wall's other edge cannot pull it) at sub-pixel precision,
   so perspective (non-parallel sides) is allowed.
3. **Doors.** A dividing wall is a band that stands out from the floor on both of its sides
   the same way (darker than both or lighter than both: not a step between two floors),
   reaching the outline at both ends, solid except for one opening (the door), and (where
   the mouse was seen) never walked on except in that opening. Floor texture fails these
   tests: rows of holes are not solid, grid bars have no opening or stop at the dividing
   wall. Its centre line, extended from wall to wall, is the door line.
4. **Chambers.** The outline cut by the door lines gives the pieces; each gets the point
   farthest from its border (the pole of inaccessibility) and a placeholder name.

Every element carries a confidence in 0..1 and the evidence behind it in words. Where no
outline or no door is convincing the proposal says so (``outline_found`` / ``doors_found``)
instead of guessing, and :func:`proposal_to_yaml` writes a template to edit.

Coordinates: ``x`` = column, ``y`` = row, pixels, origin top-left, as OpenCV.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import shapely
from shapely.geometry import LineString, Polygon
from shapely.ops import polylabel

from .floor_steps import FloorStep, floor_steps

__all__ = [
    "Finding",
    "ProposedArena",
    "Proposal",
    "visited_map",
    "propose_geometry",
    "proposal_to_config",
    "proposal_to_yaml",
]

Point = tuple[float, float]

#: Confidence levels as words (at least this confidence).
_LEVELS = ((0.75, "high"), (0.5, "medium"), (0.0, "low"))


@dataclass(frozen=True)
class Finding:
    """How sure the proposal is of one element, and why."""

    element: str
    confidence: float
    evidence: str

    @property
    def level(self) -> str:
        """``high`` (>= 0.75), ``medium`` (>= 0.5) or ``low``."""
        return next(word for limit, word in _LEVELS if self.confidence >= limit)


@dataclass(frozen=True)
class ProposedDoor:
    """A door line from wall to wall and the opening found in it (None if not seen)."""

    name: str
    line: tuple[Point, Point]
    opening: tuple[Point, Point] | None
    finding: Finding


@dataclass(frozen=True)
class ProposedArena:
    """One box as proposed: outline, doors and one point per piece."""

    name: str
    polygon: tuple[Point, ...]
    doors: tuple[ProposedDoor, ...]
    chambers: tuple[tuple[str, Point], ...]
    outline: Finding
    outline_found: bool

    @property
    def findings(self) -> tuple[Finding, ...]:
        return (self.outline, *(d.finding for d in self.doors))


@dataclass(frozen=True)
class Proposal:
    """The geometry proposed for one video's frame."""

    width: int
    height: int
    arenas: tuple[ProposedArena, ...]
    notes: tuple[str, ...] = ()
    frames_with_mouse: int = 0
    requested_chambers: int | None = None

    @property
    def doors_found(self) -> bool:
        return any(a.doors for a in self.arenas)

    @property
    def outline_found(self) -> bool:
        return all(a.outline_found for a in self.arenas)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for a in self.arenas for f in a.findings)


# --------------------------------------------------------------------------------------
# image measurements


@dataclass(frozen=True)
class _Gradient:
    gx: np.ndarray  # float32, grey levels per pixel
    gy: np.ndarray
    mag: np.ndarray
    threshold: float  # a clear edge has at least this gradient across it
    image: np.ndarray  # the blurred image, float32
    raw: np.ndarray  # the image as given, float32


def _gradient(gray: np.ndarray) -> _Gradient:
    img = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.2)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = cv2.magnitude(gx, gy)
    # noise of the gradient: most pixels of a box image are flat floor or wall
    noise = 1.4826 * float(np.median(np.abs(gx - np.median(gx))))
    threshold = max(2.0, 4.0 * noise)
    return _Gradient(gx, gy, mag, threshold, img, gray.astype(np.float32))


@dataclass(frozen=True)
class _Line:
    """A line ``x cos(theta) + y sin(theta) = rho``; theta in radians, in [0, pi)."""

    theta: float
    rho: float
    votes: float

    @property
    def normal(self) -> np.ndarray:
        return np.array([math.cos(self.theta), math.sin(self.theta)])

    @property
    def direction(self) -> np.ndarray:
        return np.array([-math.sin(self.theta), math.cos(self.theta)])

    def point(self) -> np.ndarray:
        return self.normal * self.rho


def _line_through(p: np.ndarray, q: np.ndarray) -> _Line:
    d = (q - p) / max(1e-9, float(np.hypot(*(q - p))))
    theta = math.atan2(d[0], -d[1])  # normal = (-dy, dx) rotated: (cos, sin) ⟂ d
    n = np.array([math.cos(theta), math.sin(theta)])
    rho = float(n @ p)
    if theta < 0:
        theta += math.pi
        rho = -rho
    if theta >= math.pi:
        theta -= math.pi
        rho = -rho
    return _Line(theta, rho, 0.0)


def _intersect(a: _Line, b: _Line) -> np.ndarray | None:
    m = np.array([a.normal, b.normal])
    if abs(np.linalg.det(m)) < 1e-6:
        return None
    return np.linalg.solve(m, np.array([a.rho, b.rho]))


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at float positions (any number of them)."""
    n = len(x)
    cols = 4096
    rows = max(1, -(-n // cols))
    pad = rows * cols - n
    fx = np.concatenate([x, np.zeros(pad)]).astype(np.float32).reshape(rows, cols)
    fy = np.concatenate([y, np.zeros(pad)]).astype(np.float32).reshape(rows, cols)
    return cv2.remap(image, fx, fy, cv2.INTER_LINEAR).ravel()[:n]


def _edge_pixels(grad: _Gradient) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Thin edge pixels (x, y, gradient direction in [0, 2 pi), magnitude) by non-maximum
    suppression along the gradient."""
    mag = grad.mag
    strong = mag >= grad.threshold
    ys, xs = np.nonzero(strong)
    if len(xs) == 0:
        return xs, ys, xs.astype(float), xs.astype(float)
    gx = grad.gx[ys, xs]
    gy = grad.gy[ys, xs]
    m = mag[ys, xs]
    ux = gx / m
    uy = gy / m
    h, w = mag.shape
    fx1 = np.clip(xs + ux, 0, w - 1).astype(np.float32)
    fy1 = np.clip(ys + uy, 0, h - 1).astype(np.float32)
    fx2 = np.clip(xs - ux, 0, w - 1).astype(np.float32)
    fy2 = np.clip(ys - uy, 0, h - 1).astype(np.float32)
    n1 = _sample(mag, fx1, fy1)
    n2 = _sample(mag, fx2, fy2)
    keep = (m >= n1) & (m >= n2)
    angle = np.mod(np.arctan2(gy, gx), 2 * np.pi)
    return xs[keep], ys[keep], angle[keep], m[keep]


def _hough(
    xs: np.ndarray,
    ys: np.ndarray,
    angle: np.ndarray,
    diag: float,
    min_votes: float,
    max_lines: int = 40,
) -> list[_Line]:
    """Lines voted for by edge pixels along their own normal (1 degree x 1 pixel cells)."""
    if len(xs) == 0:
        return []
    # directions over the full circle: an edge's two polarities are separate lines, and the
    # accumulator wraps around at 360 degrees without flipping rho
    n_theta = 360
    n_rho = int(2 * diag) + 3
    acc = np.zeros((n_theta, n_rho), dtype=np.float32)
    base = np.round(np.degrees(angle)).astype(int)
    # the gradient direction of an edge pixel is off by a few degrees where texture meets
    # the edge, so each pixel votes for nearby directions too (triangular weights)
    for spread in range(-8, 9):
        weight = 1.0 - abs(spread) / 9.0
        t = np.mod(base + spread, n_theta)
        th = np.radians(t)
        rho = xs * np.cos(th) + ys * np.sin(th)
        r = np.round(rho + diag + 1).astype(int)
        np.add.at(acc, (t, np.clip(r, 0, n_rho - 1)), weight)
    # a little smoothing along rho so a line that straddles two cells keeps its votes
    acc = cv2.GaussianBlur(acc, (3, 1), 0.7)
    padded = np.concatenate([acc[-3:], acc, acc[:3]], axis=0)
    dil = cv2.dilate(padded, np.ones((7, 5), np.uint8))[3:-3]
    peaks = np.argwhere((acc >= dil) & (acc >= min_votes))
    order = np.argsort(-acc[peaks[:, 0], peaks[:, 1]])
    out = []
    for t, r in peaks[order][:max_lines]:
        out.append(_Line(math.radians(t), float(r - diag - 1), float(acc[t, r])))
    return out


@dataclass(frozen=True)
class _Profile:
    """Edge presence sampled every pixel along a segment p -> q."""

    p: np.ndarray
    q: np.ndarray
    present: np.ndarray  # bool per sample
    offset: np.ndarray  # best offset of the edge across the line, px, per sample
    strength: np.ndarray  # gradient across the line at that offset

    @property
    def length(self) -> float:
        return float(np.hypot(*(self.q - self.p)))

    def coverage(self, a: float = 0.0, b: float = 1.0) -> float:
        n = len(self.present)
        i, j = int(round(a * n)), int(round(b * n))
        if j <= i:
            return 0.0
        return float(self.present[i:j].mean())


def _profile(grad: _Gradient, p: np.ndarray, q: np.ndarray, normal: np.ndarray,
             tolerance_px: float = 2.0, threshold: float | None = None,
             polarity: float = 0.0) -> _Profile:
    """Whether a clear edge parallel to p->q lies within ``tolerance_px`` of each point
    (an edge: at least ``threshold`` grey levels per pixel across, the image's default).
    ``polarity`` +1 or -1 counts only edges whose gradient points along (against)
    ``normal``; 0 counts both."""
    length = float(np.hypot(*(q - p)))
    n = max(2, int(length))
    t = np.linspace(0.0, 1.0, n)
    pts = p[None, :] + t[:, None] * (q - p)[None, :]
    offsets = np.arange(-tolerance_px, tolerance_px + 0.01, 0.5)
    sx = (pts[:, 0][:, None] + offsets[None, :] * normal[0]).astype(np.float32)
    sy = (pts[:, 1][:, None] + offsets[None, :] * normal[1]).astype(np.float32)
    gx = cv2.remap(grad.gx, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    gy = cv2.remap(grad.gy, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    signed = gx * normal[0] + gy * normal[1]
    across = np.abs(signed) if polarity == 0 else np.maximum(0.0, polarity * signed)
    total = np.hypot(gx, gy)
    # the edge must run along the line: most of its gradient is across it
    across = np.where(across >= 0.6 * total, across, 0.0)
    best = np.argmax(across, axis=1)
    strength = across[np.arange(n), best]
    inside = (sx[:, 0] >= 0) & (sx[:, 0] < grad.gx.shape[1]) & (sy[:, 0] >= 0) & (
        sy[:, 0] < grad.gx.shape[0])
    present = (strength >= (grad.threshold if threshold is None else threshold)) & inside
    return _Profile(p, q, present, offsets[best], strength)


def _refit(grad: _Gradient, p: np.ndarray, q: np.ndarray, normal: np.ndarray) -> tuple[
        np.ndarray, np.ndarray] | None:
    """Refit segment p->q to the sub-pixel edge positions along it (median of residuals)."""
    # within 1.5 px only, and with the edge's own polarity: the wall's other edge may lie a
    # few pixels away and be stronger
    mid = _sample(grad.gx, np.linspace(p[0], q[0], 64), np.linspace(p[1], q[1], 64)) * normal[
        0] + _sample(grad.gy, np.linspace(p[0], q[0], 64), np.linspace(p[1], q[1], 64)) * normal[1]
    polarity = 1.0 if float(np.median(mid)) >= 0 else -1.0
    prof = _profile(grad, p, q, normal, tolerance_px=1.5, polarity=polarity,
                    threshold=max(1.0, 0.5 * grad.threshold))
    keep = prof.present.copy()
    n = len(keep)
    keep[: max(1, n // 20)] = False  # corners are rounded by the blur
    keep[n - max(1, n // 20):] = False
    if keep.sum() < 8:
        return None
    t = np.linspace(0.0, 1.0, n)[keep]
    off = prof.offset[keep].astype(float)
    # parabolic peak refinement would need the neighbours; a robust line fit over many
    # samples already averages the half-pixel steps away
    a, b = np.polyfit(t, off, 1)
    resid = off - (a * t + b)
    good = np.abs(resid) <= max(0.75, 2.5 * 1.4826 * np.median(np.abs(resid)))
    if good.sum() >= 8:
        a, b = np.polyfit(t[good], off[good], 1)
    return p + b * normal, q + (a + b) * normal


# --------------------------------------------------------------------------------------
# where the mouse was


def visited_map(frames: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, int]:
    """Pixels covered by the mouse in any of ``frames``, and in how many frames it was seen.

    Uses the tracker's own detector over the whole frame (automatic polarity, threshold and
    size limits), keeping every blob within the size limits so that several boxes with one
    mouse each all count. Returns (mask uint8 0/1, number of frames with a blob).
    """
    from ..config.settings import ArenaConfig, DetectionSettings
    from ..tracking.tracker import make_detector

    h, w = background.shape
    whole = ArenaConfig(
        name="frame", polygon=((0.0, 0.0), (w, 0.0), (w, h), (0.0, h)), doors=(), chambers=()
    )
    # the detector calibrates itself (polarity, threshold, sizes) on a few of the frames
    step = max(1, len(frames) // 30)
    detector = make_detector(whole, DetectionSettings(), background, frames[::step])
    visited = np.zeros((h, w), dtype=np.uint8)
    seen = 0
    for frame in frames:
        binary = detector.foreground(frame)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        if n <= 1:
            continue
        areas = stats[1:, cv2.CC_STAT_AREA]
        ok = np.flatnonzero((areas >= detector.min_area_px) & (areas <= 0.05 * h * w)) + 1
        if len(ok) == 0:
            continue
        seen += 1
        blob = np.isin(labels, ok)
        visited[detector.y0 : detector.y1, detector.x0 : detector.x1][blob] = 1
    return visited, seen


# --------------------------------------------------------------------------------------
# lines: refinement and measurement over their whole visible length


def _aligned(line: _Line, theta_ref: float) -> _Line:
    """The same line with its normal turned to within 90 degrees of ``theta_ref``."""
    d = (line.theta - theta_ref + math.pi / 2) % (2 * math.pi) - math.pi / 2
    if abs(d) <= math.pi / 2:
        return _Line(theta_ref + d, line.rho, line.votes)
    return _Line(theta_ref + d - math.pi, -line.rho, line.votes)


def _angle_between(a: float, b: float) -> float:
    """Angle between two line directions, in [0, pi/2]."""
    d = abs(a - b) % math.pi
    return min(d, math.pi - d)


def _refine(line: _Line, xs, ys, angle, band_px: float = 2.0) -> _Line:
    """Total-least-squares fit to the edge pixels within ``band_px`` of the line that run
    along it."""
    dist = xs * math.cos(line.theta) + ys * math.sin(line.theta) - line.rho
    # same polarity only (directions over the full circle): a wall's other edge, a few
    # pixels away, has the opposite gradient and must not pull the fit
    turn = np.abs((angle - line.theta + math.pi) % (2 * math.pi) - math.pi)
    ok = (np.abs(dist) <= band_px) & (turn <= math.radians(10))
    if ok.sum() < 10:
        return line
    pts = np.stack([xs[ok], ys[ok]], axis=1).astype(float)
    mean = pts.mean(axis=0)
    cov = np.cov((pts - mean).T)
    evals, evecs = np.linalg.eigh(cov)
    normal = evecs[:, 0]  # smallest spread: across the line
    if normal @ line.normal < 0:
        normal = -normal
    theta = math.atan2(normal[1], normal[0])
    fitted = _Line(theta, float(normal @ mean), line.votes)
    if _angle_between(theta, line.theta) > math.radians(3):
        return line
    return _aligned(fitted, line.theta)


@dataclass(frozen=True)
class _Measured:
    """A line with its edge presence measured every pixel across the image."""

    line: _Line
    s0: float  # position along the line's direction of the first sample
    present: np.ndarray
    cum: np.ndarray  # cumulative presence, len = len(present) + 1

    def coverage_between(self, p: np.ndarray, q: np.ndarray) -> float:
        d = self.line.direction
        a, b = sorted((float(p @ d) - self.s0, float(q @ d) - self.s0))
        n = len(self.present)
        i = int(np.clip(round(a + 0.04 * (b - a)), 0, n))
        j = int(np.clip(round(b - 0.04 * (b - a)), 0, n))
        if j - i < 3:
            return 0.0
        return float(self.cum[j] - self.cum[i]) / (j - i)


def _longest_gap(m: _Measured, p: np.ndarray, q: np.ndarray) -> float:
    """The longest stretch without an edge on ``m`` between p and q (3 px margins), px."""
    d = m.line.direction
    a, b = sorted((float(p @ d) - m.s0, float(q @ d) - m.s0))
    n = len(m.present)
    i = int(np.clip(round(a + 3), 0, n))
    j = int(np.clip(round(b - 3), 0, n))
    seg = m.present[i:j]
    if len(seg) == 0:
        return float(b - a)
    edges = np.flatnonzero(np.diff(np.concatenate([[1], seg.astype(np.int8), [1]])))
    runs = edges[1::2] - edges[::2]  # lengths of the runs of absent samples
    return float(runs.max()) if len(runs) else 0.0


def _reaches_corners(m: _Measured, p: np.ndarray, q: np.ndarray, slack_px: float) -> bool:
    """Whether the edge on ``m`` runs to within ``slack_px`` of both p and q."""
    d = m.line.direction
    a, b = sorted((float(p @ d) - m.s0, float(q @ d) - m.s0))
    n = len(m.present)
    i, j = int(np.clip(round(a), 0, n)), int(np.clip(round(b), 0, n))
    seg = m.present[i:j]
    hits = np.flatnonzero(seg)
    if len(hits) == 0:
        return False
    if hits[0] > slack_px or (len(seg) - 1 - hits[-1]) > slack_px:
        return False
    # and stops there: past a corner of a box its side runs into the open (or the wall)
    before = m.present[int(np.clip(round(a - 9), 0, n)):int(np.clip(round(a - 3), 0, n))]
    after = m.present[int(np.clip(round(b + 3), 0, n)):int(np.clip(round(b + 9), 0, n))]
    return all(len(x) == 0 or x.mean() <= 0.5 for x in (before, after))


def _measure(grad: _Gradient, line: _Line) -> _Measured | None:
    h, w = grad.gx.shape
    box = Polygon([(0, 0), (w - 1, 0), (w - 1, h - 1), (0, h - 1)])
    d = line.direction
    p0 = line.normal * line.rho
    diag = math.hypot(w, h)
    seg = box.intersection(LineString([p0 - d * 2 * diag, p0 + d * 2 * diag]))
    if seg.is_empty or seg.length < 10 or seg.geom_type != "LineString":
        return None
    a, b = (np.asarray(c, dtype=float) for c in seg.coords[:2])
    if (b - a) @ d < 0:
        a, b = b, a
    prof = _profile(grad, a, b, line.normal)
    cum = np.concatenate([[0], np.cumsum(prof.present)])
    return _Measured(line, float(a @ d), prof.present, cum)


# --------------------------------------------------------------------------------------
# outline


@dataclass(frozen=True)
class _Quad:
    sides: tuple[_Measured, _Measured, _Measured, _Measured]  # a1, b1, a2, b2
    corners: np.ndarray  # (4, 2): a1^b1, b1^a2, a2^b2, b2^a1
    coverage: tuple[float, float, float, float]
    clean: bool = True  # sides without holes that stop at the corners

    @property
    def polygon(self) -> Polygon:
        return Polygon(self.corners)


def _dominant_angle(angle: np.ndarray, mag: np.ndarray) -> float:
    """The walls' normal direction modulo 90 degrees (radians), from edge orientations."""
    deg = np.mod(np.degrees(angle), 90.0)
    hist, _ = np.histogram(deg, bins=180, range=(0, 90), weights=mag)
    ext = np.concatenate([hist[-4:], hist, hist[:4]])
    smooth = np.convolve(ext, np.ones(5), "same")[4:-4]
    return math.radians((int(np.argmax(smooth)) + 0.5) * 0.5)


def _corners(a1: _Line, b1: _Line, a2: _Line, b2: _Line) -> np.ndarray | None:
    pts = [_intersect(a1, b1), _intersect(b1, a2), _intersect(a2, b2), _intersect(b2, a1)]
    if any(p is None for p in pts):
        return None
    return np.array(pts)


def _coverage_matrix(lines: list[_Measured], others: list[_Measured]) -> tuple[
        np.ndarray, np.ndarray]:
    """For each line, the coverage between its crossings with every pair of other lines.

    Returns (coverage (n, m, m), crossings (n, m, 2)); NaN crossings for parallel lines.
    """
    n, m = len(lines), len(others)
    na = np.array([ln.line.normal for ln in lines])  # (n, 2)
    ra = np.array([ln.line.rho for ln in lines])
    nb = np.array([o.line.normal for o in others])
    rb = np.array([o.line.rho for o in others])
    det = na[:, None, 0] * nb[None, :, 1] - na[:, None, 1] * nb[None, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = (ra[:, None] * nb[None, :, 1] - na[:, None, 1] * rb[None, :]) / det
        y = (na[:, None, 0] * rb[None, :] - ra[:, None] * nb[None, :, 0]) / det
    bad = np.abs(det) < 1e-6
    x[bad] = np.nan
    y[bad] = np.nan
    crossings = np.stack([x, y], axis=-1)
    cov = np.zeros((n, m, m))
    for i, ln in enumerate(lines):
        d = ln.line.direction
        u = crossings[i] @ d - ln.s0  # (m,)
        lo = np.minimum(u[:, None], u[None, :])
        hi = np.maximum(u[:, None], u[None, :])
        span = hi - lo
        total = len(ln.present)
        with np.errstate(invalid="ignore"):
            i0 = np.clip(np.round(lo + 0.04 * span), 0, total)
            i1 = np.clip(np.round(hi - 0.04 * span), 0, total)
        ok = np.isfinite(i0) & np.isfinite(i1) & (i1 - i0 >= 3)
        i0 = np.where(ok, i0, 0).astype(int)
        i1 = np.where(ok, i1, 0).astype(int)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = (ln.cum[i1] - ln.cum[i0]) / np.maximum(1, i1 - i0)
        cov[i] = np.where(ok, c, 0.0)
    return cov, crossings


def _find_frames(family_a, family_b, n_arenas: int, shape, min_coverage=0.6) -> list[_Quad]:
    """The largest quadrilaterals whose four sides are covered by edges, not overlapping."""
    a_lines = sorted(family_a, key=lambda m: m.line.rho)
    b_lines = sorted(family_b, key=lambda m: m.line.rho)
    if len(a_lines) < 2 or len(b_lines) < 2:
        return []
    found = _covered_quads(a_lines, b_lines, n_arenas, shape, min_coverage)
    found.sort(key=lambda f: -f[0])
    clean, loose = _distinct_quads(found, a_lines, b_lines)
    best = _best_set(clean, n_arenas)
    if len(best) < n_arenas:
        # curved sides (lens distortion) or touching boxes: accept less clean outlines,
        # and say so in their confidence
        both = sorted(clean + loose, key=lambda q: -_quad_score(q, strict=True))
        best = _best_set(both, n_arenas, strict=True)
    return best


def _covered_quads(a_lines: list[_Measured], b_lines: list[_Measured], n_arenas: int, shape,
                   min_coverage: float) -> list[tuple]:
    """Every quadrilateral of two lines of each family whose sides are covered, inside the
    frame and of a plausible size: (score, i1, i2, j1, j2, corners, coverages), unsorted."""
    h, w = shape
    min_side = 0.1 * min(h, w)
    cov_a, cross = _coverage_matrix(a_lines, b_lines)  # cov_a[i, j1, j2]; cross[i, j]
    cov_b, _ = _coverage_matrix(b_lines, a_lines)  # cov_b[j, i1, i2]
    rho_b = np.array([b.line.rho for b in b_lines])
    nb = len(b_lines)
    j1, j2 = np.triu_indices(nb, k=1)
    far_b = (rho_b[j2] - rho_b[j1]) >= min_side
    j1, j2 = j1[far_b], j2[far_b]
    found = []
    for i1 in range(len(a_lines)):
        for i2 in range(i1 + 1, len(a_lines)):
            if a_lines[i2].line.rho - a_lines[i1].line.rho < min_side:
                continue
            c = np.stack([cov_a[i1, j1, j2], cov_b[j1, i1, i2], cov_a[i2, j1, j2],
                          cov_b[j2, i1, i2]], axis=1)
            ok = c.min(axis=1) >= min_coverage
            if not ok.any():
                continue
            ks = np.flatnonzero(ok)
            corners = np.stack([cross[i1, j1[ks]], cross[i2, j1[ks]], cross[i2, j2[ks]],
                                cross[i1, j2[ks]]], axis=1)  # (k, 4, 2)
            x, y = corners[..., 0], corners[..., 1]
            inside = (np.isfinite(corners).all(axis=(1, 2)) & (x.min(axis=1) >= -2)
                      & (y.min(axis=1) >= -2) & (x.max(axis=1) <= w + 2)
                      & (y.max(axis=1) <= h + 2))
            area = 0.5 * np.abs((x * np.roll(y, -1, axis=1)).sum(axis=1)
                                - (y * np.roll(x, -1, axis=1)).sum(axis=1))
            # boxes of one view are about the same size: n of them fill at most the frame
            good = inside & (area >= min_side**2) & (area <= 1.15 * h * w / n_arenas)
            score = area * (0.5 + 0.5 * c[ks].min(axis=1))
            for k in np.flatnonzero(good):
                found.append((float(score[k]), i1, i2, j1[ks[k]], j2[ks[k]], corners[k],
                              c[ks[k]]))
    return found


def _distinct_quads(found: list[tuple], a_lines: list[_Measured], b_lines: list[_Measured]
                    ) -> tuple[list[_Quad], list[_Quad]]:
    """The best 300 of ``found`` (best first) that are not near-duplicates, as clean ones
    (sides without holes that stop at the corners) and loose ones."""
    clean: list[_Quad] = []
    loose: list[_Quad] = []
    kept: list[np.ndarray] = []
    for _, i1, i2, jj1, jj2, corners, c in found:
        if len(kept) >= 300:
            break
        # near-duplicates (the inner and outer edge of the same walls) count once
        if any(np.abs(corners - k).max() <= 12 for k in kept):
            continue
        # sides in order around: a1, b1, a2, b2 with corners a1^b1, b1^a2, a2^b2, b2^a1
        sides = (a_lines[i1], b_lines[jj1], a_lines[i2], b_lines[jj2])
        is_clean = _has_clean_sides(sides, corners)
        quad = _Quad(sides, np.asarray(corners, dtype=float), tuple(float(v) for v in c),
                     is_clean)
        if not quad.polygon.is_valid:
            continue
        kept.append(corners)
        (clean if is_clean else loose).append(quad)
    return clean, loose


def _has_clean_sides(sides: tuple[_Measured, ...], corners: np.ndarray) -> bool:
    """A box's wall has no hole (a side that crosses the space between two boxes whose walls
    line up is not a side of a box), and its sides stop at its corners."""
    ends = [(corners[(k - 1) % 4], corners[k]) for k in range(4)]
    return all(
        _longest_gap(sides[k], *ends[k]) <= max(4.0, 0.05 * float(np.hypot(
            *(ends[k][1] - ends[k][0])))) and _reaches_corners(sides[k], *ends[k], 4.0)
        for k in range(4)
    )


def _quad_score(q: _Quad, strict: bool = False) -> float:
    """Larger and better covered is better; among less clean outlines coverage counts most
    (a large quadrilateral of stray edges must not beat the box)."""
    cov = min(q.coverage)
    return q.polygon.area * (cov**4 if strict else 0.5 + 0.5 * cov)


def _best_set(quads: list[_Quad], n_arenas: int, strict: bool = False) -> list[_Quad]:
    """The set of up to ``n_arenas`` quadrilaterals that do not overlap with the largest
    total score (the largest single one may span two boxes whose walls line up)."""
    scores = [_quad_score(q, strict) for q in quads]
    best: tuple[int, float, list[_Quad]] = (0, 0.0, [])
    for start in range(min(len(quads), 60 if n_arenas > 1 else 1)):
        chosen = [quads[start]]
        total = scores[start]
        for k, q in enumerate(quads):
            if len(chosen) == n_arenas:
                break
            poly = q.polygon
            if all(poly.intersection(c.polygon).area < 0.02 * poly.area for c in chosen):
                chosen.append(q)
                total += scores[k]
        if (len(chosen), total) > best[:2]:
            best = (len(chosen), total, chosen)
    return best[2]


def _strip_values(image: np.ndarray, line: _Line, p: np.ndarray, q: np.ndarray,
                  offsets: np.ndarray) -> np.ndarray:
    """Image values along segment p->q shifted by each of ``offsets`` along the normal."""
    length = max(4, int(np.hypot(*(q - p))))
    t = np.linspace(0.1, 0.9, length)
    pts = p[None, :] + t[:, None] * (q - p)[None, :]
    sx = (pts[:, 0][:, None] + offsets[None, :] * line.normal[0]).astype(np.float32)
    sy = (pts[:, 1][:, None] + offsets[None, :] * line.normal[1]).astype(np.float32)
    return cv2.remap(image, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class _SideChoice:
    line: _Line
    how: str  # 'mouse', 'band', 'opposite', 'single'
    band_px: float  # wall band width between the outer frame and the chosen edge


def _floor_side(
    grad: _Gradient,
    quad: _Quad,
    k: int,
    family: list[_Measured],
    visited: np.ndarray | None,
    coords: tuple[np.ndarray, np.ndarray],
) -> _SideChoice:
    """Move side ``k`` of the outer frame inwards to the floor's edge."""
    side = _side_frame(quad, k)
    edges = _one_per_edge([(0.0, side.line, 1.0), *_parallel_edges(side, family),
                           *_gradient_peaks(grad, side)])
    if visited is not None:
        # the mouse tells the floor's edge even where it shows along only part of the side
        # (black and white chambers: a wall face unlike one floor, like the other)
        partial = _one_per_edge([(0.0, side.line, 1.0),
                                 *_parallel_edges(side, family, _PARTIAL_EDGE),
                                 *_gradient_peaks(grad, side, _PARTIAL_EDGE)])
        full = _edge_the_mouse_stays_inside(side, quad, edges, coords)
        choice = _edge_the_mouse_stays_inside(side, quad, partial, coords)
        if choice is not None and (full is None or choice.band_px > full.band_px) and (
                _band_unlike_floor(grad, side, choice.band_px)):
            return choice
        if full is not None:
            return full
    if len(edges) >= 2:
        choice = _inner_edge_of_wall_band(grad, side, *edges[1])
        if choice is not None:
            return choice
    return _SideChoice(side.line, "single", 0.0)


def _like_opposite(grad: _Gradient, quad: _Quad, k: int, family: list[_Measured],
                   choices: list[_SideChoice]) -> _SideChoice:
    """Side ``k`` where neither the mouse nor a uniform wall band placed it: the edge at
    the depth the opposite side's floor edge was found at (within 30 %), if there is one:
    wall faces seen in perspective are about as deep on opposite sides (the camera's
    offset makes them differ a little) and look unlike a wall band."""
    choice, opposite = choices[k], choices[(k + 2) % 4]
    if choice.how != "single" or opposite.how not in ("mouse", "band") or (
            opposite.band_px <= 3.0):
        return choice
    side = _side_frame(quad, k)
    edges = _one_per_edge([*_parallel_edges(side, family, _PARTIAL_EDGE),
                           *_gradient_peaks(grad, side, _PARTIAL_EDGE)])
    near = [(abs(d - opposite.band_px), d, ln) for d, ln in edges
            if abs(d - opposite.band_px) <= 0.3 * opposite.band_px]
    if not near:
        return choice
    _, d, ln = min(near, key=lambda c: c[0])
    return _SideChoice(ln, "opposite", d)


@dataclass(frozen=True)
class _SideFrame:
    """Side ``k`` of an outer frame, with what looking inwards from it needs."""

    line: _Line
    inward: float  # +1 or -1: the sign of the distance from the line towards the centre
    prev_side: _Line  # the sides before and after it, which cut off a parallel line
    next_side: _Line
    start: np.ndarray  # its corners
    end: np.ndarray
    span: float  # its length, px
    depth: float  # how far inwards the floor's edge is looked for, px


def _side_frame(quad: _Quad, k: int) -> _SideFrame:
    side = quad.sides[k].line
    centre = quad.corners.mean(axis=0)
    inward = 1.0 if side.normal @ centre > side.rho else -1.0
    c_start, c_end = quad.corners[(k - 1) % 4], quad.corners[k]
    span = float(np.hypot(*(c_end - c_start)))
    across = quad.corners[(k + 1) % 4] - quad.corners[k]
    depth = 0.15 * min(span, float(np.hypot(*across)))
    return _SideFrame(side, inward, quad.sides[(k - 1) % 4].line, quad.sides[(k + 1) % 4].line,
                      c_start, c_end, span, depth)


#: The share of a side an edge must cover to be the floor's edge: 0.6 from the image alone,
#: less where the mouse was never beyond it.
_FULL_EDGE = 0.6
_PARTIAL_EDGE = 0.4


def _parallel_edges(side: _SideFrame, family: list[_Measured], min_coverage: float = _FULL_EDGE
                    ) -> list[tuple[float, _Line, float]]:
    """Lines found inside the side that run parallel to it, covered by an edge between the
    neighbouring sides: (distance inwards, line, coverage)."""
    cands = []
    mid = 0.5 * (side.start + side.end)
    for m in family:
        ln = _aligned(m.line, side.line.theta)
        # the inner edge of a wall runs parallel to its outer edge (up to perspective)
        if m.line is side.line or _angle_between(ln.theta, side.line.theta) > math.radians(1.5):
            continue
        # distance from the frame side's middle to this line, positive inwards
        d = (ln.rho - float(ln.normal @ mid)) * side.inward
        if not 1.5 < d <= side.depth:
            continue
        p, q = _intersect(ln, side.prev_side), _intersect(ln, side.next_side)
        if p is None or q is None:
            continue
        cov = m.coverage_between(p, q)
        if cov < min_coverage:
            continue
        cands.append((d, ln, cov))
    return cands


def _gradient_peaks(grad: _Gradient, side: _SideFrame, min_coverage: float = _FULL_EDGE
                    ) -> list[tuple[float, _Line, float]]:
    """Weak edges (a dark wall on a dark floor) may have too few votes to be among the lines
    found: peaks of the gradient across the side, every half pixel inwards, that cover it."""
    offsets = np.arange(0.0, side.depth + 0.01, 0.5)
    strength = _inner_edge_strength(grad, side, offsets)
    # the median along the whole side averages noise away: half the usual edge threshold
    weak = max(1.0, 0.5 * grad.threshold)
    cands = []
    for i in range(3, len(offsets) - 2):  # at least 1.5 px inside the outer edge
        window = strength[max(0, i - 2):i + 3]
        if strength[i] >= weak and strength[i] >= window.max():
            d = float(offsets[i])
            ln = _Line(side.line.theta, side.line.rho + side.inward * d, 0.0)
            p, q = _intersect(ln, side.prev_side), _intersect(ln, side.next_side)
            if p is None or q is None:
                continue
            cov = _profile(grad, p, q, ln.normal, tolerance_px=1.0,
                           threshold=weak).coverage(0.05, 0.95)
            if cov >= min_coverage:
                cands.append((d, ln, cov))
    return cands


def _inner_edge_strength(grad: _Gradient, side: _SideFrame, offsets: np.ndarray) -> np.ndarray:
    """At each offset inwards, the median gradient across the side that steps the other way
    than the side's own (outer) edge."""
    inward, normal = side.inward, side.line.normal
    n = max(8, int(side.span))
    t = np.linspace(0.1, 0.9, n)
    pts = side.start[None, :] + t[:, None] * (side.end - side.start)[None, :]
    sx = pts[:, 0][:, None] + inward * offsets[None, :] * normal[0]
    sy = pts[:, 1][:, None] + inward * offsets[None, :] * normal[1]
    gx = _sample(grad.gx, sx.ravel(), sy.ravel()).reshape(sx.shape)
    gy = _sample(grad.gy, sx.ravel(), sy.ravel()).reshape(sx.shape)
    signed = np.median((gx * normal[0] + gy * normal[1]) * inward, axis=0)
    # a wall band's inner edge steps the other way than its outer edge (the band is darker,
    # or lighter, than both what lies outside and the floor): with the sign kept, the
    # strong outer edge cannot drown a weak inner edge a few pixels away
    return np.maximum(0.0, -np.sign(signed[0]) * signed)


def _one_per_edge(cands: list[tuple[float, _Line, float]]) -> list[tuple[float, _Line]]:
    """Of candidate lines within 1.5 px of each other, the best covered; (distance, line)
    from the outer edge inwards."""
    cands = sorted(cands, key=lambda c: c[0])
    merged: list[tuple[float, _Line, float]] = []
    for c in cands:
        if merged and c[0] - merged[-1][0] <= 1.5:
            if c[2] > merged[-1][2]:
                merged[-1] = c
        else:
            merged.append(c)
    return [(d, ln) for d, ln, _ in merged]


def _edge_the_mouse_stays_inside(
    side: _SideFrame, quad: _Quad, edges: list[tuple[float, _Line]],
    coords: tuple[np.ndarray, np.ndarray],
) -> _SideChoice | None:
    """The innermost edge the mouse was (almost) never beyond, when it came near the side."""
    xs, ys = coords
    region = quad.polygon.buffer(max(4.0, side.depth))
    near = shapely.contains_xy(region, xs, ys)
    vx, vy = xs[near], ys[near]
    if not len(vx):
        return None
    tol = max(3, int(0.002 * len(vx)))
    # did the mouse come near this side at all? then trust it
    line, inward = side.line, side.inward
    s_side = (vx * line.normal[0] + vy * line.normal[1] - line.rho) * inward
    if np.count_nonzero(s_side <= side.depth + 4) <= tol:
        return None
    for d, ln in reversed(edges):
        s = (vx * ln.normal[0] + vy * ln.normal[1] - ln.rho) * inward
        if np.count_nonzero(s < -1.5) <= tol:
            return _SideChoice(ln, "mouse", d)
    return None


def _band_unlike_floor(grad: _Gradient, side: _SideFrame, d: float) -> bool:
    """Whether the band between the outer frame and the edge ``d`` px inwards is unlike the
    floor just inside that edge (in brightness or in texture) along most of the side: a
    wall face, not the outer rows of a floor's holes or rods."""
    if d < 3.0:
        return False
    inward = side.inward
    w = float(np.clip(0.25 * d, 2.0, 6.0))  # strips this wide just outside and inside
    band = _strip_values(grad.raw, side.line, side.start, side.end,
                         np.arange(d - 1.5 - w, d - 1.5 + 0.01, 0.5) * inward)
    floor = _strip_values(grad.raw, side.line, side.start, side.end,
                          np.arange(d + 1.5, d + 1.5 + w + 0.01, 0.5) * inward)
    unlike = []
    for b, f in zip(np.array_split(band, 8), np.array_split(floor, 8), strict=True):
        sb, sf = float(b.std()), float(f.std())
        spread = max(2.0, 0.5 * (sb + sf))
        unlike.append(abs(float(b.mean()) - float(f.mean())) > 2 * spread
                      or max(sb, sf) > 1.8 * max(1.0, min(sb, sf)))
    return float(np.mean(unlike)) >= 0.6


def _inner_edge_of_wall_band(grad: _Gradient, side: _SideFrame, d: float,
                             ln: _Line) -> _SideChoice | None:
    """The edge ``d`` px inwards, when the band between the outer edge and it is a wall:
    darker (or lighter) than the floor at its most extreme offset (a thin wall is blurred
    by its strong outer edge), and the same all along the side."""
    inward, c_start, c_end = side.inward, side.start, side.end
    inside = np.arange(0.25 * d, 0.75 * d + 0.01, 0.5) * inward
    band = _strip_values(grad.raw, side.line, c_start, c_end, inside)
    floor = float(np.median(_strip_values(grad.raw, side.line, c_start, c_end,
                                          np.array([d + 2.0, d + 3.0]) * inward)))
    levels = np.median(band, axis=0)
    k_ext = int(np.argmax(np.abs(levels - floor)))
    vals = band[:, k_ext]
    spread = 1.4826 * float(np.median(np.abs(vals - np.median(vals))))
    step = abs(float(levels[k_ext]) - floor)
    if spread <= max(3.0, 0.3 * step) and step >= 2 * grad.threshold and side.span > 0:
        return _SideChoice(ln, "band", d)
    return None


# --------------------------------------------------------------------------------------
# doors


@dataclass(frozen=True)
class _DoorEdge:
    """One straight edge inside the outline that looks like the side of a dividing wall."""

    line: _Line
    p: np.ndarray  # chord end points on the outline
    q: np.ndarray
    coverage: float
    solidity: float  # coverage outside the opening
    ends: float  # the lower of the coverages of the first and last 10 % of the chord
    gap: tuple[float, float]  # the opening, as fractions of the chord
    walked: float | None  # share of the wall's edge the mouse was seen on (None: no data)
    crossed: bool | None  # the mouse was seen in the opening


def _chord(polygon: Polygon, line: _Line) -> tuple[np.ndarray, np.ndarray] | None:
    p0 = line.normal * line.rho
    d = line.direction
    far = 4 * math.sqrt(polygon.area) + 4 * float(np.abs(np.asarray(polygon.bounds)).max())
    seg = polygon.intersection(LineString([p0 - d * far, p0 + d * far]))
    if seg.is_empty:
        return None
    if seg.geom_type != "LineString":
        parts = [g for g in getattr(seg, "geoms", []) if g.geom_type == "LineString"]
        if not parts:
            return None
        seg = max(parts, key=lambda g: g.length)
    a, b = (np.asarray(c, dtype=float) for c in (seg.coords[0], seg.coords[-1]))
    if (b - a) @ d < 0:
        a, b = b, a
    return a, b


def _largest_gap(present: np.ndarray) -> tuple[int, int]:
    """The longest run of absent samples, after closing one- and two-sample holes."""
    filled = present.copy()
    n = len(filled)
    for k in (1, 2):
        for i in range(1, n - k):
            if filled[i - 1] and filled[min(n - 1, i + k)] and not filled[i:i + k].any():
                filled[i:i + k] = True
    best = (0, 0)
    i = 0
    while i < n:
        if not filled[i]:
            j = i
            while j < n and not filled[j]:
                j += 1
            if j - i > best[1] - best[0]:
                best = (i, j)
            i = j
        else:
            i += 1
    return best


def _ridge(grad: _Gradient, p: np.ndarray, q: np.ndarray, normal: np.ndarray,
           thickness: float) -> np.ndarray:
    """Where a band ``thickness`` px wide centred on p->q stands out from both of its sides
    the same way (darker than both or lighter than both): a wall, not a step between two
    floors. Bool per pixel along the segment."""
    half = 0.5 * thickness
    offsets = np.array([-half - 2.5, -half - 1.5, -0.25 * thickness, 0.0, 0.25 * thickness,
                        half + 1.5, half + 2.5])
    line = _Line(math.atan2(normal[1], normal[0]), 0.0, 0.0)
    vals = _strip_values(grad.image, line, p, q, offsets).astype(np.float64)
    left = vals[:, :2].mean(axis=1)
    centre = np.median(vals[:, 2:5], axis=1)
    right = vals[:, 5:].mean(axis=1)
    dl, dr = centre - left, centre - right
    contrast = np.minimum(np.abs(dl), np.abs(dr))
    stands_out = (np.sign(dl) == np.sign(dr)) & (contrast >= 1.5 * grad.threshold)
    if not stands_out.any():
        return stands_out
    # one wall, one material: the same sign and about the same grey level all along
    sign = 1.0 if np.count_nonzero(stands_out & (dl > 0)) >= np.count_nonzero(
        stands_out & (dl < 0)) else -1.0
    same = stands_out & (np.sign(dl) == sign)
    level = float(np.median(centre[same])) if same.any() else 0.0
    typical = float(np.median(contrast[same])) if same.any() else 0.0
    present = same & (np.abs(centre - level) <= max(12.0, 0.5 * typical))
    return _clean_runs(present)


def _clean_runs(present: np.ndarray, speck: int = 3, hole: int = 2) -> np.ndarray:
    """Drop present runs shorter than ``speck`` samples (texture), then fill absent runs of
    at most ``hole`` samples (noise)."""
    out = present.copy()
    n = len(out)

    def runs(values: np.ndarray, state: bool):
        i = 0
        while i < n:
            if values[i] == state:
                j = i
                while j < n and values[j] == state:
                    j += 1
                yield i, j
                i = j
            else:
                i += 1

    for i, j in list(runs(out, True)):
        if j - i < speck:
            out[i:j] = False
    for i, j in list(runs(out, False)):
        if j - i <= hole and i > 0 and j < n:
            out[i:j] = True
    return out


def _door_edges(grad, polygon, edges, visited, wall_px: float | None) -> list[_DoorEdge]:
    """Dividing walls: bands that stand out from the floor on both sides, reaching the
    outline at both ends, solid except for one opening."""
    xs, ys, angle, _ = edges
    inner = polygon.buffer(-3.0)
    if inner.is_empty:
        return []
    keep = shapely.contains_xy(inner, xs, ys)
    sides = np.diff(np.asarray(polygon.exterior.coords), axis=0)
    short = float(np.hypot(sides[:, 0], sides[:, 1]).min())
    lines = _hough(xs[keep], ys[keep], angle[keep], math.hypot(*grad.gx.shape),
                   min_votes=0.15 * short, max_lines=60)
    widths = _wall_widths(wall_px, math.sqrt(polygon.area))
    thin = _thin_widths(wall_px, widths)
    out: list[_DoorEdge] = []
    for raw in lines:
        edge = _refine(raw, xs[keep], ys[keep], angle[keep])
        found = []
        for w in (widths, thin):
            ridge = _best_ridge(grad, polygon, edge, w, short) if w else None
            door_edge = None if ridge is None else _door_edge(ridge, visited)
            if door_edge is not None:
                found.append(door_edge)
        if found:  # a thin partition only where it is more solid than a wall as thick
            out.append(max(found, key=lambda e: (round(e.solidity, 2), e.coverage)))
    return out


def _wall_widths(wall_px: float | None, size: float) -> list[float]:
    """Thicknesses a dividing wall is looked for at: about the outer walls' when known."""
    if wall_px:
        return sorted({max(2.0, round(wall_px * f)) for f in (0.7, 1.0, 1.4)})
    return [float(t) for t in range(3, max(4, int(0.08 * size)) + 1)]


def _thin_widths(wall_px: float | None, widths: list[float]) -> list[float]:
    """Thinner partitions, looked for where no wall of ``widths`` is: down to a quarter of
    the outer walls' band (which looks wide where wall faces are seen inside it)."""
    if not wall_px:
        return [] if min(widths) <= 1.0 else [1.0, 2.0]
    return sorted({max(1.0, round(wall_px * f)) for f in (0.25, 0.4, 0.55)} - set(widths))


@dataclass(frozen=True)
class _Ridge:
    """A band along a chord of the outline and where along it the band stands out."""

    line: _Line  # the band's centre line
    p: np.ndarray  # chord end points on the outline
    q: np.ndarray
    present: np.ndarray  # bool per pixel along p -> q
    length: float  # px


def _best_ridge(grad: _Gradient, polygon: Polygon, edge: _Line, widths: list[float],
                short: float) -> _Ridge | None:
    """Of the bands of each width on either side of ``edge`` that cross the box, the one
    that stands out along most of its length."""
    best = None
    for side in (-1.0, 1.0):
        for t in widths:
            line = _Line(edge.theta, edge.rho + side * 0.5 * t, 0.0)
            chord = _chord(polygon, line)
            if chord is None:
                continue
            p, q = chord
            length = float(np.hypot(*(q - p)))
            if length < 0.5 * short:
                continue
            mid = 0.5 * (p + q)
            if polygon.exterior.distance(shapely.Point(mid)) < 0.15 * length:
                continue  # along a wall, not across the box
            present = _ridge(grad, p, q, line.normal, t)
            score = float(present.mean())
            if best is None or score > best[0]:
                best = (score, _Ridge(line, p, q, present, length))
    return None if best is None else best[1]


def _door_edge(ridge: _Ridge, visited: np.ndarray | None) -> _DoorEdge | None:
    """The ridge as a dividing wall's edge, if it reaches the outline at both ends and is
    solid except for one opening of a door's size."""
    present, length = ridge.present, ridge.length
    n = len(present)
    tenth = max(2, n // 10)
    ends = min(float(present[:tenth].mean()), float(present[-tenth:].mean()))
    i, j = _largest_gap(present)
    gap_px = (j - i) * length / n
    if ends < 0.5 or i == 0 or j >= n:
        return None
    if gap_px < max(5.0, 0.05 * length) or gap_px > 0.7 * length:
        return None
    rest = np.concatenate([present[:i], present[j:]])
    solidity = float(rest.mean())
    if solidity < 0.75:
        return None
    walked = crossed = None
    if visited is not None and visited.any():
        walked, crossed = _mouse_on_ridge(ridge, i, j, visited)
    return _DoorEdge(ridge.line, ridge.p, ridge.q, float(present.mean()), solidity, ends,
                     (i / n, j / n), walked, crossed)


def _mouse_on_ridge(ridge: _Ridge, i: int, j: int, visited: np.ndarray) -> tuple[float, bool]:
    """The share of the wall (the ridge outside its opening ``i:j``) the mouse was seen on,
    and whether it was seen in the opening."""
    p, q, present = ridge.p, ridge.q, ridge.present
    n = len(present)
    t = np.linspace(0.0, 1.0, n)
    pts = p[None, :] + t[:, None] * (q - p)[None, :]
    cx = np.clip(np.round(pts[:, 0]).astype(int), 0, visited.shape[1] - 1)
    cy = np.clip(np.round(pts[:, 1]).astype(int), 0, visited.shape[0] - 1)
    on = visited[cy, cx] > 0
    mask = np.ones(n, bool)
    mask[i:j] = False
    walked = float(on[mask & present].mean()) if (mask & present).any() else 0.0
    return walked, bool(on[i:j].any())


@dataclass(frozen=True)
class _Wall:
    edges: tuple[_DoorEdge, ...]
    line: _Line
    p: np.ndarray
    q: np.ndarray
    opening: tuple[np.ndarray, np.ndarray]
    confidence: float
    evidence: str


def _walls(polygon: Polygon, door_edges: list[_DoorEdge], have_mouse: bool) -> list[_Wall]:
    """Merge the two edges of each dividing wall and judge each wall."""
    walls = []
    for g in _edges_by_wall(door_edges, math.sqrt(polygon.area)):
        g = g[:2] if len(g) <= 2 else sorted(g, key=lambda e: -e.solidity)[:2]
        wall = _judge_wall(polygon, g, have_mouse)
        if wall is not None:
            walls.append(wall)
    walls.sort(key=lambda w: -w.confidence)
    return walls


def _edges_by_wall(door_edges: list[_DoorEdge], size: float) -> list[list[_DoorEdge]]:
    """Door edges grouped by the wall they belong to (parallel and close), the most solid
    of each first."""
    groups: list[list[_DoorEdge]] = []
    for e in sorted(door_edges, key=lambda e: -e.solidity):
        for g in groups:
            ref = g[0].line
            ln = _aligned(e.line, ref.theta)
            mid = 0.5 * (e.p + e.q)
            if (_angle_between(ln.theta, ref.theta) <= math.radians(3)
                    and abs(float(ref.normal @ mid) - ref.rho) <= 0.06 * size):
                g.append(e)
                break
        else:
            groups.append([e])
    return groups


def _judge_wall(polygon: Polygon, g: list[_DoorEdge], have_mouse: bool) -> _Wall | None:
    """One wall from its (one or two) edges: its centre line from wall to wall, its opening,
    and how sure that it is a wall."""
    ref = g[0].line
    aligned = [_aligned(e.line, ref.theta) for e in g]
    theta = float(np.mean([a.theta for a in aligned]))
    n = np.array([math.cos(theta), math.sin(theta)])
    mids = [0.5 * (e.p + e.q) for e in g]
    rho = float(np.mean([n @ m for m in mids]))
    centre = _Line(theta, rho, 0.0)
    chord = _chord(polygon, centre)
    if chord is None:
        return None
    p, q = chord
    length = float(np.hypot(*(q - p)))
    lo, hi = _opening_along(g, p, centre.direction)
    opening = (p + centre.direction * lo, p + centre.direction * hi)
    solidity = min(e.solidity for e in g)
    ends = min(e.ends for e in g)
    solid = float(np.clip((solidity - 0.7) / 0.25, 0, 1))
    end_score = float(np.clip((ends - 0.4) / 0.5, 0, 1))
    mouse, mouse_text = _mouse_evidence(g, have_mouse)
    pair = 1.0 if len(g) == 2 else 0.5
    confidence = 0.45 * solid + 0.2 * end_score + 0.15 * pair + 0.2 * mouse
    open_px = hi - lo
    evidence = (
        f"{'both edges' if len(g) == 2 else 'one edge'} of a wall run from wall to wall "
        f"({100 * solidity:.0f} % solid) with one opening of {open_px:.0f} px "
        f"({100 * open_px / length:.0f} % of its {length:.0f} px); {mouse_text}"
    )
    return _Wall(tuple(g), centre, p, q, opening, float(np.clip(confidence, 0, 1)), evidence)


def _opening_along(g: list[_DoorEdge], p: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """Where all edges of the wall are absent, px along the chord from ``p``."""
    lo = max(float(((e.p + e.gap[0] * (e.q - e.p)) - p) @ d) for e in g)
    hi = min(float(((e.p + e.gap[1] * (e.q - e.p)) - p) @ d) for e in g)
    if hi <= lo:  # edges disagree on where the opening is: take the first's
        e = g[0]
        lo = float(((e.p + e.gap[0] * (e.q - e.p)) - p) @ d)
        hi = float(((e.p + e.gap[1] * (e.q - e.p)) - p) @ d)
    return lo, hi


def _mouse_evidence(g: list[_DoorEdge], have_mouse: bool) -> tuple[float, str]:
    """What the mouse's positions say about the wall: a score in 0..1 and why."""
    walked = [e.walked for e in g if e.walked is not None]
    crossed = any(e.crossed for e in g if e.crossed is not None)
    if not have_mouse or not walked:
        return 0.5, "no mouse positions to confirm it"
    if max(walked) > 0.1:
        return 0.0, (f"but the mouse was seen on {100 * max(walked):.0f} % of "
                     "it, so it may be floor texture, not a wall")
    if crossed:
        return 1.0, "the mouse was seen in the opening and never on the wall"
    return 0.7, "the mouse was never seen on the wall"


def _pick_walls(polygon, walls: list[_Wall], n_chambers: int | None) -> list[_Wall]:
    """The best walls that do not cross each other inside the outline."""
    wanted = (n_chambers - 1) if n_chambers else 3
    chosen: list[_Wall] = []
    size = math.sqrt(polygon.area)
    for w in walls:
        if n_chambers is None and w.confidence < 0.5:
            continue
        seg = LineString([w.p, w.q])
        clash = False
        for c in chosen:
            other = LineString([c.p, c.q])
            if seg.distance(other) < 0.08 * size:
                clash = True
        if not clash:
            chosen.append(w)
        if len(chosen) == wanted:
            break
    return chosen


#: A step between floors weaker than this (in typical neighbour differences) is not
#: proposed: on boxes with one floor the strongest is 1.5 at most (tuned on seeds 0-4).
_MIN_STEP = 2.0


def _step_walls(image: np.ndarray, polygon: Polygon, visited: np.ndarray | None
                ) -> list[_Wall]:
    """Chamber boundaries without a visible wall: straight steps between two floors, as
    walls whose opening is where the mouse crossed (or the whole line)."""
    out = []
    for step in floor_steps(image, polygon):
        if step.strength < _MIN_STEP:
            continue
        theta = math.atan2(step.direction[0], -step.direction[1])
        line = _Line(theta, float(np.array([math.cos(theta), math.sin(theta)]) @ step.p), 0.0)
        chord = _chord(polygon, line)
        if chord is None:
            continue
        p, q = chord
        crossed = _crossings(p, q, visited)
        confidence, evidence = _judge_step(step, crossed)
        opening = (p, q) if crossed is None else crossed
        out.append(_Wall((), line, p, q, opening, confidence, evidence))
    return out


def _crossings(p: np.ndarray, q: np.ndarray, visited: np.ndarray | None
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """The stretch of p->q on which the mouse was seen (None: nowhere, or no data)."""
    if visited is None or not visited.any():
        return None
    n = max(2, int(np.hypot(*(q - p))))
    t = np.linspace(0.0, 1.0, n)
    pts = p[None, :] + t[:, None] * (q - p)[None, :]
    cx = np.clip(np.round(pts[:, 0]).astype(int), 0, visited.shape[1] - 1)
    cy = np.clip(np.round(pts[:, 1]).astype(int), 0, visited.shape[0] - 1)
    on = np.nonzero(visited[cy, cx] > 0)[0]
    if not len(on):
        return None
    return pts[on[0]], pts[on[-1]]


def _judge_step(step: FloorStep, crossed) -> tuple[float, str]:
    """How sure that a step between floors is where two chambers meet, and why. The image
    alone never makes it high: the mouse must have crossed it too (a floor that changes is
    weaker evidence than a wall)."""
    if step.measure == "brightness":
        what = f"its brightness by {abs(step.change):.0f} grey levels"
    else:
        what = f"its texture (energy x{step.change:.2f})"
    image = float(np.clip(0.25 + 0.1 * step.strength, 0.0, 0.7))
    if crossed is not None:
        mouse, said = 0.15, "the mouse crossed it"
    else:
        mouse, said = -0.1, "the mouse was not seen crossing it (no positions, or confined)"
    evidence = (f"no wall seen: the floor changes {what} along a straight line from wall to "
                f"wall (strength {step.strength:.1f}); {said}; check that this is where the "
                "chambers meet")
    return float(np.clip(image + mouse, 0.0, 1.0)), evidence


# --------------------------------------------------------------------------------------
# the whole proposal


def _families(lines: list[_Line], theta0: float) -> tuple[list[_Line], list[_Line]]:
    a, b = [], []
    for ln in lines:
        if _angle_between(ln.theta, theta0) <= math.radians(10):
            a.append(_aligned(ln, theta0))
        elif _angle_between(ln.theta, theta0 + math.pi / 2) <= math.radians(10):
            b.append(_aligned(ln, theta0 + math.pi / 2))
    return a, b


def _order_arenas(quads: list[_Quad]) -> list[_Quad]:
    """Row by row from the top, left to right within a row."""
    if not quads:
        return quads
    centres = [q.corners.mean(axis=0) for q in quads]
    height = float(np.median([np.ptp(q.corners[:, 1]) for q in quads]))
    order = sorted(range(len(quads)), key=lambda i: centres[i][1])
    rows: list[list[int]] = []
    for i in order:
        if rows and abs(centres[i][1] - centres[rows[-1][0]][1]) < 0.5 * height:
            rows[-1].append(i)
        else:
            rows.append([i])
    return [quads[i] for row in rows for i in sorted(row, key=lambda i: centres[i][0])]


def _rounded(p) -> Point:
    return (round(float(p[0]), 1), round(float(p[1]), 1))


def _template_polygon(width: int, height: int, k: int, n: int,
                      taken: list[Polygon]) -> tuple[Point, ...]:
    """A rectangle to edit for arena ``k`` of ``n``: its slot side by side 10 % inside the
    frame, or another free place that overlaps no outline in ``taken``."""

    def rect(a, y0, b, y1):
        return (_rounded((a, y0)), _rounded((b, y0)), _rounded((b, y1)), _rounded((a, y1)))

    x0, x1 = 0.1 * width, 0.9 * width
    step = (x1 - x0) / n
    pad = 0.05 * step if n > 1 else 0.0
    slots = [rect(x0 + j * step + pad, 0.1 * height, x0 + (j + 1) * step - pad, 0.9 * height)
             for j in [k, *[j for j in range(n) if j != k]]]
    for size in (0.2, 0.1, 0.05, 0.02):
        s = size * min(width, height)
        for cx, cy in ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.0), (0.5, 1.0)):
            a = 1 + cx * (width - s - 2)
            y = 1 + cy * (height - s - 2)
            slots.append(rect(a, y, a + s, y + s))
    for slot in slots:
        poly = Polygon(slot)
        if all(poly.intersection(t).area <= 1.0 for t in taken):
            return slot
    return slots[0]  # nowhere free: check-config will say that it overlaps


def _chambers_for(polygon: Polygon, door_lines: list[tuple[Point, Point]]) -> list[Point]:
    """One point per piece, far from every border, ordered across the doors."""
    from ..geometry.chambers import split_polygon

    lines = []
    for p, q in door_lines:
        p, q = np.asarray(p, float), np.asarray(q, float)
        d = (q - p) / np.hypot(*(q - p))
        lines.append(LineString([p - 3 * d, q + 3 * d]))
    pieces = split_polygon(polygon, lines)
    points = [polylabel(piece, tolerance=0.5) for piece in pieces]
    if door_lines:
        p, q = (np.asarray(v, float) for v in door_lines[0])
        across = np.array([-(q - p)[1], (q - p)[0]])
        if across[0] < 0 or (across[0] == 0 and across[1] < 0):
            across = -across
        points.sort(key=lambda pt: float(np.array([pt.x, pt.y]) @ across))
    return [_rounded((pt.x, pt.y)) for pt in points]


def _outline_finding(name: str, quad: _Quad, choices: list[_SideChoice],
                     coverage: tuple[float, ...], mouse_frames: int) -> Finding:
    how = [c.how for c in choices]
    cov = min(coverage)
    parts = [
        "four straight edges cover the whole of each side" if cov >= 0.995
        else f"four straight edges cover at least {100 * cov:.0f} % of each side" if cov >= 0.01
        else "a side of the floor shows no straight edge (the outline there is a guess)"
    ]
    if all(h == "mouse" for h in how):
        parts.append(f"the mouse (seen in {mouse_frames} sampled frames) was never beyond them")
        bonus = 1.0
    elif "mouse" in how:
        parts.append(f"the mouse confirms {how.count('mouse')} of 4 sides")
        bonus = 0.7
    else:
        parts.append("no mouse positions near the walls to confirm them")
        bonus = 0.4
    bands = [c.band_px for c in choices
             if c.how in ("band", "mouse", "opposite") and c.band_px > 0]
    if "opposite" in how:
        parts.append(f"{how.count('opposite')} side(s) placed at the depth of the opposite "
                     "side's floor edge (wall faces in perspective?)")
        bonus -= 0.15
    if bands:
        parts.append(f"a wall band of {min(bands):.0f}-{max(bands):.0f} px lies outside")
        if max(bands) > 2.5 * max(1.0, min(bands)):
            bonus -= 0.2
            parts.append("(uneven: check each side)")
    elif all(h == "single" for h in how):
        parts.append("the floor's edge is the outermost edge found (no wall band seen)")
    if not quad.clean:
        parts.append("but its sides have holes or run on past the corners (curved by the "
                     "lens, or boxes touching?): check the corners")
        bonus -= 0.4
    confidence = float(np.clip(0.55 * np.clip((cov - 0.7) / 0.25, 0, 1) + 0.45 * bonus, 0, 1))
    return Finding(f"{name} outline", confidence, "; ".join(parts))


def propose_geometry(
    background: np.ndarray,
    frames: np.ndarray | None = None,
    *,
    n_chambers: int | None = None,
    n_arenas: int = 1,
) -> Proposal:
    """Propose outline, door lines and chamber points for each box in ``background``.

    Parameters
    ----------
    background
        The empty-box image, (h, w) uint8 grayscale (:func:`~cpp_tracker.tracking.background.
        median_background` of frames sampled across the video).
    frames
        Optional frames sampled across the video, (n, h, w) uint8: where the mouse is seen
        in them is floor, which tells the floor's edge from a wall's outer edge and floor
        texture from a wall.
    n_chambers
        Chambers per box when known (2 or 3): exactly ``n_chambers - 1`` door lines are
        proposed if that many are found. ``None``: every convincing door line.
    n_arenas
        Boxes in the view.

    Returns
    -------
    Proposal
        With a :class:`Finding` (confidence and evidence) for every outline and door line.
        An outline that is not found is a template rectangle (``outline_found`` False); a
        box without convincing doors gets none (``doors_found`` False), never a guess.
    """
    background = np.asarray(background)
    if background.ndim != 2:
        raise ValueError("propose_geometry needs a 2-d grayscale background image")
    h, w = background.shape
    mouse = _mouse_positions(frames, background)
    notes = list(mouse.notes)
    grad = _gradient(background)
    edges = _edge_pixels(grad)
    meas_a, meas_b = _wall_line_families(grad, edges)
    quads = _order_arenas(_find_frames(meas_a, meas_b, n_arenas, (h, w)))
    if n_arenas == 1 and mouse.coords is not None and _mouse_outside(quads, mouse) > 0.05:
        quads = _frame_holding_the_mouse(meas_a, meas_b, (h, w), mouse) or quads
    if len(quads) < n_arenas:
        notes.append(f"found {len(quads)} box outline(s) of the {n_arenas} asked for")
    arenas = []
    taken = [q.polygon for q in quads]
    for k in range(n_arenas):
        name = f"box{k + 1}"
        if k >= len(quads):
            arenas.append(_template_arena(name, w, h, k, n_arenas, taken))
            continue
        outline = _doubt_if_mouse_missing(
            _fit_outline(grad, quads[k], (meas_a, meas_b), mouse, name), mouse)
        doors = _propose_doors(grad, edges, outline, mouse, name, n_chambers)
        if n_chambers and 0 < len(doors) < n_chambers - 1:
            notes.append(f"{name}: found {len(doors)} door line(s) of the {n_chambers - 1} "
                         f"that {n_chambers} chambers need")
        points = _chambers_for(Polygon(outline.polygon), [d.line for d in doors])
        chambers = tuple((f"chamber_{i + 1}", pt) for i, pt in enumerate(points))
        arenas.append(ProposedArena(name, outline.polygon, tuple(doors), chambers,
                                    outline.finding, True))
    return Proposal(w, h, tuple(arenas), tuple(notes), mouse.seen, n_chambers)


def _mouse_outside(quads: list[_Quad], mouse: _MousePositions) -> float:
    """The share of the pixels the mouse was seen on that lie outside every frame."""
    xs, ys = mouse.coords
    inside = np.zeros(len(xs), bool)
    for q in quads:
        inside |= shapely.contains_xy(q.polygon.buffer(3.0), xs, ys)
    return float(1.0 - inside.mean()) if len(xs) else 0.0


def _frame_holding_the_mouse(meas_a, meas_b, shape, mouse: _MousePositions) -> list[_Quad]:
    """One box whose frame the first search cut short (a side too faint to cover 60 % of
    it, as a dark wall on a dark floor at night): the best frame of sides covered at least
    a third that holds where the mouse was seen. Its sides' coverage, and so its
    confidence, stays low."""
    a_lines = sorted(meas_a, key=lambda m: m.line.rho)
    b_lines = sorted(meas_b, key=lambda m: m.line.rho)
    if len(a_lines) < 2 or len(b_lines) < 2:
        return []
    found = sorted(_covered_quads(a_lines, b_lines, 1, shape, 0.35), key=lambda f: -f[0])
    clean, loose = _distinct_quads(found, a_lines, b_lines)
    holding = [q for q in clean + loose if _mouse_outside([q], mouse) <= 0.02]
    if not holding:
        return []
    return [max(holding, key=lambda q: _quad_score(q, strict=True))]


@dataclass(frozen=True)
class _MousePositions:
    """Where the mouse was seen in the sampled frames (None: too few sightings to use)."""

    visited: np.ndarray | None  # uint8 0/1 per pixel
    coords: tuple[np.ndarray, np.ndarray] | None  # x, y of the visited pixels
    seen: int  # frames in which the mouse was found
    notes: tuple[str, ...]
    sampled: int = 0  # frames looked at


def _mouse_positions(frames: np.ndarray | None, background: np.ndarray) -> _MousePositions:
    visited = None
    seen = 0
    notes = []
    if frames is not None and len(frames) >= 3:
        visited, seen = visited_map(frames, background)
        if seen < 5:
            notes.append(f"the mouse was found in only {seen} of {len(frames)} sampled frames; "
                         "its positions were not used")
            visited = None
        else:
            notes.append(f"the mouse was found in {seen} of {len(frames)} sampled frames")
    coords = None
    if visited is not None:
        vy, vx = np.nonzero(visited)
        coords = (vx.astype(float), vy.astype(float))
    sampled = 0 if frames is None else len(frames)
    return _MousePositions(visited, coords, seen, tuple(notes), sampled)


def _wall_line_families(grad: _Gradient, edges) -> tuple[list[_Measured], list[_Measured]]:
    """The measured straight lines along the two wall directions (at right angles)."""
    xs, ys, angle, mag = edges
    if len(xs):
        h, w = grad.gx.shape
        theta0 = _dominant_angle(angle, mag)
        raw = _hough(xs, ys, angle, math.hypot(w, h), min_votes=0.1 * min(h, w), max_lines=80)
        lines = [_refine(ln, xs, ys, angle) for ln in raw]
        fam_a, fam_b = _families(lines, theta0)
    else:
        fam_a, fam_b = [], []
    meas_a = [m for m in (_measure(grad, ln) for ln in fam_a) if m is not None]
    meas_b = [m for m in (_measure(grad, ln) for ln in fam_b) if m is not None]
    return meas_a, meas_b


def _template_arena(name: str, w: int, h: int, k: int, n_arenas: int,
                    taken: list[Polygon]) -> ProposedArena:
    """A box whose outline was not found: a rectangle to edit, in a free place (added to
    ``taken``), with one chamber."""
    polygon = _template_polygon(w, h, k, n_arenas, taken)
    taken.append(Polygon(polygon))
    outline = Finding(f"{name} outline", 0.0, "NOT FOUND: no four straight edges "
                      "enclosing a box; the outline is a template rectangle to edit")
    chambers = (("chamber_1", _chambers_for(Polygon(polygon), [])[0]),)
    return ProposedArena(name, polygon, (), chambers, outline, False)


@dataclass(frozen=True)
class _Outline:
    """A box's floor outline as proposed, with the evidence for it."""

    polygon: tuple[Point, ...]  # clockwise from the top-left corner, rounded
    finding: Finding
    wall_px: float | None  # the width of the wall band outside it, where one was seen


def _fit_outline(grad: _Gradient, quad: _Quad, families: tuple[list[_Measured], list[_Measured]],
                 mouse: _MousePositions, name: str) -> _Outline:
    """Each side of the outer frame moved in to the floor's edge and refitted to it."""
    choices = []
    for s in range(4):
        family = families[0] if s in (0, 2) else families[1]
        choices.append(_floor_side(grad, quad, s, family, mouse.visited, mouse.coords))
    choices = [_like_opposite(grad, quad, s, families[s % 2], choices) for s in range(4)]
    sides = [c.line for c in choices]
    corners = _corners(*sides)
    refined = []
    for s in range(4):
        p, q = corners[(s - 1) % 4], corners[s]
        fit = _refit(grad, p, q, sides[s].normal)
        refined.append(_line_through(*fit) if fit is not None else sides[s])
    refined = [_aligned(r, sides[s].theta) for s, r in enumerate(refined)]
    final = _corners(*refined)
    if final is None or not Polygon(final).is_valid or (
            Polygon(final).area < 0.5 * Polygon(corners).area):
        final = corners
    coverage = tuple(
        _profile(grad, final[(s - 1) % 4], final[s], refined[s].normal).coverage(0.05, 0.95)
        for s in range(4)
    )
    polygon = _clockwise_from_top_left([_rounded(c) for c in final])
    bands = [c.band_px for c in choices if c.how in ('band', 'mouse', 'opposite')
             and c.band_px > 0]
    return _Outline(polygon, _outline_finding(name, quad, choices, coverage, mouse.seen),
                    float(np.median(bands)) if bands else None)


#: Found in fewer of the sampled frames than this share, the mouse may have spent the rest where
#: it cannot be seen (a floor it hardly differs from, as at night) and the outline may
#: stop short of that floor: its confidence is held below high.
_MOUSE_SEEN_SHARE = 0.9  # boxes where it is seen well: 0.98-1.0 of the frames


def _doubt_if_mouse_missing(outline: _Outline, mouse: _MousePositions) -> _Outline:
    """The outline's confidence held at medium when the mouse was missing from many of the
    sampled frames (it may have been on floor beyond the outline)."""
    if not mouse.sampled or mouse.seen >= _MOUSE_SEEN_SHARE * mouse.sampled:
        return outline
    f = outline.finding
    evidence = (f"{f.evidence}; but the mouse was not found in {mouse.sampled - mouse.seen} "
                f"of {mouse.sampled} sampled frames: check that the outline covers the "
                "whole floor (a chamber whose floor the mouse hardly differs from may be "
                "left out)")
    finding = Finding(f.element, min(f.confidence, 0.6), evidence)
    return _Outline(outline.polygon, finding, outline.wall_px)


def _propose_doors(grad: _Gradient, edges, outline: _Outline, mouse: _MousePositions,
                   name: str, n_chambers: int | None) -> list[ProposedDoor]:
    """The best dividing walls inside the outline as door lines, left to right."""
    poly = Polygon(outline.polygon)
    walls = _walls(poly, _door_edges(grad, poly, edges, mouse.visited, outline.wall_px),
                   mouse.visited is not None)
    walls = sorted(walls + _step_walls(grad.raw, poly, mouse.visited),
                   key=lambda wl: -wl.confidence)
    picked = _pick_walls(poly, walls, n_chambers)
    doors = []
    for j, wall in enumerate(sorted(picked, key=lambda wl: _sort_key(wl, poly))):
        finding = Finding(f"{name} door_{j + 1}", wall.confidence, wall.evidence)
        doors.append(ProposedDoor(
            f"door_{j + 1}", _top_first(wall.p, wall.q),
            _top_first(*wall.opening), finding))
    return doors


def _top_first(p, q) -> tuple[Point, Point]:
    """A segment's ends, the upper one (or, level, the left one) first."""
    a, b = _rounded(p), _rounded(q)
    return (a, b) if (a[1], a[0]) <= (b[1], b[0]) else (b, a)


def _clockwise_from_top_left(points: list[Point]) -> tuple[Point, ...]:
    """Corners starting at the top-left one, going right along the top (as seen on screen)."""
    pts = np.asarray(points, dtype=float)
    x, y = pts[:, 0], pts[:, 1]
    if float(x @ np.roll(y, -1) - y @ np.roll(x, -1)) < 0:  # image y points down
        points = points[::-1]
        pts = pts[::-1]
    start = int(np.argmin(pts[:, 0] + pts[:, 1]))
    return tuple(points[start:] + points[:start])


def _sort_key(wall: _Wall, polygon: Polygon) -> float:
    """Doors ordered left to right (or top to bottom for walls across the box's height)."""
    mid = 0.5 * (wall.p + wall.q)
    d = wall.q - wall.p
    return float(mid[0]) if abs(d[1]) >= abs(d[0]) else float(mid[1])


# --------------------------------------------------------------------------------------
# the config


def proposal_to_config(proposal: Proposal) -> dict:
    """The proposal as a config mapping: ``frame_size`` (the image it was found on) and
    ``arenas``; every setting left at its default."""
    arenas = []
    for a in proposal.arenas:
        arenas.append({
            "name": a.name,
            "polygon": [list(p) for p in a.polygon],
            "doors": [{"name": d.name, "line": [list(p) for p in d.line]} for d in a.doors],
            "chambers": [{"name": n, "point": list(p)} for n, p in a.chambers],
            "masks": [],
        })
    return {"frame_size": [int(proposal.width), int(proposal.height)], "arenas": arenas}


#: One comment per settings key, for the commented config that ``init`` writes.
_SETTING_COMMENTS = {
    "background": "how the empty-box image is made",
    "background.samples": "frames sampled evenly across the video; their median is the "
                          "empty box",
    "background.follow_lighting": "follow the lights (drift, lights switched on or off)",
    "background.remove_resting_mouse": "rebuild the empty box where the mouse rests a lot",
    "detection": "how the mouse is found",
    "detection.animal": "dark (dark mouse, lighter floor), light (light mouse, darker "
                        "floor) or auto",
    "detection.threshold": "grey levels a pixel must differ from the empty box; auto = from "
                           "the video's noise",
    "detection.min_area_px": "smallest blob that counts as the mouse, px; auto = 0.05 % of "
                             "the arena",
    "detection.max_area_px": "largest blob, px; auto = 25 % of the arena",
    "detection.opening_px": "removes the tail and specks smaller than this, px",
    "detection.blur_px": "blur before comparing with the empty box, px (0 = off)",
    "chambers": "chamber assignment",
    "chambers.hysteresis_px": "the mouse changes chamber only this far past a door line, px",
    "chambers.backdate_crossings": "a confirmed crossing starts where the line was crossed",
    "video": "time base",
    "video.gap_factor": "a frame interval this many times the usual one is a gap (unknown "
                        "time)",
    "video.checkpoint_s": "the track is saved every this many seconds of video",
    "summary": "results",
    "summary.min_step_px": "smaller moves do not add to the distance travelled, px",
    "summary.bin_s": "length of time bins for a binned summary, s (null = none)",
    "qc": "when a video is flagged for review",
    "qc.max_speed_cm_s": "faster moves are jumps, not a mouse, cm/s",
    "qc.max_undetected": "share of frames without a mouse",
    "qc.max_multi_blob": "share of frames with competing blobs",
    "qc.max_area_outlier": "share of frames with a blob of unusual size",
    "qc.max_jumps_per_min": "jumps per minute of recording",
    "qc.max_unobserved": "share of the recording lost in gaps",
    "qc.min_read_fraction": "share of the container's nominal length that must be read",
}


def _yaml_value(v) -> str:
    import yaml

    return yaml.safe_dump(v, default_flow_style=True, width=10_000).strip().removesuffix(
        "\n...").strip()


def _fmt_point(p) -> str:
    return f"[{p[0]:g}, {p[1]:g}]"


def _fmt_points(pts) -> str:
    return "[" + ", ".join(_fmt_point(p) for p in pts) + "]"


def _comment_lines(text: str, indent: str, width: int = 92) -> list[str]:
    import textwrap

    return [f"{indent}# {line}" for line in textwrap.wrap(text, width - len(indent) - 2)]


def _template_doors(polygon: tuple[Point, ...], n_chambers: int) -> list[tuple[Point, Point]]:
    """Evenly spaced lines across the outline's longer direction: an example to edit."""
    pts = np.asarray(polygon, dtype=float)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    lines = []
    for k in range(1, n_chambers):
        if x1 - x0 >= y1 - y0:
            x = x0 + k * (x1 - x0) / n_chambers
            lines.append(((round(x, 1), round(y0, 1)), (round(x, 1), round(y1, 1))))
        else:
            y = y0 + k * (y1 - y0) / n_chambers
            lines.append(((round(x0, 1), round(y, 1)), (round(x1, 1), round(y, 1))))
    return lines


def proposal_to_yaml(proposal: Proposal, *, video: str = "", preview: str = "",
                     version: str = "") -> str:
    """A commented YAML config of the proposal that passes ``check-config`` as written.

    Comments say what each key means, what init found with its confidence, and what to check;
    where doors were not found, a commented template shows how to add them.
    """
    from ..config.settings import config_to_dict, parse_config

    config = parse_config(proposal_to_config(proposal), source="<proposal>")
    out = _yaml_header(proposal, video, preview, version)
    out += ["", "# The video frame this was drawn on: track refuses a video of another size.",
            f"frame_size: [{int(proposal.width)}, {int(proposal.height)}]", "", "arenas:"]
    for arena in proposal.arenas:
        out += _yaml_arena(arena, proposal.requested_chambers)
    out += [
        "",
        "# The settings below are the defaults; change one only when the preview or the results",
        "# show a need.",
    ]
    out += _yaml_settings(config_to_dict(config))
    return "\n".join(out) + "\n"


def _yaml_header(proposal: Proposal, video: str, preview: str, version: str) -> list[str]:
    """Where the config comes from, what to check, and what init found."""
    out: list[str] = []
    c = out.append
    c(f"# cpp-tracker config proposed by `cpp-tracker init`{' ' + version if version else ''}"
      f"{' from ' + video if video else ''} ({proposal.width}x{proposal.height} px).")
    c("#")
    c("# CHECK IT BEFORE YOU TRACK" + (f": open {preview} and check that" if preview else
                                       ": draw it on the video and check that"))
    c("#   - the outline follows the edge of the floor (the inside of the walls) all round;")
    c("#   - each door line lies along its dividing wall, from wall to wall;")
    c("#   - every chamber has its own point, and the names are yours (rename chamber_1 ...).")
    c("# To correct it by clicking:  cpp-tracker draw VIDEO --config THIS_FILE --out draw.html")
    c("# Coordinates are video pixels: x = column, y = row, from the top-left corner.")
    c("#")
    c("# What init found (confidence 0-1; high >= 0.75, medium >= 0.5, low: check it first):")
    for f in proposal.findings:
        for k, line in enumerate(_comment_lines(
                f"{f.element}: {f.level} ({f.confidence:.2f}): {f.evidence}", "", 90)):
            c("#   " + line[2:] if k == 0 else "#       " + line[2:])
    if not proposal.doors_found:
        c("#   NO DOORS FOUND: no dividing wall with an opening, nor a straight change of "
          "floor, was seen;")
        c("#   this file has one chamber per box. If the chambers differ only by a floor that "
          "looks the")
        c("#   same here, add the door line where they meet (see the template below).")
    for note in proposal.notes:
        c(f"#   note: {note}")
    return out


def _yaml_arena(arena: ProposedArena, requested_chambers: int | None) -> list[str]:
    """One box's entry of ``arenas``, commented."""
    out: list[str] = []
    c = out.append
    c(f"  - name: {arena.name}  # a unique name for this box; it is in every result")
    c("    # animal_id: m01  # optional: the animal in this box, carried into summary.csv")
    c("    # The floor's outline: its corners in order around the box, on the inner edge")
    c("    # of the walls (where the mouse can walk).")
    if not arena.outline_found:
        c("    # OUTLINE NOT FOUND: this is a template rectangle; replace it with the "
          "floor's corners.")
    else:
        c(f"    # Found with {arena.outline.level} confidence "
          f"({arena.outline.confidence:.2f}).")
    c(f"    polygon: {_fmt_points(arena.polygon)}")
    c("    # Door lines: each along a dividing wall, from wall to wall (its opening, the door,")
    c("    # lies on it). The outline is cut along these lines into the chambers.")
    out += _yaml_doors(arena, requested_chambers)
    c("    # One point inside each piece of the outline, and that chamber's name. Rename")
    c("    # them (e.g. paired / unpaired / neutral): the names are in every result.")
    c("    chambers:")
    for name, point in arena.chambers:
        c(f"      - name: {name}")
        c(f"        point: {_fmt_point(point)}")
    c("    # Polygons inside the box to ignore (a water bottle, a reflection, a cable):")
    c("    # masks: [[[x, y], [x, y], [x, y]]]")
    c("    masks: []")
    c("    # For distances in cm: px_per_cm: 5.0, or scale: {points: [[x, y], [x, y]], "
      "distance_cm: 30}")
    return out


def _yaml_doors(arena: ProposedArena, requested_chambers: int | None) -> list[str]:
    """The box's doors with their confidence; without any, a commented template to edit."""
    out: list[str] = []
    c = out.append
    if arena.doors:
        c("    doors:")
        for d in arena.doors:
            opening = (f"; opening {_fmt_point(d.opening[0])}-{_fmt_point(d.opening[1])}"
                       if d.opening else "")
            c(f"      - name: {d.name}  # {d.finding.level} confidence "
              f"({d.finding.confidence:.2f}){opening}")
            c(f"        line: {_fmt_points(d.line)}")
        return out
    n = requested_chambers or 2
    c("    # NO DOORS FOUND. If this box has doors, add one line per dividing wall and one")
    c("    # chamber per piece, e.g. (a TEMPLATE, not measured: move it onto your wall):")
    c("    # doors:")
    for k, line in enumerate(_template_doors(arena.polygon, n)):
        c(f"    #   - name: door_{k + 1}")
        c(f"    #     line: {_fmt_points(line)}")
    c("    doors: []")
    return out


def _yaml_settings(resolved: dict) -> list[str]:
    """Every settings section of the resolved config (its defaults), commented."""
    out: list[str] = []
    c = out.append
    for section, values in resolved.items():
        if section in ("arenas", "frame_size"):  # written above the arenas
            continue
        if not isinstance(values, dict):
            c(f"{section}: {_yaml_value(values)}")
            continue
        c(f"{section}:  # {_SETTING_COMMENTS.get(section, '')}".rstrip(" #"))
        for key, value in values.items():
            note = _SETTING_COMMENTS.get(f"{section}.{key}")
            c(f"  {key}: {_yaml_value(value)}" + (f"  # {note}" if note else ""))
    return out
