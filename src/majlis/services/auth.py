"""Who is calling: turn a session or anonymous token into a Caller."""

from __future__ import annotations

from dataclasses import dataclass

from majlis.bus.base import Bus
from majlis.errors import Unauthorized
from majlis.services.tokens import ANON_AUDIENCE, SESSION_AUDIENCE, Claims, TokenService
from majlis.store.base import Store

__all__ = ["Authenticator", "Caller", "revoked_key"]

_REVOKED = "revoked:"


@dataclass(frozen=True, slots=True)
class Caller:
    """The party making a request. `member` is what presence and rate limits key on."""

    ip: str
    claims: Claims | None = None

    @property
    def user_id(self) -> str | None:
        if self.claims is None or self.claims.anonymous:
            return None
        return self.claims.subject

    @property
    def member(self) -> str | None:
        return None if self.claims is None else self.claims.subject

    def require_user(self) -> str:
        user_id = self.user_id
        if user_id is None:
            raise Unauthorized("log in first", code="login_required")
        return user_id

    def require_member(self) -> str:
        member = self.member
        if member is None:
            raise Unauthorized(
                "send a session or anonymous token (POST /api/v1/auth/anonymous gives one)",
                code="token_required",
            )
        return member


def revoked_key(token_id: str) -> str:
    return _REVOKED + token_id


class Authenticator:
    def __init__(self, tokens: TokenService, bus: Bus, store: Store) -> None:
        self._tokens = tokens
        self._bus = bus
        self._store = store

    async def caller(self, token: str | None, ip: str) -> Caller:
        """A Caller for `token`; no token gives an anonymous Caller with no claims."""
        if not token:
            return Caller(ip)
        claims = self._tokens.verify(token, (SESSION_AUDIENCE, ANON_AUDIENCE))
        if not claims.anonymous and await self._bus.get_value(revoked_key(claims.token_id)):
            raise Unauthorized("this session has been logged out", code="token_revoked")
        return Caller(ip, claims)

    async def revoke(self, claims: Claims, now: float) -> None:
        """Stored first (it must outlive any restart: SecurityState rebuilds the bus
        from it), then on the bus, where the request path looks. Kept only until the
        token would have expired anyway."""
        await self._store.revoke_token(claims.token_id, claims.expires_at)
        ttl = max(1.0, claims.expires_at - now)
        await self._bus.set_value(revoked_key(claims.token_id), "1", ttl)
