"""The CLI's retry policy: the budget on a fake clock, full jitter, Retry-After, and the
clients (API calls, joins, the relay) keeping to them against a server that is down."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from majlis.client import api as api_module
from majlis.client import relay as relay_module
from majlis.client.api import ApiClient, ApiError
from majlis.client.relay import TokenRelay
from majlis.client.retry import RetryBudget, full_jitter, retry_after_s, retry_delay


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_fresh_budget_allows_its_reserve_and_no_more(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, reserve=1, ttl=60, clock=clock)
    assert budget.try_retry()
    assert not budget.try_retry()
    assert (budget.retries, budget.denied) == (1, 1)


def test_retries_are_a_tenth_of_requests_plus_the_reserve(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, reserve=1, ttl=60, clock=clock)
    for _ in range(100):
        budget.request()
    allowed = sum(budget.try_retry() for _ in range(50))
    assert allowed == 11


def test_the_window_forgets_requests_and_retries_after_ttl(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, reserve=1, ttl=60, clock=clock)
    for _ in range(20):
        budget.request()
    assert sum(budget.try_retry() for _ in range(10)) == 3
    assert budget.wait_s() == 60.0  # the retries leave the window with the requests
    clock.now += 59.9
    assert not budget.try_retry()
    clock.now += 0.2
    assert budget.balance() == 1.0  # only the reserve again
    assert budget.try_retry()


def test_wait_s_says_when_the_next_retry_is_allowed(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, reserve=1, ttl=10, clock=clock)
    assert budget.wait_s() == 0.0
    assert budget.try_retry()
    clock.now += 4
    assert budget.wait_s() == pytest.approx(6.0)
    clock.now += 6
    assert budget.try_retry()


def test_a_crowd_against_a_dead_server_sends_at_most_a_tenth_more(clock: FakeClock) -> None:
    """500 clients, each with its own budget, make one request a second (what they do
    anyway); during a 60 s outage every attempt fails and is retried up to 8 times at
    once if the budget allows. The crowd sends ≤ 1.1× its normal requests plus the
    reserve; without the budget it would send 9×."""
    budgets = [RetryBudget(ratio=0.1, reserve=1, ttl=60, clock=clock) for _ in range(500)]
    sent = 0
    for _ in range(120):  # a steady minute before, then the outage
        for budget in budgets:
            budget.request()
            sent += 1
        clock.now += 1
    sent = 0
    for _ in range(60):
        for budget in budgets:
            budget.request()
            sent += 1
            for _ in range(8):
                if not budget.try_retry():
                    break
                sent += 1
        clock.now += 1
    normal = 500 * 60
    assert sent <= normal * 1.1 + 500 * 1  # plus each client's reserve


def test_full_jitter_spreads_over_the_whole_capped_interval() -> None:
    assert full_jitter(0, 0.25, 30, rng=lambda: 1.0) == 0.25
    assert full_jitter(3, 0.25, 30, rng=lambda: 1.0) == 2.0
    assert full_jitter(20, 0.25, 30, rng=lambda: 1.0) == 30.0
    assert full_jitter(1000, 0.25, 30, rng=lambda: 0.5) == 15.0
    assert full_jitter(3, 0.25, 30, rng=lambda: 0.0) == 0.0
    waits = [full_jitter(4, 1.0, 8.0) for _ in range(2000)]
    assert min(waits) < 0.5 and max(waits) > 7.5 and max(waits) <= 8.0


def test_retry_after_is_read_in_milliseconds_then_seconds() -> None:
    assert retry_after_s(httpx.Headers({"Retry-After-Ms": "1500", "Retry-After": "2"})) == 1.5
    assert retry_after_s(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after_s(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) is None
    assert retry_after_s(httpx.Headers({"Retry-After": "-1"})) is None
    assert retry_after_s(httpx.Headers({})) is None
    assert retry_delay(5, base=1, cap=2, retry_after=7.0, rng=lambda: 1.0) == 7.0
    assert retry_delay(5, base=1, cap=2, retry_after=None, rng=lambda: 1.0) == 2.0
    assert retry_delay(0, base=1, cap=2, retry_after=1e9) == 300.0


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """asyncio.sleep in the clients records its wait and returns at once."""
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(api_module.asyncio, "sleep", fake_sleep)
    yield waits


def _client(handler: httpx.MockTransport, budget: RetryBudget) -> ApiClient:
    http = httpx.AsyncClient(transport=handler)
    return ApiClient("http://majlis.test", retries=8, budget=budget, http=http)


async def test_api_calls_honour_retry_after_and_stop_when_the_budget_is_spent(
    slept: list[float], clock: FakeClock
) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(
            503, json={"reason": "busy"}, headers={"Retry-After-Ms": "1250", "Retry-After": "2"}
        )

    budget = RetryBudget(ratio=0.1, reserve=2, ttl=60, clock=clock)
    client = _client(httpx.MockTransport(handler), budget)
    with pytest.raises(ApiError) as refused:
        await client.call("GET", "/api/v1/spaces")
    assert refused.value.status == 503 and refused.value.retry_after == 1.25
    assert len(seen) == 3  # the call and the reserve's 2 retries, not 1 + 8
    assert slept == [1.25, 1.25]


async def test_a_join_outlasts_a_dead_server_inside_its_budget(
    slept: list[float], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server refuses connections for a while, then admits: the join never gives up,
    and its retries are paced by the budget (waits for it to refill), not hammered."""
    attempts: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(clock.now)
        if len(attempts) < 6:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"playback_url": "u"})

    async def sleeping(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(api_module.asyncio, "sleep", sleeping)
    budget = RetryBudget(ratio=0.1, reserve=2, ttl=60, clock=clock)
    client = _client(httpx.MockTransport(handler), budget)
    answer = await client.join("abc")
    assert answer == {"playback_url": "u"}
    assert len(attempts) == 6
    assert budget.requests == 1 and budget.retries == 5
    # Two retries from the reserve, then one per 60 s window at most.
    assert attempts[-1] - attempts[0] >= 60 * 2


async def test_the_relay_slows_down_when_the_budget_holds_no_retry(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    """A player's request is held through an outage (an error would end its session),
    but once the budget is spent it is asked again only every RETRY_CAP_S."""
    answers = iter([*[None] * 5, 200])
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(status, text="back")

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(relay_module.asyncio, "sleep", sleep)
    budget = RetryBudget(ratio=0.1, reserve=1, ttl=60, clock=clock)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    relay = TokenRelay("http://m/hls/s1/play.tok/index.m3u8", "play.tok", budget=budget, http=http)
    status, _, body = await relay.fetch("/index.m3u8")
    assert (status, body) == (200, b"back")
    assert len(waits) == 5
    # The reserve's one retry is quick; every retry after it waits the cap.
    assert waits[0] < relay_module.RETRY_CAP_S
    assert all(w >= relay_module.RETRY_CAP_S for w in waits[1:]), waits


async def test_the_relay_honours_retry_after(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []
    answers = iter([503, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers), headers={"Retry-After-Ms": "700"}, text="x")

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(relay_module.asyncio, "sleep", sleep)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    budget = RetryBudget(reserve=5)
    relay = TokenRelay("http://m/hls/s1/play.tok/index.m3u8", "play.tok", budget=budget, http=http)
    status, _, body = await relay.fetch("/index.m3u8")
    assert (status, body) == (200, b"x")
    assert waits == [0.7, 0.7]
