"""Private spaces and spaces without a recording, with real audio (issue 15).

A private space's live audio and replay are its guests' alone, checked at the origin: a
listener not on the guest list gets no playback token, and the replay's files answer 401
without one; a guest hears the host's tone in the replay. A space whose host turned
recording off leaves nothing behind: its files are deleted at the end, no replay is
listed or served, and a restart brings nothing back."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from .harness import Api, running_server, speak, wait_line
from .signal_tools import decode, tone_db


def _speak_a_while(server: object, sid: str, tone: float) -> None:
    speaker = speak(server, sid, "host", tone, 6.0)  # type: ignore[arg-type]
    try:
        wait_line(speaker, "speaking")
        time.sleep(5)
    finally:
        speaker.wait(30)


def _replay_closed(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(url).text
        if "#EXT-X-ENDLIST" in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"{url} never closed with EXT-X-ENDLIST")


def test_a_private_space_is_its_guests_alone_at_the_origin(tmp_path: Path) -> None:
    with running_server(tmp_path / "data") as server:
        api = Api(server)
        for name in ("host", "guest", "stranger"):
            api.register(name)
        body = {"title": "Board meeting", "visibility": "private"}
        sid = api.ok("host", "POST", "/api/v1/spaces", body)["id"]
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/guests", {"username": "guest"})
        joined = api.ok("guest", "POST", f"/api/v1/spaces/{sid}/join", {})
        stranger_join = api.call("stranger", "POST", f"/api/v1/spaces/{sid}/join", {})
        anon = httpx.post(f"{server.url}/api/v1/auth/anonymous").json()["token"]
        anonymous_join = httpx.post(
            f"{server.url}/api/v1/spaces/{sid}/join",
            json={},
            headers={"Authorization": f"Bearer {anon}"},
        )
        live_playlist = httpx.get(joined["playback_url"])
        listed = api.ok("stranger", "GET", "/api/v1/spaces?state=live")["spaces"]
        _speak_a_while(server, sid, 660.0)
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")

        urls = api.ok("guest", "GET", f"/api/v1/spaces/{sid}/replay")
        _replay_closed(urls["playlist_url"])
        replay = httpx.get(urls["audio_url"], timeout=30)
        refused = {
            "playlist": httpx.get(f"{server.url}/hls/{sid}/index.m3u8"),
            "audio": httpx.get(f"{server.url}/hls/{sid}/replay.m4a"),
            "stranger_urls": api.call("stranger", "GET", f"/api/v1/spaces/{sid}/replay"),
            "anonymous_urls": httpx.get(f"{server.url}/api/v1/spaces/{sid}/replay"),
            "stranger_state": api.call("stranger", "GET", f"/api/v1/spaces/{sid}/state"),
        }
        api.close()

    assert live_playlist.status_code == 200 and "#EXTM3U" in live_playlist.text
    assert stranger_join.status_code == 403 and stranger_join.json()["error"] == "not_invited"
    assert anonymous_join.status_code == 401
    assert anonymous_join.json()["error"] == "login_required"
    assert sid not in [s["id"] for s in listed]
    assert urls["expires_at"] is not None and f"/hls/{sid}/play." in urls["audio_url"]
    assert replay.status_code == 200
    heard = decode(replay.content)
    assert len(heard) > 48000 * 3
    assert tone_db(heard, 660.0) > -40, "the guest's replay holds the host's tone"
    statuses = {name: answer.status_code for name, answer in refused.items()}
    assert statuses == {
        "playlist": 401,
        "audio": 401,
        "stranger_urls": 403,
        "anonymous_urls": 401,
        "stranger_state": 403,
    }
    assert refused["audio"].json()["error"] == "token_required"


def test_a_space_not_recorded_leaves_nothing_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        api = Api(server)
        for name in ("host", "fan"):
            api.register(name)
        body = {"title": "Off the record", "recording": False}
        space = api.ok("host", "POST", "/api/v1/spaces", body)
        sid = space["id"]
        live = api.ok("fan", "POST", f"/api/v1/spaces/{sid}/join", {})
        _speak_a_while(server, sid, 440.0)
        live_playlist = httpx.get(live["playback_url"])
        clip = api.call("fan", "POST", f"/api/v1/spaces/{sid}/clips", {"duration": 2})
        recording = data / "spaces" / sid
        had_files = recording.is_dir() and any(recording.iterdir())
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        deadline = time.monotonic() + 30
        while recording.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        after = {
            "playlist": httpx.get(f"{server.url}/hls/{sid}/index.m3u8").status_code,
            "audio": httpx.get(f"{server.url}/hls/{sid}/replay.m4a").status_code,
            "urls": httpx.get(f"{server.url}/api/v1/spaces/{sid}/replay").status_code,
        }
        replays = api.ok("fan", "GET", "/api/v1/spaces?state=ended")["spaces"]
        api.close()
    with running_server(data) as server:  # a restart resurrects nothing
        restarted = httpx.get(f"{server.url}/hls/{sid}/replay.m4a").status_code

    assert space["recording"] is False
    assert live_playlist.status_code == 200, "listeners hear it live"
    assert clip.status_code == 409 and clip.json()["error"] == "not_recorded"
    assert had_files, "live audio is packaged while the space runs"
    assert not recording.exists()
    assert after == {"playlist": 404, "audio": 404, "urls": 404}
    assert sid not in [s["id"] for s in replays]
    assert restarted == 404
