"""Draw ``docs/entry_rule.png``: a mouse across a door, its share on each side, and what
the two entry rules make of a stop in the doorway.

A generated 640x480 video (seed 10: the mouse stops half across the door for about 2 s)
is tracked frame by frame with the tracker's own detector. Left: the frame in the middle
of the longest stretch with the blob across the door line, its pixels coloured by the
chamber they lie in. Right: the blob's share in the right-hand chamber over that stretch,
the enter / exit fractions, and the chamber per frame by the point rule (the centroid's
piece, which counts time) and by ``body_fraction`` 0.7 / 0.3.

    python docs/entry_rule_figure.py            # writes docs/entry_rule.png
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from cpp_tracker.config.settings import parse_config
from cpp_tracker.geometry.chambers import (
    assign_by_body_fraction,
    build_layout,
)
from cpp_tracker.synthetic.scenes import SceneSpec, generate_video
from cpp_tracker.tracking.background import median_background
from cpp_tracker.tracking.tracker import chamber_pieces, detect_chunk, make_detector
from cpp_tracker.video.reader import VideoReader
from cpp_tracker.visual.palette import chamber_colours

HERE = Path(__file__).resolve().parent

ENTER, EXIT = 0.7, 0.3


def _track(work: Path):
    spec = SceneSpec(width=640, height=480, duration_s=30.0, seed=10)
    truth = generate_video(work / "door.mp4", spec)
    config = parse_config(truth.config)
    with VideoReader(work / "door.mp4") as reader:
        samples, _ = reader.sample_frames(config.background.samples)
        frames = np.concatenate([c.frames for c in reader.chunks(prefetch=False)])
    arena = config.arenas[0]
    det = make_detector(arena, config.detection, median_background(samples), samples)
    x, y, area, _, _, shares = detect_chunk(frames, det)
    return frames, det, arena, config, spec, x, y, shares


def _longest_across(shares: np.ndarray) -> tuple[int, int]:
    across = (shares[:, 0] > 0.2) & (shares[:, 0] < 0.8)
    edges = np.flatnonzero(np.diff(np.r_[0, across.astype(int), 0]))
    return max(zip(edges[::2], edges[1::2], strict=True), key=lambda r: r[1] - r[0])


def _blob_pixels(det, frame) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (frame) of the largest opened blob: the mouse as detected."""
    import cv2

    ox, oy, part = det.opened_foreground(frame, det.light_gain(frame))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(part, connectivity=8)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    rows, cols = np.nonzero(labels == k)
    return rows + oy + det.y0, cols + ox + det.x0


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        frames, det, arena, config, spec, x, y, shares = _track(Path(tmp))
    names = arena.chamber_names
    colours = chamber_colours(config)
    start, stop = _longest_across(shares)
    i = (start + stop) // 2
    layout = build_layout(arena, config.chambers.hysteresis_px)
    det_ok = np.isfinite(x)
    point = np.full(len(x), -1)
    point[det_ok] = layout.raw_chamber(x[det_ok], y[det_ok])
    body, _ = assign_by_body_fraction(shares, det_ok, ENTER, EXIT)

    fig, (ax_img, ax_t) = plt.subplots(1, 2, figsize=(9.6, 3.6),
                                       gridspec_kw={"width_ratios": [1, 1.45]})
    # left: the frame, the blob coloured by chamber, the door line
    rows, cols = _blob_pixels(det, frames[i])
    pieces = chamber_pieces(arena, 0, 0, frames.shape[2], frames.shape[1])
    rgb = np.repeat(frames[i][..., None], 3, axis=2).astype(float) / 255.0
    for j, name in enumerate(names):
        on = pieces[rows, cols] == j
        rgb[rows[on], cols[on]] = 0.35 * rgb[rows[on], cols[on]] + 0.65 * np.array(
            colours[name].rgb01)
    (dx0, dy0), (dx1, dy1) = arena.doors[0].line
    cx, cy, half = int(round(x[i])), int(round(y[i])), 70
    ax_img.imshow(rgb[cy - half : cy + half, cx - half : cx + half],
                  extent=(cx - half - 0.5, cx + half - 0.5, cy + half - 0.5, cy - half - 0.5))
    ax_img.plot([dx0, dx1], [dy0, dy1], "--", color="white", lw=1.5)
    ax_img.plot(x[i], y[i], "+", color="white", ms=10, mew=2)
    ax_img.set_xlim(cx - half, cx + half)
    ax_img.set_ylim(cy + half, cy - half)
    door_x = (dx0 + dx1) / 2
    for j, name in enumerate(names):
        left = arena.chambers[j].point[0] < door_x  # the label on its chamber's side
        ha, xpos = ("left", 0.03) if left else ("right", 0.97)
        ax_img.text(xpos, 0.05, f"{name}\n{100 * shares[i, j]:.0f} % of the blob",
                    transform=ax_img.transAxes, ha=ha, va="bottom", fontsize=9,
                    color="white", bbox={"facecolor": colours[name].rgb01, "alpha": 0.85,
                                         "edgecolor": "none", "pad": 2})
    ax_img.set_title("the mouse across the door (+: centroid)", fontsize=10)
    ax_img.set_xticks([])
    ax_img.set_yticks([])

    # right: the share over the stop, the thresholds, the chamber by each rule
    lo, hi = max(0, start - 25), min(len(x), stop + 25)
    t = np.arange(lo, hi) / spec.fps
    ax_t.plot(t, shares[lo:hi, 1], color="black", lw=1.5, label=f"share in {names[1]}")
    ax_t.axhline(ENTER, color="grey", ls="--", lw=1)
    ax_t.axhline(EXIT, color="grey", ls=":", lw=1)
    ax_t.text(t[0], ENTER + 0.02, f"enter_fraction {ENTER}", fontsize=8, color="grey")
    ax_t.text(t[0], EXIT + 0.02, f"exit_fraction {EXIT}", fontsize=8, color="grey")
    for row, (label, codes) in enumerate((("point", point), ("body_fraction", body))):
        y0 = -0.32 - 0.2 * row
        for k in range(lo, hi):
            if codes[k] >= 0:
                ax_t.add_patch(plt.Rectangle((k / spec.fps - 0.5 / spec.fps, y0),
                                             1 / spec.fps, 0.14,
                                             color=colours[names[codes[k]]].rgb01, lw=0))
        ax_t.text(t[-1] + 0.05, y0 + 0.07, label, fontsize=8, va="center")
    ax_t.axvline(i / spec.fps, color="black", lw=0.8, alpha=0.4)
    ax_t.set_ylim(-0.56, 1.05)
    ax_t.set_xlim(t[0], t[-1] + 0.9)
    ax_t.set_yticks([0, 0.3, 0.5, 0.7, 1])
    ax_t.set_xlabel("time (s)")
    ax_t.set_title(f"share of the blob in '{names[1]}', and the chamber by each rule",
                   fontsize=10)
    ax_t.legend(loc="upper right", fontsize=8, frameon=False)
    fig.tight_layout()
    out = HERE / "entry_rule.png"
    fig.savefig(out, dpi=100)
    print(f"written {out} (frame {i}, the blob across the door in frames {start}-{stop})")


if __name__ == "__main__":
    main()
