"""Issue 13: per-address limits key on the client behind a trusted proxy, and on nobody's
word but a trusted proxy's; one address cannot hold more than its share of requests."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.conftest import assert_error, running_harness, start_server
from majlis.api.client_address import ClientAddress, TrustedProxies
from majlis.api.concurrency import RequestsPerAddress
from majlis.config import ConfigError, load_config

PROXIES = TrustedProxies.parse("127.0.0.0/8, 10.0.0.0/8, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("198.51.100.1", ["203.0.113.9"], "198.51.100.1"),  # not a proxy: the header is a lie
        ("127.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("127.0.0.1", [], "127.0.0.1"),
        # The client wrote the first entry itself; our proxies appended the rest.
        ("127.0.0.1", ["1.2.3.4, 203.0.113.9, 10.0.0.5"], "203.0.113.9"),
        ("127.0.0.1", ["1.2.3.4", "203.0.113.9"], "203.0.113.9"),  # two header lines
        ("127.0.0.1", ["10.0.0.5, 10.0.0.6"], "10.0.0.5"),  # only proxies: the first of them
        ("127.0.0.1", ["not-an-ip"], "127.0.0.1"),
        ("127.0.0.1", ["203.0.113.9, junk"], "127.0.0.1"),
        ("::1", ["2001:db8::7"], "2001:db8::7"),
    ],
)
def test_the_client_is_the_first_untrusted_address_from_the_right(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert PROXIES.client(peer, forwarded) == client


def test_trusting_nobody_ignores_the_header() -> None:
    assert TrustedProxies.parse("").client("127.0.0.1", ["203.0.113.9"]) == "127.0.0.1"


@pytest.mark.parametrize("value", ["127.0.0.1/33", "localhost", "10.0.0.0/8,nope"])
def test_a_malformed_proxy_list_stops_the_program(value: str) -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        load_config(environ={"MAJLIS_TRUSTED_PROXIES": value}, flags={})


async def test_limits_follow_the_forwarded_client(tmp_path: Path) -> None:
    """Through a trusted proxy, two listeners have a write budget each; a client that
    forges the header from outside keeps its own address's budget."""
    async with running_harness(tmp_path, write_rate_ip=0.01, write_burst_ip=1) as h:

        async def anonymous(peer: str, forwarded: str) -> int:
            headers = {"X-Forwarded-For": forwarded}
            answer = await h.call("POST", "/auth/anonymous", headers=headers, ip=peer)
            return answer.status_code

        assert await anonymous("127.0.0.1", "203.0.113.1") == 200
        assert await anonymous("127.0.0.1", "203.0.113.2") == 200
        assert await anonymous("127.0.0.1", "203.0.113.1") == 429
        assert await anonymous("198.51.100.1", "203.0.113.3") == 200
        assert await anonymous("198.51.100.1", "203.0.113.4") == 429  # the header is ignored


async def test_the_address_reaches_the_app() -> None:
    async def where(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.client.host if request.client else "")

    app = ClientAddress(Starlette(routes=[Route("/", where)]), PROXIES)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        answer = await http.get("/", headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.text == "203.0.113.9"


def blocking_app(release: asyncio.Event) -> Starlette:
    async def slow(request: Request) -> PlainTextResponse:
        await release.wait()
        return PlainTextResponse("done")

    return Starlette(routes=[Route("/slow", slow), Route("/node/slow", slow)])


async def test_requests_in_progress_per_address_are_bounded() -> None:
    release = asyncio.Event()
    cap = RequestsPerAddress(
        blocking_app(release), limit=3, exempt=lambda path: path.startswith("/node/")
    )

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=cap, client=(ip, 5000))
        return httpx.AsyncClient(transport=transport, base_url="http://t")

    async with client("192.0.2.1") as one, client("192.0.2.2") as other:
        held = [asyncio.create_task(one.get("/slow")) for _ in range(3)]
        for _ in range(500):
            if cap.in_progress["192.0.2.1"] == 3:
                break
            await asyncio.sleep(0.01)
        refused = await one.get("/slow")
        body = assert_error(refused, 429, "rate_limited")
        assert body["reason"] == "at most 3 requests at once per address"
        assert refused.headers["retry-after"] == "1"
        # Another address, and the cluster's own paths, are not held back.
        elsewhere = asyncio.create_task(other.get("/slow"))
        exempt = [asyncio.create_task(one.get("/node/slow")) for _ in range(5)]
        await asyncio.sleep(0.05)
        release.set()
        answers = await asyncio.gather(*held, elsewhere, *exempt)
        assert {a.status_code for a in answers} == {200}
        assert not cap.in_progress  # all given back
        assert (await one.get("/slow")).status_code == 200


def open_slow_request(address: tuple[str, int], forwarded: str | None = None) -> socket.socket:
    """A login whose body never finishes: it stays in progress on the server."""
    sock = socket.create_connection(address, timeout=10)
    head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n"
    if forwarded:
        head += f"X-Forwarded-For: {forwarded}\r\n"
    sock.sendall((head + "Content-Type: application/json\r\n\r\n{").encode())
    return sock


def anonymous_until(base_url: str, forwarded: str, status: int) -> httpx.Response:
    """POST /auth/anonymous through the loopback "proxy" until it answers `status` (the
    server reads the hanging requests' heads, or sees them go, a moment later)."""
    for _ in range(50):
        answer = httpx.post(
            base_url + "/api/v1/auth/anonymous",
            headers={"X-Forwarded-For": forwarded},
            timeout=5,
        )
        if answer.status_code == status:
            break
    return answer


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_real_server_refuses_the_request_past_the_bound(tmp_path: Path) -> None:
    """Over TCP with uvicorn: three bodies left hanging hold the address's three places;
    the fourth request is refused at once. Through the loopback proxy, another client
    (another X-Forwarded-For) still gets in. The hanging clients then go away: no
    traceback (Starlette's ClientDisconnect was one), and the address has its places back."""
    server = start_server(tmp_path, {"MAJLIS_MAX_REQUESTS_PER_IP": "3"})
    url = httpx.URL(server.base_url)
    address = (str(url.host), int(url.port or 80))
    try:
        hanging = [open_slow_request(address, "203.0.113.5") for _ in range(3)]
        assert_error(anonymous_until(server.base_url, "203.0.113.5", 429), 429, "rate_limited")
        other = anonymous_until(server.base_url, "203.0.113.6", 200)
        assert other.status_code == 200, other.text
        for sock in hanging:
            sock.close()
        again = anonymous_until(server.base_url, "203.0.113.5", 200)
        assert again.status_code == 200, again.text
    finally:
        server.stop()
    assert "Traceback" not in server.log()
