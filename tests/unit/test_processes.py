"""Worker processes: liveness, Ctrl-C held back while workers start, and threads that
leave Ctrl-C to the main thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

from cpp_tracker.processes import interrupts_held, process_gone, start_helper_thread


def _sigint_blocked_here() -> bool:
    return signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])


def test_helper_threads_leave_ctrl_c_to_the_main_thread():
    """A thread that takes SIGINT makes the main thread raise wherever it is, even inside
    interrupts_held (the cause of workers started after a Ctrl-C, left waiting)."""
    seen = {}

    def look() -> None:
        seen["blocked"] = _sigint_blocked_here()

    start_helper_thread(look, "probe").join(5)
    assert seen == {"blocked": True}
    assert not _sigint_blocked_here(), "the starting thread's mask was left changed"


def test_interrupts_held_holds_ctrl_c_until_the_block_ends():
    """Sent inside the block, Ctrl-C is taken right after it, not in it."""
    code = (
        "import os, signal, sys\n"
        "from cpp_tracker.processes import interrupts_held\n"
        "try:\n"
        "    with interrupts_held():\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        print('inside', flush=True)\n"
        "    print('after', flush=True)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.split() == ["inside", "interrupted"], out.stdout + out.stderr


def test_a_process_is_gone_once_ended_even_before_it_is_reaped():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    assert not process_gone(os.getpid())
    while child.poll() is None:  # poll() reaps: wait for the end without reaping first
        threading.Event().wait(0.02)
    assert process_gone(child.pid)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped
    assert process_gone(zombie.pid)
    zombie.wait()


def test_interrupts_held_restores_the_mask():
    with interrupts_held():
        assert _sigint_blocked_here()
    assert not _sigint_blocked_here()
