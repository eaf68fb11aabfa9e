"""The picture ``cpp-tracker init`` writes: the proposed config, and how sure init is of it.

The config is drawn by :func:`cpp_tracker.visual.preview.render_preview`, exactly as
``cpp-tracker preview`` draws it (outline, door lines with their hysteresis bands, chambers
tinted and named, their points). On top, this module marks what only init knows: the
opening found in each door line (a thick cyan stroke) and each element's confidence, in a
colour that says how sure it is (green high, orange medium, red low or not found).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..config.settings import Config
from ..visual.preview import render_preview
from .propose import Finding, Proposal

__all__ = ["draw_proposal"]

_COLOURS = {"high": (60, 200, 60), "medium": (0, 165, 255), "low": (40, 40, 230)}  # BGR


def _label(img: np.ndarray, text: str, x: float, y: float, colour, size: float) -> None:
    thickness = max(1, int(round(size * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, thickness)
    x0 = int(np.clip(x, 2, img.shape[1] - tw - 3))
    y0 = int(np.clip(y, th + 3, img.shape[0] - base - 3))
    cv2.rectangle(img, (x0 - 2, y0 - th - 2), (x0 + tw + 2, y0 + base + 1), (0, 0, 0), -1)
    cv2.putText(img, text, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, size, colour, thickness,
                cv2.LINE_AA)


def _fixed(points) -> np.ndarray:
    return (np.asarray(points, dtype=np.float64) * 8).round().astype(np.int32)


def draw_proposal(background: np.ndarray, proposal: Proposal, config: Config) -> np.ndarray:
    """A BGR picture of ``config`` (the proposal as parsed) on ``background``, with the
    openings found and each element's confidence marked; videos narrower than 640 px are
    shown enlarged by a whole factor."""
    img = cv2.cvtColor(render_preview(background, config), cv2.COLOR_RGB2BGR)
    # small videos are shown twice (or more) as large, so that the labels stay legible
    scale = max(1, int(np.ceil(640 / img.shape[1])))
    if scale > 1:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    w = img.shape[1]
    size = max(0.4, 0.45 * w / 800)
    line_px = max(2, int(round(w / 200)))
    step = 26 * size  # one line of text, px

    def at(p) -> tuple[float, float]:
        return p[0] * scale, p[1] * scale

    def colour(f: Finding):
        return _COLOURS[f.level]

    for arena in proposal.arenas:
        f = arena.outline
        x, y = at(min(arena.polygon, key=lambda p: p[0] + p[1]))
        _label(img, f"{arena.name} outline: {f.level} {f.confidence:.2f}", x + 6,
               y + 6 + 2.5 * step, colour(f), size)
        for j, door in enumerate(arena.doors):
            if door.opening is not None:
                a, b = _fixed([at(p) for p in door.opening])
                cv2.line(img, tuple(a), tuple(b), (255, 255, 0), line_px, cv2.LINE_AA, shift=3)
            # below the door's name (drawn by the preview), one line further for each door
            x, y = at(min(door.line, key=lambda p: p[1]))
            _label(img, f"{door.name}: {door.finding.level} {door.finding.confidence:.2f}",
                   x + 6, y + 6 + (3 + j) * step, colour(door.finding), size)
    if not proposal.doors_found:
        text = "no doors found: add them in the config, or click them (cpp-tracker draw)"
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, 1)
        _label(img, text, (w - tw) / 2, img.shape[0] - 8, _COLOURS["low"], size)
    return img
