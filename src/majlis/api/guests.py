"""HTTP for a private space's guest list (its host and co-hosts)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body
from majlis.api.models import _Strict
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.guests import Guests
from majlis.types import User

__all__ = ["GuestBody", "GuestListBody", "GuestRoutes"]

LIST = "/api/v1/spaces/{space_id}/guests"
_PRIVATE = {"Cache-Control": "private, no-store"}


class GuestAddBody(_Strict):
    username: str = Field(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_]+$")


class GuestBody(BaseModel):
    user_id: str
    username: str
    display_name: str


class GuestListBody(BaseModel):
    guests: list[GuestBody]


def _guest(user: User) -> dict[str, str]:
    return GuestBody(
        user_id=user.id, username=user.username, display_name=user.display_name
    ).model_dump()


class GuestRoutes:
    def __init__(self, guests: Guests, auth: Authenticator) -> None:
        self._guests = guests
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        tag = "spaces"
        errors = (400, 403, 404, 409, 413, 429)
        return [
            Endpoint(
                "GET",
                LIST,
                self.guests,
                "A private space's guests (host and co-hosts)",
                tag,
                answer=GuestListBody,
                auth="user",
                errors=errors,
            ),
            Endpoint(
                "POST",
                LIST,
                self.add_guest,
                "Let a user listen to a private space, by username (host and co-hosts)",
                tag,
                ok=201,
                body=GuestAddBody,
                answer=GuestBody,
                auth="user",
                errors=errors,
            ),
            Endpoint(
                "DELETE",
                f"{LIST}/{{user_id}}",
                self.remove_guest,
                "Take a user off the guest list (host and co-hosts)",
                tag,
                ok=204,
                auth="user",
                errors=errors,
            ),
        ]

    async def guests(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        guests = await self._guests.list(caller, request.path_params["space_id"])
        return json_response({"guests": [_guest(g) for g in guests]}, headers=_PRIVATE)

    async def add_guest(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, GuestAddBody)
        guest = await self._guests.add(caller, request.path_params["space_id"], body.username)
        return json_response(_guest(guest), 201, headers=_PRIVATE)

    async def remove_guest(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        params = request.path_params
        await self._guests.remove(caller, params["space_id"], params["user_id"])
        return Response(status_code=204)
