"""Statements of reasons: a removal or ban writes one for the removed person, who alone is
told of it on their event socket (the space hears only that they are gone) and reads it
later at /notices."""

from __future__ import annotations

import asyncio
from typing import Any

from api.conftest import Harness, assert_error
from majlis.services.notices import HOUSE_RULES_APPEAL

from .test_audit import h, ok

__all__ = ["h"]


async def test_a_removal_gives_the_removed_person_alone_a_statement(h: Harness) -> None:
    host, lina, omar = [await h.account(n) for n in ("host", "lina", "omar")]
    sid = (await h.create_space(host))["id"]
    await h.make_speaker(sid, host, lina)
    await h.make_speaker(sid, host, omar)
    events = await h.services.events.subscribe(sid)
    try:
        body = {"ban": True, "reason": "threats", "category": "harassment"}
        await ok(h, "POST", f"/spaces/{sid}/participants/{lina.id}/remove", host, body)
        await ok(h, "POST", f"/spaces/{sid}/participants/{omar.id}/remove", host, {})
        messages = [m async for m in _take(events, 4)]
    finally:
        await events.close()

    mine = await h.call("GET", "/notices", lina)
    assert mine.status_code == 200, mine.text
    assert mine.headers["cache-control"] == "private, no-store"
    [notice] = mine.json()["notices"]
    assert {k: v for k, v in notice.items() if k not in ("id", "at")} == {
        "space_id": sid,
        "action": "ban",
        "category": "harassment",
        "text": "threats",
        "ground": "house_rules",
        "automated": False,
        "appeal": HOUSE_RULES_APPEAL,
    }
    [plain] = (await h.call("GET", "/notices", omar)).json()["notices"]
    assert (plain["action"], plain["category"], plain["text"]) == ("remove", "other", "")
    assert (await h.call("GET", "/notices", host)).json() == {"notices": []}

    # The space hears that they are gone, nothing more; the statement goes to them alone.
    told = [(m["type"], m["to"], m["data"]) for m in messages]
    assert told[0] == (
        "notice",
        lina.id,
        {"user_id": lina.id, "notice": {**notice, "user_id": lina.id}},
    )
    assert told[1] == ("removed", "all", {"user_id": lina.id})
    assert told[2][:2] == ("notice", omar.id)
    assert told[3] == ("removed", "all", {"user_id": omar.id})


async def _take(subscription: Any, n: int) -> Any:
    """The next `n` messages on the space's channel (media commands have their own)."""
    iterator = subscription.__aiter__()
    for _ in range(n):
        yield await asyncio.wait_for(iterator.__anext__(), 5)


async def test_notices_need_a_session(h: Harness) -> None:
    assert_error(await h.call("GET", "/notices"), 401)
    assert_error(await h.call("GET", "/notices", await h.anonymous()), 401, "login_required")
    someone = await h.account("someone")
    for query in ("limit=0", "limit=201", "limit=x", "user_id=x"):
        assert_error(await h.call("GET", f"/notices?{query}", someone), 400, "invalid_query")
