"""Who is calling: turn a session or anonymous token into a Caller."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from majlis.bus.base import Bus
from majlis.errors import Forbidden, Unauthorized
from majlis.services.tokens import ANON_AUDIENCE, SESSION_AUDIENCE, Claims, TokenService
from majlis.store.base import Store

__all__ = ["Authenticator", "Caller", "revoked_key", "suspended_key"]

_REVOKED = "revoked:"
_SUSPENDED = "suspended:"


@dataclass(frozen=True, slots=True)
class Caller:
    """The party making a request. `member` is what presence and rate limits key on."""

    ip: str
    claims: Claims | None = None
    # A suspended account may still log in, read its statements of reasons and appeal;
    # everything else refuses it (require_user, require_member).
    suspended_until: float | None = None

    @property
    def user_id(self) -> str | None:
        if self.claims is None or self.claims.anonymous:
            return None
        return self.claims.subject

    @property
    def member(self) -> str | None:
        return None if self.claims is None else self.claims.subject

    def require_account(self) -> str:
        """The logged-in user, suspended or not: for reading what was done to them and
        appealing it."""
        user_id = self.user_id
        if user_id is None:
            raise Unauthorized("log in first", code="login_required")
        return user_id

    def require_user(self) -> str:
        user_id = self.require_account()
        self._refuse_suspended()
        return user_id

    def require_member(self) -> str:
        member = self.member
        if member is None:
            raise Unauthorized(
                "send a session or anonymous token (POST /api/v1/auth/anonymous gives one)",
                code="token_required",
            )
        self._refuse_suspended()
        return member

    def _refuse_suspended(self) -> None:
        if self.suspended_until is None:
            return
        until = datetime.fromtimestamp(self.suspended_until, UTC).isoformat(timespec="minutes")
        raise Forbidden(
            f"this account is suspended until {until}; GET /api/v1/notices says why and "
            "how to appeal",
            code="account_suspended",
        )


def revoked_key(token_id: str) -> str:
    return _REVOKED + token_id


def suspended_key(user_id: str) -> str:
    """Bus key of a suspension in force: the end time, expiring with it."""
    return _SUSPENDED + user_id


# Logged-out token ids this worker has seen: a flood replaying one costs a dictionary
# lookup, not a bus round trip per request. A revocation is never undone, so the note
# never goes stale; an expired token is refused by its signature check before this.
REVOKED_SEEN_MAX = 10_000


class Authenticator:
    def __init__(self, tokens: TokenService, bus: Bus, store: Store) -> None:
        self._tokens = tokens
        self._bus = bus
        self._store = store
        self._revoked_seen: dict[str, None] = {}  # token ids, oldest first

    async def caller(self, token: str | None, ip: str) -> Caller:
        """A Caller for `token`; no token gives an anonymous Caller with no claims."""
        if not token:
            return Caller(ip)
        claims = self._tokens.verify(token, (SESSION_AUDIENCE, ANON_AUDIENCE))
        if claims.anonymous:
            return Caller(ip, claims)
        self._refuse_seen(claims)
        # Both checks in one bus round trip: every logged-in request makes them.
        revoked, until = await self._bus.get_many(
            (revoked_key(claims.token_id), suspended_key(claims.subject))
        )
        if revoked:
            self._refuse_revoked(claims)
        return Caller(ip, claims, None if until is None else float(until))

    async def claims(self, token: str) -> Claims:
        """The claims of a valid session or anonymous token; Unauthorized for a forged,
        expired or logged-out one."""
        claims = self._tokens.verify(token, (SESSION_AUDIENCE, ANON_AUDIENCE))
        if claims.anonymous:
            return claims
        self._refuse_seen(claims)
        if await self._bus.get_value(revoked_key(claims.token_id)):
            self._refuse_revoked(claims)
        return claims

    def _refuse_seen(self, claims: Claims) -> None:
        if claims.token_id in self._revoked_seen:
            self._refuse_revoked(claims)

    def _refuse_revoked(self, claims: Claims) -> NoReturn:
        self._remember_revoked(claims)
        raise Unauthorized("this session has been logged out", code="token_revoked")

    def _remember_revoked(self, claims: Claims) -> None:
        seen = self._revoked_seen
        if claims.token_id in seen:
            return
        if len(seen) >= REVOKED_SEEN_MAX:
            del seen[next(iter(seen))]  # the first noted; it may well have expired
        seen[claims.token_id] = None

    async def revoke(self, claims: Claims, now: float) -> None:
        """Stored first (it must outlive any restart: SecurityState rebuilds the bus
        from it), then on the bus, where the request path looks. Kept only until the
        token would have expired anyway."""
        await self._store.revoke_token(claims.token_id, claims.expires_at)
        ttl = max(1.0, claims.expires_at - now)
        await self._bus.set_value(revoked_key(claims.token_id), "1", ttl)
        self._remember_revoked(claims)
