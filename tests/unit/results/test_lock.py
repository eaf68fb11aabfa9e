"""The folder lock: one writer per output folder, stale locks taken over, always released."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from cpp_tracker.errors import BusyError
from cpp_tracker.results import lock as lock_module
from cpp_tracker.results.lock import LOCK_FILE, lock_folder


def _holder_process(folder):
    """A real process holding ``folder``'s lock until killed; its pid."""
    code = ("import sys, time\nfrom cpp_tracker.results.lock import lock_folder\n"
            f"held = lock_folder({str(folder)!r}, 'batch')\nprint('held', flush=True)\n"
            "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    proc = _holder_process(tmp_path)
    try:
        with pytest.raises(BusyError) as e:
            lock_folder(tmp_path, "track")
        text = str(e.value)
        assert f"process {proc.pid} on {socket.gethostname()}" in text
        assert "'batch'" in text and "started" in text
        assert e.value.exit_code == 2
    finally:
        proc.kill()
        proc.wait()
    # the holder died by SIGKILL: its lock is stale and taken over, and that is said
    with lock_folder(tmp_path, "track") as held:
        assert held.took_over is not None and held.took_over.pid == proc.pid
        assert "took over the lock" in held.message and str(proc.pid) in held.message
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError), lock_folder(tmp_path):
        assert (tmp_path / LOCK_FILE).exists()
        raise RuntimeError("boom")
    assert not (tmp_path / LOCK_FILE).exists()
    lock_folder(tmp_path).release()  # free again


def test_a_lock_of_another_host_is_stale_only_when_not_touched_for_long(tmp_path):
    path = tmp_path / LOCK_FILE
    path.write_text(json.dumps({"host": "node17", "pid": 4242, "started": "t0",
                                "command": "batch"}))
    with pytest.raises(BusyError, match="process 4242 on node17"):
        lock_folder(tmp_path)
    old = time.time() - lock_module.STALE_AFTER_S - 5
    os.utime(path, (old, old))
    with lock_folder(tmp_path) as held:
        assert held.took_over.host == "node17"


def test_the_holder_keeps_its_lock_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(lock_module, "HEARTBEAT_S", 0.05)
    with lock_folder(tmp_path):
        path = tmp_path / LOCK_FILE
        old = time.time() - 1000
        os.utime(path, (old, old))
        time.sleep(0.3)
        assert time.time() - path.stat().st_mtime < 5


def test_a_lock_file_that_cannot_be_read_is_not_taken_over_silently(tmp_path):
    (tmp_path / LOCK_FILE).write_text("{half")
    with pytest.raises(BusyError, match="cannot be read"):
        lock_folder(tmp_path)
    old = time.time() - lock_module.UNREADABLE_STALE_S - 1  # its maker died long ago
    os.utime(tmp_path / LOCK_FILE, (old, old))
    with lock_folder(tmp_path) as held:
        assert held.took_over is not None


def test_runs_taking_over_one_stale_lock_at_once_end_with_one_holder(tmp_path):
    (tmp_path / LOCK_FILE).write_text(json.dumps(
        {"host": socket.gethostname(), "pid": 2**22 + 12345, "started": "t0"}))  # no such pid
    go = tmp_path / "go"
    code = ("import sys, time\nfrom pathlib import Path\n"
            "from cpp_tracker.errors import BusyError\n"
            "from cpp_tracker.results.lock import lock_folder\n"
            f"while not Path({str(go)!r}).exists():\n    time.sleep(0.001)\n"
            f"try:\n    held = lock_folder({str(tmp_path)!r})\nexcept BusyError:\n"
            "    print('busy')\nelse:\n    print('got', flush=True)\n    time.sleep(1.5)\n"
            "    held.release()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env) for _ in range(6)]
    time.sleep(1.0)  # all started and waiting
    go.touch()
    answers = [p.communicate(timeout=30)[0].strip() for p in procs]
    assert sorted(answers) == ["busy"] * 5 + ["got"], answers
    assert not (tmp_path / LOCK_FILE).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["go"]  # no renamed copies left
