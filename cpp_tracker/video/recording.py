"""Is a video file still being recorded?

An overnight batch runs next to the recorder that is writing tonight's files. A file still
growing must not be tracked as if complete: its results would cover part of the session
and look whole. Two cheap signs, no decoding:

- its size or modification time changes during a short check (``check_s``). A file whose
  modification time is already older than ``check_s`` has been written by nobody for that
  long, which is the same answer without waiting; only files touched within the last
  ``check_s`` are stat'ed again after waiting (once for all files);
- an MP4/MOV whose top-level boxes hold no ``moov`` index yet (the recorder writes it when
  it closes the file) and that was modified within :data:`INDEXLESS_RECENT_S`: an older
  one is a recording that was cut off, which the reader reports as such.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from .reader import mp4_without_index

__all__ = ["DEFAULT_CHECK_S", "INDEXLESS_RECENT_S", "still_being_written"]

#: Seconds a file's size and modification time must stay the same to count as finished.
DEFAULT_CHECK_S = 2.0
#: An MP4 without its index modified this recently is taken to be still recording.
INDEXLESS_RECENT_S = 600.0


def _stat(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None  # missing files are reported by whoever opens them
    return st.st_size, st.st_mtime_ns


def still_being_written(paths: Sequence[str], check_s: float = DEFAULT_CHECK_S) -> dict[str, str]:
    """The files of ``paths`` that are still being written, each with why (one clause).

    Waits at most ``check_s`` seconds, once, and only when a file was modified within the
    last ``check_s`` seconds (or its time is ahead of this machine's clock). ``check_s`` 0
    skips the size check (the index check still applies).
    """
    first = {p: _stat(p) for p in paths}
    now = time.time()
    reasons: dict[str, str] = {}
    recent = [p for p, s in first.items()
              if s is not None and check_s > 0 and now - s[1] / 1e9 < check_s]
    if recent:
        newest = max(first[p][1] / 1e9 for p in recent)  # type: ignore[index]
        time.sleep(min(check_s, max(0.05, check_s - (now - newest))))
        for p in recent:
            again = _stat(p)
            if again != first[p]:
                before, after = first[p][0], (again or (0, 0))[0]  # type: ignore[index]
                reasons[p] = (f"it changed within {check_s:g} s (size {before} -> {after} "
                              "bytes): it is still being recorded or copied")
    for p, s in first.items():
        if p in reasons or s is None:
            continue
        if time.time() - s[1] / 1e9 < INDEXLESS_RECENT_S and mp4_without_index(p):
            reasons[p] = ("its MP4 index ('moov') is not written yet: the recorder has not "
                          "closed the file")
    return reasons
