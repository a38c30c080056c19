"""Issue 3: kill -9 the node mid-space, start it again; the replay holds everything listed
before the kill, a discontinuity, and what came after."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .harness import Api, speak, start_server, stop_server, wait_line, wait_replay
from .resume_checks import check_resumed, listed_segments

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_sigkill_mid_space_resumes_the_same_recording(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        api = Api(server)
        api.register("host")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "crash"})["id"]
        before = speak(server, sid, "host", 440.0, 60)
        wait_line(before, "connected")
        time.sleep(6.0)
        kept = listed_segments(data / "spaces" / sid)
        assert len(kept) >= 2
        server.kill9()
        before.kill()
        before.wait(10)
        api.close()
    finally:
        stop_server(server)

    server = start_server(data)
    try:
        api = Api(server)
        api.login("host")
        after = speak(server, sid, "host", 660.0, 6)
        wait_line(after, "connected")
        assert after.wait(30) == 0
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        final_text = wait_replay(api, sid)
        replay = api.http.get(f"/hls/{sid}/replay.m4a").content
        api.close()
    finally:
        stop_server(server)

    final = check_resumed(data / "spaces" / sid, kept, final_text, replay, (440.0, 660.0))
    numbers = [final.media_sequence + i for i in range(len(final.segments))]
    assert numbers == sorted(set(numbers))
