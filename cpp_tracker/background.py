"""Background models: the image of the empty box, estimated from the video itself.

The default is the per-pixel median of frames sampled evenly across the whole recording:
wherever the mouse is in fewer than half of the sampled frames, the median is the floor.
"""

from __future__ import annotations

import numpy as np

__all__ = ["median_background"]


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
