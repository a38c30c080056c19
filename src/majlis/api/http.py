"""Parsing requests and writing answers: the few helpers every handler shares."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Scope

from majlis.errors import BadRequest
from majlis.services.auth import Authenticator, Caller

__all__ = [
    "SESSION_COOKIE",
    "client_ip",
    "json_response",
    "parse_body",
    "parse_optional_body",
    "parse_query",
    "token_and_source",
    "token_of",
]

SESSION_COOKIE = "majlis_session"
M = TypeVar("M", bound=BaseModel)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(data), status_code=status, media_type="application/json", headers=headers
    )


def _reason(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


async def _raw_body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        # Nobody is left to read the answer; what matters is that this is not an error
        # of ours (no traceback on the console).
        raise BadRequest("the connection closed before the body ended", code="body_cut") from None


async def parse_optional_body(request: Request, model: type[M]) -> M:
    """For bodies whose fields are all optional, added to an endpoint that took none:
    a request with no body and no Content-Type (as before) gets the defaults."""
    if "content-type" not in request.headers and not await _raw_body(request):
        return model()
    return await parse_body(request, model)


async def parse_body(request: Request, model: type[M]) -> M:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest("send a JSON body with Content-Type: application/json", code="not_json")
    raw = await _raw_body(request)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise BadRequest("the body is not valid JSON", code="malformed_json") from None
        raise BadRequest(_reason(exc), code="invalid_body") from None


def parse_query(request: Request, model: type[M]) -> M:
    params = request.query_params
    unknown = set(params.keys()) - set(model.model_fields)
    if unknown:
        raise BadRequest(f"unknown query parameter {sorted(unknown)[0]!r}", code="invalid_query")
    try:
        return model.model_validate({k: params[k] for k in params})
    except ValidationError as exc:
        raise BadRequest(_reason(exc), code="invalid_query") from None


def token_of(connection: HTTPConnection) -> str | None:
    return token_and_source(connection)[0]


def token_and_source(connection: HTTPConnection) -> tuple[str | None, bool]:
    """(token, whether it came from the Authorization header rather than the cookie)."""
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None, True
    return connection.cookies.get(SESSION_COOKIE) or None, False


def client_ip(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


_CALLER = "majlis.caller"


def remember_caller(scope: Scope, caller: Caller) -> None:
    """Keep the Caller the rate limit made for this request: the handler's caller_of reads
    it, so a write asks the bus about its token once, not twice."""
    scope.setdefault("state", {})[_CALLER] = caller


async def caller_of(connection: HTTPConnection, auth: Authenticator) -> Caller:
    known = connection.scope.get("state", {}).get(_CALLER)
    if isinstance(known, Caller):
        return known
    return await auth.caller(token_of(connection), client_ip(connection))
