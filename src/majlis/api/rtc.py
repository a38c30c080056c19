"""HTTP for speakers' WebRTC: SDP offer in, SDP answer out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from majlis.api.http import caller_of, json_response, parse_body
from majlis.api.models import AnswerBody, OfferBody
from majlis.api.routing import Endpoint
from majlis.services.auth import Authenticator
from majlis.services.rtc import Rtc

__all__ = ["RtcRoutes"]


class RtcRoutes:
    def __init__(self, rtc: Rtc, auth: Authenticator) -> None:
        self._rtc = rtc
        self._auth = auth

    def endpoints(self) -> list[Endpoint]:
        return [
            Endpoint(
                "POST",
                "/api/v1/spaces/{space_id}/rtc/offer",
                self.offer,
                "Send a speaker's SDP offer; get the media node's answer",
                "speaking",
                body=OfferBody,
                answer=AnswerBody,
                auth="user",
                errors=(400, 404, 409, 413, 429, 503),
            ),
        ]

    async def offer(self, request: Request) -> Response:
        caller = await caller_of(request, self._auth)
        body = await parse_body(request, OfferBody)
        answer = await self._rtc.offer(caller, request.path_params["space_id"], body.sdp)
        return json_response({"sdp": answer, "type": "answer"})
