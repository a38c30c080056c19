"""A media node's HTTP API, for control-plane workers only (never for the public).

    POST /node/v1/offer   a speaker's offer the control plane has already authorised
    GET  /node/v1/hls/... the origin of the spaces this node runs (and recordings on disk)

Every request carries the node key (`X-Majlis-Node-Key`, derived from the shared
secret); anything else gets 401 before it reaches the node. The control plane checks
who may speak and who may listen; here the key is the only check.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from majlis.errors import BadRequest, MajlisError
from majlis.media.runtime.membership import Membership
from majlis.plane import NODE_KEY_HEADER, encode_error

__all__ = ["node_routes"]

log = logging.getLogger(__name__)

_MAX_OFFER_BYTES = 65536


def node_routes(membership: Membership, origin: ASGIApp, key: str) -> list[BaseRoute]:
    async def offer(request: Request) -> Response:
        if not _is_keyed(request.headers.get(NODE_KEY_HEADER, "").encode(), key.encode()):
            return _NOT_KEYED
        try:
            fields = await _offer_fields(request)
            answer = await membership.offer(*fields)
        except MajlisError as error:
            return _error(error)
        except Exception as error:
            log.exception("offer failed on node %s", membership.node_id)
            return _error(error)
        return JSONResponse({"sdp": answer})

    return [
        Route("/node/v1/offer", offer, methods=["POST"]),
        Mount("/node/v1/hls", app=_Keyed(origin, key)),
    ]


async def _offer_fields(request: Request) -> tuple[str, str, str, bool, float]:
    try:
        body = await request.body()
    except ClientDisconnect:
        raise BadRequest("the connection closed before the body ended") from None
    if len(body) > _MAX_OFFER_BYTES:
        raise BadRequest("the offer is too large")
    try:
        raw = json.loads(body)
        fields = (
            raw["space_id"],
            raw["user_id"],
            raw["sdp"],
            raw["muted"],
            raw["started_at"],
        )
    except (ValueError, KeyError, TypeError):
        raise BadRequest("expected space_id, user_id, sdp, muted and started_at") from None
    space_id, user_id, sdp, muted, started_at = fields
    if not (isinstance(space_id, str) and isinstance(user_id, str) and isinstance(sdp, str)):
        raise BadRequest("space_id, user_id and sdp are strings")
    if not isinstance(muted, bool) or not isinstance(started_at, int | float):
        raise BadRequest("muted is a boolean and started_at a number")
    return space_id, user_id, sdp, muted, float(started_at)


def _error(error: BaseException) -> Response:
    wire = encode_error(error)
    status = wire["status"]
    return JSONResponse(wire, status_code=status if isinstance(status, int) else 500)


def _is_keyed(given: bytes, key: bytes) -> bool:
    return hmac.compare_digest(given, key)


_NOT_KEYED = JSONResponse(
    {"status": 401, "code": "node_key", "reason": "not a control-plane worker"}, status_code=401
)


class _Keyed:
    """Pass requests that carry the node key; 401 for the rest."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self._app = app
        self._key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = NODE_KEY_HEADER.lower().encode()
            if not _is_keyed(dict(scope["headers"]).get(header, b""), self._key):
                await _NOT_KEYED(scope, receive, send)
                return
        await self._app(scope, receive, send)
