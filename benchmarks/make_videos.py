"""Generate the long synthetic recordings the benchmarks run on.

For each frame size, a base clip of ``--base-min`` minutes is rendered and encoded by
:func:`cpp_tracker.synthetic.generate_video` (H.264, keyframe every 2 s, veryfast, crf 23)
together with its config and ground truth. Longer files repeat the base clip: its packets
are copied (no re-encoding) with their timestamps shifted by the clip's length, so a
30-min file takes seconds instead of an hour of rendering. The mouse jumps back to its
starting position at each repetition; the ground truth is repeated the same way.

Files go to ``benchmarks/data/`` (git-ignored)::

    benchmarks/data/cpp_640x480_3min.mp4    (+ .yaml config, _truth.parquet)
    benchmarks/data/cpp_640x480_30min.mp4
    benchmarks/data/cpp_1280x720_3min.mp4
    benchmarks/data/cpp_1280x720_30min.mp4

Usage::

    python benchmarks/make_videos.py                      # both sizes, 3 and 30 min
    python benchmarks/make_videos.py --sizes 640x480 --minutes 3 30
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import av
import pandas as pd
import yaml

from cpp_tracker.synthetic import SceneSpec, generate_video

DATA = Path(__file__).resolve().parent / "data"


def name_for(width: int, height: int, minutes: float) -> str:
    return f"cpp_{width}x{height}_{minutes:g}min"


def repeat_clip(src: Path, dst: Path, copies: int) -> None:
    """Write ``copies`` repetitions of ``src`` into ``dst`` by copying packets, each
    repetition's timestamps shifted by the clip's length."""
    with av.open(str(src)) as probe:
        stream = probe.streams.video[0]
        pts = [p.pts for p in probe.demux(stream) if p.pts is not None]
        step = sorted(pts)[1] - sorted(pts)[0]
        length = max(pts) - min(pts) + step
    tmp = dst.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w", options={"movflags": "+faststart"}) as out:
        with av.open(str(src)) as first:
            out_stream = out.add_stream_from_template(first.streams.video[0])
        for k in range(copies):
            with av.open(str(src)) as inp:
                s = inp.streams.video[0]
                for packet in inp.demux(s):
                    if packet.dts is None:
                        continue
                    packet.pts += k * length
                    packet.dts += k * length
                    packet.stream = out_stream
                    out.mux(packet)
    tmp.replace(dst)


def make(width: int, height: int, minutes: list[float], base_min: float, seed: int) -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    base = DATA / f"{name_for(width, height, base_min)}.mp4"
    base_truth = DATA / f"{name_for(width, height, base_min)}_truth.parquet"
    base_cfg = DATA / f"{name_for(width, height, base_min)}.yaml"
    if not base.exists():
        t0 = time.perf_counter()
        spec = SceneSpec(width=width, height=height, duration_s=60.0 * base_min, seed=seed)
        truth = generate_video(base, spec)
        truth.track.to_parquet(base_truth)
        base_cfg.write_text(yaml.safe_dump(truth.config, sort_keys=False))
        print(f"{base.name}: rendered in {time.perf_counter() - t0:.0f} s", flush=True)
    for m in minutes:
        if m == base_min:
            continue
        copies = m / base_min
        if copies != int(copies):
            sys.exit(f"--minutes {m:g} is not a multiple of --base-min {base_min:g}")
        dst = DATA / f"{name_for(width, height, m)}.mp4"
        if dst.exists():
            continue
        t0 = time.perf_counter()
        repeat_clip(base, dst, int(copies))
        truth = pd.read_parquet(base_truth)
        length_s = 60.0 * base_min
        n = truth["frame"].max() + 1
        reps = []
        for k in range(int(copies)):
            t = truth.copy()
            t["frame"] += k * n
            t["time_s"] += k * length_s
            reps.append(t)
        pd.concat(reps, ignore_index=True).to_parquet(
            DATA / f"{name_for(width, height, m)}_truth.parquet"
        )
        shutil.copyfile(base_cfg, DATA / f"{name_for(width, height, m)}.yaml")
        print(f"{dst.name}: {int(copies)} copies in {time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1280x720"])
    parser.add_argument("--minutes", nargs="+", type=float, default=[3.0, 30.0])
    parser.add_argument("--base-min", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for size in args.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        make(w, h, args.minutes, args.base_min, args.seed)


if __name__ == "__main__":
    main()
