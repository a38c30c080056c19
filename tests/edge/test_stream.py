"""The listener stream at the edge (nginx + nchan, fed once per space by the feeder): the
tone comes out of it, a crowd costs the origin one segment stream, a stream ends when its
token's window does, and bad tokens never reach anyone behind the edge."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import httpx
import pytest

from e2e.harness import Api
from e2e.signal_tools import RATE, decode, longest_gap, tone_db

from .conftest import TONE, Live, deployment, speaking

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240), pytest.mark.realtime]

TONE_RMS_DB = -23.0  # a -20 dBFS peak sine
ORIGIN = {"Origin": "http://app.example"}  # the web app is on another origin than the edge


def _init_of(joined: dict[str, str]) -> bytes:
    answer = httpx.get(joined["playback_url"].replace("index.m3u8", "init.mp4"))
    assert answer.status_code == 200, answer.text
    return answer.content


async def _read_streams(urls: list[str], seconds: float) -> list[bytes]:
    """Every stream's bytes after `seconds` (the connections are then closed)."""

    async def one(client: httpx.AsyncClient, url: str) -> bytes:
        got = bytearray()
        try:
            async with asyncio.timeout(seconds):
                async with client.stream("GET", url, headers=ORIGIN) as response:
                    assert response.status_code == 200, response.status_code
                    assert response.headers["cache-control"] == "no-store"
                    # A browser refuses a stream that names two origins or not its own.
                    cors = response.headers.get_list("access-control-allow-origin")
                    assert cors == ["*"], cors
                    assert response.headers["x-majlis-stream-parts"] == "1"
                    # When the window ends, at most the default horizon and window ahead.
                    assert 0 < float(response.headers["x-majlis-stream-left"]) <= 150
                    async for chunk in response.aiter_raw():
                        got += chunk
        except TimeoutError:
            pass
        return bytes(got)

    limits = httpx.Limits(max_connections=None)
    async with httpx.AsyncClient(timeout=seconds + 5, limits=limits) as client:
        return list(await asyncio.gather(*(one(client, url) for url in urls)))


def test_the_tone_comes_out_of_the_stream(live: Live) -> None:
    joined = live.join()
    assert joined["stream_url"] == f"{live.edge}/hls/{live.space}/{joined['playback_token']}/stream"
    init = _init_of(joined)
    started = time.monotonic()
    (body,) = asyncio.run(_read_streams([joined["stream_url"]], 5.0))
    samples = decode(init + body)
    # The first listener starts the space's feed at the current segment's start, so up to
    # a segment (2 s) comes at once; then one fragment per part as it is made.
    seconds = len(samples) / RATE
    assert 4.0 <= seconds <= time.monotonic() - started + 2.5, f"{seconds:.2f} s of audio"
    assert abs(tone_db(samples, TONE) - TONE_RMS_DB) < 3.0
    assert longest_gap(samples) < 0.05


def test_a_crowd_of_streams_costs_the_origin_one_segment_stream(live: Live) -> None:
    urls = [live.join()["stream_url"] for _ in range(40)]
    edge = live.deployment.edge
    before = edge.origin_fetches()
    started = time.monotonic()
    bodies = asyncio.run(_read_streams(urls, 6.0))
    fetched = edge.origin_fetches() - before
    elapsed = time.monotonic() - started
    assert all(len(body) > 20_000 for body in bodies), sorted(len(b) for b in bodies)[:3]
    # One segment stream per 2 s segment (plus a playlist when the feed starts), however
    # many listen: the feeder pulls once through Varnish, nginx writes to all.
    assert fetched <= elapsed / 2.0 + 3, fetched


def test_a_stream_ends_when_its_token_window_does(tmp_path: Path) -> None:
    ttl, window = 4.0, 2
    edge_args = ("--stream-window", str(window), "--stream-horizon", "4")
    with deployment(tmp_path, edge_args, playback_ttl=str(ttl)) as running:
        api = Api(running.server)
        api.register("host")
        guest = api.register("guest")
        space = api.ok("host", "POST", "/api/v1/spaces", {"title": "Windows"})["id"]
        joined = api.ok("guest", "POST", f"/api/v1/spaces/{space}/join", {})
        api.ok("host", "POST", f"/api/v1/spaces/{space}/participants/{guest}/remove", {"ban": True})
        started = time.monotonic()
        with httpx.stream("GET", joined["stream_url"], timeout=ttl + window + 5) as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                pass
        ended = time.monotonic() - started
        # The channel of the token's window is deleted when the window ends, and the
        # banned listener gets no new token to come back with.
        assert ended <= ttl + window + 1.5, f"the stream lasted {ended:.1f} s"
        again = httpx.get(joined["stream_url"])
        assert again.status_code == 401 and again.json()["error"] == "token_expired"
        api.close()


def test_parts_sent_two_at_a_time_still_play_the_tone(tmp_path: Path) -> None:
    """`--stream-parts 2`: the feeder joins two fragments per message; the stream decodes
    to the tone with no gap, and the messages come a segment's quarter (512 ms) apart."""
    edge_args = ("--stream-parts", "2")
    with deployment(tmp_path, edge_args) as running, speaking(running, "Pairs", "guest") as live:
        api, space = live
        joined = api.ok("guest", "POST", f"/api/v1/spaces/{space}/join", {})
        init = _init_of(joined)
        body, reads = bytearray(), []
        with httpx.stream("GET", joined["stream_url"], timeout=10) as response:
            assert response.status_code == 200
            # The player keeps two parts behind the newest audio, not one.
            assert response.headers["x-majlis-stream-parts"] == "2"
            started = time.monotonic()
            for chunk in response.iter_raw():
                body += chunk
                reads.append(time.monotonic())
                if reads[-1] - started > 5.0:
                    break
    samples = decode(init + bytes(body))
    assert abs(tone_db(samples, TONE) - TONE_RMS_DB) < 3.0
    assert longest_gap(samples) < 0.05
    # A message can arrive in more than one read: count the waits between messages.
    waits = sorted(b - a for a, b in itertools.pairwise(reads) if b - a > 0.1)
    assert waits and waits[len(waits) // 2] > 0.4, waits
