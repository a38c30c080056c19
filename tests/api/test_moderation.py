"""Site moderation over HTTP: a report is decided once by a site moderator; a restriction
gives the person it restricts (alone) a statement of reasons; an appeal is decided by a
different moderator, and reversing it undoes the ban or suspension. Every decision is one
entry in the site-wide audit log. Suspensions hold across a restart."""

from __future__ import annotations

import asyncio
import csv
import io
from pathlib import Path
from typing import Any

import pytest

from api.conftest import Account, Harness, assert_error, running_harness
from majlis.services.notices import TERMS_APPEAL
from majlis.types import Clip

DAY = 86400.0
# A report of the space the test makes ("SID" stands for its id).
SPAM = {"subject": "space", "category": "spam", "space_id": "SID"}


@pytest.fixture
async def h(tmp_path: Path) -> Any:
    async with running_harness(tmp_path) as harness:
        harness.clock.freeze()
        yield harness


async def moderator(h: Harness, name: str) -> Account:
    who = await h.account(name)
    assert await h.services.moderators.grant(name, True)
    return who


async def ok(
    h: Harness, method: str, path: str, who: Account | None, body: object = None, status: int = 200
) -> Any:
    answer = await h.call(method, path, who, json=body)
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else None


async def report(h: Harness, who: Account | None, **body: object) -> dict[str, Any]:
    body.setdefault("category", "harassment")
    result: dict[str, Any] = await ok(h, "POST", "/reports", who, body, 201)
    return result


async def site_log(h: Harness, who: Account) -> list[tuple[str, str, str, str]]:
    entries = (await ok(h, "GET", "/moderation/audit", who))["entries"]
    return [(e["action"], e["actor_username"], e["target_username"], e["reason"]) for e in entries]


async def test_report_decision_statement_appeal_and_a_second_moderator(h: Harness) -> None:
    host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
    mod1, mod2 = await moderator(h, "mod1"), await moderator(h, "mod2")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)

    filed = await report(h, omar, subject="speaker", space_id=sid, user_id=lina.id, text="slurs")
    assert (filed["decision"], filed["text"]) == (None, "slurs")
    [queued] = (await ok(h, "GET", "/moderation/reports", mod1))["reports"]
    assert queued["id"] == filed["id"]

    events = await h.services.events.subscribe(sid)
    try:
        decision = {"decision": "remove", "category": "hate", "reason": "slurs on stage"}
        decided = await ok(h, "POST", f"/moderation/reports/{filed['id']}/decision", mod1, decision)
        iterator = events.__aiter__()
        told = [await asyncio.wait_for(iterator.__anext__(), 5) for _ in range(2)]
    finally:
        await events.close()
    assert (decided["decision"], decided["reason"]) == ("remove", "slurs on stage")
    assert (await ok(h, "GET", "/moderation/reports", mod1))["reports"] == []
    # The removed speaker alone is told why; the space only that she is gone.
    assert [(m["type"], m["to"]) for m in told] == [("notice", lina.id), ("removed", "all")]
    assert "actor_id" not in told[0]["data"]["notice"]
    assert_error(await h.call("POST", f"/spaces/{sid}/join", lina, json={}), 403, "banned")
    # The reporter reads the outcome of their report.
    [mine] = (await ok(h, "GET", "/reports", omar))["reports"]
    assert mine["decision"] == "remove"

    [notice] = (await ok(h, "GET", "/notices", lina))["notices"]
    assert {k: notice[k] for k in ("action", "category", "text", "ground", "automated")} == {
        "action": "ban",
        "category": "hate",
        "text": "slurs on stage",
        "ground": "terms_of_service",
        "automated": False,
    }
    assert notice["appeal"] == TERMS_APPEAL.format(id=notice["id"])
    assert f"/api/v1/notices/{notice['id']}/appeal" in notice["appeal"]
    assert (await ok(h, "GET", "/notices", omar))["notices"] == []

    appeal = await ok(
        h, "POST", f"/notices/{notice['id']}/appeal", lina, {"text": "I quoted them"}, 201
    )
    again = await h.call("POST", f"/notices/{notice['id']}/appeal", lina, json={"text": "x"})
    assert_error(again, 409, "already_appealed")
    [open_appeal] = (await ok(h, "GET", "/moderation/appeals", mod2))["appeals"]
    assert open_appeal["id"] == appeal["id"]

    reverse = {"outcome": "reversed", "reason": "a quotation"}
    same = await h.call("POST", f"/moderation/appeals/{appeal['id']}/decision", mod1, json=reverse)
    assert_error(same, 403, "same_moderator")
    decided_appeal = await ok(
        h, "POST", f"/moderation/appeals/{appeal['id']}/decision", mod2, reverse
    )
    assert decided_appeal["outcome"] == "reversed"
    [mine_appeal] = (await ok(h, "GET", "/appeals", lina))["appeals"]
    assert (mine_appeal["outcome"], mine_appeal["reason"]) == ("reversed", "a quotation")
    # Reversed: the ban is gone, in SQL and where the join path looks.
    assert (await h.call("POST", f"/spaces/{sid}/join", lina, json={})).status_code == 200
    assert not await h.services.store.is_banned(sid, lina.id)

    assert (await site_log(h, mod1))[:2] == [
        ("appeal_reversed", "mod2", "lina", "a quotation"),
        ("ban", "mod1", "lina", "slurs on stage"),
    ]
    space_log = (await ok(h, "GET", f"/spaces/{sid}/audit", mod2))["entries"]
    assert space_log[0]["action"] == "appeal_reversed"


