"""Detection over one video in time segments, tracked by parallel processes.

:func:`track_segments` runs the detectors (prepared once, from samples of the whole video)
over every frame and writes the track in part files as it goes. The recording is cut into
``workers`` stretches of about equal frame counts, each tracked by its own process (the
first by the calling process itself, the others by new ones): it
seeks to a little before its stretch, checks that the seek did not overshoot, and detects
in every frame whose presentation time lies in the stretch (see
:class:`~cpp_tracker.video.reader.FrameSpan`). Every process uses the same detectors, so the same
background, threshold and limits. Detection has no memory from one frame to the next, and
chambers (whose hysteresis does) are assigned afterwards on the joined track, so the joined
result is the one a single pass gives.

The plan comes from the container's packets (:func:`~cpp_tracker.video.reader.frame_times`, no
decoding): the frame times, and so the decode index at which each stretch starts; each
boundary lies halfway between two frames. After the run the join is checked: every stretch
holds exactly the planned number of frames, every stretch but the last ended at its
boundary (not at a decoding failure), no stretch was damaged, and no timestamp was missing
or out of order. If a check fails, or the video is shorter than
``workers * min_segment_s``, the reason is returned instead and the caller tracks the
video in one pass (``run.json`` says why).
"""

from __future__ import annotations

import contextlib
import json
import math
import multiprocessing
import os
import resource
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VideoError
from ..processes import (
    interruptible_task,
    interrupts_held,
    leave_when_gone,
    take_interrupts_in_tasks,
)
from ..results.outputs import TrackPartWriter, parts_are_complete, write_json
from ..video.reader import (
    DecodeOptions,
    FrameSpan,
    FrameTimesJob,
    SpanReport,
    VideoInfo,
    VideoReader,
    frame_times,
    tracking_decode_threads,
)
from .tracker import ArenaDetector, track_frames

__all__ = [
    "SegmentRun", "track_segments", "plan_spans", "MIN_SEGMENT_S", "AUTO_MIN_SEGMENT_S",
    "CpuSample", "WarmStart", "auto_workers", "available_memory_mb", "cpu_sample", "idle_cores",
]

#: Stretches shorter than this are not worth a process of their own (start-up, seek).
MIN_SEGMENT_S = 30.0

#: ``--workers auto`` gives each process at least this much video. Measured on 2 cores
#: (one process against two, same file, best of 3): two processes were slower up to 2 min
#: of 640x480 video (start-up, index and seek cost more than they save) and faster from
#: 5 min on (README, Speed and memory).
AUTO_MIN_SEGMENT_S = 150.0

#: Memory of one more tracking process: libraries (~85 MB) and frame buffers (about 40
#: frames: the decoder's, the chunks, the prefetch queue), measured 170 MB at 1280x720.
PROCESS_BASE_MB = 90.0
PROCESS_FRAMES = 90


