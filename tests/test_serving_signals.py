"""`askdesk run` in Socket Mode keeps its main thread waiting for signals (SIGTERM, SIGHUP). Python runs a
handler only in the main thread, and the kernel may deliver a signal to any thread of the process: the
main thread's wait must wake up for it (a plain `Event.wait()` did not, so a SIGHUP was sometimes never
handled; the SIGHUP test failed now and then)."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

from bot.runtime.serving import wait_for_signals


def test_a_signal_delivered_to_another_thread_still_runs_its_handler_in_the_main_thread() -> None:
    stopped, handled = threading.Event(), []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        handled.append((signum, threading.current_thread() is threading.main_thread()))
        stopped.set()

    def elsewhere() -> None:
        time.sleep(0.2)  # let the main thread block first (if it has not, the test passes without proving much)
        signal.pthread_kill(threading.get_ident(), signal.SIGUSR1)  # to this thread, not the main one
        if not stopped.wait(10):  # a bound, should the main thread never wake
            stopped.set()

    previous = signal.signal(signal.SIGUSR1, on_signal)
    try:
        started = time.monotonic()
        threading.Thread(target=elsewhere, daemon=True).start()
        wait_for_signals(stopped, poll=0.05)
        assert handled == [(signal.SIGUSR1, True)]
        assert time.monotonic() - started < 5
    finally:
        signal.signal(signal.SIGUSR1, previous)
