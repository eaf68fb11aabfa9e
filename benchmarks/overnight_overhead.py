"""What following the lighting and the background pre-pass cost (issue 4).

Prints, for a video and its config: the CPU time of one frame's light measurement
(``ArenaDetector.light_gain``) next to one detection, and of the background estimate
(gain correction and resting-mouse search) on the sampled frames.

    python benchmarks/overnight_overhead.py VIDEO CONFIG.yaml
"""

from __future__ import annotations

import sys
import time

from cpp_tracker.config.settings import load_config
from cpp_tracker.runs.pipeline import estimate_background_for
from cpp_tracker.tracking.tracker import make_detector
from cpp_tracker.video.reader import VideoReader


def main(video: str, config_path: str, repeats: int = 5) -> None:
    config = load_config(config_path)
    with VideoReader(video) as reader:
        samples, index = reader.sample_frames(config.background.samples)
    t0 = time.process_time()
    model = estimate_background_for(samples, index, config)
    t_background = time.process_time() - t0
    print(f"{video}: {samples.shape[2]}x{samples.shape[1]} px, {len(samples)} samples")
    print(f"  background estimate (gains, median, resting mouse): {t_background:.2f} s CPU")
    frames = model.samples[:20]
    for arena in config.arenas:
        det = make_detector(arena, config.detection, model.image, model.samples,
                            follow_lighting=True)
        for label, fn in (("light_gain", det.light_gain),
                          ("detect", lambda f, d=det: d.detect(f, d.light_gain(f)))):
            t0 = time.process_time()
            for _ in range(repeats):
                for f in frames:
                    fn(f)
            per = (time.process_time() - t0) / (repeats * len(frames)) * 1000
            print(f"  arena {arena.name}: {label:<10} {per:6.2f} ms per frame (CPU)")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
