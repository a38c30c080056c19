"""Reminders delivered: when a scheduled space starts, each subscriber is told once in the
app, by email (a real SMTP server, aiosmtpd, in this process) and the operator by a signed
webhook (a real HTTP server that checks the signature and fails the first try); a space
not started in time is marked missed and its subscribers are told."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from api.conftest import (
    Account,
    Harness,
    assert_error,
    fresh_database,
    postgres_reachable,
    redis_reachable,
    running_harness,
)
from conftest import redis_url, require_service
from majlis.plane import NodeInfo, node_key

PUBLIC = "https://majlis.example"
SECRET = "webhook-secret-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


SMTP_USER, SMTP_PASSWORD = "majlis", "s3cret:pw"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    """Only the configured account may send (the password has a ':' to be escaped)."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server that requires a login (over plain TCP: this is loopback)."""
    inbox, port = Inbox(), free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def started_with_subscribers(h: Harness, host: Account, *fans: Account) -> str:
    sid: str = (await h.create_space(host, "Tea & talk", scheduled_in=600))["id"]
    for fan in fans:
        answer = await h.call("PUT", f"/spaces/{sid}/reminder", fan)
        assert answer.status_code == 200, answer.text
    started = await h.call("POST", f"/spaces/{sid}/start", host)
    assert started.status_code == 200, started.text
    return sid


async def notifications(h: Harness, who: Account, query: str = "") -> dict[str, Any]:
    answer = await h.call("GET", f"/notifications{query}", who)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    body: dict[str, Any] = answer.json()
    return body


# in the app ---------------------------------------------------------------------------------


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path, public_url=PUBLIC) as harness:
        yield harness


async def test_each_subscriber_is_notified_once_in_the_app(h: Harness) -> None:
    host, lina, omar, quit_ = [await h.account(n) for n in ("host", "lina", "omar", "quit")]
    sid: str = (await h.create_space(host, "Tea & talk", scheduled_in=600))["id"]
    for fan in (lina, omar, quit_):
        await h.call("PUT", f"/spaces/{sid}/reminder", fan)
    await h.call("DELETE", f"/spaces/{sid}/reminder", quit_)
    assert (await h.call("POST", f"/spaces/{sid}/start", host)).status_code == 200
    assert_error(await h.call("POST", f"/spaces/{sid}/start", host), 409)

    for fan in (lina, omar):
        body = await notifications(h, fan)
        [note] = body["notifications"]
        assert {k: note[k] for k in ("space_id", "kind", "title", "read")} == {
            "space_id": sid,
            "kind": "space_started",
            "title": "Tea & talk",
            "read": False,
        }
        assert (body["unread"], body["next_cursor"]) == (1, None)
    for nobody in (host, quit_):
        assert await notifications(h, nobody) == {
            "notifications": [],
            "unread": 0,
            "next_cursor": None,
        }


