"""One writer per folder: a lock file naming the process that holds it.

``batch`` locks its output folder and ``track`` (also inside a batch's or a Dask worker's
job) locks the result folder it writes, so that a colleague's second batch, or a Dask job
restarted while its old workers still run, cannot write into the same files. The lock is a
small JSON file created with ``O_CREAT | O_EXCL`` (atomic, also on NFS v3 and later); it
names the host, the process id and the start time, so the refusal can say who holds it.
A lock left by a process that is gone (killed by SIGKILL, a power cut) on this host is
taken over, and the caller is told. On another host (a Dask worker) the process cannot be
checked: the holder touches its lock file every :data:`HEARTBEAT_S` seconds, and a lock not
touched for :data:`STALE_AFTER_S` is taken over as stale.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BusyError, OutputError
from ..processes import process_gone, start_helper_thread
from .record import now_iso

__all__ = ["LOCK_FILE", "FolderLock", "LockHolder", "lock_folder"]

#: The lock file's name, in the folder it locks.
LOCK_FILE = ".cpp-tracker.lock"
#: How often a holder touches its lock file (its modification time says it is alive).
HEARTBEAT_S = 30.0
#: A lock of another host not touched for this long is stale (its holder is gone).
STALE_AFTER_S = 300.0
#: A lock file that cannot be read (its process died between creating and writing it)
#: is stale after this long (a lock is written microseconds after it is made).
UNREADABLE_STALE_S = 10.0


@dataclass(frozen=True)
class LockHolder:
    """Who holds a lock: the host, process id, start time and command."""

    host: str
    pid: int
    started: str
    command: str = ""

    def describe(self) -> str:
        what = f"'{self.command}' " if self.command else ""
        return f"{what}process {self.pid} on {self.host}, started {self.started}"

    def is_gone(self, path: Path) -> bool:
        """True when the process no longer runs: no such pid on this host, or (another
        host) its lock file ``path`` not touched for :data:`STALE_AFTER_S`."""
        if self.host != socket.gethostname():
            try:
                return time.time() - path.stat().st_mtime > STALE_AFTER_S
            except OSError:
                return False
        return process_gone(self.pid)


class FolderLock:
    """A held lock; :meth:`release` (or leaving the ``with`` block) removes its file.

    ``took_over``: the holder of the stale lock this one replaced, or None.
    """

    def __init__(self, path: Path, holder: LockHolder, took_over: LockHolder | None):
        self.path, self.holder, self.took_over = path, holder, took_over
        self.held = True
        self._stop = threading.Event()
        start_helper_thread(self._beat, "cpp-tracker-lock")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                os.utime(self.path)
            except OSError:
                pass

    def release(self) -> None:
        """Remove the lock file if it is still ours (idempotent)."""
        if not self.held:
            return
        self.held = False
        self._stop.set()
        current = _read_holder(self.path)
        if current is not None and (current.host, current.pid) == (
            self.holder.host, self.holder.pid
        ):
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def message(self) -> str | None:
        """What to tell the user about a stale lock taken over, or None."""
        if self.took_over is None:
            return None
        return (f"{self.path.parent}: took over the lock left by {self.took_over.describe()}, "
                "which no longer runs")


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _read_holder(path: Path) -> LockHolder | None:
    try:
        raw = json.loads(path.read_text())
        return LockHolder(str(raw["host"]), int(raw["pid"]), str(raw["started"]),
                          str(raw.get("command", "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # half-written by a killed process
        return LockHolder("?", -1, "?")


def _create(path: Path, holder: LockHolder) -> bool:
    """Create the lock file with ``holder`` in it; False when it exists already."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    except OSError as e:
        raise OutputError(
            f"{path.parent}: cannot create the lock file {path.name} ({e.strerror or e}); "
            "give a folder you can write to"
        ) from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump({"host": holder.host, "pid": holder.pid, "started": holder.started,
                       "command": holder.command}, f)
    except OSError as e:  # a full disk: no half-written lock left behind
        path.unlink(missing_ok=True)
        raise OutputError(
            f"{path.parent}: cannot write the lock file {path.name} ({e.strerror or e}); "
            "free some space or give another folder"
        ) from None
    return True


def _remove_stale(path: Path, stale: LockHolder) -> None:
    """Remove the lock file if it still holds ``stale``. It is first renamed (atomic): if
    another run took the stale lock over meanwhile, what was renamed is that run's fresh
    lock, and it is put back."""
    grabbed = path.with_name(f"{path.name}.{os.getpid()}-{time.time_ns()}")
    try:
        os.rename(path, grabbed)
    except FileNotFoundError:
        return
    if _read_holder(grabbed) != stale:
        try:
            os.link(grabbed, path)  # fails when a lock exists again: that one counts
        except OSError:
            pass
    grabbed.unlink(missing_ok=True)


def lock_folder(folder: str | Path, command: str = "") -> FolderLock:
    """Lock ``folder`` (which must exist) for this process.

    Raises :class:`~cpp_tracker.errors.BusyError` (exit status 2) naming the process that
    holds it. A lock whose process is gone (same host) is taken over: see
    :attr:`FolderLock.message`.
    """
    path = Path(folder) / LOCK_FILE
    me = LockHolder(socket.gethostname(), os.getpid(), now_iso(), command)
    took_over = None
    for _ in range(3):  # a stale lock removed, then a race with another taker
        if _create(path, me):
            return FolderLock(path, me, took_over)
        other = _read_holder(path)
        if other is None:
            continue  # released meanwhile
        if (other.host, other.pid) == (me.host, me.pid):
            raise BusyError(f"{folder}: this process holds its lock already")
        if other.pid != -1 and not other.is_gone(path):
            raise BusyError(
                f"{folder} is in use by {other.describe()}; wait for it to finish, or, if "
                f"it no longer runs, delete {path}"
            )
        if other.pid == -1 and not _older_than(path, UNREADABLE_STALE_S):
            raise BusyError(
                f"{folder}: its lock file {path} cannot be read; if no other cpp-tracker "
                "run writes there, delete it"
            )
        _remove_stale(path, other)
        took_over = other
    raise BusyError(f"{folder}: another run took its lock at the same moment; try again")
