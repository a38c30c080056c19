"""The waiting room under a burst: 100 listeners join a real server at once; admission is
20/s with a burst of 5. Everyone gets in, nobody sees an error, first come first served."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from api.conftest import V1, Account, backend_server

RATE = 20.0
BURST = 5
CLIENTS = 100


@dataclass
class Poll:
    sent: float
    received: float
    status: int
    position: int | None = None
    retry_ms: int | None = None


@dataclass
class Listener:
    who: Account
    ticket: int | None = None  # None: admitted without queueing
    polls: list[Poll] = field(default_factory=list)
    admitted_at: float | None = None
    first_wait_ms: int | None = None


def ticket_number(ticket: str) -> int:
    """Tickets are `ticket.<space>.<number>.<member>.<expiry>.<mac>`."""
    kind, _space, number, *_ = ticket.split(".")
    assert kind == "ticket"
    return int(number)


async def listen(http: httpx.AsyncClient, space_id: str, listener: Listener) -> None:
    """Join, then poll with the ticket, waiting as long as the server says each time."""
    body: dict[str, object] = {}
    while True:
        sent = time.monotonic()
        answer = await http.post(
            f"{V1}/spaces/{space_id}/join", json=body, headers=listener.who.headers
        )
        poll = Poll(sent, time.monotonic(), answer.status_code)
        listener.polls.append(poll)
        assert answer.status_code in (200, 202), answer.text
        data = answer.json()
        if answer.status_code == 200:
            assert data["status"] == "admitted" and data["role"] == "listener"
            assert data["playback_token"].startswith("play.")
            listener.admitted_at = poll.received
            return
        assert data["status"] == "queued"
        assert int(answer.headers["retry-after"]) >= 1
        poll.position = data["position"]
        poll.retry_ms = data["retry_after_ms"]
        assert data["estimated_wait_ms"] == int(data["position"] / RATE * 1000)
        number = ticket_number(data["ticket"])
        if listener.ticket is None:
            listener.ticket = number
            listener.first_wait_ms = data["estimated_wait_ms"]
        assert number == listener.ticket, "a ticket keeps its place"
        body = {"ticket": data["ticket"]}
        await asyncio.sleep(data["retry_after_ms"] / 1000)


async def register(http: httpx.AsyncClient, username: str) -> Account:
    answer = await http.post(
        f"{V1}/auth/register", json={"username": username, "password": "p" * 12}
    )
    assert answer.status_code == 201, answer.text
    return Account(answer.json()["user"]["id"], username, answer.json()["token"])


async def anonymous(http: httpx.AsyncClient) -> Account:
    answer = await http.post(f"{V1}/auth/anonymous")
    assert answer.status_code == 200, answer.text
    return Account(answer.json()["member"], "", answer.json()["token"])


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_burst_of_joins_waits_in_line(tmp_path: Path) -> None:
    env = {"MAJLIS_ADMISSION_RATE": str(RATE), "MAJLIS_ADMISSION_BURST": str(BURST)}
    limits = httpx.Limits(max_connections=CLIENTS + 10, max_keepalive_connections=CLIENTS + 10)
    async with (
        backend_server("embedded", tmp_path, env) as server,
        httpx.AsyncClient(base_url=server.base_url, timeout=20, limits=limits) as http,
    ):
        host, speaker = await register(http, "queue_host"), await register(http, "speaker")
        space = await http.post(f"{V1}/spaces", json={"title": "launch"}, headers=host.headers)
        sid = space.json()["id"]
        await http.post(f"{V1}/spaces/{sid}/requests", headers=speaker.headers)
        approve = f"{V1}/spaces/{sid}/requests/{speaker.id}/approve"
        assert (await http.post(approve, headers=host.headers)).status_code == 200
        crowd = [Listener(await anonymous(http)) for _ in range(CLIENTS)]
        random.shuffle(crowd)

        started = time.monotonic()
        joining = asyncio.gather(*(listen(http, sid, listener) for listener in crowd))
        await asyncio.sleep(1.0)
        # The line is long now; the people on stage walk straight in.
        stage_joins = [
            await http.post(f"{V1}/spaces/{sid}/join", json={}, headers=who.headers)
            for who in (host, speaker)
        ]
        await joining
        finished = time.monotonic()

    assert [a.status_code for a in stage_joins] == [200, 200]
    assert [a.json()["role"] for a in stage_joins] == ["host", "speaker"]
    # Everybody got in; nobody saw anything but 200 or 202.
    assert all(listener.admitted_at is not None for listener in crowd)
    assert {poll.status for listener in crowd for poll in listener.polls} == {200, 202}

    queued = sorted(
        (lst for lst in crowd if lst.ticket is not None), key=lambda lst: lst.ticket or 0
    )
    walked_in = [lst for lst in crowd if lst.ticket is None]
    # The burst walks in; the rest got tickets 1..n, each exactly once.
    assert BURST <= len(walked_in) <= BURST + 5, len(walked_in)
    assert [lst.ticket for lst in queued] == list(range(1, len(queued) + 1))
    # A queued answer's position is the ticket's distance from the front, and it only shrinks.
    for listener in queued:
        positions = [p.position for p in listener.polls if p.position is not None]
        assert positions == sorted(positions, reverse=True), positions
        assert listener.ticket is not None
        assert 1 <= positions[-1] <= positions[0] <= listener.ticket
    # The last in line was told to expect about (clients - burst) / rate.
    last_wait = queued[-1].first_wait_ms or 0
    assert last_wait == pytest.approx(len(queued) / RATE * 1000, rel=0.25)

    # FIFO, exactly: once ticket u was admitted, a lower ticket t is never told to wait.
    for later in queued:
        assert later.admitted_at is not None
        for earlier in queued[: (later.ticket or 0) - 1]:
            told_to_wait = [p for p in earlier.polls if p.status == 202]
            assert all(p.sent <= later.admitted_at for p in told_to_wait), (
                f"ticket {earlier.ticket} queued after ticket {later.ticket} was admitted"
            )
    # FIFO, as seen by the clients: a lower ticket gets in no later than a higher one, give
    # or take the interval it was told to wait before its last poll.
    for i, earlier in enumerate(queued):
        interval = (earlier.polls[-2].retry_ms or 0) / 1000
        assert 0.5 <= interval <= 5.0
        for later in queued[i + 1 :]:
            assert (earlier.admitted_at or 0) <= (later.admitted_at or 0) + interval + 0.25

    # The line moves at the configured rate: (clients - burst) / rate seconds, give or take.
    expected = (len(queued)) / RATE
    assert expected * 0.9 <= finished - started <= expected + 2.0, finished - started