async def test_notifications_page_newest_first_and_are_marked_read(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    sids = [await started_with_subscribers(h, host, lina) for _ in range(3)]
    first = await notifications(h, lina, "?limit=2")
    assert [n["space_id"] for n in first["notifications"]] == sids[:0:-1]
    assert first["unread"] == 3
    rest = await notifications(h, lina, f"?limit=2&cursor={first['next_cursor']}")
    assert [n["space_id"] for n in rest["notifications"]] == sids[:1]
    assert rest["next_cursor"] is None

    up_to = first["notifications"][1]["seq"]
    marked = await h.call("POST", "/notifications/read", lina, json={"up_to": up_to})
    assert marked.json() == {"marked": 2, "unread": 1}
    assert (await h.call("POST", "/notifications/read", lina)).json() == {
        "marked": 1,
        "unread": 0,
    }
    assert [n["read"] for n in (await notifications(h, lina))["notifications"]] == [True] * 3


async def test_notifications_refuse_bad_input_and_strangers(h: Harness) -> None:
    lina = await h.account("lina")
    assert_error(await h.call("GET", "/notifications"), 401)
    assert_error(await h.call("POST", "/notifications/read", json={}), 401)
    for query in ("?limit=0", "?limit=101", "?limit=x", "?cursor=-1", "?cursor=a", "?page=2"):
        assert_error(await h.call("GET", f"/notifications{query}", lina), 400)
    for body in ({"up_to": 0}, {"up_to": "3"}, {"up_to": 2**63}, {"all": True}, [1]):
        assert_error(await h.call("POST", "/notifications/read", lina, json=body), 400)
    raw = await h.client().post(
        "/api/v1/notifications/read",
        content=b"{nope",
        headers={**lina.headers, "Content-Type": "application/json"},
    )
    assert_error(raw, 400, "malformed_json")


# missed -------------------------------------------------------------------------------------


async def test_a_space_not_started_in_time_is_missed_and_subscribers_told(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path, missed_after_s=1800.0) as h:
        h.clock.freeze()
        sweep = h.services.missed
        assert sweep is not None
        host, lina = await h.account("host"), await h.account("lina")
        late = (await h.create_space(host, "Never held", scheduled_in=60))["id"]
        soon = (await h.create_space(host, "Later", scheduled_in=3600))["id"]
        await h.call("PUT", f"/spaces/{late}/reminder", lina)
        h.clock.advance(60 + 1799)
        assert await sweep.tick() == []
        h.clock.advance(2)
        assert await sweep.tick() == [late]
        assert await sweep.tick() == []

        space = (await h.call("GET", f"/spaces/{late}")).json()
        assert (space["state"], space["started_at"]) == ("ended", None)
        assert (await h.call("GET", f"/spaces/{soon}")).json()["state"] == "scheduled"
        replays = (await h.call("GET", "/spaces?state=ended")).json()["spaces"]
        assert late not in [s["id"] for s in replays]  # it has no replay
        assert_error(await h.call("POST", f"/spaces/{late}/start", host), 409)
        [note] = (await notifications(h, lina))["notifications"]
        assert (note["space_id"], note["kind"], note["title"]) == (
            late,
            "space_missed",
            "Never held",
        )
        [entry] = (await h.call("GET", f"/spaces/{late}/audit", host)).json()["entries"]
        assert (entry["action"], entry["actor_id"]) == ("end", None)
        assert "did not start" in entry["reason"]


async def test_a_reminder_left_undelivered_on_a_live_space_is_delivered_late(
    tmp_path: Path, receiver: tuple[str, list[tuple[bool, dict[str, Any]]]]
) -> None:
    url, calls = receiver
    flags = {"missed_after_s": 1800.0, "webhook_url": url, "webhook_secret": SECRET}
    async with running_harness(tmp_path, **flags) as h:
        sweep = h.services.missed
        assert sweep is not None
        host, lina = await h.account("host"), await h.account("lina")
        sid = (await h.create_space(host, "Already on"))["id"]  # live at once
        # As if set in the moment it started, or its starter died before the claim.
        await h.services.store.add_reminder(sid, lina.id, h.clock.now())
        assert await sweep.tick() == []
        await h.services.reminders.drain()
        [note] = (await notifications(h, lina))["notifications"]
        assert (note["space_id"], note["kind"]) == (sid, "space_started")
    assert calls == []  # the operator heard of the start when it happened, not again


async def test_a_failed_claim_does_not_fail_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_harness(tmp_path, missed_after_s=1800.0) as h:
        sweep = h.services.missed
        assert sweep is not None
        host, lina = await h.account("host"), await h.account("lina")
        store = h.services.store

        async def broken(*args: object) -> None:
            raise OSError("the database went away")

        with monkeypatch.context() as patched, caplog.at_level(logging.ERROR):
            patched.setattr(store, "deliver_reminders", broken)
            await started_with_subscribers(h, host, lina)
        assert any("wait for the sweep" in r.getMessage() for r in caplog.records)
        assert (await notifications(h, lina))["notifications"] == []
        await sweep.tick()
        [note] = (await notifications(h, lina))["notifications"]
        assert note["kind"] == "space_started"


# by email -----------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_subscribers_with_an_address_get_an_email(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    flags = {
        "smtp_url": f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}",
        "smtp_from": "spaces@majlis.example",
    }
    async with running_harness(tmp_path, public_url=PUBLIC, **flags) as h:
        lina = await registered(h, "lina", "lina@example.org")
        me = (await h.call("GET", "/auth/me", lina)).json()
        assert me["email"] == "lina@example.org"
        host, no_mail = await h.account("host"), await h.account("nomail")
        sid = await started_with_subscribers(h, host, lina, no_mail)
        await h.services.reminders.drain()

    [(to, message)] = inbox.messages
    assert to == ["lina@example.org"]
    assert message["From"] == "spaces@majlis.example"
    assert "Tea & talk" in message["Subject"]
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert f"{PUBLIC}/spaces/{sid}" in text


async def test_a_failing_mail_server_does_not_fail_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flags = {
        "smtp_url": f"smtp://127.0.0.1:{free_port()}",  # nobody listens there
        "smtp_from": "spaces@majlis.example",
        "notify_retry_s": 0.01,
    }
    async with running_harness(tmp_path, **flags) as h:
        host, lina = await h.account("host"), await registered(h, "lina", "lina@example.org")
        with caplog.at_level(logging.WARNING, logger="majlis.services.retrying"):
            await started_with_subscribers(h, host, lina)
            await h.services.reminders.drain()
    gave_up = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert len(gave_up) == 1, caplog.records
    assert "5 times" in gave_up[0].getMessage()


