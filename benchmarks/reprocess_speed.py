"""Reprocess time versus track time on the same video.

Tracks a video once with a config, then reprocesses the result with the door line moved
(and 5-minute bins added) and prints both times and their ratio (issue 19's targets: at
least 200 times faster than tracking for the tables, 50 times with ``qc.png``). Without
``--video`` a synthetic CPP video is generated first (``--width``, ``--height``, ``--duration``).

    python benchmarks/reprocess_speed.py                       # 640x480, 5 min synthetic
    python benchmarks/reprocess_speed.py --video night1.mp4 --config box.yaml

The reprocess time is the wall time of :func:`cpp_tracker.runs.reprocess.reprocess_result`
(read the track, chambers, occupancy, summary and bins, write them and run.json), shown
without and with drawing the QC figure ``qc.png`` again (a constant ~0.2 s, matplotlib);
the track time is that of :func:`cpp_tracker.runs.pipeline.track_video` (which draws ``qc.png``
too), both in this process.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from cpp_tracker.config.settings import parse_config
from cpp_tracker.runs.pipeline import result_dir_for, track_video
from cpp_tracker.runs.reprocess import reprocess_result


def moved(config: dict, dx: float) -> dict:
    new = copy.deepcopy(config)
    for arena in new["arenas"]:
        for door in arena.get("doors", []):
            door["line"] = [[x + dx, y] for x, y in door["line"]]
    new["summary"] = {**(new.get("summary") or {}), "bin_s": 300}
    return new


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", help="a video to use (default: generate a synthetic one)")
    p.add_argument("--config", help="its config (required with --video)")
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--duration", type=float, default=300.0, help="seconds of synthetic video")
    p.add_argument("--repeat", type=int, default=3, help="reprocess runs (median is shown)")
    p.add_argument("--work", help="folder for the video and results (default: a temp folder)")
    args = p.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="reprocess_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.video:
        if not args.config:
            p.error("--config is needed with --video")
        video = Path(args.video)
        raw = yaml.safe_load(Path(args.config).read_text())
    else:
        from cpp_tracker.synthetic import SceneSpec, generate_video

        video = work / "bench.mp4"
        t0 = time.perf_counter()
        spec = SceneSpec(width=args.width, height=args.height, duration_s=args.duration, seed=5)
        truth = generate_video(video, spec)
        raw = truth.config
        print(
            f"generated {video} ({args.width}x{args.height}, {args.duration:g} s) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
    config = parse_config(copy.deepcopy(raw), source="original")

    t0 = time.perf_counter()
    run = track_video(video, config, work / "out", progress=False)
    track_s = time.perf_counter() - t0
    frames = run.record.time_base.frames_tracked
    result = result_dir_for(video, work / "out")

    def median_time(plots: bool, first: int) -> float:
        times = []
        for i in range(first, first + args.repeat):
            # a different door position each time, so that every run has work to do
            new = parse_config(moved(raw, 2.0 + i), source=f"moved{i}")
            t0 = time.perf_counter()
            r = reprocess_result(result, new, plots=plots)
            times.append(time.perf_counter() - t0)
            assert r.status == "reprocessed", r.status
        return statistics.median(times)

    tables_s = median_time(False, 0)
    with_qc_s = median_time(True, args.repeat)
    print(f"video                 {video} ({frames} frames)")
    print(f"track                 {track_s:8.2f} s  ({frames / track_s:7.0f} frames/s)")
    for what, seconds, target in (("reprocess", tables_s, 200),
                                  ("reprocess + qc.png", with_qc_s, 50)):
        print(
            f"{what:<21} {seconds:8.3f} s  ({frames / seconds:7.0f} frames/s, median of "
            f"{args.repeat}); ratio {track_s / seconds:6.0f} x (target >= {target} x)"
        )


if __name__ == "__main__":
    main()
