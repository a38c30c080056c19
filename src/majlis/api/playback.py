"""Guards the origin's live playlists with playback tokens.

A live space's playlist needs `?token=<playback token>` for that space, from a holder who
is not banned; parts and segments are immutable and open (their names come only from the
playlist), so an edge can cache them under one key. Replays of ended spaces are open.
The token is checked with HMAC alone plus one bus lookup for bans; no SQL.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.api.middleware import send_error
from majlis.bus.base import Bus
from majlis.errors import Forbidden, MajlisError, Unauthorized
from majlis.services.roles import ban_key
from majlis.services.spaces import Spaces
from majlis.services.tokens import TokenService
from majlis.types import SpaceState

__all__ = ["PlaybackGuard"]


class PlaybackGuard:
    def __init__(self, app: ASGIApp, spaces: Spaces, tokens: TokenService, bus: Bus) -> None:
        self.app = app
        self.spaces = spaces
        self.tokens = tokens
        self.bus = bus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/index.m3u8"):
            try:
                await self._check(scope)
            except MajlisError as error:
                await send_error(send, error)
                return
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope) -> None:
        space_id = scope["path"].rsplit("/", 2)[-2]
        try:
            space = await self.spaces.get_cached(space_id)
        except MajlisError:
            return  # the origin answers 404 for what it does not have
        if space.state is not SpaceState.LIVE:
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        if not token:
            raise Unauthorized("a live playlist needs ?token= from /join", code="token_required")
        space_of_token, member = self.tokens.verify_compact("play", token, 2)
        if space_of_token != space_id:
            raise Forbidden("that playback token is for another space", code="token_mismatch")
        if await self.bus.get_value(ban_key(space_id, member)):
            raise Forbidden("you are banned from this space", code="banned")
