"""Is a file still being recorded: size/time changing during the check, or no MP4 index."""

from __future__ import annotations

import os
import threading
import time

from cpp_tracker.video.recording import still_being_written


def _old(path, age_s=100.0):
    t = time.time() - age_s
    os.utime(path, (t, t))


def test_a_file_written_during_the_check_is_growing_and_a_quiet_one_is_not(tmp_path):
    growing, quiet = tmp_path / "rec.mkv", tmp_path / "done.mkv"
    growing.write_bytes(b"x" * 100)
    quiet.write_bytes(b"y" * 100)
    _old(quiet)
    stop = threading.Event()

    def recorder():
        while not stop.is_set():
            with open(growing, "ab") as f:
                f.write(b"z" * 1000)
            time.sleep(0.05)

    thread = threading.Thread(target=recorder)
    thread.start()
    try:
        t0 = time.perf_counter()
        found = still_being_written([str(growing), str(quiet)], check_s=0.5)
        waited = time.perf_counter() - t0
    finally:
        stop.set()
        thread.join()
    assert list(found) == [str(growing)]
    assert "still being recorded" in found[str(growing)]
    assert 0.3 < waited < 1.5


def test_files_untouched_for_the_check_need_no_wait(tmp_path):
    paths = []
    for k in range(3):
        p = tmp_path / f"v{k}.mkv"
        p.write_bytes(b"v" * 10)
        _old(p)
        paths.append(str(p))
    t0 = time.perf_counter()
    assert still_being_written(paths, check_s=5.0) == {}
    assert time.perf_counter() - t0 < 0.5


def test_a_recent_mp4_without_its_index_is_still_recording(tmp_path):
    def box(kind: bytes, payload: bytes = b"") -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    head = box(b"ftyp", b"isom\x00\x00\x02\x00") + box(b"mdat", b"\x00" * 500)
    unfinished, finished = tmp_path / "a.mp4", tmp_path / "b.mp4"
    unfinished.write_bytes(head)
    finished.write_bytes(head + box(b"moov", b"\x00" * 20))
    _old(unfinished, 10)
    _old(finished, 10)
    found = still_being_written([str(unfinished), str(finished)], check_s=1.0)
    assert list(found) == [str(unfinished)] and "moov" in found[str(unfinished)]
    _old(unfinished, 3600)  # cut off an hour ago: a damaged file, not a recording
    assert still_being_written([str(unfinished)], check_s=1.0) == {}
