"""Harnesses for the control-plane tests.

In-process: the real app and services on a temporary SQLite file and the memory bus, a clock
that follows real time plus an offset the test can move, and httpx over ASGI (which lets a
test pick the client's IP address).

Real server: `majlis serve --port 0` as a subprocess, configured through MAJLIS_* variables,
reached over real HTTP and WebSockets; optionally on PostgreSQL and Redis (scaled mode).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from conftest import POSTGRES_URL, REDIS_URL, require_service
from majlis.api.overload import LoopLag
from majlis.app import Services, build_app, build_services
from majlis.config import load_config
from majlis.services.tokens import SESSION_AUDIENCE
from majlis.serving.door import Door
from majlis.types import User

V1 = "/api/v1"
# A fixed secret, so tests can mint and forge tokens the way an attacker or a clock would.
SECRET = "test-secret-" + "0123456789abcdef" * 3

SOCKETS_PER_USER = 5  # event sockets one user may hold on the shared server

# Limits high enough that a test not about them never meets them.
RELAXED_LIMITS: dict[str, object] = {
    "write_rate_ip": 100_000.0,
    "write_burst_ip": 100_000,
    "write_rate_user": 100_000.0,
    "write_burst_user": 100_000,
    "auth_rate_ip": 100_000.0,
    "auth_burst_ip": 100_000,
    "reaction_rate": 1000.0,
    "reaction_burst": 1000,
    "max_requests_per_ip": 100_000,
    # Fuzzing leaves hundreds of spaces live; a scaled node would be full at 50.
    "node_capacity": 100_000,
    # Bursts here test behaviour, not shedding (test_overload.py does): a busy CI machine
    # must not turn them into 503s.
    "overload_target_ms": 0.0,
    # Nor into tickets: the waiting room keeps its configured rate (test_admission_control.py
    # tests the rate that follows the delay).
    "admission_target_ms": 0.0,
    # Nobody speaks in most of these tests and their clock jumps: spaces must not end or
    # change hands under them (test_continuity.py turns it on).
    "host_absence_s": 0.0,
    # Nor is the audience sampled in the background: a sample at a moment the test did not
    # choose would change the curve (test_audience.py samples by hand).
    "audience_sample_s": 0.0,
    "empty_stage_s": 0.0,
    # Nor may scheduled spaces be marked missed when a test jumps past their time
    # (test_reminders.py turns it on).
    "missed_after_s": 0.0,
}


# tokens ------------------------------------------------------------------------------------


def mint_token(
    subject: str,
    *,
    audience: str = SESSION_AUDIENCE,
    expires_at: float | None = None,
    secret: str = SECRET,
) -> str:
    """A JWT as the server would sign it (or, with another secret, a forgery)."""
    payload = {
        "sub": subject,
        "aud": audience,
        "jti": secrets.token_urlsafe(12),
        "iat": int(time.time()),
        "exp": expires_at if expires_at is not None else time.time() + 3600,
    }
    return jwt.encode(payload, secret, algorithm="HS256")


def unsigned_token(subject: str, audience: str = SESSION_AUDIENCE) -> str:
    """A JWT with alg "none" and no signature."""

    def part(data: Mapping[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = {"alg": "none", "typ": "JWT"}
    payload = {"sub": subject, "aud": audience, "jti": "x", "exp": time.time() + 3600}
    return f"{part(header)}.{part(payload)}."


# in-process harness ------------------------------------------------------------------------


class OffsetClock:
    """Real time plus an offset the test moves forward to jump over windows and expiries.
    Frozen, it stands still but for `advance`: timing is then exact, whatever the load."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._frozen_at: float | None = None

    def now(self) -> float:
        base = time.time() if self._frozen_at is None else self._frozen_at
        return base + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def freeze(self) -> None:
        self._frozen_at = time.time()


