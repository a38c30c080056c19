"""Guards the HLS origin with playback tokens carried in the path.

A live space is served at `/hls/{space}/{token}/{file}`: the playlist, its init segment,
segments and parts all carry the playback token from /join, so relative URIs in the
playlist inherit it in every player (hls.js, Safari, ffmpeg) and an edge can check it on
every request without keeping it in its cache key. The guard checks the token (HMAC and
expiry, no SQL), that it names this space, and on playlists that its holder is not banned
(one bus lookup); then it hands the origin the path without the token, so the origin serves
the same bytes to everyone.

Without a token, `/hls/{space}/{file}` serves only spaces that are not live and not
private: their replays are open. Asking for a live space's or a private space's files
without a token is a 401 that says where the token goes.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.api.middleware import send_error
from majlis.bus.base import Bus
from majlis.errors import Forbidden, MajlisError, Unauthorized
from majlis.services.roles import ban_key
from majlis.services.spaces import Spaces
from majlis.services.tokens import TokenService
from majlis.signing import PLAYBACK
from majlis.types import SpaceState, Visibility

__all__ = ["PlaybackGuard"]

# Playlists: what a player reloads, so where a ban is looked for. main.m3u8 is the
# multivariant playlist (audio and live captions), captions.m3u8 the captions' own.
_PLAYLISTS = frozenset({"index.m3u8", "main.m3u8", "captions.m3u8"})


class PlaybackGuard:
    def __init__(self, app: ASGIApp, spaces: Spaces, tokens: TokenService, bus: Bus) -> None:
        self.app = app
        self.spaces = spaces
        self.tokens = tokens
        self.bus = bus

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        names = scope["path"][len(root) :].strip("/").split("/")
        try:
            if len(names) == 3 and names[1].startswith(f"{PLAYBACK}."):
                space_id, token, name = names
                await self._check_token(space_id, token, name)
                path = f"{root}/{space_id}/{name}"
                scope = {**scope, "path": path, "raw_path": path.encode()}
            elif len(names) == 2:
                await self._refuse_live(names[0])
        except MajlisError as error:
            await send_error(send, error)
            return
        await self.app(scope, receive, send)

    async def _check_token(self, space_id: str, token: str, name: str) -> None:
        space_of_token, member = self.tokens.verify_compact(PLAYBACK, token, 2)
        if space_of_token != space_id:
            raise Forbidden("that playback token is for another space", code="token_mismatch")
        if name in _PLAYLISTS and await self.bus.get_value(ban_key(space_id, member)):
            raise Forbidden("you are banned from this space", code="banned")

    async def _refuse_live(self, space_id: str) -> None:
        try:
            space = await self.spaces.get_cached(space_id)
        except MajlisError:
            return  # the origin answers 404 for what it does not have
        if space.state is SpaceState.LIVE:
            raise Unauthorized(
                "a live space is served at /hls/{space}/{token}/…: use the playback_url "
                "from POST /api/v1/spaces/{space}/join",
                code="token_required",
            )
        if space.visibility is Visibility.PRIVATE:
            raise Unauthorized(
                "a private space's replay is served at /hls/{space}/{token}/…: its guests "
                "get the URL from GET /api/v1/spaces/{space}/replay",
                code="token_required",
            )
