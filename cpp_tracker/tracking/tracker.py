"""Frame - background -> blob -> centroid, one arena at a time; the per-frame track table.

For each arena the frame is cropped to the arena's bounding box, blurred a little, compared
with the background (the sign of the difference set by the mouse's colour, or absolute),
thresholded, restricted to the arena polygon minus its masks, and opened with a small
elliptical kernel that removes the tail and pixel noise. The largest remaining blob whose
area lies within the limits is the mouse; its centroid (x = column, y = row, pixels, origin
top-left) and area are recorded. With no such blob, ``x`` and ``y`` are NaN and
``detected`` is False: never a made-up coordinate.

:meth:`ArenaDetector.foreground` spells this out step by step; :meth:`ArenaDetector.detect`
computes the same result faster:

- difference, threshold and arena mask are one comparison with a precomputed per-pixel
  limit (``frame < background - threshold`` for a dark mouse), and blobs are labelled only
  inside the bounding box of the foreground, not over the whole arena;
- with ``scale`` 2 or 4 (chosen automatically when the mouse covers at least
  :data:`DOWNSCALE_MIN_AREA_PX` pixels, four times that for 4; see
  ``detection.downscale``), candidate blobs are found on a half- or quarter-resolution copy
  of the arena (block averages, which also smooth the noise), and each candidate is then
  measured at full resolution with the full-resolution steps in a window around it. The
  window is widened until the blob lies clear of its edge, so the centroid and area are
  those the full-resolution steps give for that blob. Only which blobs are candidates, and
  ``n_blobs``, come from the coarse copy.

When the lighting is followed, the background and threshold are scaled to each frame's
brightness (:meth:`ArenaDetector.lit`); the per-pixel limits are cached with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pyarrow as pa

from ..config.settings import ArenaConfig, DetectionSettings
from .background import IntHistogram

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TRACK_COLUMNS",
    "ASSIGNED_COLUMNS",
    "DOWNSCALE_MIN_AREA_PX",
    "OPENING_BODY_FRACTION",
    "ArenaDetector",
    "auto_opening_px",
    "threshold_floor",
    "low_contrast_blur_px",
    "make_detector",
    "arena_mask",
    "chamber_pieces",
    "door_band",
    "pieces_signature",
    "share_columns",
    "SHARES_METADATA_KEY",
    "SHARE_PREFIX",
    "SHARE_REACH_AREAS",
    "detect_chunk",
    "track_frames",
    "track_rows",
    "rows_from_chunks",
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

#: After the columns above, ``share_0`` .. ``share_{k-1}`` (float32; k: the most chambers of
#: any arena): the share of the blob's area in each chamber of its arena, in config order
#: (NaN when not detected, or beyond the arena's chambers), for ``chambers.rule:
#: body_fraction``. They follow the door lines the video was tracked with, whose
#: :func:`pieces_signature` the track file's metadata holds under this key.
SHARES_METADATA_KEY = "cpp_tracker.shares_pieces"
SHARE_PREFIX = "share_"


def share_columns(k: int) -> list[str]:
    """The names of the share columns of a track whose arenas have at most ``k`` chambers."""
    return [f"{SHARE_PREFIX}{j}" for j in range(k)]


#: With ``detection.downscale: auto``, blobs are searched at half resolution when the
#: mouse's median area in the background samples is at least this, at quarter resolution
#: from four times this: the mouse keeps at least 100 coarse pixels.
DOWNSCALE_MIN_AREA_PX = 400.0


def empty_track() -> pd.DataFrame:
    """A track table with no rows and the right columns and dtypes."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TRACK_COLUMNS.items()})


def _odd(n: int) -> int:
    return n if n % 2 == 1 else n + 1


_NOT_FOUND = (np.nan, np.nan, np.nan, 0)


