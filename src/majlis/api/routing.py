"""An explicit route table that is also the OpenAPI document.

Each Endpoint names its method, path, handler, and the models of its body, query and
answers. `routes()` turns the table into Starlette routes; `openapi()` turns the same
table into /openapi.json, so the document cannot drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from majlis.errors import NotFound

__all__ = ["Endpoint", "ErrorBody", "openapi", "routes"]

Handler = Callable[[Request], Awaitable[Response]]

ID_PATTERN = "^[A-Za-z0-9_:-]{1,64}$"


class ErrorBody(BaseModel):
    error: str
    reason: str
    retry_after_ms: int | None = None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    ok: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True  # False: no body at all means the body's defaults
    query: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    content_type: str = "application/json"
    auth: str = "optional"  # none | optional | user | member
    other_answers: dict[int, type[BaseModel] | None] = field(default_factory=dict)
    errors: Sequence[int] = (400, 404, 413, 429)
    # Media types of a body read as bytes, not JSON (an uploaded image).
    raw_body: Sequence[str] = ()


def routes(endpoints: Sequence[Endpoint]) -> list[Route]:
    by_path: dict[str, dict[str, Handler]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint.handler
    return [
        Route(path, _checked_ids(_dispatch(handlers)), methods=list(handlers))
        for path, handlers in by_path.items()
    ]


_ID = re.compile(ID_PATTERN)


def check_path_ids(path_params: Mapping[str, object]) -> None:
    """Every id in a path matches ID_PATTERN (as the OpenAPI document promises), or the
    thing it names cannot exist: 404 before any lookup. Bytes no id contains (NUL,
    invalid UTF-8) then never reach a store that would choke on them."""
    for name, value in path_params.items():
        if not isinstance(value, str) or _ID.fullmatch(value) is None:
            thing = name.removesuffix("_id")
            raise NotFound(f"no such {thing}", code=f"{thing}_not_found")


def _checked_ids(handler: Handler) -> Handler:
    async def checked(request: Request) -> Response:
        check_path_ids(request.path_params)
        return await handler(request)

    checked.__name__ = handler.__name__
    return checked


def _dispatch(handlers: dict[str, Handler]) -> Handler:
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def dispatch(request: Request) -> Response:
        return await handlers[request.method](request)

    return dispatch


# OpenAPI ---------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"{(\w+)}")


def openapi(endpoints: Sequence[Endpoint], title: str, version: str) -> dict[str, Any]:
    schemas_out: dict[str, Any] = {}
    schemas: dict[str, Any] = {"ErrorBody": _schema(ErrorBody, schemas_out)}
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, schemas_out)
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    schemas.update(schemas_out)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            # The event socket and /hls are not request and response: described in prose.
            "description": "The event socket (WebSocket) and the /hls listening paths are "
            "described in docs/api.md of the Majlis repository.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "majlis_session"},
            },
        },
    }


def _operation(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    name = endpoint.handler.__name__
    operation: dict[str, Any] = {
        "operationId": f"{endpoint.tag}_{name}".replace(" ", "_"),
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint, schemas),
        "responses": _responses(endpoint, schemas),
    }
    if endpoint.auth in ("user", "member", "optional"):
        operation["security"] = [{"bearer": []}, {"cookie": []}] + (
            [{}] if endpoint.auth == "optional" else []
        )
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": endpoint.body_required,
            "content": {"application/json": {"schema": _ref(endpoint.body, schemas)}},
        }
    if endpoint.raw_body:
        binary = {"schema": {"type": "string", "format": "binary"}}
        operation["requestBody"] = {
            "required": True,
            "content": {media_type: binary for media_type in endpoint.raw_body},
        }
    return operation


def _parameters(endpoint: Endpoint, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": ID_PATTERN},
        }
        for name in _PATH_PARAM.findall(endpoint.path)
    ]
    if endpoint.query is not None:
        # Enums and nested models go to components like a body's, not to a $defs the
        # parameter's $ref could not reach.
        schema = _schema(endpoint.query, schemas)
        required = set(schema.get("required", []))
        for prop, prop_schema in schema.get("properties", {}).items():
            prop_schema = {k: v for k, v in prop_schema.items() if k != "title"}
            params.append(
                {"name": prop, "in": "query", "required": prop in required, "schema": prop_schema}
            )
    return params


def _responses(endpoint: Endpoint, schemas: dict[str, Any]) -> dict[str, Any]:
    answers: dict[int, type[BaseModel] | None] = {endpoint.ok: endpoint.answer}
    answers.update(endpoint.other_answers)
    out: dict[str, Any] = {}
    for status, model in answers.items():
        if model is None and endpoint.content_type != "application/json" and status < 300:
            out[str(status)] = {
                "description": "OK",
                "content": {endpoint.content_type: {"schema": {"type": "string"}}},
            }
        elif model is None:
            out[str(status)] = {"description": "No content"}
        else:
            out[str(status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": _ref(model, schemas)}},
            }
    errors = set(endpoint.errors)
    if endpoint.auth in ("user", "member") or endpoint.auth == "optional":
        errors |= {401, 403}
    for status in sorted(errors):
        out.setdefault(
            str(status),
            {
                "description": "Error, with a reason",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
                },
            },
        )
    return out


def _ref(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schemas[model.__name__] = _schema(model, schemas)
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        schemas[name] = sub
    return schema
