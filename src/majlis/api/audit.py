"""HTTP for a space's audit log: a page as JSON, or as CSV to export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_query
from majlis.api.models import AuditEntryBody, AuditPageBody, AuditQuery
from majlis.api.routing import Endpoint
from majlis.services.audit import AuditLog, AuditPage
from majlis.services.auth import Authenticator
from majlis.types import AuditEntry

__all__ = ["CSV_COLUMNS", "AuditRoutes", "render_csv"]

ONE = "/api/v1/spaces/{space_id}/audit"
NEXT_CURSOR = "X-Majlis-Next-Cursor"
# Who did what to whom is for the space's moderators alone: no shared cache keeps it.
_PRIVATE = "private, no-store"
CSV_COLUMNS = (
    "seq",
    "time",
    "space_id",
    "action",
    "actor_id",
    "actor_username",
    "target_id",
    "target_username",
    "reason",
)
# A cell that starts like a formula is run by spreadsheets (CSV injection); a leading
# apostrophe makes it text, as OWASP advises.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AuditRoutes:
    def __init__(self, audit: AuditLog, auth: Authenticator) -> None:
        self._audit = audit
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        tag = "audit"
        errors = (400, 404, 429)
        return [
            Endpoint(
                "GET",
                ONE,
                self.page,
                "A space's audit log, newest first (its host and co-hosts)",
                tag,
                query=AuditQuery,
                answer=AuditPageBody,
                auth="user",
                errors=errors,
            ),
            Endpoint(
                "GET",
                f"{ONE}.csv",
                self.csv,
                f"The same page as CSV; the next page's cursor is in {NEXT_CURSOR}",
                tag,
                query=AuditQuery,
                content_type="text/csv",
                auth="user",
                errors=errors,
            ),
        ]

    async def _page(self, request: Request) -> AuditPage:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, AuditQuery)
        before = None if query.cursor is None else int(query.cursor)
        space_id = request.path_params["space_id"]
        return await self._audit.page(caller, space_id, limit=query.limit, before=before)

    async def page(self, request: Request) -> Response:
        page = await self._page(request)
        body = {
            "entries": [AuditEntryBody.of(e).model_dump() for e in page.entries],
            "next_cursor": page.next_cursor,
        }
        return json_response(body, headers={"Cache-Control": _PRIVATE})

    async def csv(self, request: Request) -> Response:
        page = await self._page(request)
        name = f"audit-{request.path_params['space_id']}.csv"
        headers = {
            "Cache-Control": _PRIVATE,
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        if page.next_cursor is not None:
            headers[NEXT_CURSOR] = page.next_cursor
        return Response(render_csv(page.entries), media_type="text/csv", headers=headers)


def render_csv(entries: list[AuditEntry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow(
            [
                e.seq,
                datetime.fromtimestamp(e.at, UTC).isoformat(timespec="milliseconds"),
                e.space_id or "",
                e.action,
                e.actor_id or "",
                _cell(e.actor_username),
                e.target_id or "",
                _cell(e.target_username),
                _cell(e.reason),
            ]
        )
    return out.getvalue()


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text
