"""Bad input of every kind gets a 4xx with a JSON reason, never a 500, and changes nothing."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.conftest import (
    BACKENDS,
    V1,
    Account,
    Harness,
    Server,
    assert_error,
    backend_server,
    running_harness,
)

MAX_BODY = 4096


@dataclass(frozen=True)
class Bad:
    """One request that must be refused: `status` and `code` are what the answer says."""

    id: str
    method: str
    path: str  # {space} is replaced by a live space's id
    status: int
    code: str | None = None
    who: str | None = "host"  # host | anon | None
    json: object = None
    raw: str | bytes | None = None  # a body sent as is
    ctype: str = "application/json"  # the Content-Type of a raw body ("" for none)


SPACES = "/spaces"
JSON = {"content-type": "application/json"}

CASES = [
    # not JSON, or not the JSON asked for
    Bad("malformed_json", "POST", SPACES, 400, "malformed_json", raw='{"title": '),
    Bad("empty_body", "POST", SPACES, 400, "malformed_json", raw=b""),
    Bad("trailing_garbage", "POST", SPACES, 400, "malformed_json", raw='{"title": "x"} x'),
    Bad("invalid_utf8", "POST", SPACES, 400, "malformed_json", raw=b'{"title": "\xff\xfe"}'),
    Bad("deep_nesting", "POST", SPACES, 400, None, raw="[" * 2000 + "]" * 2000),
    Bad("array_body", "POST", SPACES, 400, "invalid_body", json=[]),
    Bad("string_body", "POST", SPACES, 400, "invalid_body", json="title"),
    Bad("null_body", "POST", SPACES, 400, "invalid_body", raw=b"null"),
    # wrong types
    Bad("title_number", "POST", SPACES, 400, "invalid_body", json={"title": 5}),
    Bad("title_null", "POST", SPACES, 400, "invalid_body", json={"title": None}),
    Bad("title_array", "POST", SPACES, 400, "invalid_body", json={"title": ["a"]}),
    Bad("title_object", "POST", SPACES, 400, "invalid_body", json={"title": {"a": 1}}),
    Bad("title_bool", "POST", SPACES, 400, "invalid_body", json={"title": True}),
    Bad(
        "schedule_string",
        "POST",
        SPACES,
        400,
        "invalid_body",
        json={"title": "x", "scheduled_for": "tomorrow"},
    ),
    Bad(
        "schedule_numeric_string",
        "POST",
        SPACES,
        400,
        "invalid_body",
        json={"title": "x", "scheduled_for": "1900000000"},
    ),
    Bad(
        "schedule_bool",
        "POST",
        SPACES,
        400,
        "invalid_body",
        json={"title": "x", "scheduled_for": True},
    ),
    Bad(
        "schedule_nan",
        "POST",
        SPACES,
        400,
        "invalid_schedule",
        raw='{"title": "x", "scheduled_for": NaN}',
    ),
    Bad(
        "schedule_infinite",
        "POST",
        SPACES,
        400,
        "invalid_schedule",
        raw='{"title": "x", "scheduled_for": 1e400}',
    ),
    Bad(
        "visibility_unknown",
        "POST",
        SPACES,
        400,
        "invalid_body",
        json={"title": "x", "visibility": "secret"},
    ),
    Bad(
        "visibility_number",
        "POST",
        SPACES,
        400,
        "invalid_body",
        json={"title": "x", "visibility": 1},
    ),
    Bad("unknown_field", "POST", SPACES, 400, "invalid_body", json={"title": "x", "colour": "red"}),
    Bad("missing_field", "POST", SPACES, 400, "invalid_body", json={"description": "no title"}),
    Bad(
        "ban_string",
        "POST",
        "/spaces/{space}/participants/someone/remove",
        400,
        "invalid_body",
        json={"ban": "yes"},
    ),
    Bad(
        "ban_number",
        "POST",
        "/spaces/{space}/participants/someone/remove",
        400,
        "invalid_body",
        json={"ban": 1},
    ),
    Bad(
        "user_id_number",
        "POST",
        "/spaces/{space}/invites",
        400,
        "invalid_body",
        json={"user_id": 42},
    ),
    Bad(
        "user_id_path_chars",
        "POST",
        "/spaces/{space}/invites",
        400,
        "invalid_body",
        json={"user_id": "../etc/passwd"},
    ),
    Bad(
        "ticket_number",
        "POST",
        "/spaces/{space}/join",
        400,
        "invalid_body",
        who="anon",
        json={"ticket": 5},
    ),
    Bad(
        "ticket_forged",
        "POST",
        "/spaces/{space}/join",
        400,
        "invalid_ticket",
        who="anon",
        json={"ticket": "ticket.x.1.y.9999999999.AAAA"},
    ),
    Bad(
        "ticket_garbage",
        "POST",
        "/spaces/{space}/join",
        400,
        "invalid_ticket",
        who="anon",
        json={"ticket": "garbage"},
    ),
    Bad(
        "playback_garbage",
        "POST",
        "/spaces/{space}/heartbeat",
        401,
        "invalid_token",
        who="anon",
        json={"playback_token": "garbage"},
    ),
    Bad(
        "emoji_unknown",
        "POST",
        "/spaces/{space}/reactions",
        400,
        "bad_reaction",
        who="anon",
        json={"emoji": "🦄"},
    ),
    Bad(
        "emoji_empty",
        "POST",
        "/spaces/{space}/reactions",
        400,
        "invalid_body",
        who="anon",
        json={"emoji": ""},
    ),
    Bad(
        "emoji_number",
        "POST",
        "/spaces/{space}/reactions",
        400,
        "invalid_body",
        who="anon",
        json={"emoji": 1},
    ),
    # content type
    Bad("text_plain", "POST", SPACES, 400, "not_json", raw=b'{"title": "x"}', ctype="text/plain"),
    Bad(
        "form_encoded",
        "POST",
        SPACES,
        400,
        "not_json",
        raw=b"title=x",
        ctype="application/x-www-form-urlencoded",
    ),
    Bad("no_content_type", "POST", SPACES, 400, "not_json", raw=b'{"title": "x"}', ctype=""),
    # overlong
    Bad("title_121", "POST", SPACES, 400, "invalid_body", json={"title": "x" * 121}),
    Bad("title_121_arabic", "POST", SPACES, 400, "invalid_body", json={"title": "ش" * 121}),
    Bad(
        "description_2001",
        "POST",
        SPACES,
        400,
        "invalid_body",
        json={"title": "x", "description": "d" * 2001},
    ),
    Bad(
        "username_33",
        "POST",
        "/auth/register",
        400,
        "invalid_body",
        who=None,
        json={"username": "u" * 33, "password": "p" * 12},
    ),
    Bad(
        "password_257",
        "POST",
        "/auth/register",
        400,
        "invalid_body",
        who=None,
        json={"username": "user_x", "password": "p" * 257},
    ),
    Bad(
        "password_short",
        "POST",
        "/auth/register",
        400,
        "invalid_body",
        who=None,
        json={"username": "user_x", "password": "p" * 7},
    ),
    Bad(
        "login_username_65",
        "POST",
        "/auth/login",
        400,
        "invalid_body",
        who=None,
        json={"username": "u" * 65, "password": "p"},
    ),
    Bad(
        "user_id_65",
        "POST",
        "/spaces/{space}/invites",
        400,
        "invalid_body",
        json={"user_id": "u" * 65},
    ),
    # unicode edge cases
    Bad("title_whitespace", "POST", SPACES, 400, "invalid_text", json={"title": " \t "}),
    Bad("title_nul", "POST", SPACES, 400, "invalid_text", json={"title": "a\u0000b"}),
    Bad("title_bell", "POST", SPACES, 400, "invalid_text", json={"title": "a\u0007b"}),
    Bad("title_escape", "POST", SPACES, 400, "invalid_text", json={"title": "\u001b[31mred"}),
    Bad("title_c1_control", "POST", SPACES, 400, "invalid_text", json={"title": "a\u0085b"}),
    Bad(
        "title_rtl_override",
        "POST",
        SPACES,
        400,
        "invalid_text",
        json={"title": "invoice\u202egnp.exe"},
    ),
    Bad("title_rtl_isolate", "POST", SPACES, 400, "invalid_text", json={"title": "a\u2067b\u2069"}),
    Bad(
        "display_name_rtl_override",
        "POST",
        "/auth/register",
        400,
        "invalid_text",
        who=None,
        json={"username": "user_y", "password": "p" * 12, "display_name": "\u202eadmin"},
    ),
    Bad("lone_high_surrogate", "POST", SPACES, 400, "malformed_json", raw='{"title": "\\ud800"}'),
    Bad("lone_low_surrogate", "POST", SPACES, 400, "malformed_json", raw='{"title": "a\\udc00b"}'),
    Bad(
        "reversed_surrogates",
        "POST",
        SPACES,
        400,
        "malformed_json",
        raw='{"title": "\\ude00\\ud83d"}',
    ),
    Bad(
        "username_arabic",
        "POST",
        "/auth/register",
        400,
        "invalid_body",
        who=None,
        json={"username": "مستخدم", "password": "p" * 12},
    ),
    Bad(
        "username_nul",
        "POST",
        "/auth/register",
        400,
        "invalid_body",
        who=None,
        json={"username": "ab\u0000c", "password": "p" * 12},
    ),
    Bad(
        "login_username_nul",
        "POST",
        "/auth/login",
        401,
        "bad_credentials",
        who=None,
        json={"username": "ab\u0000c", "password": "p"},
    ),
    # unknown ids and routes
    Bad("unknown_space", "GET", "/spaces/nope", 404, "space_not_found", who=None),
    Bad("unknown_space_state", "GET", "/spaces/nope/state", 404, "space_not_found", who=None),
    Bad(
        "unknown_space_stage", "GET", "/spaces/nope/participants", 404, "space_not_found", who=None
    ),
    Bad(
        "unknown_space_join",
        "POST",
        "/spaces/nope/join",
        404,
        "space_not_found",
        who="anon",
        json={},
    ),
    Bad("unknown_space_start", "POST", "/spaces/nope/start", 404, "space_not_found"),
    Bad("nul_space_id", "GET", "/spaces/%00", 404, "space_not_found", who=None),
    Bad("long_space_id", "GET", "/spaces/" + "a" * 65, 404, "space_not_found", who=None),
    Bad(
        "arabic_space_id",
        "GET",
        "/spaces/%D9%85%D8%AC%D9%84%D8%B3",
        404,
        "space_not_found",
        who=None,
    ),
    Bad("invalid_utf8_space_id", "GET", "/spaces/%FF%FE", 404, "space_not_found", who=None),
    Bad("unknown_request", "POST", "/spaces/{space}/requests/nobody/approve", 404, "no_request"),
    Bad(
        "unknown_invitee",
        "POST",
        "/spaces/{space}/invites",
        404,
        "user_not_found",
        json={"user_id": "nobody"},
    ),
    Bad(
        "unknown_cohost",
        "POST",
        "/spaces/{space}/cohosts",
        404,
        "user_not_found",
        json={"user_id": "nobody"},
    ),
    Bad(
        "unknown_remove",
        "POST",
        "/spaces/{space}/participants/nobody/remove",
        404,
        "user_not_found",
        json={"ban": True},
    ),
    Bad("nul_user_id", "POST", "/spaces/{space}/participants/%00/mute", 404, "user_not_found"),
    Bad("unknown_route", "GET", "/nothing/here", 404, "http_error", who=None),
    Bad("wrong_method", "DELETE", SPACES, 405, "http_error"),
    # query strings
    Bad("limit_text", "GET", "/spaces?limit=ten", 400, "invalid_query", who=None),
    Bad("limit_zero", "GET", "/spaces?limit=0", 400, "invalid_query", who=None),
    Bad("limit_huge", "GET", "/spaces?limit=100000", 400, "invalid_query", who=None),
    Bad("offset_negative", "GET", "/spaces?offset=-1", 400, "invalid_query", who=None),
    Bad("state_unknown", "GET", "/spaces?state=paused", 400, "invalid_query", who=None),
    Bad("query_unknown", "GET", "/spaces?colour=red", 400, "invalid_query", who=None),
    Bad("q_101", "GET", "/spaces?q=" + "q" * 101, 400, "invalid_query", who=None),
    Bad("q_nul", "GET", "/spaces?q=a%00b", 400, "invalid_text", who=None),
    Bad("host_id_chars", "GET", "/spaces?host_id=a%20b", 400, "invalid_query", who=None),
    # bodies over max_body_bytes, announced
    Bad(
        "too_large",
        "POST",
        SPACES,
        413,
        "payload_too_large",
        json={"title": "x", "description": "d" * MAX_BODY},
    ),
    Bad(
        "too_large_no_body_endpoint",
        "POST",
        "/spaces/{space}/start",
        413,
        "payload_too_large",
        raw=b"x" * (MAX_BODY + 1),
    ),
]


@dataclass
class World:
    harness: Harness
    host: Account
    anon: Account
    space: str


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with running_harness(tmp_path, max_body_bytes=MAX_BODY) as h:
        host = await h.account("host")
        space = await h.create_space(host, "live")
        yield World(h, host, await h.anonymous(), space["id"])


async def count_spaces(h: Harness) -> int:
    everything = await h.services.store.list_spaces(
        state=None, query=None, host_id=None, include_unlisted=True, limit=1000, offset=0
    )
    return len(everything)


async def send(w: World, case: Bad) -> httpx.Response:
    who = {"host": w.host, "anon": w.anon, None: None}[case.who]
    headers = who.headers if who else {}
    url = V1 + case.path.replace("{space}", w.space)
    client = w.harness.client()
    if case.raw is not None:
        body = case.raw.encode() if isinstance(case.raw, str) else case.raw
        if case.ctype:
            headers = {**headers, "content-type": case.ctype}
        return await client.request(case.method, url, content=body, headers=headers)
    if case.json is not None:
        return await client.request(case.method, url, json=case.json, headers=headers)
    return await client.request(case.method, url, headers=headers)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_refused_with_a_reason(world: World, case: Bad) -> None:
    spaces_before = await count_spaces(world.harness)
    stage_before = await world.harness.services.store.list_participants(world.space)

    answer = await send(world, case)

    assert_error(answer, case.status, case.code)
    assert await count_spaces(world.harness) == spaces_before
    assert await world.harness.services.store.list_participants(world.space) == stage_before
    space = await world.harness.services.store.get_space(world.space)
    assert space is not None and str(space.state) == "live"


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


# good unicode is kept ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "title",
    [
        "مجلس مساء الخميس",  # Arabic
        "Talk 🎙️ with 👩🏽‍💻 and 🇸🇦",  # emoji, skin tone, ZWJ sequence, flag
        "Cafe\u0301 e\u0301te\u0301",  # combining marks, stored NFC
        "English \u200fو عربي\u200e mixed",  # directional marks are not overrides
        "\U0001d54f\U0001f600 astral",  # characters outside the BMP
        "ش" * 120,  # exactly the limit, in characters not bytes
    ],
)
async def test_unicode_titles_are_kept(world: World, title: str) -> None:
    answer = await world.harness.call("POST", "/spaces", world.host, json={"title": title})
    assert answer.status_code == 201, answer.text
    expected = unicodedata.normalize("NFC", title)
    assert answer.json()["title"] == expected
    fetched = await world.harness.call("GET", f"/spaces/{answer.json()['id']}")
    assert fetched.json()["title"] == expected


async def test_escaped_surrogate_pair_is_one_character(world: World) -> None:
    content = b'{"title": "smile \\ud83d\\ude00"}'
    answer = await world.harness.client().post(
        f"{V1}/spaces", content=content, headers={**world.host.headers, **JSON}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["title"] == "smile \U0001f600"


async def test_display_name_in_arabic(world: World) -> None:
    body = {"username": "arabic_name", "password": "p" * 12, "display_name": "سارة"}
    answer = await world.harness.call("POST", "/auth/register", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["user"]["display_name"] == "سارة"


async def test_charset_parameter_is_accepted(world: World) -> None:
    answer = await world.harness.client().post(
        f"{V1}/spaces",
        content=json.dumps({"title": "charset"}).encode(),
        headers={**world.host.headers, "content-type": "Application/JSON; charset=utf-8"},
    )
    assert answer.status_code == 201, answer.text


# bodies that do not say how long they are --------------------------------------------------


async def chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    body = json.dumps({"title": "chunked", "description": "d" * total}).encode()
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_chunked_body_over_the_limit(world: World) -> None:
    answer = await world.harness.client().post(
        f"{V1}/spaces", content=chunks(MAX_BODY * 2), headers={**world.host.headers, **JSON}
    )
    assert "content-length" not in answer.request.headers
    body = assert_error(answer, 413, "payload_too_large")
    assert body["reason"] == f"request body is larger than {MAX_BODY} bytes"
    assert await count_spaces(world.harness) == 1


async def test_chunked_body_under_the_limit(world: World) -> None:
    answer = await world.harness.client().post(
        f"{V1}/spaces", content=chunks(1500, size=100), headers={**world.host.headers, **JSON}
    )
    assert "content-length" not in answer.request.headers
    assert answer.status_code == 201, answer.text
    assert answer.json()["description"] == "d" * 1500


# against the real server, on both backends -------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
async def test_bad_input_on_a_real_server(backend: str, tmp_path: Path) -> None:
    env = {"MAJLIS_MAX_BODY_BYTES": str(MAX_BODY)}
    async with (
        backend_server(backend, tmp_path, env) as server,
        httpx.AsyncClient(base_url=server.base_url + V1, timeout=10) as http,
    ):
        await bad_input_on(server, http)


async def bad_input_on(server: Server, http: httpx.AsyncClient) -> None:
    registered = await http.post(
        "/auth/register", json={"username": "real_host", "password": "p" * 12}
    )
    assert registered.status_code == 201, registered.text
    auth = {"Authorization": f"Bearer {registered.json()['token']}"}
    sid = (await http.post("/spaces", json={"title": "real"}, headers=auth)).json()["id"]

    typed = {**auth, **JSON}
    checks: list[tuple[httpx.Response, int, str]] = [
        (await http.get("/spaces/%00"), 404, "space_not_found"),
        (await http.get("/spaces/%00/state"), 404, "space_not_found"),
        (
            await http.post(f"/spaces/{sid}/participants/%00/mute", headers=auth),
            404,
            "user_not_found",
        ),
        (
            await http.post("/auth/login", json={"username": "a\u0000b", "password": "x"}),
            401,
            "bad_credentials",
        ),
        (await http.get("/spaces", params={"q": "a\u0000b"}), 400, "invalid_text"),
        (
            await http.post("/spaces", content=b'{"title": "\\ud800"}', headers=typed),
            400,
            "malformed_json",
        ),
        (await http.post("/spaces", content=b"{", headers=typed), 400, "malformed_json"),
        (
            await http.post("/spaces", json={"title": "x" * MAX_BODY}, headers=auth),
            413,
            "payload_too_large",
        ),
        (
            await http.post("/spaces", content=chunks(MAX_BODY * 2), headers=typed),
            413,
            "payload_too_large",
        ),
        (await http.post("/spaces", json={"title": "a\u202eb"}, headers=auth), 400, "invalid_text"),
    ]
    for answer, status, code in checks:
        assert_error(answer, status, code)
    listed = (await http.get("/spaces")).json()["spaces"]
    assert [s["title"] for s in listed] == ["real"]
    assert "Traceback" not in server.log()
