"""kill -9 only the media worker mid-space: the server stays up, restarts the worker, and
the recording goes on after a discontinuity with nothing listed lost."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import m3u8
import numpy as np
import pytest

from .harness import Api, start_server, stop_server, wait_line, wait_replay
from .resume_checks import (
    AFTER_HZ,
    BEFORE_HZ,
    check_resumed,
    speak_after_the_kill_and_end,
    speak_before_the_kill,
)
from .signal_tools import RATE, decode, longest_gap, tone_db

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


@pytest.mark.realtime
def test_majlis_speak_reconnects_by_itself_when_the_worker_restarts(tmp_path: Path) -> None:
    """The same `majlis speak` process goes on speaking after the worker it spoke to was
    killed, without anyone restarting it, and stops by itself when the space ends."""
    data = tmp_path / "data"
    server = start_server(data)
    try:
        api = Api(server)
        sid, speaker, _ = speak_before_the_kill(server, api, "speaker stays on")
        old = _worker_pid(api)
        os.kill(old, signal.SIGKILL)
        _new_worker(api, old)
        killed_at = time.monotonic()
        line = wait_line(speaker, "connected again", timeout=40)
        reconnect_seconds = time.monotonic() - killed_at
        time.sleep(5.0)
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        final_text = wait_replay(api, sid)
        replay = api.http.get(f"/hls/{sid}/replay.m4a").content
        assert speaker.wait(30) == 0, "majlis speak did not stop when the space ended"
        api.close()
    finally:
        stop_server(server)
    assert "speaking in" in line
    # Noticed within 3 s of silence, plus the offer to the new worker.
    assert reconnect_seconds < 20, f"reconnected only after {reconnect_seconds:.1f} s"
    final = m3u8.loads(final_text)
    first_new = next(i for i, s in enumerate(final.segments) if s.discontinuity)
    audio = decode(replay)
    after = audio[int(sum(s.duration for s in final.segments[:first_new]) * RATE) :]
    # The new worker records from its start; the speaker comes back a few seconds later.
    back = int(np.argmax(np.abs(after) > 0.05))
    spoken = after[back + RATE // 2 : -RATE // 2]
    assert len(spoken) > 3 * RATE, f"only {len(spoken) / RATE:.1f} s spoken after the restart"
    # The speaker's own tone at its level (-20 dBFS), without a gap.
    assert tone_db(spoken, BEFORE_HZ) > -26
    assert longest_gap(spoken) < 0.1


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