def _label(binary: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Connected components (8-connected) of ``binary``: (count incl. background, stats,
    centroids, labels). Grana's block-based algorithm, 16-bit labels where they cannot
    overflow: on small images about twice as fast as the default; the statistics are the
    same."""
    ltype = cv2.CV_16U if binary.size < 65535 else cv2.CV_32S
    n, labels, stats, centroids = cv2.connectedComponentsWithStatsWithAlgorithm(
        binary, 8, ltype, cv2.CCL_BBDT
    )
    return n, stats, centroids, labels


def _largest(rows: list, lo: float, hi: float) -> tuple[int, int]:
    """(index of the largest blob with lo <= area <= hi, or -1; n_blobs).

    ``rows`` are the statistics rows (left, top, width, height, area) without the
    background. Equal areas go to the blob whose box starts highest, then leftmost, so the
    choice does not depend on the labelling order. ``n_blobs`` counts the competitors:
    blobs within the limits and at least a quarter the size of the chosen one (a tail or a
    paw split off the mouse is not a second candidate).
    """
    best, key = -1, None
    for k, (left, top, _, _, area) in enumerate(rows):
        if lo <= area <= hi:
            cand = (-area, top, left)
            if key is None or cand < key:
                best, key = k, cand
    if best < 0:
        return -1, 0
    floor = 0.25 * rows[best][4]
    return best, sum(1 for r in rows if lo <= r[4] <= hi and r[4] >= floor)


# The chosen blob as labelled, kept by the detection paths for detect_with_shares: a tuple
# (labels, k, x, y, stats): ``labels == k`` in the label image at (x, y) in the crop,
# ``stats`` its (left, top, width, height, area) in that image. (A tuple: this is made for
# every frame, and a dataclass costs a few microseconds more.)
_Blob = tuple


@dataclass(frozen=True)
class _Coarse:
    """The half-resolution copy of an arena's detection inputs."""

    factor: int  # 2 or 4: full-resolution pixels per coarse pixel, along x and y
    width: int  # of the coarse crop; it covers factor * width full-resolution columns
    height: int
    limit: np.ndarray  # uint8 per-pixel comparison limit (see ArenaDetector.limit)
    background: np.ndarray | None  # uint8, only for polarity 'both'
    mask: np.ndarray | None  # uint8 0/255, only for polarity 'both'
    raw_background: np.ndarray  # uint8, the coarse background (scaled for light gains)
    illumination: np.ndarray | None  # float32, the coarse ArenaDetector.illumination
    inside: np.ndarray  # uint8 0/255, coarse pixels with any pixel in the arena
    kernel: np.ndarray | None
    min_area_px: float  # half-resolution areas
    max_area_px: float
    open_above_px: float  # open before labelling when the foreground's box is larger


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
    # following the lighting (see cpp_tracker.analysis.lighting):
    # where it is measured, and the floor
    follow_lighting: bool = False
    light_px: np.ndarray | None = None  # (2, k) rows and columns (frame) of measuring pixels
    light_ref: np.ndarray | None = None  # background values there, float32
    min_threshold: float = 0.0  # the threshold is scaled with the gain, down to this
    _lit: dict = field(default_factory=dict, repr=False, compare=False)
    #: 1: blobs are found at full resolution; 2 or 4: coarser, then measured at full
    scale: int = 1
    #: median area of the mouse in the background samples (None: not found in any)
    mouse_area_px: float | None = None
    #: median body width of the mouse in the background samples, px: twice the largest
    #: distance from a blob pixel to the blob's edge (None: not found in any)
    body_width_px: float | None = None
    #: per-pixel limit: 'dark' -> foreground where frame < limit; 'light' -> frame > limit;
    #: masked-out pixels get a limit no pixel passes. None for 'both'.
    limit: np.ndarray | None = field(default=None, repr=False)
    coarse: _Coarse | None = field(default=None, repr=False)
    #: the background update decided for this video (``detection.background_update``;
    #: see :mod:`cpp_tracker.tracking.background_update`), a dict for run.json, or None
    update: dict | None = None
    #: the crop's background before blurring (what the coarse copy is made from)
    raw_background: np.ndarray | None = field(default=None, repr=False)
    #: the light falling off toward the corners (vignetting), per pixel of the crop, 1 at
    #: the arena's typical brightness and below it where the floor is dimmer; the mouse's
    #: contrast falls with it, and so does the threshold ('dark' and 'light' polarity),
    #: down to ``min_threshold``. None: even light (less than 15 % fall-off).
    illumination: np.ndarray | None = field(default=None, repr=False)
    #: the chamber of each pixel of the crop (:func:`chamber_pieces`; 255: outside), and
    #: the pixels next to another chamber's (bool): what :meth:`detect_with_shares` needs.
    #: None: no shares (a detector made without them).
    pieces: np.ndarray | None = field(default=None, repr=False)
    door_band: np.ndarray | None = field(default=None, repr=False)
    n_chambers: int = 0

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
            "mouse_area_px": None if self.mouse_area_px is None else round(self.mouse_area_px, 1),
            "scale": self.scale,
            "body_width_px": None if self.body_width_px is None else round(self.body_width_px, 1),
            "opening_px": 0 if self.kernel is None else int(self.kernel.shape[0]),
            "blur_px": int(self.blur_px),
            "background_update": self.update,
        }

    def with_background(self, blurred: np.ndarray, raw: np.ndarray) -> ArenaDetector:
        """This detector with another background of its crop (``blurred`` as the frames
        are, and ``raw``, unblurred, for the coarse copy); every other value kept."""
        limit = _comparison_limit(blurred, self.mask, self.polarity, self.threshold,
                                  self.illumination, self.min_threshold)
        coarse = self.coarse
        if coarse is not None:
            k = 0 if self.kernel is None else self.kernel.shape[0]
            coarse = _coarse_inputs(coarse.factor, raw, self.mask, self.polarity,
                                    self.threshold, k, self.min_area_px, self.max_area_px,
                                    self.mouse_area_px, self.illumination, self.min_threshold)
        return _replace(self, background=np.ascontiguousarray(blurred), raw_background=raw,
                        limit=limit, coarse=coarse, _lit={})

    # -- lighting ----------------------------------------------------------------------
    def light_gain(self, frame: np.ndarray) -> float:
        """Brightness of the arena in ``frame`` relative to the background (1.0 when the
        lighting is not followed)."""
        return float(self.light_gains(frame[np.newaxis])[0])

    def light_gains(self, frames: np.ndarray) -> np.ndarray:
        """:meth:`light_gain` of each frame of a stack (n, h, w), float64: the median over
        the measuring pixels of frame / background, for all frames at once (one gather and
        one partition per stack instead of per frame)."""
        n = len(frames)
        if not self.follow_lighting or self.light_px is None:
            return np.ones(n)
        key = ("flat", frames.shape[2])
        flat = self._lit.get(key)
        if flat is None:
            flat = self._lit[key] = self.light_px[0] * frames.shape[2] + self.light_px[1]
        ratios = frames.reshape(n, -1).take(flat, axis=1) / self.light_ref
        m = ratios.shape[1]
        k = m // 2
        if m % 2:
            return np.partition(ratios, k, axis=1)[:, k]
        part = np.partition(ratios, (k - 1, k), axis=1)
        return (part[:, k - 1] + part[:, k]) / 2.0

    def lit(self, gain: float) -> tuple[np.ndarray, float]:
        """Background and threshold for a frame of brightness ``gain`` (cached per 1 %)."""
        hit = self._lit_inputs(gain)
        return hit[0], hit[1]

    def _lit_inputs(self, gain: float) -> tuple:
        """(background, threshold, comparison limit, coarse limit, coarse background) for a
        frame of brightness ``gain``, cached per 1 % of gain."""
        key = int(round(gain * 100))
        if key == 100 or key <= 0:
            c = self.coarse
            return (self.background, self.threshold, self.limit,
                    None if c is None else c.limit, None if c is None else c.background)
        hit = self._lit.get(key)
        if hit is None:
            if len(self._lit) > 16:
                self._lit.clear()
            g = key / 100.0
            bg = cv2.convertScaleAbs(self.background, alpha=g)
            thr = max(self.threshold * g, min(self.threshold, self.min_threshold))
            limit = _comparison_limit(bg, self.mask, self.polarity, thr, self.illumination,
                                      self.min_threshold)
            c_limit = c_bg = None
            c = self.coarse
            if c is not None:
                c_bg = cv2.convertScaleAbs(c.raw_background, alpha=g)
                c_limit = _comparison_limit(c_bg, c.inside, self.polarity, thr,
                                            c.illumination, self.min_threshold)
            hit = (bg, thr, limit, c_limit, c_bg)
            self._lit[key] = hit
        return hit

    # -- the steps, spelled out (reference; detect() gives the same result faster) -------
    def _blur(self, crop: np.ndarray) -> np.ndarray:
        if self.blur_px > 1:
            return cv2.GaussianBlur(crop, (self.blur_px, self.blur_px), 0)
        return crop

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
        if self.illumination is not None and self.polarity != "both":
            # the threshold differs per pixel: the comparison limit holds it
            crop = self._blur(frame[self.y0 : self.y1, self.x0 : self.x1])
            cmp = cv2.CMP_LT if self.polarity == "dark" else cv2.CMP_GT
            binary = cv2.compare(crop, self._lit_inputs(gain)[2], cmp)
        else:
            diff = self.difference(frame, gain)
            _, binary = cv2.threshold(diff, self.lit(gain)[1], 255, cv2.THRESH_BINARY)
            binary = cv2.bitwise_and(binary, self.mask)
        if self.kernel is not None:
            binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, self.kernel)
        return binary

    def opened_foreground(self, frame: np.ndarray, gain: float = 1.0
                          ) -> tuple[int, int, np.ndarray]:
        """:meth:`foreground` computed as :meth:`detect` does at full resolution: (x, y,
        part) where ``part`` at (x, y) in the crop holds all of the foreground (zero
        elsewhere)."""
        full = slice(None)
        lit = self._lit_inputs(gain)
        binary = self._binary(frame[self.y0 : self.y1, self.x0 : self.x1], full, full, lit)
        return _opened(binary, self.kernel)

    def detect_reference(
        self, frame: np.ndarray, gain: float = 1.0
    ) -> tuple[float, float, float, int]:
        """:meth:`detect` by the plain steps of :meth:`foreground` over the whole crop."""
        binary = self.foreground(frame, gain)
        n, _, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
        k, n_ok = _largest(stats[1:, :5].tolist(), self.min_area_px, self.max_area_px)
        if k < 0:
            return _NOT_FOUND
        cx, cy = centroids[k + 1]
        return float(cx) + self.x0, float(cy) + self.y0, float(stats[k + 1, 4]), n_ok

    # -- fast path -------------------------------------------------------------------------
    def _binary(self, crop: np.ndarray, ys: slice, xs: slice, lit: tuple) -> np.ndarray:
        """Thresholded, masked foreground of ``crop`` = crop[ys, xs] (full resolution),
        not yet opened; ``lit`` from :meth:`_lit_inputs`."""
        crop = self._blur(crop)
        if self.polarity == "dark":
            return cv2.compare(crop, lit[2][ys, xs], cv2.CMP_LT)
        if self.polarity == "light":
            return cv2.compare(crop, lit[2][ys, xs], cv2.CMP_GT)
        diff = cv2.absdiff(crop, lit[0][ys, xs])
        _, binary = cv2.threshold(diff, lit[1], 255, cv2.THRESH_BINARY)
        return cv2.bitwise_and(binary, self.mask[ys, xs])

    def _pick(self, binary: np.ndarray, ox: int, oy: int, keep: list | None = None
              ) -> tuple[float, float, float, int]:
        """The largest blob of an opened ``binary`` within the area limits.

        ``(ox, oy)`` is the position of ``binary`` in the crop. Blobs are labelled only
        inside the bounding box of the foreground. ``keep``: the chosen blob is appended
        to it (``_Blob``).
        """
        bx, by, bw, bh = cv2.boundingRect(binary)
        if bw == 0:
            return _NOT_FOUND
        n, stats, centroids, labels = _label(binary[by : by + bh, bx : bx + bw])
        rows = stats.tolist()
        k, n_ok = _largest(rows[1:], self.min_area_px, self.max_area_px)
        if k < 0:
            return _NOT_FOUND
        if keep is not None:
            keep.append((labels, k + 1, bx + ox, by + oy, rows[k + 1]))
        cx, cy = centroids[k + 1].tolist()
        return cx + bx + ox + self.x0, cy + by + oy + self.y0, float(rows[k + 1][4]), n_ok

    def detect(self, frame: np.ndarray, gain: float = 1.0) -> tuple[float, float, float, int]:
        """(x, y, area_px, n_blobs) of the mouse in a full frame; NaNs when not found.

        ``gain``: the frame's brightness relative to the background (:meth:`light_gain`).
        The same as :meth:`detect_reference` (at ``scale`` 1 exactly; at ``scale`` 2 and 4
        see the module description), faster.
        """
        return self._detect(frame, gain, None)

    def detect_with_shares(self, frame: np.ndarray, gain: float = 1.0,
                           out: np.ndarray | None = None
                           ) -> tuple[tuple[float, float, float, int], np.ndarray]:
        """:meth:`detect`, and the share of the blob in each chamber (float32, config
        order; NaN when not found or without :attr:`pieces`), counted on the blob's own
        pixels where its bounding box touches a door line, else one look-up. ``out``: an
        array of the chambers' length to write the shares into (else a new one)."""
        keep: list[_Blob] = []
        found = self._detect(frame, gain, keep)
        if out is None:
            out = np.empty(self.n_chambers, dtype=np.float32)
        out[:] = np.nan
        if self.pieces is None or not keep or found[0] != found[0]:
            return found, out
        labels, k, bx, by, (left, top, w, h, _) = keep[-1]
        x0, y0 = bx + left, by + top
        if self.door_band is not None and not self.door_band[y0 : y0 + h, x0 : x0 + w].any():
            # one chamber: that of any of its pixels (one in its top row)
            first = int((labels[top, left : left + w] == k).argmax())
            here = int(self.pieces[y0, x0 + first])
            if here < self.n_chambers:
                out[:] = 0.0
                out[here] = 1.0
                return found, out
        pixels = labels[top : top + h, left : left + w] == k
        counts = np.bincount(self.pieces[y0 : y0 + h, x0 : x0 + w][pixels],
                             minlength=256)[: self.n_chambers]
        if counts.sum() > 0:
            out[:] = counts / counts.sum()
        return found, out

    def _detect(self, frame: np.ndarray, gain: float, keep: list | None
                ) -> tuple[float, float, float, int]:
        lit = self._lit_inputs(gain)
        if self.coarse is not None:
            return self._detect_coarse(frame, lit, keep)
        full = slice(None)
        binary = self._binary(frame[self.y0 : self.y1, self.x0 : self.x1], full, full, lit)
        ox, oy, binary = _opened(binary, self.kernel)
        return self._pick(binary, ox, oy, keep)

    def _detect_coarse(self, frame: np.ndarray, lit: tuple, keep: list | None = None
                       ) -> tuple[float, float, float, int]:
        c = self.coarse
        assert c is not None
        f = c.factor
        y0, x0 = self.y0, self.x0
        small = _shrink(frame[y0 : y0 + f * c.height, x0 : x0 + f * c.width], f)
        if self.polarity == "dark":
            binary = cv2.compare(small, lit[3], cv2.CMP_LT)
        elif self.polarity == "light":
            binary = cv2.compare(small, lit[3], cv2.CMP_GT)
        else:
            _, binary = cv2.threshold(
                cv2.absdiff(small, lit[4]), lit[1], 255, cv2.THRESH_BINARY
            )
            binary = cv2.bitwise_and(binary, c.mask)
        bx, by, bw, bh = cv2.boundingRect(binary)
        if bw == 0:
            return _NOT_FOUND
        ox = oy = 0
        if c.kernel is not None and bw * bh > c.open_above_px:
            # scattered specks: open (at half resolution) before labelling. When the
            # foreground is one compact box, specks inside it are too small to be
            # candidates, and the candidates are opened at full resolution anyway.
            ox, oy, binary = _opened(binary, c.kernel)
            bx, by, bw, bh = cv2.boundingRect(binary)
            if bw == 0:
                return _NOT_FOUND
        n, stats, _, _ = _label(binary[by : by + bh, bx : bx + bw])
        ox, oy = ox + bx, oy + by
        lo, hi = c.min_area_px, c.max_area_px
        rows = stats.tolist()[1:]
        # anything that could be the mouse at full resolution is measured there
        candidates = sorted(
            (-area, top, left, w, h)
            for left, top, w, h, area in rows
            if 0.5 * lo <= area <= 2.0 * hi
        )
        for neg_area, top, left, w, h in candidates:
            found = self._refine(frame, f * (ox + left), f * (oy + top), f * w, f * h, lit,
                                 keep)
            if found is not None:
                # competitors, as at full resolution: within the limits and at least a
                # quarter of the chosen blob (here by their half-resolution areas)
                floor = -0.25 * neg_area
                n_blobs = sum(1 for r in rows if lo <= r[4] <= hi and r[4] >= floor)
                return found[0], found[1], found[2], max(1, n_blobs)
        return _NOT_FOUND

    def _refine(self, frame: np.ndarray, x: int, y: int, w: int, h: int, lit: tuple,
                keep: list | None = None):
        """Measure the blob near crop box (x, y, w, h) at full resolution.

        Runs the full-resolution steps in a window around the box. Blur and opening are
        exact only farther than ``margin`` from a window edge inside the crop, so a blob
        closer than that makes the window grow; the result is then the blob the steps give
        over the whole crop. Returns (x, y, area_px) of the largest blob in the window, or
        None when there is none within the area limits.
        """
        cw, ch = self.x1 - self.x0, self.y1 - self.y0
        margin = self._margin
        pad = margin + 4
        wx0, wy0 = max(0, x - pad), max(0, y - pad)
        wx1, wy1 = min(cw, x + w + pad), min(ch, y + h + pad)
        while True:
            ys, xs = slice(wy0, wy1), slice(wx0, wx1)
            crop = frame[self.y0 + wy0 : self.y0 + wy1, self.x0 + wx0 : self.x0 + wx1]
            ox, oy, binary = _opened(self._binary(crop, ys, xs, lit), self.kernel)
            if binary.size == 0:
                return None
            n, stats, centroids, labels = _label(binary)
            rows = stats.tolist()
            k, _ = _largest(rows[1:], 1, math.inf)
            if k < 0:
                return None
            k += 1
            left, top, bw, bh, area = rows[k]
            grown = _grown_window((wx0, wy0, wx1, wy1), (left + ox, top + oy, bw, bh),
                                  margin, pad, (cw, ch))
            if grown == (wx0, wy0, wx1, wy1):
                break
            wx0, wy0, wx1, wy1 = grown
            pad *= 2
        if not (self.min_area_px <= area <= self.max_area_px):
            return None
        if keep is not None:
            keep.append((labels, k, wx0 + ox, wy0 + oy, rows[k]))
        cx, cy = centroids[k].tolist()
        return cx + (wx0 + ox + self.x0), cy + (wy0 + oy + self.y0), float(area)

    def chamber_shares(self, frame: np.ndarray, gain: float, x: float, y: float,
                       area_px: float) -> np.ndarray:
        """The share of the blob detected at (``x``, ``y``) in each chamber (float32,
        config order; NaN when there is no blob or no :attr:`pieces`), for a detection
        made without :meth:`detect_with_shares` (the background update's choice among
        several blobs).

        Cheap where the blob cannot reach a door line (no door line within
        :data:`SHARE_REACH_AREAS` times the root of its area of its centroid): all of it is
        in the centroid's chamber. Otherwise the blob is found again at full resolution in
        a window around the centroid (as :meth:`_refine` does, so its pixels are those
        detection measured) and its pixels are counted per chamber."""
        out = np.full(self.n_chambers, np.nan, dtype=np.float32)
        if self.pieces is None or self.door_band is None or not np.isfinite(x):
            return out
        h, w = self.pieces.shape
        cx = min(w - 1, max(0, int(round(x)) - self.x0))
        cy = min(h - 1, max(0, int(round(y)) - self.y0))
        reach = SHARE_REACH_AREAS * math.sqrt(area_px) + 2.0
        here = int(self.pieces[cy, cx])
        r = int(math.ceil(reach))
        near = self.door_band[max(0, cy - r) : cy + r + 1, max(0, cx - r) : cx + r + 1]
        if not near.any() and here < self.n_chambers:
            out[:] = 0.0
            out[here] = 1.0
            return out
        wx0, wy0, blob = self._blob_near(frame, gain, x - self.x0, y - self.y0, reach)
        window = self.pieces[wy0 : wy0 + blob.shape[0], wx0 : wx0 + blob.shape[1]]
        counts = np.bincount(window[blob], minlength=256)[: self.n_chambers]
        total = counts.sum()
        if total > 0:
            out[:] = counts / total
        return out

    def _blob_near(self, frame: np.ndarray, gain: float, cx: float, cy: float, reach: float
                   ) -> tuple[int, int, np.ndarray]:
        """(x, y, pixels): the full-resolution blob whose centroid is nearest to crop point
        (``cx``, ``cy``), as a boolean image at (x, y) in the crop; the window grows until
        the blob lies clear of its inner edges (blur and opening are then exact)."""
        lit = self._lit_inputs(gain)
        cw, ch = self.x1 - self.x0, self.y1 - self.y0
        margin = self._margin
        pad = margin + 4
        # a window about the blob's size: it grows where the blob reaches its edge
        r = int(math.ceil(0.6 * reach)) + pad
        wx0, wy0 = max(0, int(cx) - r), max(0, int(cy) - r)
        wx1, wy1 = min(cw, int(cx) + r + 1), min(ch, int(cy) + r + 1)
        while True:
            ys, xs = slice(wy0, wy1), slice(wx0, wx1)
            crop = frame[self.y0 + wy0 : self.y0 + wy1, self.x0 + wx0 : self.x0 + wx1]
            ox, oy, binary = _opened(self._binary(crop, ys, xs, lit), self.kernel)
            if binary.size == 0:
                return wx0, wy0, np.zeros((0, 0), dtype=bool)
            n, stats, centroids, labels = _label(binary)
            if n < 2:
                return wx0, wy0, np.zeros((0, 0), dtype=bool)
            d2 = ((centroids[1:, 0] + (wx0 + ox) - cx) ** 2
                  + (centroids[1:, 1] + (wy0 + oy) - cy) ** 2)
            k = int(np.argmin(d2)) + 1
            left, top, bw, bh = (int(v) for v in stats[k, :4])
            grown = _grown_window((wx0, wy0, wx1, wy1), (left + ox, top + oy, bw, bh),
                                  margin, pad, (cw, ch))
            if grown == (wx0, wy0, wx1, wy1):
                return wx0 + ox, wy0 + oy, labels == k
            wx0, wy0, wx1, wy1 = grown
            pad *= 2

    @property
    def _margin(self) -> int:
        """Pixels next to a window edge that blur and opening can change."""
        r_open = 0 if self.kernel is None else self.kernel.shape[0] // 2
        return self.blur_px // 2 + 2 * r_open + 1


