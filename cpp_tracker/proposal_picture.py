"""The picture ``cpp-tracker init`` writes: what it found, drawn on the empty-box image.

Outline, door lines (with the opening found in each marked), chamber points and names, and
each element's confidence, so that a person can judge the proposal at a glance. Colours say
how sure the proposal is: green high, orange medium, red low or not found.
"""

from __future__ import annotations

import cv2
import numpy as np

from .propose import Finding, Proposal

__all__ = ["draw_proposal"]

_COLOURS = {"high": (60, 200, 60), "medium": (0, 165, 255), "low": (40, 40, 230)}  # BGR


def _pts(points, scale: int) -> np.ndarray:
    return (np.asarray(points, dtype=np.float64) * scale * 8).round().astype(np.int32)


def _label(img: np.ndarray, text: str, x: float, y: float, colour, size: float) -> None:
    thickness = max(1, int(round(size * 2)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, thickness)
    x0 = int(np.clip(x - tw / 2, 2, img.shape[1] - tw - 2))
    y0 = int(np.clip(y + th / 2, th + 2, img.shape[0] - base - 2))
    cv2.rectangle(img, (x0 - 2, y0 - th - 2), (x0 + tw + 2, y0 + base), (0, 0, 0), -1)
    cv2.putText(img, text, (x0, y0), cv2.FONT_HERSHEY_SIMPLEX, size, colour, thickness,
                cv2.LINE_AA)


def draw_proposal(background: np.ndarray, proposal: Proposal) -> np.ndarray:
    """A BGR picture of ``proposal`` on ``background`` (grayscale), upscaled for small videos
    so that labels stay legible."""
    h, w = background.shape[:2]
    scale = max(1, int(np.ceil(640 / max(w, 1))))
    img = cv2.cvtColor(background, cv2.COLOR_GRAY2BGR) if background.ndim == 2 else (
        background.copy())
    if scale > 1:
        img = cv2.resize(img, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)
    size = 0.45 * max(1.0, img.shape[1] / 800)
    line_px = max(1, int(round(img.shape[1] / 400)))

    def colour(f: Finding):
        return _COLOURS[f.level]

    for arena in proposal.arenas:
        c = colour(arena.outline)
        cv2.polylines(img, [_pts(arena.polygon, scale)], True, c, line_px, cv2.LINE_AA, shift=3)
        top = min(arena.polygon, key=lambda p: p[1])
        _label(img, f"{arena.name} outline {arena.outline.level} "
               f"{arena.outline.confidence:.2f}", top[0] * scale, top[1] * scale + 12 * size * 2,
               c, size)
        for door in arena.doors:
            dc = colour(door.finding)
            cv2.line(img, *(tuple(p) for p in _pts(door.line, scale)), dc, line_px,
                     cv2.LINE_AA, shift=3)
            if door.opening is not None:
                a, b = _pts(door.opening, scale)
                cv2.line(img, tuple(a), tuple(b), (255, 255, 0), line_px * 3, cv2.LINE_AA,
                         shift=3)
            mid = np.mean(door.line, axis=0) * scale
            _label(img, f"{door.name} {door.finding.level} {door.finding.confidence:.2f}",
                   mid[0], mid[1] - 40 * size, dc, size)
        for name, point in arena.chambers:
            x, y = point[0] * scale, point[1] * scale
            cv2.drawMarker(img, (int(x), int(y)), (255, 0, 255), cv2.MARKER_CROSS,
                           int(14 * size * 2), line_px)
            _label(img, name, x, y + 24 * size, (255, 0, 255), size)
    if not proposal.doors_found:
        _label(img, "no doors found: edit the config or use cpp-tracker draw",
               img.shape[1] / 2, img.shape[0] - 20 * size, _COLOURS["low"], size)
    return img
