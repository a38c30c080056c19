"""The waiting room under a burst: 100 listeners join at once; admission is 20/s with a
burst of 5. Everyone gets in, nobody sees an error, first come first served.

The burst runs on a frozen clock that moves only as the listeners wait, so "at once" is
exact and every count holds on a loaded machine. A smaller crowd then joins a real server
in real time, to see the same answers through HTTP and uvicorn."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from api.conftest import V1, Account, Harness, backend_server, running_harness

RATE = 20.0
BURST = 5
CLIENTS = 100

Join = Callable[[Account, dict[str, object]], Awaitable[httpx.Response]]


@dataclass
class Poll:
    sent: float
    status: int
    position: int | None = None
    retry_ms: int | None = None


@dataclass
class Listener:
    who: Account
    ticket: int | None = None  # None: admitted without queueing
    polls: list[Poll] = field(default_factory=list)
    admitted_at: float | None = None
    body: dict[str, object] = field(default_factory=dict)  # what the next poll sends
    due: float = 0.0  # when the server said to poll next


def ticket_number(ticket: str) -> int:
    """Tickets are `ticket.<space>.<number>.<member>.<expiry>.<mac>`."""
    kind, _space, number, *_ = ticket.split(".")
    assert kind == "ticket"
    return int(number)


async def poll(join: Join, listener: Listener, now: float, rate: float = RATE) -> bool:
    """One join or ticket poll at `now`; True once admitted."""
    answer = await join(listener.who, listener.body)
    record = Poll(now, answer.status_code)
    listener.polls.append(record)
    assert answer.status_code in (200, 202), answer.text
    data = answer.json()
    if answer.status_code == 200:
        assert data["status"] == "admitted" and data["role"] == "listener"
        assert data["playback_token"].startswith("play.")
        listener.admitted_at = now
        return True
    assert data["status"] == "queued"
    assert int(answer.headers["retry-after"]) >= 1
    record.position, record.retry_ms = data["position"], data["retry_after_ms"]
    assert data["estimated_wait_ms"] == int(data["position"] / rate * 1000)
    number = ticket_number(data["ticket"])
    if listener.ticket is None:
        listener.ticket = number
    assert number == listener.ticket, "a ticket keeps its place"
    listener.body = {"ticket": data["ticket"]}
    listener.due = now + data["retry_after_ms"] / 1000
    return False


async def wait_in_line(h: Harness, sid: str, crowd: list[Listener]) -> float:
    """Everyone joins at virtual time 0, then each polls when told, earliest first; the
    clock moves only from one due poll to the next. Returns when the last got in."""
    h.clock.freeze()
    zero = h.clock.now()

    async def join(who: Account, body: dict[str, object]) -> httpx.Response:
        return await h.call("POST", f"/spaces/{sid}/join", who, json=body)

    waiting = [lst for lst in crowd if not await poll(join, lst, 0.0)]
    while waiting:
        waiting.sort(key=lambda lst: (lst.due, lst.ticket or 0))
        nxt = waiting[0]
        h.clock.advance(zero + nxt.due - h.clock.now())
        if await poll(join, nxt, nxt.due):
            waiting.pop(0)
    return max(lst.admitted_at or 0.0 for lst in crowd)


@pytest.mark.timeout(60)
async def test_a_burst_of_joins_waits_in_line(tmp_path: Path) -> None:
    async with running_harness(tmp_path, admission_rate=RATE, admission_burst=BURST) as h:
        host, speaker = await h.account("queue_host"), await h.account("speaker")
        sid = (await h.create_space(host, "launch"))["id"]
        await h.make_speaker(sid, host, speaker)
        crowd = [Listener(await h.anonymous()) for _ in range(CLIENTS)]
        random.shuffle(crowd)
        last_in = await wait_in_line(h, sid, crowd)
        # The line is long now; the people on stage walk straight in.
        stage_joins = [
            await h.call("POST", f"/spaces/{sid}/join", who, json={}) for who in (host, speaker)
        ]

    assert [a.status_code for a in stage_joins] == [200, 200]
    assert [a.json()["role"] for a in stage_joins] == ["host", "speaker"]
    # Everybody got in; nobody saw anything but 200 or 202.
    assert all(listener.admitted_at is not None for listener in crowd)
    assert {p.status for listener in crowd for p in listener.polls} == {200, 202}

    queued = sorted(
        (lst for lst in crowd if lst.ticket is not None), key=lambda lst: lst.ticket or 0
    )
    # Exactly the burst walks in; the rest got tickets 1..n, each exactly once.
    assert len(queued) == CLIENTS - BURST
    assert [lst.ticket for lst in queued] == list(range(1, len(queued) + 1))
    # A queued answer's position is the ticket's distance from the front, and it only shrinks.
    for listener in queued:
        positions = [p.position for p in listener.polls if p.position is not None]
        assert positions == sorted(positions, reverse=True), positions
        assert positions[0] == listener.ticket
        assert positions[-1] >= 1
    # The last in line was told to expect (clients - burst) / rate.
    assert queued[-1].polls[0].position == len(queued)

    # FIFO, exactly: once ticket u was admitted, a lower ticket t is never told to wait.
    for later in queued:
        assert later.admitted_at is not None
        for earlier in queued[: (later.ticket or 0) - 1]:
            told_to_wait = [p for p in earlier.polls if p.status == 202]
            assert all(p.sent <= later.admitted_at for p in told_to_wait), (
                f"ticket {earlier.ticket} queued after ticket {later.ticket} was admitted"
            )
    # Each waits no longer than its turn plus one poll interval, and polls no more often
    # than every half second nor less often than every five.
    for listener in queued:
        turn = (listener.ticket or 0) / RATE
        interval = (listener.polls[-2].retry_ms or 0) / 1000
        assert 0.5 <= interval <= 5.0
        assert turn * 0.95 <= (listener.admitted_at or 0) <= turn + interval + 0.05

    # The line moves at the configured rate: (clients - burst) / rate seconds of waiting.
    expected = len(queued) / RATE
    assert expected * 0.95 <= last_in <= expected + 5.0, last_in


async def anonymous(http: httpx.AsyncClient) -> Account:
    answer = await http.post(f"{V1}/auth/anonymous")
    assert answer.status_code == 200, answer.text
    return Account(answer.json()["member"], "", answer.json()["token"])


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_real_server_queues_and_admits_a_crowd(tmp_path: Path) -> None:
    # A rate low enough that even a loaded machine sends the crowd faster than it.
    rate, crowd_size = 2.0, 12
    env = {"MAJLIS_ADMISSION_RATE": str(rate), "MAJLIS_ADMISSION_BURST": "2"}
    async with (
        backend_server("embedded", tmp_path, env) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=20) as http,
    ):
        register = await http.post(
            f"{V1}/auth/register", json={"username": "rq_host", "password": "p" * 12}
        )
        host = {"Authorization": f"Bearer {register.json()['token']}"}
        sid = (await http.post(f"{V1}/spaces", json={"title": "x"}, headers=host)).json()["id"]
        crowd = [Listener(await anonymous(http)) for _ in range(crowd_size)]

        async def join(who: Account, body: dict[str, object]) -> httpx.Response:
            return await http.post(f"{V1}/spaces/{sid}/join", json=body, headers=who.headers)

        async def until_admitted(listener: Listener) -> None:
            for _ in range(100):
                if await poll(join, listener, time.monotonic(), rate):
                    return
                await asyncio.sleep((listener.polls[-1].retry_ms or 0) / 1000)

        await asyncio.gather(*(until_admitted(lst) for lst in crowd))

    tickets = sorted(lst.ticket for lst in crowd if lst.ticket is not None)
    assert tickets, "nobody was queued: the crowd never outran the admission rate"
    assert tickets == list(range(1, len(tickets) + 1))
    assert all(lst.admitted_at is not None for lst in crowd)
