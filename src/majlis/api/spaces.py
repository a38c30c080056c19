"""HTTP for spaces: create, get, list and search, start, end, reminders, calendar, state."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body, parse_query
from majlis.api.models import (
    CaptionsBody,
    ListQuery,
    ReminderBody,
    SpaceBody,
    SpaceCreateBody,
    SpaceEditBody,
    SpaceListBody,
    StateBody,
)
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.listeners import Listeners, space_summary
from majlis.services.spaces import Spaces
from majlis.types import Visibility

__all__ = ["SpaceRoutes"]

PREFIX = "/api/v1/spaces"


class SpaceRoutes:
    def __init__(
        self,
        spaces: Spaces,
        listeners: Listeners,
        auth: Authenticator,
        public_url: str,
        state_max_age: float,
    ) -> None:
        self._spaces = spaces
        self._listeners = listeners
        self._auth = auth
        self._public_url = public_url
        self._state_cache = f"public, max-age={max(1, round(state_max_age))}"

    def endpoints(self) -> list[Endpoint]:
        tag = "spaces"
        one = f"{PREFIX}/{{space_id}}"
        return [
            Endpoint(
                "POST",
                PREFIX,
                self.create,
                "Create a space (live now or scheduled)",
                tag,
                ok=201,
                body=SpaceCreateBody,
                answer=SpaceBody,
                auth="user",
            ),
            Endpoint(
                "GET",
                PREFIX,
                self.list,
                "List and search live, upcoming and ended spaces",
                tag,
                query=ListQuery,
                answer=SpaceListBody,
                auth="none",
                errors=(400, 429),
            ),
            Endpoint("GET", one, self.get, "One space", tag, answer=SpaceBody, auth="none"),
            Endpoint(
                "PATCH",
                one,
                self.edit,
                "Change the title, description or visibility (host only)",
                tag,
                body=SpaceEditBody,
                answer=SpaceBody,
                auth="user",
                errors=(400, 404, 413, 429),
            ),
            Endpoint(
                "POST",
                f"{one}/start",
                self.start,
                "Go live (host only)",
                tag,
                answer=SpaceBody,
                auth="user",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "POST",
                f"{one}/end",
                self.end,
                "End the space (host only)",
                tag,
                answer=SpaceBody,
                auth="user",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "PUT",
                f"{one}/captions",
                self.captions,
                "Turn live captions on or off (host only); everyone in the space is told",
                tag,
                body=CaptionsBody,
                answer=SpaceBody,
                auth="user",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "PUT",
                f"{one}/reminder",
                self.remind,
                "Remind me when it starts",
                tag,
                answer=ReminderBody,
                auth="user",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "DELETE",
                f"{one}/reminder",
                self.unremind,
                "Cancel my reminder",
                tag,
                answer=ReminderBody,
                auth="user",
                errors=(400, 404, 409, 413, 429),
            ),
            Endpoint(
                "GET",
                f"{one}/calendar.ics",
                self.calendar,
                "iCalendar entry",
                tag,
                content_type="text/calendar",
                auth="none",
                errors=(400, 404, 409, 429),
            ),
            Endpoint(
                "GET",
                f"{one}/state",
                self.state,
                "State document (cacheable ~1 s; what listeners poll); a private "
                "space's for its guests alone",
                tag,
                answer=StateBody,
                auth="optional",
                errors=(400, 401, 403, 404, 429),
            ),
        ]

    async def create(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, SpaceCreateBody)
        space = await self._spaces.create(
            caller,
            body.title,
            body.description,
            body.scheduled_for,
            body.visibility,
            language=body.language,
            recording=body.recording,
        )
        return json_response(space_summary(space), 201)

    async def list(self, request: Request) -> Response:
        query = parse_query(request, ListQuery)
        spaces = await self._spaces.list(
            query.state, query.q, query.host_id, query.limit, query.offset
        )
        return json_response({"spaces": [space_summary(s) for s in spaces]})

    async def get(self, request: Request) -> Response:
        space = await self._spaces.get(request.path_params["space_id"])
        return json_response(space_summary(space))

    async def edit(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, SpaceEditBody)
        space = await self._spaces.edit(
            caller,
            request.path_params["space_id"],
            title=body.title,
            description=body.description,
            visibility=body.visibility,
        )
        return json_response(space_summary(space))

    async def start(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        space = await self._spaces.start(caller, request.path_params["space_id"])
        return json_response(space_summary(space))

    async def end(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        space = await self._spaces.end(caller, request.path_params["space_id"])
        return json_response(space_summary(space))

    async def captions(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, CaptionsBody)
        space = await self._spaces.set_captions(caller, request.path_params["space_id"], body.on)
        return json_response(space_summary(space))

    async def remind(self, request: Request) -> Response:
        return await self._reminder(request, True)

    async def unremind(self, request: Request) -> Response:
        return await self._reminder(request, False)

    async def _reminder(self, request: Request, on: bool) -> Response:
        caller = await caller_of(request, self._auth)
        count = await self._spaces.remind(caller, request.path_params["space_id"], on)
        return json_response({"subscribed": on, "reminders": count})

    async def calendar(self, request: Request) -> Response:
        text = await self._spaces.calendar(request.path_params["space_id"], self._public_url)
        return Response(
            text,
            media_type="text/calendar",
            headers={"Content-Disposition": 'attachment; filename="space.ics"'},
        )

    async def state(self, request: Request) -> Response:
        space_id = request.path_params["space_id"]
        space = await self._spaces.get_cached(space_id)
        cache = self._state_cache
        if space.visibility is Visibility.PRIVATE:
            # What is said (captions) and who is on stage: for its guests alone.
            caller = await caller_of(request, self._auth)
            await self._spaces.require_admitted(space, caller.member)
            cache = "private, no-store"
        document = await self._listeners.state(space_id)
        return json_response(document, headers={"Cache-Control": cache})
