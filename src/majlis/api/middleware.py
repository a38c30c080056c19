"""Pure ASGI middleware that runs before any expensive work: body size and rate limits."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from majlis.api.http import remember_caller, token_and_source
from majlis.bus.base import Bus
from majlis.clock import Clock
from majlis.errors import MajlisError, PayloadTooLarge, RateLimited, Unauthorized
from majlis.services.auth import Authenticator

__all__ = ["BodyLimit", "RateLimit", "RateLimits", "error_parts", "retry_headers", "send_error"]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def retry_headers(error: MajlisError) -> dict[str, str]:
    """Retry-After in seconds (HTTP's unit) and in milliseconds, for overload answers."""
    if not isinstance(error, RateLimited):
        return {}
    seconds = math.ceil(error.retry_after_ms / 1000)
    return {"Retry-After": str(seconds), "Retry-After-Ms": str(error.retry_after_ms)}


def error_parts(error: MajlisError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The status, headers (with the content-length) and body that answer `error`."""
    # An edge or a browser must never keep a refusal meant for one request.
    headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
    headers += [(k.lower().encode(), v.encode()) for k, v in retry_headers(error).items()]
    body = orjson.dumps(error.body())
    headers.append((b"content-length", str(len(body)).encode()))
    return error.status, headers, body


async def send_error(send: Send, error: MajlisError) -> None:
    status, headers, body = error_parts(error)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for a body over the limit: at once from Content-Length, or while it streams."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            too_big = not value.isdigit() or int(value) > self.max_bytes
            if name == b"content-length" and too_big:
                await send_error(send, self._error())
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise self._error()
            return message

        await self.app(scope, limited, send)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body is larger than {self.max_bytes} bytes")


@dataclass(frozen=True, slots=True)
class RateLimits:
    write_rate_ip: float
    write_burst_ip: int
    write_rate_user: float
    write_burst_user: int
    auth_rate_ip: float
    auth_burst_ip: int


class RateLimit:
    """Per-IP and per-user limits on every write, checked before the body is read.

    The user is read from the token (its signature, and the worker's note of logged-out
    tokens or one bus lookup; no store): an invalid bearer token is refused here.
    """

    def __init__(
        self,
        app: ASGIApp,
        bus: Bus,
        auth: Authenticator,
        clock: Clock,
        limits: RateLimits,
        is_auth_path: Callable[[str], bool],
    ) -> None:
        self.app = app
        self.bus = bus
        self.auth = auth
        self.clock = clock
        self.limits = limits
        self.is_auth_path = is_auth_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            wait = await self._check(scope)
        except Unauthorized as error:
            # Refused here, before routing and body parsing: a flood of forged tokens costs
            # a dictionary lookup (TokenService caches verdicts) and a canned answer.
            await send_error(send, error)
            return
        if wait > 0:
            ms = math.ceil(wait * 1000)
            await send_error(send, RateLimited("too many requests; slow down", ms))
            return
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope) -> float:
        now = self.clock.now()
        limits = self.limits
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        if self.is_auth_path(scope["path"]):
            rate, burst, key = limits.auth_rate_ip, limits.auth_burst_ip, f"rl:auth:{ip}"
        else:
            rate, burst, key = limits.write_rate_ip, limits.write_burst_ip, f"rl:ip:{ip}"
        wait = await self.bus.hit_rate_limit(key, rate, burst, now)
        if wait > 0:
            return wait
        subject = await self._subject(scope, ip)
        if subject is None:
            return 0.0
        return await self.bus.hit_rate_limit(
            f"rl:user:{subject}", limits.write_rate_user, limits.write_burst_user, now
        )

    async def _subject(self, scope: Scope, ip: str) -> str | None:
        """The token's subject. An invalid bearer token (forged, expired, logged out)
        raises Unauthorized: every endpoint would refuse it anyway. An invalid cookie is
        ignored here, since a browser may log in again while holding an expired one."""
        token, from_header = token_and_source(HTTPConnection(scope))
        if token is None:
            return None
        try:
            caller = await self.auth.caller(token, ip)
        except Unauthorized:
            if from_header and not scope["path"].startswith("/api/v1/auth/"):
                raise
            return None
        remember_caller(scope, caller)
        return caller.member
