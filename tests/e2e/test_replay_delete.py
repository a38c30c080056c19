"""A host deletes an ended space's replay (issue 15): the recording's files, its clips and
its transcript go; the space's page and its audit log stay; nothing comes back after a
restart. Asking twice, asking as someone else, or while live gets a 4xx with a reason."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from .harness import Api, running_server, speak, wait_line, wait_replay


def test_a_deleted_replay_is_gone_for_good(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        api = Api(server)
        for name in ("host", "fan"):
            api.register(name)
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Short talk"})["id"]
        live = api.call("host", "DELETE", f"/api/v1/spaces/{sid}/replay")
        speaker = speak(server, sid, "host", 440.0, 6.0)
        try:
            wait_line(speaker, "speaking")
            time.sleep(5)
        finally:
            speaker.wait(30)
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        wait_replay(api, sid)
        clip = api.ok("fan", "POST", f"/api/v1/spaces/{sid}/clips", {"start": 1.0, "duration": 2})
        recording = data / "spaces" / sid
        had_files = recording.is_dir() and any(recording.iterdir())
        by_fan = api.call("fan", "DELETE", f"/api/v1/spaces/{sid}/replay")
        deleted = api.call("host", "DELETE", f"/api/v1/spaces/{sid}/replay")
        twice = api.call("host", "DELETE", f"/api/v1/spaces/{sid}/replay")
        after = {
            "replay": httpx.get(f"{server.url}/hls/{sid}/replay.m4a").status_code,
            "playlist": httpx.get(f"{server.url}/hls/{sid}/index.m3u8").status_code,
            "clip": api.http.get(f"/api/v1/clips/{clip['id']}").status_code,
            "clips": len(api.ok("fan", "GET", f"/api/v1/spaces/{sid}/clips")["clips"]),
            "space": api.http.get(f"/api/v1/spaces/{sid}").status_code,
        }
        audit = api.ok("host", "GET", f"/api/v1/spaces/{sid}/audit")["entries"]
        api.close()
    with running_server(data) as server:  # a restart resurrects nothing
        restarted = httpx.get(f"{server.url}/hls/{sid}/replay.m4a").status_code

    assert live.status_code == 409 and live.json()["error"] == "not_ended"
    assert had_files
    assert by_fan.status_code == 403 and by_fan.json()["error"] == "not_host"
    assert deleted.status_code == 204, deleted.text
    assert twice.status_code == 404 and twice.json()["error"] == "no_replay"
    assert not recording.exists()
    assert after == {"replay": 404, "playlist": 404, "clip": 404, "clips": 0, "space": 200}
    assert [e["actor_id"] for e in audit if e["action"] == "replay_delete"] == [api.ids["host"]]
    assert restarted == 404
