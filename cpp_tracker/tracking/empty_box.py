"""The one empty-box image of a video, for every command that shows or uses it.

``track`` (and ``batch``, ``reprocess --retrack``, ``overlay --config``), ``preview``,
``draw`` and ``init`` all take their background from here, so a night with a light step
or a mouse asleep for hours shows the same empty floor everywhere:

- :func:`background_samples`: frames spread evenly over the analysed part of a recording
  (all its chunk files, in proportion to their length);
- :func:`estimate_background_for`: the model for a config (lighting measured on its arenas,
  a resting mouse looked for in each, as the config's ``background`` section says);
- :func:`whole_frame_background`: the same without a config (``draw`` without one, and
  ``init``'s first look): the whole frame is one region, lighting followed and a resting
  mouse removed;
- :func:`sampled_background`: the two together for one video file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config.settings import Config
from ..errors import VideoError
from ..video.reader import VideoInfo, VideoReader, probe_video
from .background import BackgroundModel, estimate_background
from .tracker import arena_mask

__all__ = [
    "background_samples",
    "estimate_background_for",
    "whole_frame_background",
    "sampled_background",
]


def estimate_background_for(
    samples: np.ndarray, sample_index: np.ndarray, config: Config
) -> BackgroundModel:
    """The background model (lighting-corrected, resting mouse removed) for ``config``."""
    h, w = samples.shape[1:]
    regions = {a.name: arena_mask(a, 0, 0, w, h) > 0 for a in config.arenas}
    return estimate_background(
        samples,
        sample_index,
        regions,
        correct_lighting=config.background.follow_lighting,
        remove_resting=config.background.remove_resting_mouse,
        min_area_px={a.name: config.detection.min_area_px for a in config.arenas},
    )


def whole_frame_background(
    samples: np.ndarray, sample_index: np.ndarray | None = None, *, remove_resting: bool = True
) -> BackgroundModel:
    """The background model before there is a config: as :func:`estimate_background_for`
    with the default settings and one arena covering the whole frame (lighting measured on
    the whole frame, a resting mouse looked for anywhere in it unless ``remove_resting`` is
    False)."""
    h, w = np.asarray(samples).shape[1:]
    return estimate_background(samples, sample_index, {"frame": np.ones((h, w), dtype=bool)},
                               remove_resting=remove_resting)


def _estimated_offsets_s(infos: list[VideoInfo]) -> list[float]:
    """Start of each chunk file on the session clock, from the containers' durations."""
    offsets = [0.0]
    for info in infos[:-1]:
        offsets.append(offsets[-1] + (info.nominal_duration_s or 0.0))
    return offsets


def background_samples(
    infos: list[VideoInfo],
    n_samples: int,
    start_s: float | None = None,
    end_s: float | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """About ``n_samples`` frames spread over the analysed part of a session (all its chunk
    files, in proportion to their length), for the background and the calibration, their
    frame indices in the session (estimated from the containers' frame counts), and how
    they were taken (``VideoReader.sampling``)."""
    offsets = _estimated_offsets_s(infos)
    ranges: list[tuple[VideoInfo, int, int | None, float]] = []
    for info, offset in zip(infos, offsets, strict=True):
        fps, count = info.nominal_fps, info.nominal_frame_count
        if not fps or not count:
            ranges.append((info, 0, None, 1.0))
            continue
        lo_s = max(0.0, (start_s or 0.0) - offset)
        hi_s = count / fps if end_s is None else min(count / fps, end_s - offset)
        if hi_s <= lo_s:
            continue
        first = int(lo_s * fps)
        last = min(count - 1, max(first, int(np.ceil(hi_s * fps)) - 1))
        ranges.append((info, first, last, float(last - first + 1)))
    if not ranges:  # the window lies beyond the containers' durations: sample everything
        ranges = [(info, 0, None, 1.0) for info in infos]
    total = sum(r[3] for r in ranges)
    stacks = []
    indices = []
    methods = []
    frame_offsets = dict(
        zip([i.path for i in infos],
            np.cumsum([0] + [i.nominal_frame_count or 0 for i in infos[:-1]]), strict=True)
    )
    for info, first, last, weight in ranges:
        n = n_samples if len(ranges) == 1 else max(3, int(round(n_samples * weight / total)))
        with VideoReader(info.path, info) as reader:
            try:
                frames, index = reader.sample_frames(n, first_frame=first, last_frame=last)
            except VideoError:
                if len(ranges) == 1:
                    raise
                continue
            methods.append(reader.sampling)
        stacks.append(frames)
        indices.append(index + int(frame_offsets[info.path]))
    if not stacks:
        raise VideoError(f"{infos[0].path}: no frame could be decoded; check that it plays")
    method = methods[0] if len(set(methods)) == 1 else "mixed"
    return np.concatenate(stacks), np.concatenate(indices), method


def sampled_background(
    video: str | Path,
    n_samples: int,
    config: Config | None = None,
    *,
    info: VideoInfo | None = None,
) -> BackgroundModel:
    """The empty box of one video file as ``track`` estimates it: ``n_samples`` frames
    sampled as ``track`` samples them, then :func:`estimate_background_for` ``config``, or
    :func:`whole_frame_background` without one. ``info``: the video's probe, if made."""
    info = info if info is not None else probe_video(video)
    samples, index, _ = background_samples([info], n_samples)
    if config is None:
        return whole_frame_background(samples, index)
    return estimate_background_for(samples, index, config)
