"""kill -9 only the media worker mid-space: the server stays up, restarts the worker, and
the recording goes on after a discontinuity with nothing listed lost."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from .harness import Api, start_server, stop_server
from .resume_checks import (
    AFTER_HZ,
    BEFORE_HZ,
    check_resumed,
    speak_after_the_kill_and_end,
    speak_before_the_kill,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180),
    pytest.mark.skipif(
        os.environ.get("MAJLIS_MEDIA_PROCESS", "").lower() in ("0", "false", "no", "off"),
        reason="the suite runs with media in a thread",
    ),
]


def _worker_pid(api: Api) -> int:
    match = re.search(r"^majlis_media_worker_pid (\d+)", api.http.get("/metrics").text, re.M)
    return int(match.group(1)) if match else 0


def _new_worker(api: Api, old: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _worker_pid(api)
        if pid not in (0, old):
            return pid
        time.sleep(0.1)
    raise AssertionError("the media worker was not restarted")


def _gone(pid: int, timeout: float = 10) -> bool:
    """Exited and reaped: a zombie still has its /proc entry."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.1)
    return False


def test_sigkill_of_the_media_worker_resumes_in_the_same_server(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        api = Api(server)
        sid, before, kept = speak_before_the_kill(server, api, "worker crash")
        old = _worker_pid(api)
        assert old and old != server.process.pid

        os.kill(old, signal.SIGKILL)
        before.kill()
        before.wait(10)
        assert api.http.get("/healthz").status_code == 200
        new = _new_worker(api, old)
        assert _gone(old), f"the killed worker {old} was not reaped"
        assert "majlis_media_worker_restarts_total 1" in api.http.get("/metrics").text

        final_text, replay = speak_after_the_kill_and_end(server, api, sid)
        api.close()
    finally:
        stop_server(server)
    assert _gone(new), "the worker outlived its server"

    check_resumed(data / "spaces" / sid, kept, final_text, replay, (BEFORE_HZ, AFTER_HZ))


def test_the_worker_exits_when_its_server_is_killed(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        api = Api(server)
        pid = _worker_pid(api)
        api.close()
        assert pid
        server.kill9()
        # Orphaned, so reaped by init once it exits on the socket's EOF.
        assert _gone(pid), "the worker outlived a SIGKILLed server"
    finally:
        stop_server(server)
