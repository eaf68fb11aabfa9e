"""Where the trial starts in a recording that begins with the experimenter (``trial.start:
auto``).

A real recording often starts before the trial: a gloved hand puts the mouse in, the lid
closes, the guillotine doors are lifted. The trial starts at the first moment from which,
for ``settle_s`` seconds in a row, every arena looks like its empty-box image plus one
mouse:

- no large foreground: nothing crosses the arena's outline from outside (an arm) and the
  foreground inside is not larger than a few mouse areas (a hand);
- the doorways look like the empty-box image (the empty box is the median of frames over
  the whole recording, in which the doors are open): no plate lies on a door line;
- one mouse-sized blob is there (so an empty box before the hand comes is not the start).

The rules scale with the mouse as the tracker measured it in the background samples (its
area and body width), never with fixed pixel counts. Only the beginning of the first video
file is read, chunk by chunk (memory flat), up to ``search_s`` seconds; the start is known
before tracking begins, so time segments (``--workers``) are split after it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..config.settings import ArenaConfig, Config
from ..video.reader import FrameChunk, VideoInfo, VideoReader
from .empty_box import background_samples, estimate_background_for
from .tracker import ArenaDetector, arena_mask, make_detector

__all__ = [
    "TrialStart",
    "ArenaLook",
    "FrameLook",
    "arena_looks",
    "look_at",
    "find_trial_start",
    "detect_trial_start",
    "HAND_MOUSE_AREAS",
    "OUTLINE_MOUSE_AREAS",
]

#: foreground inside an arena larger than this many mouse areas is not one mouse (a hand)
HAND_MOUSE_AREAS = 3.0
#: foreground in the band around the outline larger than this share of a mouse area is
#: something reaching in from outside (an arm)
OUTLINE_MOUSE_AREAS = 0.1
#: a mouse-sized blob: this range of the mouse's measured area
_MOUSE_RANGE = (0.3, HAND_MOUSE_AREAS)
#: the outline band is this many body lengths wide; a body length is about 2.5 widths
_BAND_LENGTHS = 0.5
_LENGTH_PER_WIDTH = 2.5
#: a door's strip is this many body widths to each side of its line (a plate thinner than
#: 0.6 body widths lies within it)
_STRIP_WIDTHS = 0.3
#: a door is closed when plate-like foreground covers this many body widths of its line
_CLOSED_WIDTHS = 0.5
#: the difference threshold in noise sigmas (and at least _MIN_THRESHOLD grey levels), or
#: the tracker's when lower: the tracker raises its own to the mouse's contrast, which can
#: hide a plate or a glove less contrasted than a light mouse on a dark floor
_NOISE_SIGMAS = 6.0
_MIN_THRESHOLD = 15.0
#: frames examined per second (every frame of slower videos)
_LOOK_FPS = 10.0


@dataclass(frozen=True)
class TrialStart:
    """The trial's start as requested, as found, and why."""

    requested: str  # 'auto'
    start_s: float  # from the start of the recording (0 when not found)
    found: bool
    reason: str
    hand_last_seen_s: float | None = None  # after the last frame with a hand or arm
    door_last_closed_s: float | None = None  # after the last frame with a door closed
    arm_last_seen_s: float | None = None  # after the last frame with an arm across the outline
    search_s: float = 600.0
    settle_s: float = 1.0


@dataclass(frozen=True)
class ArenaLook:
    """What :func:`look_at` needs for one arena: its crop (the arena with a band around
    it), masks, the blurred empty box there, the threshold and the mouse's size."""

    name: str
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in the frame
    inside: np.ndarray  # bool: the arena polygon
    band: np.ndarray  # bool: around the outline, outside every arena
    strips: tuple[np.ndarray, ...]  # bool per door: its line, widened, inside the arena
    along: tuple[np.ndarray, ...]  # per door: each crop pixel's position along the line, px
    background: np.ndarray  # float32, blurred
    threshold: float  # grey levels (see _NOISE_SIGMAS)
    mouse_area_px: float
    body_width_px: float


