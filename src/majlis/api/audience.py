"""HTTP for a space's audience over time: listeners and reactions, sampled while it was
live (services/audience.py). Public, like the listener count in its state document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import json_response
from majlis.api.models import AudienceBody, AudienceSampleBody
from majlis.api.routing import Endpoint
from majlis.services.audience import Audience

__all__ = ["AudienceRoutes"]


class AudienceRoutes:
    def __init__(self, audience: Audience) -> None:
        self._audience = audience

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "GET",
                "/api/v1/spaces/{space_id}/audience",
                self.curve,
                "Listeners, arrivals, departures and reactions over time, sampled while the space "
                "was live",
                "listening",
                answer=AudienceBody,
                auth="none",
            )
        ]

    async def curve(self, request: Request) -> Response:
        curve = await self._audience.curve(request.path_params["space_id"])
        body = AudienceBody(
            space_id=curve.space_id,
            every_s=curve.every_s,
            peak_listeners=curve.peak_listeners,
            samples=[
                AudienceSampleBody.of(s, left)
                for s, left in zip(curve.samples, curve.leaves, strict=True)
            ],
        )
        return json_response(body.model_dump())
