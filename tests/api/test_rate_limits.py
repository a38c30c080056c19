"""Rate limits hold within ±10% of their configuration, measured against real time."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.conftest import Account, running_harness

SECONDS = 3.0


@dataclass
class Hammered:
    allowed: int
    limited: list[httpx.Response]
    first: float
    last: float


async def hammer(send: Callable[[], Awaitable[httpx.Response]], ok: int) -> Hammered:
    """Send back to back for SECONDS; count what got through."""
    allowed, limited = 0, []
    first = time.monotonic()
    last = first
    while time.monotonic() - first < SECONDS:
        last = time.monotonic()
        answer = await send()
        if answer.status_code == 429:
            limited.append(answer)
        else:
            assert answer.status_code == ok, answer.text
            allowed += 1
    return Hammered(allowed, limited, first, last)


def assert_within_ten_percent(result: Hammered, rate: float, burst: int) -> None:
    nominal = rate * SECONDS + burst
    assert nominal * 0.9 <= result.allowed <= nominal * 1.1, (result.allowed, nominal)
    # Tighter still: what the limit allows over the time actually spent sending.
    exact = rate * (result.last - result.first) + burst
    assert abs(result.allowed - exact) <= 1.5, (result.allowed, exact)
    assert len(result.limited) > result.allowed, "the sender did not push past the limit"


def assert_told_when_to_retry(answer: httpx.Response, rate: float, code: str) -> None:
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == code
    assert body["reason"]
    wait_ms = body["retry_after_ms"]
    assert isinstance(wait_ms, int)
    assert 1 <= wait_ms <= 1000 / rate + 1
    assert answer.headers["retry-after"] == "1"  # whole seconds, rounded up
    assert int(answer.headers["retry-after-ms"]) == wait_ms


@pytest.mark.timeout(30)
async def test_write_limit_per_ip(tmp_path: Path) -> None:
    rate, burst = 20.0, 1
    async with running_harness(tmp_path, write_rate_ip=rate, write_burst_ip=burst) as h:
        result = await hammer(lambda: h.call("POST", "/auth/anonymous", ip="198.51.100.7"), 200)
        # Another address has its own allowance.
        other = await h.call("POST", "/auth/anonymous", ip="198.51.100.8")
        # Reads are never limited.
        reads = [await h.call("GET", "/spaces", ip="198.51.100.7") for _ in range(20)]

    assert_within_ten_percent(result, rate, burst)
    assert_told_when_to_retry(result.limited[-1], rate, "rate_limited")
    assert other.status_code == 200
    assert {r.status_code for r in reads} == {200}


@pytest.mark.timeout(30)
async def test_write_limit_per_user(tmp_path: Path) -> None:
    rate, burst = 10.0, 2
    async with running_harness(tmp_path, write_rate_user=rate, write_burst_user=burst) as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        user = await h.account("busy")
        addresses = [f"203.0.113.{n}" for n in range(1, 40)]
        sent = 0

        def leave() -> Awaitable[httpx.Response]:
            nonlocal sent
            sent += 1  # from ever-changing addresses: the limit follows the user
            return h.call("POST", f"/spaces/{sid}/leave", user, ip=addresses[sent % 39])

        result = await hammer(leave, 204)
        other: Account = await h.account("calm")
        calm = await h.call("POST", f"/spaces/{sid}/leave", other, ip=addresses[0])

    assert_within_ten_percent(result, rate, burst)
    assert_told_when_to_retry(result.limited[-1], rate, "rate_limited")
    assert calm.status_code == 204


@pytest.mark.timeout(30)
async def test_reaction_limit(tmp_path: Path) -> None:
    rate, burst = 10.0, 5
    async with running_harness(tmp_path, reaction_rate=rate, reaction_burst=burst) as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        fan = await h.anonymous()
        result = await hammer(
            lambda: h.call("POST", f"/spaces/{sid}/reactions", fan, json={"emoji": "🔥"}), 200
        )
        other = await h.anonymous()
        last = await h.call("POST", f"/spaces/{sid}/reactions", other, json={"emoji": "👏"})

    assert_within_ten_percent(result, rate, burst)
    assert_told_when_to_retry(result.limited[-1], rate, "rate_limited")
    # Only what was allowed was counted.
    assert last.status_code == 200
    assert last.json()["reactions"] == {"🔥": result.allowed, "👏": 1}


@pytest.mark.timeout(30)
async def test_register_and_login_limit_per_ip(tmp_path: Path) -> None:
    rate, burst = 10.0, 5
    async with running_harness(tmp_path, auth_rate_ip=rate, auth_burst_ip=burst) as h:
        body = {"username": "nobody_here", "password": "wrong password"}
        result = await hammer(lambda: h.call("POST", "/auth/login", json=body, ip="192.0.2.99"), 401)
        # The other auth path shares the budget; an ordinary write does not.
        register = await h.call(
            "POST", "/auth/register", json={"username": "newbie", "password": "p" * 12}, ip="192.0.2.99"
        )
        write = await h.call("POST", "/auth/anonymous", ip="192.0.2.99")

    assert_within_ten_percent(result, rate, burst)
    assert_told_when_to_retry(result.limited[-1], rate, "rate_limited")
    assert register.status_code in (201, 429)
    assert write.status_code == 200
