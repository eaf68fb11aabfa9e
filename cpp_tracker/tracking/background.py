"""Background models: the image of the empty box, estimated from the video itself.

The basis is the per-pixel median of frames sampled evenly across the whole recording:
wherever the mouse is in fewer than half of the sampled frames, the median is the floor.
Overnight recordings break that in two ways, and :func:`estimate_background` handles both
from the same samples, before a single frame is tracked (so tracking stays one pass):

- **Lighting.** Samples taken under different lighting (drift, lights switched) are first
  brought to one reference brightness: each sample's *gain* is the median, over the arenas,
  of sample / background (robust to the mouse, which covers a few per cent of the floor),
  and the median is taken over the gain-corrected samples. The tracker then follows the
  lighting of every frame the same way (:mod:`cpp_tracker.analysis.lighting`).
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
    if not region.any() or len(samples) < 5:
        return background, None, None
    crop = _arena_crop(samples, region, background)
    area = float(crop.floor.sum())
    finder = _BlobFinder(
        crop,
        threshold=_difference_threshold(crop),
        min_area=float(min_area_px) if min_area_px else max(10.0, 0.0005 * area),
        kernel=cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3)),
    )
    fg = _foreground_of(finder)
    repair = _rebuild_ghosts(background, finder, fg, min_share, sample_index)
    if not repair.spots:
        return background, None, _hidden_mouse_warning(arena, fg.empty_samples, len(samples))
    return repair.image, _resting_report(arena, finder, fg, repair), None


@dataclass(frozen=True)
class _ArenaCrop:
    """The samples and the background inside one arena's bounding box ``y0:y1, x0:x1``,
    where ``floor`` is the arena.

    Memory: one sample's blurred crop, difference and labels are made at a time, when
    needed (stacks of them for 40 samples of a 720p arena, with float copies for the
    median, took ~700 MB).
    """

    samples: np.ndarray
    y0: int
    y1: int
    x0: int
    x1: int
    floor: np.ndarray
    background: np.ndarray  # the background's crop, blurred as the samples are, int16

    def cut(self, image: np.ndarray) -> np.ndarray:
        return image[self.y0 : self.y1, self.x0 : self.x1]

    def blurred(self, i: int) -> np.ndarray:
        """Sample ``i``'s crop, blurred (3x3) against pixel noise."""
        return cv2.GaussianBlur(self.cut(self.samples[i]), (3, 3), 0)

    def difference(self, i: int) -> np.ndarray:
        """Sample ``i`` minus the background (blurred crops, int16, signed)."""
        return self.blurred(i).astype(np.int16) - self.background


def _arena_crop(samples: np.ndarray, region: np.ndarray, background: np.ndarray) -> _ArenaCrop:
    """The crop of the bounding box of ``region`` (not empty)."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    blurred = cv2.GaussianBlur(background[y0:y1, x0:x1], (3, 3), 0).astype(np.int16)
    return _ArenaCrop(samples, y0, y1, x0, x1, region[y0:y1, x0:x1], blurred)


def _difference_threshold(crop: _ArenaCrop) -> float:
    """Foreground threshold: 6 noise sigmas (from the MAD of all samples' differences on
    the floor, robust to the mouse), at least 12 grey levels."""
    hist = IntHistogram()
    for i in range(len(crop.samples)):
        hist.add(crop.difference(i)[crop.floor])
    sigma = max(0.5, 1.4826 * hist.median_and_mad()[1])
    return max(6.0 * sigma, 12.0)


@dataclass(frozen=True)
class _BlobFinder:
    """Blobs of at least ``min_area`` px that differ from the background by more than
    ``threshold``, on the floor of ``crop``."""

    crop: _ArenaCrop
    threshold: float
    min_area: float
    kernel: np.ndarray

    def labels(self, i: int) -> np.ndarray:
        """Label image of sample ``i``'s blobs."""
        return self.labels_against(self.crop.blurred(i), self.crop.background)

    def labels_against(self, blurred: np.ndarray, background: np.ndarray) -> np.ndarray:
        """Label image of the blobs of a blurred crop against a blurred background."""
        diff = np.abs(blurred.astype(np.int16) - background)
        return _blobs(diff, self.threshold, self.crop.floor, self.min_area, self.kernel)


