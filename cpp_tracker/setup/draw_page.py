"""A page to draw a config by clicking: one static HTML file, no server, no internet.

``cpp-tracker draw`` writes it. The empty-box image is embedded as a base64 PNG and all
script and style are inline, so the file opens in any browser, can be mailed, and works
offline. On it a person clicks the arena's corners, the two ends of each door line and a
point in each chamber, names the chambers, adds exclusion masks and a scale; the pieces are
coloured as they are clicked (the outline is cut by the door lines on a pixel grid and each
piece flood-filled from its chamber point, as the tool cuts it, in its chamber's colour from
:mod:`cpp_tracker.visual.palette`), problems are listed (a piece
without a point, two points in one piece, an open outline), and the YAML is shown, copied or
downloaded. Coordinates are video pixels whatever the zoom.

Opened with an existing config the page starts from its geometry, and keeps its other
settings (``detection``, ``background``, ...) in the YAML it writes.

:func:`draw_page_for_video` makes the whole page for a video (and a config file to start
from); :func:`build_draw_page` is the page for an empty-box image already made.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..config.settings import check_against_frame, parse_config
from ..config.yaml_file import read_config_mapping
from ..errors import ConfigError, OutputError
from ..tracking.empty_box import sampled_background
from ..video.reader import probe_video
from ..visual.palette import page_palette

__all__ = ["DRAW_SAMPLES", "DrawPage", "build_draw_page", "draw_page_for_video"]

_TEMPLATE = "draw_page.html"

#: Frames sampled for the empty-box image when neither the caller nor the config says.
DRAW_SAMPLES = 40


def _png_base64(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - a uint8 image always encodes
        raise OutputError("the background image could not be encoded as PNG")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside a <script> element (no '</' sequence can end it)."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_draw_page(
    background: np.ndarray,
    *,
    config: dict | None = None,
    video: str = "",
    download_name: str = "config.yaml",
) -> str:
    """The HTML text of the drawing page.

    Parameters
    ----------
    background
        The empty-box image (grayscale or BGR, uint8), shown at its own pixel size.
    config
        A config mapping (as loaded from YAML) whose geometry the page starts from; its
        other top-level sections are carried into the YAML the page writes.
    video
        The video's name, shown on the page and written into the YAML's header.
    download_name
        File name offered by the page's download button.
    """
    background = np.asarray(background)
    if background.dtype != np.uint8 or background.ndim not in (2, 3):
        raise ValueError("build_draw_page needs a uint8 image (h, w) or (h, w, 3)")
    h, w = background.shape[:2]
    extra = {}
    if config:
        # the page writes frame_size itself: the size of the image it was drawn on
        extra = {k: v for k, v in config.items() if k not in ("arenas", "frame_size")}
    data = {
        "width": int(w),
        "height": int(h),
        "background": _png_base64(background),
        "config": {"arenas": list(config.get("arenas") or [])} if config else None,
        "extra": extra,
        "video": Path(video).name if video else "the video",
        "download_name": download_name,
        "palette": page_palette(),  # chamber colours, as in every picture of the tool
    }
    template = resources.files("cpp_tracker.setup").joinpath(_TEMPLATE).read_text(encoding="utf-8")
    name = _html_text(Path(video).name if video else "video")
    subtitle = (f"{name}, {w}x{h} px. " + ("Starting from the given config: drag a point to "
                "move it." if config else "Click to add; drag a point to move it."))
    return (
        template.replace("__TITLE__", name)
        .replace("__SUBTITLE__", subtitle)
        .replace("__VIDEO__", name)
        .replace("__DATA__", _json_for_script(data))
    )


@dataclass(frozen=True)
class DrawPage:
    """The drawing page of a video: ``html`` (the whole file), the video's frame size, and
    the ``problems`` of the config it starts from (one sentence each with its key path, as
    ``check-config`` words them; empty when the config is valid or there is none)."""

    html: str
    width: int
    height: int
    problems: tuple[str, ...] = ()


def draw_page_for_video(
    video: str | Path, *, config_path: str | Path | None = None, samples: int | None = None
) -> DrawPage:
    """The drawing page of ``video``, starting from the geometry of ``config_path`` if given.

    The empty-box image is ``track``'s (:func:`~cpp_tracker.tracking.empty_box.
    sampled_background`) from ``samples`` frames spread over the video (default: the
    config's ``background.samples`` when the config is valid, else :data:`DRAW_SAMPLES`),
    for the config when it is valid and fits the video's frame, else with the whole frame
    as one arena (as ``init``). The YAML the page writes says the frame it was drawn on
    (``frame_size``). A config that parses as a YAML mapping but is invalid, or does not
    fit the video's frame, is still drawn from: the page is where it gets fixed, and its
    problems are returned. The page offers to download the YAML under the config's file
    name (else the video's stem + ``.yaml``).

    Raises :class:`~cpp_tracker.errors.ConfigError` for a config file that is missing or not
    a YAML mapping, and :class:`~cpp_tracker.errors.VideoError` for a video that cannot be
    read.
    """
    raw, problems, config = None, [], None
    if config_path is not None:
        raw = read_config_mapping(config_path, otherwise="draw without --config")
        try:
            config = parse_config(raw, source=str(Path(config_path)))
        except ConfigError as e:
            problems = e.problems
    if samples is None:
        samples = config.background.samples if config is not None else DRAW_SAMPLES
    info = probe_video(video)
    if config is not None:
        try:
            check_against_frame(config, info.width, info.height, video=str(video))
        except ConfigError as e:
            problems = e.problems
    fits = config if config is not None and not problems else None
    background = sampled_background(video, samples, fits, info=info).image
    name = Path(config_path).name if config_path is not None else Path(video).stem + ".yaml"
    html = build_draw_page(background, config=raw, video=str(video), download_name=name)
    return DrawPage(html=html, width=info.width, height=info.height, problems=tuple(problems))
