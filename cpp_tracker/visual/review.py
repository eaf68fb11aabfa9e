"""Overlay videos and review clips: see what the tracker saw, for the moments that matter.

:func:`render_overlay` draws on the frames of any stretch of a video: the arena outline
(white), the door lines (black on white) with the hysteresis band on both sides (thin grey:
the mouse must pass it for a chamber change to count), the centroid, the blob's outline,
and the chamber the tool assigned, in the chamber's colour. The clip is H.264 (PyAV).

:func:`review_moments` picks the moments a person should check:

- **flagged seconds**: the QC flags stored with the result, or, for results without QC, the
  seconds with a frame without a detection or with competing blobs (see
  :func:`cpp_tracker.results.stored.flagged_seconds`); runs of flagged seconds become one moment.
- **close calls at the doors**: every chamber change and every excursion past a door line
  that did *not* change the chamber, ranked by how close it came to the decision: a change
  whose deepest point in the new chamber was barely beyond the hysteresis band, or an
  excursion that stopped just short of it.

:func:`write_review_clips` cuts one overlay clip per moment into ``<result>/review/`` with
an index ``clips.csv``.

Frames are read with PyAV, seeking to the start of each stretch, so a clip from the tenth
hour of a recording does not decode the nine hours before it. Times are presentation times
from the stream start, as in ``track.parquet``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..analysis.summary import run_bounds
from ..config.settings import ArenaConfig, Config
from ..errors import ConfigError, OutputError, VideoError
from ..geometry.chambers import (
    UNKNOWN,
    ChamberLayout,
    assign_by_body_fraction,
    assign_chambers,
    build_layout,
)
from ..results.outputs import atomic_path, make_output_folder, write_csv
from ..results.stored import StoredResult, flagged_seconds, resolve_video
from ..tracking.tracker import ArenaDetector, make_detector, threshold_floor
from .palette import chamber_colours

__all__ = [
    "ReviewMoment",
    "iter_frames",
    "OverlayGeometry",
    "overlay_geometry",
    "draw_geometry_overlay",
    "detectors_for_result",
    "door_close_calls",
    "review_moments",
    "render_overlay",
    "write_review_clips",
]

#: The overlay is drawn at least this wide (small videos are enlarged for legible text).
_MIN_OVERLAY_WIDTH_PX = 640


# ------------------------------------------------------------------------------ reading
def iter_frames(
    video: str | Path, start_s: float = 0.0, end_s: float = math.inf
) -> Iterator[tuple[float, np.ndarray]]:
    """``(time_s, BGR frame)`` for every frame with ``start_s <= time_s < end_s``.

    Seeks to the keyframe before ``start_s``, then decodes forward. ``time_s`` counts from
    the stream's first timestamp, like the track's ``time_s``.
    """
    import av

    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError) as e:
        raise VideoError(f"{video}: cannot be opened as a video ({e})") from None
    with container:
        if not container.streams.video:
            raise VideoError(f"{video}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        base = stream.time_base
        origin = stream.start_time or 0
        rate = float(stream.average_rate or 30)
        if start_s > 0:
            target = int(start_s / base) + origin
            container.seek(max(origin, target), stream=stream, backward=True)
        index = 0
        last = -math.inf
        try:
            for frame in container.decode(stream):
                if frame.pts is not None:
                    t = float((frame.pts - origin) * base)
                else:
                    t = last + 1.0 / rate if math.isfinite(last) else index / rate
                last = t
                index += 1
                if t < start_s - 1e-6:
                    continue
                if t >= end_s - 1e-9:
                    break
                yield t, frame.to_ndarray(format="bgr24")
        except av.FFmpegError:
            return  # a damaged stretch ends the clip; the tracker records it as a gap


def _video_rate(video: str | Path) -> float:
    import av

    with av.open(str(video)) as container:
        rate = container.streams.video[0].average_rate
    return float(rate) if rate else 30.0


# --------------------------------------------------------------------------- detectors
def detectors_for_result(result: StoredResult, background: np.ndarray) -> list[ArenaDetector]:
    """Rebuild each arena's detector from ``background.png`` and the values ``run.json``
    recorded (polarity, threshold, area limits, noise), so blob outlines match the run.

    When the run followed the lighting (``background.follow_lighting``), the detectors do
    too: :func:`_blob_contour` scales the background and threshold to each frame's
    ``light_gain`` (stored in the track, or measured by the detector) as tracking did.
    """
    out = []
    follow = result.config.background.follow_lighting
    for arena in result.config.arenas:
        settings = result.config.detection
        rec = result.record.detection_for(arena.name)
        if rec is not None:
            settings = replace(
                settings,
                animal=rec.polarity if rec.polarity in ("dark", "light") else settings.animal,
                threshold=_recorded(rec.threshold, settings.threshold),
                min_area_px=_recorded(rec.min_area_px, settings.min_area_px),
                max_area_px=_recorded(rec.max_area_px, settings.max_area_px),
            )
        detector = make_detector(
            arena, settings, background, background[None], follow_lighting=follow
        )
        if rec is not None and rec.noise_sigma is not None and math.isfinite(rec.noise_sigma):
            # the floor the threshold is scaled down to in dim light: from the video's noise
            # (a background alone has none)
            detector = replace(
                detector, noise_sigma=float(rec.noise_sigma),
                min_threshold=threshold_floor(float(rec.noise_sigma)), _lit={},
            )
        out.append(detector)
    return out


def _recorded(value, default):
    return default if value is None else value


def _frame_gain(detector: ArenaDetector, gray: np.ndarray, stored: float = math.nan) -> float:
    """The frame's brightness relative to the background, as tracking used it: the
    ``light_gain`` stored in the track when there is one, else the detector's measurement
    (1.0 when the lighting is not followed)."""
    if math.isfinite(stored) and stored > 0:
        return float(stored)
    return detector.light_gain(gray)


def _blob_contour(
    detector: ArenaDetector, gray: np.ndarray, x: float, y: float, gain: float = 1.0
):
    """Outline (full-frame coordinates) of the blob at (x, y), or of the largest blob.

    ``gain``: the frame's brightness relative to the background (see :func:`_frame_gain`);
    the background and threshold are scaled to it, as in tracking.
    """
    binary = detector.foreground(gray, gain)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    best = None
    if math.isfinite(x) and math.isfinite(y):
        pt = (float(x - detector.x0), float(y - detector.y0))
        for c in contours:
            if cv2.pointPolygonTest(c, pt, False) >= 0:
                best = c
                break
    if best is None:
        areas = [cv2.contourArea(c) for c in contours]
        k = int(np.argmax(areas))
        if not (detector.min_area_px <= areas[k] <= detector.max_area_px):
            return None
        best = contours[k]
    return best + np.array([[detector.x0, detector.y0]])


# ---------------------------------------------------------------------------- drawing
@dataclass(frozen=True)
class OverlayGeometry:
    """What an overlay draws on every frame: arena outlines, door lines, chamber colours."""

    arenas: tuple[ArenaConfig, ...]
    layouts: tuple[ChamberLayout, ...]
    colors: dict[str, tuple[int, int, int]]
    #: ``chambers.rule`` with its fractions (``None``: the point rule)
    body_fraction: tuple[float, float] | None = None


def overlay_geometry(config: Config) -> OverlayGeometry:
    """The geometry of ``config`` as overlays draw it (colours by chamber name, BGR, from
    :mod:`cpp_tracker.visual.palette`)."""
    colors = {name: c.bgr for name, c in chamber_colours(config).items()}
    layouts = tuple(build_layout(a, config.chambers.hysteresis_px) for a in config.arenas)
    c = config.chambers
    rule = (c.enter_fraction, c.exit_fraction) if c.rule == "body_fraction" else None
    return OverlayGeometry(config.arenas, layouts, colors, rule)


def _pts(coords, scale: float) -> np.ndarray:
    return (np.asarray(coords, dtype=np.float64) * scale * 16).round().astype(np.int32)


def _text(img, text, org, color, scale_f: float) -> None:
    font = cv2.FONT_HERSHEY_SIMPLEX
    size = 0.5 * scale_f
    (w, h), base = cv2.getTextSize(text, font, size, 1)
    x, y = int(org[0]), int(org[1])
    cv2.rectangle(img, (x - 2, y - h - 3), (x + w + 2, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x, y), font, size, color, 1, cv2.LINE_AA)


def draw_geometry_overlay(img: np.ndarray, geo: OverlayGeometry, scale: float) -> None:
    """Draw ``geo`` on the BGR image ``img`` (video pixels times ``scale``), in place."""
    line = cv2.LINE_AA
    for arena, layout in zip(geo.arenas, geo.layouts, strict=True):
        cv2.polylines(img, [_pts(arena.polygon, scale)], True, (255, 255, 255), 1, line, 4)
        for seg in layout.door_segments:
            for part in getattr(seg, "geoms", [seg]):
                coords = np.asarray(part.coords)
                if len(coords) < 2:
                    continue
                # hysteresis band: the door line moved by +-hysteresis_px along its normal
                d = coords[-1] - coords[0]
                n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-9)
                for side in (-1, 1) if geo.body_fraction is None else ():
                    band = coords + side * layout.hysteresis_px * n
                    cv2.polylines(img, [_pts(band, scale)], False, (150, 150, 150), 1, line, 4)
                cv2.polylines(img, [_pts(coords, scale)], False, (255, 255, 255), 3, line, 4)
                cv2.polylines(img, [_pts(coords, scale)], False, (0, 0, 0), 1, line, 4)
        for chamber in arena.chambers:
            x, y = chamber.point
            _text(img, chamber.name, (x * scale - 20, y * scale), geo.colors[chamber.name],
                  scale * 0.8)


def _draw_mouse(img, geo, scale, k, x, y, chamber, contour) -> None:
    color = geo.colors.get(chamber, geo.colors["unknown"])
    if contour is not None:
        cv2.polylines(img, [_pts(contour.reshape(-1, 2), scale)], True, color, 2,
                      cv2.LINE_AA, 4)
    if math.isfinite(x) and math.isfinite(y):
        c = (int(round(x * scale * 16)), int(round(y * scale * 16)))
        cv2.circle(img, c, int(4 * scale * 16), (0, 0, 0), -1, cv2.LINE_AA, 4)
        cv2.circle(img, c, int(3 * scale * 16), color, -1, cv2.LINE_AA, 4)
    arena = geo.arenas[k]
    x0 = min(p[0] for p in arena.polygon) * scale + 4
    y0 = min(p[1] for p in arena.polygon) * scale + 16 * scale
    label = f"{arena.name}: {chamber}"
    if not math.isfinite(x):
        label += ", no detection"
    _text(img, label, (x0, y0), color, scale * 0.8)


# ---------------------------------------------------------------------- overlay source
def _track_columns(result: StoredResult) -> list[str]:
    """The columns an overlay reads from the stored track (``light_gain`` when stored:
    results of versions before it have none)."""
    import pyarrow.parquet as pq

    columns = ["time_s", "arena", "x", "y", "detected", "chamber"]
    try:
        names = pq.read_schema(result.result_dir / "track.parquet").names
    except (OSError, ValueError):
        return columns  # result.track() says what is wrong with the file
    return columns + ["light_gain"] if "light_gain" in names else columns


class _TrackLookup:
    """Per-frame centroid, chamber and light gain from a stored track, looked up by time."""

    def __init__(self, result: StoredResult):
        track = result.track(_track_columns(result))
        self.interval = result.frame_interval_s
        self.by_arena = []
        for arena in result.config.arenas:
            sub = track[track["arena"].astype(str) == arena.name]
            gains = (
                sub["light_gain"].to_numpy(dtype=float) if "light_gain" in sub.columns
                else np.full(len(sub), np.nan)
            )
            self.by_arena.append(
                (
                    sub["time_s"].to_numpy(dtype=float),
                    sub["x"].to_numpy(dtype=float),
                    sub["y"].to_numpy(dtype=float),
                    sub["chamber"].astype(str).to_numpy(),
                    gains,
                )
            )

    def __call__(self, k: int, t: float, gray: np.ndarray) -> tuple[float, float, str, float]:
        """``(x, y, chamber, light_gain)`` of arena ``k`` at time ``t`` (gain NaN when the
        track does not store it)."""
        times, xs, ys, chambers, gains = self.by_arena[k]
        if len(times) == 0:
            return math.nan, math.nan, "not tracked", math.nan
        j = int(np.searchsorted(times, t))
        cands = [i for i in (j - 1, j) if 0 <= i < len(times)]
        i = min(cands, key=lambda i: abs(times[i] - t))
        if abs(times[i] - t) > 0.5 * self.interval:
            return math.nan, math.nan, "not tracked", math.nan
        return xs[i], ys[i], chambers[i], gains[i]


class _LiveTracker:
    """Centroid and chamber computed on the fly (overlay from a config alone), following
    the lighting as tracking does."""

    def __init__(self, detectors: list[ArenaDetector], geo: OverlayGeometry):
        self.detectors = detectors
        self.geo = geo
        self.state = [UNKNOWN] * len(detectors)

    def __call__(self, k: int, t: float, gray: np.ndarray) -> tuple[float, float, str, float]:
        detector = self.detectors[k]
        gain = detector.light_gain(gray)
        (x, y, _, _), shares = detector.detect_with_shares(gray, gain)
        det = np.array([math.isfinite(x)])
        if self.geo.body_fraction is not None and detector.pieces is not None:
            codes, self.state[k] = assign_by_body_fraction(
                shares[None], det, *self.geo.body_fraction, self.state[k])
        else:
            codes, self.state[k] = assign_chambers(
                np.array([x]), np.array([y]), det, self.geo.layouts[k], self.state[k]
            )
        names = self.geo.arenas[k].chamber_names
        return x, y, ("unknown" if codes[0] == UNKNOWN else names[int(codes[0])]), gain


# ---------------------------------------------------------------------------- overlay
def _check_stretch(start_s: float, end_s: float | None, speed: float) -> None:
    if not (math.isfinite(start_s) and start_s >= 0):
        raise ConfigError("--start", f"must be a time in seconds from 0 on, got {start_s}")
    if end_s is not None and not end_s > start_s:
        raise ConfigError("--end", f"must be later than --start ({start_s} s), got {end_s}")
    if not (math.isfinite(speed) and speed > 0):
        raise ConfigError("--speed", f"must be a positive number, got {speed}")


def _live_detectors(video: str | Path, config: Config) -> tuple[np.ndarray, list[ArenaDetector]]:
    """Background and detectors for an overlay from a config alone, made as ``track``
    makes them: from samples of the whole video brought to one lighting (and a resting
    mouse removed), following the lighting when the config does."""
    from ..config.settings import check_against_frame
    from ..tracking.empty_box import sampled_background
    from ..video.reader import probe_video

    info = probe_video(video)
    check_against_frame(config, info.width, info.height, video=str(video))
    model = sampled_background(video, config.background.samples, config, info=info)
    detectors = [
        make_detector(a, config.detection, model.image, model.samples,
                      follow_lighting=config.background.follow_lighting)
        for a in config.arenas
    ]
    return model.image, detectors


def render_overlay(
    video: str | Path,
    out_path: str | Path,
    *,
    result: StoredResult | None = None,
    config: Config | None = None,
    start_s: float = 0.0,
    end_s: float | None = None,
    speed: float = 1.0,
    title: str = "",
) -> dict:
    """Write an H.264 overlay video of ``video`` from ``start_s`` to ``end_s``.

    Give ``result`` (a stored result: its track, background and geometry are used) or
    ``config`` (the mouse is detected on the fly from a background estimated now; the
    chamber is unknown until the first detection of the stretch).

    ``speed`` > 1 plays faster: every ``floor(speed)``-th frame is kept and the frame rate
    is ``rate * speed / floor(speed)``; ``speed`` < 1 keeps every frame at a lower rate.

    Returns ``{"frames": n, "fps": f, "start_s": ..., "end_s": ...}``.
    """
    _check_stretch(start_s, end_s, speed)
    if result is None and config is None:
        raise ConfigError("overlay", "give a stored result (--results) or a config (--config)")
    out_path = _overlay_path(out_path)
    source = _overlay_source(video, result, config)
    step = max(1, int(math.floor(speed))) if speed >= 1 else 1
    out_rate = Fraction(_video_rate(video) * speed / step).limit_denominator(1001)
    h, w = source.background.shape
    scale = float(max(1, math.ceil(_MIN_OVERLAY_WIDTH_PX / w)))
    canvas = _Canvas(w, h, scale, int(w * scale) // 2 * 2, int(h * scale) // 2 * 2)
    stop = math.inf if end_s is None else end_s
    counts = {"frames": 0, "first_s": None, "last_s": None}

    def write(tmp: str) -> None:
        import av

        with av.open(tmp, "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=out_rate)
            stream.width, stream.height = canvas.out_w, canvas.out_h
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            for i, (t, bgr) in enumerate(iter_frames(video, start_s, stop)):
                if i % step:
                    continue
                img = _overlay_frame(video, t, bgr, source, canvas,
                                     _stamp(t, speed, title))
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    out.mux(packet)
                counts["frames"] += 1
                counts["first_s"] = t if counts["first_s"] is None else counts["first_s"]
                counts["last_s"] = t
            for packet in stream.encode():
                out.mux(packet)
        if counts["frames"] == 0:
            where = f"after {start_s:g} s" if stop == math.inf else (
                f"between {start_s:g} s and {stop:g} s"
            )
            raise VideoError(
                f"{video}: no frame {where}; check --start and --end against the video's "
                "length"
            )

    atomic_path(out_path, write)
    return {
        "frames": counts["frames"],
        "fps": float(out_rate),
        "start_s": counts["first_s"],
        "end_s": counts["last_s"],
    }


def _overlay_path(out_path: str | Path) -> Path:
    out_path = Path(out_path)
    if out_path.is_dir():
        raise OutputError(
            f"{out_path}: is a folder; give a file name for the overlay video, e.g. "
            f"{out_path / 'overlay.mp4'}"
        )
    make_output_folder(out_path.parent, "the overlay video")
    return out_path


@dataclass(frozen=True)
class _OverlaySource:
    """Where an overlay's mice come from: the stored track, or detection on the fly."""

    background: np.ndarray
    detectors: list
    geo: OverlayGeometry
    lookup: object  # (arena index, time_s, gray) -> (x, y, chamber, stored light gain)


