"""Issue 13: a restart forgets no logout and no ban. The embedded default keeps its bus in
memory; the state is stored in SQL and put back on the bus before the first request."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest

from .harness import Api, start_server, stop_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def refused(api: Api, space_id: str, playlist: str) -> None:
    """The logged-out session and the banned listener get nothing, however they try."""
    for method, path in (("GET", "/api/v1/auth/me"), ("POST", "/api/v1/spaces")):
        answer = api.call("gone", method, path, {"title": "back from the dead"})
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] == "token_revoked"
    playback_token = playlist.split("/")[-2]  # /hls/{space}/{token}/index.m3u8
    for path, body in (("join", {}), ("heartbeat", {"playback_token": playback_token})):
        answer = api.call("troll", "POST", f"/api/v1/spaces/{space_id}/{path}", body)
        assert answer.status_code == 403, (path, answer.text)
        assert answer.json()["error"] == "banned"
    assert api.http.get(playlist).status_code == 403  # the old playback token


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_logouts_and_bans_survive_a_restart(tmp_path: Path, how: str) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    try:
        api = Api(server)
        api.register("host")
        api.register("gone")
        troll = api.register("troll")
        sid = api.ok("host", "POST", "/api/v1/spaces", {"title": "Remembered"})["id"]
        joined = api.ok("troll", "POST", f"/api/v1/spaces/{sid}/join", {})
        playlist = urlparse(joined["playback_url"]).path
        api.ok("gone", "POST", "/api/v1/auth/logout")
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/participants/{troll}/remove", {"ban": True})
        refused(api, sid, playlist)
        if how == "kill9":
            server.kill9()
        else:
            stop_server(server)
        tokens = api.tokens
        api.close()

        server = start_server(data)
        api = Api(server)
        api.tokens = tokens
        refused(api, sid, playlist)
        # Nothing else was lost: the host still acts, and a new login of `gone` works.
        assert api.call("host", "GET", "/api/v1/auth/me").status_code == 200
        api.login("gone")
        assert api.call("gone", "GET", "/api/v1/auth/me").status_code == 200
        api.close()
    finally:
        stop_server(server)
