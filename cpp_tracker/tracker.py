"""Frame - background -> blob -> centroid, one arena at a time; the per-frame track table.

For each arena the frame is cropped to the arena's bounding box, blurred a little, compared
with the background (the sign of the difference set by the mouse's colour, or absolute),
thresholded, restricted to the arena polygon minus its masks, and opened with a small
elliptical kernel that removes the tail and pixel noise. The largest remaining blob whose
area lies within the limits is the mouse; its centroid (x = column, y = row, pixels, origin
top-left) and area are recorded. With no such blob, ``x`` and ``y`` are NaN and
``detected`` is False: never a made-up coordinate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd

from .config import ArenaConfig, DetectionSettings

__all__ = [
    "TRACK_COLUMNS",
    "ArenaDetector",
    "make_detector",
    "detect_chunk",
    "empty_track",
]

#: Columns of the per-frame track table, in order, with their dtypes.
TRACK_COLUMNS: dict[str, str] = {
    "frame": "int64",  # 0-based decode index in the video
    "time_s": "float64",  # presentation time of the frame
    "arena": "string",
    "x": "float64",  # centroid column, px (NaN when not detected)
    "y": "float64",  # centroid row, px (NaN when not detected)
    "area_px": "float64",  # blob area, px (NaN when not detected)
    "detected": "bool",
    "n_blobs": "int16",  # blobs within the size limits and >= 1/4 of the chosen one
    "chamber": "string",  # chamber name, or 'unknown'
    "light_gain": "float32",  # brightness of the arena relative to the background (1 = same)
    "position_chamber": "string",  # the piece the centroid lies in, no hysteresis, or 'unknown'
}

#: Track columns computed after detection, from the geometry (recomputed by reprocess).
ASSIGNED_COLUMNS = ("chamber", "position_chamber")


def empty_track() -> pd.DataFrame:
    """A track table with no rows and the right columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TRACK_COLUMNS.items()})


def _odd(n: int) -> int:
    return n if n % 2 == 1 else n + 1


@dataclass(frozen=True)
class ArenaDetector:
    """Everything needed to find the mouse in one arena, computed once per video."""

    name: str
    x0: int
    y0: int
    x1: int
    y1: int
    mask: np.ndarray  # uint8 0/255, crop-sized: arena polygon minus masks
    background: np.ndarray  # uint8, crop-sized, blurred like the frames
    polarity: str  # 'dark', 'light' or 'both'
    threshold: float
    min_area_px: float
    max_area_px: float
    blur_px: int
    kernel: np.ndarray | None
    noise_sigma: float
    # following the lighting (see cpp_tracker.lighting): where it is measured, and the floor
    follow_lighting: bool = False
    light_px: np.ndarray | None = None  # (2, k) rows and columns (frame) of measuring pixels
    light_ref: np.ndarray | None = None  # background values there, float32
    min_threshold: float = 0.0  # the threshold is scaled with the gain, down to this
    _lit: dict = field(default_factory=dict, repr=False, compare=False)

    def describe(self) -> dict:
        """Values decided for this video (for run.json)."""
        return {
            "arena": self.name,
            "crop": [self.x0, self.y0, self.x1, self.y1],
            "polarity": self.polarity,
            "threshold": round(float(self.threshold), 2),
            "min_area_px": round(float(self.min_area_px), 1),
            "max_area_px": round(float(self.max_area_px), 1),
            "noise_sigma": round(float(self.noise_sigma), 3),
        }

    def _blur(self, crop: np.ndarray) -> np.ndarray:
        if self.blur_px > 1:
            return cv2.GaussianBlur(crop, (self.blur_px, self.blur_px), 0)
        return crop

    def light_gain(self, frame: np.ndarray) -> float:
        """Brightness of the arena in ``frame`` relative to the background (1.0 when the
        lighting is not followed)."""
        if not self.follow_lighting or self.light_px is None:
            return 1.0
        values = frame[self.light_px[0], self.light_px[1]]
        return float(np.median(values / self.light_ref))

    def lit(self, gain: float) -> tuple[np.ndarray, float]:
        """Background and threshold for a frame of brightness ``gain`` (cached per 1 %)."""
        key = int(round(gain * 100))
        if key == 100 or key <= 0:
            return self.background, self.threshold
        hit = self._lit.get(key)
        if hit is None:
            if len(self._lit) > 16:
                self._lit.clear()
            g = key / 100.0
            bg = cv2.convertScaleAbs(self.background, alpha=g)
            hit = (bg, max(self.threshold * g, min(self.threshold, self.min_threshold)))
            self._lit[key] = hit
        return hit

    def difference(self, frame: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """The signed-or-absolute difference to the background inside the crop (uint8)."""
        crop = self._blur(frame[self.y0 : self.y1, self.x0 : self.x1])
        background = self.lit(gain)[0]
        if self.polarity == "dark":
            return cv2.subtract(background, crop)
        if self.polarity == "light":
            return cv2.subtract(crop, background)
        return cv2.absdiff(crop, background)

    def foreground(self, frame: np.ndarray, gain: float = 1.0) -> np.ndarray:
        """Binary mask (uint8 0/255) of candidate mouse pixels inside the arena."""
        diff = self.difference(frame, gain)
        _, binary = cv2.threshold(diff, self.lit(gain)[1], 255, cv2.THRESH_BINARY)
        binary = cv2.bitwise_and(binary, self.mask)
        if self.kernel is not None:
            binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, self.kernel)
        return binary

    def detect(self, frame: np.ndarray, gain: float = 1.0) -> tuple[float, float, float, int]:
        """(x, y, area_px, n_blobs) of the mouse in a full frame; NaNs when not found.

        ``gain``: the frame's brightness relative to the background (:meth:`light_gain`).
        """
        binary = self.foreground(frame, gain)
        n, _, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
        if n <= 1:
            return np.nan, np.nan, np.nan, 0
        areas = stats[1:, cv2.CC_STAT_AREA]
        ok = (areas >= self.min_area_px) & (areas <= self.max_area_px)
        if not ok.any():
            return np.nan, np.nan, np.nan, 0
        k = int(np.argmax(np.where(ok, areas, -1)))
        cx, cy = centroids[k + 1]
        # competitors: blobs at least a quarter the size of the chosen one (a tail or a paw
        # split off the mouse is not a second candidate)
        n_ok = int((ok & (areas >= 0.25 * areas[k])).sum())
        return float(cx) + self.x0, float(cy) + self.y0, float(areas[k]), n_ok