@dataclass(frozen=True)
class FrameLook:
    """One arena in one frame."""

    hand: bool  # large foreground inside, or something across the outline
    doors_closed: bool
    mouse: bool  # one mouse-sized blob
    arm: bool = False  # something across the outline: only an arm does that

    @property
    def ok(self) -> bool:
        return not self.hand and not self.doors_closed and self.mouse


def _mouse_size(detector: ArenaDetector, arena_area: float) -> tuple[float, float]:
    """(area, body width) of the mouse: the area as the tracker measured it in the
    background samples (without a measurement, 1 % of the arena), the width that of an
    ellipse of that area 2.5 times as long as wide (the area is the steadier measure)."""
    area = detector.mouse_area_px or 0.01 * arena_area
    return float(area), math.sqrt(area / (math.pi / 4 * _LENGTH_PER_WIDTH))


def arena_looks(config: Config, background: np.ndarray,
                detectors: Sequence[ArenaDetector]) -> list[ArenaLook]:
    """The per-arena inputs of :func:`look_at`, from the empty box and the detectors."""
    h, w = background.shape
    # every arena's whole outline, masks included: a masked cable or light inside a box
    # is neither floor to look at nor the band an arm reaches across
    everywhere = np.zeros((h, w), bool)
    for a in config.arenas:
        everywhere |= arena_mask(dataclasses.replace(a, masks=()), 0, 0, w, h) > 0
    return [_arena_look(a, d, background, everywhere)
            for a, d in zip(config.arenas, detectors, strict=True)]


def _arena_look(arena: ArenaConfig, detector: ArenaDetector, background: np.ndarray,
                everywhere: np.ndarray) -> ArenaLook:
    h, w = background.shape
    full = arena_mask(arena, 0, 0, w, h) > 0
    area, width = _mouse_size(detector, float(full.sum()))
    reach = max(2, int(round(_BAND_LENGTHS * _LENGTH_PER_WIDTH * width)))
    ys, xs = np.nonzero(full)
    x0, x1 = max(0, xs.min() - reach), min(w, xs.max() + reach + 1)
    y0, y1 = max(0, ys.min() - reach), min(h, ys.max() + reach + 1)
    inside = full[y0:y1, x0:x1]
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
    grown = cv2.dilate(inside.astype(np.uint8), disc) > 0
    band = grown & ~everywhere[y0:y1, x0:x1]
    half = max(1, int(round(_STRIP_WIDTHS * width)))
    strips, along = [], []
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    for door in arena.doors:
        m = np.zeros(inside.shape, np.uint8)
        (ax, ay), (bx, by) = door.line
        cv2.line(m, (int(round(ax - x0)), int(round(ay - y0))),
                 (int(round(bx - x0)), int(round(by - y0))), 1, 2 * half + 1)
        strips.append((m > 0) & inside)
        length = max(math.hypot(bx - ax, by - ay), 1e-6)
        along.append(((xx - ax) * (bx - ax) + (yy - ay) * (by - ay)) / length)
    bg = _blurred(background[y0:y1, x0:x1].astype(np.float32))
    threshold = min(float(detector.threshold),
                    max(_NOISE_SIGMAS * float(detector.noise_sigma), _MIN_THRESHOLD))
    return ArenaLook(arena.name, (int(x0), int(y0), int(x1), int(y1)), inside, band,
                     tuple(strips), tuple(along), bg, threshold, area, width)


def _blurred(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (5, 5), 0)


def look_at(frame: np.ndarray, look: ArenaLook) -> FrameLook:
    """Whether one arena of ``frame`` looks like its empty box plus one mouse (and if not,
    why): the frame's brightness matched to the empty box's first (a lid or a camera's
    exposure changes it), then the difference thresholded as the tracker does. The band
    around the box is also matched on its own: a light step can change the outside (bright
    walls near white) unlike the floor, and the whole band would look like an arm; an arm
    covers only a little of it."""
    x0, y0, x1, y1 = look.crop
    crop = _blurred(frame[y0:y1, x0:x1].astype(np.float32))
    fg = np.zeros(crop.shape, bool)
    for region, matched_on in ((look.inside, look.inside | look.band), (look.band, look.band)):
        if region.any():
            fg[region] = _different(crop, look.background, region, matched_on,
                                    look.threshold)
    opened = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    inner = opened.astype(bool) & look.inside
    across = int(np.count_nonzero(opened.astype(bool) & look.band))
    arm = across > OUTLINE_MOUSE_AREAS * look.mouse_area_px
    hand = arm or np.count_nonzero(inner) > HAND_MOUSE_AREAS * look.mouse_area_px
    plates = _plates(fg & look.inside, look)
    return FrameLook(hand=hand, doors_closed=bool(plates.any()),
                     mouse=_one_mouse(inner & ~plates, look.mouse_area_px), arm=arm)


