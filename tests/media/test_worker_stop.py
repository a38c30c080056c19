"""The media worker's stop is bounded: a stop stuck on a space (seen after a schema fuzz
left 54 spaces on one worker: a packager far behind drained for minutes while the other
spaces kept mixing into memory, parent gone) ends the process instead of leaving it."""

from __future__ import annotations

import threading
import time

from majlis.media.runtime.worker import EXIT_STUCK, exit_if_stuck


def test_a_stop_that_does_not_finish_ends_the_process() -> None:
    exited: list[int] = []
    fired = threading.Event()

    def fake_exit(code: int) -> None:
        exited.append(code)
        fired.set()

    started = time.monotonic()
    exit_if_stuck(0.05, exit=fake_exit)
    assert fired.wait(10), "the watchdog never fired"
    assert exited == [EXIT_STUCK]
    assert time.monotonic() - started >= 0.05


def test_a_stop_that_finishes_in_time_exits_normally() -> None:
    exited: list[int] = []
    watchdog = exit_if_stuck(0.3, exit=exited.append)
    watchdog.cancel()
    watchdog.join(5)
    time.sleep(0.4)  # past the grace: a timer that was not cancelled would have fired
    assert exited == []
