"""HTTP for listeners: join (waiting room), heartbeat, leave, react."""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body
from majlis.api.models import (
    AdmittedBody,
    HeartbeatBody,
    JoinBody,
    ListenerListBody,
    ListenerNameBody,
    QueuedBody,
    ReactionBody,
    TallyBody,
)
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.listeners import Admitted, Listeners

__all__ = ["ListenerRoutes", "poll_interval_ms"]

ONE = "/api/v1/spaces/{space_id}"
ERRORS = (400, 404, 409, 413, 429)


def poll_interval_ms(estimated_wait_ms: int) -> int:
    """Poll about twice before the estimate, never faster than 2/s, never slower than 1/5 s."""
    return max(500, min(5000, estimated_wait_ms // 2))


class ListenerRoutes:
    def __init__(self, listeners: Listeners, auth: Authenticator) -> None:
        self._listeners = listeners
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        tag = "listening"
        return [
            Endpoint(
                "POST",
                f"{ONE}/join",
                self.join,
                "Join as a listener: 200 with a playback token, or 202 with a ticket to "
                "poll with (the waiting room)",
                tag,
                body=JoinBody,
                answer=AdmittedBody,
                other_answers={202: QueuedBody},
                auth="member",
                errors=ERRORS,
            ),
            Endpoint(
                "GET",
                f"{ONE}/listeners",
                self.listener_list,
                "Who is listening: signed-in listeners by name, and a count of anonymous "
                "ones (host and co-hosts only)",
                tag,
                answer=ListenerListBody,
                auth="user",
                errors=(400, 404, 429),
            ),
            Endpoint(
                "POST",
                f"{ONE}/heartbeat",
                self.heartbeat,
                "Keep me counted; returns a fresh playback token",
                tag,
                body=HeartbeatBody,
                answer=AdmittedBody,
                auth="member",
                errors=ERRORS,
            ),
            Endpoint(
                "POST",
                f"{ONE}/leave",
                self.leave,
                "Stop counting me",
                tag,
                ok=204,
                auth="member",
                errors=ERRORS,
            ),
            Endpoint(
                "POST",
                f"{ONE}/reactions",
                self.react,
                "Send a reaction",
                tag,
                body=ReactionBody,
                answer=TallyBody,
                auth="member",
                errors=ERRORS,
            ),
        ]

    async def join(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, JoinBody)
        answer = await self._listeners.join(caller, request.path_params["space_id"], body.ticket)
        if isinstance(answer, Admitted):
            return json_response(_admitted(answer))
        retry_ms = poll_interval_ms(answer.estimated_wait_ms)
        return json_response(
            {
                "status": "queued",
                "ticket": answer.ticket,
                "position": answer.position,
                "estimated_wait_ms": answer.estimated_wait_ms,
                "retry_after_ms": retry_ms,
            },
            202,
            headers={"Retry-After": str(math.ceil(retry_ms / 1000))},
        )

    async def listener_list(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        found = await self._listeners.listener_list(caller, request.path_params["space_id"])
        body = ListenerListBody(
            count=found.count,
            users=[
                ListenerNameBody(user_id=u.id, username=u.username, display_name=u.display_name)
                for u in found.users
            ],
            anonymous=found.anonymous,
            more=found.more,
        )
        return json_response(body.model_dump(), headers={"Cache-Control": "private, no-store"})

    async def heartbeat(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, HeartbeatBody)
        answer = await self._listeners.heartbeat(
            caller, request.path_params["space_id"], body.playback_token
        )
        return json_response(_admitted(answer))

    async def leave(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        await self._listeners.leave(caller, request.path_params["space_id"])
        return Response(status_code=204)

    async def react(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, ReactionBody)
        tally = await self._listeners.react(caller, request.path_params["space_id"], body.emoji)
        return json_response({"reactions": tally})


def _admitted(answer: Admitted) -> dict[str, object]:
    return {
        "status": "admitted",
        "playback_token": answer.playback_token,
        "playback_url": answer.playback_url,
        "state_url": answer.state_url,
        "stream_url": answer.stream_url,
        "expires_at": answer.expires_at,
        "role": answer.role,
        "invited": answer.invited,
    }
