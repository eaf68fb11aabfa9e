"""What resuming saves: kill a batch half-way through a video, rerun it, compare.

Generates a synthetic video, then runs ``cpp-tracker batch`` three ways and prints wall
time and frames decoded for each:

1. uninterrupted;
2. killed with SIGKILL (main process and workers) once the track reached ``--kill-at`` of
   the video, then rerun: the rerun continues from the last checkpoint;
3. rerun once more: nothing to do (the up-to-date check: fingerprints and config hash).

Also times the content fingerprint of the video file. Run from the repository root::

    python benchmarks/batch_resume.py --duration 120 --checkpoint 10
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from cpp_tracker.runs.pipeline import file_fingerprint
from cpp_tracker.synthetic import SceneSpec, generate_video


def batch(args: list[str], env: dict) -> tuple[float, pd.Series]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "cpp_tracker", "batch", *args], env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    out = Path(args[args.index("--out") + 1])
    row = pd.read_csv(out / "batch_status.csv", dtype=str, keep_default_na=False).iloc[0]
    return wall, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=120.0, help="video length, s")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--checkpoint", type=float, default=10.0, help="video.checkpoint_s")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction of the video")
    a = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cpp_batch_bench_"))
    video = root / "night.mp4"
    truth = generate_video(video, SceneSpec(width=a.width, height=a.height,
                                            duration_s=a.duration, seed=7))
    config = root / "box.yaml"
    config.write_text(yaml.safe_dump(dict(truth.config, video={"checkpoint_s": a.checkpoint})))
    env = dict(os.environ)
    common = [str(video), "--config", str(config), "--workers", "1", "--no-progress"]

    t0 = time.perf_counter()
    for _ in range(20):
        file_fingerprint(video)
    print(f"video: {a.width}x{a.height}, {a.duration:.0f} s, {video.stat().st_size / 1e6:.1f} MB;"
          f" fingerprint {1000 * (time.perf_counter() - t0) / 20:.1f} ms")

    wall, row = batch([*common, "--out", str(root / "fresh")], env)
    print(f"uninterrupted: {wall:6.1f} s wall, {row['frames_decoded']} frames decoded")

    out = root / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "cpp_tracker", "batch", *common,
                             "--out", str(out)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = out / "night" / ".partial" / "checkpoint.json"
    t0 = time.perf_counter()
    while proc.poll() is None:
        if checkpoint.exists():
            state = json.loads(checkpoint.read_text())
            pos = state.get("position") or {}
            if pos.get("time_s", 0) >= a.kill_at * a.duration:
                break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_after = time.perf_counter() - t0
    wall, row = batch([*common, "--out", str(out)], env)
    print(f"killed after {killed_after:.1f} s at {pos.get('time_s', 0):.0f} s of video; rerun: "
          f"{wall:6.1f} s wall, {row['frames_decoded']} frames decoded, continued from "
          f"{row['resumed_from_s']} s")
    same = (out / "night" / "summary.csv").read_bytes() == (
        root / "fresh" / "night" / "summary.csv").read_bytes()
    print(f"summary.csv identical to the uninterrupted run: {same}")

    wall, row = batch([*common, "--out", str(out)], env)
    print(f"second rerun: {wall:6.1f} s wall, status {row['status']} ({row['note']})")
    print(f"(files in {root})")


if __name__ == "__main__":
    main()