def _grown_window(window: tuple[int, int, int, int], box: tuple[int, int, int, int],
                  margin: int, pad: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The crop window (x0, y0, x1, y1) widened by ``pad`` on each side where the blob's
    box (left, top, width, height, in the window) comes within ``margin`` of an edge that
    is not the crop's own (``size``: the crop's width and height): there blur and opening
    would not be those of the whole crop."""
    wx0, wy0, wx1, wy1 = window
    left, top, bw, bh = box
    cw, ch = size
    return (max(0, wx0 - pad) if (wx0 > 0 and left < margin) else wx0,
            max(0, wy0 - pad) if (wy0 > 0 and top < margin) else wy0,
            min(cw, wx1 + pad) if (wx1 < cw and left + bw > wx1 - wx0 - margin) else wx1,
            min(ch, wy1 + pad) if (wy1 < ch and top + bh > wy1 - wy0 - margin) else wy1)


def _opened(binary: np.ndarray, kernel: np.ndarray | None) -> tuple[int, int, np.ndarray]:
    """Morphological opening of ``binary``, computed only around its foreground.

    Returns (x, y, opened) where ``opened`` is the part of the opened image at (x, y) that
    holds all of its foreground, and the opening is zero elsewhere. Erosion is computed
    over the foreground's bounding box widened by the kernel radius (nothing outside the
    box survives it), dilation over the eroded foreground's box widened by the radius
    (nothing beyond reaches it): each step costs what its own foreground needs, not the
    whole image. The result equals cv2.morphologyEx(binary, MORPH_OPEN) pixel for pixel.
    """
    if kernel is None:
        return 0, 0, binary
    x0, y0, eroded = _around_foreground(binary, kernel, cv2.erode)
    if eroded.size == 0:
        return 0, 0, eroded
    x1, y1, opened = _around_foreground(eroded, kernel, cv2.dilate)
    return x0 + x1, y0 + y1, opened


def _around_foreground(binary: np.ndarray, kernel: np.ndarray, step
                       ) -> tuple[int, int, np.ndarray]:
    """``step`` (cv2.erode or cv2.dilate) of ``binary`` over its foreground's bounding box
    widened by the kernel's radius: (x, y, result there); empty when there is no
    foreground. Outside that part both steps give zero, and within it they see the same
    pixels as over the whole image (zeros beyond the box, the image's own border at its
    edges)."""
    bx, by, bw, bh = cv2.boundingRect(binary)
    if bw == 0:
        return 0, 0, binary[:0, :0]
    r = max(kernel.shape) // 2
    h, w = binary.shape
    x0, y0 = max(0, bx - r), max(0, by - r)
    x1, y1 = min(w, bx + bw + r), min(h, by + bh + r)
    return x0, y0, step(binary[y0:y1, x0:x1], kernel)


def arena_mask(arena: ArenaConfig, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """The arena polygon minus its masks as a uint8 mask (255 inside) of the ``w`` x ``h``
    window whose top-left corner is (``x0``, ``y0``) in the frame."""
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


#: A blob reaches at most this many roots of its area (plus 2 px) from its centroid: an
#: ellipse 4 times as long as wide reaches 1.13 (a mouse without its tail is less
#: elongated); farther from a door line its chamber shares are those of its centroid's
#: chamber.
SHARE_REACH_AREAS = 1.5

# Door lines are extended by this many px at both ends, as geometry.chambers does before
# cutting the arena (a line drawn by hand often stops short of the wall).
_DOOR_EXTENSION_PX = 6.0


def _fixed(points, x0: int, y0: int, shift: int = 3) -> np.ndarray:
    a = (np.asarray(points, dtype=np.float64) - [x0, y0]) * (1 << shift)
    return a.round().astype(np.int32)


def chamber_pieces(arena: ArenaConfig, x0: int, y0: int, w: int, h: int) -> np.ndarray:
    """The chamber (index in config order) of each pixel of the ``w`` x ``h`` window at
    (``x0``, ``y0``), uint8, 255 outside the arena: the arena polygon cut by its door lines,
    each piece named by the chamber point in it, as :func:`cpp_tracker.geometry.chambers.
    build_layout` cuts it (masks do not matter: the mouse is never found there).

    Pixels on a door line go to the side their centre lies on."""
    inside = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(inside, [_fixed(arena.polygon, x0, y0).reshape(-1, 1, 2)], 1,
                 lineType=cv2.LINE_8, shift=3)
    cut = inside.copy()
    doors = [_extended_line(d.line) for d in arena.doors]
    for (ax, ay), (bx, by) in doors:
        p = _fixed([(ax, ay), (bx, by)], x0, y0)
        cv2.line(cut, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 0, 1,
                 lineType=cv2.LINE_8, shift=3)
    # 4-connected: an 8-connected line of pixels separates the two sides
    n, comp = cv2.connectedComponents(cut, connectivity=4)
    lut = np.full(max(n, 1), 255, dtype=np.uint8)
    for j, chamber in enumerate(arena.chambers):
        c = _component_at(comp, chamber.point[0] - x0, chamber.point[1] - y0)
        if c > 0:
            lut[c] = j
    pieces = lut[comp]
    pieces[inside == 0] = 255
    _assign_leftovers(pieces, inside > 0, doors, x0, y0)
    return pieces


def _extended_line(line) -> tuple[tuple[float, float], tuple[float, float]]:
    (ax, ay), (bx, by) = line
    d = max(math.hypot(bx - ax, by - ay), 1e-9)
    ux, uy = (bx - ax) / d * _DOOR_EXTENSION_PX, (by - ay) / d * _DOOR_EXTENSION_PX
    return (ax - ux, ay - uy), (bx + ux, by + uy)


def _component_at(comp: np.ndarray, x: float, y: float) -> int:
    """The component at a point, or the most common one around it (a point a pixel from a
    door line may fall on the line's pixels)."""
    h, w = comp.shape
    cx, cy = min(w - 1, max(0, int(round(x)))), min(h - 1, max(0, int(round(y))))
    if comp[cy, cx] > 0:
        return int(comp[cy, cx])
    around = comp[max(0, cy - 2) : cy + 3, max(0, cx - 2) : cx + 3]
    values = around[around > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


def _assign_leftovers(pieces: np.ndarray, inside: np.ndarray, doors: list, x0: int,
                      y0: int) -> None:
    """Give the arena's pixels without a chamber (on a door line, or slivers the lines cut
    off without a chamber point) one, in place: a pixel on a line the chamber on its
    centre's side of the nearest line (probed 1.5 px away), any other the nearest
    chamber's."""
    rows, cols = np.nonzero(inside & (pieces == 255))
    if not len(rows):
        return
    h, w = pieces.shape
    if doors:
        px, py = cols + float(x0), rows + float(y0)
        best_d = np.full(len(rows), np.inf)
        probe_x, probe_y = px.copy(), py.copy()
        for (ax, ay), (bx, by) in doors:
            dx, dy = bx - ax, by - ay
            length = max(math.hypot(dx, dy), 1e-9)
            t = np.clip(((px - ax) * dx + (py - ay) * dy) / length**2, 0.0, 1.0)
            dist = np.hypot(px - (ax + t * dx), py - (ay + t * dy))
            side = np.sign((px - ax) * dy - (py - ay) * dx)  # which side of the line
            side[side == 0] = 1.0
            nx, ny = dy / length, -dx / length
            closer = dist < best_d
            best_d[closer] = dist[closer]
            probe_x[closer] = px[closer] + 1.5 * side[closer] * nx
            probe_y[closer] = py[closer] + 1.5 * side[closer] * ny
        qx = np.clip(np.round(probe_x - x0).astype(int), 0, w - 1)
        qy = np.clip(np.round(probe_y - y0).astype(int), 0, h - 1)
        found = pieces[qy, qx]
        ok = (found != 255) & (best_d <= 1.5)
        pieces[rows[ok], cols[ok]] = found[ok]
    rest = inside & (pieces == 255)
    if rest.any() and (pieces != 255).any():
        known = (pieces != 255).astype(np.uint8)
        # labels of the nearest known pixel (each zero pixel of 1 - known its own label)
        _, labels = cv2.distanceTransformWithLabels(
            1 - known, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
        lut = np.zeros(int(labels.max()) + 1, dtype=np.uint8)
        lut[labels[known > 0]] = pieces[known > 0]
        pieces[rest] = lut[labels[rest]]


def door_band(pieces: np.ndarray) -> np.ndarray:
    """The pixels of :func:`chamber_pieces` with a neighbour (of 8) in another chamber:
    a blob none of whose pixels' boxes holds one lies in one chamber."""
    valid = pieces != 255
    kernel = np.ones((3, 3), np.uint8)
    low = cv2.erode(pieces, kernel)  # 255 outside does not lower a minimum
    high = cv2.dilate(np.where(valid, pieces, 0).astype(np.uint8), kernel)
    return valid & (low != high)


def pieces_signature(arenas: Sequence[ArenaConfig]) -> str:
    """A short hash of what :func:`chamber_pieces` depends on (each arena's name, outline in
    pixels, door lines and chamber points, in order): the share columns of a track made
    with other door lines do not fit a config."""
    import hashlib
    import json

    data = [[a.name, [list(p) for p in a.polygon], [list(map(list, d.line)) for d in a.doors],
             [list(c.point) for c in a.chambers]] for a in arenas]
    text = json.dumps(data, default=float)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _comparison_limit(
    background: np.ndarray, mask: np.ndarray, polarity: str, threshold: float,
    illumination: np.ndarray | None = None, min_threshold: float = 0.0,
) -> np.ndarray | None:
    """Per-pixel limit that makes difference, threshold and mask one comparison.

    ``cv2.threshold`` on 8-bit images keeps ``diff > floor(threshold)``; for a dark mouse
    ``background - frame > t`` is ``frame < background - t`` (t = floor(threshold)), for a
    light one ``frame > background + t``. Outside the mask the limit is one no pixel passes.
    With an ``illumination`` map the threshold is scaled by it per pixel, not below
    ``min_threshold`` (nor above ``threshold``).
    """
    if illumination is None:
        t = int(np.floor(threshold))
    else:
        lowest = min(float(threshold), float(min_threshold))
        t = np.floor(np.maximum(threshold * illumination, lowest)).astype(np.int16)
    bg = background.astype(np.int16)
    inside = mask > 0
    if polarity == "dark":
        return np.where(inside, np.clip(bg - t, 0, 255), 0).astype(np.uint8)
    if polarity == "light":
        return np.where(inside, np.clip(bg + t, 0, 255), 255).astype(np.uint8)
    return None


def _shrink(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` blocks (factor 2 or 4; sides divisible by it).

    By 4 as two halvings: OpenCV's one-step INTER_AREA by 4 is some 20 times slower.
    """
    while factor > 1:
        h, w = image.shape
        image = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        factor //= 2
    return image


def _coarse_inputs(
    factor: int,
    raw_background: np.ndarray,
    mask: np.ndarray,
    polarity: str,
    threshold: float,
    opening_px: int,
    min_area_px: float,
    max_area_px: float,
    mouse_area_px: float | None,
    illumination: np.ndarray | None = None,
    min_threshold: float = 0.0,
) -> _Coarse:
    f = factor
    h, w = raw_background.shape
    w2, h2 = w // f, h // f
    bg = _shrink(raw_background[: f * h2, : f * w2], f)
    illum = None
    if illumination is not None:
        illum = cv2.resize(illumination[: f * h2, : f * w2], (w2, h2),
                           interpolation=cv2.INTER_AREA)
    # a coarse pixel is inside when any of its pixels is: candidates are measured with the
    # exact mask at full resolution
    m = _shrink(mask[: f * h2, : f * w2], f)
    m = np.where(m > 0, 255, 0).astype(np.uint8)
    k = opening_px // f
    k = k + 1 if k % 2 == 0 else k
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)) if k >= 3 else None
    return _Coarse(
        factor=f,
        width=w2,
        height=h2,
        limit=_comparison_limit(bg, m, polarity, threshold, illum, min_threshold),
        background=bg if polarity == "both" else None,
        mask=m if polarity == "both" else None,
        raw_background=bg,
        illumination=illum,
        inside=m,
        kernel=kernel,
        min_area_px=min_area_px / f**2,
        max_area_px=max_area_px / f**2,
        # a box of 8 coarse mouse areas holds the mouse with its tail
        open_above_px=8.0 * mouse_area_px / f**2 if mouse_area_px else 0.0,
    )


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
    difference images and the mouse's contrast), the area limits and, with
    ``downscale: auto``, the resolution blobs are searched at (from the mouse's area in the
    samples). Memory: one sample's difference image at a time. With ``follow_lighting``
    the detector measures each frame's brightness (:meth:`ArenaDetector.light_gain`) and
    scales the background and threshold to it; ``samples`` should then be at the
    background's lighting (:func:`cpp_tracker.tracking.background.estimate_background`).

    A mouse of low contrast for the noise (an automatic threshold below
    :data:`LOW_CONTRAST_SIGMAS` noise sigmas: an infrared night picture) is looked for with
    a wider blur, :func:`low_contrast_blur_px` (half the mouse's body width), unless
    ``blur_px`` was changed from 3.
    """
    detector = _make_detector(arena, settings, background, samples, follow_lighting)
    if (settings.threshold is None and settings.blur_px == 3
            and detector.threshold < LOW_CONTRAST_SIGMAS * detector.noise_sigma):
        import dataclasses

        wider = dataclasses.replace(settings,
                                    blur_px=low_contrast_blur_px(detector.body_width_px))
        detector = _make_detector(arena, wider, background, samples, follow_lighting)
    return detector


#: An automatic threshold below this many noise sigmas means a mouse of low contrast ...
LOW_CONTRAST_SIGMAS = 6.0


def low_contrast_blur_px(body_width_px: float | None) -> int:
    """The blur diameter (odd, px) a mouse of low contrast is looked for with: half its
    body width, at least 7 (a Gaussian of 1.4 px; the width measured on a faint mouse
    is short of its real one). The noise falls to about a third of that after the usual
    3 px; the body keeps its contrast inside, and the outline stays where the blurred
    edge is halfway."""
    if body_width_px is None or not np.isfinite(body_width_px):
        return 7
    return _odd(max(7, int(round(0.5 * body_width_px))))


def _make_detector(arena: ArenaConfig, settings: DetectionSettings, background: np.ndarray,
                   samples: np.ndarray, follow_lighting: bool) -> ArenaDetector:
    x0, y0, x1, y1 = _crop_of(arena, background.shape)
    mask = arena_mask(arena, x0, y0, x1 - x0, y1 - y0)
    blur = _odd(settings.blur_px) if settings.blur_px > 1 else 0
    raw_bg = background[y0:y1, x0:x1]
    bg = cv2.GaussianBlur(raw_bg, (blur, blur), 0) if blur else raw_bg
    inside = mask > 0
    arena_area = float(inside.sum())
    stats = _difference_stats(samples, (x0, y0, x1, y1), bg, blur, inside)
    polarity = _polarity(settings.animal, stats)
    contrast = {"dark": stats.dark_c, "light": stats.light_c}.get(
        polarity, max(stats.dark_c, stats.light_c))
    threshold = (float(settings.threshold) if settings.threshold is not None
                 else _auto_threshold(stats.sigma, contrast))
    min_area = settings.min_area_px if settings.min_area_px else max(10.0, 0.0005 * arena_area)
    max_area = settings.max_area_px or max(2 * min_area, 0.25 * arena_area)
    light_px, light_ref = _light_pixels(raw_bg, inside, x0, y0)
    illumination = _illumination(raw_bg, inside, (x0, y0), background.shape)
    full = ArenaDetector(
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
        kernel=None,
        noise_sigma=stats.sigma,
        follow_lighting=bool(follow_lighting) and light_px is not None,
        light_px=light_px,
        light_ref=light_ref,
        min_threshold=threshold_floor(stats.sigma),
        illumination=illumination,
        limit=_comparison_limit(bg, mask, polarity, threshold, illumination,
                                threshold_floor(stats.sigma)),
    )
    pieces = chamber_pieces(arena, x0, y0, x1 - x0, y1 - y0)
    full = _replace(full, pieces=pieces, door_band=door_band(pieces),
                    n_chambers=len(arena.chambers))
    if settings.threshold is None:
        full = _raised_to_mouse_contrast(full, samples, contrast)
    full = _with_opening(full, settings, samples)
    return _with_search_scale(full, settings, samples, raw_bg)


def _raised_to_mouse_contrast(
    full: ArenaDetector, samples: np.ndarray, contrast: float
) -> ArenaDetector:
    """Second pass of an automatic threshold: at least a fraction of the mouse's own
    contrast (the median difference over its blob at the first threshold), at most half the
    extreme contrast; the comparison limits recomputed."""
    blob_contrast = _measure_mouse(full, samples)[1]
    if blob_contrast is None:
        return full
    raised = min(max(full.threshold, CONTRAST_FRACTION * blob_contrast), 0.5 * contrast)
    if raised <= full.threshold:
        return full
    return _replace(full, threshold=raised, _lit={},
                    limit=_comparison_limit(full.background, full.mask, full.polarity, raised,
                                            full.illumination, full.min_threshold))


def _with_opening(full: ArenaDetector, settings: DetectionSettings,
                  samples: np.ndarray) -> ArenaDetector:
    """The tail-removing opening: as set, or scaled to the mouse's measured body width."""
    body_width = _measure_mouse(full, samples)[0]
    k = (int(settings.opening_px) if settings.opening_px is not None
         else auto_opening_px(body_width))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)) if k >= 2 else None
    return _replace(full, kernel=kernel, body_width_px=body_width, _lit={})


def _with_search_scale(full: ArenaDetector, settings: DetectionSettings, samples: np.ndarray,
                       raw_bg: np.ndarray) -> ArenaDetector:
    """The mouse's area in the samples, and the resolution blobs are searched at."""
    areas = [a for a in (full.detect(f)[2] for f in samples) if np.isfinite(a)]
    mouse_area = float(np.median(areas)) if areas else None
    scale = _search_scale(settings.downscale, mouse_area)
    coarse = None
    if scale > 1 and min(full.x1 - full.x0, full.y1 - full.y0) >= 4 * scale:
        k = 0 if full.kernel is None else full.kernel.shape[0]
        coarse = _coarse_inputs(scale, raw_bg, full.mask, full.polarity, full.threshold, k,
                                full.min_area_px, full.max_area_px, mouse_area,
                                full.illumination, full.min_threshold)
    else:
        scale = 1
    return _replace(full, scale=scale, mouse_area_px=mouse_area, coarse=coarse, _lit={},
                    raw_background=np.ascontiguousarray(raw_bg))


#: With ``detection.opening_px: auto``, the opening's diameter as a fraction of the mouse's
#: body width. A disc this wide fits the body and the head (about 0.6 body widths across;
#: the tips of their outlines curve with a radius of about a quarter body width), so the
#: opening leaves them whole, and it removes a tail up to about a third of the body width
#: thick at its base (a real mouse's is an eighth to a tenth), whatever the resolution.
OPENING_BODY_FRACTION = 0.4

#: The automatic threshold is at least this fraction of the mouse's own contrast (the
#: median difference to the background over its blob in the samples), at most half the
#: extreme contrast (the darkest, or lightest, 0.1 % of the differences).
CONTRAST_FRACTION = 0.5

#: The opening used when no mouse was found in the background samples to measure.
DEFAULT_OPENING_PX = 5


def auto_opening_px(body_width_px: float | None) -> int:
    """The automatic opening diameter, px (odd), for a mouse ``body_width_px`` wide."""
    if body_width_px is None or not np.isfinite(body_width_px):
        return DEFAULT_OPENING_PX
    return _odd(max(1, int(round(OPENING_BODY_FRACTION * body_width_px))))


def _measure_mouse(
    detector: ArenaDetector, samples: np.ndarray
) -> tuple[float | None, float | None]:
    """(body width, contrast) of the mouse: medians over ``samples`` for the largest blob
    within the area limits (foreground not opened). The width is twice the largest
    distance from one of its pixels to its edge: a tail, a leg or a shadow's fringe is
    narrower than the body and does not change it. The contrast is the median difference
    to the background over the blob's pixels: the body's, not that of a brighter tail or
    a reflection.

    Only the samples whose blob is at least half as large as the typical large one (the
    90th percentile of the areas) count: where the mouse is missing from most samples (it
    rests where the background has it, with ``remove_resting_mouse: false``), the largest
    blob in the others is noise or a fringe a few px wide, and its width would switch the
    opening off."""
    widths, contrasts, areas = [], [], []
    for frame in samples:
        binary = detector.foreground(frame)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        k, _ = _largest(stats[1:, :5].tolist(), detector.min_area_px, detector.max_area_px)
        if k < 0:
            continue
        left, top, w, h = stats[k + 1, :4]
        blob = (labels[top : top + h, left : left + w] == k + 1).astype(np.uint8)
        blob = cv2.copyMakeBorder(blob, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        dist = cv2.distanceTransform(blob, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        # the distance from a pixel centre to the edge is half a pixel short of the
        # distance to the outline between pixels
        widths.append(2.0 * float(dist.max()) - 1.0)
        diff = detector.difference(frame)[top : top + h, left : left + w]
        contrasts.append(float(np.median(diff[blob[1:-1, 1:-1] > 0])))
        areas.append(float(stats[k + 1, cv2.CC_STAT_AREA]))
    if not widths:
        return None, None
    keep = np.asarray(areas) >= 0.5 * float(np.percentile(areas, 90))
    return (float(np.median(np.asarray(widths)[keep])),
            float(np.median(np.asarray(contrasts)[keep])))


def _crop_of(arena: ArenaConfig, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The arena's bounding box in a frame of ``shape``: x0, y0, x1, y1 (x1, y1 exclusive)."""
    h, w = shape
    xs = [p[0] for p in arena.polygon]
    ys = [p[1] for p in arena.polygon]
    x0 = max(0, int(np.floor(min(xs))))
    y0 = max(0, int(np.floor(min(ys))))
    x1 = min(w, int(np.ceil(max(xs))) + 1)
    y1 = min(h, int(np.ceil(max(ys))) + 1)
    return x0, y0, x1, y1


@dataclass(frozen=True)
class _DifferenceStats:
    """What the samples' differences to the background say about noise and the mouse."""

    sigma: float  # robust sigma of all differences (the noise)
    dark_c: float  # median over samples of the darkest 0.1 % of differences (a dark mouse)
    light_c: float  # the same for the lightest (a light mouse)


def _difference_stats(samples: np.ndarray, crop: tuple[int, int, int, int], bg: np.ndarray,
                      blur: int, inside: np.ndarray) -> _DifferenceStats:
    """Noise (robust sigma of all differences) and the mouse's contrast (the extreme tail,
    top 0.1 %, of each sample's differences: a mouse covers more than 0.1 % of its arena);
    one sample's difference image in memory at a time."""
    x0, y0, x1, y1 = crop
    hist = IntHistogram()
    dark_tail, light_tail = [], []
    q = 99.9
    bg16 = bg.astype(np.int16)
    for frame in samples:
        crop_px = frame[y0:y1, x0:x1]
        if blur:
            crop_px = cv2.GaussianBlur(crop_px, (blur, blur), 0)
        vals = (crop_px.astype(np.int16) - bg16)[inside]
        if vals.size == 0:
            continue
        hist.add(vals)
        dark_tail.append(float(np.percentile(-vals, q)))
        light_tail.append(float(np.percentile(vals, q)))
    med, mad = hist.median_and_mad()
    return _DifferenceStats(
        sigma=max(float(1.4826 * mad), 0.5) if dark_tail else 1.0,
        dark_c=float(np.median(dark_tail)) if dark_tail else 0.0,
        light_c=float(np.median(light_tail)) if light_tail else 0.0,
    )


def _polarity(animal: str, stats: _DifferenceStats) -> str:
    """``dark``, ``light`` or ``both``: as configured, or for ``auto`` the side whose
    contrast clearly stands out of the noise and of the other side."""
    polarity = {"dark": "dark", "light": "light"}.get(animal, "both")
    if animal == "auto":
        dark_c, light_c, sigma = stats.dark_c, stats.light_c, stats.sigma
        if dark_c > 1.5 * light_c and dark_c > 4 * sigma:
            polarity = "dark"
        elif light_c > 1.5 * dark_c and light_c > 4 * sigma:
            polarity = "light"
    return polarity


def _auto_threshold(sigma: float, contrast: float) -> float:
    """The first automatic threshold, grey levels, from the noise and the mouse's contrast.

    :func:`make_detector` then raises it toward half the mouse's own contrast
    (:data:`CONTRAST_FRACTION`): a threshold far below a high-contrast mouse keeps the
    blurred fringe of the body, of the tail's base and of a soft shadow, so the tail gets
    wider than the opening removes and a shadow becomes mouse, and the centroid moves
    toward them. At half the contrast the outline sits where a blurred edge is half way,
    on the mouse's true outline, at any resolution.
    """
    threshold = max(6.0 * sigma, 10.0, 0.15 * contrast)
    if contrast > 0:
        threshold = min(threshold, 0.5 * contrast)
    return max(threshold, threshold_floor(sigma))


def threshold_floor(noise_sigma: float) -> float:
    """The lowest automatic threshold, grey levels, for noise ``noise_sigma`` (of the
    blurred differences): 3 sigmas and a grey level. It binds only for a mouse of low
    contrast (an infrared night picture), where half the mouse's contrast is below it;
    the threshold scaled down in dim light or in a vignetted corner stops here too."""
    return 3.0 * float(noise_sigma) + 1.0


#: Vignetting weaker than this (the dimmest floor of the arena against its typical
#: brightness) is left alone: one threshold for the whole arena.
MIN_LIGHT_FALL_OFF = 0.15


def _illumination(background: np.ndarray, inside: np.ndarray, origin: tuple[int, int],
                  frame_shape: tuple[int, ...]) -> np.ndarray | None:
    """The light falling off from the middle of the picture (vignetting), per pixel of
    the crop at ``origin``: ``1 - a r^2`` (``r``: distance from the frame's centre over
    half its diagonal) fitted to the floor's brightness, over its median on the floor,
    at most 1. A radial fit, so a chamber whose floor is darker all over is not taken for
    dim light. None when the fall-off is below :data:`MIN_LIGHT_FALL_OFF`."""
    if inside.sum() < 100:
        return None
    h, w = frame_shape[:2]
    rows, cols = np.indices(background.shape, dtype=np.float32)
    r2 = (((cols + origin[0] - (w - 1) / 2) ** 2 + (rows + origin[1] - (h - 1) / 2) ** 2)
          / ((w / 2) ** 2 + (h / 2) ** 2))
    values = background[inside].astype(np.float64)
    design = np.stack([np.ones_like(values), r2[inside].astype(np.float64)], axis=1)
    (c, b), *_ = np.linalg.lstsq(design, values, rcond=None)
    if c <= 0 or b >= 0:
        return None
    light = (1.0 + (b / c) * r2).astype(np.float32)
    light /= np.float32(np.median(light[inside]))
    light = np.clip(light, 0.2, 1.0)
    if float(light[inside].min()) > 1.0 - MIN_LIGHT_FALL_OFF:
        return None
    return light


def _search_scale(downscale: int | None, mouse_area: float | None) -> int:
    """The configured downscale, or for auto the largest factor at which the mouse keeps
    100 px."""
    if downscale is not None:
        return downscale
    scale = 1
    for f in (2, 4):
        if (mouse_area or 0.0) >= DOWNSCALE_MIN_AREA_PX * (f / 2) ** 2:
            scale = f
    return scale


def _replace(detector: ArenaDetector, **changes) -> ArenaDetector:
    import dataclasses

    return dataclasses.replace(detector, **changes)


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
) -> tuple[np.ndarray, ...]:
    """Run ``detector`` on every frame of a chunk.

    Returns preallocated arrays ``x, y, area_px`` (float64, NaN when not found),
    ``n_blobs`` (int16), ``light_gain`` (float32) and the chamber shares (float32, one row
    per frame, one column per chamber; :meth:`ArenaDetector.chamber_shares`).
    """
    n = len(frames)
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    area = np.full(n, np.nan)
    blobs = np.zeros(n, dtype=np.int16)
    shares = np.full((n, detector.n_chambers), np.nan, dtype=np.float32)
    measured = detector.light_gains(frames)
    gains = measured.astype(np.float32)
    if detector.pieces is None:
        for i in range(n):
            x[i], y[i], area[i], blobs[i] = detector.detect(frames[i], float(measured[i]))
        return x, y, area, blobs, gains, shares
    for i in range(n):
        x[i], y[i], area[i], blobs[i] = detector.detect_with_shares(
            frames[i], float(measured[i]), shares[i])[0]
    return x, y, area, blobs, gains, shares


def track_frames(
    chunks: Iterable,
    detectors: Sequence[ArenaDetector],
    write_part: Callable[[pa.Table], object],
    *,
    checkpoint_s: float,
    on_chunk: Callable[[], None] | None = None,
) -> int:
    """Detect the mouse in every frame of ``chunks``, handing the track on in parts.

    ``chunks`` yields :class:`~cpp_tracker.video.reader.FrameChunk` s. Detections accumulate in
    per-chunk arrays; every ``checkpoint_s`` of video time (and at the end) they become one
    track table (:func:`track_rows`) passed to ``write_part``. ``on_chunk``
    is called after each chunk (for progress). Returns the number of frames tracked.
    """
    names = [d.name for d in detectors]
    pending: list[tuple[np.ndarray, np.ndarray, list]] = []
    frames = 0
    until = None
    for chunk in chunks:
        detections = [detect_chunk(chunk.frames, d) for d in detectors]
        pending.append((chunk.index, chunk.time_s, detections))
        frames += len(chunk)
        if until is None:
            until = float(chunk.time_s[0]) + checkpoint_s
        if chunk.time_s[-1] >= until:
            write_part(rows_from_chunks(pending, names))
            pending = []
            until = float(chunk.time_s[-1]) + checkpoint_s
        if on_chunk is not None:
            on_chunk()
    if pending:
        write_part(rows_from_chunks(pending, names))
    return frames


def rows_from_chunks(pending: list, names: list[str]) -> pa.Table:
    """Track rows (:func:`track_rows`) from (frame index, time_s, :func:`detect_chunk`
    results per arena) gathered chunk by chunk: one table per part, not one per chunk."""
    index = np.concatenate([p[0] for p in pending])
    time_s = np.concatenate([p[1] for p in pending])
    detections = [
        tuple(np.concatenate([p[2][a][j] for p in pending])
              for j in range(len(pending[0][2][a])))
        for a in range(len(names))
    ]
    return track_rows(index, time_s, detections, names)


def track_rows(
    index: np.ndarray, time_s: np.ndarray, detections: list[tuple], arena_names: list[str]
) -> pa.Table:
    """Frame-major track rows (each frame, then each arena in config order) from the frame
    indices, times and per-arena :func:`detect_chunk` results; the columns of
    :data:`TRACK_COLUMNS` but those assigned after detection, as an Arrow table (what the
    part files hold)."""
    n = len(index)
    k = len(arena_names)
    cols = {
        "frame": np.repeat(np.asarray(index, dtype=np.int64), k),
        "time_s": np.repeat(np.asarray(time_s, dtype=np.float64), k),
    }
    for j, name in enumerate(("x", "y", "area_px", "n_blobs", "light_gain")):
        cols[name] = np.stack([d[j] for d in detections], axis=1).reshape(-1)
    cols["detected"] = np.isfinite(cols["x"])
    arrays = {name: _arrow_array(cols[name], TRACK_COLUMNS[name]) for name in cols}
    arrays["arena"] = _repeated_strings(arena_names, n)
    names = [c for c in TRACK_COLUMNS if c not in ASSIGNED_COLUMNS]
    shares = _share_matrix(detections, n)
    if shares is not None:
        for j, name in enumerate(share_columns(shares.shape[1])):
            arrays[name] = _arrow_array(shares[:, j], "float32")
            names.append(name)
    return pa.Table.from_arrays([arrays[c] for c in names], names=names)


def _share_matrix(detections: list[tuple], n: int) -> np.ndarray | None:
    """Frame-major chamber shares of every arena (rows as :func:`track_rows`'), padded
    with NaN to the most chambers of any arena; None when no arena has any."""
    if not detections or any(len(d) < 6 for d in detections):
        return None
    k = max(d[5].shape[1] for d in detections)
    if k == 0:
        return None
    out = np.full((n, len(detections), k), np.nan, dtype=np.float32)
    for a, d in enumerate(detections):
        out[:, a, : d[5].shape[1]] = d[5]
    return out.reshape(n * len(detections), k)


_ARROW_TYPES = {
    "int64": pa.int64(), "int16": pa.int16(), "float64": pa.float64(), "float32": pa.float32()
}


# The arrays are built from their buffers: ``pa.array`` on a NumPy array imports pandas
# (~50 MB) to check whether it was given a pandas object, and the tracking processes
# have no other use for pandas.
def _arrow_array(values: np.ndarray, dtype: str) -> pa.Array:
    """An Arrow array (no nulls) of ``values`` as ``dtype`` (a :data:`TRACK_COLUMNS` type)."""
    if dtype == "bool":
        bits = np.packbits(np.asarray(values, dtype=bool), bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    data = np.ascontiguousarray(values, dtype=np.dtype(dtype))
    return pa.Array.from_buffers(_ARROW_TYPES[dtype], len(data), [None, pa.py_buffer(data)])


def _repeated_strings(names: list[str], n: int) -> pa.Array:
    """``names`` repeated ``n`` times, as one Arrow large_string array."""
    encoded = [name.encode() for name in names]
    lengths = np.array([len(e) for e in encoded], dtype=np.int64)
    within = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    total = int(lengths.sum())
    offsets = (np.arange(n, dtype=np.int64)[:, None] * total + within[None, :]).reshape(-1)
    offsets = np.append(offsets, np.int64(n * total))
    data = b"".join(encoded) * n
    return pa.Array.from_buffers(
        pa.large_string(), n * len(names),
        [None, pa.py_buffer(offsets), pa.py_buffer(data)],
    )