def available_memory_mb(
    meminfo: str = "/proc/meminfo", cgroup: str = "/sys/fs/cgroup"
) -> float | None:
    """Memory this process could still take: the system's ``MemAvailable``, and no more than
    a cgroup v2 limit leaves (``memory.max`` - ``memory.current``); None where unknown."""
    found: list[float] = []
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) / 1024.0)
    except (OSError, ValueError):
        pass
    try:
        with open(f"{cgroup}/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open(f"{cgroup}/memory.current") as f:
                used = int(f.read().strip())
            found.append((int(limit) - used) / 2**20)
    except (OSError, ValueError):
        pass
    return min(found) if found else None


@dataclass(frozen=True)
class CpuSample:
    """The CPU time the whole machine and this process had spent at one moment."""

    at: float  # time.monotonic()
    machine_busy_s: float | None  # all CPUs, not idle (/proc/stat); None where unreadable
    own_s: float  # this process's threads and its finished children, user + system


def cpu_sample(stat: str = "/proc/stat", children: Sequence[int] = ()) -> CpuSample:
    """The machine's and this process's CPU time now (see :func:`busy_elsewhere`);
    ``children``: processes of this run still running (their CPU time counts as its own,
    as that of its children that have ended does)."""
    busy = None
    try:
        with open(stat) as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        # user nice system idle iowait irq softirq steal (guest time is within user)
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    me, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    own = me.ru_utime + me.ru_stime + ended.ru_utime + ended.ru_stime
    own += sum(_process_cpu_s(pid) for pid in children)
    return CpuSample(time.monotonic(), busy, own)


def _process_cpu_s(pid: int) -> float:
    """CPU time (user + system, s) of a running process; 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


#: :func:`busy_elsewhere` needs samples at least this far apart (s): /proc/stat counts in
#: hundredths of a second.
MIN_CPU_WINDOW_S = 0.3


def busy_elsewhere(since: CpuSample, now: CpuSample | None = None,
                   children: Sequence[int] = ()) -> float | None:
    """Cores kept busy by other work between two samples: the machine's busy CPU time
    less this process's own, per second; None when /proc/stat is unreadable or the samples
    are less than :data:`MIN_CPU_WINDOW_S` apart. ``children``: as :func:`cpu_sample`."""
    now = now or cpu_sample(children=children)
    span = now.at - since.at
    if since.machine_busy_s is None or now.machine_busy_s is None or span < MIN_CPU_WINDOW_S:
        return None
    other = (now.machine_busy_s - since.machine_busy_s) - (now.own_s - since.own_s)
    return max(0.0, other / span)


def idle_cores(load: float | None = None, cpus: int | None = None,
               since: CpuSample | None = None, children: Sequence[int] = ()) -> float:
    """Cores of the machine not busy with other work: its CPUs minus what other work kept
    busy since ``since`` (the start of the run: what the machine did while this run
    estimated the background), else minus the 1-minute load average beyond this run's own
    (about one core). The load average lags: for a minute after other work (or this
    tool's previous run) it still counts it. Measured on 2 cores with a load of 5 from
    other work: two processes took 1.22 times as long as one. ``children``: this run's
    processes still running (:class:`WarmStart`'s)."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if since is not None and load is None:
        other = busy_elsewhere(since, children=children)
        if other is not None:
            return cpus - other
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # pragma: no cover - not Unix
            return math.inf
    return cpus - max(0.0, load - 1.0)


def auto_workers(
    duration_s: float | None, cores: int, frame_pixels: int, memory_mb: float | None,
    idle: float = math.inf,
) -> tuple[int, str | None]:
    """Processes for ``--workers auto``: one per core this process may use that is not busy
    with other work (``idle``), each with at least :data:`AUTO_MIN_SEGMENT_S` of video, as
    many as the memory holds; and, when that is one, why (for run.json)."""
    if cores <= 1:
        return 1, "workers auto: one core available"
    if idle < 1.5:
        return 1, (f"workers auto: the machine's cores are busy with other work ({idle:.1f} "
                   "idle); a second process would only share them")
    if math.isfinite(idle):
        cores = min(cores, max(1, int(idle + 0.5)))
    if not duration_s or duration_s < 2 * AUTO_MIN_SEGMENT_S:
        return 1, (f"workers auto: the video is shorter than 2 x {AUTO_MIN_SEGMENT_S:g} s; "
                   "one process is as fast")
    n = min(cores, int(duration_s // AUTO_MIN_SEGMENT_S))
    if memory_mb is not None:
        per_process = PROCESS_BASE_MB + PROCESS_FRAMES * frame_pixels / 2**20
        n = min(n, 1 + int(max(0.0, memory_mb - per_process) // per_process))
        if n <= 1:
            return 1, "workers auto: not enough free memory for a second process"
    return n, None


@dataclass
class SegmentRun:
    """The joined result of :func:`track_segments`: the track's part files in order."""

    parts: list[Path]
    frames_tracked: int
    frames_decoded: int  # decode index of the last frame, plus one
    frames_grabbed: int  # frames the processes decoded (with the lead-in before each seek)
    last_time_s: float
    workers: int
    segments: list[dict] = field(default_factory=list)  # per stretch, for run.json
    frames_not_decoded: int = 0  # skipped by the decoder (PyAV's skip_nonref)


@dataclass
class _SpanResult:
    parts: list[Path]
    frames_tracked: int
    frames_decoded: int
    frames_grabbed: int
    last_time_s: float
    unreadable: list
    report: SpanReport
    frames_not_decoded: int = 0


def _track_span(
    video: str,
    info: VideoInfo,
    detectors: Sequence[ArenaDetector],
    part_dir: Path,
    span: FrameSpan,
    stride: int,
    checkpoint_s: float,
    decode_threads: int | None,
    decode: DecodeOptions | None,
    on_progress: Callable[[int], None] | None,
) -> _SpanResult:
    writer = TrackPartWriter(part_dir)
    with VideoReader(video, info, decode_threads=decode_threads, decode=decode) as reader:

        def tick() -> None:
            if on_progress is not None:
                on_progress(reader.frames_decoded)

        frames = track_frames(
            reader.chunks(stride=stride, span=span),
            detectors,
            writer.write,
            checkpoint_s=checkpoint_s,
            on_chunk=tick,
        )
        return _SpanResult(
            parts=writer.parts(),
            frames_tracked=frames,
            frames_decoded=reader.frames_decoded,
            frames_grabbed=reader.frames_grabbed,
            last_time_s=reader.last_time_s,
            unreadable=list(reader.unreadable),
            report=reader.span_report,
            frames_not_decoded=reader.frames_not_decoded,
        )


# -- worker processes ------------------------------------------------------------------------
_COUNTERS = None


def _init_worker(counters) -> None:
    global _COUNTERS
    _COUNTERS = counters
    # the track process may end without telling this worker: killed, or a Ctrl-C taken
    # by another of its threads while it started this worker (see interrupts_held), so
    # that this worker never had it. Waiting for work forever would hold the run's output
    # pipes open; tracking on would take hours. Part files are whole.
    leave_when_gone(os.getppid(), exit_code=1, every_s=0.25)
    take_interrupts_in_tasks()  # held since the start
    import cv2

    cv2.setNumThreads(1)  # the processes are the parallelism


def _worker(k: int, *args) -> _SpanResult:
    first = args[4].first_index  # the span's first frame: decode indices count from there

    def progress(n: int) -> None:
        if _COUNTERS is not None:
            _COUNTERS[k] = max(0, n - first)

    with interruptible_task():
        return _track_span(*args, on_progress=progress)


def _warm_up() -> int:
    """Nothing: unpickling this function imports this module (and OpenCV, NumPy, Arrow)
    in a new worker process."""
    return os.getpid()


class WarmStart:
    """Worker processes and the frame index, started while the track process estimates
    the background, so that both are ready when the segments start.

    Measured on 2 cores (30-min 640x480, two segments): started after the background, a
    worker took 0.65 s to its first frame and the frame index 0.26 s, and the track process
    then waited 0.4 s for the worker at the end. A warm start that is not used (``--workers
    auto`` decides on one process, a resumed run) is closed again unused.
    """

    def __init__(self, video: str | Path, processes: int):
        self.processes = int(processes)
        self.ctx = multiprocessing.get_context("spawn")
        self.counters = self.ctx.Array("q", self.processes + 1, lock=False)
        self.index = FrameTimesJob(video)
        self.pool = ProcessPoolExecutor(
            max_workers=self.processes, mp_context=self.ctx, initializer=_init_worker,
            initargs=(self.counters,),
        )
        with interrupts_held():
            for _ in range(self.processes):  # each submission starts one more process
                self.pool.submit(_warm_up)

    def pids(self) -> list[int]:
        """The processes this run started that are still running: every worker process
        of this process (the warm start's, and any other a library caller started) and the
        frame index; their CPU time counts as this run's own."""
        pids = [p.pid for p in multiprocessing.active_children() if p.pid is not None]
        index = self.index.pid
        return pids + ([index] if index is not None else [])

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.index.close()


def plan_spans(times: np.ndarray, n_segments: int) -> list[FrameSpan]:
    """Cut frames with strictly increasing ``times`` into ``n_segments`` stretches of about
    equal frame counts; boundaries lie halfway between two frames."""
    n = len(times)
    starts = [round(k * n / n_segments) for k in range(n_segments)] + [n]
    spans = []
    for k in range(n_segments):
        a, b = starts[k], starts[k + 1]
        start_s = -math.inf if k == 0 else float(times[a - 1] + times[a]) / 2.0
        end_s = math.inf if k == n_segments - 1 else float(times[b - 1] + times[b]) / 2.0
        spans.append(FrameSpan(start_s=start_s, end_s=end_s, first_index=a))
    return spans


def _plan(
    video: str, workers: int, min_segment_s: float, warm: WarmStart | None = None
) -> tuple[list[FrameSpan], list[int], np.ndarray | None, str | None]:
    """Spans, their planned frame counts and the frame times, or ([], [], None, why not)."""
    try:
        times = warm.index.result() if warm is not None else frame_times(video)
    except VideoError as e:
        return [], [], None, f"the video's frames could not be indexed ({e})"
    if len(times) < 2 or not np.all(np.diff(times) > 0):
        return [], [], None, "the video's timestamps are not strictly increasing"
    duration = float(times[-1] - times[0])
    if duration < workers * min_segment_s:
        return [], [], None, (
            f"the video is shorter than {workers} x {min_segment_s:g} s; one pass is as fast"
        )
    spans = plan_spans(times, workers)
    bounds = [s.first_index for s in spans] + [len(times)]
    return spans, [b - a for a, b in zip(bounds[:-1], bounds[1:], strict=True)], times, None


PLAN_FILE = "segments.json"


def _plan_record(spans: list[FrameSpan], expected: list[int], stride: int, n: int) -> dict:
    return {
        "frames": int(n),
        "stride": int(stride),
        "first_index": [int(s.first_index) for s in spans],
        "expected": [int(e) for e in expected],
    }


def _done_so_far(folder: Path) -> tuple[int, int] | None:
    """(last frame index, frames) of the part files an interrupted run left in a segment's
    folder, or None when it has none."""
    import pyarrow.parquet as pq

    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        return None
    if not parts_are_complete(parts):
        for path in parts:  # a part is missing: this segment starts again
            path.unlink()
        return None
    frames = 0
    last = -1
    for path in parts:
        column = pq.read_table(path, columns=["frame"]).column("frame").to_numpy()
        unique = np.unique(column)
        frames += len(unique)
        last = max(last, int(unique[-1]))
    return last, frames


def _continued_spans(
    spans: list[FrameSpan], expected: list[int], times: np.ndarray, dirs: list[Path],
    stride: int,
) -> tuple[list[FrameSpan | None], list[int], list[int], list[int]]:
    """Where each segment goes on after an interrupted run: its span from the frame after
    the last one in its part files (None when it is complete), the frames still to read,
    the frames already tracked and the frames already covered (whatever the stride)."""
    out_spans: list[FrameSpan | None] = []
    remaining, tracked_before, covered = [], [], []
    for span, n, folder in zip(spans, expected, dirs, strict=True):
        done = _done_so_far(folder)
        if done is None:
            out_spans.append(span)
            remaining.append(n)
            tracked_before.append(0)
            covered.append(0)
            continue
        last, tracked = done
        end_index = span.first_index + n  # first frame of the next segment
        nxt = last + 1
        # with a stride, the frames after the last tracked one up to the next tracked
        # one are not in the parts but were read; the span restarts right after ``last``
        covered_n = nxt - span.first_index
        if nxt >= end_index or (stride > 1 and nxt + (-nxt % stride) >= end_index):
            out_spans.append(None)
            remaining.append(0)
            covered.append(n)
        else:
            start_s = float(times[last] + times[nxt]) / 2.0
            out_spans.append(
                FrameSpan(start_s=start_s, end_s=span.end_s, first_index=nxt,
                          lead_s=span.lead_s)
            )
            remaining.append(end_index - nxt)
            covered.append(covered_n)
        tracked_before.append(tracked)
    return out_spans, remaining, tracked_before, covered


def _check_join(
    results: list[_SpanResult],
    expected: list[int],
    last: list[bool] | None = None,
    numbers: list[int] | None = None,
) -> str | None:
    """Why the stretches do not join into exactly the one-pass frames, or None. ``last``
    says which of them runs to the end of the video (default: the final one), ``numbers``
    their segment numbers (default: 0, 1, ...)."""
    if last is None:
        last = [j == len(results) - 1 for j in range(len(results))]
    if numbers is None:
        numbers = list(range(len(results)))
    for res, n, is_last, k in zip(results, expected, last, numbers, strict=True):
        rep = res.report
        if res.unreadable:
            return f"segment {k}: a stretch could not be decoded (damaged file?)"
        if rep.non_increasing:
            return f"segment {k}: {rep.non_increasing} timestamp(s) missing or out of order"
        if rep.frames != n:
            return f"segment {k}: {rep.frames} frames decoded, {n} expected from the index"
        if not is_last and not rep.reached_end:
            return f"segment {k}: decoding stopped before its end at frame {rep.frames}"
    return None


def track_segments(
    video: str | Path,
    info: VideoInfo,
    detectors: Sequence[ArenaDetector],
    part_dir: str | Path,
    *,
    workers: int,
    stride: int = 1,
    checkpoint_s: float = 300.0,
    progress: Callable[[int], None] | None = None,
    min_segment_s: float | None = None,
    decode: DecodeOptions | None = None,
    warm: WarmStart | None = None,
) -> SegmentRun | str:
    """Detect the mouse in every frame (every ``stride``-th) of ``video`` with ``workers``
    processes; the joined run, or why the video should be tracked in one pass instead.

    Part files go to ``part_dir/segment-NN/`` (removed again when the join fails).
    ``progress`` is called now and then with the number of frames decoded so far.
    ``warm``: worker processes and the frame index started ahead (:class:`WarmStart`).
    """
    video = str(video)
    part_dir = Path(part_dir)
    min_segment_s = MIN_SEGMENT_S if min_segment_s is None else min_segment_s
    spans, expected, times, reason = _plan(video, int(workers), min_segment_s, warm)
    if reason:
        return reason
    dirs = [part_dir / f"segment-{k:02d}" for k in range(len(spans))]
    plan = _plan_record(spans, expected, stride, len(times))
    plan_path = part_dir / PLAN_FILE
    try:
        previous = json.loads(plan_path.read_text())
    except (OSError, ValueError):
        previous = None
    if previous != plan:  # segments of another plan (or none): start afresh
        for d in sorted(part_dir.glob("segment-*")):
            shutil.rmtree(d, ignore_errors=True)
        write_json(plan_path, plan)
    todo, remaining, tracked_before, covered = _continued_spans(
        spans, expected, times, dirs, stride
    )
    try:
        run = _detect_in_segments(
            video, info, detectors, dirs, todo, remaining, stride, checkpoint_s, progress,
            tracked_before=tracked_before, covered=covered, planned=spans, times=times,
            decode=decode, warm=warm,
        )
    except BrokenProcessPool:
        run = (
            "the worker processes could not start or died (a script that calls "
            'track_video with workers > 1 needs an `if __name__ == "__main__":` guard)'
        )
    if isinstance(run, str):
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        plan_path.unlink(missing_ok=True)
    return run


def _detect_in_segments(
    video: str,
    info: VideoInfo,
    detectors: Sequence[ArenaDetector],
    dirs: list[Path],
    spans: list[FrameSpan | None],
    expected: list[int],
    stride: int,
    checkpoint_s: float,
    progress: Callable[[int], None] | None,
    *,
    tracked_before: list[int],
    covered: list[int],
    planned: list[FrameSpan],
    times: np.ndarray,
    decode: DecodeOptions | None = None,
    warm: WarmStart | None = None,
) -> SegmentRun | str:
    """Track the spans (None: done by an interrupted run) in parallel processes; the run,
    or why the join failed."""
    todo = [k for k, span in enumerate(spans) if span is not None]
    results: dict[int, _SpanResult] = {}
    if todo:
        results = _track_in_processes(
            video, info, detectors, dirs, spans, todo, stride, checkpoint_s, progress,
            base=int(sum(covered)), decode=decode, warm=warm,
        )
    why = _check_join([results[k] for k in todo], [expected[k] for k in todo],
                      last=[k == len(spans) - 1 for k in todo], numbers=todo)
    if why:
        return why
    return _joined_run(results, planned, dirs, tracked_before, covered, times)


def _track_in_processes(
    video: str,
    info: VideoInfo,
    detectors: Sequence[ArenaDetector],
    dirs: list[Path],
    spans: list[FrameSpan | None],
    todo: list[int],
    stride: int,
    checkpoint_s: float,
    progress: Callable[[int], None] | None,
    *,
    base: int,
    decode: DecodeOptions | None = None,
    warm: WarmStart | None = None,
) -> dict[int, _SpanResult]:
    """Track the spans ``todo`` (segment numbers), the first in this process and each other
    one in a new process (``warm``'s where it has enough); ``progress`` gets ``base`` plus
    the frames decoded by all."""
    ctx = multiprocessing.get_context("spawn")
    use_warm = warm is not None and warm.processes >= len(todo) - 1 and len(
        warm.counters) >= len(spans)
    counters = warm.counters if use_warm else ctx.Array("q", len(spans), lock=False)
    threads = tracking_decode_threads(len(todo))
    # this process tracks the first stretch itself, one new process each of the others:
    # one process fewer to start and to hold in memory
    own, others = todo[0], todo[1:]
    with contextlib.ExitStack() as stack:
        futures: dict = {}
        if others:
            pool = warm.pool if use_warm else stack.enter_context(ProcessPoolExecutor(
                max_workers=len(others), mp_context=ctx, initializer=_init_worker,
                initargs=(counters,),
            ))
            with interrupts_held():
                futures = {
                    pool.submit(
                        _worker, k, video, info, list(detectors), dirs[k], spans[k], stride,
                        checkpoint_s, threads, decode,
                    ): k
                    for k in others
                }
        own_progress = _own_progress(
            counters, own, spans[own].first_index, futures, progress, base
        )
        results = {own: _track_span(
            video, info, detectors, dirs[own], spans[own], stride, checkpoint_s,
            threads, decode, own_progress,
        )}
        _wait_for_workers(futures, counters, progress, base)
        results.update({k: f.result() for f, k in futures.items()})
        if progress is not None:
            progress(base + int(sum(counters)))
    return results


def _own_progress(
    counters, own: int, first: int, futures: dict, progress: Callable[[int], None] | None,
    base: int,
) -> Callable[[int], None]:
    """The progress callback of the stretch this process tracks: it counts its frames and,
    at most every 0.5 s, reports the total and raises a worker's failure (so that a
    failed run stops before this process's stretch is done)."""
    shown = [0.0]

    def own_progress(n: int) -> None:
        counters[own] = max(0, n - first)
        now = time.monotonic()
        if now - shown[0] < 0.5:
            return
        shown[0] = now
        for f in futures:
            if f.done() and f.exception() is not None:
                raise f.exception()
        if progress is not None:
            progress(base + int(sum(counters)))

    return own_progress


def _wait_for_workers(
    futures: dict, counters, progress: Callable[[int], None] | None, base: int
) -> None:
    """Wait for the worker processes, reporting progress; the first failure cancels the
    others and is raised."""
    pending = set(futures)
    while pending:
        done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
        if progress is not None:
            progress(base + int(sum(counters)))
        for f in done:
            if f.exception() is not None:
                for other in pending:
                    other.cancel()
                raise f.exception()


def _joined_run(
    results: dict[int, _SpanResult],
    planned: list[FrameSpan],
    dirs: list[Path],
    tracked_before: list[int],
    covered: list[int],
    times: np.ndarray,
) -> SegmentRun:
    """The segments (tracked now, or by an interrupted run) as one run."""
    segments = []
    parts: list[Path] = []
    for k, span in enumerate(planned):
        segments.append(_segment_record(k, span, results.get(k), covered[k], times))
        parts.extend(sorted(dirs[k].glob("part-*.parquet")))
    last = results.get(len(planned) - 1)
    return SegmentRun(
        parts=parts,
        frames_tracked=int(sum(tracked_before))
        + sum(r.frames_tracked for r in results.values()),
        frames_decoded=last.frames_decoded if last is not None else len(times),
        frames_grabbed=sum(r.frames_grabbed for r in results.values()),
        last_time_s=last.last_time_s if last is not None else float(times[-1]),
        workers=len(planned),
        segments=segments,
        frames_not_decoded=sum(r.frames_not_decoded for r in results.values()),
    )


def _segment_record(
    k: int, span: FrameSpan, res: _SpanResult | None, covered: int, times: np.ndarray
) -> dict:
    """One segment for run.json; ``res`` None when an interrupted run tracked all of it."""
    rep = res.report if res is not None else None
    first_frame = span.first_index
    return {
        "segment": k,
        "first_frame": first_frame,
        "frames": covered + (rep.frames if rep else 0),
        "start_s": float(times[first_frame]),
        "end_s": float(times[first_frame + covered + (rep.frames if rep else 0) - 1]),
        "seek_s": None if rep is None or rep.seek_s is None
        else round(float(rep.seek_s), 6),
        "lead_in_frames": rep.lead_in_frames if rep else 0,
        "frames_from_interrupted_run": covered,
    }
