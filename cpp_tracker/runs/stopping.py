"""Stopping a run on SIGTERM at a safe point, with a deadline.

A cluster preempts a job with SIGTERM and follows with SIGKILL after a grace period (SLURM:
``KillWait``, 30 s by default, often less). Raising at once in the signal handler, as
Ctrl-C does, would throw away the frames tracked since the last checkpoint. Instead the
handler only asks the run to stop: the tracking loop sees it after the chunk of frames it
is on, writes those frames as a part file with the checkpoint, and raises
:class:`StopRequested`. If the run has not stopped by itself within the grace time (it was
estimating the background, or writing the results), :class:`StopRequested` is raised
wherever it is, like Ctrl-C: atomic writes leave no half-written file, and the rerun
continues from the last checkpoint.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = [
    "DEFAULT_GRACE_S",
    "StopRequested",
    "request_stop",
    "stop_requested",
    "stop_if_requested",
    "clear_stop",
    "stop_on_sigterm",
]

#: Seconds between SIGTERM and stopping wherever the run is (well under SLURM's 30 s).
DEFAULT_GRACE_S = 10.0

_requested: int | None = None  # the signal number that asked the run to stop


class StopRequested(KeyboardInterrupt):
    """The run stopped because a signal (``signum``) asked it to."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(f"stopped by signal {signum}")
        self.signum = signum


def request_stop(signum: int = signal.SIGTERM) -> None:
    """Ask the running stages to stop at their next safe point."""
    global _requested
    _requested = signum


def stop_requested() -> int | None:
    """The signal that asked the run to stop, or None."""
    return _requested


def clear_stop() -> None:
    global _requested
    _requested = None


def stop_if_requested() -> None:
    """Raise :class:`StopRequested` when a stop was asked for (call at safe points only)."""
    if _requested is not None:
        raise StopRequested(_requested)


def _raise_now(signum, frame) -> None:
    raise StopRequested(_requested or signal.SIGTERM)


@contextmanager
def stop_on_sigterm(grace_s: float | None = DEFAULT_GRACE_S) -> Iterator[None]:
    """While the block runs, SIGTERM asks for a stop at the next safe point and, after
    ``grace_s`` seconds (None: never), stops wherever the run is. Main thread only."""

    def on_term(signum, frame) -> None:
        request_stop(signum)
        if grace_s is not None:
            signal.signal(signal.SIGALRM, _raise_now)
            signal.setitimer(signal.ITIMER_REAL, max(0.001, float(grace_s)))

    previous = signal.signal(signal.SIGTERM, on_term)
    previous_alarm = signal.getsignal(signal.SIGALRM)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous)
        clear_stop()
