"""Issue 13: a flood of invalid or logged-out tokens is refused at the cheapest point, before
any SQL. Every endpoint that needs an identity is called with a forged token, an unsigned
one, an expired one and a revoked one; each must be a 401 that never reached the store."""

from __future__ import annotations

import functools
import inspect
import re
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Harness, assert_error, mint_token, running_harness, unsigned_token
from majlis.app import api_endpoints
from majlis.store.base import Store


def count_store_calls(store: Store) -> list[str]:
    """Every store method called from now on is recorded by name."""
    calls: list[str] = []
    for name, method in inspect.getmembers(store, inspect.iscoroutinefunction):
        if name.startswith("_") or name in ("open", "close"):
            continue
        setattr(store, name, _recording(name, method, calls))
    return calls


def _recording(
    name: str, method: Callable[..., Awaitable[Any]], calls: list[str]
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def recorded(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return await method(*args, **kwargs)

    return recorded


def needing_identity(h: Harness) -> Iterator[tuple[str, str]]:
    for endpoint in api_endpoints(h.services):
        if endpoint.auth in ("user", "member"):
            yield endpoint.method, endpoint.path


BAD = ["forged", "unsigned", "expired", "revoked"]


async def bad_token(h: Harness, kind: str, user_id: str) -> str:
    if kind == "forged":
        return mint_token(user_id, secret="not-the-server-secret-" + "x" * 32)
    if kind == "unsigned":
        return unsigned_token(user_id)
    if kind == "expired":
        return mint_token(user_id, expires_at=time.time() - 60)
    token = mint_token(user_id)
    logout = await h.call("POST", "/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204, logout.text
    return token


@pytest.mark.parametrize("kind", BAD)
async def test_bad_tokens_never_reach_the_store(kind: str, tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        space = await h.create_space(host)
        token = await bad_token(h, kind, host.id)
        calls = count_store_calls(h.services.store)
        seen = 0
        for method, template in needing_identity(h):
            path = re.sub(r"\{space_id\}", space["id"], template)
            path = re.sub(r"\{user_id\}", host.id, path).removeprefix("/api/v1")
            answer = await h.call(
                method,
                path,
                headers={"Authorization": f"Bearer {token}"},
                json={} if method != "GET" else None,
            )
            assert_error(answer, 401)
            assert calls == [], f"{method} {template} with a {kind} token ran SQL: {calls}"
            seen += 1
        assert seen >= 10, "the route table lost its authenticated endpoints"


async def test_a_logged_out_token_is_refused_before_its_request_is_read(tmp_path: Path) -> None:
    """The write's body is not even JSON: the middleware answers 401 before the handler
    would have said 400. After the first refusal, this worker remembers the logout: a
    flood replaying the token costs no bus lookup."""
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        space = await h.create_space(host)
        token = await bad_token(h, "revoked", host.id)
        lookups = count_bus_reads(h)
        for _ in range(20):
            answer = await h.client().post(
                f"/api/v1/spaces/{space['id']}/reactions",
                content=b"not json",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
            )
            assert_error(answer, 401, "token_revoked")
        assert not [keys for keys in lookups if any(k.startswith("revoked:") for k in keys)]


def count_bus_reads(h: Harness) -> list[tuple[str, ...]]:
    """Every value the bus is asked for from now on, one entry per round trip."""
    bus = h.services.bus
    reads: list[tuple[str, ...]] = []
    real_get, real_many = bus.get_value, bus.get_many

    async def get_value(key: str) -> str | None:
        reads.append((key,))
        return await real_get(key)

    async def get_many(keys: Sequence[str]) -> list[str | None]:
        reads.append(tuple(keys))
        return await real_many(keys)

    bus.get_value = get_value  # type: ignore[method-assign]
    bus.get_many = get_many  # type: ignore[method-assign]
    return reads


def token_reads(reads: list[tuple[str, ...]]) -> list[list[str]]:
    """The reads about a token or its account, as sorted key kinds."""
    kinds = [sorted(key.split(":")[0] for key in keys) for keys in reads]
    return [k for k in kinds if set(k) & {"revoked", "suspended"}]


async def test_a_logged_in_read_makes_one_bus_lookup(tmp_path: Path) -> None:
    """Logout and suspension are checked on every request with a session token; on Redis
    each lookup is a round trip, so both go in one."""
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        reads = count_bus_reads(h)
        answer = await h.call("GET", "/notifications", headers=host.headers)
        assert answer.status_code == 200, answer.text
    assert token_reads(reads) == [["revoked", "suspended"]]


async def test_a_logged_in_write_makes_one_bus_lookup(tmp_path: Path) -> None:
    """The rate limit reads the token before the handler does: the handler takes the
    Caller it made instead of asking the bus again."""
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        space = await h.create_space(host)
        reads = count_bus_reads(h)
        answer = await h.call(
            "POST", f"/spaces/{space['id']}/reactions", host, json={"emoji": "👏"}
        )
        assert answer.status_code == 200, answer.text
    assert token_reads(reads) == [["revoked", "suspended"]]


BAD_OFFERS = {
    "not_sdp": "0",
    "no_audio": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
    "plain_rtp": (
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 RTP/AVP 111\r\nc=IN IP4 127.0.0.1\r\na=rtpmap:111 opus/48000/2\r\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_OFFERS))
async def test_a_bad_offer_is_refused_before_the_media_plane(kind: str, tmp_path: Path) -> None:
    """This harness runs no media node at all, so an offer that reached the media plane
    would be answered 503: a 400 with the reason shows the control plane refused it first,
    however busy a node may be."""
    async with running_harness(tmp_path) as h:
        assert h.services.media is None
        host = await h.account("host")
        space = await h.create_space(host)
        answer = await h.call(
            "POST", f"/spaces/{space['id']}/rtc/offer", host, json={"sdp": BAD_OFFERS[kind]}
        )
    assert "SDP offer" in assert_error(answer, 400)["reason"]
