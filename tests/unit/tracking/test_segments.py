"""segments: a video tracked in time segments by parallel processes equals one pass."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cpp_tracker.config.settings import parse_config
from cpp_tracker.processes import process_gone
from cpp_tracker.results.outputs import TrackPartWriter, read_parts
from cpp_tracker.tracking.background import median_background
from cpp_tracker.tracking.segments import (
    SegmentRun,
    _check_join,
    _SpanResult,
    plan_spans,
    track_segments,
)
from cpp_tracker.tracking.tracker import make_detector, track_frames
from cpp_tracker.video.reader import SpanReport, VideoReader, frame_times


@pytest.fixture(scope="module")
def prepared(video_factory):
    video, truth, _ = video_factory("segments_clip", duration_s=16.0, seed=51, distractor="blink")
    config = parse_config(truth.config)
    with VideoReader(video) as reader:
        samples, _ = reader.sample_frames(config.background.samples)
        info = reader.info
    background = median_background(samples)
    detectors = [make_detector(a, config.detection, background, samples) for a in config.arenas]
    return video, info, detectors


def _track(run) -> pd.DataFrame:
    return read_parts(run.parts)


def _one_pass(video, info, detectors, folder, stride=1) -> pd.DataFrame:
    writer = TrackPartWriter(folder)
    with VideoReader(video, info) as reader:
        track_frames(reader.chunks(stride=stride), detectors, writer.write, checkpoint_s=3)
    return read_parts(writer.parts())


def test_plan_cuts_halfway_between_frames():
    times = np.arange(100) / 30.0
    spans = plan_spans(times, 3)
    assert [s.first_index for s in spans] == [0, 33, 67]
    assert spans[0].start_s == -math.inf and spans[-1].end_s == math.inf
    assert spans[1].start_s == pytest.approx((times[32] + times[33]) / 2)
    assert spans[0].end_s == spans[1].start_s and spans[1].end_s == spans[2].start_s


@pytest.mark.parametrize("workers,stride", [(2, 1), (3, 4)])
def test_segments_join_into_the_one_pass_track(prepared, tmp_path, workers, stride):
    video, info, detectors = prepared
    one = _one_pass(video, info, detectors, tmp_path / "one", stride)
    seen = []
    many = track_segments(
        video, info, detectors, tmp_path / "many", workers=workers, stride=stride,
        checkpoint_s=3, min_segment_s=2.0, progress=seen.append,
    )
    assert isinstance(many, SegmentRun), many
    assert many.workers == workers and len(many.segments) == workers
    assert many.frames_decoded == 480
    assert many.frames_tracked == len(one) // len(detectors)
    assert _track(many).equals(one)
    # the segments follow one another without gap or overlap
    firsts = [s["first_frame"] for s in many.segments]
    counts = [s["frames"] for s in many.segments]
    assert firsts == list(np.cumsum([0, *counts[:-1]]))
    assert sum(counts) == 480
    assert all(s["seek_s"] is not None for s in many.segments[1:])
    # progress counts the frames read, each once: it reaches the end and never passes it
    assert seen and 480 - stride <= seen[-1] <= 480 and max(seen) <= 480


def test_a_warm_start_is_used_and_gives_the_one_pass_track(prepared, tmp_path, monkeypatch):
    """Worker processes and the frame index started ahead: the segments run in those very
    processes (no new one is started), the track is the one-pass track, and closing the
    warm start leaves no process behind."""
    import multiprocessing

    import cpp_tracker.tracking.segments as segments
    from cpp_tracker.tracking.segments import WarmStart

    video, info, detectors = prepared
    one = _one_pass(video, info, detectors, tmp_path / "one")
    warm = WarmStart(video, 2)
    try:
        warmed = {p.pid for p in multiprocessing.active_children()}
        assert len(warmed) == 2

        def no_new_pool(*args, **kwargs):
            raise AssertionError("a new pool was started beside the warm one")

        monkeypatch.setattr(segments, "ProcessPoolExecutor", no_new_pool)
        many = track_segments(video, info, detectors, tmp_path / "many", workers=3,
                              checkpoint_s=3, min_segment_s=2.0, warm=warm)
        assert isinstance(many, SegmentRun), many
        assert many.workers == 3 and _track(many).equals(one)
        assert {p.pid for p in multiprocessing.active_children()} == warmed
    finally:
        warm.close()
    assert not multiprocessing.active_children()
    # one closed unused: nothing left running, the index's folder removed
    monkeypatch.undo()
    unused = WarmStart(video, 1)
    unused.close()
    assert not multiprocessing.active_children()
    assert not unused.index._job._out.parent.exists()


def test_short_videos_are_left_to_one_pass(prepared, tmp_path):
    video, info, detectors = prepared
    why = track_segments(video, info, detectors, tmp_path, workers=2, min_segment_s=60.0)
    assert "shorter than 2 x 60 s" in why
    assert not list(tmp_path.iterdir())


def test_join_checks_name_the_segment_and_the_problem():
    def result(frames, reached_end=True, non_increasing=0, unreadable=()):
        report = SpanReport(frames=frames, reached_end=reached_end,
                            non_increasing=non_increasing)
        return _SpanResult([], frames, frames, frames, 1.0, list(unreadable), report)

    assert _check_join([result(10), result(5, reached_end=False)], [10, 5]) is None
    assert _check_join([result(10), result(4)], [10, 5]) == (
        "segment 1: 4 frames decoded, 5 expected from the index")
    assert _check_join([result(7, reached_end=False), result(5)], [7, 5]) == (
        "segment 0: decoding stopped before its end at frame 7")
    assert _check_join([result(10, non_increasing=2), result(5)], [10, 5]) == (
        "segment 0: 2 timestamp(s) missing or out of order")
    assert _check_join([result(10), result(5, unreadable=[{}])], [10, 5]) == (
        "segment 1: a stretch could not be decoded (damaged file?)")


def test_a_failed_join_is_reported_and_cleaned_up(prepared, tmp_path, monkeypatch):
    video, info, detectors = prepared
    import cpp_tracker.tracking.segments as segments

    # an index that promises one frame too many in the first segment
    real = frame_times(video)
    monkeypatch.setattr(
        segments, "frame_times", lambda path: np.insert(real, 100, real[99] + 1e-6)
    )
    why = track_segments(video, info, detectors, tmp_path, workers=2, min_segment_s=2.0)
    assert why == "segment 0: 239 frames decoded, 240 expected from the index"
    assert not list(tmp_path.glob("segment-*"))  # the segments' parts are gone


@pytest.mark.parametrize("stride", [1, 4])
def test_an_interrupted_segment_run_continues_where_each_segment_stopped(
    prepared, tmp_path, stride
):
    """Killed mid-way, each segment has written some parts (or none): the rerun keeps them,
    tracks only the rest of each segment, and the joined track equals one pass."""
    video, info, detectors = prepared
    one = _one_pass(video, info, detectors, tmp_path / "one", stride)
    folder = tmp_path / "many"
    first = track_segments(video, info, detectors, folder, workers=3, stride=stride,
                           checkpoint_s=1, min_segment_s=2.0)
    assert isinstance(first, SegmentRun), first
    # what a kill would have left: segment 0 complete, segment 1 its first 50 frames in
    # part files, segment 2 nothing
    seg = sorted(folder.glob("segment-*"))
    assert len(seg) == 3
    start1 = first.segments[1]["first_frame"]
    rows = read_parts(sorted(seg[1].glob("part-*")))
    for part in seg[1].glob("part-*"):
        part.unlink()
    rows = rows[rows["frame"] < start1 + 50].astype({"arena": str})
    TrackPartWriter(seg[1]).write(pa.Table.from_pandas(rows, preserve_index=False))
    for part in seg[2].glob("part-*"):
        part.unlink()
    kept = len(read_parts(sorted(seg[0].glob("part-*")) + sorted(seg[1].glob("part-*"))))
    again = track_segments(video, info, detectors, folder, workers=3, stride=stride,
                           checkpoint_s=1, min_segment_s=2.0)
    assert isinstance(again, SegmentRun), again
    assert _track(again).equals(one)
    assert again.frames_tracked == len(one) // len(detectors)
    assert again.frames_decoded == 480
    done = [s["frames_from_interrupted_run"] for s in again.segments]
    assert done[0] == again.segments[0]["frames"] and done[2] == 0
    assert 0 < done[1] < again.segments[1]["frames"]
    assert [s["frames"] for s in again.segments] == [s["frames"] for s in first.segments]
    # only the rest was decoded again: at most the two unfinished segments and lead-ins
    assert again.frames_grabbed < first.frames_grabbed - kept // len(detectors) // 2


def test_segments_of_another_plan_are_not_continued(prepared, tmp_path):
    video, info, detectors = prepared
    one = _one_pass(video, info, detectors, tmp_path / "one")
    folder = tmp_path / "many"
    assert isinstance(track_segments(video, info, detectors, folder, workers=3,
                                     checkpoint_s=1, min_segment_s=2.0), SegmentRun)
    two = track_segments(video, info, detectors, folder, workers=2, checkpoint_s=1,
                         min_segment_s=2.0)
    assert isinstance(two, SegmentRun), two
    assert sorted(p.name for p in folder.glob("segment-*")) == ["segment-00", "segment-01"]
    assert all(s["frames_from_interrupted_run"] == 0 for s in two.segments)
    assert _track(two).equals(one)


def test_a_segment_with_a_part_file_gone_is_tracked_again(prepared, tmp_path):
    """A segment whose parts have a gap (a file deleted under the interrupted run) is not
    continued after its last part (its frames would be missing): it starts again."""
    video, info, detectors = prepared
    one = _one_pass(video, info, detectors, tmp_path / "one", 1)
    folder = tmp_path / "many"
    first = track_segments(video, info, detectors, folder, workers=2, checkpoint_s=1,
                           min_segment_s=2.0)
    assert isinstance(first, SegmentRun), first
    parts0 = sorted((folder / "segment-00").glob("part-*"))
    assert len(parts0) >= 2
    parts0[0].unlink()
    again = track_segments(video, info, detectors, folder, workers=2, checkpoint_s=1,
                           min_segment_s=2.0)
    assert isinstance(again, SegmentRun), again
    assert [s["frames_from_interrupted_run"] for s in again.segments] == [
        0, again.segments[1]["frames"]
    ]
    assert _track(again).equals(one)


def test_tracking_needs_neither_pandas_nor_matplotlib():
    """The segment processes import the tracking modules and write part files; they stay
    small only if that loads no analysis library (pandas alone is ~50 MB per process)."""
    code = (
        "import sys, numpy as np\n"
        "import cpp_tracker, cpp_tracker.tracking.segments, cpp_tracker.runs.pipeline\n"
        "from cpp_tracker.results.outputs import TrackPartWriter\n"
        "from cpp_tracker.tracking.tracker import track_rows\n"
        "d = [(np.array([1.0, np.nan]), np.array([2.0, np.nan]), np.array([5.0, np.nan]),\n"
        "      np.array([1, 0], dtype=np.int16), np.array([1.0, 0.9], dtype=np.float32))]\n"
        "TrackPartWriter(sys.argv[1]).write(track_rows(np.arange(2), np.arange(2) / 30, d,"
        " ['box']))\n"
        "print(sorted(m for m in ('pandas', 'matplotlib', 'shapely', 'av') if m in sys.modules))"
    )
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run([sys.executable, "-c", code, folder], capture_output=True,
                             text=True, check=True)
        assert out.stdout.strip() == "[]", out.stdout + out.stderr
        parts = read_parts(sorted(Path(folder).glob("part-*.parquet")))
    assert list(parts["frame"]) == [0, 1] and list(parts["detected"]) == [True, False]
    assert np.isnan(parts["x"].iloc[1]) and parts["n_blobs"].dtype == np.int16


def test_auto_workers_one_per_core_with_enough_video_and_memory():
    from cpp_tracker.tracking.segments import AUTO_MIN_SEGMENT_S as m
    from cpp_tracker.tracking.segments import auto_workers

    vga = 640 * 480
    assert auto_workers(3600.0, 8, vga, None) == (8, None)
    assert auto_workers(3600.0, 2, vga, 1e6) == (2, None)
    # each process gets at least AUTO_MIN_SEGMENT_S
    assert auto_workers(3 * m, 16, vga, None) == (3, None)
    n, why = auto_workers(1.5 * m, 16, vga, None)
    assert n == 1 and "shorter than 2 x" in why
    n, why = auto_workers(None, 16, vga, None)
    assert n == 1 and why
    n, why = auto_workers(3600.0, 1, vga, None)
    assert n == 1 and "one core" in why
    # memory: 720p needs ~170 MB per process; 500 MB free holds 2 besides nothing else
    assert auto_workers(3600.0, 16, 1280 * 720, 500.0)[0] == 2
    n, why = auto_workers(3600.0, 16, 1280 * 720, 100.0)
    assert n == 1 and "memory" in why


def test_cgroup_quota_and_memory_limits_are_read(tmp_path):
    from cpp_tracker.tracking.segments import available_memory_mb
    from cpp_tracker.video.reader import cgroup_cpu_limit

    cpu = tmp_path / "cpu.max"
    cpu.write_text("max 100000\n")
    assert cgroup_cpu_limit(str(cpu)) is None
    cpu.write_text("250000 100000\n")
    assert cgroup_cpu_limit(str(cpu)) == 2.5
    assert cgroup_cpu_limit(str(tmp_path / "absent")) is None
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 16000000 kB\nMemAvailable: 4096000 kB\n")
    assert available_memory_mb(str(meminfo), str(tmp_path)) == 4000.0
    (tmp_path / "memory.max").write_text(str(3 * 2**30))
    (tmp_path / "memory.current").write_text(str(2 * 2**30))
    assert available_memory_mb(str(meminfo), str(tmp_path)) == 1024.0


def test_available_cores_respect_the_cgroup_quota(monkeypatch):
    import cpp_tracker.video.reader as reader

    monkeypatch.setattr(reader.os, "sched_getaffinity", lambda pid: set(range(8)))
    monkeypatch.setattr(reader, "cgroup_cpu_limit", lambda: 2.5)
    assert reader.available_cores() == 2
    monkeypatch.setattr(reader, "cgroup_cpu_limit", lambda: None)
    assert reader.available_cores() == 8


def test_auto_workers_leave_busy_cores_alone():
    from cpp_tracker.tracking.segments import auto_workers, idle_cores

    vga = 640 * 480
    # 2 cores, load 5 (other work): one process
    assert idle_cores(load=5.0, cpus=2) < 1.5
    n, why = auto_workers(3600.0, 2, vga, None, idle_cores(load=5.0, cpus=2))
    assert n == 1 and "busy" in why
    # an idle machine: this run's own load does not count against it
    assert idle_cores(load=1.0, cpus=2) == 2.0
    assert auto_workers(3600.0, 2, vga, None, idle_cores(load=1.0, cpus=2)) == (2, None)
    # 16 CPUs, 6 busy with other work, 16 allowed: 10 processes
    assert auto_workers(3600.0, 16, vga, None, idle_cores(load=7.0, cpus=16))[0] == 10


def test_idle_cores_from_cpu_time_counts_other_work_only():
    """The machine's busy CPU time since the run started, less the run's own: a process
    burning a core beside this one is counted, this process's own work is not, and the
    load average (which lags by a minute) is not used when the samples can be read."""
    import subprocess
    import sys
    import time

    from cpp_tracker.tracking.segments import (
        MIN_CPU_WINDOW_S,
        CpuSample,
        busy_elsewhere,
        cpu_sample,
        idle_cores,
    )

    # arithmetic on two samples: 3 CPU-s busy in 2 s, 1 of them this process's own
    a, b = CpuSample(10.0, 100.0, 5.0), CpuSample(12.0, 103.0, 6.0)
    assert busy_elsewhere(a, b) == pytest.approx(1.0)
    assert busy_elsewhere(a, CpuSample(10.1, 101.0, 5.0)) is None  # too close
    assert busy_elsewhere(CpuSample(10.0, None, 5.0), b) is None  # no /proc/stat
    # own work only: this process spins for 0.6 s
    start = cpu_sample()
    if start.machine_busy_s is None:
        pytest.skip("no /proc/stat here")
    t = time.monotonic()
    while time.monotonic() - t < 2 * MIN_CPU_WINDOW_S:
        pass
    own_only = busy_elsewhere(start)
    # another process spins for 1 s beside it (measured before it ends: a child's CPU time
    # counts as this process's own once it has been waited for)
    start = cpu_sample()
    spin = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.0: pass"
    other = subprocess.Popen([sys.executable, "-c", spin])
    time.sleep(1.0)
    with_other = busy_elsewhere(start)
    idle = idle_cores(cpus=2, since=start)
    other.wait()
    # the machine is shared with other work: compare, not absolute values
    assert with_other is not None and own_only is not None
    assert with_other > own_only + 0.4, (own_only, with_other)
    assert idle == pytest.approx(2.0 - with_other, abs=0.2)  # measured, not the load


def test_a_worker_leaves_once_the_track_process_is_gone(tmp_path):
    """A track process that ends without shutting its workers down (killed, or a Ctrl-C
    taken by another of its threads while it started a worker, so that the worker never had
    the signal) leaves no worker waiting for work forever, holding the run's pipes open."""
    import os
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from cpp_tracker.tracking.segments import WarmStart\n"
        "warm = WarmStart(sys.argv[1], processes=1)\n"
        "pid, = [f.result() for f in [warm.pool.submit(os.getpid)]]\n"
        "print(pid, flush=True)\n"
        "os._exit(0)  # gone, the pool never shut down\n"
    )
    video = tmp_path / "missing.mp4"  # the frame index fails in its own process: no matter
    proc = subprocess.Popen([sys.executable, "-c", script, str(video)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    worker = int(proc.stdout.readline())  # not communicate(): the worker holds the pipe
    proc.wait(timeout=60)
    proc.stdout.close()
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if process_gone(worker):
            return
        time.sleep(0.05)
    os.kill(worker, 9)
    pytest.fail("the worker outlived its track process by 5 s")

