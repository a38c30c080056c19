"""HTTP for the speaking flow: requests, invites, stage moves, mute, remove, co-hosts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body, parse_optional_body
from majlis.api.models import (
    MuteBody,
    ParticipantBody,
    RemoveBody,
    RequestBody,
    RequestListBody,
    StageBody,
    UserRefBody,
)
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator, Caller
from majlis.services.roles import Roles

__all__ = ["RoleRoutes"]

ONE = "/api/v1/spaces/{space_id}"
USER = ONE + "/participants/{user_id}"
ACT = (400, 404, 409, 413, 429)

Action = Callable[[Caller, str, str], Awaitable[object]]


class RoleRoutes:
    def __init__(self, roles: Roles, auth: Authenticator) -> None:
        self._roles = roles
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        tag = "speaking"

        act = partial(Endpoint, tag=tag, auth="user", errors=ACT)

        return [
            Endpoint(
                "GET",
                f"{ONE}/participants",
                self.stage,
                "Host, co-hosts and speakers",
                tag,
                answer=StageBody,
                auth="none",
            ),
            act(
                "GET",
                f"{ONE}/requests",
                self.requests,
                "Pending requests to speak",
                answer=RequestListBody,
            ),
            act("POST", f"{ONE}/requests", self.ask, "Ask to speak", ok=204),
            act("DELETE", f"{ONE}/requests", self.withdraw, "Withdraw my request", ok=204),
            act(
                "POST",
                f"{ONE}/requests/{{user_id}}/approve",
                self.approve,
                "Approve a request (host or co-host)",
                answer=ParticipantBody,
            ),
            act(
                "POST",
                f"{ONE}/requests/{{user_id}}/decline",
                self.decline,
                "Decline a request (host or co-host)",
                ok=204,
            ),
            act(
                "POST",
                f"{ONE}/invites",
                self.invite,
                "Invite a listener to speak",
                ok=204,
                body=UserRefBody,
            ),
            act(
                "POST",
                f"{ONE}/invites/accept",
                self.accept,
                "Accept my invitation",
                answer=ParticipantBody,
            ),
            act(
                "POST",
                f"{ONE}/invites/decline",
                self.decline_invite,
                "Decline my invitation",
                ok=204,
            ),
            act("POST", f"{ONE}/step-down", self.step_down, "Leave the stage", ok=204),
            act("POST", f"{USER}/demote", self.demote, "Move a speaker back to listening", ok=204),
            act(
                "POST",
                f"{USER}/mute",
                self.mute,
                "Mute (a moderator, or yourself); the body is optional",
                ok=204,
                body=MuteBody,
                body_required=False,
            ),
            act("POST", f"{USER}/unmute", self.unmute, "Unmute yourself", ok=204),
            act(
                "POST",
                f"{USER}/remove",
                self.remove,
                "Remove from the space, optionally ban",
                ok=204,
                body=RemoveBody,
            ),
            act(
                "POST",
                f"{ONE}/cohosts",
                self.add_cohost,
                "Name a co-host (host only)",
                body=UserRefBody,
                answer=ParticipantBody,
            ),
            act(
                "POST",
                f"{ONE}/host",
                self.transfer_host,
                "Hand the space to a co-host, staying on as a co-host (host only, live)",
                body=UserRefBody,
                answer=ParticipantBody,
            ),
            act(
                "DELETE",
                f"{ONE}/cohosts/{{user_id}}",
                self.remove_cohost,
                "Make a co-host a speaker again (host only)",
                answer=ParticipantBody,
            ),
        ]

    async def _caller(self, request: Request) -> tuple[Caller, str]:
        return await caller_of(request, self._auth), request.path_params["space_id"]

    async def stage(self, request: Request) -> Response:
        stage = await self._roles.stage(request.path_params["space_id"])
        return json_response({"participants": [ParticipantBody.of(p).model_dump() for p in stage]})

    async def requests(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        pending = await self._roles.requests(caller, space_id)
        return json_response({"requests": [RequestBody.of(r).model_dump() for r in pending]})

    async def ask(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.ask(caller, space_id)
        return Response(status_code=204)

    async def withdraw(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.withdraw(caller, space_id)
        return Response(status_code=204)

    async def approve(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        p = await self._roles.approve(caller, space_id, request.path_params["user_id"])
        return json_response(ParticipantBody.of(p).model_dump())

    async def decline(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.decline(caller, space_id, request.path_params["user_id"])
        return Response(status_code=204)

    async def invite(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        body = await parse_body(request, UserRefBody)
        await self._roles.invite(caller, space_id, body.user_id, body.username)
        return Response(status_code=204)

    async def accept(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        p = await self._roles.accept_invite(caller, space_id)
        return json_response(ParticipantBody.of(p).model_dump())

    async def decline_invite(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.decline_invite(caller, space_id)
        return Response(status_code=204)

    async def step_down(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.step_down(caller, space_id)
        return Response(status_code=204)

    async def demote(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.demote(caller, space_id, request.path_params["user_id"])
        return Response(status_code=204)

    async def mute(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        body = await parse_optional_body(request, MuteBody)
        user_id = request.path_params["user_id"]
        await self._roles.set_muted(caller, space_id, user_id, True, body.reason)
        return Response(status_code=204)

    async def unmute(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        await self._roles.set_muted(caller, space_id, request.path_params["user_id"], False)
        return Response(status_code=204)

    async def remove(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        body = await parse_body(request, RemoveBody)
        user_id = request.path_params["user_id"]
        await self._roles.remove(caller, space_id, user_id, body.ban, body.reason, body.category)
        return Response(status_code=204)

    async def add_cohost(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        body = await parse_body(request, UserRefBody)
        p = await self._roles.add_cohost(caller, space_id, body.user_id, body.username)
        return json_response(ParticipantBody.of(p).model_dump())

    async def transfer_host(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        body = await parse_body(request, UserRefBody)
        p = await self._roles.transfer_host(caller, space_id, body.user_id, body.username)
        return json_response(ParticipantBody.of(p).model_dump())

    async def remove_cohost(self, request: Request) -> Response:
        caller, space_id = await self._caller(request)
        p = await self._roles.remove_cohost(caller, space_id, request.path_params["user_id"])
        return json_response(ParticipantBody.of(p).model_dump())
