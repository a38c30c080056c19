"""Signed, expiring, audience-bound tokens.

Session and anonymous-listener tokens are JWTs (HS256 only: the algorithm list is pinned so
a token naming another algorithm, or none, is refused). Playback tokens and waiting-room
tickets are a compact HMAC-SHA256 format instead: they are checked on every join poll and,
where an edge is configured, by the edge itself, which should not need a JWT library.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import TypeVar

import jwt

from majlis.clock import Clock
from majlis.errors import Unauthorized
from majlis.signing import compact_key, compact_mac

__all__ = ["Claims", "TokenService"]

SESSION_AUDIENCE = "majlis:session"
ANON_AUDIENCE = "majlis:anon"
_ALGORITHMS = ["HS256"]
_VERIFIED_CACHE = 100_000
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Claims:
    subject: str  # a user id, or "anon:<random>" for anonymous listeners
    audience: str
    token_id: str
    expires_at: float

    @property
    def anonymous(self) -> bool:
        return self.audience == ANON_AUDIENCE


def _remember(cache: dict[str, V], key: str, value: V) -> None:
    if len(cache) >= _VERIFIED_CACHE:
        cache.clear()  # crude but bounded; live clients refill it at once
    cache[key] = value


class TokenService:
    def __init__(self, secret: bytes, clock: Clock) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret
        self._compact_keys: dict[str, bytes] = {}
        self._clock = clock
        self._verified: dict[str, Claims] = {}
        self._refused: dict[str, str] = {}  # forged tokens repeated by a flood

    # JWT: sessions and anonymous ids ----------------------------------------------------
    def issue(self, subject: str, audience: str, ttl: float) -> tuple[str, Claims]:
        now = self._clock.now()
        claims = Claims(subject, audience, secrets.token_urlsafe(12), now + ttl)
        payload = {
            "sub": subject,
            "aud": audience,
            "jti": claims.token_id,
            "iat": int(now),
            "exp": claims.expires_at,
        }
        return jwt.encode(payload, self._secret, algorithm="HS256"), claims

    def verify(self, token: str, audiences: tuple[str, ...]) -> Claims:
        # A client sends the same token on every request; checking its signature once per
        # worker is enough (expiry and audience are still checked every time).
        claims = self._verified.get(token)
        if claims is None:
            refused = self._refused.get(token)
            if refused is not None:
                raise Unauthorized(refused, code="invalid_token")
            try:
                claims = self._decode(token, audiences)
            except Unauthorized as exc:
                _remember(self._refused, token, exc.reason)
                raise
            _remember(self._verified, token, claims)
        if claims.audience not in audiences:
            raise Unauthorized("invalid token: wrong audience", code="invalid_token")
        if claims.expires_at <= self._clock.now():
            raise Unauthorized("token expired", code="token_expired")
        return claims

    def _decode(self, token: str, audiences: tuple[str, ...]) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=_ALGORITHMS,
                audience=list(audiences),
                options={"require": ["sub", "aud", "exp", "jti"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from None
        # Expiry is checked against our clock, not the library's, so it can be tested.
        return Claims(
            str(payload["sub"]), str(payload["aud"]), str(payload["jti"]), float(payload["exp"])
        )

    # compact HMAC: playback tokens and tickets -------------------------------------------
    def sign_compact(self, kind: str, fields: tuple[str, ...], ttl: float) -> str:
        """`kind.field1.field2...expiry.signature`; fields must not contain '.'."""
        expiry = str(int(self._clock.now() + ttl))
        body = ".".join((kind, *fields, expiry))
        return f"{body}.{self._mac(kind, body)}"

    def verify_compact(self, kind: str, token: str, n_fields: int) -> tuple[str, ...]:
        parts = token.split(".")
        if len(parts) != n_fields + 3 or parts[0] != kind:
            raise Unauthorized(f"malformed {kind} token", code="invalid_token")
        body, mac = token.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(kind, body)):
            raise Unauthorized(f"{kind} token signature does not match", code="invalid_token")
        if not parts[-2].isdigit() or int(parts[-2]) <= self._clock.now():
            raise Unauthorized(f"{kind} token expired", code="token_expired")
        return tuple(parts[1:-2])

    def _mac(self, kind: str, body: str) -> str:
        key = self._compact_keys.get(kind)
        if key is None:
            key = self._compact_keys[kind] = compact_key(self._secret, kind)
        return compact_mac(key, body)
