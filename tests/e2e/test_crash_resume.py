"""Issue 3: kill -9 the node mid-space, start it again; the replay holds everything listed
before the kill, a discontinuity, and what came after."""

from __future__ import annotations

import re
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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_sigkill_mid_space_resumes_the_same_recording(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        api = Api(server)
        sid, before, kept = speak_before_the_kill(server, api, "crash")
        worker = worker_pid(api)
        server.kill9()
        before.kill()
        before.wait(10)
        api.close()
    finally:
        stop_server(server)
    # The media worker dies with its server (issue 13), after closing the recording.
    assert gone(worker, within=10.0), f"media worker {worker} outlived its killed server"

    server = start_server(data)
    try:
        api = Api(server)
        api.login("host")
        final_text, replay = speak_after_the_kill_and_end(server, api, sid)
        api.close()
    finally:
        stop_server(server)

    final = check_resumed(data / "spaces" / sid, kept, final_text, replay, (BEFORE_HZ, AFTER_HZ))
    numbers = [final.media_sequence + i for i in range(len(final.segments))]
    assert numbers == sorted(set(numbers))


def worker_pid(api: Api) -> int:
    found = re.search(r"^majlis_media_worker_pid (\S+)$", api.http.get("/metrics").text, re.M)
    assert found is not None and float(found.group(1)) > 0, "no media worker"
    return int(float(found.group(1)))


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(") ", 1)[1].startswith("Z"):
                    return True  # a zombie: exited, waiting for a reaper
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False
