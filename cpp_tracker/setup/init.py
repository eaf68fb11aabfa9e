"""``cpp-tracker init``: a commented config proposed from a video, and its picture.

:func:`propose_config_from_video` samples frames across the video as ``track`` does and
builds the empty-box image as ``track`` would with the config it proposes (the samples
brought to one lighting, their median, a resting mouse removed): a first proposal on the
lighting-corrected median of the whole frame gives the arenas, and
:func:`~cpp_tracker.tracking.empty_box.estimate_background_for` that draft is the image on
which the geometry is proposed again and the mouse looked for in the lighting-corrected
samples (:func:`~cpp_tracker.setup.propose.propose_geometry`). It writes the proposal as a
commented
YAML config and reads that text back exactly as ``check-config`` would (parsed, and checked
against the frame size). :func:`write_proposed_config` then writes the config and the
picture of what was found (:func:`~cpp_tracker.setup.proposal_picture.draw_proposal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from .. import __version__
from ..config.settings import Config, check_against_frame, parse_config
from ..errors import ConfigError
from ..results.outputs import write_bytes, write_png
from ..tracking.background import BackgroundModel
from ..tracking.empty_box import (
    background_samples,
    estimate_background_for,
    whole_frame_background,
)
from ..video.reader import probe_video
from .proposal_picture import draw_proposal
from .propose import Proposal, proposal_to_config, proposal_to_yaml, propose_geometry

__all__ = [
    "SAMPLED_BYTES",
    "ProposedConfig",
    "preview_path_for",
    "propose_config_from_video",
    "write_proposed_config",
]

#: The frames sampled are kept to about this many bytes (of luma) whatever the resolution:
#: fewer frames than asked for on large videos, never fewer than 10. The lighting
#: correction holds a corrected copy of them too (and a third while it iterates), so this
#: keeps init's peak near the 300 MB of the plain median it replaced.
SAMPLED_BYTES = 150e6


@dataclass(frozen=True)
class ProposedConfig:
    """What init proposes for a video, not yet written.

    ``text`` is the commented YAML config; ``config`` is that text as ``check-config`` reads
    it (named after the file it is meant for); ``proposal`` holds the geometry found with
    its findings and confidences; ``background`` is the empty-box image it was found on (as
    ``track`` estimates it); ``width`` x ``height`` is the video's frame size, written into
    the config as ``frame_size``; ``frames_sampled`` the number of frames the image and the
    mouse's positions came from.
    """

    text: str
    config: Config
    proposal: Proposal
    background: np.ndarray
    width: int
    height: int
    frames_sampled: int


def preview_path_for(config_path: str | Path) -> Path:
    """Where the picture goes by default: beside the config, ``box.yaml`` ->
    ``box_preview.png``."""
    config_path = Path(config_path)
    return config_path.with_name(config_path.stem + "_preview.png")


def propose_config_from_video(
    video: str | Path,
    config_path: str | Path,
    *,
    preview: str | Path | None = None,
    chambers: int | None = None,
    arenas: int = 1,
    samples: int = 120,
) -> ProposedConfig:
    """Propose a config for ``video``: box outlines, door lines and chamber points.

    ``config_path`` is the file the config is meant for (its name is the config's source in
    messages) and ``preview`` the picture's path (default :func:`preview_path_for`); the
    YAML's header names the video and the picture. ``chambers`` per box (2 or 3, or
    ``None``: as many as are found), ``arenas`` boxes in the view, ``samples`` frames
    sampled across the video (fewer on large videos, see :data:`SAMPLED_BYTES`).

    Raises :class:`~cpp_tracker.errors.VideoError` for a video that cannot be read and
    :class:`~cpp_tracker.errors.ConfigError` should the proposal not read back as a valid
    config for the video's frame.
    """
    preview = Path(preview) if preview is not None else preview_path_for(config_path)
    info = probe_video(video)
    n = max(10, min(samples, int(SAMPLED_BYTES // max(1, info.width * info.height))))
    frames, index, _ = background_samples([info], n)
    model, proposal = _proposal_on_tracks_background(frames, index, chambers, arenas)
    background = model.image
    text = proposal_to_yaml(proposal, video=str(video), preview=preview.name,
                            version=__version__)
    config = parse_config(yaml.safe_load(text), source=str(config_path))
    check_against_frame(config, info.width, info.height, video=str(video))
    return ProposedConfig(text=text, config=config, proposal=proposal, background=background,
                          width=info.width, height=info.height,
                          frames_sampled=len(model.samples))


def _proposal_on_tracks_background(
    frames: np.ndarray, index: np.ndarray, chambers: int | None, arenas: int
) -> tuple[BackgroundModel, Proposal]:
    """The background ``track`` would estimate from ``frames`` for the proposed config, and
    the proposal made on it (the mouse looked for in the samples at its lighting).

    A draft is proposed on the whole frame's lighting-corrected median; the background is
    then estimated for the draft's arenas, as ``track`` estimates it (lighting measured on
    the floors, a resting mouse looked for in each: outside the floors, walls and their
    reflections are no mouse), and the geometry proposed again on it.
    """
    lit = whole_frame_background(frames, index, remove_resting=False)
    draft = propose_geometry(lit.image, lit.samples, n_chambers=chambers, n_arenas=arenas)
    del lit
    try:
        model = estimate_background_for(frames, index, parse_config(proposal_to_config(draft)))
    except ConfigError:  # pragma: no cover - a proposal always reads back as a config
        model = whole_frame_background(frames, index)
    proposal = propose_geometry(model.image, model.samples, n_chambers=chambers,
                                n_arenas=arenas)
    return model, proposal


def write_proposed_config(
    proposed: ProposedConfig, config_path: str | Path, preview: str | Path
) -> None:
    """Write the commented config to ``config_path``, then the picture of the proposal
    (the config drawn on the empty-box image, with the openings found and each element's
    confidence) to ``preview`` as PNG; each file is written atomically."""
    write_bytes(config_path, proposed.text.encode("utf-8"))
    write_png(preview, draw_proposal(proposed.background, proposed.proposal, proposed.config))
