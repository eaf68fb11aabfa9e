"""The faults of a shared lab server or cluster node (issue 20), each provoked for real:
a full disk at several writes, SIGTERM at random moments, a file still being recorded, two
runs on one folder, a video replaced between a run and its resume, and reads that fail.

Every interrupted or failed run is followed by a rerun whose results are compared with an
uninterrupted run's: ``track.parquet`` equal as a table, ``summary.csv``,
``occupancy.csv`` and ``background.png`` byte for byte.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import pandas as pd
import pytest
import yaml

from cpp_tracker.cli import main
from cpp_tracker.config.settings import load_config
from cpp_tracker.errors import BusyError, VideoError
from cpp_tracker.results.lock import LOCK_FILE
from cpp_tracker.runs import pipeline
from cpp_tracker.runs.batch import STATUS_FILE, collect_jobs, run_batch, run_job
from cpp_tracker.runs.pipeline import track_video
from cpp_tracker.runs.stopping import StopRequested, stop_on_sigterm
from cpp_tracker.video import reader as reader_module
from cpp_tracker.video.reader import VideoReader

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

TABLES = ("summary.csv", "occupancy.csv", "background.png")


@pytest.fixture(scope="module")
def clip(video_factory, tmp_path_factory):
    """A 10 s video and its config with a checkpoint every second of video."""
    video, truth, config_path = video_factory("faults_a", duration_s=10.0, seed=31)
    raw = dict(truth.config, video={"checkpoint_s": 1})
    path = tmp_path_factory.mktemp("cfg") / "box.yaml"
    path.write_text(yaml.safe_dump(raw))
    return video, truth, path


@pytest.fixture(scope="module")
def fresh(clip, tmp_path_factory):
    """The uninterrupted run every faulty one is compared with."""
    video, _, config_path = clip
    out = tmp_path_factory.mktemp("fresh")
    return track_video(video, load_config(config_path), out, progress=False, plots=False,
                       growing_check_s=0)


def assert_same_results(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(pd.read_parquet(a / "track.parquet"),
                                  pd.read_parquet(b / "track.parquet"))
    for name in TABLES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of atomic writes left behind (there must be none)."""
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------- disk full
def fill_disk_at(monkeypatch, name: str, nth: int = 1) -> dict:
    """Make the ``nth`` write of a file called ``name`` fail as a full disk does: half of it
    reaches the disk, then the flush to disk raises ENOSPC (where delayed allocation on a
    real file system reports it)."""
    real_fsync = os.fsync
    seen = {"n": 0, "fired": False}

    def fsync(fd):
        target = os.readlink(f"/proc/self/fd/{fd}")
        if Path(target).name.startswith(f".{name}.") and not seen["fired"]:
            seen["n"] += 1
            if seen["n"] == nth:
                seen["fired"] = True
                os.ftruncate(fd, os.fstat(fd).st_size // 2)
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return seen


@pytest.mark.parametrize("name, nth", [
    ("part-000004.parquet", 1),  # a part file while tracking
    ("checkpoint.json", 6),  # the checkpoint after a part
    ("track.parquet", 1),  # the results
    ("summary.csv", 1),
    ("run.json", 1),  # the run record, written last
])
def test_a_full_disk_stops_with_one_sentence_and_the_rerun_equals_an_uninterrupted_run(
    clip, fresh, tmp_path, monkeypatch, capsys, name, nth
):
    video, _, config_path = clip
    args = ["track", str(video), "--config", str(config_path), "--out", str(tmp_path),
            "--no-progress", "--no-plots", "--growing-check-s", "0"]
    seen = fill_disk_at(monkeypatch, name, nth)
    assert main(args) == 1
    assert seen["fired"]
    err = capsys.readouterr().err.strip()
    result_dir = tmp_path / video.stem
    folder = result_dir / ".partial" if name.startswith(("part", "checkpoint")) else result_dir
    assert err.startswith(f"error: {folder}: the disk is full"), err
    assert f"while writing {name}" in err and "\n" not in err
    assert not leftovers(tmp_path)
    assert not (result_dir / "run.json").exists()  # never a result that looks complete
    assert not (result_dir / LOCK_FILE).exists()  # released on the error path
    parts = sorted((result_dir / ".partial").glob("part-*.parquet"))
    assert parts, "the part files written so far are kept"
    for p in parts:
        pd.read_parquet(p)  # each whole
    monkeypatch.undo()
    assert main(args) == 0
    run = json.loads((result_dir / "run.json").read_text())
    assert run["resume"]["resumed"], "the rerun continues from the checkpoint"
    assert_same_results(result_dir, fresh.result_dir)


@pytest.fixture
def tiny_disk(tmp_path):
    """``resize(kb)``: a tmpfs of that size mounted in ``tmp_path / "disk"`` (root only;
    the test is skipped where the machine does not allow it)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = []

    def resize(kb: int) -> Path:
        opts = f"size={kb}k" + (",remount" if mounted else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
        mounted.append(kb)
        return where

    yield resize
    if mounted:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.parametrize("kb", [300, 360, 420])  # full at the calibration, a checkpoint,
# the results (this clip needs about 450 kB at its peak)
def test_a_real_full_disk_keeps_what_was_written_and_the_rerun_equals_an_uninterrupted_run(
    clip, fresh, tiny_disk, capsys, kb
):
    video, _, config_path = clip
    disk = tiny_disk(kb)
    args = ["track", str(video), "--config", str(config_path), "--out", str(disk / "out"),
            "--no-progress", "--no-plots", "--growing-check-s", "0"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert "the disk is full" in err and "free some space and rerun" in err, err
    assert err.count("\n") == 0
    assert not leftovers(disk)
    result_dir = disk / "out" / video.stem
    assert not (result_dir / "run.json").exists()
    for p in (result_dir / ".partial").glob("part-*.parquet"):
        pd.read_parquet(p)
    tiny_disk(8192)  # space freed
    assert main(args) == 0
    assert_same_results(result_dir, fresh.result_dir)


def test_a_full_disk_in_a_batch_fails_that_video_and_the_report_is_a_warning(
    clip, fresh, tmp_path, monkeypatch, capsys
):
    video, _, config_path = clip
    args = ["batch", str(video), "--config", str(config_path), "--out", str(tmp_path / "out"),
            "--workers", "1", "--no-progress", "--growing-check-s", "0"]
    fill_disk_at(monkeypatch, "report.html")
    assert main(args) == 0  # the results are complete; the page is not
    captured = capsys.readouterr()
    assert "the batch report could not be written" in captured.err
    assert "the disk is full" in captured.err
    assert not (tmp_path / "out" / "report.html").exists()
    assert not leftovers(tmp_path)
    assert not (tmp_path / "out" / LOCK_FILE).exists()
    assert_same_results(tmp_path / "out" / video.stem, fresh.result_dir)


def test_a_read_only_folder_or_another_users_file_is_named(tmp_path, monkeypatch):
    from cpp_tracker.errors import OutputError
    from cpp_tracker.results.outputs import write_bytes

    def replace(src, dst):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OutputError, match=f"^{tmp_path}: is on a read-only file system, so "
                                          "summary.csv cannot be written"):
        write_bytes(tmp_path / "summary.csv", b"a,b\n")
    assert list(tmp_path.iterdir()) == []

    def refuse(src, dst):
        raise PermissionError(errno.EPERM, os.strerror(errno.EPERM))

    monkeypatch.setattr(os, "replace", refuse)
    (tmp_path / "summary.csv").write_bytes(b"old")
    monkeypatch.setattr(os, "geteuid", lambda: 12345)  # the file is someone else's
    with pytest.raises(OutputError, match="permission denied writing summary.csv "
                                          r"\(summary.csv belongs to root\)"):
        write_bytes(tmp_path / "summary.csv", b"new")
    assert (tmp_path / "summary.csv").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]


# ---------------------------------------------------------------------------- SIGTERM
def _track_in_child(video, config_path, out) -> int:
    """fork(): the child tracks as ``cpp-tracker track`` does under SIGTERM and exits with
    143 when stopped; returns its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        with stop_on_sigterm(0.3):
            track_video(video, load_config(config_path), out, progress=False, plots=False,
                        growing_check_s=0)
        code = 0
    except StopRequested as e:
        code = 128 + e.signum
    except BaseException:  # noqa: BLE001 - the parent sees the exit status
        code = 1
    finally:
        os._exit(code)


@pytest.fixture(scope="module")
def short_clip(video_factory, tmp_path_factory):
    """A 4 s video with a checkpoint every second, and its uninterrupted result."""
    video, truth, _ = video_factory("faults_short", duration_s=4.0, seed=33)
    path = tmp_path_factory.mktemp("cfg") / "box.yaml"
    path.write_text(yaml.safe_dump(dict(truth.config, video={"checkpoint_s": 1})))
    done = track_video(video, load_config(path), tmp_path_factory.mktemp("fresh"),
                       progress=False, plots=False, growing_check_s=0)
    return video, path, done.result_dir


def killed_once_then_finished(video, config_path, out, delay_s) -> int:
    """Track, send SIGTERM after ``delay_s``, then track again to the end; the exit status
    of the stopped attempt (143; -15 when the signal came before the handler was set up,
    or after the run had finished)."""
    pid = _track_in_child(video, config_path, out)
    time.sleep(delay_s)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    stopped = os.waitstatus_to_exitcode(status)
    pid = _track_in_child(video, config_path, out)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return stopped


@pytest.mark.slow  # 20 runs, each stopped once and continued: about 35 s on 2 cores
def test_sigterm_at_random_moments_never_changes_the_results(short_clip, tmp_path):
    video, config_path, fresh_dir = short_clip
    t0 = time.perf_counter()
    pid = _track_in_child(video, config_path, tmp_path / "timed")
    os.waitpid(pid, 0)
    whole_s = time.perf_counter() - t0
    rng = random.Random(20)
    codes = []
    for k in range(20):
        out = tmp_path / f"run{k}"
        codes.append(killed_once_then_finished(video, config_path, out,
                                               rng.uniform(0.0, 0.8 * whole_s)))
        result_dir = out / video.stem
        assert not (result_dir / ".partial").exists()
        assert not leftovers(out) and not (result_dir / LOCK_FILE).exists()
        assert_same_results(result_dir, fresh_dir)
    assert set(codes) <= {0, 143, -signal.SIGTERM}, codes
    # (a loaded machine shifts the moments: a run may finish before its signal)
    assert codes.count(143) >= 10, f"most runs were really stopped by the handler: {codes}"


def _child_env() -> dict:
    """The environment of a `cpp-tracker` child process: this interpreter's import path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _sigterm_after_two_parts(args: list[str], partial: Path, wait_s: float
                             ) -> tuple[int, str]:
    """Run ``args``, send SIGTERM once its second part file is in ``partial`` (or after
    ``wait_s``); its exit status and stderr."""
    proc = subprocess.Popen(args, env=_child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + wait_s
    while not list(partial.glob("part-000002.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_sigterm_to_the_command_saves_a_checkpoint_and_exits_143(clip, fresh, tmp_path):
    video, _, config_path = clip
    args = [sys.executable, "-m", "cpp_tracker", "track", str(video), "--config",
            str(config_path), "--out", str(tmp_path), "--no-progress", "--no-plots",
            "--growing-check-s", "0", "--stop-grace-s", "5"]
    env = _child_env()
    partial = tmp_path / video.stem / ".partial"
    code, err = _sigterm_after_two_parts(args, partial, wait_s=30)
    assert code == 143, err
    assert "interrupted; rerun the same command to continue" in err
    state = json.loads((partial / "checkpoint.json").read_text())
    assert state["frames_tracked"] > 0 and state["parts"] >= 2
    assert not (tmp_path / video.stem / LOCK_FILE).exists()
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "continued an interrupted run" in done.stdout
    assert_same_results(tmp_path / video.stem, fresh.result_dir)


def test_sigterm_to_a_batch_marks_the_video_interrupted_and_exits_143(clip, fresh, tmp_path):
    video, _, config_path = clip
    out = tmp_path / "out"
    args = [sys.executable, "-m", "cpp_tracker", "batch", str(video), "--config",
            str(config_path), "--out", str(out), "--workers", "1", "--no-progress",
            "--growing-check-s", "0", "--stop-grace-s", "5"]
    partial = out / video.stem / ".partial"
    code, err = _sigterm_after_two_parts(args, partial, wait_s=60)
    assert code == 143, err
    status = pd.read_csv(out / STATUS_FILE, keep_default_na=False)
    assert list(status["status"]) == ["interrupted"]
    assert json.loads((partial / "checkpoint.json").read_text())["parts"] >= 2
    assert not (out / LOCK_FILE).exists() and not (out / video.stem / LOCK_FILE).exists()
    done = subprocess.run(args, env=_child_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    row = pd.read_csv(out / STATUS_FILE, keep_default_na=False).iloc[0]
    assert row["status"] in ("ok", "needs_review") and row["resumed_from_s"] != ""
    assert_same_results(out / video.stem, fresh.result_dir)


# ---------------------------------------------------------------------- still recording
def _as_mkv(video: Path, out: Path) -> Path:
    """The video as Matroska (readable while it is being written, like a recorder's)."""
    cap = cv2.VideoCapture(str(video))
    writer = None
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"),
                                     cap.get(cv2.CAP_PROP_FPS), frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    cap.release()
    return out


class Recorder(threading.Thread):
    """Writes ``data`` into ``path`` piece by piece, as a recorder does."""

    def __init__(self, path: Path, data: bytes, seconds: float):
        super().__init__(daemon=True)
        self.path, self.data, self.seconds = path, data, seconds

    def run(self) -> None:
        steps = 40
        piece = len(self.data) // steps + 1
        with open(self.path, "wb") as f:
            for k in range(steps):
                f.write(self.data[k * piece:(k + 1) * piece])
                f.flush()
                time.sleep(self.seconds / steps)


def test_a_file_still_being_recorded_waits_for_a_later_batch(clip, tmp_path):
    video, _, config_path = clip
    finished = _as_mkv(video, tmp_path / "finished.mkv")
    data = finished.read_bytes()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    shutil.copy(finished, recordings / "earlier.mkv")
    old = time.time() - 60
    os.utime(recordings / "earlier.mkv", (old, old))
    recorder = Recorder(recordings / "tonight.mkv", data, seconds=4.0)
    recorder.start()
    time.sleep(0.3)
    out = tmp_path / "out"
    jobs = collect_jobs([recordings], str(config_path), out_dir=out)
    result = run_batch(jobs, out, workers=1, progress=False, growing_check_s=0.5)
    rows = {Path(r["video"]).name: r for r in result.rows}
    assert rows["earlier.mkv"]["status"] in ("ok", "needs_review")
    assert rows["tonight.mkv"]["status"] == "in_progress"
    assert "still being recorded" in rows["tonight.mkv"]["note"]
    assert result.exit_code == 0 and not result.failed
    assert not (out / "tonight" / "run.json").exists()
    status = pd.read_csv(out / STATUS_FILE, keep_default_na=False)
    assert list(status["status"]).count("in_progress") == 1
    recorder.join()
    time.sleep(0.6)  # untouched for longer than the check
    again = run_batch(collect_jobs([recordings], str(config_path), out_dir=out), out,
                      workers=1, progress=False, growing_check_s=0.5)
    rows = {Path(r["video"]).name: r for r in again.rows}
    assert rows["earlier.mkv"]["status"] == "skipped"
    assert rows["tonight.mkv"]["status"] in ("ok", "needs_review")
    for name in ("occupancy.csv",):  # the same file, tracked once it was finished
        assert (out / "tonight" / name).read_bytes() == (out / "earlier" / name).read_bytes()


def test_track_refuses_a_growing_file_unless_asked_and_then_marks_it_truncated(
    clip, tmp_path, capsys
):
    video, _, config_path = clip
    data = _as_mkv(video, tmp_path / "whole.mkv").read_bytes()
    target = tmp_path / "rec.mkv"
    recorder = Recorder(target, data, seconds=8.0)
    recorder.start()
    time.sleep(1.0)
    base = ["track", str(target), "--config", str(config_path), "--out", str(tmp_path / "o"),
            "--no-progress", "--no-plots", "--growing-check-s", "0.3"]
    assert main(base) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {target}: not finished: it changed within 0.3 s")
    assert "--allow-growing" in err and "\n" not in err
    assert main([*base, "--allow-growing"]) == 0
    recorder.join()
    run = json.loads((tmp_path / "o" / "rec" / "run.json").read_text())
    reasons = [r for q in run["qc"].values() for r in q["review_reasons"]]
    assert any(r.startswith("truncated: rec.mkv was still being written") for r in reasons)
    assert all(q["needs_review"] for q in run["qc"].values())
    summary = pd.read_csv(tmp_path / "o" / "rec" / "summary.csv")
    assert summary["duration_s"].max() < 9.0  # only what had been written


def test_an_mp4_without_its_index_yet_is_refused_by_track(clip, tmp_path, capsys):
    video, _, config_path = clip
    data = Path(video).read_bytes()
    cut = tmp_path / "rec.mp4"
    moov = data.find(b"moov")
    assert moov > 0
    cut.write_bytes(data[: moov - 4])  # the index comes last and is not written yet
    assert main(["track", str(cut), "--config", str(config_path), "--out",
                 str(tmp_path / "o"), "--no-progress", "--growing-check-s", "0"]) == 1
    err = capsys.readouterr().err
    assert "not finished: its MP4 index ('moov') is not written yet" in err


# -------------------------------------------------------------------- two runs, one folder
def test_two_batches_on_one_folder(clip, tmp_path, capsys):
    video, _, config_path = clip
    out = tmp_path / "out"
    out.mkdir()
    code = ("import time\nfrom cpp_tracker.runs.batch import collect_jobs, run_batch\n"
            "def slow(job, out_dir, **kw):\n"
            "    print('running', flush=True)\n"
            "    time.sleep(60)\n"
            "if __name__ == '__main__':\n"
            f"    jobs = collect_jobs([{str(video)!r}], {str(config_path)!r}, "
            f"out_dir={str(out)!r})\n"
            f"    run_batch(jobs, {str(out)!r}, workers=1, progress=False, growing_check_s=0,"
            " task=slow)\n")
    script = tmp_path / "first.py"
    script.write_text(code)
    env = _child_env()
    first = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert first.stdout.readline().strip() == "running"
        args = ["batch", str(video), "--config", str(config_path), "--out", str(out),
                "--workers", "1", "--no-progress", "--growing-check-s", "0"]
        assert main(args) == 2
        err = capsys.readouterr().err.strip()
        assert f"is in use by 'batch' process {first.pid} on" in err and "\n" not in err
        # a track on a result folder a batch's worker is writing is refused as well
        # (a live process of this host holds the result folder's lock)
        (out / "x").mkdir()
        (out / "x" / LOCK_FILE).write_text(json.dumps(
            {"host": socket.gethostname(), "pid": first.pid, "started": "t0",
             "command": "batch"}))
        with pytest.raises(BusyError, match=f"x is in use by 'batch' process {first.pid}"):
            pipeline.track_session([video], load_config(config_path), out, name="x",
                                   progress=False, growing_check_s=0)
    finally:
        first.kill()  # SIGKILL: its lock stays behind
        first.wait()
    assert (out / LOCK_FILE).exists()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"took over the lock left by 'batch' process {first.pid}" in captured.err
    assert not (out / LOCK_FILE).exists()


# ---------------------------------------------------------------------- a replaced video
def test_a_video_replaced_before_the_resume_is_tracked_from_the_start(
    clip, video_factory, tmp_path, monkeypatch
):
    video, _, config_path = clip
    other, _, _ = video_factory("faults_b", duration_s=10.0, seed=32)
    path = tmp_path / "night1.mp4"
    shutil.copy(video, path)
    config = load_config(config_path)
    real = pipeline.detect_chunk
    calls = {"n": 0}

    def detect(frames, detector):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return real(frames, detector)

    monkeypatch.setattr(pipeline, "detect_chunk", detect)
    with pytest.raises(KeyboardInterrupt):
        track_video(path, config, tmp_path / "out", progress=False, plots=False,
                    growing_check_s=0)
    monkeypatch.undo()
    assert (tmp_path / "out" / "night1" / ".partial" / "checkpoint.json").exists()
    shutil.copy(other, path)  # same name, other recording
    job = collect_jobs([path], str(config_path), out_dir=tmp_path / "out")[0]
    row = run_job(job, tmp_path / "out")
    assert row["status"] in ("ok", "needs_review")
    assert row["resumed_from_s"] == ""
    assert "could not be continued (the checkpoint does not match: the video file's " \
           "content changed); tracked from the beginning" in row["note"]
    # what an uninterrupted run on the new file gives
    expected = track_video(path, config, tmp_path / "expected", progress=False, plots=False,
                           growing_check_s=0)
    assert_same_results(tmp_path / "out" / "night1", expected.result_dir)


def test_a_video_replaced_while_it_is_tracked_is_not_finished(clip, video_factory, tmp_path,
                                                              monkeypatch):
    video, _, config_path = clip
    other, _, _ = video_factory("faults_b", duration_s=10.0, seed=32)
    path = tmp_path / "night1.mp4"
    shutil.copy(video, path)
    real = pipeline.detect_chunk
    calls = {"n": 0}

    def detect(frames, detector):
        calls["n"] += 1
        if calls["n"] == 3:
            shutil.copy(other, path)
        return real(frames, detector)

    monkeypatch.setattr(pipeline, "detect_chunk", detect)
    with pytest.raises(VideoError, match="its content changed while it was tracked"):
        track_video(path, load_config(config_path), tmp_path / "out", progress=False,
                    plots=False, growing_check_s=0)
    assert not (tmp_path / "out" / "night1" / "run.json").exists()


# ----------------------------------------------------------------------- failing reads
class FlakyCapture:
    """A capture whose ``grab()`` fails while ``failing(frame)`` says so, as reads on a
    network disk that is briefly unavailable (EIO) or damaged do."""

    def __init__(self, cap, failing):
        self._cap, self._failing = cap, failing

    def grab(self):
        if self._failing(int(round(self._cap.get(cv2.CAP_PROP_POS_FRAMES)))):
            return False
        return self._cap.grab()

    def __getattr__(self, name):
        return getattr(self._cap, name)


def inject_read_faults(monkeypatch, failing) -> None:
    real = reader_module._open_capture
    monkeypatch.setattr(reader_module, "_open_capture",
                        lambda *a, **k: FlakyCapture(real(*a, **k), failing))


def read_all(path) -> tuple[list, list, VideoReader]:
    with VideoReader(path) as r:
        chunks = list(r.chunks(16, prefetch=False))
    frames = [f for c in chunks for f in c.frames]
    times = [t for c in chunks for t in c.time_s]
    return frames, times, r


def test_a_read_that_fails_for_a_moment_is_retried_and_nothing_is_lost(clip, monkeypatch):
    video, _, _ = clip
    clean_frames, clean_times, _ = read_all(video)
    outage = {"until": None}

    def failing(frame):  # from frame 100 on, the disk is gone for 0.3 s
        if frame == 100 and outage["until"] is None:
            outage["until"] = time.monotonic() + 0.3
        return outage["until"] is not None and time.monotonic() < outage["until"]

    inject_read_faults(monkeypatch, failing)
    monkeypatch.setattr(VideoReader, "STALL_WAITS_S", (0.2, 0.5))
    frames, times, r = read_all(video)
    assert outage["until"] is not None, "the fault happened"
    assert r.unreadable == []
    assert times == clean_times
    assert all((a == b).all() for a, b in zip(frames, clean_frames, strict=True))


def test_a_stretch_that_stays_unreadable_is_recorded_after_the_retries(clip, monkeypatch):
    video, _, _ = clip
    _, clean_times, _ = read_all(video)
    inject_read_faults(monkeypatch, lambda frame: 100 <= frame < 110)
    monkeypatch.setattr(VideoReader, "STALL_WAITS_S", (0.01, 0.01))
    _, times, r = read_all(video)
    assert [(u["first_frame"], u["resumed_frame"]) for u in r.unreadable] == [(100, 110)]
    assert len(times) == len(clean_times) - 10


def test_a_fingerprint_read_failing_once_is_retried(clip, monkeypatch):
    video, _, _ = clip
    expected = pipeline.file_fingerprint(video)
    monkeypatch.setattr(pipeline, "READ_RETRY_WAITS_S", (0.01, 0.01))
    failures = {"left": 1}

    def flaky_open(path, mode="r", *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(pipeline, "open", flaky_open, raising=False)
    assert pipeline.file_fingerprint(video) == expected
    assert failures["left"] == 0
    failures["left"] = 10  # the share stays away: one sentence, no traceback
    with pytest.raises(VideoError, match=r"cannot be read \(Input/output error, 3 tries\); "
                                         "check the disk or network share"):
        pipeline.file_fingerprint(video)


def test_reprocess_refuses_a_result_folder_another_run_writes(clip, fresh, tmp_path):
    from cpp_tracker.runs.reprocess import reprocess_result

    _, _, config_path = clip
    result_dir = tmp_path / "night1"
    shutil.copytree(fresh.result_dir, result_dir)
    before = {p.name: p.read_bytes() for p in result_dir.iterdir() if p.is_file()}
    (result_dir / LOCK_FILE).write_text(json.dumps(  # a live process of this host
        {"host": socket.gethostname(), "pid": os.getppid(), "started": "t0",
         "command": "track"}))
    with pytest.raises(BusyError, match=f"in use by 'track' process {os.getppid()}"):
        reprocess_result(result_dir, load_config(config_path), force=True, plots=False,
                         reports=False)
    after = {p.name: p.read_bytes() for p in result_dir.iterdir() if p.is_file()}
    assert after == {**before, LOCK_FILE: after[LOCK_FILE]}


# -------------------------------------------------------------------------------- Ctrl-C
def _group_ended(pgid: int, within_s: float) -> bool:
    """True once no process of the group is left (helpers end a moment after the main)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def minute_clip(video_factory):
    """70 s at 320x240: long enough for two segments with --workers 2 (2 x 30 s)."""
    return video_factory("faults_minute", duration_s=70.0, seed=33, width=320, height=240)


def test_ctrl_c_at_any_moment_stops_two_processes_without_a_traceback(minute_clip, tmp_path):
    """Ctrl-C reaches every process of the group: while the worker starts (importing, in
    the background stage) or waits for work, it leaves quietly; while it tracks, it
    stops; the command says how to continue, exits 130 and leaves no process behind."""
    video, _, config_path = minute_clip
    codes = []
    for k, delay_s in enumerate((0.15, 0.4, 0.8, 1.5, 3.0)):
        codes.append(_ctrl_c_after(
            [sys.executable, "-m", "cpp_tracker", "track", str(video), "--config",
             str(config_path), "--out", str(tmp_path / str(k)), "--no-progress",
             "--no-plots", "--growing-check-s", "0", "--workers", "2"], delay_s))
    assert codes.count(130) >= 3, codes  # most were really interrupted


def _ctrl_c_after(args: list[str], delay_s: float) -> int:
    """Run ``args`` in a new process group and send Ctrl-C to the whole group after
    ``delay_s``; checks that it printed no traceback, said how to continue when stopped,
    and left no process behind. Its exit status."""
    proc = subprocess.Popen(args, env=_child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(delay_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err, (delay_s, err)
    if proc.returncode == 130:
        assert "interrupted; rerun the same command to continue" in err
    assert _group_ended(proc.pid, within_s=5.0), f"processes left at {delay_s} s"
    return proc.returncode


def test_ctrl_c_to_a_batch_at_any_moment_leaves_no_traceback_and_the_rerun_finishes(
    minute_clip, tmp_path
):
    """Ctrl-C to every process of a batch of two videos in two workers, while the fork
    server imports, workers start or track: exit 130 with one sentence, no traceback
    (from a worker or the fork server), nothing left running; the rerun finishes with the
    results of an uninterrupted batch."""
    video, _, config_path = minute_clip
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a", "b"):
        shutil.copy(video, videos / f"{name}.mp4")

    def batch(out: Path) -> list[str]:
        return [sys.executable, "-m", "cpp_tracker", "batch", str(videos), "--config",
                str(config_path), "--out", str(out), "--workers", "2", "--no-progress",
                "--growing-check-s", "0"]

    whole = subprocess.run(batch(tmp_path / "whole"), env=_child_env(), capture_output=True,
                           text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    codes = [_ctrl_c_after(batch(tmp_path / str(k)), delay_s)
             for k, delay_s in enumerate((0.3, 0.8, 1.6, 3.0))]
    assert codes.count(130) >= 3, codes
    again = subprocess.run(batch(tmp_path / "2"), env=_child_env(), capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    for name in ("a", "b"):
        assert_same_results(tmp_path / "2" / name, tmp_path / "whole" / name)
