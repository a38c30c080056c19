"""Listeners through a real edge (issue 11): Varnish from Debian, configured by `majlis edge`,
in front of a real `majlis serve` with a speaker sending a tone.

Origin fetches are counted by the edge itself (varnishstat MAIN.backend_req); audio is
checked as audio (frequency and level of the tone that comes out)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from e2e.harness import MAJLIS, Api, record_live
from e2e.signal_tools import RATE, longest_gap, read_wav, tone_db
from majlis.signing import PLAYBACK, compact_key, compact_mac

from .conftest import SECRET, TONE, Edge, Live, deployment, free_port, speaking, wait_ok

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

TONE_RMS_DB = -23.0  # a -20 dBFS peak sine
SEGMENT_S = 2.0
FRESH_S = 2 * SEGMENT_S + 0.5
HINT = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p(\d+)-(\d+)-(\d+)\.m4s"')


@pytest.fixture
def fresh(live: Live) -> Live:
    """`live`, once a player joining now hears only audio made while this test had the
    machine (a `realtime` test). The module's speaker also talks between tests, while the
    other test process may starve it, and ffmpeg starts at the newest whole segment: audio
    up to two segments old, which would be judged as if made now."""
    time.sleep(FRESH_S)
    return live


def _tone_heard(wav: Path, seconds: float) -> None:
    """`seconds` of audio; from the tone's first sample on (a player may start in the part
    before the speaker connected), the tone at its level without a gap."""
    samples = read_wav(wav)
    assert len(samples) >= (seconds - 0.1) * RATE, f"only {len(samples) / RATE:.2f} s of audio"
    onset = int(np.argmax(np.abs(samples) > 0.01))
    assert onset < SEGMENT_S * RATE, f"silence for the first {onset / RATE:.2f} s"
    heard = samples[onset:]
    assert abs(tone_db(heard, TONE) - TONE_RMS_DB) < 3.0
    assert longest_gap(heard) < 0.05


@pytest.mark.realtime
def test_ffmpeg_hears_the_tone_through_the_edge(fresh: Live, tmp_path: Path) -> None:
    joined = fresh.join()
    assert joined["playback_url"].startswith(f"{fresh.edge}/hls/{fresh.space}/play.")
    out = tmp_path / "ffmpeg.wav"
    fetches = fresh.deployment.edge.origin_fetches()
    record_live(joined["playback_url"], out, 4)
    _tone_heard(out, 4)
    assert fresh.deployment.edge.origin_fetches() > fetches  # it went through the edge


@pytest.mark.realtime
def test_majlis_listen_hears_the_tone_through_the_edge(fresh: Live, tmp_path: Path) -> None:
    out = tmp_path / "listen.wav"
    server = fresh.deployment.server
    listener = subprocess.run(
        [
            MAJLIS,
            "listen",
            fresh.space,
            "--server",
            server.url,
            "--out",
            str(out),
            "--duration",
            "4",
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listener.returncode == 0, listener.stderr
    _tone_heard(out, 4)


async def _fetch_all(urls: list[str]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(await asyncio.gather(*(client.get(url) for url in urls)))


def test_a_crowd_with_its_own_tokens_costs_one_origin_fetch_per_url(live: Live) -> None:
    listeners = [live.join()["playback_url"].rsplit("/", 1)[0] for _ in range(30)]
    assert len(set(listeners)) == 30  # every listener has a token of their own
    playlist = httpx.get(f"{listeners[0]}/index.m3u8").text
    hint = HINT.search(playlist)
    assert hint is not None, playlist
    life, msn, part = hint.groups()
    edge = live.deployment.edge

    before = edge.origin_fetches()
    reloads = asyncio.run(
        _fetch_all([f"{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}" for base in listeners])
    )
    assert {answer.status_code for answer in reloads} == {200}
    assert len({answer.content for answer in reloads}) == 1
    assert edge.origin_fetches() - before == 1

    before = edge.origin_fetches()
    parts = asyncio.run(_fetch_all([f"{base}/p{life}-{msn}-{part}.m4s" for base in listeners]))
    assert {answer.status_code for answer in parts} == {200}
    assert len({answer.content for answer in parts}) == 1 and parts[0].content
    assert edge.origin_fetches() - before == 1


def _signed(space: str, member: str, expiry: int, secret: str = SECRET) -> str:
    body = f"{PLAYBACK}.{space}.{member}.{expiry}"
    return f"{body}.{compact_mac(compact_key(secret.encode(), PLAYBACK), body)}"


def test_bad_tokens_are_refused_by_the_edge_alone(live: Live) -> None:
    good = live.join()["playback_token"]
    member = good.split(".")[2]
    later = int(time.time()) + 600
    cases = {
        "forged": (_signed(live.space, member, later, secret="not-the-secret-" * 4), 401),
        "expired": (_signed(live.space, member, int(time.time()) - 1), 401),
        "altered expiry": (good.replace(good.split(".")[3], str(later)), 401),
        "other space": (_signed(live.other_space, member, later), 403),
        "truncated": (good[:-5], 401),
        "no mac": (f"{PLAYBACK}.{live.space}.{member}.{later}", 401),
    }
    codes = {401: {"invalid_token", "token_expired"}, 403: {"token_mismatch"}}
    edge = live.deployment.edge
    before = edge.origin_fetches()
    for name, (token, status) in cases.items():
        files = ("index.m3u8", "init.mp4", "s1.m4s", "p1-1-1.m4s", "stream", "main.m3u8")
        for file in (*files, "captions.m3u8", "c1.vtt"):
            url = f"{live.edge}/hls/{live.space}/{token}/{file}"
            answer = httpx.get(url, headers={"Origin": "http://app.example"})
            assert answer.status_code == status, (name, file, answer.text)
            assert answer.json()["error"] in codes[status], (name, answer.json())
            assert answer.headers["cache-control"] == "no-store"
            # The web app reads the refusal's status only with one CORS header.
            cors = answer.headers.get_list("access-control-allow-origin")
            assert cors == ["*"], (name, file, cors)
    assert edge.origin_fetches() == before
    expired = httpx.get(f"{live.edge}/hls/{live.space}/{cases['expired'][0]}/index.m3u8")
    assert expired.json()["error"] == "token_expired"


def test_a_part_without_a_token_is_refused_at_the_edge_and_at_the_origin(live: Live) -> None:
    edge = live.deployment.edge
    before = edge.origin_fetches()
    at_edge = httpx.get(f"{live.edge}/hls/{live.space}/p1-1-1.m4s")
    assert at_edge.status_code == 401 and at_edge.json()["error"] == "token_required"
    assert edge.origin_fetches() == before
    at_origin = httpx.get(f"{live.deployment.server.url}/hls/{live.space}/p1-1-1.m4s")
    assert at_origin.status_code == 401 and at_origin.json()["error"] == "token_required"
    # Without a token the edge asks the origin, which refuses a live space's files too.
    for file in ("index.m3u8", "init.mp4", "s0.m4s"):
        answer = httpx.get(f"{live.edge}/hls/{live.space}/{file}")
        assert answer.status_code == 401 and answer.json()["error"] == "token_required"


def test_the_captions_files_pass_the_edge_with_a_token(live: Live) -> None:
    """This server has no caption model: main.m3u8 lists the audio alone, and the captions
    playlist is the origin's 404 (its reason), not the edge's refusal of an unknown name."""
    base = live.join()["playback_url"].rsplit("/", 1)[0]
    multivariant = httpx.get(f"{base}/main.m3u8")
    assert multivariant.status_code == 200, multivariant.text
    assert multivariant.text.endswith("\nindex.m3u8\n")
    assert httpx.get(f"{base}/{multivariant.text.splitlines()[-1]}").status_code == 200
    for file in ("captions.m3u8", "c7.vtt"):
        answer = httpx.get(f"{base}/{file}")
        assert answer.status_code == 404
        assert "no such resource on this edge" not in answer.json()["reason"], answer.text


def test_bad_input_gets_a_4xx_from_the_edge(live: Live) -> None:
    base = live.join()["playback_url"].rsplit("/", 1)[0]
    edge = live.deployment.edge
    before = edge.origin_fetches()
    cases = {
        "huge query": (f"{base}/index.m3u8?_HLS_msn=1&x={'a' * 20000}", {400, 413, 414, 431}),
        "msn not a number": (f"{base}/index.m3u8?_HLS_msn=abc", {400}),
        "msn too long": (f"{base}/index.m3u8?_HLS_msn=12345678901", {400}),
        "negative part": (f"{base}/index.m3u8?_HLS_msn=1&_HLS_part=-1", {400}),
        "part without msn": (f"{base}/index.m3u8?_HLS_part=1", {400}),
        "msn twice": (f"{base}/index.m3u8?_HLS_msn=1&_HLS_msn=2", {400}),
        "bad skip": (f"{base}/index.m3u8?_HLS_skip=NO", {400}),
        "traversal": (f"{live.edge}/hls/../../etc/passwd", {400, 404}),
        "encoded traversal": (f"{base}/%2e%2e/%2e%2e/secret.key", {400, 404}),
        "unknown file": (f"{base}/secret.key", {404}),
        "unknown path": (f"{live.edge}/api/v1/auth/me", {404}),
    }
    with httpx.Client() as client:
        for name, (url, statuses) in cases.items():
            answer = client.get(url)
            assert answer.status_code in statuses, (name, answer.status_code, answer.text)
        posted = client.post(f"{base}/index.m3u8", content=b"x")
        assert posted.status_code == 405, posted.text
    assert edge.origin_fetches() == before


@pytest.mark.realtime
def test_two_tiers_edge_shield_origin(fresh: Live, tmp_path: Path) -> None:
    """Edges in front of a shield in front of the origin, all from the same generator: the
    origin sees the shield alone, once per URL."""
    server = fresh.deployment.server
    shield = Edge(
        server.url, free_port(), Path(tempfile.mkdtemp(prefix="majlis-shield-")), server.env
    )
    front = Edge(
        shield.url, free_port(), Path(tempfile.mkdtemp(prefix="majlis-front-")), server.env
    )
    try:
        shield.start()
        front.start()
        wait_ok(f"{front.url}/healthz")
        urls = [fresh.join()["playback_url"].replace(fresh.edge, front.url) for _ in range(20)]
        playlist = httpx.get(urls[0]).text
        hint = HINT.search(playlist)
        assert hint is not None, playlist
        life, msn, part = hint.groups()
        bases = [url.rsplit("/", 1)[0] for url in urls]
        before = front.origin_fetches(), shield.origin_fetches()
        parts = asyncio.run(_fetch_all([f"{base}/p{life}-{msn}-{part}.m4s" for base in bases]))
        assert {answer.status_code for answer in parts} == {200}
        after = front.origin_fetches(), shield.origin_fetches()
        # 20 listeners at the edge: one request from it to the shield, one from there on.
        assert (after[0] - before[0], after[1] - before[1]) == (1, 1)

        out = tmp_path / "two-tiers.wav"
        record_live(urls[1], out, 3)
        _tone_heard(out, 3)
    finally:
        front.stop()
        shield.stop()
        shutil.rmtree(front.workdir, ignore_errors=True)
        shutil.rmtree(shield.workdir, ignore_errors=True)


def test_the_state_document_is_cached_at_the_edge(live: Live) -> None:
    edge = live.deployment.edge
    url = f"{live.edge}/api/v1/spaces/{live.space}/state"
    first = httpx.get(url)
    assert first.status_code == 200 and first.json()["space"]["id"] == live.space
    before = edge.origin_fetches()
    answers = asyncio.run(_fetch_all([url] * 20))
    assert {answer.status_code for answer in answers} == {200}
    assert edge.origin_fetches() - before <= 2  # max-age=1: at most one refresh in between


def test_a_ban_reaches_the_edge_within_the_token_lifetime(tmp_path: Path) -> None:
    ttl = 4.0
    with deployment(tmp_path, playback_ttl=str(ttl)) as running:
        api = Api(running.server)
        api.register("host")
        guest = api.register("guest")
        space = api.ok("host", "POST", "/api/v1/spaces", {"title": "Bans"})["id"]
        joined = api.ok("guest", "POST", f"/api/v1/spaces/{space}/join", {})
        playlist = joined["playback_url"]
        assert httpx.get(playlist).status_code in (200, 404)  # served, or nothing recorded yet
        banned_at = time.monotonic()
        api.ok("host", "POST", f"/api/v1/spaces/{space}/participants/{guest}/remove", {"ban": True})
        beat = api.call(
            "guest",
            "POST",
            f"/api/v1/spaces/{space}/heartbeat",
            {"playback_token": joined["playback_token"]},
        )
        assert beat.status_code == 403 and beat.json()["error"] == "banned"
        rejoin = api.call("guest", "POST", f"/api/v1/spaces/{space}/join", {})
        assert rejoin.status_code == 403
        while True:
            answer = httpx.get(joined["playback_url"].replace("index.m3u8", "init.mp4"))
            if answer.status_code == 401:
                break
            assert time.monotonic() - banned_at < ttl + 1.5, "the edge still serves the banned"
            time.sleep(0.2)
        assert answer.json()["error"] == "token_expired"
        assert time.monotonic() - banned_at <= ttl + 1.5
        api.close()


@pytest.mark.realtime
def test_playback_recovers_when_the_edge_restarts(tmp_path: Path) -> None:
    with deployment(tmp_path) as running, speaking(running, "Restart") as (_, space):
        out = tmp_path / "listen.wav"
        listener = subprocess.Popen(
            [
                MAJLIS,
                "listen",
                space,
                "--server",
                running.server.url,
                "--out",
                str(out),
                "--duration",
                "12",
            ],
            env=running.server.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(4.0)
        running.edge.stop()
        time.sleep(1.0)  # listeners meet a closed port
        running.edge.start()
        _, stderr = listener.communicate(timeout=90)
        assert listener.returncode == 0, stderr
        # Nothing lost: the player waited for the edge and went on where it was.
        _tone_heard(out, 12)
