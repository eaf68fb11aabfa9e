"""Floor that changes and stays changed, taken into the background away from the mouse.

A mouse kicks bedding around: a patch of floor changes and stays changed for the rest of
the night. Against the one empty-box image of the video it would be a second mouse for
hours. With ``detection.background_update`` on, a :class:`BackgroundFollower` per arena
looks at one frame every :data:`UPDATE_PERIOD_S` seconds (the frame's brightness divided
out) and takes a pixel into the background once its difference to the background has
stayed beyond the detection threshold, with the same sign and about the same value, for
``detection.background_update_after_s`` seconds on end, farther than
``background_update_margin_bl`` body lengths from where the mouse last moved.

"Where the mouse last moved" is the change between two looked-at frames (blobs of at
least a quarter of the mouse's area), widened by the margin; it stays where it is while
nothing moves. So a sleeping mouse (still for hours) lies inside it and is never taken
into the background, and when the mouse is not found the update pauses around its last
movement. The tracked blob is kept out too when it lies in that zone; a blob far from any
movement is not protected by its being tracked: it is what a kicked patch larger than the
mouse looks like. Until the first movement, nothing is taken in.

The follower carries state from frame to frame, so a video whose update is on is tracked
in one pass (time segments in parallel processes would each start without it) and its
state is saved with every checkpoint. Memory: a few images the size of the arena's crop.

``auto`` turns the update on when the background samples (frames spread over the video)
show floor that differs from the background in the first or the last
:data:`AUTO_MIN_SHARE` of them on end, over at least :data:`AUTO_MIN_MOUSE_AREAS` of the
mouse's area: bedding moved before or after the state the background took (or a mouse
asleep at the start or the end, where the update's care is needed too). Otherwise the
video is tracked as without the update.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from ..config.settings import DetectionSettings
from .tracker import ArenaDetector, _opened

__all__ = [
    "UPDATE_PERIOD_S",
    "AUTO_MIN_SHARE",
    "AUTO_MIN_MOUSE_AREAS",
    "BackgroundFollower",
    "plan_background_update",
    "body_length_px",
]

#: Seconds of video between two looked-at frames.
UPDATE_PERIOD_S = 1.0
#: Seconds of video between two frames compared for where the mouse moves.
MOTION_PERIOD_S = 0.25
#: Changes between them of at least this many mouse areas (one blob) are movement. In a
#: quarter second a walking mouse moves a few px: the changed crescents at its two ends
#: are thin, so they are opened with a 3 px disc only (noise), not the tail's opening.
MOTION_MOUSE_AREAS = 0.1
_SPECKS = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

#: ``auto``: the share of the background samples, the first or the last ones, in which
#: floor must differ ...
AUTO_MIN_SHARE = 0.1
#: ... over at least this many mouse areas (one connected region), for the update to run.
AUTO_MIN_MOUSE_AREAS = 0.25


def body_length_px(detector: ArenaDetector, samples: np.ndarray) -> float | None:
    """The mouse's body length, px: the median over ``samples`` of the length of the blob
    :meth:`~.tracker.ArenaDetector.detect` takes for the mouse (an ellipse of the same
    second moments: 4 sigmas along its long axis; the tail is opened off). Only the
    samples whose blob is at least half the mouse's median area count. None when the
    samples did not show the mouse."""
    typical = detector.mouse_area_px
    if not typical:
        return None
    lengths = []
    for frame in samples:
        binary = detector.foreground(frame)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        if n < 2:
            continue
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        if stats[k, cv2.CC_STAT_AREA] < 0.5 * typical:
            continue
        m = cv2.moments((labels == k).astype(np.uint8), binaryImage=True)
        cov = np.array([[m["mu20"], m["mu11"]], [m["mu11"], m["mu02"]]]) / m["m00"]
        lengths.append(4.0 * math.sqrt(max(float(np.linalg.eigvalsh(cov)[-1]), 0.0)))
    return float(np.median(lengths)) if lengths else None


def _blurred(detector: ArenaDetector, frame: np.ndarray) -> np.ndarray:
    crop = frame[detector.y0: detector.y1, detector.x0: detector.x1]
    if detector.blur_px > 1:
        crop = cv2.GaussianBlur(crop, (detector.blur_px, detector.blur_px), 0)
    return crop


def changed_floor_px(detector: ArenaDetector, samples: np.ndarray) -> float:
    """The largest connected region of floor, px, that differs from the background by more
    than the threshold in the first or the last :data:`AUTO_MIN_SHARE` of ``samples`` (in
    time order; and at least 3) on end: floor that changed during the recording and stayed
    changed, before or after the state the background took. A mouse resting somewhere in
    the middle of the recording shows in a run of samples that reaches neither end."""
    if len(samples) == 0:
        return 0.0
    shape = detector.mask.shape
    leading = np.zeros(shape, np.uint16)  # samples on end from the first one
    trailing = np.zeros(shape, np.uint16)  # samples on end up to the current one
    still_leading = np.ones(shape, bool)
    bg = detector.background.astype(np.int16)
    for frame in samples:
        changed = np.abs(_blurred(detector, frame).astype(np.int16) - bg) > detector.threshold
        still_leading &= changed
        leading += still_leading
        trailing = np.where(changed, trailing + 1, 0).astype(np.uint16)
    need = max(3, int(math.ceil(AUTO_MIN_SHARE * len(samples))))
    often = ((np.maximum(leading, trailing) >= need) & (detector.mask > 0))
    often = often.astype(np.uint8) * 255
    if detector.kernel is not None:
        often = cv2.morphologyEx(often, cv2.MORPH_OPEN, detector.kernel)
    n, _, stats, _ = cv2.connectedComponentsWithStats(often, connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max()) if n > 1 else 0.0


def plan_background_update(
    detector: ArenaDetector, settings: DetectionSettings, samples: np.ndarray
) -> ArenaDetector:
    """``detector`` with the background update decided for this video (its ``update``:
    what run.json records). ``samples`` as for :func:`~.tracker.make_detector`."""
    mode = settings.background_update
    plan: dict = {"mode": mode, "active": False, "why": None}
    length = body_length_px(detector, samples) if mode != "off" else None
    if mode == "off":
        plan["why"] = "detection.background_update is off"
    elif length is None:
        plan["why"] = "the mouse was not found in the background samples to measure"
    else:
        changed = changed_floor_px(detector, samples)
        needed = AUTO_MIN_MOUSE_AREAS * float(detector.mouse_area_px or 0.0)
        plan.update(changed_floor_px=round(changed, 1))
        if mode == "on":
            plan.update(active=True, why="detection.background_update is on")
        elif changed >= needed:
            plan.update(active=True, why=(
                f"floor changed in the background samples ({changed:.0f} px, at least "
                f"{needed:.0f} px needed)"))
        else:
            plan["why"] = (f"no floor changed in the background samples ({changed:.0f} px, "
                           f"{needed:.0f} px needed)")
    if plan["active"]:
        plan.update(
            period_s=UPDATE_PERIOD_S,
            after_s=float(settings.background_update_after_s),
            margin_bl=float(settings.background_update_margin_bl),
            body_length_px=round(float(length), 1),
            margin_px=round(float(settings.background_update_margin_bl) * float(length), 1),
        )
    return dataclasses.replace(detector, update=plan, _lit={})


class BackgroundFollower:
    """The running background update of one arena (see the module description)."""

    def __init__(self, detector: ArenaDetector):
        plan = detector.update or {}
        if not plan.get("active"):
            raise ValueError("the background update is not active for this detector")
        self.detector = detector
        self.period_s = float(plan["period_s"])
        self.after_n = max(2, int(round(float(plan["after_s"]) / self.period_s)))
        self.margin_px = float(plan["margin_px"])
        self.min_motion_px = MOTION_MOUSE_AREAS * float(detector.mouse_area_px or 0.0)
        shape = detector.mask.shape
        self.inside = detector.mask > 0
        self.bg = detector.background.astype(np.float32)
        raw = detector.raw_background
        self.raw = (detector.background if raw is None else raw).astype(np.float32)
        self.count = np.zeros(shape, np.uint16)
        self.sign = np.zeros(shape, np.int8)
        self.sum = np.zeros(shape, np.float32)
        self.sum_raw = np.zeros(shape, np.float32)
        self.previous: np.ndarray | None = None
        #: distance, px, to where the mouse last moved (None: it has not moved yet)
        self.motion_dist: np.ndarray | None = None
        self.next_s: float | None = None
        self.next_motion_s: float | None = None
        self.last_xy: tuple[float, float] | None = None  # the mouse where last found
        self.absorbed_px = 0
        self.updates = 0

    def detect_chunk(
        self, frames: np.ndarray, time_s: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """:func:`~.tracker.detect_chunk` with the update: each frame is detected against
        the background as updated so far; every :data:`UPDATE_PERIOD_S` one is looked at."""
        n = len(frames)
        x, y, area = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
        blobs = np.zeros(n, dtype=np.int16)
        shares = np.full((n, self.detector.n_chambers), np.nan, dtype=np.float32)
        measured = self.detector.light_gains(frames)
        for i in range(n):
            gain = float(measured[i])
            found, shares[i] = self.detector.detect_with_shares(frames[i], gain)
            if self._doubtful(found):
                found = self._blob_nearest_motion(frames[i], gain)
                shares[i] = self.detector.chamber_shares(frames[i], gain, *found[:3])
            x[i], y[i], area[i], blobs[i] = found
            if np.isfinite(found[0]):
                self.last_xy = (float(found[0]), float(found[1]))
            t = float(time_s[i])
            if self.next_motion_s is None or t >= self.next_motion_s:
                self.next_motion_s = t + MOTION_PERIOD_S
                self._follow_motion(self._normalised(frames[i], gain)[0])
            if self.next_s is None or t >= self.next_s:
                self.next_s = t + self.period_s
                self.observe(frames[i], gain, x[i], y[i])
        return x, y, area, blobs, measured.astype(np.float32), shares

    def _normalised(self, frame: np.ndarray, gain: float) -> tuple[np.ndarray, np.ndarray]:
        """The frame's crop, blurred and raw, at the background's brightness (float32)."""
        det = self.detector
        crop = _blurred(det, frame).astype(np.float32)
        raw = frame[det.y0: det.y1, det.x0: det.x1].astype(np.float32)
        if gain > 0 and gain != 1.0:
            crop /= np.float32(gain)
            raw /= np.float32(gain)
        return crop, raw

    def observe(self, frame: np.ndarray, gain: float, x: float, y: float) -> None:
        """Look at one frame (brightness ``gain``, the mouse tracked at ``x``, ``y``)."""
        if self.motion_dist is None:  # the mouse has not moved yet: nothing is taken in
            return
        crop, raw = self._normalised(frame, gain)
        keep_out = self._with_tracked_blob(self.motion_dist <= self.margin_px, x, y)
        self._count_steady_change(crop, raw, keep_out)
        ready = self.count >= self.after_n
        if ready.any():
            self._absorb(ready)

    def _follow_motion(self, crop: np.ndarray) -> None:
        """Where the mouse last moved: changes between this frame and the one compared
        before, blobs of :data:`MOTION_MOUSE_AREAS` or more (their distance map)."""
        previous, self.previous = self.previous, crop
        if previous is None:
            return
        det = self.detector
        moved = ((np.abs(crop - previous) > det.threshold) & self.inside).astype(np.uint8)
        ox, oy, binary = _opened(moved * 255, _SPECKS)  # only around the changes
        bx, by, bw, bh = cv2.boundingRect(binary) if binary.size else (0, 0, 0, 0)
        if bw == 0:
            return  # nothing moved: the zone stays where the mouse last moved
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            binary[by: by + bh, bx: bx + bw], connectivity=8)
        big = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= max(self.min_motion_px, 1.0)) + 1
        if len(big) == 0:
            return  # nothing moved: the zone stays where the mouse last moved
        still = np.ones(crop.shape, np.uint8)
        y0, x0 = oy + by, ox + bx
        still[y0: y0 + bh, x0: x0 + bw] = ~np.isin(labels, big)
        self.motion_dist = cv2.distanceTransform(still, cv2.DIST_L2, 3)

    def _doubtful(self, found: tuple) -> bool:
        """Whether the largest blob may not be the mouse: there are others, or it lies
        farther than the margin from where the mouse last moved."""
        if self.motion_dist is None or not np.isfinite(found[0]):
            return False
        if found[3] > 1:
            return True
        h, w = self.motion_dist.shape
        cx = min(w - 1, max(0, int(round(found[0])) - self.detector.x0))
        cy = min(h - 1, max(0, int(round(found[1])) - self.detector.y0))
        return bool(self.motion_dist[cy, cx] > self.margin_px)

    def _blob_nearest_motion(self, frame: np.ndarray, gain: float) -> tuple:
        """With several blobs, the mouse is the one nearest to where it last moved (in
        steps of a quarter margin; of equally near ones, the one nearest to where the mouse was
        last found): a patch of bedding larger than the mouse, not yet taken into the
        background, lies still, and one being kicked up appears beside the mouse."""
        assert self.motion_dist is not None
        det = self.detector
        ox, oy, binary = det.opened_foreground(frame, gain)
        bx, by, bw, bh = cv2.boundingRect(binary) if binary.size else (0, 0, 0, 0)
        if bw == 0:
            return det.detect(frame, gain)
        n, _, stats, centroids = cv2.connectedComponentsWithStats(
            binary[by: by + bh, bx: bx + bw], connectivity=8)
        h, w = self.motion_dist.shape
        best, key = None, None
        n_ok = 0
        for k in range(1, n):
            area = float(stats[k, cv2.CC_STAT_AREA])
            if not det.min_area_px <= area <= det.max_area_px:
                continue
            n_ok += 1
            cx, cy = centroids[k] + (ox + bx, oy + by)
            d = float(self.motion_dist[min(h - 1, max(0, int(round(cy)))),
                                       min(w - 1, max(0, int(round(cx))))])
            # in steps of a quarter margin: a blob on the mouse's path is at about 0
            cx, cy = float(cx) + det.x0, float(cy) + det.y0
            last = (-area if self.last_xy is None
                    else math.hypot(cx - self.last_xy[0], cy - self.last_xy[1]))
            cand = (round(4.0 * d / max(self.margin_px, 1.0)), last)
            if key is None or cand < key:
                best, key = (cx, cy, area), cand
        if best is None:
            return det.detect(frame, gain)
        return best[0], best[1], best[2], n_ok

    def _with_tracked_blob(self, keep_out: np.ndarray, x: float, y: float) -> np.ndarray:
        """The keep-out zone, with a disc of the margin around the tracked mouse when it
        lies in the zone (near its last movement)."""
        if not (np.isfinite(x) and np.isfinite(y)):
            return keep_out
        det = self.detector
        cx, cy = int(round(x)) - det.x0, int(round(y)) - det.y0
        h, w = keep_out.shape
        if not (0 <= cx < w and 0 <= cy < h and keep_out[cy, cx]):
            return keep_out
        disc = np.zeros((h, w), np.uint8)
        cv2.circle(disc, (cx, cy), int(math.ceil(self.margin_px)), 1, -1)
        return keep_out | (disc > 0)

    def _count_steady_change(self, crop: np.ndarray, raw: np.ndarray,
                             keep_out: np.ndarray) -> None:
        """Per pixel: how many looked-at frames on end it has differed from the
        background beyond the threshold, with the same sign and within the threshold of
        its mean so far, outside the keep-out zone."""
        thr = float(self.detector.threshold)
        diff = crop - self.bg
        sign = np.where(diff > thr, 1, np.where(diff < -thr, -1, 0)).astype(np.int8)
        eligible = (sign != 0) & self.inside & ~keep_out
        mean = self.sum / np.maximum(self.count, 1).astype(np.float32)
        goes_on = eligible & (self.count > 0) & (sign == self.sign) & (np.abs(crop - mean) <= thr)
        starts = eligible & ~goes_on
        self.count = np.where(goes_on, self.count + 1, np.where(starts, 1, 0)).astype(np.uint16)
        self.sum = np.where(goes_on, self.sum + crop, np.where(starts, crop, 0)).astype(np.float32)
        self.sum_raw = np.where(goes_on, self.sum_raw + raw,
                                np.where(starts, raw, 0)).astype(np.float32)
        self.sign = np.where(eligible, sign, 0).astype(np.int8)

    def _absorb(self, ready: np.ndarray) -> None:
        """Take the ``ready`` pixels into the background (their mean over the run)."""
        n = self.count[ready].astype(np.float32)
        self.bg[ready] = self.sum[ready] / n
        self.raw[ready] = self.sum_raw[ready] / n
        self.count[ready] = 0
        self.sign[ready] = 0
        self.sum[ready] = 0
        self.sum_raw[ready] = 0
        self.absorbed_px += int(ready.sum())
        self.updates += 1
        self.detector = self.detector.with_background(_to_u8(self.bg), _to_u8(self.raw))

    def describe(self) -> dict:
        """What the update did (for run.json)."""
        return {"updates": self.updates, "absorbed_px": self.absorbed_px}


def _to_u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
