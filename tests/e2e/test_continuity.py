"""Issue 15, as people would meet it: the host's audio goes, the co-host who is talking
becomes host; then nobody runs the space, and it ends by itself with its replay intact.

Real `majlis serve`, real `majlis speak` for the host (440 Hz) and the co-host (660 Hz);
each speaker's `--duration` ends its connection, as a closed tab would. The absence and
grace are 2 s here instead of 60 and 120.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import m3u8

from .harness import Api, running_server, speak, wait_line, wait_replay

ABSENCE_S = 2.0


def wait_for(api: Api, space_id: str, what: str, test: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        space: dict[str, Any] = api.ok("hana", "GET", f"/api/v1/spaces/{space_id}")
        if test(space):
            return space
        time.sleep(0.2)
    raise AssertionError(f"{what} never happened; the space: {space}")


def test_an_absent_host_is_replaced_then_an_abandoned_space_ends(tmp_path: Path) -> None:
    config = {"host_absence_s": str(ABSENCE_S), "host_grace_s": str(ABSENCE_S)}
    with running_server(tmp_path, **config) as server:
        api = Api(server)
        try:
            hana, sami = api.register("hana"), api.register("sami")
            space_id = api.ok("hana", "POST", "/api/v1/spaces", {"title": "continuity"})["id"]
            api.ok("hana", "POST", f"/api/v1/spaces/{space_id}/cohosts", {"user_id": sami})
            host = speak(server, space_id, "hana", 440, 4)
            cohost = speak(server, space_id, "sami", 660, 10)
            wait_line(host, "connected")
            wait_line(cohost, "connected")
            host.wait(30)  # the host's connection closes

            handed = wait_for(api, space_id, "the handover", lambda s: s["host_id"] == sami)
            assert handed["state"] == "live", "the co-host took over a live space"
            stage = api.ok("hana", "GET", f"/api/v1/spaces/{space_id}/participants")
            roles = {p["user_id"]: p["role"] for p in stage["participants"]}
            assert roles == {sami: "host", hana: "cohost"}
            # The new host runs the space; the old one no longer can end it.
            assert api.call("hana", "POST", f"/api/v1/spaces/{space_id}/end").status_code == 403

            cohost.wait(40)  # now nobody with audio is left to take over
            ended = wait_for(api, space_id, "the end", lambda s: s["state"] == "ended")
            assert ended["host_id"] == sami
            replay = m3u8.loads(wait_replay(api, space_id))
            recorded = sum(segment.duration for segment in replay.segments)
            assert recorded > 7, f"the replay holds {recorded:.1f} s of a ~10 s space"
        finally:
            api.close()