@dataclass(frozen=True)
class Account:
    """Someone who calls the API: a user id (or anonymous member id) and a bearer token."""

    id: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Harness:
    def __init__(self, services: Services, clock: OffsetClock, app: Any) -> None:
        self.services = services
        self.clock = clock
        self.app = app
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, ip: str = "192.0.2.1") -> httpx.AsyncClient:
        """One client per source address (the app sees `ip` as the caller's IP)."""
        if ip not in self._clients:
            transport = httpx.ASGITransport(app=self.app, client=(ip, 40000))
            self._clients[ip] = httpx.AsyncClient(
                transport=transport, base_url="http://majlis.test"
            )
        return self._clients[ip]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def call(
        self,
        method: str,
        path: str,
        who: Account | None = None,
        *,
        json: object = None,
        headers: Mapping[str, str] | None = None,
        ip: str = "192.0.2.1",
    ) -> httpx.Response:
        all_headers = {**(who.headers if who else {}), **(headers or {})}
        return await self.client(ip).request(
            method, V1 + path, json=json, headers=all_headers or None
        )

    async def account(self, username: str) -> Account:
        """A user straight in the store with a session token: no argon2, so it is quick."""
        user = User(
            id=secrets.token_hex(8),
            username=username,
            display_name=username.title(),
            created_at=self.clock.now(),
            password_hash="!",
        )
        await self.services.store.create_user(user)
        token, _ = self.services.tokens.issue(user.id, SESSION_AUDIENCE, 3600)
        return Account(user.id, username, token)

    async def anonymous(self) -> Account:
        answer = await self.call("POST", "/auth/anonymous")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return Account(body["member"], "", body["token"])

    async def create_space(
        self,
        host: Account,
        title: str = "Majlis test space",
        *,
        scheduled_in: float | None = None,
        visibility: str = "public",
        description: str = "",
    ) -> dict[str, Any]:
        body: dict[str, object] = {
            "title": title,
            "visibility": visibility,
            "description": description,
        }
        if scheduled_in is not None:
            body["scheduled_for"] = self.clock.now() + scheduled_in
        answer = await self.call("POST", "/spaces", host, json=body)
        assert answer.status_code == 201, answer.text
        space: dict[str, Any] = answer.json()
        return space

    async def make_speaker(self, space_id: str, host: Account, who: Account) -> None:
        asked = await self.call("POST", f"/spaces/{space_id}/requests", who)
        assert asked.status_code == 204, asked.text
        approved = await self.call("POST", f"/spaces/{space_id}/requests/{who.id}/approve", host)
        assert approved.status_code == 200, approved.text


@contextlib.asynccontextmanager
async def running_harness(
    data_dir: Path, *, lag: LoopLag | None = None, door: Door | None = None, **flags: object
) -> AsyncIterator[Harness]:
    """The app with its lifespan running; `flags` override config keys (`media=True` for
    a media worker); `lag`, if given, stands in for the event loop's measured delay, and
    `door` for the configured one."""
    # No media worker unless asked for: spawning one costs each test about half a second,
    # and most test the control plane alone.
    defaults = {"data_dir": data_dir, "secret_key": SECRET, "media": False}
    config = load_config(environ={}, flags={**defaults, **RELAXED_LIMITS, **flags})
    clock = OffsetClock()
    services = build_services(config, clock, lag, door)
    app = build_app(services)
    async with app.router.lifespan_context(app):
        harness = Harness(services, clock, app)
        try:
            yield harness
        finally:
            await harness.aclose()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path) as h:
        yield h


def assert_error(answer: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """A refusal: the status, a JSON body with an error code and a reason a person can read."""
    assert answer.status_code == status, f"{answer.status_code} {answer.text}"
    assert answer.headers["content-type"].startswith("application/json"), answer.headers
    body: dict[str, Any] = answer.json()
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["reason"], str) and len(body["reason"]) >= 5, body
    if code is not None:
        assert body["error"] == code, body
    return body


# real server -------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[str]
    base_url: str
    data_dir: Path
    log_path: Path

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def majlis_command() -> list[str]:
    script = Path(sys.executable).parent / "majlis"
    if script.exists():
        return [str(script)]
    found = shutil.which("majlis")
    return [found] if found else [sys.executable, "-m", "majlis.cli"]


