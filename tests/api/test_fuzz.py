"""Schema-driven fuzzing: schemathesis reads /openapi.json from a real server and sends
generated requests, valid and invalid, to every operation, as the host of a live space, as
an anonymous listener and with no token. No answer may be a 5xx, and every answer must
have a status, content type and body the document declares."""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.conftest import BACKENDS, V1, Server, backend_server, mint_token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 10
MIN_CASES = 2  # per operation and mode, however long they take
BUDGET_SECONDS = 30.0
_PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass
class People:
    host_id: str
    host: dict[str, str]
    speaker_id: str
    speaker: dict[str, str]
    anon: str


def register_people(http: httpx.Client) -> People:
    tokens, ids = [], []
    for role in ("h", "s"):
        name = f"fz{role}{time.time_ns() % 10**12}"
        answer = http.post("/auth/register", json={"username": name, "password": "p" * 12})
        assert answer.status_code == 201, answer.text
        tokens.append(answer.json()["token"])
        ids.append(answer.json()["user"]["id"])
    anon = http.post("/auth/anonymous").json()["token"]
    return People(
        host_id=ids[0],
        host={"Authorization": f"Bearer {tokens[0]}"},
        speaker_id=ids[1],
        speaker={"Authorization": f"Bearer {tokens[1]}"},
        anon=anon,
    )


def fresh_world(http: httpx.Client, people: People) -> dict[str, str]:
    """A new live space of the host, with the other person as its speaker."""
    space = http.post("/spaces", json={"title": "fuzzed"}, headers=people.host).json()["id"]
    assert http.post(f"/spaces/{space}/requests", headers=people.speaker).status_code == 204
    path = f"/spaces/{space}/requests/{people.speaker_id}/approve"
    assert http.post(path, headers=people.host).status_code == 200
    return {
        "space_id": space,
        "user_id": people.speaker_id,
        "host_id": people.host_id,
        "anon": people.anon,
    }


def end_world(http: httpx.Client, people: People, world: dict[str, str]) -> None:
    """Its space ended (unless a case already did, or deleted it): left live, 54 spaces
    mixed on one media worker, more than it can encode, and its stop took minutes."""
    http.post(f"/spaces/{world['space_id']}/end", headers=people.host)


def fuzz(
    server: Server, operation: Any, mode: GenerationMode, world: dict[str, str], seconds: float
) -> int:
    """Run generated cases against one operation for at most `seconds`; how many were sent."""
    # A clip needs recorded audio, which a fresh space has not: clip ids stay generated.
    names = _PATH_PARAM.findall(operation.path)
    known = {name: world[name] for name in names if name in world}
    strategies = [operation.as_strategy(generation_mode=mode)]
    if known:  # half the time aim at things that exist, to get past the 404s
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=known))
    stop_at = time.monotonic() + seconds
    sent = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @given(case=st.one_of(strategies), who=st.sampled_from(["host", "anonymous", "nobody"]))
    def run(case: Any, who: str) -> None:
        nonlocal sent
        # The budget bounds the time, never below a few cases: a busy machine sends fewer
        # cases, not none.
        if sent >= MIN_CASES and time.monotonic() > stop_at:
            return
        headers = {}
        if who == "host":  # a fresh token each time, so a generated logout stops nothing
            headers["Authorization"] = f"Bearer {mint_token(world['host_id'])}"
        elif who == "anonymous":
            headers["Authorization"] = f"Bearer {world['anon']}"
        case.call_and_validate(base_url=server.base_url, headers=headers, checks=CHECKS, timeout=10)
        sent += 1

    run()
    return sent


@pytest.mark.timeout(150)
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_fuzz_every_operation(backend: str, tmp_path: Path) -> None:
    async with backend_server(backend, tmp_path) as server:
        await asyncio.to_thread(fuzz_every_operation, server)
        assert "Traceback" not in server.log()


def fuzz_every_operation(server: Server) -> None:
    schema = schemathesis.openapi.from_url(server.base_url + "/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an invalid operation: {result}"
        operations.append(result.ok())
    assert len(operations) >= 25, [op.label for op in operations]
    failures: list[str] = []
    sent: dict[str, int] = {}
    seconds = BUDGET_SECONDS / (2 * len(operations))

    with httpx.Client(base_url=server.base_url + V1, timeout=10) as http:
        people = register_people(http)
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                world = fresh_world(http, people)
                try:
                    count = fuzz(server, operation, mode, world, seconds)
                except Unsatisfiable:
                    continue  # nothing negative to say about an operation without inputs
                except (FailureGroup, AssertionError) as exc:
                    failures.append(f"{operation.label} ({mode.value}):\n{exc}")
                    continue
                finally:
                    end_world(http, people, world)
                sent[operation.label] = sent.get(operation.label, 0) + count

    assert not failures, "\n\n".join(failures)
    assert all(sent.get(op.label, 0) >= MIN_CASES for op in operations), sent
