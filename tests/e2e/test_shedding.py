"""Issue 13, R2, as `majlis serve` runs: a worker behind its target refuses writes as their
connections read them, before uvicorn parses them (majlis/serving/early.py), with the
answer the application itself gives: 503, the same JSON, Retry-After.

The target is 1 ms, so that a burst from this test puts any machine behind it."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import httpx

from .harness import running_server

CONNECTIONS = 200
BURST_S = 20.0  # at most; it ends once the server has refused some as they were read


async def flood(host: str, port: int, until: float) -> list[bytes]:
    """Heartbeats with no token from CONNECTIONS keep-alive connections, each sending its
    next as soon as it is answered; the heads of the 503s."""
    refused: list[bytes] = []
    request = (
        b"POST /api/v1/spaces/nosuch/heartbeat HTTP/1.1\r\nhost: t\r\n"
        b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )

    async def one() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.monotonic() < until:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"content-length: (\d+)", head.lower())
                body = await reader.readexactly(int(length.group(1)) if length else 0)
                if head.startswith(b"HTTP/1.1 503"):
                    refused.append(head.lower() + body)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the server closed an idle-looking connection: enough was seen
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(CONNECTIONS)))
    return refused


def read_refusals(metrics: str) -> float:
    found = re.search(r'^majlis_shed_total\{stage="read"\} (\S+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_flood_of_writes_is_refused_as_it_is_read(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", overload_target_ms="1", media="false") as server:
        url = httpx.URL(server.url)
        with httpx.Client(base_url=server.url, timeout=20) as http:
            assert read_refusals(http.get("/metrics").text) == 0.0
            deadline = time.monotonic() + BURST_S
            refused: list[bytes] = []
            while time.monotonic() < deadline and read_refusals(http.get("/metrics").text) == 0:
                refused += asyncio.run(flood(url.host, url.port or 80, time.monotonic() + 2))
            early = read_refusals(http.get("/metrics").text)
            assert early > 0, f"no write was refused as it was read in {BURST_S} s"
            assert refused
            for answer in refused:
                assert b'"error":"overloaded"' in answer.replace(b" ", b"")
                assert re.search(rb"\r\nretry-after: [123]\r\n", answer)
                assert re.search(rb"\r\nretry-after-ms: \d{4}\r\n", answer)
                assert b"cache-control: no-store" in answer
            # Reads are never shed: the space list is served throughout.
            assert http.get("/api/v1/spaces").status_code == 200


def metric(metrics: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", metrics, re.M)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


def test_with_a_door_writes_wait_for_a_place_and_none_is_kept_after(tmp_path: Path) -> None:
    """`overload_writes_at_once`: one write in the app at a time, the rest waiting at the
    door (majlis/serving/door.py); refused if they waited past the target. After the
    flood every place is free again."""
    with running_server(
        tmp_path / "data", overload_target_ms="5", overload_writes_at_once="1", media="false"
    ) as server:
        url = httpx.URL(server.url)
        with httpx.Client(base_url=server.url, timeout=20) as http:
            refused = asyncio.run(flood(url.host, url.port or 80, time.monotonic() + 3))
            metrics = http.get("/metrics").text
            assert metric(metrics, "majlis_door_waited_total") > 0
            assert metric(metrics, "majlis_door_wait_seconds") >= 0.0
            assert refused and read_refusals(metrics) > 0  # some waited past 5 ms
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                metrics = http.get("/metrics").text
                if metric(metrics, "majlis_door_inside") == 0:
                    break
                time.sleep(0.05)
            assert metric(metrics, "majlis_door_inside") == 0
            assert metric(metrics, "majlis_door_waiting") == 0
            # A write after it goes straight in, to the app's own answer.
            answer = http.post("/api/v1/spaces/nosuch/heartbeat", json={})
            assert answer.status_code == 400 and "playback_token" in answer.text
