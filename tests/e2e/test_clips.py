"""Issue 14, clips, end to end: `majlis serve`, `majlis speak` sending tone bursts, clips
of the live space (its last seconds) and of the replay, checked as audio against the
replay itself; their pages; and every bad request refused with a reason."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from media.audio_analysis import ffprobe_json

from .harness import Api, Server, running_server, speak, wait_line, wait_replay
from .signal_tools import RATE, Floats, decode

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TONE = 440.0
# Bursts every 3.2 s: not a multiple of the 2 s segments, so a clip cut one segment off
# would show its bursts 2 s (or 1.2 s) away from where the replay has them.
BURST = (0.4, 2.8)
SPEAK_S = 24.0


QUIET_S = 0.5


def onsets(samples: Floats, threshold: float = 0.05) -> list[float]:
    """Seconds at which the level first rises above `threshold` after QUIET_S below it."""
    hop = RATE // 200  # 5 ms
    levels = np.array(
        [np.sqrt(np.mean(samples[i : i + hop] ** 2)) for i in range(0, len(samples) - hop, hop)]
    )
    found, quiet = [], 0
    for index, level in enumerate(levels):
        if level > threshold and quiet * hop >= RATE * QUIET_S:
            found.append(index * hop / RATE)
        quiet = 0 if level > threshold else quiet + 1
    return found


def ffprobe(data: bytes, tmp: Path) -> dict[str, object]:
    path = tmp / "clip.m4a"
    path.write_bytes(data)
    return ffprobe_json(path)


def assert_clip_is_the_replay(clip: Floats, replay: Floats, start: float) -> None:
    """Every burst in the clip is a burst of the replay, `start` seconds later."""
    in_clip = onsets(clip)
    # An onset needs QUIET_S of quiet before it, which a clip has only once it has lasted
    # that long: a burst in its first QUIET_S is an onset of the replay but not of the clip.
    end = start + len(clip) / RATE
    in_replay = [t - start for t in onsets(replay) if start + QUIET_S <= t < end]
    assert len(in_clip) >= 2, in_clip
    assert len(in_clip) == len(in_replay), (in_clip, in_replay)
    assert np.allclose(in_clip, in_replay, atol=0.015), (in_clip, in_replay)


def make_clip(api: Api, who: str, space_id: str, body: dict[str, object]) -> dict[str, object]:
    answer = api.call(who, "POST", f"/api/v1/spaces/{space_id}/clips", body)
    assert answer.status_code == 201, answer.text
    clip: dict[str, object] = answer.json()
    return clip


def audio_of(server: Server, clip: dict[str, object]) -> bytes:
    answer = httpx.get(f"{server.url}/api/v1/clips/{clip['id']}/audio.m4a", timeout=20)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/mp4"
    return answer.content


def refused(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["reason"], body
    return str(body["error"])


def test_clips_of_a_live_space_and_of_its_replay(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", clip_burst="4") as server:
        api = Api(server)
        api.register("host")
        api.register("fan")
        title = 'Launch <script>alert("x")</script> & more'
        space = api.ok("host", "POST", "/api/v1/spaces", {"title": title})
        sid = space["id"]
        on, off = BURST
        speaker = speak(server, sid, "host", TONE, SPEAK_S, "--burst", f"{on},{off}")
        try:
            wait_line(speaker, "speaking")
            time.sleep(12)
            # While live: the last 8 s, by a listener.
            live = make_clip(api, "fan", sid, {"duration": 8})
            assert abs(float(live["duration"]) - 8) < 1e-6
            live_audio = audio_of(server, live)
            speaker.wait(SPEAK_S + 30)
        finally:
            if speaker.poll() is None:
                speaker.kill()
        api.ok("host", "POST", f"/api/v1/spaces/{sid}/end")
        wait_replay(api, sid)
        replay = decode(httpx.get(f"{server.url}/hls/{sid}/replay.m4a", timeout=30).content)

        # The live clip holds what the replay holds at its position.
        assert_clip_is_the_replay(decode(live_audio), replay, float(live["start"]))
        # Asked for again after the end, it is cut from the ended recording: same audio.
        assert_clip_is_the_replay(decode(audio_of(server, live)), replay, float(live["start"]))

        # 14 s of the replay (tests/media/test_clip.py cuts 30 s ones).
        clip = make_clip(api, "fan", sid, {"start": 4.5, "duration": 14, "title": "the bit"})
        data = audio_of(server, clip)
        probe = ffprobe(data, tmp_path)
        stream = probe["streams"][0]  # type: ignore[index]
        assert stream["codec_name"] == "aac"
        assert abs(float(probe["format"]["duration"]) - 14) <= 0.05, probe["format"]  # type: ignore[index]
        samples = decode(data)
        assert abs(len(samples) / RATE - 14) <= 0.05, len(samples) / RATE
        assert_clip_is_the_replay(samples, replay, 4.5)

        # Its page: server-rendered, link previews included, the title escaped.
        page = httpx.get(clip["page_url"], timeout=10)  # type: ignore[arg-type]
        assert page.status_code == 200
        assert 'property="og:title" content="the bit"' in page.text
        assert f'property="og:audio" content="{clip["audio_url"]}"' in page.text
        live_page = httpx.get(live["page_url"], timeout=10).text  # type: ignore[arg-type]
        assert "<script>alert" not in live_page
        assert "Launch &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in live_page
        assert "content-security-policy" in page.headers

        listed = api.http.get(f"/api/v1/spaces/{sid}/clips").json()["clips"]
        assert {c["id"] for c in listed} == {live["id"], clip["id"]}
        check_refusals(server, api, sid, clip, replay_seconds=len(replay) / RATE)


def check_refusals(
    server: Server, api: Api, sid: str, clip: dict[str, object], replay_seconds: float
) -> None:
    clips = f"/api/v1/spaces/{sid}/clips"
    for body in (
        {"duration": 0},
        {"duration": 61},
        {"duration": 0.5},
        {"duration": "ten"},
        {"duration": 10, "start": -1},
        {"duration": 10, "start": replay_seconds},
        {"duration": 10, "unknown": 1},
    ):
        refused(api.call("fan", "POST", clips, body), 400)
    # A fresh client: api.http keeps the session cookies of the accounts it registered.
    stranger = httpx.post(f"{server.url}{clips}", json={"duration": 5}, timeout=10)
    assert refused(stranger, 401) == "token_required"
    refused(api.call("fan", "POST", "/api/v1/spaces/nosuchspace/clips", {"duration": 5}), 404)
    refused(api.http.get("/api/v1/clips/nosuchclip"), 404)
    refused(api.http.get("/api/v1/clips/nosuchclip/audio.m4a"), 404)
    assert httpx.get(f"{server.url}/clips/nosuchclip", timeout=10).status_code == 404
    later = time.time() + 3600
    scheduled = api.ok("host", "POST", "/api/v1/spaces", {"title": "soon", "scheduled_for": later})
    refused(
        api.call("fan", "POST", f"/api/v1/spaces/{scheduled['id']}/clips", {"duration": 5}), 409
    )
    # The limit: a burst of 4 here (the bucket has refilled since the first two clips).
    made = 0
    limited = api.call("fan", "POST", clips, {"duration": 5, "start": 1})
    while limited.status_code == 201 and made < 5:
        made += 1
        limited = api.call("fan", "POST", clips, {"duration": 5, "start": 1})
    assert made <= 4
    assert refused(limited, 429) == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    # Deleting: not by someone else; by the host.
    api.register("other")
    assert refused(api.call("other", "DELETE", f"/api/v1/clips/{clip['id']}"), 403) == "not_yours"
    assert api.call("host", "DELETE", f"/api/v1/clips/{clip['id']}").status_code == 204
    refused(api.http.get(f"/api/v1/clips/{clip['id']}/audio.m4a"), 404)
