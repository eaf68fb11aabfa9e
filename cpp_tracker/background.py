"""Background models: the image of the empty box, estimated from the video itself.

The basis is the per-pixel median of frames sampled evenly across the whole recording:
wherever the mouse is in fewer than half of the sampled frames, the median is the floor.
Overnight recordings break that in two ways, and :func:`estimate_background` handles both
from the same samples, before a single frame is tracked (so tracking stays one pass):

- **Lighting.** Samples taken under different lighting (drift, lights switched) are first
  brought to one reference brightness: each sample's *gain* is the median, over the arenas,
  of sample / background (robust to the mouse, which covers a few per cent of the floor),
  and the median is taken over the gain-corrected samples. The tracker then follows the
  lighting of every frame the same way (:mod:`cpp_tracker.lighting`).
- **A resting mouse.** A mouse that sleeps in one spot for more than half of the recording
  is *in* the median. Its signature in the samples: whenever the mouse is seen elsewhere,
  a "ghost" of the opposite contrast sits at the same place (the floor where the
  background has the mouse), and there is only one mouse per arena.
  :func:`remove_resting_mouse` finds that ghost and rebuilds its pixels from the samples
  in which the mouse was elsewhere.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "IntHistogram",
    "BackgroundModel",
    "median_background",
    "sample_gains",
    "estimate_background",
    "remove_resting_mouse",
]

#: Pixels darker than this in the background are not used to measure gains (their ratio
#: is dominated by noise).
_MIN_GAIN_LEVEL = 12

#: Gains within this distance of 1 count as "no lighting difference".
_GAIN_TOLERANCE = 0.02


class IntHistogram:
    """Exact median and median absolute deviation of integer differences in [-255, 255]."""

    def __init__(self) -> None:
        self.counts = np.zeros(511, dtype=np.int64)

    def add(self, values: np.ndarray) -> None:
        self.counts += np.bincount(values.astype(np.int64) + 255, minlength=511)

    @staticmethod
    def _median(values: np.ndarray, counts: np.ndarray) -> float:
        """np.median of the multiset (sorted ``values`` with ``counts``)."""
        n = int(counts.sum())
        cum = np.cumsum(counts)
        lo = values[np.searchsorted(cum, (n - 1) // 2 + 1)]
        hi = values[np.searchsorted(cum, n // 2 + 1)]
        return (float(lo) + float(hi)) / 2.0

    def median_and_mad(self) -> tuple[float, float]:
        if self.counts.sum() == 0:
            return 0.0, 0.0
        values = np.arange(-255, 256, dtype=np.float64)
        med = self._median(values, self.counts)
        dev = np.abs(values - med)
        order = np.argsort(dev, kind="stable")
        mad = self._median(dev[order], self.counts[order])
        return med, mad


def median_background(frames: np.ndarray) -> np.ndarray:
    """Per-pixel median of ``frames`` (n, h, w) uint8 -> (h, w) uint8.

    Computed in horizontal bands so that memory stays at one band of the stack at a time.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError("median_background needs a non-empty stack of frames (n, h, w)")
    n, h, w = frames.shape
    out = np.empty((h, w), dtype=np.uint8)
    band = max(1, int(4_000_000 // max(1, n * w)))
    for y0 in range(0, h, band):
        out[y0 : y0 + band] = np.median(frames[:, y0 : y0 + band], axis=0).round().astype(np.uint8)
    return out


def _gain_pixels(background: np.ndarray, region: np.ndarray, max_pixels: int = 20_000):
    """Flat indices of a regular grid of usable pixels inside ``region``."""
    usable = region & (background >= _MIN_GAIN_LEVEL)
    step = max(1, int(np.sqrt(usable.sum() / max_pixels)))
    grid = np.zeros_like(usable)
    grid[::step, ::step] = True
    return np.flatnonzero(usable & grid)


def sample_gains(frames: np.ndarray, background: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Brightness of each frame relative to ``background``: median of frame / background.

    ``region`` (bool, frame-sized) limits the pixels used (the arenas). A mouse covering a
    few per cent of them moves the median very little.
    """
    px = _gain_pixels(background, region)
    if len(px) == 0:
        return np.ones(len(frames))
    ref = background.reshape(-1)[px].astype(np.float32)
    flat = frames.reshape(len(frames), -1)
    return np.array([float(np.median(flat[i, px] / ref)) for i in range(len(frames))])


def _apply_gains(frames: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Frames divided by their gains (uint8, rounded and clipped)."""
    out = np.empty_like(frames)
    for i, g in enumerate(gains):
        if abs(g - 1.0) < 1e-6 or g <= 0:
            out[i] = frames[i]
        else:
            out[i] = cv2.convertScaleAbs(frames[i], alpha=1.0 / float(g))
    return out


@dataclass(frozen=True)
class BackgroundModel:
    """The background and what was done to get it.

    ``image`` is the empty box at the reference lighting; ``samples`` are the sampled
    frames brought to that lighting (for calibrating detection); ``sample_gains`` the
    brightness of each sample relative to ``image``.
    """

    image: np.ndarray
    samples: np.ndarray
    sample_index: np.ndarray
    sample_gains: np.ndarray
    resting_mouse: tuple[dict, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> dict:
        """Plain data for run.json."""
        g = self.sample_gains
        return {
            "method": "median of gain-corrected samples",
            "samples": int(len(self.sample_index)),
            "sample_frames": [int(i) for i in self.sample_index],
            "sample_gain_min": round(float(g.min()), 4) if len(g) else None,
            "sample_gain_max": round(float(g.max()), 4) if len(g) else None,
            "resting_mouse": list(self.resting_mouse),
        }


def estimate_background(
    samples: np.ndarray,
    sample_index: np.ndarray | None = None,
    regions: dict[str, np.ndarray] | None = None,
    *,
    correct_lighting: bool = True,
    remove_resting: bool = True,
    min_area_px: dict[str, float] | None = None,
) -> BackgroundModel:
    """The empty-box image from ``samples`` (n, h, w) uint8 spread over the video.

    Parameters
    ----------
    samples, sample_index
        The sampled frames and their decode indices.
    regions
        Arena name -> frame-sized bool mask of the arena floor (polygon minus masks). The
        lighting is measured inside their union (the whole frame without regions), and a
        resting mouse is looked for in each.
    correct_lighting
        Bring the samples to one brightness before the median (see the module text).
    remove_resting
        Look for, and remove, a mouse that rests in one spot in most samples.
    min_area_px
        Arena name -> smallest blob that can be the mouse (automatic where missing).
    """
    samples = np.asarray(samples)
    if sample_index is None:
        sample_index = np.arange(len(samples))
    regions = regions or {}
    h, w = samples.shape[1:]
    union = np.zeros((h, w), dtype=bool)
    for r in regions.values():
        union |= r
    if not union.any():
        union[:] = True
    background = median_background(samples)
    gains = np.ones(len(samples))
    normalised = samples
    if correct_lighting and len(samples) > 1:
        g = sample_gains(samples, background, union)
        if np.any(np.abs(g - 1.0) >= _GAIN_TOLERANCE):
            for _ in range(4):
                normalised = _apply_gains(samples, g)
                background = median_background(normalised)
                g_new = sample_gains(samples, background, union)
                converged = float(np.max(np.abs(g_new - g))) < 0.005
                g = g_new
                if converged:
                    break
            normalised = _apply_gains(samples, g)
        gains = g
    repairs: list[dict] = []
    warnings: list[str] = []
    if remove_resting:
        for name, region in regions.items():
            limit = (min_area_px or {}).get(name)
            background, report, warning = remove_resting_mouse(
                background, normalised, region, min_area_px=limit, arena=name,
                sample_index=sample_index,
            )
            if report:
                repairs.append(report)
            if warning:
                warnings.append(warning)
    return BackgroundModel(
        image=background,
        samples=normalised,
        sample_index=np.asarray(sample_index),
        sample_gains=np.asarray(gains, dtype=float),
        resting_mouse=tuple(repairs),
        warnings=tuple(warnings),
    )


def _blobs(diff_abs: np.ndarray, threshold: float, region: np.ndarray, min_area: float,
           kernel: np.ndarray) -> np.ndarray:
    """Label image of the blobs of at least ``min_area`` px in one difference image."""
    binary = ((diff_abs > threshold) & region).astype(np.uint8)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = True  # the background label is 0 anyway
    if not keep.all():
        labels = np.where(keep[labels], labels, 0)
    return labels


def remove_resting_mouse(
    background: np.ndarray,
    samples: np.ndarray,
    region: np.ndarray,
    *,
    min_area_px: float | None = None,
    arena: str = "",
    sample_index: np.ndarray | None = None,
    min_share: float = 0.1,
) -> tuple[np.ndarray, dict | None, str | None]:
    """Remove a mouse that the median put into the background of one arena.

    Returns ``(background, report, warning)``: a new background (the input is not
    changed), a report for run.json when a resting mouse was found (else ``None``), and a
    warning when one is suspected but could not be removed.

    The test rests on there being one mouse per arena. Blobs are sought in every sample
    (absolute difference to the background, threshold from the noise). A place that is
    foreground in at least ``min_share`` of the samples is either the mouse resting there
    (then, in those samples, there is no other blob) or the *ghost* of a mouse that the
    background holds there: then, whenever it shows, the mouse is elsewhere (another blob,
    of the opposite contrast). A ghost is rebuilt as the median of the samples in which it
    shows, leaving out where the mouse itself was in each, and kept only if the rebuilt
    patch matches the floor around it better than before (a blinking light, say, does not).
    """
    ys, xs = np.nonzero(region)
    if len(ys) == 0 or len(samples) < 5:
        return background, None, None
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    reg = region[y0:y1, x0:x1]
    area = float(reg.sum())
    min_area = float(min_area_px) if min_area_px else max(10.0, 0.0005 * area)
    bg = cv2.GaussianBlur(background[y0:y1, x0:x1], (3, 3), 0).astype(np.int16)
    n = len(samples)

    # Memory: one sample's blurred crop, difference and labels at a time, the foreground
    # masks bit-packed (stacks of them for 40 samples of a 720p arena, with float copies
    # for the median, took ~700 MB).
    def crop_of(i: int) -> np.ndarray:
        return cv2.GaussianBlur(samples[i][y0:y1, x0:x1], (3, 3), 0)

    def signed_of(i: int) -> np.ndarray:
        return crop_of(i).astype(np.int16) - bg

    hist = IntHistogram()
    for i in range(n):
        hist.add(signed_of(i)[reg])
    sigma = max(0.5, 1.4826 * hist.median_and_mad()[1])
    threshold = max(6.0 * sigma, 12.0)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def labels_of(i: int) -> np.ndarray:
        return _blobs(np.abs(signed_of(i)), threshold, reg, min_area, kernel)

    packed = []  # each sample's foreground, 8 pixels a byte
    count = np.zeros(reg.shape, dtype=np.uint16)  # samples in which a pixel is foreground
    for i in range(n):
        f = labels_of(i) > 0
        count += f
        packed.append(np.packbits(f, axis=None))

    def fg(i: int) -> np.ndarray:
        return np.unpackbits(packed[i], count=reg.size).reshape(reg.shape).view(bool)

    def share(indices: list[int]) -> np.ndarray:
        """Per pixel, the share of ``indices`` samples in which it is foreground."""
        acc = np.zeros(reg.shape, dtype=np.uint16)
        for i in indices:
            acc += fg(i)
        return acc / len(indices)

    where = f"arena {arena}: " if arena else ""
    empty = int(sum(not packed[i].any() for i in range(n)))

    candidates = (((count / n) >= min_share) & reg).astype(np.uint8)
    n_c, comp_labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    out = background.copy()
    crop_out = out[y0:y1, x0:x1]
    found: list[dict] = []
    ghost_all = np.zeros_like(reg)
    for c in range(1, n_c):
        if stats[c, cv2.CC_STAT_AREA] < min_area:
            continue
        comp = comp_labels == c
        near = cv2.dilate(comp.astype(np.uint8), kernel, iterations=3).astype(bool)
        showing = [i for i in range(n) if fg(i)[comp].mean() >= 0.5]
        if len(showing) < 3:
            continue
        # in each sample where it shows: is the mouse elsewhere (a blob not touching it)?
        elsewhere = np.zeros((len(showing),) + reg.shape, dtype=bool)
        for k, i in enumerate(showing):
            labels = labels_of(i)
            touching = np.unique(labels[comp])
            elsewhere[k] = (labels > 0) & ~np.isin(labels, touching)
        has_other = elsewhere.reshape(len(showing), -1).any(axis=1)
        if has_other.mean() < 0.8:
            continue  # the mouse itself, resting there in a minority of the samples
        shown = np.stack([signed_of(i) for i in showing])
        ghost_sign = float(np.sign(np.median(shown[:, comp])))
        mouse_vals = shown[elsewhere]
        mouse_sign = float(np.sign(np.median(mouse_vals))) if mouse_vals.size else 0.0
        if mouse_sign != 0 and ghost_sign == mouse_sign:
            continue  # same contrast as the mouse: not the imprint of a mouse
        ghost = (share(showing) > 0.5) & near & reg
        ghost = cv2.dilate(ghost.astype(np.uint8), kernel, iterations=2).astype(bool) & reg
        raw = np.stack([samples[i][y0:y1, x0:x1] for i in showing]).astype(np.float32)
        masked = raw.copy()
        masked[elsewhere] = np.nan
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rebuilt = np.nanmedian(masked[:, ghost], axis=0)
        rebuilt = np.where(np.isnan(rebuilt), np.median(raw[:, ghost], axis=0), rebuilt)
        ring = cv2.dilate(ghost.astype(np.uint8), kernel, iterations=3).astype(bool)
        ring &= reg & ~ghost
        if ring.any():
            floor = float(np.median(crop_out[ring]))
            before = abs(float(np.median(crop_out[ghost])) - floor)
            after = abs(float(np.median(rebuilt)) - floor)
            if after >= before:
                continue  # does not look like floor: a light, an object, not a mouse
        crop_out[ghost] = np.clip(np.round(rebuilt), 0, 255).astype(np.uint8)
        ghost_all |= ghost
        ys_g, xs_g = np.nonzero(ghost)
        hidden = [i for i in range(n) if i not in set(showing)]
        found.append({
            "where_xy": [round(float(xs_g.mean()) + x0, 1), round(float(ys_g.mean()) + y0, 1)],
            "rebuilt_px": int(ghost.sum()),
            "samples_mouse_there": len(hidden),
            "frames_mouse_there": (
                [] if sample_index is None else [int(sample_index[i]) for i in hidden]
            ),
        })
    if not found:
        if empty >= 0.5 * n:
            return background, None, (
                f"{where}no mouse is visible in {empty} of {n} background samples: it may "
                "rest in one place for nearly the whole video and be part of the background; "
                "check background.png and raise background.samples"
            )
        return background, None, None
    bg2 = cv2.GaussianBlur(crop_out, (3, 3), 0).astype(np.int16)
    empty_after = sum(
        _blobs(np.abs(c.astype(np.int16) - bg2), threshold, reg, min_area, kernel).max() == 0
        for c in (crop_of(i) for i in range(n))
    )
    main_spot = max(found, key=lambda d: d["samples_mouse_there"])
    report = {
        "arena": arena,
        "samples": n,
        "samples_without_mouse": empty,
        "samples_without_mouse_after": int(empty_after),
        "samples_mouse_there": main_spot["samples_mouse_there"],
        "frames_mouse_there": main_spot["frames_mouse_there"],
        "where_xy": main_spot["where_xy"],
        "rebuilt_px": int(ghost_all.sum()),
        "spots": len(found),
    }
    return out, report, None