async def test_every_decision_is_one_entry_with_its_actor_and_reason(h: Harness) -> None:
    host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
    mod = await moderator(h, "mod")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    before = len(await site_log(h, mod))

    async def decide(decision: str, subject: str = "speaker", **extra: object) -> None:
        ids: dict[str, object] = {"space_id": sid}
        if subject == "speaker":
            ids["user_id"] = lina.id
        filed = await report(h, omar, subject=subject, **ids)
        body = {"decision": decision, "reason": f"why {decision}", **extra}
        await ok(h, "POST", f"/moderation/reports/{filed['id']}/decision", mod, body)
        h.clock.advance(1)  # statements are listed by time

    await decide("dismiss")
    await decide("warn")
    await decide("suspend", until=h.clock.now() + 3 * DAY)
    await decide("end", subject="space")
    log = await site_log(h, mod)
    assert log[: len(log) - before] == [
        ("end", "mod", "host", "why end"),
        ("suspend", "mod", "lina", "why suspend"),
        ("warn", "mod", "lina", "why warn"),
        ("report_dismiss", "mod", "lina", "why dismiss"),
    ]
    space = await ok(h, "GET", f"/spaces/{sid}", host)
    assert space["state"] == "ended"
    host_notices = (await ok(h, "GET", "/notices", host))["notices"]
    assert [(n["action"], n["ground"]) for n in host_notices] == [("end", "terms_of_service")]
    lina_notices = (await ok(h, "GET", "/notices", lina))["notices"]
    assert [n["action"] for n in lina_notices] == ["suspend", "warn"]

    exported = await h.call("GET", "/moderation/audit.csv?limit=2", mod)
    assert exported.status_code == 200, exported.text
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["action"], r["space_id"]) for r in rows] == [("end", sid), ("suspend", "")]
    assert "x-majlis-next-cursor" in exported.headers


async def test_a_suspended_account_reads_why_and_appeals_but_does_nothing_else(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path) as h:
        h.clock.freeze()
        lina = await h.account("lina")
        mod = await moderator(h, "mod")
        body = {"username": "lina", "until": h.clock.now() + DAY, "reason": "spam wave"}
        await ok(h, "POST", "/moderation/suspensions", mod, {**body, "category": "spam"}, 201)
        await _assert_suspended(h, lina)
    # A restart (the embedded bus starts empty) forgets nothing.
    async with running_harness(tmp_path) as h:
        await _assert_suspended(h, lina)
        [notice] = (await ok(h, "GET", "/notices", lina))["notices"]
        await ok(h, "POST", f"/notices/{notice['id']}/appeal", lina, {"text": "not me"}, 201)
        await ok(h, "POST", "/moderation/suspensions/lift", mod, {"username": "lina"})
        assert (await h.call("POST", "/spaces", lina, json={"title": "back"})).status_code == 201
        me = await ok(h, "GET", "/auth/me", lina)
        assert me["suspended_until"] is None
        lifted = await h.call(
            "POST", "/moderation/suspensions/lift", mod, json={"username": "lina"}
        )
        assert_error(lifted, 409, "not_suspended")


async def _assert_suspended(h: Harness, lina: Account) -> None:
    refused = assert_error(
        await h.call("POST", "/spaces", lina, json={"title": "spam"}), 403, "account_suspended"
    )
    assert "suspended until" in refused["reason"]
    me = await ok(h, "GET", "/auth/me", lina)
    assert me["suspended_until"] is not None and me["moderator"] is False
    [notice] = (await ok(h, "GET", "/notices", lina))["notices"]
    assert (notice["action"], notice["category"], notice["text"]) == (
        "suspend",
        "spam",
        "spam wave",
    )


