"""HTTP for the caller's in-app notifications: a page newest first with the unread count
(the web app's badge), and marking them read."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_optional_body, parse_query
from majlis.api.models import (
    NotificationBody,
    NotificationListBody,
    NotificationQuery,
    NotificationsReadAnswer,
    NotificationsReadBody,
)
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.notifications import Notifications

__all__ = ["NotificationRoutes"]

_PRIVATE = {"Cache-Control": "private, no-store"}


class NotificationRoutes:
    def __init__(self, notifications: Notifications, auth: Authenticator) -> None:
        self._notifications = notifications
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        path = "/api/v1/notifications"
        return [
            Endpoint(
                "GET",
                path,
                self.mine,
                "My notifications: spaces I asked to be reminded of that started or were missed",
                "notifications",
                query=NotificationQuery,
                answer=NotificationListBody,
                auth="user",
                errors=(400, 429),
            ),
            Endpoint(
                "POST",
                f"{path}/read",
                self.read,
                "Mark my notifications read: all, or those up to a seq",
                "notifications",
                body=NotificationsReadBody,
                body_required=False,
                answer=NotificationsReadAnswer,
                auth="user",
                errors=(400, 413, 429),
            ),
        ]

    async def mine(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        query = parse_query(request, NotificationQuery)
        before = None if query.cursor is None else int(query.cursor)
        page = await self._notifications.mine(caller, before, query.limit)
        cursor = page.next_cursor
        body = NotificationListBody(
            notifications=[NotificationBody.of(n) for n in page.notifications],
            unread=page.unread,
            next_cursor=None if cursor is None else str(cursor),
        )
        return json_response(body.model_dump(), headers=_PRIVATE)

    async def read(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_optional_body(request, NotificationsReadBody)
        marked = await self._notifications.read(caller, body.up_to)
        unread = await self._notifications.unread(caller)
        answer = NotificationsReadAnswer(marked=marked, unread=unread)
        return json_response(answer.model_dump(), headers=_PRIVATE)
