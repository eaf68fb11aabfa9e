"""A config checked before any run: valid, fitting the video, and what it measures.

``cpp-tracker check-config`` prints :func:`check_config_file`'s answer; ``cpp-tracker
preview`` writes the picture of :func:`preview_config_file` and reports a config that
misses the video's frame after drawing it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.settings import Config, check_against_frame, config_hash, load_config
from ..errors import ConfigError
from ..geometry.measures import ArenaMeasures, measure_arenas
from ..video.reader import probe_video

__all__ = ["ConfigCheck", "ConfigPreview", "check_config_file", "preview_config_file"]


@dataclass(frozen=True)
class ConfigCheck:
    """A valid config: the config, its hash (as run.json records it), the frame size it was
    checked against (``None`` without a video), and per arena the sizes of its parts."""

    config: Config
    config_hash: str
    frame_size: tuple[int, int] | None
    measures: tuple[ArenaMeasures, ...]


@dataclass(frozen=True)
class ConfigPreview:
    """The picture written by :func:`preview_config_file`: its path and size (the video's),
    and ``misfit``, the error naming every coordinate outside the video's frame (``None``
    when the config fits)."""

    path: Path
    width: int
    height: int
    misfit: ConfigError | None


def check_config_file(config_path: str | Path, video: str | Path | None = None) -> ConfigCheck:
    """Read and validate the config file, check its coordinates against ``video``'s frame
    size when a video is given, and measure its arenas
    (:func:`~cpp_tracker.geometry.measures.measure_arena`).

    Raises :class:`~cpp_tracker.errors.ConfigError` listing every problem (of the file, or
    of its fit to the frame) and :class:`~cpp_tracker.errors.VideoError` for a video that
    cannot be opened.
    """
    config = load_config(config_path)
    frame_size = None
    if video:
        info = probe_video(video)
        check_against_frame(config, info.width, info.height, video=str(video))
        frame_size = (info.width, info.height)
    return ConfigCheck(config=config, config_hash=config_hash(config), frame_size=frame_size,
                       measures=measure_arenas(config.arenas))


def preview_config_file(
    video: str | Path, config_path: str | Path, out: str | Path, *, samples: int | None = None
) -> ConfigPreview:
    """Draw the config on ``video``'s empty-box image and write it to ``out`` (PNG, see
    :func:`~cpp_tracker.visual.preview.preview_video`; ``samples`` frames, default the
    config's ``background.samples``).

    A config that does not fit the video's frame is drawn all the same, to show where it
    misses; the problems come back as :attr:`ConfigPreview.misfit`. Raises
    :class:`~cpp_tracker.errors.ConfigError` for an invalid config file (nothing is drawn).
    """
    from ..visual.preview import preview_video  # matplotlib: only when drawing

    config = load_config(config_path)
    info = probe_video(video)
    misfit = None
    try:
        check_against_frame(config, info.width, info.height, video=str(video))
    except ConfigError as e:
        misfit = e
    path, (width, height) = preview_video(video, config, out, samples=samples)
    return ConfigPreview(path=path, width=width, height=height, misfit=misfit)
