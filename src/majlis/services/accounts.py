"""Accounts: register, log in, log out, anonymous listener ids."""

from __future__ import annotations

import asyncio
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from majlis.clock import Clock
from majlis.errors import BadRequest, Conflict, NotFound, Overloaded, Unauthorized
from majlis.services.auth import Authenticator, Caller
from majlis.services.tokens import ANON_AUDIENCE, SESSION_AUDIENCE, TokenService
from majlis.store.base import DuplicateError, Store
from majlis.types import User

__all__ = ["Accounts", "Me", "PasswordHashing", "Session", "checked_email"]

_T = TypeVar("_T")
USERNAME = re.compile(r"^[A-Za-z0-9_]{3,32}$")
# One plain address: a local part and a dotted domain, printable ASCII without the
# characters that would let it carry a second recipient or a header into a message.
EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
MAX_EMAIL = 254  # RFC 5321's longest path
# A real hash of a throwaway password, so a login for an unknown user costs the same time
# as one for a known user and does not reveal which usernames exist.
# One lane: a hash is one thread's work, so while it runs the event loop keeps a core (or,
# pinned to one core, half of it). Hashes made with argon2-cffi's default of 4 lanes still
# verify: an argon2 hash carries its own parameters.
_hasher = PasswordHasher(parallelism=1)
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


@dataclass(frozen=True, slots=True)
class Me:
    """The caller's account and standing: what the app shows and offers them."""

    user: User
    moderator: bool
    suspended_until: float | None


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    expires_at: float
    user: User | None
    member: str


# Bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) reorder
# the text around them: a title or name with them can display as something it is not.
# Arabic and mixed text need none of them (the marks U+200E/U+200F stay allowed).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_text(value: str, field: str, max_len: int, *, allow_empty: bool = False) -> str:
    """NFC-normalise, refuse control characters, trim, bound the length."""
    text = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" for ch in text):
        raise BadRequest(f"{field} contains control characters", code="invalid_text")
    if any(ch in _BIDI_CONTROLS for ch in text):
        raise BadRequest(f"{field} contains bidirectional override characters", code="invalid_text")
    if not text and not allow_empty:
        raise BadRequest(f"{field} must not be empty", code="invalid_text")
    if len(text) > max_len:
        raise BadRequest(f"{field} is longer than {max_len} characters", code="invalid_text")
    return text


class Accounts:
    def __init__(
        self,
        store: Store,
        tokens: TokenService,
        auth: Authenticator,
        clock: Clock,
        *,
        session_ttl: float,
        hashing: PasswordHashing,
    ) -> None:
        self._hashing = hashing
        self._store = store
        self._tokens = tokens
        self._auth = auth
        self._clock = clock
        self._session_ttl = session_ttl

    async def register(
        self,
        username: str,
        password: str,
        display_name: str | None,
        email: str | None = None,
    ) -> Session:
        if not USERNAME.match(username):
            raise BadRequest(
                "username must be 3 to 32 letters, digits or underscores", code="invalid_username"
            )
        if not 8 <= len(password) <= 256:
            raise BadRequest("password must be 8 to 256 characters", code="invalid_password")
        name = clean_text(display_name or username, "display_name", 64)
        address = None if email is None else checked_email(email)
        password_hash = await self._hashing.run(_hasher.hash, password)
        user = User(secrets.token_hex(8), username, name, self._clock.now(), password_hash, address)
        try:
            await self._store.create_user(user)
        except DuplicateError:
            raise Conflict("that username is taken", code="username_taken") from None
        return self._session(user)

    async def login(self, username: str, password: str) -> Session:
        # A name no account can have is never looked up: it may hold bytes (NUL) the
        # store refuses. It still costs one hash, like any unknown name.
        user = (
            await self._store.get_user_by_username(username) if USERNAME.match(username) else None
        )
        stored = user.password_hash if user else _DUMMY_HASH
        if not await self._hashing.run(_verify, stored, password) or user is None:
            raise Unauthorized("wrong username or password", code="bad_credentials")
        return self._session(user)

    async def logout(self, caller: Caller) -> None:
        if caller.claims is None or caller.claims.anonymous:
            raise Unauthorized("not logged in", code="login_required")
        await self._auth.revoke(caller.claims, self._clock.now())

    def anonymous(self) -> Session:
        token, claims = self._tokens.issue(
            "anon:" + secrets.token_hex(8), ANON_AUDIENCE, self._session_ttl
        )
        return Session(token, claims.expires_at, None, claims.subject)

    async def me(self, caller: Caller) -> Me:
        """Answered to a suspended account too: the app tells it why and how to appeal."""
        user = await self._store.get_user(caller.require_account())
        if user is None:
            raise NotFound("this account no longer exists", code="user_not_found")
        moderator = await self._store.is_moderator(user.id)
        return Me(user, moderator, caller.suspended_until)

    async def get_user(self, user_id: str) -> User:
        user = await self._store.get_user(user_id)
        if user is None:
            raise NotFound("no such user", code="user_not_found")
        return user

    def _session(self, user: User) -> Session:
        token, claims = self._tokens.issue(user.id, SESSION_AUDIENCE, self._session_ttl)
        return Session(token, claims.expires_at, user, user.id)


class PasswordHashing:
    """One argon2 hash at a time per worker, in a thread of its own, with a bounded line.

    Thirty hashes at once in worker threads (a login flood the rate limits let through)
    took the event loop's CPU and stretched everyone else's answers to seconds. Here they
    run one after another; a login that would wait behind `max_waiting` others is refused
    at once (503, Retry-After: the line's expected length), not queued without bound.
    """

    def __init__(self, max_waiting: int, mean_s: float = 0.1) -> None:
        self._max_waiting = max_waiting
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending = 0  # queued or running; dropped when the thread is done with it
        self._mean_s = mean_s  # a guess at one hash's time, for Retry-After

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, work: Callable[..., _T], *args: object) -> _T:
        with self._lock:
            if self._pending > self._max_waiting:
                wait_ms = int(self._pending * self._mean_s * 1000)
                raise Overloaded("too many logins at once; try again shortly", max(1000, wait_ms))
            self._pending += 1
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="argon2")
        future: Future[_T] = self._executor.submit(work, *args)
        # Counted until the thread has finished it, even if the caller goes away.
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1


def _verify(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def checked_email(email: str) -> str:
    """The address, if it is one plain address reminders can be mailed to."""
    if len(email) > MAX_EMAIL or EMAIL.fullmatch(email) is None:
        raise BadRequest("email must be one address like name@example.org", code="invalid_email")
    return email
