"""HTTP for users' pictures: the owner puts or deletes theirs; anyone gets anyone's."""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.avatars import IMAGE_TYPES, Avatars

__all__ = ["AvatarRoutes"]

MINE = "/api/v1/auth/me/avatar"
# A picture changes under the same URL: a few minutes in caches, then asked again (an
# unchanged one answers 304 from its ETag).
_CACHE = "public, max-age=300"


class AvatarRoutes:
    def __init__(self, avatars: Avatars, auth: Authenticator) -> None:
        self._avatars = avatars
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        tag = "accounts"
        return [
            Endpoint(
                "PUT",
                MINE,
                self.put,
                "Set my picture: a PNG, JPEG or WebP of 32 to 1024 pixels a side, up to the "
                "request size limit (64 KiB by default)",
                tag,
                ok=204,
                raw_body=tuple(IMAGE_TYPES),
                auth="user",
                errors=(400, 413, 415, 429),
            ),
            Endpoint("DELETE", MINE, self.delete, "Remove my picture", tag, ok=204, auth="user"),
            Endpoint(
                "GET",
                "/api/v1/users/{user_id}/avatar",
                self.get,
                "A user's picture (404: none; show their initials)",
                tag,
                content_type="image/*",
                auth="none",
            ),
        ]

    async def put(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        content_type = request.headers.get("content-type", "")
        await self._avatars.put(caller, content_type, await request.body())
        return Response(status_code=204)

    async def delete(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        await self._avatars.remove(caller)
        return Response(status_code=204)

    async def get(self, request: Request) -> Response:
        avatar = await self._avatars.get(request.path_params["user_id"])
        etag = '"' + hashlib.sha256(avatar.data).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        return Response(avatar.data, media_type=avatar.content_type, headers=headers)