@dataclass(frozen=True)
class _Foreground:
    """Each sample's foreground, bit-packed (8 pixels a byte), and per pixel the number of
    samples in which it is foreground."""

    packed: list[np.ndarray]
    count: np.ndarray

    def of(self, i: int) -> np.ndarray:
        shape = self.count.shape
        return np.unpackbits(self.packed[i], count=self.count.size).reshape(shape).view(bool)

    def share(self, indices: list[int]) -> np.ndarray:
        """Per pixel, the share of ``indices`` samples in which it is foreground."""
        acc = np.zeros(self.count.shape, dtype=np.uint16)
        for i in indices:
            acc += self.of(i)
        return acc / len(indices)

    @property
    def empty_samples(self) -> int:
        """Samples without any foreground."""
        return int(sum(not p.any() for p in self.packed))


def _foreground_of(finder: _BlobFinder) -> _Foreground:
    """Where each sample has a blob."""
    packed = []
    count = np.zeros(finder.crop.floor.shape, dtype=np.uint16)
    for i in range(len(finder.crop.samples)):
        f = finder.labels(i) > 0
        count += f
        packed.append(np.packbits(f, axis=None))
    return _Foreground(packed, count)


@dataclass(frozen=True)
class _Repair:
    """The background with its ghosts rebuilt, one report per ghost (``spots``), and all
    rebuilt pixels of the crop (``rebuilt``)."""

    image: np.ndarray
    spots: list[dict]
    rebuilt: np.ndarray


def _rebuild_ghosts(
    background: np.ndarray,
    finder: _BlobFinder,
    fg: _Foreground,
    min_share: float,
    sample_index: np.ndarray | None,
) -> _Repair:
    """Rebuild every ghost among the places that are foreground in at least ``min_share``
    of the samples (the test and the rebuilding in :func:`remove_resting_mouse`)."""
    crop, min_area, n = finder.crop, finder.min_area, len(finder.crop.samples)
    candidates = (((fg.count / n) >= min_share) & crop.floor).astype(np.uint8)
    n_c, comp_labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=8)
    out = background.copy()
    crop_out = crop.cut(out)
    found: list[dict] = []
    ghost_all = np.zeros_like(crop.floor)
    for c in range(1, n_c):
        if stats[c, cv2.CC_STAT_AREA] < min_area:
            continue
        comp = comp_labels == c
        showing = _ghost_showings(comp, finder, fg)
        if showing is None:
            continue
        ghost = _ghost_mask(comp, showing.samples, fg, crop.floor, finder.kernel)
        rebuilt = _rebuilt_patch(crop, showing, ghost)
        # judged against the background with the ghosts rebuilt so far
        if not _looks_like_floor(rebuilt, crop_out, ghost, crop.floor, finder.kernel):
            continue  # does not look like floor: a light, an object, not a mouse
        crop_out[ghost] = np.clip(np.round(rebuilt), 0, 255).astype(np.uint8)
        ghost_all |= ghost
        found.append(_spot_report(ghost, showing.samples, crop, sample_index))
    return _Repair(out, found, ghost_all)


@dataclass(frozen=True)
class _Showings:
    """The samples in which a ghost candidate shows, and in each, the mouse elsewhere
    (foreground not touching the candidate; ``(len(samples), h, w)`` bool)."""

    samples: list[int]
    mouse: np.ndarray


def _ghost_showings(comp: np.ndarray, finder: _BlobFinder, fg: _Foreground) -> _Showings | None:
    """Where the candidate ``comp`` shows, if it is the ghost of a mouse: it shows in at
    least 3 samples, in at least 80 % of them the mouse is elsewhere, and it has the
    opposite contrast of the mouse. None otherwise."""
    showing = [i for i in range(len(finder.crop.samples)) if fg.of(i)[comp].mean() >= 0.5]
    if len(showing) < 3:
        return None
    # in each sample where it shows: is the mouse elsewhere (a blob not touching it)?
    elsewhere = np.zeros((len(showing),) + comp.shape, dtype=bool)
    for k, i in enumerate(showing):
        labels = finder.labels(i)
        touching = np.unique(labels[comp])
        elsewhere[k] = (labels > 0) & ~np.isin(labels, touching)
    has_other = elsewhere.reshape(len(showing), -1).any(axis=1)
    if has_other.mean() < 0.8:
        return None  # the mouse itself, resting there in a minority of the samples
    shown = np.stack([finder.crop.difference(i) for i in showing])
    ghost_sign = float(np.sign(np.median(shown[:, comp])))
    mouse_vals = shown[elsewhere]
    mouse_sign = float(np.sign(np.median(mouse_vals))) if mouse_vals.size else 0.0
    if mouse_sign != 0 and ghost_sign == mouse_sign:
        return None  # same contrast as the mouse: not the imprint of a mouse
    return _Showings(showing, elsewhere)


