"""Issue 3: kill -9 the node mid-space, start it again; the replay holds everything listed
before the kill, a discontinuity, and what came after."""

from __future__ import annotations

import time
from pathlib import Path

import m3u8
import pytest

from .harness import Api, speak, start_server, stop_server, wait_line, wait_replay
from .signal_tools import RATE, decode, tone_db

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
        listed = m3u8.loads((data / "spaces" / sid / "index.m3u8").read_text())
        kept = {s.uri: (data / "spaces" / sid / s.uri).read_bytes() for s in listed.segments}
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
        login = api.http.post(
            "/api/v1/auth/login", json={"username": "host", "password": "password-e2e"}
        ).json()
        api.tokens["host"] = login["token"]
        after = speak(server, sid, "host", 660.0, 6)
        wait_line(after, "connected")
        assert after.wait(30) == 0
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        final_text = wait_replay(api, sid)
        replay = api.http.get(f"/hls/{sid}/replay.m4a").content
        api.close()
    finally:
        stop_server(server)

    final = m3u8.loads(final_text)
    assert final.is_endlist
    uris = [s.uri for s in final.segments]
    for uri, data_bytes in kept.items():
        assert uri in uris, f"{uri} was listed before the kill and is gone"
        assert (data / "spaces" / sid / uri).read_bytes() == data_bytes, f"{uri} changed"
    first_new = next(i for i, s in enumerate(final.segments) if s.discontinuity)
    assert first_new >= len(kept), "discontinuity before the old segments end"
    numbers = [final.media_sequence + i for i in range(len(final.segments))]
    assert numbers == sorted(set(numbers))
    assert "#EXT-X-DISCONTINUITY" in final_text

    audio = decode(replay)
    old_seconds = sum(s.duration for s in final.segments[:first_new])
    old_part = audio[int(1.0 * RATE) : int((old_seconds - 0.5) * RATE)]
    new_part = audio[int((old_seconds + 2.0) * RATE) :]
    assert tone_db(old_part, 440.0) > -26 and tone_db(old_part, 660.0) < -50
    assert tone_db(new_part, 660.0) > -26 and tone_db(new_part, 440.0) < -50
