"""Speed, memory and scaling of ``cpp-tracker track`` on long synthetic recordings.

Every measurement runs a separate process (as a user would) and is repeated ``--repeat``
times; the measurements of one repetition run back to back, so a ratio compares runs made
under the same load. The figure reported is the median over repetitions of each ratio.
Peak memory is the largest sum of the resident memory (RSS) of the process and its
children, sampled every 20 ms. Where a run has several processes (``--workers``), RSS counts
the pages they share (the libraries: Python, NumPy, OpenCV, Arrow) once per process; the
memory sections also give the peak sum of their proportional set size (PSS: each shared
page divided among the processes that map it), which is what the tree takes from the
machine.

Sections (all by default):

- ``speed``: ``track`` and ``track --workers 2`` against a bare OpenCV ``grab()`` loop
  (benchmarks/grab_loop.py) over the same 30-min file, 640x480 and 1280x720: wall time
  ratios, peak memory, and the track's accuracy against the ground truth.
- ``memory``: peak memory of ``track`` on the 3-min and the 30-min files, one process and
  ``--workers 2``.
- ``segments``: ``track --workers 2`` against ``--workers 1`` on the 30-min 1280x720 file,
  and whether their tracks and summaries are identical.
- ``scaling``: ``batch --workers 2`` against ``batch --workers 1`` on two 30-min 640x480
  files: throughput ratio.
- ``stride``: ``track --stride 5`` against ``--stride 1`` (time, and time in chambers).
- ``decoding_bar``: issue 19's table on the ``--minutes`` files: the grab loop (two FFmpeg
  threads, and one), ``track`` with one process and the default ``--workers auto``, the
  same with ``video.reader: pyav`` + ``fast_decode``, the floor (the same commands with
  detection switched off: benchmarks/track_without_detection.py), ``--stride 5``, one core
  (affinity) and the 12-hour estimate; best of ``--repeat``.

Make the files first (``python benchmarks/make_videos.py``), then::

    python benchmarks/performance.py                 # everything, 3 repetitions
    python benchmarks/performance.py --sections speed memory --repeat 2

Results are printed and written to ``benchmarks/results/performance.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"
PY = sys.executable
#: Frame sizes the speed and memory sections measure (--sizes).
SIZES = ["640x480", "1280x720"]
#: Length of the files of the decoding_bar section, minutes (--minutes).
MINUTES = 30.0
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# -- measuring a process ---------------------------------------------------------------------
def _rss_kb(pid: int, field: str = "rss") -> int:
    """Resident memory (``rss``) or proportional set size (``pss``) of ``pid`` and all its
    descendants, kB."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            if field == "pss":
                with open(f"/proc/{p}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
                            break
            else:
                with open(f"/proc/{p}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            total += int(line.split()[1])
                            break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def run(cmd: list[str], pss: bool = False) -> dict:
    """Run ``cmd``; its wall time (s), CPU time of its process tree (s, user + system), peak
    memory of its process tree (MB: RSS, and PSS when ``pss``), exit code."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        while not done.is_set():
            peak = max(peak, _rss_kb(proc.pid))
            if pss:
                peak_pss = max(peak_pss, _rss_kb(proc.pid, "pss"))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{err.decode()[-2000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "peak_mb": peak / 1024.0,
            "peak_pss_mb": peak_pss / 1024.0, "stdout": out.decode()}


def run_parallel(cmds: list[list[str]]) -> float:
    """Start all ``cmds`` at once; wall time until the last one ends."""
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(c, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for c in cmds
    ]
    for p, c in zip(procs, cmds, strict=True):
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(c)}\n{err.decode()[-2000:]}")
    return time.perf_counter() - t0


def track_cmd(video: Path, out: Path, *extra: str) -> list[str]:
    return [
        PY, "-m", "cpp_tracker", "track", str(video), "--config", str(video.with_suffix(".yaml")),
        "--out", str(out), "--no-progress", *extra,
    ]


def grab_cmd(video: Path) -> list[str]:
    return [PY, str(HERE / "grab_loop.py"), str(video)]


def video(size: str, minutes: int) -> Path:
    path = DATA / f"cpp_{size}_{minutes:g}min.mp4"
    if not path.exists():
        sys.exit(f"{path} is missing: run python benchmarks/make_videos.py first")
    return path


def accuracy(result_dir: Path, truth_path: Path) -> dict:
    """Median centroid error (px) and largest chamber-time difference (% of duration)."""
    track = pd.read_parquet(result_dir / "track.parquet")
    truth = pd.read_parquet(truth_path)
    merged = track.merge(truth, on=["frame", "arena"], suffixes=("", "_true"))
    err = np.hypot(merged["x"] - merged["x_true"], merged["y"] - merged["y_true"])
    summary = pd.read_csv(result_dir / "summary.csv")
    duration = float(summary["duration_s"].iloc[0])
    fps = len(truth) / duration
    true_s = truth.groupby("chamber").size() / fps
    got = summary.set_index("chamber")["time_s"]
    worst = max(abs(got.get(c, 0.0) - true_s.get(c, 0.0)) for c in true_s.index)
    return {
        "median_error_px": round(float(np.nanmedian(err)), 3),
        "worst_chamber_diff_pct": round(100 * worst / duration, 3),
        "frames_compared": int(len(merged)),
    }


def med(values: list[float]) -> float:
    return round(statistics.median(values), 3)


# -- sections ----------------------------------------------------------------------------------
def speed(repeat: int, work: Path) -> dict:
    out = {}
    for size in [s for s in ("640x480", "1280x720") if s in SIZES]:
        v = video(size, 30)
        rows = []
        for _ in range(repeat):
            g = run(grab_cmd(v))
            t = run(track_cmd(v, work / f"speed_{size}", "--workers", "1"))
            t2 = run(track_cmd(v, work / f"speed2_{size}", "--workers", "2"))
            rows.append({"grab_s": g["wall_s"], "track_s": t["wall_s"],
                         "ratio": t["wall_s"] / g["wall_s"],
                         "track_workers2_s": t2["wall_s"],
                         "ratio_workers2": t2["wall_s"] / g["wall_s"],
                         "track_peak_mb": t["peak_mb"], "workers2_peak_mb": t2["peak_mb"]})
            print(f"  speed {size}: grab {g['wall_s']:.1f} s, track {t['wall_s']:.1f} s "
                  f"(ratio {rows[-1]['ratio']:.2f}), track --workers 2 {t2['wall_s']:.1f} s "
                  f"(ratio {rows[-1]['ratio_workers2']:.2f})", flush=True)
        result = work / f"speed_{size}" / v.stem
        run_json = json.loads((result / "run.json").read_text())
        out[size] = {
            "frames": int(g["stdout"].strip()),
            "grab_s": med([r["grab_s"] for r in rows]),
            "track_s": med([r["track_s"] for r in rows]),
            "track_over_grab": med([r["ratio"] for r in rows]),
            "track_workers2_s": med([r["track_workers2_s"] for r in rows]),
            "workers2_over_grab": med([r["ratio_workers2"] for r in rows]),
            "track_peak_mb": med([r["track_peak_mb"] for r in rows]),
            "workers2_peak_mb": med([r["workers2_peak_mb"] for r in rows]),
            "runs": rows,
            "detection": run_json["detection"],
            "background_sampling": run_json["reader"].get("background_sampling"),
            "accuracy": accuracy(result, v.with_name(f"{v.stem}_truth.parquet")),
        }
    return out


def memory(repeat: int, work: Path) -> dict:
    out = {}
    for size in [s for s in ("1280x720", "640x480") if s in SIZES]:
        rows = []
        for _ in range(repeat):
            row = {}
            for minutes in (3, 30):
                for label, extra in (("", ("--workers", "1")), ("workers2_", ("--workers", "2"))):
                    r = run(track_cmd(video(size, minutes), work / f"memory_{size}", *extra),
                            pss=True)
                    row[f"{label}{minutes}min_mb"] = r["peak_mb"]
                    row[f"{label}{minutes}min_pss_mb"] = r["peak_pss_mb"]
            row["ratio"] = row["30min_mb"] / row["3min_mb"]
            rows.append(row)
            print(f"  memory {size}: one process 3 min {row['3min_mb']:.0f} MB "
                  f"(PSS {row['3min_pss_mb']:.0f}), 30 min {row['30min_mb']:.0f} MB "
                  f"(PSS {row['30min_pss_mb']:.0f}); --workers 2: 3 min "
                  f"{row['workers2_3min_mb']:.0f} MB (PSS {row['workers2_3min_pss_mb']:.0f}), "
                  f"30 min {row['workers2_30min_mb']:.0f} MB "
                  f"(PSS {row['workers2_30min_pss_mb']:.0f})", flush=True)
        out[size] = {
            "peak_3min_mb": med([r["3min_mb"] for r in rows]),
            "peak_30min_mb": med([r["30min_mb"] for r in rows]),
            "30min_over_3min": med([r["ratio"] for r in rows]),
            **{
                f"{label}peak_{m}min_{kind}mb": med([r[f"{label}{m}min_{kind}mb"] for r in rows])
                for label in ("", "workers2_") for m in (3, 30) for kind in ("pss_", "")
                if label or kind
            },
            "runs": rows,
        }
    return out


def _same_results(a: Path, b: Path) -> bool:
    return pd.read_parquet(a / "track.parquet").equals(
        pd.read_parquet(b / "track.parquet")
    ) and (a / "summary.csv").read_text() == (b / "summary.csv").read_text() and (
        a / "occupancy.csv"
    ).read_text() == (b / "occupancy.csv").read_text()


def segments(repeat: int, work: Path) -> dict:
    v = video("1280x720", 30)
    rows = []
    for _ in range(repeat):
        one = run(track_cmd(v, work / "seg1", "--workers", "1"))
        two = run(track_cmd(v, work / "seg2", "--workers", "2"))
        rows.append({"one_s": one["wall_s"], "two_s": two["wall_s"],
                     "speedup": one["wall_s"] / two["wall_s"], "two_peak_mb": two["peak_mb"]})
        print(f"  segments: 1 worker {one['wall_s']:.1f} s, 2 workers {two['wall_s']:.1f} s",
              flush=True)
    parallel = json.loads((work / "seg2" / v.stem / "run.json").read_text())["parallel"]
    return {
        "one_worker_s": med([r["one_s"] for r in rows]),
        "two_workers_s": med([r["two_s"] for r in rows]),
        "speedup": med([r["speedup"] for r in rows]),
        "two_workers_peak_mb": med([r["two_peak_mb"] for r in rows]),
        "identical_results": _same_results(work / "seg1" / v.stem, work / "seg2" / v.stem),
        "segments": parallel["segments"],
        "runs": rows,
    }


def batch_cmd(videos: list[Path], out: Path, workers: int) -> list[str]:
    return [
        PY, "-m", "cpp_tracker", "batch", *map(str, videos), "--config",
        str(videos[0].with_suffix(".yaml")), "--out", str(out), "--workers", str(workers),
        "--force", "--no-progress",
    ]


def scaling(repeat: int, work: Path) -> dict:
    """``batch --workers 1`` against ``batch --workers 2`` on the same two files."""
    a = video("640x480", 30)
    b = work / "scaling_copy.mp4"  # a second file (same content, another name)
    if not b.exists():
        b.write_bytes(a.read_bytes())
    rows = []
    for _ in range(repeat):
        one = run(batch_cmd([a, b], work / "scaling_1", 1))
        two = run(batch_cmd([a, b], work / "scaling_2", 2))
        rows.append({"one_worker_s": one["wall_s"], "two_workers_s": two["wall_s"],
                     "throughput_ratio": one["wall_s"] / two["wall_s"],
                     "two_workers_peak_mb": two["peak_mb"]})
        print(f"  scaling: batch --workers 1 {one['wall_s']:.1f} s, --workers 2 "
              f"{two['wall_s']:.1f} s", flush=True)
    return {
        "one_worker_s": med([r["one_worker_s"] for r in rows]),
        "two_workers_s": med([r["two_workers_s"] for r in rows]),
        "throughput_ratio": med([r["throughput_ratio"] for r in rows]),
        "runs": rows,
    }


def stride(repeat: int, work: Path) -> dict:
    v = video("640x480", 30)
    rows = []
    for _ in range(repeat):
        one = run(track_cmd(v, work / "stride1", "--workers", "1"))
        five = run(track_cmd(v, work / "stride5", "--stride", "5", "--workers", "1"))
        g = run(grab_cmd(v))
        rows.append({"stride1_s": one["wall_s"], "stride5_s": five["wall_s"],
                     "grab_s": g["wall_s"]})
        print(f"  stride: 1 -> {one['wall_s']:.1f} s, 5 -> {five['wall_s']:.1f} s, "
              f"grab {g['wall_s']:.1f} s", flush=True)
    s1 = pd.read_csv(work / "stride1" / v.stem / "summary.csv").set_index("chamber")
    s5 = pd.read_csv(work / "stride5" / v.stem / "summary.csv").set_index("chamber")
    return {
        "stride1_s": med([r["stride1_s"] for r in rows]),
        "stride5_s": med([r["stride5_s"] for r in rows]),
        "grab_s": med([r["grab_s"] for r in rows]),
        "stride5_over_stride1": med([r["stride5_s"] / r["stride1_s"] for r in rows]),
        "stride5_over_grab": med([r["stride5_s"] / r["grab_s"] for r in rows]),
        "chamber_time_s": {"stride1": s1["time_s"].round(2).to_dict(),
                           "stride5": s5["time_s"].round(2).to_dict()},
        "entries": {"stride1": s1["entries"].dropna().astype(int).to_dict(),
                    "stride5": s5["entries"].dropna().astype(int).to_dict()},
        "accuracy_stride5": accuracy(work / "stride5" / v.stem,
                                     v.with_name(f"{v.stem}_truth.parquet")),
    }


# -- the decoding bar (issue 19) ----------------------------------------------------------
#: Frames of a 12-hour night at 30 fps.
NIGHT_FRAMES = 12 * 3600 * 30


def _fast_config(v: Path, work: Path) -> Path:
    """The video's config with ``video.reader: pyav`` and ``video.fast_decode: true``."""
    import yaml

    raw = yaml.safe_load(v.with_suffix(".yaml").read_text())
    raw["video"] = {**(raw.get("video") or {}), "reader": "pyav", "fast_decode": True}
    path = work / f"{v.stem}_fast.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _track_fresh(v: Path, config: Path, out: Path, *extra: str, cores: set[int] | None = None,
                 without_detection: bool = False) -> dict:
    """A ``track`` run into an empty folder (a finished result would be reused), on
    ``cores`` only when given (CPU affinity, as under SLURM); its run.json's blocks too.
    ``without_detection``: the same command with detection switched off
    (benchmarks/track_without_detection.py), the floor of the pipeline."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    command = ([str(HERE / "track_without_detection.py")] if without_detection
               else ["-m", "cpp_tracker", "track"])
    cmd = [PY, *command, str(v), "--config", str(config), "--out",
           str(out), "--no-progress", *extra]
    if cores is not None:
        cmd = ["taskset", "-c", ",".join(map(str, sorted(cores))), *cmd]
    r = run(cmd)
    record = json.loads((out / v.stem / "run.json").read_text())
    r["workers"] = record["parallel"]["workers"]
    r["reader"] = record["reader"]
    r["result"] = out / v.stem
    return r


def decoding_bar(repeat: int, work: Path) -> dict:
    """The issue-19 table: ``track`` (one process and the default ``--workers auto``), with
    OpenCV and with PyAV + fast_decode, against the grab loop on the same file, all
    interleaved in each repetition; best of ``repeat`` (the least disturbed run of each on
    a shared machine). On the largest size, the same on one core (affinity) for the
    12-hour estimate, and ``--stride 5`` on the smallest."""
    out: dict = {"minutes": MINUTES, "sizes": {}}
    for size in SIZES:
        v = video(size, MINUTES)
        cfg, fast = v.with_suffix(".yaml"), _fast_config(v, work)
        variants = {
            "track_1": (cfg, ("--workers", "1"), None),
            "track_auto": (cfg, (), None),
            "fast_1": (fast, ("--workers", "1"), None),
            "fast_auto": (fast, (), None),
            "floor_auto": (cfg, (), None),  # detection switched off
            "fast_floor_auto": (fast, (), None),
        }
        if size == SIZES[-1]:
            variants["track_1core"] = (cfg, (), {0})
            variants["fast_1core"] = (fast, (), {0})
        if size == SIZES[0]:
            variants["stride5_1"] = (cfg, ("--workers", "1", "--stride", "5"), None)
            variants["fast_stride5_1"] = (fast, ("--workers", "1", "--stride", "5"), None)
        best: dict[str, dict] = {}
        for _ in range(repeat):
            g = run(grab_cmd(v))
            if "grab" not in best or g["wall_s"] < best["grab"]["wall_s"]:
                best["grab"] = g
            one = run([*grab_cmd(v), "--threads", "1"])
            if "grab_1thread" not in best or one["wall_s"] < best["grab_1thread"]["wall_s"]:
                best["grab_1thread"] = one
            for name, (config, extra, cores) in variants.items():
                r = _track_fresh(v, config, work / f"bar_{size}_{name}", *extra, cores=cores,
                                 without_detection="floor" in name)
                if name not in best or r["wall_s"] < best[name]["wall_s"]:
                    best[name] = r
            print(f"  {size}: grab {g['wall_s']:.1f} s; " + ", ".join(
                f"{k} {best[k]['wall_s']:.1f} s" for k in variants), flush=True)
        frames = int(best["grab"]["stdout"].strip())
        grab_s = best["grab"]["wall_s"]
        row = {"frames": frames, "grab_s": round(grab_s, 2),
               "grab_1thread_over_grab": round(best["grab_1thread"]["wall_s"] / grab_s, 3),
               "grab_cpu_s": round(best["grab"]["cpu_s"], 2),
               "grab_1thread_cpu_s": round(best["grab_1thread"]["cpu_s"], 2)}
        for name in variants:
            b = best[name]
            row[name] = {"wall_s": round(b["wall_s"], 2),
                         "over_grab": round(b["wall_s"] / grab_s, 3),
                         "cpu_s": round(b["cpu_s"], 2),
                         "workers": b["workers"], "peak_mb": round(b["peak_mb"]),
                         "peak_mb_per_process": round(b["peak_mb"] / b["workers"]),
                         "frames_not_decoded": b["reader"].get("frames_not_decoded")}
        row["identical_auto_vs_one_process"] = _same_results(
            best["track_1"]["result"], best["track_auto"]["result"])
        row["accuracy_track"] = accuracy(best["track_1"]["result"],
                                         v.with_name(f"{v.stem}_truth.parquet"))
        row["accuracy_fast"] = accuracy(best["fast_1"]["result"],
                                        v.with_name(f"{v.stem}_truth.parquet"))
        if "track_1core" in row:
            row["night_12h"] = _night_estimate(row, frames)
        out["sizes"][size] = row
    _print_bar_table(out)
    return out


def _night_estimate(row: dict, frames: int) -> dict:
    """Hours for a 12-hour night at this size: measured rates on 1 core (affinity) and on
    this machine's cores (``--workers auto``), more cores extrapolated from the rate per
    core of the largest measured count (segments are independent; said so)."""
    cores = available_cores_here()
    est: dict = {"measured_cores": [1, cores], "extrapolated_cores": [8, 16]}
    for label, one, many in (("opencv", "track_1core", "track_auto"),
                             ("pyav_fast", "fast_1core", "fast_auto")):
        rate1 = frames / row[one]["wall_s"]
        rate_n = frames / row[many]["wall_s"]
        hours = {1: NIGHT_FRAMES / rate1 / 3600, cores: NIGHT_FRAMES / rate_n / 3600}
        for k in (8, 16):
            hours[k] = NIGHT_FRAMES / (rate_n / cores * k) / 3600
        est[label] = {str(k): round(h, 2) for k, h in sorted(hours.items())}
    return est


def available_cores_here() -> int:
    return len(os.sched_getaffinity(0))


def _print_bar_table(out: dict) -> None:
    sizes = list(out["sizes"])
    rows = [
        ("grab loop (s)", lambda r: f"{r['grab_s']:.1f}"),
        ("track, one process / grab", lambda r: f"{r['track_1']['over_grab']:.2f}"),
        ("track (default, --workers auto) / grab",
         lambda r: f"{r['track_auto']['over_grab']:.2f} ({r['track_auto']['workers']} proc)"),
        ("pyav + fast_decode, one process / grab", lambda r: f"{r['fast_1']['over_grab']:.2f}"),
        ("pyav + fast_decode, default / grab",
         lambda r: f"{r['fast_auto']['over_grab']:.2f} ({r['fast_auto']['workers']} proc)"),
        ("decoding alone with one thread (CPU s: grab / one thread)",
         lambda r: f"{r['grab_1thread_over_grab']:.2f} ({r['grab_cpu_s']:.1f} / "
                   f"{r['grab_1thread_cpu_s']:.1f})"),
        ("floor: default track, detection switched off / grab",
         lambda r: f"{r['floor_auto']['over_grab']:.2f} ({r['floor_auto']['workers']} proc)"),
        ("floor with pyav + fast_decode / grab",
         lambda r: f"{r['fast_floor_auto']['over_grab']:.2f} "
                   f"({r['fast_floor_auto']['workers']} proc)"),
        ("default results identical to one process",
         lambda r: "yes" if r["identical_auto_vs_one_process"] else "NO"),
        ("peak memory, one process (MB)", lambda r: f"{r['track_1']['peak_mb']}"),
        ("peak memory, default: all / per process (MB)",
         lambda r: f"{r['track_auto']['peak_mb']} / {r['track_auto']['peak_mb_per_process']}"),
        ("median centroid error, opencv / fast (px)",
         lambda r: f"{r['accuracy_track']['median_error_px']} / "
                   f"{r['accuracy_fast']['median_error_px']}"),
    ]
    print(f"\n{out['minutes']:g}-min files, best of the repetitions")
    print("| | " + " | ".join(sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for label, f in rows:
        print(f"| {label} | " + " | ".join(f(out['sizes'][s]) for s in sizes) + " |")
    for size, r in out["sizes"].items():
        if "stride5_1" in r:
            print(f"\n{size} --stride 5, one process / grab: opencv "
                  f"{r['stride5_1']['over_grab']:.2f}, pyav + fast_decode "
                  f"{r['fast_stride5_1']['over_grab']:.2f} "
                  f"({r['fast_stride5_1']['frames_not_decoded']} frames not decoded)")
        if "night_12h" in r:
            n = r["night_12h"]
            print(f"\n12-hour night at {size}, hours (1 and {n['measured_cores'][1]} cores "
                  f"measured, 8 and 16 extrapolated from the rate per core):")
            for label in ("opencv", "pyav_fast"):
                print(f"  {label}: " + ", ".join(f"{k} cores {h} h" for k, h in n[label].items()))


SECTIONS = {"speed": speed, "decoding_bar": decoding_bar, "memory": memory,
            "segments": segments, "scaling": scaling, "stride": stride}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", nargs="+", choices=SIZES, default=SIZES,
                        help="frame sizes of the speed and memory sections")
    parser.add_argument("--work", help="folder for the results of the runs (default: a temp)")
    parser.add_argument("--data", help="folder of the videos (default benchmarks/data)")
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="length of the files of the decoding_bar section (default 30)")
    args = parser.parse_args()
    global DATA, MINUTES
    DATA = Path(args.data) if args.data else DATA
    MINUTES = args.minutes
    work = Path(args.work or tempfile.mkdtemp(prefix="cpp_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    SIZES[:] = args.sizes
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_at_start": os.getloadavg()},
        "repeat": args.repeat,
    }
    for name in args.sections:
        print(f"{name} ...", flush=True)
        report[name] = SECTIONS[name](args.repeat, work)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "performance.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update(report)
    path.write_text(json.dumps(previous, indent=2))
    print(json.dumps({k: v for k, v in report.items()}, indent=2, default=str))


if __name__ == "__main__":
    main()
