"""Preemption at random moments: does any kill ever lose or change a result? (issue 20)

Each run tracks a synthetic video in a forked child (as ``cpp-tracker track`` does, with
its SIGTERM handler and grace time) and sends it SIGTERM (or, with ``--sigkill-share``,
SIGKILL, which leaves no chance to save anything) after a random delay; the next attempt
continues from the checkpoint, until one attempt finishes. The result is then compared
with an uninterrupted run's: ``track.parquet`` equal as a table, ``summary.csv``,
``occupancy.csv`` and ``background.png`` byte for byte. A result that differs, or a run
that never finishes within ``--max-attempts``, is counted as lost.

    PYTHONPATH=. python benchmarks/faults.py --runs 100 --duration 8 --seed 1

prints: runs, interruptions (by SIGTERM / SIGKILL), results identical, results lost, and
the time from SIGTERM to exit (a stop while reading saves the frames read and exits at
once; one during the background estimate or the analysis waits for the grace time).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

from cpp_tracker.config.settings import load_config
from cpp_tracker.runs.pipeline import track_video
from cpp_tracker.runs.stopping import StopRequested, stop_on_sigterm
from cpp_tracker.synthetic import SceneSpec, generate_video

TABLES = ("summary.csv", "occupancy.csv", "background.png")


def same_results(a: Path, b: Path) -> bool:
    try:
        if not pd.read_parquet(a / "track.parquet").equals(pd.read_parquet(b / "track.parquet")):
            return False
        return all((a / n).read_bytes() == (b / n).read_bytes() for n in TABLES)
    except OSError:
        return False


def track_in_child(video: Path, config: Path, out: Path, grace_s: float) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        with stop_on_sigterm(grace_s):
            track_video(video, load_config(config), out, progress=False, plots=False,
                        growing_check_s=0)
        code = 0
    except StopRequested as e:
        code = 128 + e.signum
    except BaseException:  # noqa: BLE001 - reported as exit status 1
        code = 1
    finally:
        os._exit(code)


def one_run(video, config, out, rng, args, counts, stop_times) -> bool:
    """Kill-and-resume until finished; True when it finished within the attempts."""
    delay = args.max_delay
    for _ in range(args.max_attempts):
        pid = track_in_child(video, config, out, args.grace)
        time.sleep(rng.uniform(0.0, delay))
        sig = signal.SIGKILL if rng.random() < args.sigkill_share else signal.SIGTERM
        sent = time.perf_counter()
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            return True
        if code == 143:
            stop_times.append(time.perf_counter() - sent)
        if code not in (143, -signal.SIGTERM, -signal.SIGKILL):
            print(f"  attempt ended with exit status {code}", file=sys.stderr)
        counts["sigkill" if sig == signal.SIGKILL else "sigterm"] += 1
        delay *= 1.3
    return False


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--duration", type=float, default=8.0, help="video length, s")
    p.add_argument("--max-delay", type=float, default=1.0, help="latest kill, s after start")
    p.add_argument("--grace", type=float, default=1.0, help="--stop-grace-s of the runs")
    p.add_argument("--sigkill-share", type=float, default=0.2)
    p.add_argument("--max-attempts", type=int, default=30)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        video = tmp / "clip.mp4"
        truth = generate_video(video, SceneSpec(duration_s=args.duration, seed=args.seed))
        config = tmp / "box.yaml"
        config.write_text(yaml.safe_dump(dict(truth.config, video={"checkpoint_s": 1})))
        fresh = track_video(video, load_config(config), tmp / "fresh", progress=False,
                            plots=False, growing_check_s=0).result_dir
        counts = {"sigterm": 0, "sigkill": 0}
        stop_times: list[float] = []
        identical = lost = 0
        t0 = time.perf_counter()
        for k in range(args.runs):
            out = tmp / f"run{k}"
            finished = one_run(video, config, out, rng, args, counts, stop_times)
            if finished and same_results(out / video.stem, fresh):
                identical += 1
            else:
                lost += 1
                print(f"  run {k}: {'differs' if finished else 'never finished'}",
                      file=sys.stderr)
    print(f"runs {args.runs} ({args.duration:g} s video, checkpoint every 1 s, kills within "
          f"{args.max_delay:g} s, grace {args.grace:g} s), {time.perf_counter() - t0:.0f} s")
    print(f"interruptions {counts['sigterm'] + counts['sigkill']} (SIGTERM "
          f"{counts['sigterm']}, SIGKILL {counts['sigkill']})")
    if stop_times:
        at_safe_point = sum(t < 0.9 * args.grace for t in stop_times)
        print(f"SIGTERM to exit 143: median {statistics.median(stop_times):.2f} s, "
              f"max {max(stop_times):.2f} s; {at_safe_point} of {len(stop_times)} stopped "
              "at a safe point (while reading, the frames read saved) before the grace time")
    print(f"results identical {identical}")
    print(f"results lost {lost}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