def _arena_mask(arena: ArenaConfig, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=np.uint8)
    # sub-pixel accurate polygon fill: 8x fixed point
    shift = 3

    def pts(poly) -> np.ndarray:
        a = (np.asarray(poly, dtype=np.float64) - [x0, y0]) * (1 << shift)
        return a.round().astype(np.int32).reshape(-1, 1, 2)

    cv2.fillPoly(mask, [pts(arena.polygon)], 255, lineType=cv2.LINE_8, shift=shift)
    for m in arena.masks:
        cv2.fillPoly(mask, [pts(m)], 0, lineType=cv2.LINE_8, shift=shift)
    return mask


def make_detector(
    arena: ArenaConfig,
    settings: DetectionSettings,
    background: np.ndarray,
    samples: np.ndarray,
    *,
    follow_lighting: bool = False,
) -> ArenaDetector:
    """Prepare detection for one arena: crop, mask, blurred background, automatic limits.

    ``samples`` (n, h, w) are frames spread over the video; they calibrate what is left
    automatic: the polarity (``animal: auto``), the threshold (from the noise of the
    difference images and the mouse's contrast) and the area limits. With
    ``follow_lighting`` the detector measures each frame's brightness (:meth:`light_gain`)
    and scales the background and threshold to it; ``samples`` should then be at the
    background's lighting (:func:`cpp_tracker.background.estimate_background`).
    """
    h, w = background.shape
    xs = [p[0] for p in arena.polygon]
    ys = [p[1] for p in arena.polygon]
    x0 = max(0, int(np.floor(min(xs))))
    y0 = max(0, int(np.floor(min(ys))))
    x1 = min(w, int(np.ceil(max(xs))) + 1)
    y1 = min(h, int(np.ceil(max(ys))) + 1)
    mask = _arena_mask(arena, x0, y0, x1 - x0, y1 - y0)
    blur = _odd(settings.blur_px) if settings.blur_px > 1 else 0
    bg = background[y0:y1, x0:x1]
    if blur:
        bg = cv2.GaussianBlur(bg, (blur, blur), 0)
    inside = mask > 0
    arena_area = float(inside.sum())

    crops = samples[:, y0:y1, x0:x1]
    if blur:
        crops = np.stack([cv2.GaussianBlur(c, (blur, blur), 0) for c in crops])
    signed = crops.astype(np.int16) - bg.astype(np.int16)  # (n, h, w)
    vals = signed[:, inside]  # (n, pixels)
    med = np.median(vals)
    sigma = float(1.4826 * np.median(np.abs(vals - med))) if vals.size else 1.0
    sigma = max(sigma, 0.5)
    # contrast of the mouse: the extreme tail (top 0.1 %) of each sample's differences; a
    # mouse covers more than 0.1 % of its arena, so this percentile lies on the mouse
    q = 99.9
    dark_c = float(np.median(np.percentile(-vals, q, axis=1))) if vals.size else 0.0
    light_c = float(np.median(np.percentile(vals, q, axis=1))) if vals.size else 0.0

    polarity = {"dark": "dark", "light": "light"}.get(settings.animal, "both")
    if settings.animal == "auto":
        if dark_c > 1.5 * light_c and dark_c > 4 * sigma:
            polarity = "dark"
        elif light_c > 1.5 * dark_c and light_c > 4 * sigma:
            polarity = "light"
    contrast = {"dark": dark_c, "light": light_c}.get(polarity, max(dark_c, light_c))

    if settings.threshold is not None:
        threshold = float(settings.threshold)
    else:
        # A fixed floor far below a high-contrast mouse keeps the blurred base of the tail,
        # wider than the opening removes, and pulls the centroid 2-3 px tailwards: the
        # threshold also scales with the mouse's contrast.
        threshold = max(6.0 * sigma, 10.0, 0.15 * contrast)
        if contrast > 0:
            threshold = min(threshold, 0.5 * contrast)
        threshold = max(threshold, 3.0 * sigma + 3.0)

    min_area = settings.min_area_px if settings.min_area_px else max(10.0, 0.0005 * arena_area)
    max_area = (
        settings.max_area_px if settings.max_area_px else max(2 * min_area, 0.25 * arena_area)
    )
    k = int(settings.opening_px)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)) if k >= 2 else None
    light_px, light_ref = _light_pixels(background[y0:y1, x0:x1], inside, x0, y0)
    return ArenaDetector(
        name=arena.name,
        x0=x0,
        y0=y0,
        x1=x1,
        y1=y1,
        mask=mask,
        background=np.ascontiguousarray(bg),
        polarity=polarity,
        threshold=threshold,
        min_area_px=float(min_area),
        max_area_px=float(max_area),
        blur_px=blur,
        kernel=kernel,
        noise_sigma=sigma,
        follow_lighting=bool(follow_lighting) and light_px is not None,
        light_px=light_px,
        light_ref=light_ref,
        min_threshold=3.0 * sigma + 3.0,
    )


