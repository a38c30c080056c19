"""Rate limits hold within ±10% of their configuration.

One test hammers in real time, as a client would. The others step a frozen clock by 1 ms per
request, so the count is exact on a loaded machine too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from api.conftest import Harness, running_harness

SECONDS = 3.0
STEP = 0.001  # virtual seconds between requests when the clock is frozen

Send = Callable[[], Awaitable[httpx.Response]]


@dataclass
class Hammered:
    allowed: int
    limited: list[httpx.Response]
    sent: list[float] = field(default_factory=list)  # when each request left, monotonic


async def hammer_real_time(send: Send, ok: int) -> Hammered:
    """For SECONDS of real time, about a thousand requests a second: 50 times the limit."""
    allowed, limited, sent = 0, [], []
    first = time.monotonic()
    while (now := time.monotonic()) - first < SECONDS:
        sent.append(now)
        answer = await send()
        if answer.status_code == 429:
            limited.append(answer)
        else:
            assert answer.status_code == ok, answer.text
            allowed += 1
        await asyncio.sleep(0.001)
    return Hammered(allowed, limited, sent)


def bucket_allows(sent: list[float], rate: float, burst: int) -> int:
    """How many of these requests a token bucket of `rate` and `burst`, full at the first,
    lets through: what the server should have allowed given when they really arrived."""
    tokens, last, allowed = float(burst), sent[0], 0
    for at in sent:
        tokens = min(float(burst), tokens + (at - last) * rate)
        last = at
        if tokens >= 1.0:
            tokens -= 1.0
            allowed += 1
    return allowed


async def hammer_virtual_time(h: Harness, send: Send, ok: int) -> Hammered:
    """One request per STEP for SECONDS of frozen-clock time."""
    h.clock.freeze()
    allowed, limited = 0, []
    for _ in range(round(SECONDS / STEP)):
        answer = await send()
        if answer.status_code == 429:
            limited.append(answer)
        else:
            assert answer.status_code == ok, answer.text
            allowed += 1
        h.clock.advance(STEP)
    return Hammered(allowed, limited)


def assert_within_ten_percent(result: Hammered, rate: float, burst: int) -> None:
    nominal = rate * SECONDS + burst
    assert nominal * 0.9 <= result.allowed <= nominal * 1.1, (result.allowed, nominal)
    assert len(result.limited) > result.allowed, "the sender never pushed past the limit"


def assert_told_when_to_retry(answer: httpx.Response, rate: float) -> None:
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["error"] == "rate_limited"
    assert body["reason"]
    wait_ms = body["retry_after_ms"]
    assert isinstance(wait_ms, int)
    assert 1 <= wait_ms <= 1000 / rate + 1
    assert answer.headers["retry-after"] == "1"  # whole seconds, rounded up
    assert int(answer.headers["retry-after-ms"]) == wait_ms


@pytest.mark.timeout(30)
async def test_write_limit_per_ip_in_real_time(tmp_path: Path) -> None:
    # On a busy machine the sender falls behind (a stall longer than the burst's worth of
    # slots loses them for good), so the count is compared with what a token bucket allows
    # for the times the requests really left, not with rate × seconds. The exact count
    # against rate × seconds is measured in virtual time below.
    rate, burst = 20.0, 5
    async with running_harness(tmp_path, write_rate_ip=rate, write_burst_ip=burst) as h:
        result = await hammer_real_time(
            lambda: h.call("POST", "/auth/anonymous", ip="198.51.100.7"), 200
        )
        # Another address has its own allowance; reads are never limited.
        other = await h.call("POST", "/auth/anonymous", ip="198.51.100.8")
        reads = [await h.call("GET", "/spaces", ip="198.51.100.7") for _ in range(20)]

    expected = bucket_allows(result.sent, rate, burst)
    assert expected * 0.9 <= result.allowed <= expected * 1.1, (result.allowed, expected)
    # Never more than the limit, however fast or slow the machine.
    assert result.allowed <= (rate * (result.sent[-1] - result.sent[0]) + burst) * 1.1
    assert len(result.limited) > result.allowed, "the sender never pushed past the limit"
    assert_told_when_to_retry(result.limited[-1], rate)
    assert other.status_code == 200
    assert {r.status_code for r in reads} == {200}


@pytest.mark.timeout(30)
async def test_write_limit_per_ip(tmp_path: Path) -> None:
    rate, burst = 20.0, 1
    async with running_harness(tmp_path, write_rate_ip=rate, write_burst_ip=burst) as h:
        result = await hammer_virtual_time(
            h, lambda: h.call("POST", "/auth/anonymous", ip="198.51.100.7"), 200
        )
    assert_within_ten_percent(result, rate, burst)
    # Exactly one per 50 ms over [0, 3) s, the first one being the burst.
    assert result.allowed == 60
    assert_told_when_to_retry(result.limited[0], rate)
    # Asked 1 ms after an allowed one: come back in 49 ms (rounded up).
    assert result.limited[0].json()["retry_after_ms"] in (49, 50)


@pytest.mark.timeout(30)
async def test_write_limit_per_user(tmp_path: Path) -> None:
    rate, burst = 10.0, 5
    async with running_harness(tmp_path, write_rate_user=rate, write_burst_user=burst) as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        busy, calm = await h.account("busy"), await h.account("calm")
        addresses = [f"203.0.113.{n}" for n in range(1, 40)]
        sent = 0

        def leave() -> Awaitable[httpx.Response]:
            nonlocal sent
            sent += 1  # from ever-changing addresses: the limit follows the user
            return h.call("POST", f"/spaces/{sid}/leave", busy, ip=addresses[sent % 39])

        result = await hammer_virtual_time(h, leave, 204)
        other = await h.call("POST", f"/spaces/{sid}/leave", calm, ip=addresses[1])

    assert_within_ten_percent(result, rate, burst)
    assert result.allowed == 5 + 29  # the burst at once, then one per 100 ms after it drains
    assert_told_when_to_retry(result.limited[-1], rate)
    assert other.status_code == 204


@pytest.mark.timeout(30)
async def test_reaction_limit(tmp_path: Path) -> None:
    rate, burst = 10.0, 5
    async with running_harness(tmp_path, reaction_rate=rate, reaction_burst=burst) as h:
        host = await h.account("host")
        sid = (await h.create_space(host))["id"]
        fan, other = await h.anonymous(), await h.anonymous()
        result = await hammer_virtual_time(
            h, lambda: h.call("POST", f"/spaces/{sid}/reactions", fan, json={"emoji": "🔥"}), 200
        )
        last = await h.call("POST", f"/spaces/{sid}/reactions", other, json={"emoji": "👏"})

    assert_within_ten_percent(result, rate, burst)
    assert result.allowed == 5 + 29
    assert_told_when_to_retry(result.limited[-1], rate)
    # Only what was allowed was counted.
    assert last.status_code == 200
    assert last.json()["reactions"] == {"🔥": result.allowed, "👏": 1}


@pytest.mark.timeout(30)
async def test_register_and_login_limit_per_ip(tmp_path: Path) -> None:
    rate, burst = 10.0, 5
    async with running_harness(tmp_path, auth_rate_ip=rate, auth_burst_ip=burst) as h:
        ip = "192.0.2.99"
        # The limit is checked before the body is read: even refused bodies count.
        result = await hammer_virtual_time(
            h, lambda: h.call("POST", "/auth/register", json={}, ip=ip), 400
        )
        # Login shares register's budget: the slot due now taken, the next login waits.
        register = await h.call("POST", "/auth/register", json={}, ip=ip)
        login = await h.call("POST", "/auth/login", json={"username": "x", "password": "y"}, ip=ip)
        # An ordinary write has its own budget.
        write = await h.call("POST", "/auth/anonymous", ip=ip)

    assert_within_ten_percent(result, rate, burst)
    assert result.allowed == 5 + 29
    assert_told_when_to_retry(result.limited[-1], rate)
    assert register.status_code == 400
    assert login.status_code == 429
    assert write.status_code == 200
