"""Worker processes: whether a process still runs, a worker that leaves once the process
that started it is gone, and Ctrl-C held back while workers start.

Used by the folder lock (is its holder alive?), the segments of one video and the batch's
workers. Like :mod:`cpp_tracker.errors`, every folder may import it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["process_gone", "leave_when_gone", "interrupts_held", "start_helper_thread",
           "take_interrupts_in_tasks", "interruptible_task"]


def process_gone(pid: int) -> bool:
    """True when process ``pid`` no longer runs on this host (killed but not yet reaped,
    a zombie, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):  # not Linux, or just gone
        return False


def leave_when_gone(pid: int, exit_code: int, every_s: float = 1.0) -> None:
    """End this process with ``exit_code`` once process ``pid`` (the one that started it)
    is gone; a daemon thread looks every ``every_s`` seconds. A worker whose run was
    killed, or ended without telling it, must not wait or write on alone."""

    def watch() -> None:
        while not process_gone(pid):
            time.sleep(every_s)
        os._exit(exit_code)

    start_helper_thread(watch, "cpp-tracker-parent-watch")


def start_helper_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """Start a daemon thread that leaves Ctrl-C to the main thread: it runs with SIGINT
    held for good, so the kernel hands the signal to the main thread, which then stops at
    once (even while it waits on this thread) and whose :func:`interrupts_held` holds."""
    with interrupts_held():  # the new thread inherits the held mask
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
    return thread


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back in this thread while it starts worker processes (or the
    batch's fork server): they inherit the held signal and take it only once their own
    set-up unblocks it, instead of printing a traceback from the middle of their imports.
    This thread takes a held Ctrl-C right after the block.

    Only this thread holds it: a Ctrl-C that another thread of this process takes raises
    here at once (hence :func:`start_helper_thread` for this package's threads; a
    library's may still take it), and a worker started after it never has the signal,
    hence :func:`leave_when_gone` in every worker."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_in_task = False


def take_interrupts_in_tasks() -> None:
    """In a worker, once it is set up: from now on Ctrl-C stops the task it runs (as a
    KeyboardInterrupt, which the process that sent the task hears of) and ends the worker
    quietly while it waits for work; a Ctrl-C held since its start is taken now."""
    signal.signal(signal.SIGINT, _interrupted)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


@contextlib.contextmanager
def interruptible_task() -> Iterator[None]:
    """The block is a worker's task: Ctrl-C raises KeyboardInterrupt in it."""
    global _in_task
    _in_task = True
    try:
        yield
    finally:
        _in_task = False


def _interrupted(signum, frame) -> None:
    if _in_task:
        raise KeyboardInterrupt
    os._exit(128 + signum)
