"""Space lifecycle: every state transition, scheduled spaces (reminders, calendar file),
listing and search, unlisted spaces."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from api.conftest import Account, Harness, assert_error

# transitions -------------------------------------------------------------------------------


async def space_in(h: Harness, host: Account, state: str) -> str:
    """A space of `host` brought to `state` through the API."""
    if state == "live":
        return str((await h.create_space(host))["id"])
    sid = str((await h.create_space(host, scheduled_in=3600))["id"])
    if state == "ended":
        assert (await h.call("POST", f"/spaces/{sid}/end", host)).status_code == 200
    return sid


@pytest.mark.parametrize(
    ("initial", "action", "final"),
    [
        ("scheduled", "start", "live"),
        ("scheduled", "end", "ended"),
        ("live", "end", "ended"),
    ],
)
async def test_allowed_transition(harness: Harness, initial: str, action: str, final: str) -> None:
    host = await harness.account("host")
    sid = await space_in(harness, host, initial)
    before = (await harness.call("GET", f"/spaces/{sid}")).json()
    assert before["state"] == initial

    answer = await harness.call("POST", f"/spaces/{sid}/{action}", host)
    assert answer.status_code == 200, answer.text
    space = answer.json()
    assert space["state"] == final
    assert (await harness.call("GET", f"/spaces/{sid}")).json()["state"] == final
    now = harness.clock.now()
    if final == "live":
        assert space["started_at"] == pytest.approx(now, abs=5)
        assert space["ended_at"] is None
    else:
        assert space["ended_at"] == pytest.approx(now, abs=5)
    if initial == "live":
        assert space["started_at"] == before["started_at"]


@pytest.mark.parametrize(
    ("initial", "action", "reason"),
    [
        ("live", "start", "a space that is live cannot become live"),
        ("ended", "start", "a space that is ended cannot become live"),
        ("ended", "end", "a space that is ended cannot become ended"),
    ],
)
async def test_refused_transition(harness: Harness, initial: str, action: str, reason: str) -> None:
    host = await harness.account("host")
    sid = await space_in(harness, host, initial)
    before = (await harness.call("GET", f"/spaces/{sid}")).json()

    body = assert_error(
        await harness.call("POST", f"/spaces/{sid}/{action}", host), 409, "invalid_transition"
    )
    assert body["reason"] == reason
    assert (await harness.call("GET", f"/spaces/{sid}")).json() == before


async def test_an_ended_space_refuses_the_speaking_flow(harness: Harness) -> None:
    host = await harness.account("host")
    listener = await harness.account("listener")
    sid = await space_in(harness, host, "ended")
    assert_error(await harness.call("POST", f"/spaces/{sid}/join", listener, json={}), 409, "ended")
    assert_error(await harness.call("POST", f"/spaces/{sid}/requests", listener), 409, "not_live")
    path = f"/spaces/{sid}/cohosts"
    assert_error(await harness.call("POST", path, host, json={"user_id": listener.id}), 409)


async def test_a_scheduled_space_cannot_be_joined_yet(harness: Harness) -> None:
    host = await harness.account("host")
    sid = await space_in(harness, host, "scheduled")
    anon = await harness.anonymous()
    body = assert_error(
        await harness.call("POST", f"/spaces/{sid}/join", anon, json={}), 409, "not_started"
    )
    assert body["reason"] == "the space has not started yet"


@pytest.mark.parametrize("offset", [-60.0, 0.0, 367 * 86400.0])
async def test_schedule_must_be_in_the_coming_year(harness: Harness, offset: float) -> None:
    host = await harness.account("host")
    body = {"title": "when?", "scheduled_for": harness.clock.now() + offset}
    assert_error(await harness.call("POST", "/spaces", host, json=body), 400, "invalid_schedule")


# reminders ---------------------------------------------------------------------------------


async def test_reminders_subscribe_and_unsubscribe(harness: Harness) -> None:
    host = await harness.account("host")
    ann, bob = await harness.account("ann"), await harness.account("bob")
    sid = await space_in(harness, host, "scheduled")
    path = f"/spaces/{sid}/reminder"

    answers = [
        await harness.call("PUT", path, ann),
        await harness.call("PUT", path, bob),
        await harness.call("PUT", path, ann),  # again: still one reminder for ann
        await harness.call("DELETE", path, bob),
        await harness.call("DELETE", path, bob),  # again: nothing left to cancel
    ]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json() for a in answers] == [
        {"subscribed": True, "reminders": 1},
        {"subscribed": True, "reminders": 2},
        {"subscribed": True, "reminders": 2},
        {"subscribed": False, "reminders": 1},
        {"subscribed": False, "reminders": 1},
    ]
    assert await harness.services.store.count_reminders(sid) == 1

    assert_error(await harness.call("PUT", path), 401, "login_required")
    anon = await harness.anonymous()
    assert_error(await harness.call("PUT", path, anon), 401, "login_required")
    assert_error(await harness.call("PUT", "/spaces/nope/reminder", ann), 404, "space_not_found")

    live = await space_in(harness, host, "live")
    body = assert_error(await harness.call("PUT", f"/spaces/{live}/reminder", ann), 409)
    assert body["reason"] == "reminders are for scheduled spaces; this one is live"


# calendar file -----------------------------------------------------------------------------


def unfold(text: str) -> list[str]:
    """RFC 5545 3.1: CRLF line ends; a line starting with a space continues the previous."""
    assert text.endswith("\r\n")
    physical = text[:-2].split("\r\n")
    logical: list[str] = []
    for line in physical:
        assert "\n" not in line and "\r" not in line, repr(line)
        assert len(line.encode()) <= 75, f"line over 75 octets: {line!r}"
        if line.startswith(" "):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    return logical


def properties(lines: list[str], component: str) -> dict[str, str]:
    """NAME -> value for the lines directly inside BEGIN:component ... END:component."""
    out: dict[str, str] = {}
    depth = 0
    inside = False
    for line in lines:
        name, _, value = line.partition(":")
        if line == f"BEGIN:{component}":
            inside, depth = True, 0
            continue
        if inside and name == "BEGIN":
            depth += 1
        elif inside and name == "END":
            if depth == 0:
                return out
            depth -= 1
        elif inside and depth == 0:
            assert name not in out, f"{name} twice"
            out[name.split(";")[0]] = value
    raise AssertionError(f"no {component}")


async def test_calendar_file_is_valid_icalendar(harness: Harness) -> None:
    host = await harness.account("host")
    title = "أمسية شعرية عن المدن القديمة والبحر, والحنين; مع ضيوف من كل مكان 🌙 — a long evening"
    space = await harness.create_space(
        host, title, scheduled_in=2 * 86400, description="line one\nline two"
    )
    answer = await harness.call("GET", f"/spaces/{space['id']}/calendar.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    assert "attachment" in answer.headers["content-disposition"]

    lines = unfold(answer.text)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    begins = [line for line in lines if line.startswith("BEGIN:")]
    ends = [line for line in lines if line.startswith("END:")]
    assert [b[6:] for b in begins] == ["VCALENDAR", "VEVENT", "VALARM"]
    assert sorted(e[4:] for e in ends) == sorted(b[6:] for b in begins)
    assert any(len(raw.encode()) > 70 for raw in answer.text.split("\r\n")), "nothing was folded"

    calendar = properties(lines, "VCALENDAR")
    assert calendar["VERSION"] == "2.0"
    assert calendar["PRODID"]
    event = properties(lines, "VEVENT")
    start = datetime.fromtimestamp(space["scheduled_for"], UTC)
    assert event["DTSTART"] == start.strftime("%Y%m%dT%H%M%SZ")
    dtstart = datetime.strptime(event["DTSTART"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    dtend = datetime.strptime(event["DTEND"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert (dtend - dtstart).total_seconds() == 3600
    assert abs(dtstart.timestamp() - space["scheduled_for"]) < 1
    assert event["UID"] == f"{space['id']}@majlis"
    escaped = title.replace(",", "\\,").replace(";", "\\;")
    assert event["SUMMARY"] == escaped
    assert event["DESCRIPTION"] == "line one\\nline two"
    assert event["URL"].endswith(f"/spaces/{space['id']}")


async def test_only_a_scheduled_space_has_a_calendar_file(harness: Harness) -> None:
    host = await harness.account("host")
    live = await space_in(harness, host, "live")
    assert_error(await harness.call("GET", f"/spaces/{live}/calendar.ics"), 409, "not_scheduled")
    assert_error(await harness.call("GET", "/spaces/nope/calendar.ics"), 404, "space_not_found")


# listing and search ------------------------------------------------------------------------


async def listed(h: Harness, **query: str) -> list[str]:
    answer = await h.client().get("/api/v1/spaces", params=query)
    assert answer.status_code == 200, answer.text
    return [s["title"] for s in answer.json()["spaces"]]


@pytest.fixture
async def catalogue(harness: Harness) -> dict[str, Any]:
    """Spaces in every state, two hosts, one unlisted."""
    sara = await harness.account("sara_host")
    yusuf = await harness.account("yusuf")
    await harness.create_space(sara, "نقاش حول الشعر العربي")
    await harness.create_space(yusuf, "Morning news")
    await harness.create_space(sara, "Tomorrow's Q&A", scheduled_in=86400)
    await harness.create_space(yusuf, "Next week", scheduled_in=7 * 86400)
    await harness.create_space(sara, "Soon", scheduled_in=3600)
    old = await harness.create_space(yusuf, "Yesterday's show")
    assert (await harness.call("POST", f"/spaces/{old['id']}/end", yusuf)).status_code == 200
    hidden = await harness.create_space(sara, "Private poetry", visibility="unlisted")
    return {"sara": sara, "yusuf": yusuf, "hidden": hidden}


async def test_list_by_state(harness: Harness, catalogue: dict[str, Any]) -> None:
    assert sorted(await listed(harness, state="live")) == ["Morning news", "نقاش حول الشعر العربي"]
    # Upcoming: soonest first.
    assert await listed(harness, state="scheduled") == ["Soon", "Tomorrow's Q&A", "Next week"]
    assert await listed(harness, state="ended") == ["Yesterday's show"]
    assert len(await listed(harness)) == 6
    assert len(await listed(harness, limit="2")) == 2
    assert await listed(harness, state="scheduled", offset="1", limit="1") == ["Tomorrow's Q&A"]


@pytest.mark.parametrize(
    ("q", "titles"),
    [
        ("الشعر", ["نقاش حول الشعر العربي"]),
        ("MORNING", ["Morning news"]),
        ("sara_h", ["نقاش حول الشعر العربي", "Soon", "Tomorrow's Q&A"]),  # host username
        ("YUSUF", ["Morning news", "Next week", "Yesterday's show"]),
        ("%", []),  # a LIKE wildcard is a plain character
        ("_", ["نقاش حول الشعر العربي", "Soon", "Tomorrow's Q&A"]),  # in "sara_host" only
        ("poetry", []),  # the unlisted one is never found
        ("nothing like this", []),
    ],
)
async def test_search(
    harness: Harness, catalogue: dict[str, Any], q: str, titles: list[str]
) -> None:
    assert sorted(await listed(harness, q=q)) == sorted(titles)


async def test_unlisted_is_not_listed_but_can_be_fetched(
    harness: Harness, catalogue: dict[str, Any]
) -> None:
    hidden = catalogue["hidden"]
    for state in ("live", "scheduled", "ended"):
        assert "Private poetry" not in await listed(harness, state=state)
    assert "Private poetry" not in await listed(harness, host_id=catalogue["sara"].id)
    answer = await harness.call("GET", f"/spaces/{hidden['id']}")
    assert answer.status_code == 200
    assert answer.json()["title"] == "Private poetry"
    assert answer.json()["visibility"] == "unlisted"
    document = await harness.call("GET", f"/spaces/{hidden['id']}/state")
    assert document.status_code == 200
    assert document.json()["space"]["id"] == hidden["id"]


async def test_list_by_host(harness: Harness, catalogue: dict[str, Any]) -> None:
    titles = await listed(harness, host_id=catalogue["yusuf"].id)
    assert sorted(titles) == ["Morning news", "Next week", "Yesterday's show"]


async def test_the_pages_of_an_unknown_space_are_the_404_page(harness: Harness) -> None:
    host = await harness.account("host")
    sid = (await harness.create_space(host))["id"]
    known = await harness.client().get(f"/spaces/{sid}/replay")
    unknown = await harness.client().get("/spaces/ffffffffffff/replay")
    assert known.status_code == 200 and "Page not found" not in known.text
    assert unknown.status_code == 404 and "Page not found" in unknown.text