async def registered(h: Harness, name: str, email: str) -> Account:
    body = {"username": name, "password": "long enough", "email": email}
    answer = await h.call("POST", "/auth/register", json=body)
    assert answer.status_code == 201, answer.text
    return Account(answer.json()["user"]["id"], name, answer.json()["token"])


async def test_register_refuses_a_bad_email(h: Harness) -> None:
    for email in (
        "",
        "no-at",
        "a@b",
        "a@b.c, x@y.z",
        "a@b.c\r\nBcc: x@y.z",
        "x" * 250 + "@b.cd",
        5,
    ):
        body = {"username": "lina", "password": "long enough", "email": email}
        assert_error(await h.call("POST", "/auth/register", json=body), 400)


# the operator's webhook ---------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """Checks each POST's signature; refuses the first with a 503, as a busy server would."""

    calls: ClassVar[list[tuple[bool, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers["X-Majlis-Timestamp"]
        expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        signed = hmac.compare_digest(
            self.headers["X-Majlis-Signature"], "sha256=" + expected.hexdigest()
        )
        fresh = abs(time.time() - int(stamp)) < 300
        self.calls.append((signed and fresh, json.loads(body)))
        self.send_response(503 if len(self.calls) == 1 else 204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bool, dict[str, Any]]]]]:
    Receiver.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.calls
    finally:
        server.shutdown()
        server.server_close()


async def test_the_webhook_is_signed_and_retried(
    tmp_path: Path, receiver: tuple[str, list[tuple[bool, dict[str, Any]]]]
) -> None:
    url, calls = receiver
    flags = {"webhook_url": url, "webhook_secret": SECRET, "notify_retry_s": 0.01}
    async with running_harness(tmp_path, public_url=PUBLIC, **flags) as h:
        host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
        sid = await started_with_subscribers(h, host, lina, omar)
        await h.services.reminders.drain()
    assert len(calls) == 2
    assert all(signed for signed, _ in calls)
    payload = calls[1][1]
    assert (payload["event"], payload["subscribers"]) == ("space_started", 2)
    space = payload["space"]
    assert (space["id"], space["title"], space["url"]) == (
        sid,
        "Tea & talk",
        f"{PUBLIC}/spaces/{sid}",
    )


# several workers (scaled mode: PostgreSQL and Redis) -----------------------------------------


@pytest.mark.scaled
async def test_two_workers_deliver_once(
    tmp_path: Path, receiver: tuple[str, list[tuple[bool, dict[str, Any]]]]
) -> None:
    require_service("redis", redis_reachable())
    require_service("postgres", await postgres_reachable())
    bus_url = redis_url(5)
    redis.Redis.from_url(bus_url).flushdb()  # no lease left by an earlier run
    url, calls = receiver
    async with contextlib.AsyncExitStack() as stack:
        flags = {
            "database_url": await stack.enter_async_context(fresh_database()),
            "bus_url": bus_url,
            "media": False,
            "missed_after_s": 1800.0,
            "webhook_url": url,
            "webhook_secret": SECRET,
            "notify_retry_s": 0.01,
        }
        one, two = [
            await stack.enter_async_context(running_harness(tmp_path / name, **flags))
            for name in ("one", "two")
        ]
        # No media here: a node announced on the bus gives the cluster room for a space.
        node = NodeInfo("node-elsewhere", "http://node.invalid", capacity=1, spaces=0)
        await one.services.bus.set_value(node_key(node.node_id), node.to_json(), 3600)
        host, *fans = [await one.account(n) for n in ("host", "lina", "omar", "sami")]
        sid: str = (await one.create_space(host, "Tea & talk", scheduled_in=600))["id"]
        late: str = (await one.create_space(host, "Never held", scheduled_in=60))["id"]
        for fan in fans:
            for space in (sid, late):
                await one.call("PUT", f"/spaces/{space}/reminder", fan)

        starts = await asyncio.gather(
            *(h.call("POST", f"/spaces/{sid}/start", host) for h in (one, two))
        )
        assert sorted(a.status_code for a in starts) == [200, 409]
        for h in (one, two):
            await h.services.reminders.drain()  # before the clocks jump: signed "now"
            h.clock.advance(60 + 1801)
        marked = await asyncio.gather(*(h.services.missed.tick() for h in (one, two)))  # type: ignore[union-attr]
        assert sorted(s for m in marked for s in m) == [late]

        for fan, h in zip(fans, (one, two, one), strict=True):
            body = await notifications(h, fan)
            kinds = sorted((n["space_id"], n["kind"]) for n in body["notifications"])
            assert kinds == sorted([(sid, "space_started"), (late, "space_missed")])
    delivered = [payload for signed, payload in calls[1:] if signed]
    assert [(p["space"]["id"], p["subscribers"]) for p in delivered] == [(sid, 3)]
