"""The host edits a space's title, description and visibility (issue 15): one audit entry
naming what changed, an event to everyone in it; anyone else is refused, and every bad
body gets a 400 with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.conftest import assert_error, running_harness


async def test_the_host_edits_a_space(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        sid = (await h.create_space(host, "First title", description="old"))["id"]
        subscription = await h.services.events.subscribe(sid)
        edited = await h.call(
            "PATCH",
            f"/spaces/{sid}",
            host,
            json={"title": "  A better title ", "visibility": "unlisted"},
        )
        same = await h.call("PATCH", f"/spaces/{sid}", host, json={"title": "A better title"})
        listed = await h.call("GET", "/spaces")
        read = await h.call("GET", f"/spaces/{sid}")
        audit = await h.call("GET", f"/spaces/{sid}/audit", host)
        event = await anext(aiter(subscription))
        await subscription.close()

    assert edited.status_code == 200, edited.text
    assert (edited.json()["title"], edited.json()["visibility"]) == ("A better title", "unlisted")
    assert edited.json()["description"] == "old"
    assert same.status_code == 200
    assert read.json()["title"] == "A better title"
    assert sid not in {s["id"] for s in listed.json()["spaces"]}  # unlisted now
    entries = [e for e in audit.json()["entries"] if e["action"] == "edit"]
    assert len(entries) == 1  # the second call changed nothing and wrote nothing
    assert (entries[0]["actor_id"], entries[0]["reason"]) == (host.id, "title, visibility")
    assert event["type"] == "space_updated" and event["data"]["changed"] == ["title", "visibility"]


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({}, "nothing to change"),
        ({"title": ""}, "title"),
        ({"title": "x" * 121}, "title"),
        ({"title": "   "}, "title"),
        ({"description": "d" * 2001}, "description"),
        ({"visibility": "secret"}, "visibility"),
        ({"title": 7}, "title"),
        ({"state": "ended"}, "state"),
    ],
)
async def test_bad_edits_are_refused_with_a_reason(
    body: dict[str, object], why: str, tmp_path: Path
) -> None:
    async with running_harness(tmp_path) as h:
        host = await h.account("host")
        sid = (await h.create_space(host, "Kept"))["id"]
        answer = await h.call("PATCH", f"/spaces/{sid}", host, json=body)
        read = await h.call("GET", f"/spaces/{sid}")
    assert why in assert_error(answer, 400)["reason"]
    assert read.json()["title"] == "Kept"


async def test_only_the_host_edits(tmp_path: Path) -> None:
    async with running_harness(tmp_path) as h:
        host, cohost, other = await h.account("host"), await h.account("co"), await h.account("x")
        sid = (await h.create_space(host, "Kept"))["id"]
        await h.make_speaker(sid, host, cohost)
        promoted = await h.call("POST", f"/spaces/{sid}/cohosts", host, json={"user_id": cohost.id})
        assert promoted.status_code == 200, promoted.text
        by_cohost = await h.call("PATCH", f"/spaces/{sid}", cohost, json={"title": "Mine"})
        by_other = await h.call("PATCH", f"/spaces/{sid}", other, json={"title": "Mine"})
        nobody = await h.call("PATCH", f"/spaces/{sid}", json={"title": "Mine"})
        unknown = await h.call("PATCH", "/spaces/ffffffffffff", host, json={"title": "Mine"})
    assert_error(by_cohost, 403, "not_host")
    assert_error(by_other, 403, "not_host")
    assert_error(nobody, 401)
    assert_error(unknown, 404)
