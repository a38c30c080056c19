"""/openapi.json is a valid OpenAPI 3.1 document, every $ref in it resolves, and it names
every HTTP endpoint of the route table (issue 16)."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from api.conftest import running_harness
from majlis.app import api_endpoints


async def test_the_api_description_is_valid(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        answer = await h.client().get("/openapi.json")
        endpoints = api_endpoints(h.services)
    assert answer.status_code == 200
    doc = answer.json()
    validate(doc)  # raises on an invalid document or a $ref to nowhere
    described = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    for endpoint in endpoints:
        assert (endpoint.path, endpoint.method.lower()) in described, endpoint.path
    assert "docs/api.md" in doc["info"]["description"]
