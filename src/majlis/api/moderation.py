"""HTTP for the moderation desk (site moderators only): the report queue and decisions,
appeals, suspensions, and the site-wide audit log."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.audit import NEXT_CURSOR, render_csv
from majlis.api.http import caller_of, json_response, parse_body, parse_query
from majlis.api.models import AuditEntryBody, AuditPageBody, AuditQuery
from majlis.api.moderation_models import (
    AppealBody,
    AppealDecisionBody,
    AppealListBody,
    LiftBody,
    ModerationQuery,
    ReportBody,
    ReportDecisionBody,
    ReportListBody,
    SuspendBody,
    SuspendedBody,
)
from majlis.api.routing import Endpoint, Handler
from majlis.services.appeals import Appeals
from majlis.services.audit import AuditLog, AuditPage
from majlis.services.auth import Authenticator
from majlis.services.reports import Reports, Verdict
from majlis.services.suspensions import Suspensions
from majlis.types import User

__all__ = ["ModerationRoutes"]

DESK = "/api/v1/moderation"
_PRIVATE = {"Cache-Control": "private, no-store"}
_ERRORS = (400, 403, 404, 409, 413, 429)


class ModerationRoutes:
    def __init__(
        self,
        reports: Reports,
        appeals: Appeals,
        suspensions: Suspensions,
        audit: AuditLog,
        auth: Authenticator,
    ) -> None:
        self._reports = reports
        self._appeals = appeals
        self._suspensions = suspensions
        self._audit = audit
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        def desk(method: str, path: str, handler: Handler, summary: str, **kw: Any) -> Endpoint:
            return Endpoint(
                method,
                DESK + path,
                handler,
                summary,
                "moderation",
                auth="user",
                errors=_ERRORS,
                **kw,
            )

        return [
            desk("GET", "/reports", self.queue, "Open reports, oldest first",
                 query=ModerationQuery, answer=ReportListBody),
            desk("POST", "/reports/{report_id}/decision", self.decide,
                 "Decide a report: dismiss, warn, remove, end or suspend",
                 body=ReportDecisionBody, answer=ReportBody),
            desk("GET", "/appeals", self.appeals, "Open appeals, oldest first",
                 query=ModerationQuery, answer=AppealListBody),
            desk("POST", "/appeals/{appeal_id}/decision", self.decide_appeal,
                 "Uphold or reverse a decision (not the moderator who made it)",
                 body=AppealDecisionBody, answer=AppealBody),
            desk("POST", "/suspensions", self.suspend, "Suspend an account until a time",
                 ok=201, body=SuspendBody, answer=SuspendedBody),
            desk("POST", "/suspensions/lift", self.lift, "Lift a suspension early",
                 body=LiftBody, answer=SuspendedBody),
            desk("GET", "/audit", self.audit, "The site-wide audit log, newest first",
                 query=AuditQuery, answer=AuditPageBody),
            desk("GET", "/audit.csv", self.audit_csv,
                 f"The same page as CSV; the next page's cursor is in {NEXT_CURSOR}",
                 query=AuditQuery, content_type="text/csv"),
        ]  # fmt: skip

    async def queue(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, ModerationQuery)
        reports = await self._reports.queue(caller, query.limit)
        body = {"reports": [ReportBody.of(r).model_dump() for r in reports]}
        return json_response(body, headers=_PRIVATE)

    async def decide(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, ReportDecisionBody)
        verdict = Verdict(body.decision, body.category, body.reason, body.until)
        report = await self._reports.decide(caller, request.path_params["report_id"], verdict)
        return json_response(ReportBody.of(report).model_dump(), headers=_PRIVATE)

    async def appeals(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, ModerationQuery)
        appeals = await self._appeals.queue(caller, query.limit)
        body = {"appeals": [AppealBody.of(a).model_dump() for a in appeals]}
        return json_response(body, headers=_PRIVATE)

    async def decide_appeal(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, AppealDecisionBody)
        appeal = await self._appeals.decide(
            caller, request.path_params["appeal_id"], body.outcome, body.reason
        )
        return json_response(AppealBody.of(appeal).model_dump(), headers=_PRIVATE)

    async def suspend(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, SuspendBody)
        user = await self._suspensions.suspend(
            caller, body.username, body.until, body.category, body.reason
        )
        return json_response(_suspended(user), 201, headers=_PRIVATE)

    async def lift(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, LiftBody)
        user = await self._suspensions.lift(caller, body.username, body.reason)
        return json_response(_suspended(user), headers=_PRIVATE)

    async def _page(self, request: Request) -> AuditPage:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, AuditQuery)
        before = None if query.cursor is None else int(query.cursor)
        return await self._audit.site_page(caller, limit=query.limit, before=before)

    async def audit(self, request: Request) -> Response:
        page = await self._page(request)
        body = {
            "entries": [AuditEntryBody.of(e).model_dump() for e in page.entries],
            "next_cursor": page.next_cursor,
        }
        return json_response(body, headers=_PRIVATE)

    async def audit_csv(self, request: Request) -> Response:
        page = await self._page(request)
        headers = {**_PRIVATE, "Content-Disposition": 'attachment; filename="audit-site.csv"'}
        if page.next_cursor is not None:
            headers[NEXT_CURSOR] = page.next_cursor
        return Response(render_csv(page.entries), media_type="text/csv", headers=headers)


def _suspended(user: User) -> dict[str, str]:
    return SuspendedBody(user_id=user.id, username=user.username).model_dump()
