"""``cpp-tracker track`` with detection switched off: the floor of the pipeline.

Everything a real run does happens (start-up, background and calibration, the segment plan
and worker processes, decoding every frame into its chunk, part files, analysis, figure,
run.json), except that each arena's detection (:func:`cpp_tracker.tracking.tracker.detect_chunk`)
returns the centre of the arena for every frame at once. The time of this run against the
grab loop on the same file is what no faster detection can go below: decoding with one
thread per process plus the rest of the command.

    python benchmarks/track_without_detection.py VIDEO --config C.yaml --out DIR [track options]

Not a way to get results (the mouse never moves).
"""

import sys

import numpy as np

from cpp_tracker.tracking import tracker


def _no_detection(frames: np.ndarray, detector) -> tuple[np.ndarray, ...]:
    n = len(frames)
    x = np.full(n, (detector.x0 + detector.x1) / 2.0)
    y = np.full(n, (detector.y0 + detector.y1) / 2.0)
    area = np.full(n, detector.mouse_area_px or 100.0)
    blobs = np.ones(n, dtype=np.int16)
    gains = np.ones(n, dtype=np.float32)
    shares = np.full((n, detector.n_chambers), np.nan, dtype=np.float32)
    return x, y, area, blobs, gains, shares


# At module level: the segment worker processes start fresh interpreters that import this
# script again (as __mp_main__), so they run without detection too.
tracker.detect_chunk = _no_detection

if __name__ == "__main__":
    from cpp_tracker.cli import main

    raise SystemExit(main(["track", *sys.argv[1:]]))
