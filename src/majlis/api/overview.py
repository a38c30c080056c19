"""HTTP for the operator's page: GET /api/v1/admin/overview (site moderators)."""

from __future__ import annotations

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.overview import Overview

__all__ = ["OverviewBody", "OverviewRoutes"]


class LiveSpaceBody(BaseModel):
    id: str
    title: str
    host_username: str
    visibility: str
    started_at: float | None
    listeners: int
    waiting: int = Field(description="waiting-room tickets not yet admitted")


class NodeBody(BaseModel):
    node_id: str
    url: str
    capacity: int
    spaces: int
    draining: bool


class OverviewBody(BaseModel):
    spaces: list[LiveSpaceBody]
    nodes: list[NodeBody] = Field(description="media nodes (scaled mode); empty when embedded")
    loop_lag_ms: float = Field(description="this worker's standing queueing delay")


class OverviewRoutes:
    def __init__(self, overview: Overview, auth: Authenticator) -> None:
        self._overview = overview
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "GET",
                "/api/v1/admin/overview",
                self.overview,
                "What runs now: live spaces, listeners, waiting rooms, media nodes (site "
                "moderators)",
                "moderation",
                answer=OverviewBody,
                auth="user",
                errors=(400, 403, 429),
            )
        ]

    async def overview(self, request: Request) -> Response:
        seen = await self._overview.now(await caller_of(request, self._auth))
        body = OverviewBody(
            spaces=[
                LiveSpaceBody(
                    id=ls.space.id,
                    title=ls.space.title,
                    host_username=ls.space.host_username,
                    visibility=str(ls.space.visibility),
                    started_at=ls.space.started_at,
                    listeners=ls.listeners,
                    waiting=ls.waiting,
                )
                for ls in seen.spaces
            ],
            nodes=[
                NodeBody(
                    node_id=n.node_id,
                    url=n.url,
                    capacity=n.capacity,
                    spaces=n.spaces,
                    draining=n.draining,
                )
                for n in seen.nodes
            ],
            loop_lag_ms=round(seen.loop_lag_s * 1000, 1),
        )
        return json_response(body.model_dump(), headers={"Cache-Control": "private, no-store"})
