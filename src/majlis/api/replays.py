"""HTTP for deleting a replay (the host of an ended space)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.replays import Replays

__all__ = ["ReplayRoutes"]


class ReplayRoutes:
    def __init__(self, replays: Replays, auth: Authenticator) -> None:
        self._replays = replays
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "DELETE",
                "/api/v1/spaces/{space_id}/replay",
                self.delete,
                "Delete an ended space's replay: its recording, transcript and clips (host "
                "only; it cannot be undone)",
                "spaces",
                ok=204,
                auth="user",
                errors=(400, 404, 409, 429, 503),
            )
        ]

    async def delete(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        await self._replays.delete(caller, request.path_params["space_id"])
        return Response(status_code=204)
