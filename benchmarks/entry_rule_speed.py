"""What the chamber shares (``chambers.rule: body_fraction``) cost the tracking.

The tracker computes each detected blob's share per chamber in every run (so that
``reprocess`` can switch rules later). Where the blob's bounding box holds no pixel of a
door line this is one look-up; otherwise the blob's own pixels (as labelled by detection)
are counted per chamber.

This script times :func:`cpp_tracker.tracking.tracker.detect_chunk` over the decoded frames
of generated videos twice, with the shares and with a copy of the same detector without
them (``pieces=None``: what tracking cost before), alternately, ``--repeat`` times, and
reports the median ratio of CPU time (``time.process_time``: on a machine shared with other
work, wall time says more about the others than about this).
Decoding is not included, so the ratio is an upper bound of what the shares add to a
``track`` run. It also reports the share of frames whose blob lay across a door line, and
how far the tracked shares are from the generator's true body shares.

    python benchmarks/entry_rule_speed.py                  # 640x480 and 1280x720, 60 s
    python benchmarks/entry_rule_speed.py --sizes 320x240 --seconds 30 --repeat 5

Results are printed and written to ``benchmarks/results/entry_rule_speed.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from cpp_tracker.config.settings import parse_config
from cpp_tracker.synthetic.scenes import SceneSpec, body_shares, generate_video
from cpp_tracker.tracking.background import median_background
from cpp_tracker.tracking.tracker import detect_chunk, make_detector
from cpp_tracker.video.reader import VideoReader

HERE = Path(__file__).resolve().parent


def _frames(size: str, seconds: float, seed: int, work: Path):
    w, h = (int(v) for v in size.split("x"))
    spec = SceneSpec(width=w, height=h, duration_s=seconds, seed=seed)
    truth = generate_video(work / f"{size}.mp4", spec)
    config = parse_config(truth.config)
    with VideoReader(work / f"{size}.mp4") as reader:
        samples, _ = reader.sample_frames(config.background.samples)
        frames = np.concatenate([c.frames for c in reader.chunks(prefetch=False)])
    det = make_detector(config.arenas[0], config.detection, median_background(samples),
                        samples)
    return frames, det, spec


def measure(size: str, seconds: float, seed: int, repeat: int, work: Path) -> dict:
    frames, det, spec = _frames(size, seconds, seed, work)
    bare = dataclasses.replace(det, pieces=None, door_band=None, _lit={})
    ratios, with_s, without_s = [], [], []
    for r in range(repeat):
        # alternately first: a load that comes and goes hits both the same
        times = {}
        for which in (("bare", "det") if r % 2 == 0 else ("det", "bare")):
            t0 = time.process_time()
            out = detect_chunk(frames, bare if which == "bare" else det)
            times[which] = time.process_time() - t0
            if which == "det":
                result = out
        without_s.append(times["bare"])
        with_s.append(times["det"])
        ratios.append(times["det"] / times["bare"])
    x, shares = result[0], result[5]
    found = np.isfinite(x)
    counted = (shares[found] > 0).sum(axis=1) > 1  # (at least) the blobs across a line
    true = body_shares(spec)[[f"share_{j}" for j in range(shares.shape[1])]].to_numpy()
    error = np.abs(shares[found] - true[found]).max(axis=1)
    mixed = (true[found] > 0.05).sum(axis=1) > 1
    return {
        "size": size,
        "frames": int(len(frames)),
        "detect_s_without_shares": round(statistics.median(without_s), 3),
        "detect_s_with_shares": round(statistics.median(with_s), 3),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "frames_blob_across_a_door": round(float(counted.mean()), 3),
        "frames_across_a_door": int(mixed.sum()),
        "share_error_max": round(float(error.max()), 4),
        "share_error_p99_across": round(float(np.percentile(error[mixed], 99)), 4)
        if mixed.any() else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=10)
    p.add_argument("--repeat", type=int, default=11)
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            r = measure(size, args.seconds, args.seed, args.repeat, Path(tmp))
            print(json.dumps(r))
            results.append(r)
    out = HERE / "results" / "entry_rule_speed.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"seconds": args.seconds, "seed": args.seed,
                               "repeat": args.repeat, "results": results}, indent=2) + "\n")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
