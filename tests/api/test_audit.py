"""The audit log over HTTP: every host and co-host action leaves exactly one entry with its
actor, target and reason; the log is for the space's host and co-hosts, paged, and
exportable as CSV. Reasons are bounded, and refused with a reason when they are not."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Account, Harness, assert_error, running_harness
from majlis.services.audit import REASON_MAX


@pytest.fixture
async def h(tmp_path: Path) -> Any:
    async with running_harness(tmp_path) as harness:
        harness.clock.freeze()
        yield harness


async def ok(h: Harness, method: str, path: str, who: Account, body: object = None) -> None:
    answer = await h.call(method, path, who, json=body)
    assert answer.status_code in (200, 204), answer.text


async def log_of(h: Harness, sid: str, who: Account, query: str = "") -> list[dict[str, Any]]:
    answer = await h.call("GET", f"/spaces/{sid}/audit{query}", who)
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "private, no-store"
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries


def summary(entries: list[dict[str, Any]]) -> list[tuple[str, str, str | None, str]]:
    return [
        (e["action"], e["actor_username"], e["target_username"] or None, e["reason"])
        for e in entries
    ]


async def test_every_action_leaves_one_entry_with_actor_target_and_reason(h: Harness) -> None:
    host, cora, lina, omar, rami = [
        await h.account(n) for n in ("host", "cora", "lina", "omar", "rami")
    ]
    sid = (await h.create_space(host))["id"]
    one = f"/spaces/{sid}"
    await ok(h, "POST", f"{one}/cohosts", host, {"user_id": cora.id})
    await h.make_speaker(sid, cora, lina)  # cora approves
    await ok(h, "POST", f"{one}/requests", omar)
    await ok(h, "POST", f"{one}/requests/{omar.id}/decline", host)
    await ok(h, "POST", f"{one}/invites", cora, {"user_id": rami.id})
    await ok(h, "POST", f"{one}/participants/{lina.id}/mute", cora, {"reason": "feedback loop"})
    await ok(h, "POST", f"{one}/participants/{lina.id}/unmute", lina)
    await ok(h, "POST", f"{one}/participants/{lina.id}/mute", host)  # no body at all
    await ok(h, "POST", f"{one}/participants/{lina.id}/demote", cora)
    await ok(h, "POST", f"{one}/participants/{omar.id}/remove", cora, {"reason": "spam links"})
    await ok(
        h,
        "POST",
        f"{one}/participants/{rami.id}/remove",
        host,
        {"ban": True, "category": "harassment"},
    )
    await ok(h, "DELETE", f"{one}/cohosts/{cora.id}", host)
    await ok(h, "POST", f"{one}/end", host)

    entries = await log_of(h, sid, host)
    assert summary(entries)[::-1] == [
        ("cohost_add", "host", "cora", ""),
        ("approve", "cora", "lina", ""),
        ("decline", "host", "omar", ""),
        ("invite", "cora", "rami", ""),
        ("mute", "cora", "lina", "feedback loop"),
        ("unmute", "lina", "lina", ""),
        ("mute", "host", "lina", ""),
        ("demote", "cora", "lina", ""),
        ("remove", "cora", "omar", "spam links"),
        ("ban", "host", "rami", ""),
        ("cohost_remove", "host", "cora", ""),
        ("end", "host", None, ""),
    ]
    assert entries[0]["target_id"] is None
    assert entries[1]["actor_id"] == host.id and entries[1]["target_id"] == cora.id
    assert all(e["at"] == h.clock.now() for e in entries)
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)


async def test_refused_and_self_actions_leave_no_entry(h: Harness) -> None:
    host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    await h.make_speaker(sid, host, omar)
    before = await log_of(h, sid, host)
    refused = await h.call("POST", f"/spaces/{sid}/participants/{omar.id}/mute", lina)
    assert_error(refused, 403, "not_moderator")
    assert_error(
        await h.call("POST", f"/spaces/{sid}/participants/{omar.id}/remove", lina, json={}), 403
    )
    await ok(h, "POST", f"/spaces/{sid}/step-down", omar)
    assert await log_of(h, sid, host) == before


async def test_the_log_is_for_the_host_and_cohosts(h: Harness) -> None:
    host, cora, lina, stranger, other = [
        await h.account(n) for n in ("host", "cora", "lina", "stranger", "other")
    ]
    sid = (await h.create_space(host))["id"]
    other_sid = (await h.create_space(other))["id"]
    await ok(h, "POST", f"/spaces/{sid}/cohosts", host, {"user_id": cora.id})
    await h.make_speaker(sid, host, lina)
    assert len(await log_of(h, sid, cora)) == 2
    for path in (f"/spaces/{sid}/audit", f"/spaces/{sid}/audit.csv"):
        for who in (lina, stranger, other):
            assert_error(await h.call("GET", path, who), 403, "not_moderator")
        assert_error(await h.call("GET", path), 401)
        assert_error(await h.call("GET", path, await h.anonymous()), 401, "login_required")
        assert_error(
            await h.call("GET", path.replace(sid, "nosuchspace"), host), 404, "space_not_found"
        )
    assert_error(await h.call("GET", f"/spaces/{other_sid}/audit", host), 403)
    # A co-host no longer is one: no log.
    await ok(h, "DELETE", f"/spaces/{sid}/cohosts/{cora.id}", host)
    assert_error(await h.call("GET", f"/spaces/{sid}/audit", cora), 403)


async def test_pages_follow_the_cursor_and_bad_queries_are_refused(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    for i in range(4):
        await ok(h, "POST", f"/spaces/{sid}/participants/{lina.id}/mute", host, {"reason": f"r{i}"})
    seen: list[str] = []
    cursor = ""
    for _ in range(3):
        answer = await h.call("GET", f"/spaces/{sid}/audit?limit=2{cursor}", host)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        seen += [e["reason"] or e["action"] for e in page["entries"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ["r3", "r2", "r1", "r0", "approve"]
    for query in (
        "limit=0",
        "limit=1001",
        "limit=x",
        "cursor=abc",
        "cursor=-1",
        "cursor=" + "9" * 19,
        "format=xml",
    ):
        assert_error(
            await h.call("GET", f"/spaces/{sid}/audit?{query}", host), 400, "invalid_query"
        )
        assert_error(
            await h.call("GET", f"/spaces/{sid}/audit.csv?{query}", host), 400, "invalid_query"
        )


async def test_the_csv_export(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    reason = '=HYPERLINK("http://evil") said "hi", then left'
    await ok(h, "POST", f"/spaces/{sid}/participants/{lina.id}/mute", host, {"reason": reason})

    answer = await h.call("GET", f"/spaces/{sid}/audit.csv?limit=1", host)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["cache-control"] == "private, no-store"
    assert f'filename="audit-{sid}.csv"' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 1
    row = rows[0]
    assert (row["action"], row["actor_username"], row["target_id"]) == ("mute", "host", lina.id)
    assert row["reason"] == "'" + reason  # a spreadsheet shows it, never runs it
    assert row["time"].endswith("+00:00")
    cursor = answer.headers["x-majlis-next-cursor"]
    rest = await h.call("GET", f"/spaces/{sid}/audit.csv?cursor={cursor}", host)
    assert [r["action"] for r in csv.DictReader(io.StringIO(rest.text))] == ["approve"]
    assert "x-majlis-next-cursor" not in rest.headers


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"reason": "x" * (REASON_MAX + 1)}, 400, "invalid_body"),
        ({"reason": 5}, 400, "invalid_body"),
        ({"reason": ["a"]}, 400, "invalid_body"),
        ({"reason": "ok", "extra": 1}, 400, "invalid_body"),
        ({"reason": "bell\x07"}, 400, "invalid_text"),
        ({"reason": "\u202eevil"}, 400, "invalid_text"),
        ({"ban": True, "category": "rude"}, 400, "invalid_body"),
        ({"ban": "yes"}, 400, "invalid_body"),
    ],
)
async def test_bad_reasons_are_refused_and_change_nothing(
    h: Harness, body: dict[str, object], status: int, code: str
) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    before = await log_of(h, sid, host)
    for action in ("remove", "mute"):
        path = f"/spaces/{sid}/participants/{lina.id}/{action}"
        if action == "mute" and ("ban" in body or "category" in body):
            continue
        assert_error(await h.call("POST", path, host, json=body), status, code)
    assert await log_of(h, sid, host) == before
    stage = (await h.call("GET", f"/spaces/{sid}/participants")).json()["participants"]
    assert {p["user_id"]: p["muted"] for p in stage}[lina.id] is False
    assert_error(
        await h.call(
            "POST",
            f"/spaces/{sid}/participants/{lina.id}/mute",
            host,
            headers={"content-type": "application/json"},
        ),
        400,
        "malformed_json",
    )