def start_server(data_dir: Path, env: Mapping[str, str] | None = None) -> Server:
    """`majlis serve --port 0`; returns once it has printed the address it listens on."""
    data_dir.mkdir(parents=True, exist_ok=True)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MAJLIS_")}
    settings = {f"MAJLIS_{k.upper()}": str(v) for k, v in RELAXED_LIMITS.items()}
    full_env = {**base_env, **settings, "MAJLIS_SECRET_KEY": SECRET, **(env or {})}
    log_path = data_dir / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*majlis_command(), "serve", "--port", "0", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=log,
            env=full_env,
            text=True,
        )
    server = Server(process, "", data_dir, log_path)
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if "listening on " in line:
                server.base_url = line.split("listening on ", 1)[1].split()[0]
                break
        if process.poll() is not None:
            break
    if not server.base_url:
        server.stop()
        pytest.fail(f"majlis serve did not start:\n{server.log()}")
    _wait_healthy(server)
    return server


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.base_url + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    server.stop()
    pytest.fail(f"majlis serve never answered /healthz:\n{server.log()}")


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded server for tests that need a real one but no special configuration."""
    env = {"MAJLIS_MAX_WS_PER_USER": str(SOCKETS_PER_USER)}
    server = start_server(tmp_path_factory.mktemp("shared-server"), env)
    try:
        yield server
    finally:
        server.stop()


# scaled mode: PostgreSQL and Redis ---------------------------------------------------------


def redis_reachable() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except (redis.RedisError, OSError):
        return False


async def postgres_reachable() -> bool:
    try:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards."""
    name = f"majlis_api_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


# Parameters for tests that run on both deployments.
BACKENDS = [pytest.param("embedded"), pytest.param("scaled", marks=pytest.mark.scaled)]


@contextlib.asynccontextmanager
async def backend_server(
    backend: str, data_dir: Path, env: Mapping[str, str] | None = None
) -> AsyncIterator[Server]:
    """`majlis serve` on the embedded default, or on PostgreSQL and Redis ("scaled")."""
    extra = dict(env or {})
    async with contextlib.AsyncExitStack() as stack:
        if backend == "scaled":
            require_service("redis", redis_reachable())
            require_service("postgres", await postgres_reachable())
            extra["MAJLIS_BUS_URL"] = REDIS_URL
            extra["MAJLIS_DATABASE_URL"] = await stack.enter_async_context(fresh_database())
        server = await asyncio.to_thread(start_server, data_dir, extra)
        try:
            yield server
        finally:
            await asyncio.to_thread(server.stop)


# event sockets -----------------------------------------------------------------------------


@dataclass
class EventStream:
    """One participant's event socket; keeps every message it has read."""

    ws: ClientConnection
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def next(self, within: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), within)
        message: dict[str, Any] = json.loads(raw)
        self.seen.append(message)
        return message

    async def wait_for(self, kind: str, within: float = 5.0, **data: object) -> dict[str, Any]:
        """The next message of type `kind` whose data has the given items."""
        return await self.wait_for_match(kind, data, within)

    async def wait_for_match(
        self, kind: str, data: Mapping[str, object], within: float = 5.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [m.get("type") for m in self.seen]
                raise AssertionError(f"no {kind} {data} within {within}s; saw {kinds}")
            try:
                message = await self.next(remaining)
            except TimeoutError:
                continue
            payload = message.get("data") or {}
            if message.get("type") == kind and all(payload.get(k) == v for k, v in data.items()):
                return message

    async def closed(self, within: float = 5.0) -> tuple[int, str]:
        """Read until the server closes; (close code, reason)."""
        try:
            async with asyncio.timeout(within):
                while True:
                    await self.next(within)
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "closed without a close frame"
            return exc.rcvd.code, exc.rcvd.reason

    async def close(self) -> None:
        await self.ws.close()


async def open_events(server: Server, space_id: str, who: Account | None) -> EventStream:
    """An event socket that must be accepted: its first message is 'hello'."""
    headers = who.headers if who else {}
    ws = await connect(f"{server.ws_url}{V1}/spaces/{space_id}/events", additional_headers=headers)
    stream = EventStream(ws)
    hello = await stream.next()
    assert hello["type"] == "hello", hello
    return stream


async def refused_socket(server: Server, space_id: str, who: Account | None) -> tuple[int, str]:
    """Open an event socket that must be refused; (close code, reason)."""
    headers = who.headers if who else {}
    async with connect(
        f"{server.ws_url}{V1}/spaces/{space_id}/events", additional_headers=headers
    ) as ws:
        stream = EventStream(ws)
        code, reason = await stream.closed()
        assert stream.seen == [], f"a refused socket got messages: {stream.seen}"
        return code, reason