def _overlay_source(video, result: StoredResult | None, config: Config | None):
    if result is not None:
        background = result.background()
        if background is None:
            raise OutputError(f"{result.result_dir}: background.png is missing; run track again")
        detectors = detectors_for_result(result, background)
        return _OverlaySource(background, detectors, overlay_geometry(result.config),
                              _TrackLookup(result))
    background, detectors = _live_detectors(video, config)
    geo = overlay_geometry(config)
    return _OverlaySource(background, detectors, geo, _LiveTracker(detectors, geo))


@dataclass(frozen=True)
class _Canvas:
    """The video's frame size, the overlay's scale and its (even) size."""

    w: int
    h: int
    scale: float
    out_w: int
    out_h: int


def _stamp(t: float, speed: float, title: str) -> str:
    stamp = f"{t:9.2f} s ({t / 60:.2f} min)"
    if speed != 1:
        stamp += f"  x{speed:g}"
    return f"{title}   {stamp}" if title else stamp


def _overlay_frame(video, t: float, bgr: np.ndarray, source: _OverlaySource,
                   canvas: _Canvas, stamp: str) -> np.ndarray:
    """One frame of the overlay: geometry, each arena's mouse with its blob outline (found
    with the frame's light gain, as tracking found it), and the time stamp."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if gray.shape != (canvas.h, canvas.w):
        raise VideoError(
            f"{video}: frame at {t:.2f} s is {gray.shape[1]}x{gray.shape[0]} px, "
            f"the results were made on {canvas.w}x{canvas.h} px frames; is this the same "
            "video?"
        )
    scale = canvas.scale
    img = cv2.resize(bgr, (canvas.out_w, canvas.out_h), interpolation=cv2.INTER_NEAREST) \
        if scale != 1 else bgr.copy()
    draw_geometry_overlay(img, source.geo, scale)
    for k, detector in enumerate(source.detectors):
        x, y, chamber, stored_gain = source.lookup(k, t, gray)
        contour = None
        if math.isfinite(x):
            gain = _frame_gain(detector, gray, stored_gain)
            contour = _blob_contour(detector, gray, x, y, gain)
        _draw_mouse(img, source.geo, scale, k, x, y, chamber, contour)
    _text(img, stamp, (6, canvas.out_h - 8), (255, 255, 255), max(1.0, scale * 0.8))
    return img


# ----------------------------------------------------------------------- review moments
@dataclass(frozen=True)
class ReviewMoment:
    """A stretch of video worth a look."""

    start_s: float
    end_s: float
    arena: str
    reason: str  # 'flagged' or 'door'
    detail: str
    priority: float  # smaller = look first (within its reason)


def door_close_calls(result: StoredResult, track: pd.DataFrame | None = None) -> pd.DataFrame:
    """Chamber changes and near-changes at the doors, with how close each call was.

    Columns: ``arena, time_s, kind`` (``change`` or ``near miss``), ``from_chamber,
    to_chamber, depth_px`` (deepest point past the door line, measured from the chamber the
    mouse came from), ``excess_px`` (``depth_px - hysteresis_px``: small positive = a change
    that only just counted, small negative = an excursion that only just did not). With
    ``chambers.rule: body_fraction`` the same in shares of the mouse instead of pixels:
    ``depth_share`` and ``excess_share`` (:func:`_body_fraction_calls`).
    """
    if result.config.chambers.rule == "body_fraction":
        return _body_fraction_calls(result, track)
    if track is None:
        track = result.track(["time_s", "arena", "x", "y", "detected", "chamber"])
    rows = []
    for arena in result.config.arenas:
        layout = build_layout(arena, result.config.chambers.hysteresis_px)
        names = list(arena.chamber_names)
        sub = track[(track["arena"].astype(str) == arena.name) & track["detected"].astype(bool)]
        if len(sub) < 2:
            continue
        t = sub["time_s"].to_numpy(dtype=float)
        code_of = {n: i for i, n in enumerate(names)}
        codes = np.array([code_of.get(c, UNKNOWN) for c in sub["chamber"].astype(str)])
        dist = layout.distances(sub["x"].to_numpy(dtype=float), sub["y"].to_numpy(dtype=float))
        h = layout.hysteresis_px
        known = codes != UNKNOWN
        t, codes, dist = t[known], codes[known], dist[known]
        if len(codes) == 0:
            continue
        starts, ends = run_bounds(codes)
        for b, (a, e) in enumerate(zip(starts, ends, strict=True)):
            c = codes[a]
            if b > 0:  # a change into c from the previous bout's chamber
                prev = codes[a - 1]
                depth = float(dist[a:e, prev].max())
                rows.append((arena.name, t[a], "change", names[prev], names[c], depth, depth - h))
            # excursions out of c's piece that did not change the chamber
            out = dist[a:e, c] > 0
            if not out.any():
                continue
            edges = np.diff(np.r_[0, out.astype(np.int8), 0])
            for s0, s1 in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                if a + s1 == e:
                    continue  # runs on into the next bout (a change, listed above) or the end
                seg = dist[a + s0 : a + s1, c]
                j = int(np.argmax(seg))
                # the chamber it strayed into: the nearest other piece at the deepest point
                others = dist[a + s0 + j].copy()
                others[c] = np.inf
                into = int(np.argmin(others)) if len(names) > 1 else c
                rows.append(
                    (arena.name, t[a + s0 + j], "near miss", names[c], names[into],
                     float(seg[j]), float(seg[j]) - h)
                )
    table = pd.DataFrame(
        rows, columns=["arena", "time_s", "kind", "from_chamber", "to_chamber", "depth_px",
                       "excess_px"]
    )
    return table.sort_values("time_s", ignore_index=True)


def _body_fraction_calls(result: StoredResult, track: pd.DataFrame | None) -> pd.DataFrame:
    """:func:`door_close_calls` for ``chambers.rule: body_fraction``, in shares of the
    mouse: ``depth_share`` (a change: the largest share of the mouse in the new chamber
    during its bout; a near miss: the largest share in another chamber while the mouse had
    at least ``exit_fraction`` of itself there without the chamber changing) and
    ``excess_share`` (``depth_share - enter_fraction``)."""
    rule = result.config.chambers
    if track is None:
        track = result.track()
    rows = []
    for arena in result.config.arenas:
        names = list(arena.chamber_names)
        cols = [f"share_{j}" for j in range(len(names))]
        sub = track[(track["arena"].astype(str) == arena.name) & track["detected"].astype(bool)]
        if len(sub) < 2 or any(c not in sub.columns for c in cols):
            continue
        code_of = {n: i for i, n in enumerate(names)}
        codes = np.array([code_of.get(c, UNKNOWN) for c in sub["chamber"].astype(str)])
        known = codes != UNKNOWN
        t = sub["time_s"].to_numpy(dtype=float)[known]
        shares = sub[cols].to_numpy(dtype=float)[known]
        codes = codes[known]
        if len(codes) == 0:
            continue
        starts, ends = run_bounds(codes)
        for b, (a, e) in enumerate(zip(starts, ends, strict=True)):
            c = codes[a]
            if b > 0:
                depth = float(np.nanmax(shares[a:e, c]))
                rows.append((arena.name, t[a], "change", names[codes[a - 1]], names[c],
                             depth, depth - rule.enter_fraction))
            others = shares[a:e].copy()
            others[:, c] = -np.inf
            out = np.nanmax(others, axis=1) >= rule.exit_fraction
            edges = np.diff(np.r_[0, out.astype(np.int8), 0])
            for s0, s1 in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1),
                              strict=True):
                if a + s1 == e:
                    continue  # runs on into the next bout (a change, listed above) or the end
                j, into = np.unravel_index(int(np.nanargmax(others[s0:s1])),
                                           others[s0:s1].shape)
                depth = float(others[s0 + j, into])
                rows.append((arena.name, t[a + s0 + j], "near miss", names[c], names[into],
                             depth, depth - rule.enter_fraction))
    table = pd.DataFrame(rows, columns=["arena", "time_s", "kind", "from_chamber",
                                        "to_chamber", "depth_share", "excess_share"])
    return table.sort_values("time_s", ignore_index=True)


def _merge_runs(seconds: np.ndarray, join_s: int = 2) -> list[tuple[int, int]]:
    """Sorted integer seconds -> [(first, last)] runs, joining runs at most ``join_s`` apart."""
    s = np.unique(np.asarray(seconds, dtype=np.int64))
    if len(s) == 0:
        return []
    breaks = np.flatnonzero(np.diff(s) > join_s + 1) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(s)]
    return [(int(s[a]), int(s[b - 1])) for a, b in zip(starts, ends, strict=True)]


def review_moments(
    result: StoredResult,
    max_clips: int = 10,
    *,
    pad_s: float = 2.0,
    max_clip_s: float = 20.0,
) -> list[ReviewMoment]:
    """The moments to review, at most ``max_clips``, in time order.

    Half the clips go to flagged stretches (longest first) and half to the door calls
    closest to the hysteresis margin; when one kind has fewer, the other gets the rest.
    Overlapping moments are merged.
    """
    duration = result.duration_s or math.inf
    flags = flagged_seconds(result)
    flagged: list[ReviewMoment] = []
    for arena, sub in flags.groupby("arena", sort=False):
        for first, last in _merge_runs(sub["second"].to_numpy()):
            mine = sub[(sub["second"] >= first) & (sub["second"] <= last)]
            reasons = ", ".join(sorted(set(mine["reason"].astype(str))))
            n = int(mine["second"].nunique())
            start = max(0.0, first - pad_s)
            end = min(duration, last + 1 + pad_s, start + max_clip_s)
            detail = f"{n} flagged s ({reasons}) from {first} s"
            flagged.append(ReviewMoment(start, end, str(arena), "flagged", detail, -n))
    calls = door_close_calls(result)
    doors: list[ReviewMoment] = []
    for r in calls.itertuples(index=False):
        start = max(0.0, r.time_s - 1.5 * pad_s)
        end = min(duration, r.time_s + 1.5 * pad_s)
        verb = "changed" if r.kind == "change" else "did not change"
        if "excess_share" in calls.columns:  # chambers.rule: body_fraction
            how = (f"{100 * r.depth_share:.0f} % of the mouse in {r.to_chamber} "
                   f"({100 * r.excess_share:+.0f} % from enter_fraction)")
            closeness = abs(r.excess_share)
        else:
            how = f"{r.depth_px:.1f} px past the door (margin {r.excess_px:+.1f} px)"
            closeness = abs(r.excess_px)
        detail = f"{r.kind} {r.from_chamber}->{r.to_chamber} at {r.time_s:.1f} s: {verb}, {how}"
        doors.append(ReviewMoment(start, end, r.arena, "door", detail, closeness))
    flagged.sort(key=lambda m: (m.priority, m.start_s))
    doors.sort(key=lambda m: (m.priority, m.start_s))
    n_flag = min(len(flagged), max(max_clips - len(doors), (max_clips + 1) // 2))
    chosen = flagged[:n_flag] + doors[: max(0, max_clips - n_flag)]
    chosen.sort(key=lambda m: m.start_s)
    merged: list[ReviewMoment] = []
    for m in chosen:
        if merged and m.start_s <= merged[-1].end_s:
            last = merged[-1]
            merged[-1] = ReviewMoment(
                last.start_s, max(last.end_s, m.end_s),
                last.arena if last.arena == m.arena else f"{last.arena}, {m.arena}",
                last.reason if last.reason == m.reason else f"{last.reason}+{m.reason}",
                f"{last.detail}; {m.detail}", min(last.priority, m.priority),
            )
        else:
            merged.append(m)
    return merged


def write_review_clips(
    result: StoredResult,
    *,
    video: str | Path | None = None,
    max_clips: int = 10,
    speed: float = 1.0,
) -> pd.DataFrame:
    """Cut an overlay clip for each review moment into ``<result>/review/``.

    Writes ``clip_NN_<time>_<reason>.mp4`` and ``clips.csv`` (``clip, file, start_s,
    end_s, arena, reason, detail``); clips of an earlier review that are not in the new
    list are removed. Returns the index table.
    """
    path = resolve_video(result, video)
    moments = review_moments(result, max_clips)
    folder = result.result_dir / "review"
    if folder.exists() and not folder.is_dir():
        raise OutputError(
            f"{folder}: is a file, but review writes its clips into a folder of this name; "
            "move the file away and run review again"
        )
    make_output_folder(folder, "the review clips")
    rows = []
    for i, m in enumerate(moments, start=1):
        minutes, seconds = divmod(int(m.start_s), 60)
        name = f"clip_{i:02d}_{minutes:03d}m{seconds:02d}s_{m.reason.replace('+', '_')}.mp4"
        render_overlay(path, folder / name, result=result, start_s=m.start_s, end_s=m.end_s,
                       speed=speed, title=f"clip {i}")
        rows.append((i, name, round(m.start_s, 3), round(m.end_s, 3), m.arena, m.reason,
                     m.detail))
    index = pd.DataFrame(
        rows, columns=["clip", "file", "start_s", "end_s", "arena", "reason", "detail"]
    )
    keep = set(index["file"])
    for old in folder.glob("clip_*.mp4"):
        if old.name not in keep:
            old.unlink()
    write_csv(folder / "clips.csv", index)
    return index