def _light_pixels(
    background: np.ndarray, inside: np.ndarray, x0: int, y0: int, max_pixels: int = 1000
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A regular grid of about ``max_pixels`` floor pixels of the crop at (x0, y0) on which
    the brightness of each frame is measured: their (rows, cols) in the frame, and their
    background values."""
    usable = inside & (background >= 12)
    count = int(usable.sum())
    if count < 50:
        return None, None
    step = max(1, int(round(np.sqrt(count / max_pixels))))
    grid = np.zeros_like(usable)
    grid[::step, ::step] = True
    rows, cols = np.nonzero(usable & grid)
    ref = background[rows, cols].astype(np.float32)
    return np.stack([rows + y0, cols + x0]).astype(np.intp), ref


def detect_chunk(
    frames: np.ndarray, detector: ArenaDetector
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run ``detector`` on every frame of a chunk.

    Returns preallocated arrays ``x, y, area_px`` (float64, NaN when not found),
    ``n_blobs`` (int16) and ``light_gain`` (float32).
    """
    n = len(frames)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    area = np.full(n, np.nan)
    blobs = np.zeros(n, dtype=np.int16)
    gains = np.ones(n, dtype=np.float32)
    for i in range(n):
        g = detector.light_gain(frames[i])
        gains[i] = g
        x[i], y[i], area[i], blobs[i] = detector.detect(frames[i], g)
    return x, y, area, blobs, gains