async def test_a_suspended_speaker_leaves_the_stage(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    mod = await moderator(h, "mod")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    body = {"username": "lina", "until": h.clock.now() + DAY}
    await ok(h, "POST", "/moderation/suspensions", mod, body, 201)
    stage = (await ok(h, "GET", f"/spaces/{sid}/participants", host))["participants"]
    assert [p["user_id"] for p in stage] == [host.id]


async def test_anonymous_reports_are_allowed_under_a_strict_limit(h: Harness) -> None:
    host = await h.account("host")
    sid = (await h.create_space(host))["id"]
    for _ in range(3):
        await report(h, None, subject="space", space_id=sid)
    refused = assert_error(
        await h.call(
            "POST", "/reports", json={"subject": "space", "space_id": sid, "category": "spam"}
        ),
        429,
    )
    assert refused["retry_after_ms"] > 0
    # Another address has its own allowance; an account its own, looser one.
    other = await h.call(
        "POST",
        "/reports",
        json={"subject": "space", "space_id": sid, "category": "spam"},
        ip="192.0.2.9",
    )
    assert other.status_code == 201, other.text
    await report(h, host, subject="space", space_id=sid)


async def test_the_desk_is_for_site_moderators_alone(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    sid = (await h.create_space(host))["id"]
    filed = await report(h, lina, subject="space", space_id=sid)
    for method, path, body in (
        ("GET", "/moderation/reports", None),
        ("POST", f"/moderation/reports/{filed['id']}/decision", {"decision": "dismiss"}),
        ("GET", "/moderation/appeals", None),
        ("POST", "/moderation/suspensions", {"username": "lina", "until": h.clock.now() + DAY}),
        ("GET", "/moderation/audit", None),
    ):
        assert_error(await h.call(method, path, host, json=body), 403, "not_site_moderator")
        assert_error(await h.call(method, path, None, json=body), 401)
    # A moderator reads any space's log; its host's own house-rules statements are not
    # appealed to the moderators.
    mod = await moderator(h, "mod")
    assert (await h.call("GET", f"/spaces/{sid}/audit", mod)).status_code == 200
    await h.make_speaker(sid, host, lina)
    await ok(h, "POST", f"/spaces/{sid}/participants/{lina.id}/remove", host, {}, 204)
    [notice] = (await ok(h, "GET", "/notices", lina))["notices"]
    appeal = await h.call("POST", f"/notices/{notice['id']}/appeal", lina, json={"text": "no"})
    assert_error(appeal, 409, "not_appealable")
    other = await h.call("POST", f"/notices/{notice['id']}/appeal", host, json={"text": "no"})
    assert_error(other, 404, "notice_not_found")


async def test_decisions_that_cannot_be_made(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    mod = await moderator(h, "mod")
    sid = (await h.create_space(host))["id"]
    about_host = await report(h, lina, subject="speaker", space_id=sid, user_id=host.id)
    about_space = await report(h, lina, subject="space", space_id=sid)

    async def decide(rid: str, body: dict[str, object]) -> Any:
        return await h.call("POST", f"/moderation/reports/{rid}/decision", mod, json=body)

    assert_error(await decide(about_host["id"], {"decision": "remove"}), 409, "target_is_host")
    assert_error(await decide(about_space["id"], {"decision": "remove"}), 409, "no_speaker")
    assert_error(await decide(about_space["id"], {"decision": "suspend"}), 400, "bad_until")
    past = {"decision": "suspend", "until": h.clock.now() - 1}
    assert_error(await decide(about_space["id"], past), 400, "bad_until")
    far = {"decision": "suspend", "until": h.clock.now() + 400 * DAY}
    assert_error(await decide(about_space["id"], far), 400, "bad_until")
    assert_error(await decide("nosuchreport", {"decision": "dismiss"}), 404, "report_not_found")
    await ok(
        h, "POST", f"/moderation/reports/{about_space['id']}/decision", mod, {"decision": "dismiss"}
    )
    twice = await decide(about_space["id"], {"decision": "warn"})
    assert_error(twice, 409, "already_decided")
    await ok(h, "POST", f"/spaces/{sid}/end", host)
    assert_error(await decide(about_host["id"], {"decision": "end"}), 409, "space_not_live")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"subject": "space"}, 400, "invalid_body"),
        ({"subject": "rumour", "category": "spam"}, 400, "invalid_body"),
        ({"subject": "space", "category": "rude"}, 400, "invalid_body"),
        ({"subject": "space", "category": "spam"}, 400, "missing_field"),
        ({"subject": "speaker", "category": "spam", "space_id": "SID"}, 400, "missing_field"),
        ({"subject": "clip", "category": "spam"}, 400, "missing_field"),
        ({"subject": "clip", "category": "spam", "clip_id": "nope"}, 404, "clip_not_found"),
        ({"subject": "space", "category": "spam", "space_id": "nope"}, 404, "space_not_found"),
        ({"subject": "space", "category": "spam", "space_id": "a/b"}, 400, "invalid_body"),
        ({**SPAM, "text": 5}, 400, "invalid_body"),
        ({**SPAM, "text": "\x07"}, 400, "invalid_text"),
        ({**SPAM, "text": "x" * 2001}, 400, "invalid_body"),
        ({**SPAM, "extra": 1}, 400, "invalid_body"),
        (
            {"subject": "speaker", "category": "spam", "space_id": "SID", "user_id": "nobody"},
            404,
            "user_not_found",
        ),
    ],
)  # fmt: skip
async def test_bad_reports_are_refused_with_a_reason(
    h: Harness, body: dict[str, object], status: int, code: str
) -> None:
    host = await h.account("host")
    sid = (await h.create_space(host))["id"]
    filled = {k: (sid if v == "SID" else v) for k, v in body.items()}
    assert_error(await h.call("POST", "/reports", host, json=filled), status, code)
    assert (await h.services.store.list_open_reports(10)) == []


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/moderation/suspensions", {"username": "lina"}, "invalid_body"),
        ("/moderation/suspensions", {"username": "x", "until": 1e12}, "invalid_body"),
        ("/moderation/suspensions", {"username": "lina", "until": "soon"}, "invalid_body"),
        ("/moderation/suspensions", {"username": "lina", "until": 1.0}, "bad_until"),
        ("/moderation/suspensions/lift", {"username": "nobody"}, "user_not_found"),
        ("/moderation/reports/R/decision", {"decision": "ban"}, "invalid_body"),
        ("/moderation/reports/R/decision", {"decision": "warn", "reason": "x" * 501},
         "invalid_body"),
        ("/moderation/appeals/nope/decision", {"outcome": "upheld"}, "appeal_not_found"),
        ("/moderation/appeals/nope/decision", {"outcome": "maybe"}, "invalid_body"),
    ],
)  # fmt: skip
async def test_bad_desk_input_is_refused_with_a_reason(
    h: Harness, path: str, body: dict[str, object], code: str
) -> None:
    await h.account("lina")
    mod = await moderator(h, "mod")
    answer = await h.call("POST", path.replace("/R/", "/nosuchreport/"), mod, json=body)
    assert 400 <= answer.status_code < 500
    assert answer.json()["error"] == code, answer.text