def _ghost_mask(comp: np.ndarray, showing: list[int], fg: _Foreground, floor: np.ndarray,
                kernel: np.ndarray) -> np.ndarray:
    """The pixels to rebuild: foreground in most samples where the ghost shows, near the
    candidate, widened by two pixels (the ghost's blurred edge)."""
    near = cv2.dilate(comp.astype(np.uint8), kernel, iterations=3).astype(bool)
    ghost = (fg.share(showing) > 0.5) & near & floor
    return cv2.dilate(ghost.astype(np.uint8), kernel, iterations=2).astype(bool) & floor


def _rebuilt_patch(crop: _ArenaCrop, showing: _Showings, ghost: np.ndarray) -> np.ndarray:
    """The ghost's pixels as the median of the samples in which it shows, leaving out
    where the mouse was in each (the plain median where that leaves nothing)."""
    raw = np.stack([crop.cut(crop.samples[i]) for i in showing.samples]).astype(np.float32)
    masked = raw.copy()
    masked[showing.mouse] = np.nan
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rebuilt = np.nanmedian(masked[:, ghost], axis=0)
    return np.where(np.isnan(rebuilt), np.median(raw[:, ghost], axis=0), rebuilt)


def _looks_like_floor(rebuilt: np.ndarray, crop_out: np.ndarray, ghost: np.ndarray,
                      floor: np.ndarray, kernel: np.ndarray) -> bool:
    """Whether the rebuilt patch matches the floor around the ghost (a ring of 3 px)
    better than the background there did; True where there is no floor around it."""
    ring = cv2.dilate(ghost.astype(np.uint8), kernel, iterations=3).astype(bool)
    ring &= floor & ~ghost
    if not ring.any():
        return True
    around = float(np.median(crop_out[ring]))
    before = abs(float(np.median(crop_out[ghost])) - around)
    after = abs(float(np.median(rebuilt)) - around)
    return after < before


def _spot_report(ghost: np.ndarray, showing: list[int], crop: _ArenaCrop,
                 sample_index: np.ndarray | None) -> dict:
    """One rebuilt ghost for run.json: where (frame pixels), how large, and the samples in
    which the mouse rested there (those where the ghost did not show)."""
    ys_g, xs_g = np.nonzero(ghost)
    hidden = [i for i in range(len(crop.samples)) if i not in set(showing)]
    return {
        "where_xy": [round(float(xs_g.mean()) + crop.x0, 1),
                     round(float(ys_g.mean()) + crop.y0, 1)],
        "rebuilt_px": int(ghost.sum()),
        "samples_mouse_there": len(hidden),
        "frames_mouse_there": (
            [] if sample_index is None else [int(sample_index[i]) for i in hidden]
        ),
    }


def _hidden_mouse_warning(arena: str, empty: int, n: int) -> str | None:
    """A warning when no resting mouse was found but no mouse shows in half the samples or
    more: it may rest in one place for nearly the whole video."""
    if empty < 0.5 * n:
        return None
    where = f"arena {arena}: " if arena else ""
    return (
        f"{where}no mouse is visible in {empty} of {n} background samples: it may "
        "rest in one place for nearly the whole video and be part of the background; "
        "check background.png and raise background.samples"
    )


def _resting_report(arena: str, finder: _BlobFinder, fg: _Foreground, repair: _Repair) -> dict:
    """The arena's report for run.json: samples without a mouse before and after the repair
    (the check that it worked), and the spot where the mouse rested in most samples."""
    crop = finder.crop
    n = len(crop.samples)
    repaired = cv2.GaussianBlur(crop.cut(repair.image), (3, 3), 0).astype(np.int16)
    empty_after = sum(
        finder.labels_against(crop.blurred(i), repaired).max() == 0 for i in range(n)
    )
    main_spot = max(repair.spots, key=lambda d: d["samples_mouse_there"])
    return {
        "arena": arena,
        "samples": n,
        "samples_without_mouse": fg.empty_samples,
        "samples_without_mouse_after": int(empty_after),
        "samples_mouse_there": main_spot["samples_mouse_there"],
        "frames_mouse_there": main_spot["frames_mouse_there"],
        "where_xy": main_spot["where_xy"],
        "rebuilt_px": int(repair.rebuilt.sum()),
        "spots": len(repair.spots),
    }
