"""HTTP for appeals: the person a moderator's statement of reasons was given to contests
it, and reads how their appeals were decided."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body, parse_query
from majlis.api.moderation_models import (
    AppealBody,
    AppealCreateBody,
    AppealListBody,
    ModerationQuery,
)
from majlis.api.routing import Endpoint
from majlis.services.appeals import Appeals
from majlis.services.auth import Authenticator

__all__ = ["AppealRoutes"]

_PRIVATE = {"Cache-Control": "private, no-store"}


class AppealRoutes:
    def __init__(self, appeals: Appeals, auth: Authenticator) -> None:
        self._appeals = appeals
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "POST",
                "/api/v1/notices/{notice_id}/appeal",
                self.appeal,
                "Appeal a site moderator's decision (once); another moderator reviews it",
                "moderation",
                ok=201,
                body=AppealCreateBody,
                answer=AppealBody,
                auth="user",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "GET",
                "/api/v1/appeals",
                self.my_appeals,
                "My appeals and their outcomes, newest first",
                "moderation",
                query=ModerationQuery,
                answer=AppealListBody,
                auth="user",
                errors=(400, 429),
            ),
        ]

    async def appeal(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, AppealCreateBody)
        appeal = await self._appeals.file(caller, request.path_params["notice_id"], body.text)
        return json_response(AppealBody.of(appeal).model_dump(), 201, headers=_PRIVATE)

    async def my_appeals(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, ModerationQuery)
        appeals = await self._appeals.mine(caller, query.limit)
        body = {"appeals": [AppealBody.of(a).model_dump() for a in appeals]}
        return json_response(body, headers=_PRIVATE)
