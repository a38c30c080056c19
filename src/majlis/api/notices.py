"""HTTP for statements of reasons: the caller's own, to read later (DSA art. 17)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_query
from majlis.api.models import NoticeBody, NoticeListBody, NoticeQuery
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.notices import Notices

__all__ = ["NoticeRoutes"]


class NoticeRoutes:
    def __init__(self, notices: Notices, auth: Authenticator) -> None:
        self._notices = notices
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "GET",
                "/api/v1/notices",
                self.mine,
                "My statements of reasons: what was done to me, why, and how to appeal",
                "notices",
                query=NoticeQuery,
                answer=NoticeListBody,
                auth="user",
                errors=(400, 429),
            )
        ]

    async def mine(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, NoticeQuery)
        notices = await self._notices.mine(caller, query.limit)
        body = {"notices": [NoticeBody.of(n).model_dump() for n in notices]}
        return json_response(body, headers={"Cache-Control": "private, no-store"})