async def test_a_clip_and_a_speaker_are_reported_and_queued_with_their_space(h: Harness) -> None:
    host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
    mod = await moderator(h, "mod")
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    clip = Clip("clip1", sid, omar.id, 1.0, 5.0, "a moment", h.clock.now())
    await h.services.store.add_clip(clip)

    of_clip = await report(h, None, subject="clip", clip_id="clip1", category="hate")
    of_speaker = await report(h, omar, subject="speaker", space_id=sid, user_id=lina.id)
    assert (of_clip["space_id"], of_clip["clip_id"], of_clip["user_id"]) == (sid, "clip1", None)
    assert (of_speaker["space_id"], of_speaker["user_id"]) == (sid, lina.id)
    queued = (await ok(h, "GET", "/moderation/reports", mod))["reports"]
    assert {r["id"] for r in queued} == {of_clip["id"], of_speaker["id"]}


async def test_the_operator_page_counts_listeners_and_waiting_rooms(h: Harness) -> None:
    host, lina = await h.account("host"), await h.account("lina")
    mod = await moderator(h, "mod")
    sid = (await h.create_space(host, visibility="unlisted"))["id"]
    ended = (await h.create_space(host))["id"]
    await ok(h, "POST", f"/spaces/{ended}/end", host)
    await ok(h, "POST", f"/spaces/{sid}/join", lina, {})
    seen = await ok(h, "GET", "/admin/overview", mod)
    [live] = seen["spaces"]
    assert (live["id"], live["listeners"], live["waiting"]) == (sid, 1, 0)
    assert seen["nodes"] == [] and seen["loop_lag_ms"] >= 0
    assert_error(await h.call("GET", "/admin/overview", host), 403, "not_site_moderator")