def _different(crop: np.ndarray, empty: np.ndarray, region: np.ndarray,
               matched_on: np.ndarray, threshold: float) -> np.ndarray:
    """The ``region``'s pixels unlike the empty box's once the brightness is matched to it
    (the median gain over ``matched_on``)."""
    gain = float(np.median(crop[matched_on] / np.maximum(empty[matched_on], 1.0)))
    return np.abs(crop[region] - gain * empty[region]) > threshold * max(gain, 0.5)


def _one_mouse(inner: np.ndarray, mouse_area: float) -> bool:
    n, _, stats, _ = cv2.connectedComponentsWithStats(inner.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    lo, hi = _MOUSE_RANGE
    return bool(np.any((areas >= lo * mouse_area) & (areas <= hi * mouse_area)))


def _plates(fg: np.ndarray, look: ArenaLook) -> np.ndarray:
    """The pixels of closed doors: blobs lying mostly on a door's line (a plate; a mouse
    passing an open door lies mostly off it) each of which covers at least half a body
    width of the line's length (whatever the plate's thickness). Each blob on its own: noise
    specks on the line (a lighting step, a low threshold) add up to a length, not a plate."""
    out = np.zeros(fg.shape, bool)
    if not look.strips or not fg.any():
        return out
    n, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    total = np.bincount(labels.ravel(), minlength=n)
    for strip, along in zip(look.strips, look.along, strict=True):
        on_line = np.bincount(labels[strip], minlength=n)
        plate = (on_line >= 0.6 * total) & (np.arange(n) > 0)
        if not plate.any():
            continue
        pixels = strip & plate[labels]
        # the line's length each blob covers: its distinct whole-pixel positions along it
        spots = np.unique(np.stack([labels[pixels], np.round(along[pixels]).astype(np.int64)]),
                          axis=1)
        covered = np.bincount(spots[0], minlength=n)
        wide = covered >= _CLOSED_WIDTHS * look.body_width_px
        out |= pixels & wide[labels]
    return out


@dataclass
class _Watch:
    """The scan's state: the current run of good frames, and the last bad ones."""

    run_from: float | None = None
    last_hand: float | None = None
    last_arm: float | None = None
    last_closed: float | None = None
    last_time: float = 0.0
    first_time: float | None = None


def find_trial_start(
    chunks: Iterable[FrameChunk], looks: Sequence[ArenaLook], *, settle_s: float,
    search_s: float, stride: int = 1,
) -> TrialStart:
    """The first time from which every frame looks like the empty box plus one mouse in
    every arena for ``settle_s`` seconds, in frames up to ``search_s``. Every
    ``stride``-th frame is looked at; where a run of good frames begins, the frames skipped
    just before it are looked at too (latest first), so the start is that of a frame, not
    of the stride."""
    watch = _Watch()
    skipped: list[tuple[float, np.ndarray]] = []  # frames since the last one looked at
    n = 0
    for chunk in chunks:
        for i in range(len(chunk)):
            t = float(chunk.time_s[i])
            if watch.first_time is None:
                watch.first_time = t
            if t > search_s:
                return _not_found(watch, search_s, settle_s, "search limit")
            n += 1
            if (n - 1) % stride:
                skipped.append((t, chunk.frames[i]))
                continue
            started = watch.run_from is None
            _note(watch, t, [look_at(chunk.frames[i], lk) for lk in looks])
            if started and watch.run_from is not None:
                watch.run_from = _earliest_good(skipped, looks, t)
            skipped.clear()
            if watch.run_from is not None and t - watch.run_from >= settle_s:
                return _found(watch, search_s, settle_s)
    return _not_found(watch, search_s, settle_s, "end")


def _earliest_good(skipped: list[tuple[float, np.ndarray]], looks: Sequence[ArenaLook],
                   t: float) -> float:
    """The earliest of the ``skipped`` frames from which all up to ``t`` look good."""
    for ts, frame in reversed(skipped):
        if not all(look_at(frame, lk).ok for lk in looks):
            break
        t = ts
    return t


def _note(watch: _Watch, t: float, seen: list[FrameLook]) -> None:
    if any(s.hand for s in seen):
        watch.last_hand = t
    if any(s.arm for s in seen):
        watch.last_arm = t
    if any(s.doors_closed for s in seen):
        watch.last_closed = t
    if all(s.ok for s in seen):
        if watch.run_from is None:
            watch.run_from = t
    else:
        watch.run_from = None
    watch.last_time = t


def _found(watch: _Watch, search_s: float, settle_s: float) -> TrialStart:
    start = float(watch.run_from)  # type: ignore[arg-type]
    parts = []
    parts.append("no hand seen" if watch.last_hand is None
                 else f"hand last seen at {watch.last_hand:.1f} s")
    if watch.last_arm is not None and watch.last_arm != watch.last_hand:
        parts.append(f"an arm across the box's outline last at {watch.last_arm:.1f} s")
    parts.append("doors open from the first frame" if watch.last_closed is None
                 else f"a door last closed at {watch.last_closed:.1f} s")
    parts.append(f"box = empty image + one mouse from {start:.1f} s "
                 f"(for {settle_s:g} s in a row)")
    return TrialStart("auto", round(start, 3), True, "; ".join(parts),
                      hand_last_seen_s=_rounded(watch.last_hand), door_last_closed_s=_rounded(
                          watch.last_closed), arm_last_seen_s=_rounded(watch.last_arm),
                      search_s=search_s, settle_s=settle_s)


def _rounded(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def _not_found(watch: _Watch, search_s: float, settle_s: float, why: str) -> TrialStart:
    looked = (f"the first {search_s:g} s" if why == "search limit"
              else f"the first {watch.last_time:.0f} s (the whole first file)")
    seen = []
    if watch.last_hand is not None:
        seen.append(f"a hand or arm until {watch.last_hand:.1f} s")
    if watch.last_closed is not None:
        seen.append(f"a closed door until {watch.last_closed:.1f} s")
    detail = f" ({'; '.join(seen)})" if seen else ""
    reason = (f"no trial start found in {looked}: the box never looked like its empty-box "
              f"image plus one mouse for {settle_s:g} s{detail}; counted from the start "
              "of the video instead: check the video, or give trial.start in seconds")
    return TrialStart("auto", 0.0, False, reason, hand_last_seen_s=_rounded(watch.last_hand),
                      door_last_closed_s=_rounded(watch.last_closed), search_s=search_s,
                      settle_s=settle_s)


def detect_trial_start(infos: Sequence[VideoInfo], config: Config,
                       end_s: float | None = None) -> TrialStart:
    """:func:`find_trial_start` on a recording: the empty box and the mouse's size from
    frames sampled after the part searched (or over the second half of a shorter
    recording): there the doors are open and no hand is in the picture, which would
    otherwise be measured as the mouse; then the beginning of the first file, read chunk
    by chunk."""
    trial = config.trial
    durations = [i.nominal_duration_s for i in infos]
    after = None
    if all(durations):
        total = float(sum(durations))  # type: ignore[arg-type]
        if end_s is not None:
            total = min(total, end_s)
        after = min(trial.search_s, 0.5 * total)
    samples, index, _ = background_samples(list(infos), config.background.samples, after,
                                           end_s)
    model = estimate_background_for(samples, index, config)
    detectors = [make_detector(a, config.detection, model.image, model.samples,
                               follow_lighting=False) for a in config.arenas]
    looks = arena_looks(config, model.image, detectors)
    del samples, model
    first = infos[0]
    stride = max(1, int(round((first.nominal_fps or _LOOK_FPS) / _LOOK_FPS)))
    with VideoReader(first.path, first) as reader:
        return find_trial_start(reader.chunks(), looks, settle_s=trial.settle_s,
                                search_s=trial.search_s, stride=stride)
