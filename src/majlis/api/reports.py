"""HTTP for reports: anyone files one (anonymous callers under a strict limit); the
reporter reads the outcome of their own."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body, parse_query
from majlis.api.moderation_models import (
    ModerationQuery,
    ReportBody,
    ReportCreateBody,
    ReportListBody,
)
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.reports import Reports

__all__ = ["ReportRoutes"]

_PRIVATE = {"Cache-Control": "private, no-store"}


class ReportRoutes:
    def __init__(self, reports: Reports, auth: Authenticator) -> None:
        self._reports = reports
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "POST",
                "/api/v1/reports",
                self.report,
                "Report a space, a speaker or a clip to the site's moderators",
                "moderation",
                ok=201,
                body=ReportCreateBody,
                answer=ReportBody,
                auth="optional",
                errors=(400, 404, 413, 429),
            ),
            Endpoint(
                "GET",
                "/api/v1/reports",
                self.my_reports,
                "My reports and what was decided, newest first",
                "moderation",
                query=ModerationQuery,
                answer=ReportListBody,
                auth="user",
                errors=(400, 403, 429),
            ),
        ]

    async def report(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, ReportCreateBody)
        report = await self._reports.file(
            caller,
            body.subject,
            body.category,
            body.text,
            space_id=body.space_id,
            user_id=body.user_id,
            clip_id=body.clip_id,
        )
        return json_response(ReportBody.of(report).model_dump(), 201, headers=_PRIVATE)

    async def my_reports(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, ModerationQuery)
        reports = await self._reports.mine(caller, query.limit)
        body = {"reports": [ReportBody.of(r).model_dump() for r in reports]}
        return json_response(body, headers=_PRIVATE)
